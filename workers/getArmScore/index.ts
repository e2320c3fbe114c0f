import { defineWorker } from "../shared/runtime/contract";
import { loadEnvironment } from "../shared/runtime/environment";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger, type Logger } from "../shared/runtime/logging";
import { createWorkerMetrics, discardedMetrics, type WorkerMetrics } from "../shared/runtime/metrics";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import { armKey, type ArmScoreAnswer, readArmScore, requestedFan } from "../shared/scoring/armScore";
import { getArmScoreContract } from "./contract";
import { type ArmRedisReader, createArmRedisReader, isRedisReadError } from "./redis";

export type { ArmScoreAnswer } from "../shared/scoring/armScore";

export interface GetArmScoreDependencies {
  readonly redis: Pick<ArmRedisReader, "get" | "target">;
  readonly logger: Logger;
  /** The outcome of each request (counted processed by the handler wrapper unless failed here). @default none */
  readonly metrics?: WorkerMetrics;
}

/** A key holding another type than a string: Redis' answer, read as a bad value, not a failed call. */
const isWrongType = (error: unknown) => isRedisReadError(error) && error.reply?.startsWith("WRONGTYPE") === true;

/** The function itself, with its Redis reader passed in. */
export function createGetArmScore(deps: GetArmScoreDependencies) {
  const { redis, logger } = deps;
  const metrics = deps.metrics ?? discardedMetrics();
  const worker = getArmScoreContract.name;

  return async function getArmScore(event: unknown): Promise<ArmScoreAnswer> {
    const requested = requestedFan(event);
    if (!requested.ok) {
      logger.error("no fan to answer for", { reason: requested.reason });
      metrics.failed("invalid");
      throw new Error(`${worker}: ${requested.reason}`);
    }
    const { globalUserId } = requested;
    const key = armKey(globalUserId);

    let stored: string | null;
    try {
      stored = await redis.get(key);
    } catch (error) {
      // A key holding another type than a string is a bad value, like one that is not JSON.
      if (isWrongType(error) && isRedisReadError(error)) {
        logger.warn("invalid ARM score: answering null", {
          globalUserId,
          key,
          reason: "key does not hold a string",
          value: error.reply,
        });
        return { armScore: null };
      }
      const message = (error as Error).message;
      logger.error("ARM score not read", { globalUserId, key, redis: redis.target, error: message });
      metrics.failed("dependency");
      throw new Error(`${worker}: ARM score of ${globalUserId} not read: ${message}`, { cause: error });
    }

    const reading = readArmScore(globalUserId, stored);
    if (reading.invalid) {
      logger.warn("invalid ARM score: answering null", {
        globalUserId,
        key,
        reason: reading.invalid.reason,
        value: reading.invalid.value,
      });
    }
    logger.debug("ARM score answered", { globalUserId, via: requested.via, armScore: reading.armScore, found: stored !== null });
    return { armScore: reading.armScore };
  };
}

export const getArmScore = defineWorker(getArmScoreContract, () => {
  const env = loadEnvironment(getArmScoreContract);
  const logger = createLogger(getArmScoreContract);
  // Built once per container: its connection is kept across invocations.
  const redis = createArmRedisReader({
    url: env.ARM_REDIS_URL,
    readOnlyUrl: env.ARM_REDIS_READ_ONLY_URL,
    clusterMode: env.ARM_REDIS_CLUSTER_MODE,
    connectTimeoutMs: env.ARM_REDIS_CONNECT_TIMEOUT_MS,
    commandTimeoutMs: env.ARM_REDIS_COMMAND_TIMEOUT_MS,
    connectionName: getArmScoreContract.name,
  });
  const metrics = createWorkerMetrics(getArmScoreContract);
  const redisCalls = metrics.calls(DEPENDENCIES.redis);
  const handler = createGetArmScore({
    redis: {
      target: redis.target,
      get: (key) =>
        redisCalls(
          () => redis.get(key),
          (error) => !isWrongType(error),
        ),
    },
    logger,
    metrics,
  });
  return instrumentHandler({ logger, metrics, request: true }, handler);
});
