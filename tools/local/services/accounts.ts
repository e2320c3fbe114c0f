/**
 * The accounts service for the local system, on one loopback server:
 *
 * - the ARAI API (`GET /arai/v1/accounts/{globalUserId}/activity`, docs/rules.md#arai-response),
 *   checking the basic credentials and client id lookupArai sends, and answering each fan's
 *   account activity in the documented shape, `{"data": UserAccountActivity, "meta":
 *   {"pageCount": 1}}`, the data made deterministically from the fan's id and what the fan did
 *   (`recordActivity`, each call advancing the fan's version); a fan the service does not know
 *   (forgotten, or an id starting with UNKNOWN_FAN_PREFIX) is answered 404;
 * - the JWKS (`/.well-known/jwks.json`) publishing an RSA key made at start, with which
 *   `issueSotc` signs the SOTCs validateToken verifies.
 *
 * Either route can be given a fault (`setFault`, services/fault.ts) for the fault drills.
 */
import { createHash, randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import type { RunningService } from "../types";
import { type Answer, type RecordedRequest, WireServer } from "../wire";
import { createFaultSwitch, type FaultCounts, faultedAnswer, type FaultSwitch, type ServiceFault } from "./fault";

export const ARAI_PATH_TEMPLATE = "/arai/v1/accounts/{globalUserId}/activity";
export const JWKS_PATH = "/.well-known/jwks.json";
/** Fans whose id starts with this are unknown to the accounts service (answered 404). */
export const UNKNOWN_FAN_PREFIX = "unknown-";
/** Recorded activities a fan's history keeps, the most recent (below lookupArai's trim limit of 100 per list). */
export const LOGIN_HISTORY_KEPT = 50;

/** What a fan did, as the traffic generator tells it (an activity message fits). */
export interface FanActivity {
  readonly action: string;
  /** When, ISO 8601. @default now */
  readonly at?: string;
  /** "success" or "failure". @default success */
  readonly result?: string;
}

/** A fan's account activity, the answer's `data` (what lookupArai stores and the model reads). */
export type AraiDocument = Record<string, unknown> & {
  readonly globalUserId: string;
  readonly counts: { readonly loginActivity: number; readonly failedLoginActivity: number };
  readonly history: {
    readonly loginActivity: readonly Record<string, unknown>[];
    readonly failedLoginActivity: readonly Record<string, unknown>[];
  };
  readonly linkedAccounts: readonly Record<string, unknown>[];
};

export interface AccountsOptions {
  /** The ARAI credentials lookupArai reads from its secret; requests without them are refused. */
  readonly credentials: { readonly username: string; readonly password: string; readonly clientId: string };
  /** JWT_ISSUER, JWT_AUDIENCE (a list or one) and JWT_USER_ID_CLAIM of validateToken's environment. */
  readonly issuer: string;
  readonly audience: string | readonly string[];
  /** @default sub */
  readonly userIdClaim?: string;
  /** ARAI_URL_TEMPLATE, or its path. @default ARAI_PATH_TEMPLATE */
  readonly araiUrlTemplate?: string;
  /** JWKS_URL, or its path. @default JWKS_PATH */
  readonly jwksUrl?: string;
}

/** What a SOTC says beyond the fan: more claims, and when it was issued and for how long. */
export interface SotcRequest {
  readonly globalUserId: string;
  /** Profile claims (email, names…), passed on by validateToken. */
  readonly claims?: Record<string, unknown>;
  /** Epoch seconds. @default now */
  readonly issuedAt?: number;
  /** @default 3600 */
  readonly expiresInSeconds?: number;
}

export interface LocalAccounts extends RunningService {
  readonly server: WireServer;
  /** The ARAI API's URL template here, for ARAI_URL_TEMPLATE. */
  readonly araiUrlTemplate: string;
  /** The JWKS URL here, for JWKS_URL. */
  readonly jwksUrl: string;
  /** The key SOTCs are signed with, as the JWKS publishes it. */
  readonly publicJwk: JWK;
  /** Records what the fan did, so their ARAI reflects it; returns the fan's new version. */
  recordActivity(globalUserId: string, activity: FanActivity): number;
  /** Makes the fan unknown to the service from now on (404). */
  forget(globalUserId: string): void;
  /** How many activities have been recorded for the fan. */
  versionOf(globalUserId: string): number;
  /** The ARAI (the answer's `data`) last answered for the fan, undefined before any. */
  araiOf(globalUserId: string): AraiDocument | undefined;
  /** The ARAI (the answer's `data`) the fan would be answered now, undefined for an unknown fan. */
  currentArai(globalUserId: string): AraiDocument | undefined;
  /** A SOTC for the fan, signed with the published key. */
  issueSotc(request: SotcRequest): Promise<string>;
  /** Gives the ARAI API (by default) or the JWKS a fault, or with undefined clears it. */
  setFault(fault: ServiceFault | undefined, route?: AccountsRoute): void;
  /** The requests the route saw since its fault was set, and how many the fault changed. */
  faultCounts(route?: AccountsRoute): FaultCounts;
  /** Resolves once the route's fault, limited to some requests, has bitten them all. */
  faultSpent(route?: AccountsRoute): Promise<void>;
}

/** The two routes of the accounts service. */
export type AccountsRoute = "arai" | "jwks";

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest();
const pick = <T>(items: readonly T[], byte: number): T => items[byte % items.length]!;

const PLACES = [
  { from: "London, GB", country: "GB", lat: 51.5074, long: -0.1278 },
  { from: "New York, US", country: "US", lat: 40.7128, long: -74.006 },
  { from: "Dublin, IE", country: "IE", lat: 53.3498, long: -6.2603 },
  { from: "Berlin, DE", country: "DE", lat: 52.52, long: 13.405 },
  { from: "Toronto, CA", country: "CA", lat: 43.6532, long: -79.3832 },
  { from: "Sydney, AU", country: "AU", lat: -33.8688, long: 151.2093 },
];
const DEVICES = [
  { os: "iOS 19.1", browser: "Safari 19", device: "iPhone16,2" },
  { os: "Android 16", browser: "Chrome 142", device: "Pixel 9" },
  { os: "Windows 11", browser: "Chrome 142", device: "desktop" },
  { os: "macOS 16", browser: "Firefox 145", device: "desktop" },
];
const FIRST_NAMES = ["Alex", "Sam", "Jordan", "Maya", "Priya", "Tomás", "Chloé", "Kenji"];
const LAST_NAMES = ["Okafor", "Silva", "Novak", "Byrne", "Schmidt", "Tanaka", "Moreau", "Reyes"];
const PHONE_TYPES = ["mobile", "mobile", "mobile", "landline", "voip"];
const PROVIDER_TYPES = ["google", "apple", "facebook"];

/** A history entry `{result, at, os, browser, from, cip, device, lat, long}`: what the fan did, from a device and place of theirs. */
function historyEntry(seed: Buffer, index: number, activity: FanActivity & { readonly at: string }) {
  const { from, lat, long } = pick(PLACES, seed[6]!);
  const { os, browser, device } = pick(DEVICES, seed[8]! + (index % 2));
  return {
    result: activity.result ?? "success",
    at: activity.at,
    os,
    browser,
    from,
    cip: `198.51.100.${1 + (seed[9]! % 254)}`,
    device,
    lat,
    long,
  };
}

/**
 * The fan's ARAI, the answer's `data`: identity, phone, counts, history and linked accounts, a
 * function of the fan's id, version and recorded activities alone. The recorded activities
 * (at most LOGIN_HISTORY_KEPT, newest first) are the history entries: a successful one in
 * `history.loginActivity`, another in `history.failedLoginActivity`. The account's creation is
 * always the oldest login. `counts.loginActivity` is the fan's version plus a number of earlier
 * logins made from the fan's id (a total, not the length of a list); `counts.failedLoginActivity`
 * the failures listed.
 */
export function araiDocument(
  globalUserId: string,
  version: number,
  activities: readonly (FanActivity & { readonly at: string })[],
): AraiDocument {
  const seed = digest(globalUserId);
  const createdAt = new Date(Date.UTC(2015 + (seed[0]! % 10), seed[1]! % 12, 1 + (seed[2]! % 28), seed[3]! % 24)).toISOString();
  const recent = activities.slice(-LOGIN_HISTORY_KEPT).reverse();
  const entries = [...recent, { action: "create_account", at: createdAt, result: "success" }].map((activity, index) =>
    historyEntry(seed, index, activity),
  );
  const loginActivity = entries.filter((entry) => entry.result === "success");
  const failedLoginActivity = entries.filter((entry) => entry.result !== "success");
  const linkedAccounts = Array.from({ length: seed[4]! % 4 }, (_, index) => ({
    providerId: `${pick(PROVIDER_TYPES, seed[10 + index]!)}|${digest(`${globalUserId}:${index}`).toString("hex").slice(0, 16)}`,
    providerType: pick(PROVIDER_TYPES, seed[10 + index]!),
    linkedAt: new Date(Date.parse(createdAt) + (index + 1) * 86_400_000 * (1 + (seed[14 + index]! % 200))).toISOString(),
  }));
  return {
    globalUserId,
    firstName: pick(FIRST_NAMES, seed[5]!),
    lastName: pick(LAST_NAMES, seed[15]!),
    emailAddress: `fan.${seed.toString("hex").slice(0, 8)}@example.com`,
    phoneNumber: `+1555${String(seed.readUInt32BE(12) % 10_000_000).padStart(7, "0")}`,
    phoneNumberType: pick(PHONE_TYPES, seed[7]!),
    phoneNumberCountry: pick(PLACES, seed[6]!).country,
    sharedPhoneNumberCount: seed[16]! % 3,
    counts: {
      loginActivity: version + (seed[11]! % 10),
      failedLoginActivity: failedLoginActivity.length,
    },
    history: { loginActivity, failedLoginActivity },
    linkedAccounts,
  };
}

/** A URL template or path reduced to its path (no origin, no query). */
const pathOf = (template: string) => template.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, "").replace(/\?.*$/, "");
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The pattern of the ARAI path, capturing the (encoded) fan id. */
function araiPattern(template: string): RegExp {
  const parts = template.split("{globalUserId}");
  if (parts.length !== 2) throw new Error(`ARAI URL template ${template} has no single {globalUserId}`);
  return new RegExp(`^${escape(parts[0]!)}([^/]+)${escape(parts[1]!)}$`);
}

/** Why a request does not carry the credentials, or undefined when it does. */
function refusal(request: RecordedRequest, credentials: AccountsOptions["credentials"]): Answer | undefined {
  const expected = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, "utf8").toString("base64")}`;
  if (request.headers.authorization !== expected) {
    return { status: 401, headers: { "www-authenticate": 'Basic realm="arai"' }, body: { message: "Unauthorized" } };
  }
  if (request.headers["x-client-id"] !== credentials.clientId) return { status: 403, body: { message: "unknown client id" } };
  return undefined;
}

/** The fans' versions and activities, and what was last answered for each. */
function createFans() {
  const state = new Map<string, { version: number; activities: (FanActivity & { at: string })[] }>();
  const forgotten = new Set<string>();
  const served = new Map<string, AraiDocument>();
  const known = (id: string) => !id.startsWith(UNKNOWN_FAN_PREFIX) && !forgotten.has(id);
  const current = (id: string) => {
    if (!known(id)) return undefined;
    const fan = state.get(id);
    return araiDocument(id, fan?.version ?? 0, fan?.activities ?? []);
  };
  return {
    current,
    served,
    forget: (id: string) => void forgotten.add(id),
    versionOf: (id: string) => state.get(id)?.version ?? 0,
    record(id: string, activity: FanActivity): number {
      const fan = state.get(id) ?? { version: 0, activities: [] };
      fan.version += 1;
      fan.activities.push({ ...activity, at: activity.at ?? new Date().toISOString() });
      if (fan.activities.length > LOGIN_HISTORY_KEPT) fan.activities.shift();
      state.set(id, fan);
      return fan.version;
    },
  };
}

/** The responder: the ARAI API, the JWKS, and 404 elsewhere; a route with a fault answers as it says. */
function accountsResponder(
  options: AccountsOptions,
  fans: ReturnType<typeof createFans>,
  jwk: JWK,
  faults: Readonly<Record<AccountsRoute, FaultSwitch<ServiceFault>>>,
) {
  const pattern = araiPattern(pathOf(options.araiUrlTemplate ?? ARAI_PATH_TEMPLATE));
  const jwksPath = pathOf(options.jwksUrl ?? JWKS_PATH);
  const araiAnswer = araiResponder(options, fans);
  return (request: RecordedRequest): Answer | Promise<Answer> => {
    const path = request.url.replace(/\?.*$/, "");
    if (request.method !== "GET") return { status: 405, body: { message: `${request.method} is not allowed` } };
    const jwks = (): Answer => ({ headers: { "cache-control": "max-age=600" }, body: { keys: [jwk] } });
    if (path === jwksPath) {
      const fault = faults.jwks.take();
      return fault ? faultedAnswer(fault, jwks) : jwks();
    }
    const match = pattern.exec(path);
    if (!match) return { status: 404, body: { message: `no route for ${path}` } };
    const fault = faults.arai.take();
    return fault ? faultedAnswer(fault, () => araiAnswer(request, match)) : araiAnswer(request, match);
  };
}

/** An ARAI request, its path matched: the credentials checked, the fan's ARAI or 404. */
function araiResponder(options: AccountsOptions, fans: ReturnType<typeof createFans>) {
  return (request: RecordedRequest, match: RegExpExecArray): Answer => {
    const refused = refusal(request, options.credentials);
    if (refused) return refused;
    let globalUserId: string;
    try {
      globalUserId = decodeURIComponent(match[1]!);
    } catch {
      return { status: 400, body: { message: "malformed globalUserId" } };
    }
    const arai = fans.current(globalUserId);
    if (!arai) return { status: 404, body: { message: `account ${globalUserId} not found` } };
    fans.served.set(globalUserId, arai);
    return { body: { data: arai, meta: { pageCount: 1 } } };
  };
}

/** Starts the accounts service on a free loopback port, with a fresh RSA signing key. */
export async function startAccounts(options: AccountsOptions): Promise<LocalAccounts> {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const kid = `local-accounts-${randomBytes(4).toString("hex")}`;
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  const fans = createFans();
  const faults = { arai: createFaultSwitch<ServiceFault>(), jwks: createFaultSwitch<ServiceFault>() };
  const server = await WireServer.start(accountsResponder(options, fans, publicJwk, faults), {
    keep: 1000,
    redactHeaders: ["authorization"],
  });
  const userIdClaim = options.userIdClaim ?? "sub";
  return {
    server,
    url: server.url,
    araiUrlTemplate: `${server.url}${pathOf(options.araiUrlTemplate ?? ARAI_PATH_TEMPLATE)}`,
    jwksUrl: `${server.url}${pathOf(options.jwksUrl ?? JWKS_PATH)}`,
    publicJwk,
    recordActivity: (globalUserId, activity) => fans.record(globalUserId, activity),
    forget: (globalUserId) => fans.forget(globalUserId),
    versionOf: (globalUserId) => fans.versionOf(globalUserId),
    araiOf: (globalUserId) => fans.served.get(globalUserId),
    currentArai: (globalUserId) => fans.current(globalUserId),
    issueSotc(request) {
      const issuedAt = request.issuedAt ?? Math.floor(Date.now() / 1000);
      const claims = { ...request.claims, ...(userIdClaim === "sub" ? {} : { [userIdClaim]: request.globalUserId }) };
      const jwt = new SignJWT(claims)
        .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
        .setIssuer(options.issuer)
        .setAudience(typeof options.audience === "string" ? options.audience : [...options.audience])
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + (request.expiresInSeconds ?? 3600));
      return (userIdClaim === "sub" ? jwt.setSubject(request.globalUserId) : jwt).sign(privateKey);
    },
    setFault: (fault, route = "arai") => faults[route].set(fault),
    faultCounts: (route = "arai") => faults[route].counts(),
    faultSpent: (route = "arai") => faults[route].spent(),
    close: () => server.close(),
  };
}
