import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SQSClient } from "@aws-sdk/client-sqs";
import { type DynamoDBDocumentClient, UpdateCommand, type UpdateCommandInput } from "@aws-sdk/lib-dynamodb";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger, describeError, type Logger } from "../shared/runtime/logging";
import { createWorkerMetrics, discardedMetrics, failureReasonOf, type WorkerMetrics } from "../shared/runtime/metrics";
import { mapConcurrently } from "../shared/runtime/retry";
import { createModelClientFromEnvironment, type ModelClient } from "../shared/scoring/modelServing";
import { createStreamScorer, type ScoredFan, type WriteOutcome } from "../shared/scoring/score";
import { fanKey, KEY, RECORD_TYPES } from "../shared/scoring/table";
import type { ScoringEnvironment } from "../shared/scoring/scoringEnvironment";
import { scoreUsersContract } from "./contract";

/** Score writes in flight at once: enough to keep up with a full batch, few enough not to throttle. */
export const WRITE_CONCURRENCY = 16;

/**
 * The one conditional UpdateItem storing a fan's score. The condition keeps a score computed
 * from older ARAI (a retried or late batch) from overwriting one computed from newer ARAI, and
 * a fan record deleted meanwhile from coming back as a bare score; `type=score` takes the
 * record out of the stream filter, so the write is not scored again.
 */
export function scoreUpdate(table: string, scored: ScoredFan, version: string, now: string): UpdateCommandInput {
  return {
    TableName: table,
    Key: { [KEY]: fanKey(scored.globalUserId) },
    UpdateExpression:
      "SET score = :score, scoreVersion = :version, scoredAraiVersion = :v, #type = :score_type, dateUpdated = :now, dateCreated = if_not_exists(dateCreated, :now)",
    ConditionExpression: "attribute_exists(#key) AND (attribute_not_exists(scoredAraiVersion) OR scoredAraiVersion < :v)",
    ExpressionAttributeNames: { "#type": "type", "#key": KEY },
    ExpressionAttributeValues: {
      ":score": scored.score,
      ":version": version,
      ":v": scored.araiVersion,
      ":score_type": RECORD_TYPES.score,
      ":now": now,
    },
  };
}

export interface ScoreUsersDependencies {
  readonly env: Pick<ScoringEnvironment, "TABLE_NAME" | "MODEL_VERSION" | "MODEL_BATCH_SIZE" | "FAILURE_QUEUE_URL">;
  readonly logger: Logger;
  readonly documents: DynamoDBDocumentClient;
  /** Sends the records that can never be scored to the failure queue. */
  readonly sqs: SQSClient;
  readonly model: ModelClient;
  readonly now?: () => Date;
  /** Records, and scores written by model version. @default none */
  readonly metrics?: WorkerMetrics;
}

/** Scores the batch's fans and stores each score on the fan record. */
export function createScoreUsers(deps: ScoreUsersDependencies) {
  const { env, logger, documents } = deps;
  const now = deps.now ?? (() => new Date());
  const metrics = deps.metrics ?? discardedMetrics();

  async function writeScores(scores: readonly ScoredFan[]): Promise<WriteOutcome> {
    const failed: WriteOutcome["failed"][number][] = [];
    let stale = 0;
    await mapConcurrently(scores, WRITE_CONCURRENCY, async (scored) => {
      try {
        await documents.send(new UpdateCommand(scoreUpdate(env.TABLE_NAME, scored, env.MODEL_VERSION, now().toISOString())));
        logger.info("score stored", {
          globalUserId: scored.globalUserId,
          correlationId: scored.correlationId,
          score: scored.score,
          scoreVersion: env.MODEL_VERSION,
          araiVersion: scored.araiVersion,
        });
      } catch (error) {
        if ((error as Error).name === "ConditionalCheckFailedException") {
          // Not a failure: the stored score already comes from this ARAI or a newer one, or the
          // fan record is gone.
          stale += 1;
          logger.info("score not stored: the fan was already scored from this or newer ARAI, or its record is gone", {
            globalUserId: scored.globalUserId,
            correlationId: scored.correlationId,
            araiVersion: scored.araiVersion,
          });
          return;
        }
        const { message, code } = describeError(error);
        logger.error("score not stored", {
          globalUserId: scored.globalUserId,
          correlationId: scored.correlationId,
          error: { message, code },
        });
        failed.push({
          globalUserId: scored.globalUserId,
          reason: `UpdateItem on ${env.TABLE_NAME} failed: ${code ?? "Error"}: ${message}`,
          kind: failureReasonOf(error),
        });
      }
    });
    metrics.scoresWritten(env.MODEL_VERSION, scores.length - stale - failed.length);
    return { failed, stats: { updateCalls: scores.length, stale } };
  }

  return createStreamScorer({
    worker: scoreUsersContract.name,
    logger,
    sqs: deps.sqs,
    failureQueueUrl: env.FAILURE_QUEUE_URL,
    model: deps.model,
    modelBatchSize: env.MODEL_BATCH_SIZE,
    write: writeScores,
    metrics,
  });
}

export const scoreUsers = defineWorker(scoreUsersContract, () => {
  const env = loadEnvironment(scoreUsersContract);
  const logger = createLogger(scoreUsersContract);
  const metrics = createWorkerMetrics(scoreUsersContract);
  const model = createModelClientFromEnvironment(env, { service: "scoring model", logger, metrics });
  const documents = createDocumentClient(new DynamoDBClient(awsClientConfig(AWS_CLIENT_BOUNDS.scoring.dynamoDb)));
  const handler = createScoreUsers({
    env,
    logger,
    documents,
    sqs: new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.scoring.sqs)),
    model,
    metrics,
  });
  return instrumentHandler({ logger, metrics }, handler);
});
