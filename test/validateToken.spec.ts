import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import * as fc from "fast-check";
import { createRemoteJWKSet, errors, type JWTPayload, jwtVerify, type RemoteJWKSetOptions } from "jose";
import { z } from "zod";
import {
  type AppSyncAuthorizerEvent,
  type AppSyncAuthorizerResult,
  isAcceptedApiKey,
  isTokenError,
  loggedInTtl,
  resolverContextFromClaims,
  splitAuthorizationToken,
} from "../workers/validateToken/authorize";
import { validateTokenContract } from "../workers/validateToken/contract";
import { AUTHORISER_SECRET_WAIT_MS, createValidateToken, validateToken } from "../workers/validateToken";
import { AWS_CLIENT_BOUNDS } from "../workers/shared/runtime/awsClients";
import { loadEnvironment } from "../workers/shared/runtime/environment";
import { createSecretReader, DEFAULT_FAILURE_MEMORY_MS } from "../workers/shared/runtime/secrets";
import { LAMBDA_AWS, setEnvironment } from "./support/environment";
import { fixture } from "./support/fixtures";
import { operationOf, type WireServer } from "./support/http";
import {
  createSigningKey,
  hmacWithPublicKey,
  JwksServer,
  payloadOf,
  type SigningKey,
  signSotc,
  type SotcOptions,
  unsecuredToken,
  withFlippedSignatureBit,
  withPayload,
} from "./support/jwks";
import { captureLogs, linesAt, type LogLine } from "./support/logs";
import { waitUntil } from "./support/local";
import { ACCESS_DENIED, secretsManagerClient, startSecrets } from "./support/secrets";
import { type SilentServer, startSilentServer } from "./support/silentServer";

const API_KEY = "BE9DC5E3-D410-4733-AF76-70178092E681";
const ROTATED_API_KEY = "5F3A1C2B-7E41-4D0B-9A8C-0123456789AB";
const SECRET_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/appsync-api-keys-Q1w2E3";
const ISSUER = "https://accounts.example.test/";
const AUDIENCE = "verified-fan-graphql";
const GLOBAL_USER_ID = "gu-7f3c2a91";
const CLOCK_TOLERANCE_SECONDS = 30;
const AUTHORIZED_TTL_SECONDS = 300;

/** The configuration both ways of building the authoriser are given. */
const BASE_VARS: Record<string, string> = {
  API_KEYS_SECRET_ARN: SECRET_ARN,
  API_KEYS_MAX_AGE_SECONDS: "300",
  JWKS_TIMEOUT_MS: "200",
  JWKS_CACHE_MAX_AGE_SECONDS: "600",
  JWT_ISSUER: ISSUER,
  JWT_AUDIENCE: `${AUDIENCE}, verified-fan-web`,
  JWT_ALGORITHMS: "RS256",
  JWT_CLOCK_TOLERANCE_SECONDS: String(CLOCK_TOLERANCE_SECONDS),
  AUTHORIZED_TTL_SECONDS: String(AUTHORIZED_TTL_SECONDS),
};

/** Profile claims of a fan, as the accounts service issues them (with registered claims besides). */
const PROFILE: JWTPayload = {
  jti: "sotc-0001",
  email: "Fan.Person@Example.COM",
  given_name: "Fan",
  family_name: "Person",
  email_verified: true,
  locale: "en-GB",
  roles: ["fan", "presale"],
  address: { country: "GB", postal_code: "SW1A 1AA" },
  fan_score: 87,
};

/** The flat resolverContext PROFILE must become. */
const LOGGED_IN_CONTEXT: Record<string, string> = {
  isLoggedIn: "true",
  globalUserId: GLOBAL_USER_ID,
  email: "fan.person@example.com",
  given_name: "Fan",
  family_name: "Person",
  email_verified: "true",
  locale: "en-GB",
  roles: "fan,presale",
  "address.country": "GB",
  "address.postal_code": "SW1A 1AA",
  fan_score: "87",
};

const LOGGED_IN: AppSyncAuthorizerResult = {
  isAuthorized: true,
  resolverContext: LOGGED_IN_CONTEXT,
  ttlOverride: AUTHORIZED_TTL_SECONDS,
};
/** Authorised, logged out, and cacheable under the API's default TTL. */
const LOGGED_OUT: AppSyncAuthorizerResult = { isAuthorized: true, resolverContext: { isLoggedIn: "false" } };
/** Logged out because the SOTC could not be checked: AppSync must not cache it. */
const LOGGED_OUT_UNCACHED: AppSyncAuthorizerResult = { ...LOGGED_OUT, ttlOverride: 0 };
const DENIED: AppSyncAuthorizerResult = { isAuthorized: false };
const DENIED_UNCACHED: AppSyncAuthorizerResult = { isAuthorized: false, ttlOverride: 0 };

const REGISTERED_CLAIMS = ["iss", "sub", "aud", "exp", "nbf", "iat", "jti"];

const FIXTURE = fixture<AppSyncAuthorizerEvent & { requestContext: Record<string, unknown> }>("appsync-authorizer.json");

let requestCount = 0;
/** The recorded AppSync event with the authorization token given (absent when undefined). */
function authorizerEvent(token: unknown): AppSyncAuthorizerEvent {
  const event = structuredClone(FIXTURE) as AppSyncAuthorizerEvent & { requestContext: Record<string, unknown> };
  if (token === undefined) delete event.authorizationToken;
  else event.authorizationToken = token;
  event.requestContext.requestId = `b80ed838-14c6-4500-b4c3-${String(++requestCount).padStart(12, "0")}`;
  return event;
}

type Handler = (event: AppSyncAuthorizerEvent) => Promise<AppSyncAuthorizerResult>;

interface Authoriser {
  /** Calls the authoriser with the fixture event carrying `token`; its log lines go to `logs`. */
  authorise(token: unknown): Promise<AppSyncAuthorizerResult>;
  readonly logs: LogLine[];
}

function recording(handler: Handler): Authoriser {
  const logs: LogLine[] = [];
  return {
    logs,
    async authorise(token) {
      const captured = await captureLogs(() => handler(authorizerEvent(token)));
      logs.push(...captured.logs);
      return captured.result;
    },
  };
}

/** A fixed clock for the directly built authoriser: whole seconds, so TTLs are exact. */
const NOW_SECONDS = 1_780_000_000;

interface DirectOptions {
  readonly vars?: Record<string, string>;
  readonly jwks?: RemoteJWKSetOptions;
  readonly readApiKeys?: () => Promise<readonly string[]>;
}

/** The authoriser built from its parts, with the remote JWKS set configured as the factory does. */
function directAuthoriser(jwksUrl: string, options: DirectOptions = {}): Authoriser {
  const env = loadEnvironment(validateTokenContract, { ...BASE_VARS, JWKS_URL: jwksUrl, ...options.vars });
  const jwks = createRemoteJWKSet(new URL(env.JWKS_URL), {
    timeoutDuration: env.JWKS_TIMEOUT_MS,
    cacheMaxAge: env.JWKS_CACHE_MAX_AGE_SECONDS * 1000,
    cooldownDuration: 30_000,
    ...options.jwks,
  });
  const handler = createValidateToken({
    env,
    logger: new Logger({ serviceName: validateTokenContract.name, logLevel: "DEBUG" }),
    jwks,
    readApiKeys: options.readApiKeys ?? (async () => [API_KEY, ROTATED_API_KEY]),
    now: () => NOW_SECONDS * 1000,
  });
  return recording(handler);
}

describe("validateToken", function () {
  let keys: { primary: SigningKey; secondary: SigningKey; attacker: SigningKey };
  let jwksServer: JwksServer;
  /** Servers a single test starts; closed after it. */
  const ownServers: { close(): Promise<void> }[] = [];

  before(async function () {
    const [primary, secondary, attacker] = await Promise.all([
      createSigningKey("accounts-2025-06"),
      createSigningKey("accounts-2025-12"),
      createSigningKey("accounts-2025-06"),
    ]);
    keys = { primary, secondary, attacker };
    jwksServer = await JwksServer.start([keys.primary]);
  });
  after(async function () {
    await jwksServer?.close();
  });
  afterEach(async function () {
    await Promise.all(ownServers.splice(0).map((server) => server.close()));
  });

  async function startJwks(published: SigningKey[], options?: { hangMs?: number }): Promise<JwksServer> {
    const server = await JwksServer.start(published, options);
    ownServers.push(server);
    return server;
  }

  /** A SOTC as the accounts service issues it, relative to the clock `now` (seconds). */
  function sotcAt(now: number, options: SotcOptions = {}, claims: JWTPayload = PROFILE, key = keys.primary): Promise<string> {
    return signSotc(key, claims, {
      issuer: ISSUER,
      audience: AUDIENCE,
      subject: GLOBAL_USER_ID,
      issuedAt: now - 60,
      expiresAt: now + 3600,
      ...options,
    });
  }

  /**
   * What docs/flows.md#authorisation prescribes for each kind of token, checked against an
   * authoriser whose clock reads `now()` seconds and whose JWKS is served by the shared server
   * (publishing `primary`).
   */
  function answersAsSpecified(subject: () => Authoriser, now: () => number) {
    const authorise = (token: unknown) => subject().authorise(token);
    const sotc = (options?: SotcOptions, claims?: JWTPayload, key?: SigningKey) => sotcAt(now(), options, claims, key);

    it("logs a fan in with a valid SOTC: flat resolverContext, lower-cased email, no registered claims", async function () {
      const answer = await authorise(`${API_KEY}:${await sotc()}`);
      assert.deepEqual(answer, LOGGED_IN);
      for (const claim of REGISTERED_CLAIMS) assert.equal(answer.resolverContext?.[claim], undefined, claim);
      for (const value of Object.values(answer.resolverContext ?? {})) assert.equal(typeof value, "string");
    });

    it("accepts the rotated second API key as well as the first, with and without a SOTC", async function () {
      const token = await sotc();
      assert.deepEqual(await authorise(`${ROTATED_API_KEY}:${token}`), LOGGED_IN);
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_IN);
      assert.deepEqual(await authorise(ROTATED_API_KEY), LOGGED_OUT);
    });

    it("authorises a request without a SOTC as logged out (also with an empty SOTC after the colon)", async function () {
      assert.deepEqual(await authorise(API_KEY), LOGGED_OUT);
      assert.deepEqual(await authorise(`${API_KEY}:`), LOGGED_OUT);
    });

    it("logs out an expired SOTC", async function () {
      const token = await sotc({ issuedAt: now() - 7200, expiresAt: now() - CLOCK_TOLERANCE_SECONDS - 1 });
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_OUT);
    });

    it("logs out a SOTC that verifies but has no exp: it would never expire", async function () {
      const token = await sotc({ expiresAt: null });
      assert.equal(payloadOf(token).exp, undefined, "no exp claim");
      // Signed by the published key, issuer and audience right: only the missing exp refuses it.
      const { payload } = await jwtVerify(token, keys.primary.publicKey, { issuer: ISSUER, audience: AUDIENCE });
      assert.equal(payload.sub, GLOBAL_USER_ID);
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_OUT);
    });

    it("logs out a SOTC that is not yet valid (nbf beyond the clock tolerance)", async function () {
      const token = await sotc({ notBefore: now() + CLOCK_TOLERANCE_SECONDS + 60 });
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_OUT);
    });

    it("logs out a SOTC from another issuer", async function () {
      const token = await sotc({ issuer: "https://accounts.attacker.test/" });
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_OUT);
    });

    it("logs out a SOTC for another audience, and one with no audience", async function () {
      assert.deepEqual(await authorise(`${API_KEY}:${await sotc({ audience: "some-other-api" })}`), LOGGED_OUT);
      const noAudience = await signSotc(keys.primary, PROFILE, {
        issuer: ISSUER,
        subject: GLOBAL_USER_ID,
        expiresAt: now() + 600,
      });
      assert.deepEqual(await authorise(`${API_KEY}:${noAudience}`), LOGGED_OUT);
    });

    it("logs out an unsecured token (alg: none), whatever it claims", async function () {
      const claims = payloadOf(await sotc());
      assert.deepEqual(await authorise(`${API_KEY}:${unsecuredToken(claims)}`), LOGGED_OUT);
      const withKid = unsecuredToken(claims, { alg: "none", typ: "JWT", kid: keys.primary.kid });
      assert.deepEqual(await authorise(`${API_KEY}:${withKid}`), LOGGED_OUT);
    });

    it("logs out an HS256 token keyed with the RSA public key (key-confusion forgery)", async function () {
      const forged = await hmacWithPublicKey(keys.primary, payloadOf(await sotc()));
      assert.deepEqual(await authorise(`${API_KEY}:${forged}`), LOGGED_OUT);
    });

    it("logs out a SOTC whose kid the JWKS does not publish", async function () {
      const token = await sotc({}, PROFILE, keys.secondary);
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_OUT);
    });

    it("logs out a SOTC signed by another key under the published kid", async function () {
      const token = await sotc({}, PROFILE, keys.attacker);
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_OUT);
    });

    it("logs out a SOTC with a tampered signature", async function () {
      const token = withFlippedSignatureBit(await sotc());
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_OUT);
    });

    it("logs out a SOTC whose payload was changed after signing", async function () {
      const original = await sotc();
      const impersonation = withPayload(original, { ...payloadOf(original), sub: "gu-someone-else" });
      assert.deepEqual(await authorise(`${API_KEY}:${impersonation}`), LOGGED_OUT);
    });

    it("logs out a SOTC that is not a JWT at all", async function () {
      for (const garbage of ["not-a-jwt", "a.b.c", "..", "eyJhbGciOiJSUzI1NiJ9.e30"]) {
        assert.deepEqual(await authorise(`${API_KEY}:${garbage}`), LOGGED_OUT, garbage);
      }
    });

    it("logs out a valid SOTC that carries no globalUserId (no sub claim)", async function () {
      const token = await sotc({ subject: null });
      assert.deepEqual(await authorise(`${API_KEY}:${token}`), LOGGED_OUT);
    });

    it("denies a token with no API key part: ':<jwt>' and a bare JWT", async function () {
      const token = await sotc();
      assert.deepEqual(await authorise(`:${token}`), DENIED);
      assert.deepEqual(await authorise(token), DENIED);
    });

    it("denies a wrong API key, with or without a valid SOTC", async function () {
      const wrongKey = "00000000-0000-4000-8000-000000000000";
      assert.deepEqual(await authorise(wrongKey), DENIED);
      assert.deepEqual(await authorise(`${wrongKey}:${await sotc()}`), DENIED);
    });

    it("denies keys that only resemble an accepted one: a prefix, an extension, another case", async function () {
      for (const near of [API_KEY.slice(0, -1), API_KEY.slice(0, 8), `${API_KEY}0`, API_KEY.toLowerCase(), ` ${API_KEY}`]) {
        assert.deepEqual(await authorise(near), DENIED, near);
      }
    });

    it("denies a request with no authorization token, an empty one, or one that is not a string", async function () {
      assert.deepEqual(await authorise(undefined), DENIED);
      assert.deepEqual(await authorise(""), DENIED);
      assert.deepEqual(await authorise(12345), DENIED);
      assert.deepEqual(await authorise(null), DENIED);
    });
  }

  describe("built from its parts (createValidateToken)", function () {
    let subject: Authoriser;
    beforeEach(function () {
      subject = directAuthoriser(jwksServer.url);
    });

    answersAsSpecified(
      () => subject,
      () => NOW_SECONDS,
    );

    const sotc = (options?: SotcOptions, claims?: JWTPayload, key?: SigningKey) => sotcAt(NOW_SECONDS, options, claims, key);

    it("never lets AppSync cache a logged-in answer past the SOTC's expiry", async function () {
      const soon = await sotc({ expiresAt: NOW_SECONDS + 90 });
      assert.deepEqual(await subject.authorise(`${API_KEY}:${soon}`), { ...LOGGED_IN, ttlOverride: 90 });
      const later = await sotc({ expiresAt: NOW_SECONDS + AUTHORIZED_TTL_SECONDS + 1 });
      assert.deepEqual(await subject.authorise(`${API_KEY}:${later}`), LOGGED_IN);
    });

    it("accepts a SOTC within the clock tolerance of expiry or nbf, but never caches one already past exp", async function () {
      const justExpired = await sotc({ expiresAt: NOW_SECONDS - CLOCK_TOLERANCE_SECONDS + 5 });
      assert.deepEqual(await subject.authorise(`${API_KEY}:${justExpired}`), { ...LOGGED_IN, ttlOverride: 0 });
      const almostValid = await sotc({ notBefore: NOW_SECONDS + CLOCK_TOLERANCE_SECONDS - 5 });
      assert.deepEqual(await subject.authorise(`${API_KEY}:${almostValid}`), LOGGED_IN);
    });

    it("takes globalUserId from the configured claim", async function () {
      const authoriser = directAuthoriser(jwksServer.url, { vars: { JWT_USER_ID_CLAIM: "guid" } });
      const token = await sotc({ subject: "auth0|abc" }, { ...PROFILE, guid: GLOBAL_USER_ID });
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_IN);
      const withoutClaim = await sotc({ subject: GLOBAL_USER_ID });
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${withoutClaim}`), LOGGED_OUT);
    });

    it("does not let profile claims override isLoggedIn or globalUserId", async function () {
      const token = await sotc({}, { email: "fan@example.com", isLoggedIn: "false", globalUserId: "gu-someone-else" });
      assert.deepEqual(await subject.authorise(`${API_KEY}:${token}`), {
        isAuthorized: true,
        resolverContext: { isLoggedIn: "true", globalUserId: GLOBAL_USER_ID, email: "fan@example.com" },
        ttlOverride: AUTHORIZED_TTL_SECONDS,
      });
    });

    it("fetches the JWKS once and verifies every later SOTC from its cache", async function () {
      const server = await startJwks([keys.primary]);
      const authoriser = directAuthoriser(server.url);
      const tokens = await Promise.all(
        Array.from({ length: 8 }, (_, i) => sotc({}, { ...PROFILE, email: `Fan${i}@Example.com` })),
      );
      // A cold container taking a burst of requests shares one fetch.
      const burst = await Promise.all(tokens.map((token) => authoriser.authorise(`${API_KEY}:${token}`)));
      burst.forEach((answer, i) => assert.equal(answer.resolverContext?.email, `fan${i}@example.com`));
      for (let round = 0; round < 5; round++) {
        for (const token of tokens) assert.equal((await authoriser.authorise(`${API_KEY}:${token}`)).isAuthorized, true);
      }
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${await sotc({}, PROFILE, keys.attacker)}`), LOGGED_OUT);
      assert.equal(server.fetches, 1);
    });

    it("does not fetch the JWKS for a request it can answer without one", async function () {
      const server = await startJwks([keys.primary]);
      const authoriser = directAuthoriser(server.url);
      const token = await sotc();
      assert.deepEqual(await authoriser.authorise(API_KEY), LOGGED_OUT);
      assert.deepEqual(await authoriser.authorise(`wrong-key:${token}`), DENIED);
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${unsecuredToken(payloadOf(token))}`), LOGGED_OUT);
      assert.deepEqual(
        await authoriser.authorise(`${API_KEY}:${await hmacWithPublicKey(keys.primary, payloadOf(token))}`),
        LOGGED_OUT,
      );
      assert.equal(server.fetches, 0);
    });

    for (const mode of ["unavailable", "hang", "garbage"] as const) {
      it(`answers logged out and uncached while the JWKS is down (${mode}), and logs in again once it is back`, async function () {
        const server = await startJwks([keys.primary], { hangMs: 600 });
        server.mode = mode;
        const authoriser = directAuthoriser(server.url);
        const token = await sotc();
        assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_OUT_UNCACHED);
        // An outage only touches fans with a SOTC.
        assert.deepEqual(await authoriser.authorise(API_KEY), LOGGED_OUT);
        assert.deepEqual(await authoriser.authorise(`wrong-key:${token}`), DENIED);
        server.mode = "up";
        assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_IN);
      });
    }

    it("answers logged out and uncached when nothing listens at the JWKS address", async function () {
      const server = await JwksServer.start([keys.primary]);
      const url = server.url;
      await server.close();
      const authoriser = directAuthoriser(url);
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${await sotc()}`), LOGGED_OUT_UNCACHED);
    });

    it("keeps verifying from a warm JWKS cache while the JWKS is down", async function () {
      const server = await startJwks([keys.primary]);
      const authoriser = directAuthoriser(server.url);
      const token = await sotc();
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_IN);
      server.mode = "unavailable";
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_IN);
      assert.equal(server.fetches, 1);
    });

    it("picks up a newly published signing key once the refetch cooldown allows", async function () {
      const server = await startJwks([keys.primary]);
      const authoriser = directAuthoriser(server.url, { jwks: { cooldownDuration: 0 } });
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${await sotc()}`), LOGGED_IN);
      server.published = [keys.primary, keys.secondary];
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${await sotc({}, PROFILE, keys.secondary)}`), LOGGED_IN);
      assert.equal(server.fetches, 2);
    });

    it("denies, uncached, when the accepted API keys cannot be read", async function () {
      const authoriser = directAuthoriser(jwksServer.url, {
        readApiKeys: () => Promise.reject(new Error(`secretsmanager GetSecretValue ${SECRET_ARN} failed: AccessDeniedException`)),
      });
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${await sotc()}`), DENIED_UNCACHED);
      assert.deepEqual(await authoriser.authorise(API_KEY), DENIED_UNCACHED);
      const line = linesAt(authoriser.logs, "ERROR")[0];
      assert.equal(line?.message, "denied: the accepted API keys could not be read");
      assert.match(JSON.stringify(line?.error), /AccessDeniedException/);
    });

    it("denies, uncached, while the API-keys secret cannot be read, and authorises once the failure window has passed", async function () {
      let readable = false;
      let clock = NOW_SECONDS * 1000;
      const secrets = await startSecrets(() => (readable ? { apiKeys: [API_KEY] } : ACCESS_DENIED));
      ownServers.push(secrets);
      const read = createSecretReader({
        secretId: SECRET_ARN,
        schema: z.object({ apiKeys: z.array(z.string()) }),
        maxAgeMs: 300_000,
        client: secretsManagerClient(secrets),
        now: () => clock,
      });
      const authoriser = directAuthoriser(jwksServer.url, { readApiKeys: async () => (await read()).apiKeys });
      const token = await sotc();
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), DENIED_UNCACHED);
      readable = true;
      // Remembered: still denied, and Secrets Manager is not asked again.
      clock += DEFAULT_FAILURE_MEMORY_MS - 1;
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), DENIED_UNCACHED);
      assert.equal(secrets.requests.length, 1);
      clock += 1;
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_IN);
      assert.equal(secrets.requests.length, 2);
    });

    it("logs why it denies a wrong API key, without the key", async function () {
      const wrongKey = "11111111-2222-4333-8444-555555555555";
      const token = await sotc();
      assert.deepEqual(await subject.authorise(`${wrongKey}:${token}`), DENIED);
      assert.equal(subject.logs.length, 1);
      const [line] = subject.logs;
      assert.equal(line.level, "WARN");
      assert.equal(line.message, "denied: API key is not accepted");
      assert.equal(line.apiKeyLength, wrongKey.length);
      assert.equal(line.operation, "MyNewTask");
      assert.match(String(line.requestId), /^b80ed838-/);
      const text = JSON.stringify(line);
      assert.ok(!text.includes(wrongKey) && !text.includes(token));
    });

    it("logs why a SOTC could not be verified while the JWKS is down", async function () {
      const server = await startJwks([keys.primary]);
      server.mode = "unavailable";
      const authoriser = directAuthoriser(server.url);
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${await sotc()}`), LOGGED_OUT_UNCACHED);
      const line = linesAt(authoriser.logs, "ERROR")[0];
      assert.equal(line?.message, "logged out, uncached: SOTC could not be verified");
      assert.deepEqual(line?.error, {
        message: "Expected 200 OK from the JSON Web Key Set HTTP response",
        code: "ERR_JOSE_GENERIC",
      });
    });

    it("logs the reason a SOTC was rejected, at INFO", async function () {
      assert.deepEqual(await subject.authorise(`${API_KEY}:${await sotc({ issuer: "https://elsewhere.test/" })}`), LOGGED_OUT);
      const line = subject.logs.find((log) => log.message === "logged out: SOTC rejected");
      assert.equal(line?.level, "INFO");
      assert.equal((line?.reason as { code?: string }).code, "ERR_JWT_CLAIM_VALIDATION_FAILED");
    });

    it("never writes an API key or a SOTC (or any part of one) to its logs", async function () {
      const down = await startJwks([keys.primary]);
      down.mode = "unavailable";
      const unreachable = directAuthoriser(down.url);
      const valid = await sotc();
      const tokens = [
        valid,
        await sotc({ expiresAt: NOW_SECONDS - 3600, issuedAt: NOW_SECONDS - 7200 }),
        await sotc({ issuer: "https://elsewhere.test/" }),
        await sotc({ subject: null }),
        await sotc({}, PROFILE, keys.secondary),
        withFlippedSignatureBit(valid),
        unsecuredToken(payloadOf(valid)),
        await hmacWithPublicKey(keys.primary, payloadOf(valid)),
        "not-a-jwt-but-secret",
      ];
      for (const token of tokens) {
        for (const authoriser of [subject, unreachable]) {
          await authoriser.authorise(`${API_KEY}:${token}`);
          await authoriser.authorise(`wrong-${API_KEY}:${token}`);
          await authoriser.authorise(token);
        }
      }
      const logs = [...subject.logs, ...unreachable.logs];
      assert.ok(logs.length >= tokens.length * 4, `expected the authoriser to log its decisions, got ${logs.length} lines`);
      const secrets = [API_KEY, ...tokens.flatMap((token) => token.split(".")).filter((part) => part.length >= 8)];
      for (const line of logs) {
        const text = JSON.stringify(line);
        for (const secret of secrets) assert.ok(!text.includes(secret), `log line leaks a secret: ${text}`);
      }
    });
  });

  describe("built by its factory, as Lambda runs it", function () {
    let secretsManager: WireServer;
    let apiKeysReadable = true;
    let restoreEnvironment: () => void;
    let handler: Handler;
    let subject: Authoriser;
    const UNREADABLE_SECRET_ARN = `${SECRET_ARN}-unreadable`;

    before(async function () {
      secretsManager = await startSecrets((secretId) => {
        if (secretId === SECRET_ARN) return { apiKeys: [API_KEY, ROTATED_API_KEY] };
        if (secretId === UNREADABLE_SECRET_ARN) return apiKeysReadable ? { apiKeys: [API_KEY] } : ACCESS_DENIED;
        return undefined;
      });
      restoreEnvironment = setEnvironment({
        ...BASE_VARS,
        JWKS_URL: jwksServer.url,
        ...LAMBDA_AWS,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsManager.url,
        AWS_LAMBDA_LOG_LEVEL: undefined,
        POWERTOOLS_LOG_LEVEL: "DEBUG",
      });
      handler = validateToken.factory();
      subject = recording(handler);
    });
    after(async function () {
      restoreEnvironment?.();
      await secretsManager?.close();
    });

    /** Another cold start, with some variables changed while the factory reads them. */
    function coldStart(vars: Record<string, string>): Authoriser {
      const restore = setEnvironment(vars);
      try {
        return recording(validateToken.factory());
      } finally {
        restore();
      }
    }

    const realNow = () => Math.floor(Date.now() / 1000);
    const sotc = (options?: SotcOptions, claims?: JWTPayload, key?: SigningKey) => sotcAt(realNow(), options, claims, key);

    answersAsSpecified(() => subject, realNow);

    it("reads the API keys from the configured secret once per period, through the Secrets Manager endpoint", async function () {
      const before = secretsManager.requests.length;
      const authoriser = coldStart({});
      const token = await sotc();
      for (let i = 0; i < 10; i++) assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_IN);
      const requests = secretsManager.requests.slice(before);
      assert.equal(requests.length, 1);
      assert.equal(operationOf(requests[0]), "GetSecretValue");
      assert.deepEqual(JSON.parse(requests[0].body), { SecretId: SECRET_ARN });
      assert.match(String(requests[0].headers.authorization), /Credential=test\/\d{8}\/us-east-1\/secretsmanager\/aws4_request/);
    });

    it("fetches the JWKS once, and unknown kids cannot make it fetch again within the cooldown", async function () {
      const server = await startJwks([keys.primary]);
      const authoriser = coldStart({ JWKS_URL: server.url });
      const token = await sotc();
      const stranger = await sotc({}, PROFILE, keys.secondary);
      for (let i = 0; i < 5; i++) {
        assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_IN);
        assert.deepEqual(await authoriser.authorise(`${API_KEY}:${stranger}`), LOGGED_OUT);
      }
      assert.equal(server.fetches, 1);
    });

    it("answers logged out and uncached while the JWKS is down, and logs in again once it is back", async function () {
      const server = await startJwks([keys.primary]);
      server.mode = "unavailable";
      const authoriser = coldStart({ JWKS_URL: server.url });
      const token = await sotc();
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_OUT_UNCACHED);
      const line = linesAt(authoriser.logs, "ERROR")[0];
      assert.equal(line?.message, "logged out, uncached: SOTC could not be verified");
      assert.equal(line?.service, "validateToken");
      server.mode = "up";
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), LOGGED_IN);
    });

    it("answers logged out and uncached when the JWKS does not answer within JWKS_TIMEOUT_MS", async function () {
      const server = await startJwks([keys.primary], { hangMs: 600 });
      server.mode = "hang";
      const authoriser = coldStart({ JWKS_URL: server.url, JWKS_TIMEOUT_MS: "100" });
      assert.deepEqual(await authoriser.authorise(`${API_KEY}:${await sotc()}`), LOGGED_OUT_UNCACHED);
      const line = linesAt(authoriser.logs, "ERROR")[0];
      assert.equal((line?.error as { code?: string }).code, "ERR_JWKS_TIMEOUT");
    });

    it("denies, uncached, while the API-keys secret cannot be read, asking Secrets Manager once for the failure window", async function () {
      apiKeysReadable = false;
      try {
        const asked = () =>
          secretsManager.requests.filter((request) => JSON.parse(request.body).SecretId === UNREADABLE_SECRET_ARN).length;
        const before = asked();
        const token = await sotc();
        const authoriser = coldStart({ API_KEYS_SECRET_ARN: UNREADABLE_SECRET_ARN });
        assert.deepEqual(await authoriser.authorise(`${API_KEY}:${token}`), DENIED_UNCACHED);
        assert.deepEqual(await authoriser.authorise(API_KEY), DENIED_UNCACHED);
        const lines = linesAt(authoriser.logs, "ERROR");
        assert.deepEqual(
          lines.map((line) => line.message),
          ["denied: the accepted API keys could not be read", "denied: the accepted API keys could not be read"],
        );
        for (const line of lines) {
          const error = JSON.stringify(line.error);
          assert.ok(error.includes(UNREADABLE_SECRET_ARN) && error.includes("AccessDeniedException"), error);
        }
        assert.match(JSON.stringify(lines[1]!.error), /remembered/);
        // The read the factory starts at cold start, and no other within DEFAULT_FAILURE_MEMORY_MS.
        assert.equal(asked() - before, 1);
      } finally {
        apiKeysReadable = true;
      }
    });

    describe("while Secrets Manager hangs", function () {
      let hanging: SilentServer;
      let restore: () => void;
      before(async function () {
        hanging = await startSilentServer();
        restore = setEnvironment({ AWS_ENDPOINT_URL_SECRETS_MANAGER: hanging.url });
      });
      after(async function () {
        restore?.();
        await hanging?.close();
      });

      it("denies, uncached, within its budget: the answer does not wait for the hanging fetch, which stays bounded", async function () {
        const { maxAttempts } = AWS_CLIENT_BOUNDS.authoriser.secretsManager;
        const token = await sotc();
        const authoriser = coldStart({});
        const answer = await authoriser.authorise(`${API_KEY}:${token}`);
        // Taken the moment the answer arrives: the fetch's request is still open, its retry not yet made.
        const atAnswer = { requests: hanging.requests, ended: hanging.closed };
        assert.deepEqual(answer, DENIED_UNCACHED);
        assert.equal(atAnswer.ended, 0, "a request of the fetch had ended before the answer");
        assert.ok(atAnswer.requests < maxAttempts, `all ${maxAttempts} attempts were made before the answer`);
        const line = linesAt(authoriser.logs, "ERROR")[0];
        assert.equal(line?.message, "denied: the accepted API keys could not be read");
        assert.match(String((line?.error as { message: string }).message), new RegExp(`within ${AUTHORISER_SECRET_WAIT_MS} ms`));

        // The fetch gives up on the client's bounds, with the SDK's TimeoutError, and is not made again.
        await waitUntil(() => hanging.closed >= maxAttempts, "the hanging fetch to give up");
        assert.deepEqual(await authoriser.authorise(API_KEY), DENIED_UNCACHED);
        assert.match(JSON.stringify(linesAt(authoriser.logs, "ERROR")[1]?.error), /TimeoutError/);
        assert.equal(hanging.requests, maxAttempts);
      });
    });

    it("logs why it denies a wrong API key, and never the key or the SOTC", async function () {
      const authoriser = coldStart({});
      const wrongKey = "99999999-8888-4777-8666-555555555555";
      const token = await sotc();
      assert.deepEqual(await authoriser.authorise(`${wrongKey}:${token}`), DENIED);
      const line = authoriser.logs.find((log) => log.message === "denied: API key is not accepted");
      assert.equal(line?.level, "WARN");
      assert.equal(line?.apiKeyLength, wrongKey.length);
      for (const log of [...authoriser.logs, ...subject.logs]) {
        const text = JSON.stringify(log);
        assert.ok(!text.includes(wrongKey) && !text.includes(API_KEY) && !text.includes(token.split(".")[2]), text);
      }
    });
  });
});

describe("validateToken rules (authorize.ts)", function () {
  /** Strings of arbitrary UTF-16 code units, lone surrogates included. */
  const anyString = (constraints: { minLength?: number; maxLength?: number } = {}) =>
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)), ...constraints });
  const withColons = fc.string({ unit: fc.constantFrom(":", "a", "Z", "9", ".", "-", "é", "\ud83d") });

  describe("splitAuthorizationToken", function () {
    it("splits at the first colon", function () {
      assert.deepEqual(splitAuthorizationToken("key"), { apiKey: "key" });
      assert.deepEqual(splitAuthorizationToken("key:a.b.c"), { apiKey: "key", sotc: "a.b.c" });
      assert.deepEqual(splitAuthorizationToken("key:a:b"), { apiKey: "key", sotc: "a:b" });
      assert.deepEqual(splitAuthorizationToken(":a.b.c"), { apiKey: "", sotc: "a.b.c" });
      assert.deepEqual(splitAuthorizationToken("key:"), { apiKey: "key" });
      assert.deepEqual(splitAuthorizationToken("key::"), { apiKey: "key", sotc: ":" });
      assert.deepEqual(splitAuthorizationToken(""), { apiKey: "" });
    });

    it("for any string: the key is everything before the first colon, the SOTC everything after (absent when empty)", function () {
      fc.assert(
        fc.property(fc.oneof(anyString(), withColons), (token) => {
          const split = splitAuthorizationToken(token);
          const colon = token.indexOf(":");
          if (colon < 0) {
            assert.deepEqual(split, { apiKey: token });
          } else {
            const rest = token.slice(colon + 1);
            assert.deepEqual(
              split,
              rest === "" ? { apiKey: token.slice(0, colon) } : { apiKey: token.slice(0, colon), sotc: rest },
            );
          }
          assert.ok(!split.apiKey.includes(":"));
        }),
      );
    });

    it("gives back the key and SOTC it was joined from", function () {
      fc.assert(
        fc.property(
          anyString().filter((key) => !key.includes(":")),
          fc.oneof(
            anyString({ minLength: 1 }),
            withColons.filter((sotc) => sotc.length > 0),
          ),
          (apiKey, sotc) => {
            assert.deepEqual(splitAuthorizationToken(`${apiKey}:${sotc}`), { apiKey, sotc });
          },
        ),
      );
    });
  });

  describe("isAcceptedApiKey", function () {
    it("accepts exactly the listed keys", function () {
      assert.equal(isAcceptedApiKey(API_KEY, [API_KEY]), true);
      assert.equal(isAcceptedApiKey(ROTATED_API_KEY, [API_KEY, ROTATED_API_KEY]), true);
      assert.equal(isAcceptedApiKey(API_KEY, [ROTATED_API_KEY, API_KEY]), true);
      assert.equal(isAcceptedApiKey(API_KEY.slice(0, -1), [API_KEY]), false);
      assert.equal(isAcceptedApiKey(`${API_KEY}F`, [API_KEY]), false);
      assert.equal(isAcceptedApiKey(API_KEY.toLowerCase(), [API_KEY]), false);
      assert.equal(isAcceptedApiKey(API_KEY, []), false);
    });

    it("never accepts an empty key, even if one is listed", function () {
      assert.equal(isAcceptedApiKey("", [""]), false);
      assert.equal(isAcceptedApiKey("", [API_KEY, ""]), false);
    });

    it("tells apart keys that differ only in unpaired surrogates or U+FFFD", function () {
      assert.equal(isAcceptedApiKey("key-\ud800", ["key-\ud801"]), false);
      assert.equal(isAcceptedApiKey("key-\ud800", ["key-\ufffd"]), false);
      assert.equal(isAcceptedApiKey("key-\ufffd", ["key-\udfff"]), false);
      assert.equal(isAcceptedApiKey("key-\ud800", ["key-\ud800"]), true);
    });

    it("is true iff the candidate is a non-empty member of the list", function () {
      // Short strings over an alphabet of look-alikes (unpaired surrogates, U+FFFD, composed and
      // decomposed é) collide often, so equality is tested where an encoding could blur it.
      const lookAlike = fc.string({
        unit: fc.constantFrom("a", "A", "\ud800", "\ud801", "\udc00", "\ufffd", "\u00e9", "e\u0301"),
        maxLength: 2,
      });
      for (const key of [anyString({ maxLength: 12 }), lookAlike]) {
        fc.assert(
          fc.property(key, fc.array(key, { maxLength: 6 }), (candidate, accepted) => {
            assert.equal(isAcceptedApiKey(candidate, accepted), candidate.length > 0 && accepted.includes(candidate));
          }),
        );
      }
    });

    it("accepts a listed key wherever it sits, and refuses every near miss of it", function () {
      const nearMiss = (key: string) =>
        fc.oneof(
          fc.constant(key.slice(0, -1)),
          anyString({ minLength: 1, maxLength: 2 }).map((extra) => key + extra),
          fc
            .nat({ max: key.length - 1 })
            .chain((at) => anyString({ minLength: 1, maxLength: 1 }).map((c) => key.slice(0, at) + c + key.slice(at + 1))),
        );
      fc.assert(
        fc.property(
          anyString({ minLength: 1, maxLength: 40 }).chain((key) => fc.tuple(fc.constant(key), nearMiss(key))),
          fc.array(anyString({ minLength: 1, maxLength: 40 }), { maxLength: 4 }),
          fc.nat(),
          ([key, miss], others, position) => {
            const accepted = others.filter((other) => other !== miss);
            accepted.splice(position % (accepted.length + 1), 0, key);
            assert.equal(isAcceptedApiKey(key, accepted), true);
            if (miss !== key) assert.equal(isAcceptedApiKey(miss, accepted), false);
          },
        ),
      );
    });
  });

  describe("resolverContextFromClaims", function () {
    it("flattens the profile claims, lower-cases email and leaves out registered claims", function () {
      const claims = { ...PROFILE, iss: ISSUER, sub: GLOBAL_USER_ID, aud: AUDIENCE, exp: 2, nbf: 1, iat: 1 };
      assert.deepEqual(resolverContextFromClaims(claims, "sub"), LOGGED_IN_CONTEXT);
    });

    it("flattens deeply nested claims, joins lists, stringifies objects in lists and drops nulls", function () {
      const claims = {
        sub: "gu-1",
        prefs: { marketing: { email: false, sms: true }, tz: null },
        memberships: [{ id: 1 }, "gold"],
        nothing: null,
        empty: "",
        zero: 0,
      };
      assert.deepEqual(resolverContextFromClaims(claims, "sub"), {
        isLoggedIn: "true",
        globalUserId: "gu-1",
        "prefs.marketing.email": "false",
        "prefs.marketing.sms": "true",
        memberships: '{"id":1},gold',
        empty: "",
        zero: "0",
      });
    });

    it("has no context for a token without a usable globalUserId", function () {
      assert.equal(resolverContextFromClaims({ email: "a@b.c" }, "sub"), undefined);
      assert.equal(resolverContextFromClaims({ sub: "" }, "sub"), undefined);
      assert.equal(resolverContextFromClaims({ sub: 42 }, "sub"), undefined);
      assert.equal(resolverContextFromClaims({ sub: ["gu-1"] }, "sub"), undefined);
      assert.equal(resolverContextFromClaims({ sub: "gu-1" }, "guid"), undefined);
    });

    it("keeps isLoggedIn and globalUserId out of the claims' reach", function () {
      assert.deepEqual(resolverContextFromClaims({ sub: "gu-1", isLoggedIn: "false", globalUserId: "gu-2" }, "sub"), {
        isLoggedIn: "true",
        globalUserId: "gu-1",
      });
    });

    it("takes globalUserId from the claim named, and does not repeat that claim", function () {
      assert.deepEqual(resolverContextFromClaims({ sub: "auth0|1", guid: "gu-1", tier: "gold" }, "guid"), {
        isLoggedIn: "true",
        globalUserId: "gu-1",
        tier: "gold",
      });
    });

    it("for any claims: one level of strings, logged in, the user id from its claim, no registered claims", function () {
      // Claim names without dots, so flattened names cannot collide. A `__proto__` claim is dropped
      // (assigning a string to it is a no-op, so nothing is polluted); it is left out here.
      const key = fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,11}$/).filter((name) => name !== "__proto__");
      const scalar = fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.double({ noNaN: true }));
      fc.assert(
        fc.property(
          fc.dictionary(
            key,
            fc.oneof(scalar, fc.array(scalar, { maxLength: 3 }), fc.dictionary(key, scalar, { maxKeys: 3 }), fc.constant(null)),
          ),
          fc.string({ minLength: 1 }),
          (profile, userId) => {
            const claims: Record<string, unknown> = { ...profile, sub: userId, iss: ISSUER, exp: 1, iat: 0, jti: "j" };
            const context = resolverContextFromClaims(claims, "sub");
            assert.ok(context);
            assert.equal(context.isLoggedIn, "true");
            assert.equal(context.globalUserId, userId);
            for (const value of Object.values(context)) assert.equal(typeof value, "string");
            for (const claim of REGISTERED_CLAIMS) assert.ok(!(claim in context), claim);
            for (const [claim, value] of Object.entries(profile)) {
              if (REGISTERED_CLAIMS.includes(claim) || claim === "isLoggedIn" || claim === "globalUserId") continue;
              if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
                assert.equal(context[claim], claim === "email" ? String(value).toLowerCase() : String(value));
              }
            }
          },
        ),
      );
    });
  });

  describe("loggedInTtl", function () {
    it("is the configured bound, cut short by the token's expiry, never negative", function () {
      assert.equal(loggedInTtl(300, undefined, 1000), 300);
      assert.equal(loggedInTtl(300, 1090, 1000), 90);
      assert.equal(loggedInTtl(300, 1090, 1000.4), 89);
      assert.equal(loggedInTtl(300, 5000, 1000), 300);
      assert.equal(loggedInTtl(300, 1000, 1000), 0);
      assert.equal(loggedInTtl(300, 990, 1000), 0);
      assert.equal(loggedInTtl(0, 5000, 1000), 0);
    });

    it("for any times: a whole number of seconds between 0 and the bound, never reaching past expiry", function () {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 3600 }),
          fc.integer({ min: 1_600_000_000, max: 2_000_000_000 }),
          fc.double({ min: 1_600_000_000, max: 2_000_000_000, noNaN: true }),
          (max, expiresAt, now) => {
            const ttl = loggedInTtl(max, expiresAt, now);
            assert.ok(Number.isInteger(ttl) && ttl >= 0 && ttl <= max, String(ttl));
            assert.ok(now + ttl <= Math.max(now, expiresAt));
            if (expiresAt - now >= max) assert.equal(ttl, max);
          },
        ),
      );
    });
  });

  describe("isTokenError", function () {
    it("blames the token for claim, signature, algorithm and key-matching failures", function () {
      for (const error of [
        new errors.JWTExpired("expired", {}),
        new errors.JWTClaimValidationFailed("iss", {}),
        new errors.JWTInvalid(),
        new errors.JWSInvalid(),
        new errors.JWSSignatureVerificationFailed(),
        new errors.JOSEAlgNotAllowed(),
        new errors.JOSENotSupported(),
        new errors.JWKSNoMatchingKey(),
        new errors.JWKSMultipleMatchingKeys(),
      ]) {
        assert.equal(isTokenError(error), true, error.code);
      }
    });

    it("blames the system for JWKS faults and anything else", function () {
      for (const error of [
        new errors.JWKSTimeout(),
        new errors.JOSEError("Expected 200 OK from the JSON Web Key Set HTTP response"),
        new errors.JWKSInvalid(),
        new errors.JWKInvalid(),
        new TypeError("fetch failed"),
        new Error("boom"),
        undefined,
        null,
        "ERR_JWT_EXPIRED",
      ]) {
        assert.equal(isTokenError(error), false, String(error));
      }
    });
  });
});
