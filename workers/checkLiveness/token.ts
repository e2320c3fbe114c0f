/**
 * The decision token: an RS256 JWT carrying the decision checkLiveness took, so the app that asked
 * can prove it to its backend without calling back. Signed with the key from Secrets Manager,
 * imported once per container (again only when the secret's key changes). It names whom it is
 * for (`aud`), expires (`exp`), and carries a unique id (`jti`) so a verifier can refuse a replay.
 */
import { randomUUID } from "node:crypto";
import { importPKCS8, type JWTVerifyOptions, SignJWT } from "jose";
import { z } from "../shared/zod";
import type { Decision } from "../shared/idv/session";

export const DECISION_TOKEN_ALGORITHM = "RS256";

/** The Secrets Manager document holding the signing key. */
export const signingKeySchema = () =>
  z.object({
    privateKey: z
      .string()
      .check(
        z.regex(/^-----BEGIN PRIVATE KEY-----\r?\n[\s\S]+\n-----END PRIVATE KEY-----\s*$/, "expected a PKCS#8 PEM private key"),
      ),
    keyId: z.string().check(z.regex(/^[\w.-]{1,64}$/, "expected a key id")),
  });
export type SigningKeyDocument = z.infer<ReturnType<typeof signingKeySchema>>;

export interface DecisionSignerOptions {
  readonly issuer: string;
  /** The token's `aud`: whom it is for. */
  readonly audience: string;
  readonly ttlSeconds: number;
  readonly readSigningKey: () => Promise<SigningKeyDocument>;
}

export interface DecisionClaims {
  readonly globalUserId: string;
  readonly decision: Decision;
  readonly appId: string;
  readonly subjectId: string;
  /** When it is issued (epoch ms). */
  readonly now: number;
}

type ImportedKey = Awaited<ReturnType<typeof importPKCS8>>;

export function createDecisionSigner(options: DecisionSignerOptions) {
  let imported: { readonly pem: string; readonly key: Promise<ImportedKey> } | undefined;

  function keyOf(document: SigningKeyDocument): Promise<ImportedKey> {
    if (imported?.pem !== document.privateKey) {
      const key = importPKCS8(document.privateKey, DECISION_TOKEN_ALGORITHM).catch((error: unknown) => {
        // Not kept: the next request tries again (and a corrected secret is picked up on its refresh).
        if (imported?.key === key) imported = undefined;
        throw new Error(`decision signing key ${document.keyId} could not be imported: ${(error as Error).message}`, {
          cause: error,
        });
      });
      imported = { pem: document.privateKey, key };
    }
    return imported.key;
  }

  /** The signed token of one decision. */
  return async function signDecision(claims: DecisionClaims): Promise<string> {
    const document = await options.readSigningKey();
    const key = await keyOf(document);
    const issuedAt = Math.floor(claims.now / 1000);
    return new SignJWT({ decisions: [claims.decision], appId: claims.appId, subjectId: claims.subjectId })
      .setProtectedHeader({ alg: DECISION_TOKEN_ALGORITHM, kid: document.keyId, typ: "JWT" })
      .setIssuer(options.issuer)
      .setAudience(options.audience)
      .setSubject(claims.globalUserId)
      .setJti(randomUUID())
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + options.ttlSeconds)
      .sign(key);
  };
}

export type DecisionSigner = ReturnType<typeof createDecisionSigner>;

/**
 * How a decision token is verified (with jose's `jwtVerify` and the `decisionTokenJwks` key), by
 * its consumers and wherever this project checks one: RS256 only, the issuer and audience
 * expected, and `exp` and `jti` required, so a token that never expires, or that cannot be told
 * apart from another, is refused.
 */
export function decisionTokenVerifyOptions(expected: { readonly issuer: string; readonly audience: string }): JWTVerifyOptions {
  return {
    algorithms: [DECISION_TOKEN_ALGORITHM],
    issuer: expected.issuer,
    audience: expected.audience,
    requiredClaims: ["exp", "jti"],
  };
}
