import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { createRemoteJWKSet, customFetch, jwtVerify, type JWTVerifyGetKey } from "jose";
import { z } from "../shared/zod";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { loadEnvironment } from "../shared/runtime/environment";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger, describeError, type Logger } from "../shared/runtime/logging";
import { createWorkerMetrics, discardedMetrics, type WorkerMetrics } from "../shared/runtime/metrics";
import { createSecretReader } from "../shared/runtime/secrets";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import {
  type AppSyncAuthorizerEvent,
  type AppSyncAuthorizerResult,
  isAcceptedApiKey,
  isTokenError,
  LOGGED_OUT,
  loggedInTtl,
  resolverContextFromClaims,
  splitAuthorizationToken,
} from "./authorize";
import { validateTokenContract, type ValidateTokenEnvironment } from "./contract";

/**
 * The longest an answer waits for the API keys. They are fetched at cold start and once per
 * API_KEYS_MAX_AGE_SECONDS, so only the request that meets a refresh (or a cold container's first
 * one, when the fetch begun at start has not ended) waits at all; that wait must not let a slow or
 * hanging Secrets Manager push the authoriser past its budget (docs/flows.md#authorisation: p99
 * well under 200 ms, JWKS_TIMEOUT_MS bounding the one other call). Past it a refresh serves the keys it has, and a
 * cold read denies, uncached. 300 ms is ten times a normal GetSecretValue, TLS handshake included.
 */
export const AUTHORISER_SECRET_WAIT_MS = 300;

export interface ValidateTokenDependencies {
  readonly env: ValidateTokenEnvironment;
  readonly readApiKeys: () => Promise<readonly string[]>;
  readonly jwks: JWTVerifyGetKey;
  readonly logger: Logger;
  readonly now?: () => number;
  /** The outcome of each request (counted processed by the handler wrapper unless failed here). @default none */
  readonly metrics?: WorkerMetrics;
}

/** The authoriser itself, with its dependencies passed in. */
export function createValidateToken(deps: ValidateTokenDependencies) {
  const { env, logger } = deps;
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? discardedMetrics();

  return async function validateToken(event: AppSyncAuthorizerEvent): Promise<AppSyncAuthorizerResult> {
    logger.appendKeys({ requestId: event.requestContext?.requestId, operation: event.requestContext?.operationName });
    if (typeof event.authorizationToken !== "string" || event.authorizationToken.length === 0) {
      logger.warn("denied: request carries no authorization token");
      return { isAuthorized: false };
    }
    const { apiKey, sotc } = splitAuthorizationToken(event.authorizationToken);

    let acceptedKeys: readonly string[];
    try {
      acceptedKeys = await deps.readApiKeys();
    } catch (error) {
      logger.error("denied: the accepted API keys could not be read", { error: describeError(error) });
      metrics.failed("dependency");
      return { isAuthorized: false, ttlOverride: 0 };
    }
    if (!isAcceptedApiKey(apiKey, acceptedKeys)) {
      logger.warn("denied: API key is not accepted", { apiKeyLength: apiKey.length });
      return { isAuthorized: false };
    }
    if (sotc === undefined) return { isAuthorized: true, resolverContext: { ...LOGGED_OUT } };

    try {
      const { payload } = await jwtVerify(sotc, deps.jwks, {
        issuer: env.JWT_ISSUER,
        audience: env.JWT_AUDIENCE,
        algorithms: env.JWT_ALGORITHMS,
        clockTolerance: env.JWT_CLOCK_TOLERANCE_SECONDS,
        currentDate: new Date(now()),
        // A session token that never expires would log its bearer in for good: refused (invalid).
        requiredClaims: ["exp"],
      });
      const resolverContext = resolverContextFromClaims(payload, env.JWT_USER_ID_CLAIM);
      if (!resolverContext) {
        logger.warn("logged out: SOTC carries no globalUserId", { claim: env.JWT_USER_ID_CLAIM });
        return { isAuthorized: true, resolverContext: { ...LOGGED_OUT } };
      }
      return {
        isAuthorized: true,
        resolverContext,
        ttlOverride: loggedInTtl(env.AUTHORIZED_TTL_SECONDS, payload.exp, now() / 1000),
      };
    } catch (error) {
      if (isTokenError(error)) {
        logger.info("logged out: SOTC rejected", { reason: describeError(error) });
        return { isAuthorized: true, resolverContext: { ...LOGGED_OUT } };
      }
      // The token may be fine; we could not check it. Answer logged out, and keep AppSync from
      // caching that answer so the fan is logged in again as soon as the JWKS is reachable.
      logger.error("logged out, uncached: SOTC could not be verified", { error: describeError(error) });
      metrics.failed("dependency");
      return { isAuthorized: true, resolverContext: { ...LOGGED_OUT }, ttlOverride: 0 };
    }
  };
}

export const validateToken = defineWorker(validateTokenContract, () => {
  const env = loadEnvironment(validateTokenContract);
  const logger = createLogger(validateTokenContract);
  const metrics = createWorkerMetrics(validateTokenContract);
  const jwksCalls = metrics.calls(DEPENDENCIES.jwks);
  const readApiKeys = createSecretReader({
    secretId: env.API_KEYS_SECRET_ARN,
    schema: z.object({ apiKeys: z.array(z.string().check(z.minLength(1))).check(z.minLength(1)) }),
    maxAgeMs: env.API_KEYS_MAX_AGE_SECONDS * 1000,
    client: new SecretsManagerClient(awsClientConfig(AWS_CLIENT_BOUNDS.authoriser.secretsManager)),
    waitMs: AUTHORISER_SECRET_WAIT_MS,
    calls: metrics.calls(DEPENDENCIES.secretsManager),
    onStale: (error) => logger.warn("serving cached API keys: refresh failed", { error: describeError(error) }),
  });
  // Fetched now, at cold start, so the first request does not wait for the fetch (and its TLS
  // handshake) to begin; its outcome is cached or remembered for the reads that follow.
  readApiKeys().catch(() => undefined);
  const jwks = createRemoteJWKSet(new URL(env.JWKS_URL), {
    timeoutDuration: env.JWKS_TIMEOUT_MS,
    cacheMaxAge: env.JWKS_CACHE_MAX_AGE_SECONDS * 1000,
    cooldownDuration: 30_000,
    // Each JWKS fetch, counted and timed. An answer other than 200 counts as a failed call and
    // still goes back to jose, which reports it as it always does.
    [customFetch]: async (url, options) => {
      let answer: Response | undefined;
      try {
        await jwksCalls(async () => {
          answer = await fetch(url, options);
          if (answer.status !== 200) throw new Error(`JWKS answered HTTP ${answer.status}`);
        });
      } catch (error) {
        if (answer === undefined) throw error;
      }
      return answer!;
    },
  });
  const handler = createValidateToken({ env, logger, jwks, readApiKeys: async () => (await readApiKeys()).apiKeys, metrics });
  return instrumentHandler({ logger, metrics, request: true }, handler);
});
