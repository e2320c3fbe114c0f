/**
 * The authorisation rules of validateToken (docs/flows.md#authorisation,
 * docs/rules.md#sotc-and-jwt), free of I/O.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** The AppSync Lambda authoriser request, as AppSync sends it. */
export interface AppSyncAuthorizerEvent {
  authorizationToken?: unknown;
  requestContext?: { apiId?: string; accountId?: string; requestId?: string; operationName?: string };
}

/** The answer AppSync expects from a Lambda authoriser. */
export interface AppSyncAuthorizerResult {
  isAuthorized: boolean;
  resolverContext?: Record<string, string>;
  /** Seconds AppSync may cache this answer for the token; 0 disables caching. */
  ttlOverride?: number;
}

/** Splits `<apiKey>` or `<apiKey>:<sotc>` at the first colon. */
export function splitAuthorizationToken(token: string): { apiKey: string; sotc?: string } {
  const colon = token.indexOf(":");
  if (colon < 0) return { apiKey: token };
  const sotc = token.slice(colon + 1);
  return sotc.length > 0 ? { apiKey: token.slice(0, colon), sotc } : { apiKey: token.slice(0, colon) };
}

// UTF-16LE, not UTF-8: it encodes every code unit as is, so distinct strings never share a
// digest input (UTF-8 turns each unpaired surrogate into U+FFFD, making "\ud800" equal "\ud801").
const digest = (value: string) => createHash("sha256").update(value, "utf16le").digest();

/**
 * True when `candidate` equals one of `accepted`. Every accepted key is compared, each in
 * constant time over fixed-length digests, so timing reveals neither which key nor how much matched.
 */
export function isAcceptedApiKey(candidate: string, accepted: readonly string[]): boolean {
  if (candidate.length === 0) return false;
  const probe = digest(candidate);
  let matched = false;
  for (const key of accepted) {
    matched = timingSafeEqual(probe, digest(key)) || matched;
  }
  return matched;
}

/** Registered JWT claims: about the token, not the fan, so not passed on. */
const REGISTERED_CLAIMS: readonly string[] = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

export const LOGGED_OUT: Readonly<Record<string, string>> = Object.freeze({ isLoggedIn: "false" });

/**
 * Builds the flat resolverContext for a verified SOTC: AppSync accepts only one level of
 * string values, so nested profile claims become dotted keys and lists are comma-joined.
 * Returns undefined when the token carries no globalUserId.
 */
export function resolverContextFromClaims(
  claims: Record<string, unknown>,
  userIdClaim: string,
): Record<string, string> | undefined {
  const globalUserId = claims[userIdClaim];
  if (typeof globalUserId !== "string" || globalUserId.length === 0) return undefined;
  const context: Record<string, string> = {};
  const add = (key: string, value: unknown): void => {
    if (value === null || value === undefined) return;
    if (Array.isArray(value)) {
      context[key] = value.map((item) => (typeof item === "object" ? JSON.stringify(item) : String(item))).join(",");
    } else if (typeof value === "object") {
      for (const [child, childValue] of Object.entries(value)) add(`${key}.${child}`, childValue);
    } else {
      context[key] = String(value);
    }
  };
  for (const [claim, value] of Object.entries(claims)) {
    if (!REGISTERED_CLAIMS.includes(claim) && claim !== userIdClaim) add(claim, value);
  }
  if (context.email !== undefined) context.email = context.email.toLowerCase();
  return { ...context, isLoggedIn: "true", globalUserId };
}

/** How long AppSync may cache a logged-in answer: the configured bound, never past expiry. */
export function loggedInTtl(maxSeconds: number, expiresAt: number | undefined, nowSeconds: number): number {
  if (expiresAt === undefined) return maxSeconds;
  return Math.max(0, Math.min(maxSeconds, Math.floor(expiresAt - nowSeconds)));
}

/**
 * jose error codes that mean "this token is not acceptable". Anything else thrown while
 * verifying (network failure, JWKS timeout or malformed JWKS, a non-200 answer) is a fault of
 * the system, not of the token.
 */
const TOKEN_ERROR_CODES: readonly string[] = [
  "ERR_JWT_EXPIRED",
  "ERR_JWT_CLAIM_VALIDATION_FAILED",
  "ERR_JWT_INVALID",
  "ERR_JWS_INVALID",
  "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
  "ERR_JOSE_ALG_NOT_ALLOWED",
  "ERR_JOSE_NOT_SUPPORTED",
  "ERR_JWKS_NO_MATCHING_KEY",
  "ERR_JWKS_MULTIPLE_MATCHING_KEYS",
];

export function isTokenError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && TOKEN_ERROR_CODES.includes(code);
}
