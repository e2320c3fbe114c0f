import { SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type BatchOptions, batchPutItems, createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger, type Logger } from "../shared/runtime/logging";
import { createWorkerMetrics, discardedMetrics, failureReasonOf, type WorkerMetrics } from "../shared/runtime/metrics";
import { createModelClientFromEnvironment, type ModelClient } from "../shared/scoring/modelServing";
import { createStreamScorer, type ScoredFan, type WriteOutcome } from "../shared/scoring/score";
import { KEY, RECORD_TYPES, stagingKey } from "../shared/scoring/table";
import type { ScoringEnvironment } from "../shared/scoring/scoringEnvironment";
import { stagingScoreUsersContract } from "./contract";

/**
 * The staging item for a fan's score. Its own item, never the fan record: the fan record's
 * stream events stay those of the production scorer, and a staging write is not an activityData
 * change, so it is never scored again.
 */
export function stagingScoreItem(scored: ScoredFan, version: string, now: string) {
  return {
    [KEY]: stagingKey(scored.globalUserId),
    type: RECORD_TYPES.stagingScore,
    globalUserId: scored.globalUserId,
    score: scored.score,
    version,
    dateUpdated: now,
  };
}

export interface StagingScoreUsersDependencies {
  readonly env: Pick<ScoringEnvironment, "TABLE_NAME" | "MODEL_VERSION" | "MODEL_BATCH_SIZE" | "FAILURE_QUEUE_URL">;
  readonly logger: Logger;
  readonly documents: DynamoDBDocumentClient;
  /** Sends the records that can never be scored to the failure queue. */
  readonly sqs: SQSClient;
  readonly model: ModelClient;
  readonly now?: () => Date;
  /** Attempts and backoff of the batch writes. */
  readonly batchOptions?: BatchOptions;
  /** Records, and scores written by model version. @default none */
  readonly metrics?: WorkerMetrics;
}

/** Scores the batch's fans with the staging model and puts the staging items, 25 per call. */
export function createStagingScoreUsers(deps: StagingScoreUsersDependencies) {
  const { env, logger, documents } = deps;
  const now = deps.now ?? (() => new Date());
  const metrics = deps.metrics ?? discardedMetrics();

  async function writeStagingScores(scores: readonly ScoredFan[]): Promise<WriteOutcome> {
    const at = now().toISOString();
    const items = scores.map((scored) => stagingScoreItem(scored, env.MODEL_VERSION, at));
    // Whole-item puts, not UpdateItem SET: the staging item is this worker's alone (no other
    // writer, and no worker reads it), each score replaces it entirely, and BatchWriteItem writes
    // 25 per call where UpdateItem writes one (docs/rules.md#batching). An attribute a newer
    // version of this worker adds is dropped only while an older version still runs, and written
    // again by the next score.
    const { unwritten, calls } = await batchPutItems(documents, env.TABLE_NAME, KEY, items, deps.batchOptions);
    const correlationIds = new Map(scores.map((scored) => [scored.globalUserId, scored.correlationId]));
    const notStored = new Set(unwritten.map(({ item }) => String(item.globalUserId)));
    for (const { item, reason } of unwritten) {
      const globalUserId = String(item.globalUserId);
      logger.error("staging score not stored", { globalUserId, correlationId: correlationIds.get(globalUserId), reason });
    }
    for (const scored of scores) {
      if (notStored.has(scored.globalUserId)) continue;
      logger.info("staging score stored", {
        globalUserId: scored.globalUserId,
        correlationId: scored.correlationId,
        score: scored.score,
        version: env.MODEL_VERSION,
      });
    }
    metrics.scoresWritten(env.MODEL_VERSION, items.length - unwritten.length);
    return {
      failed: unwritten.map(({ item, reason }) => ({
        globalUserId: String(item.globalUserId),
        reason,
        // Items BatchWriteItem left unprocessed through every retry, or a call that failed.
        kind: reason.startsWith("still unprocessed") ? ("unprocessed" as const) : failureReasonOf(reason),
      })),
      stats: { batchWriteCalls: calls },
    };
  }

  return createStreamScorer({
    worker: stagingScoreUsersContract.name,
    logger,
    sqs: deps.sqs,
    failureQueueUrl: env.FAILURE_QUEUE_URL,
    model: deps.model,
    modelBatchSize: env.MODEL_BATCH_SIZE,
    write: writeStagingScores,
    metrics,
  });
}

export const stagingScoreUsers = defineWorker(stagingScoreUsersContract, () => {
  const env = loadEnvironment(stagingScoreUsersContract);
  const logger = createLogger(stagingScoreUsersContract);
  const metrics = createWorkerMetrics(stagingScoreUsersContract);
  const model = createModelClientFromEnvironment(env, { service: "staging scoring model", logger, metrics });
  const documents = createDocumentClient(new DynamoDBClient(awsClientConfig(AWS_CLIENT_BOUNDS.scoring.dynamoDb)));
  const handler = createStagingScoreUsers({
    env,
    logger,
    documents,
    sqs: new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.scoring.sqs)),
    model,
    metrics,
  });
  return instrumentHandler({ logger, metrics }, handler);
});
