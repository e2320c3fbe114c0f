import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SQSClient } from "@aws-sdk/client-sqs";
import { type DynamoDBDocumentClient, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import {
  type BatchResponse,
  partialBatchResponse,
  type RecordFailure,
  SQS_MAX_RECEIVE_COUNT,
  stopGroupsAtFirstFailure,
} from "../shared/runtime/batch";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { createDeadLetterParking, type ParkRequest } from "../shared/runtime/deadLetters";
import { batchGetItems, type BatchOptions, createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { isHttpServiceError } from "../shared/runtime/http";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger, describeError, type Logger } from "../shared/runtime/logging";
import { CORRELATION_ID_ATTRIBUTE, createCorrelationRule } from "../shared/runtime/correlation";
import { createWorkerMetrics, discardedMetrics, failureReasonOf, type WorkerMetrics } from "../shared/runtime/metrics";
import {
  decodeJson,
  decodeWith,
  messageAttributeString,
  parseEvent,
  type SqsRecord,
  sqsEventSchema,
} from "../shared/runtime/records";
import { mapConcurrently } from "../shared/runtime/retry";
import { createSecretReader } from "../shared/runtime/secrets";
import type { SendOptions } from "../shared/runtime/sqs";
import { DEPENDENCIES, type FailureReason } from "../shared/runtime/telemetry";
import { activityMessageSchema } from "../shared/scoring/activity";
import { fanKey, KEY, RECORD_TYPES } from "../shared/scoring/table";
import { type AraiLookup, araiCredentialsSchema, createAraiClient } from "./araiClient";
import { lookupAraiContract, type LookupAraiEnvironment } from "./contract";
import { type ActivityRecord, type FanLookup, fansOf, isFresh, lastActivityOf } from "./fans";
import { trimArai } from "./trim";

/** How long the API credentials are reused before Secrets Manager is asked again (picks up rotation). */
const CREDENTIALS_MAX_AGE_MS = 300_000;

export interface LookupAraiDependencies {
  readonly env: Pick<
    LookupAraiEnvironment,
    "TABLE_NAME" | "ARAI_FRESHNESS_SECONDS" | "ARAI_CONCURRENCY" | "DEAD_LETTER_QUEUE_URLS"
  >;
  readonly dynamo: DynamoDBDocumentClient;
  /** Sends the messages it parks to their dead-letter queues. */
  readonly sqs: SQSClient;
  readonly fetchArai: (globalUserId: string) => Promise<AraiLookup>;
  readonly logger: Logger;
  readonly now?: () => number;
  /** Retries of the fan records DynamoDB leaves unread. */
  readonly readOptions?: BatchOptions;
  /** Retries of the messages SQS does not take when parking them. */
  readonly sendOptions?: Omit<SendOptions, "ordered">;
  /** Messages received, looked up, skipped, parked and failed. @default none */
  readonly metrics?: WorkerMetrics;
}

/** What a log line says about a failure: for the ARAI API, the service, operation and status apart. */
function failureDetails(error: unknown): Record<string, unknown> {
  if (isHttpServiceError(error)) {
    return { service: error.service, operation: error.operation, status: error.status, message: error.message };
  }
  return describeError(error);
}

/**
 * The worker with its dependencies passed in. Per batch: decode each message, and park those that
 * can never succeed in their queue's dead-letter queue at once; read the fans' `araiUpdatedAt` in
 * one BatchGetItem; fetch the ARAI of each fan whose stored ARAI is not fresh, once, at most
 * ARAI_CONCURRENCY at a time; write it with one UpdateItem per fan. A failure fails the messages it
 * concerns (and, on a FIFO queue, the rest of their message group), nothing else; on a message's
 * last delivery it parks the message instead, so the rest of its group goes on. A parked message
 * is done; one that could not be parked is a failure.
 */
export function createLookupArai(deps: LookupAraiDependencies) {
  const { env, dynamo, logger } = deps;
  const now = deps.now ?? Date.now;
  const metrics = deps.metrics ?? discardedMetrics();
  const eventSchema = sqsEventSchema();
  const messageSchema = activityMessageSchema();
  const correlationOf = createCorrelationRule();
  const table = env.TABLE_NAME;
  const freshnessMs = env.ARAI_FRESHNESS_SECONDS * 1000;
  const park = createDeadLetterParking({
    sqs: deps.sqs,
    queueUrls: env.DEAD_LETTER_QUEUE_URLS,
    worker: lookupAraiContract.name,
    logger,
    metrics,
    send: deps.sendOptions,
  });

  /**
   * Splits the fans by their stored ARAI: fresh (done), stale or absent (to fetch), or unknown
   * because the fan record could not be read (failed).
   */
  async function byFreshness(
    fans: readonly FanLookup[],
    fail: (fan: FanLookup, reason: string, kind?: FailureReason) => void,
  ): Promise<{ stale: FanLookup[]; fresh: number }> {
    if (fans.length === 0) return { stale: [], fresh: 0 };
    const keys = fans.map((fan) => fanKey(fan.globalUserId));
    let read: Awaited<ReturnType<typeof batchGetItems>>;
    try {
      read = await batchGetItems(dynamo, table, KEY, keys, [KEY, "araiUpdatedAt"], deps.readOptions);
    } catch (error) {
      // Retried later rather than fetched blind: no ARAI traffic for writes that would fail too.
      const reason = `BatchGetItem on ${table} failed: ${(error as Error).name}: ${(error as Error).message}`;
      logger.error("fan records not read", { table, fans: fans.length, error: describeError(error) });
      fans.forEach((fan) => fail(fan, reason, failureReasonOf(error)));
      return { stale: [], fresh: 0 };
    }
    const unread = new Set(read.unread.map((key) => String(key[KEY])));
    const updatedAt = new Map(read.items.map((item) => [String(item[KEY]), item.araiUpdatedAt]));
    const nowMs = now();
    const stale: FanLookup[] = [];
    let fresh = 0;
    for (const fan of fans) {
      const key = fanKey(fan.globalUserId);
      if (unread.has(key)) fail(fan, `fan record still unprocessed by BatchGetItem on ${table} after retries`, "unprocessed");
      else if (isFresh(updatedAt.get(key), nowMs, freshnessMs)) {
        fresh += 1;
        logger.info("ARAI fresh; not fetched again, nothing written", {
          globalUserId: fan.globalUserId,
          correlationIds: fan.correlationIds,
          araiUpdatedAt: updatedAt.get(key),
        });
      } else stale.push(fan);
    }
    return { stale, fresh };
  }

  /**
   * Fetches and writes one fan's ARAI; says why not when it could not. The write is conditioned on
   * the stored ARAI being stale still: another invocation (the fan's activity on the other queue)
   * may have stored a fresh one since the batch read it, and that one stands.
   */
  async function refresh(
    fan: FanLookup,
  ): Promise<"written" | "storedMeanwhile" | "unknownFan" | { failed: string; kind: FailureReason }> {
    const { globalUserId, correlationIds } = fan;
    let lookup: AraiLookup;
    try {
      lookup = await deps.fetchArai(globalUserId);
    } catch (error) {
      logger.error("ARAI lookup failed", {
        globalUserId,
        correlationIds,
        messages: fan.messageIds.length,
        error: failureDetails(error),
      });
      return { failed: `ARAI lookup failed: ${(error as Error).message}`, kind: "dependency" };
    }
    if (lookup.status === "unknownFan") {
      // Not retryable: asking again gives the same answer. There is nothing to score.
      logger.warn("fan unknown to the accounts service; messages let go", {
        globalUserId,
        correlationIds,
        messages: fan.messageIds.length,
      });
      return "unknownFan";
    }
    const trimmed = trimArai(lookup.arai);
    if (!trimmed.ok) {
      logger.error("ARAI not stored", { globalUserId, correlationIds, reason: trimmed.reason });
      return { failed: trimmed.reason, kind: "invalid" };
    }
    if (Object.values(trimmed.dropped).some((count) => count > 0)) {
      logger.debug("ARAI trimmed", { globalUserId, correlationIds, bytes: trimmed.bytes, dropped: trimmed.dropped });
    }
    const nowMs = now();
    const stamp = new Date(nowMs).toISOString();
    try {
      await dynamo.send(
        new UpdateCommand({
          TableName: table,
          Key: { [KEY]: fanKey(globalUserId) },
          // Score fields are never touched: scoreUsers writes them, conditioned on araiVersion.
          UpdateExpression:
            "SET #type = :activityData, globalUserId = :g, arai = :arai, araiUpdatedAt = :now, lastActivity = :latest, dateUpdated = :now ADD araiVersion :one",
          // Stale as isFresh says: no stamp, one a window old or more, one a window ahead or more, or not a stamp.
          ConditionExpression:
            "attribute_not_exists(araiUpdatedAt) OR araiUpdatedAt <= :staleFrom OR araiUpdatedAt >= :aheadFrom OR NOT attribute_type(araiUpdatedAt, :string)",
          ExpressionAttributeNames: { "#type": "type" },
          ExpressionAttributeValues: {
            ":activityData": RECORD_TYPES.activityData,
            ":g": globalUserId,
            ":arai": trimmed.snapshot,
            ":now": stamp,
            ":latest": lastActivityOf(fan.latest, fan.latestCorrelationId),
            ":one": 1,
            ":staleFrom": new Date(nowMs - freshnessMs).toISOString(),
            ":aheadFrom": new Date(nowMs + freshnessMs).toISOString(),
            ":string": "S",
          },
        }),
      );
    } catch (error) {
      if ((error as Error).name === "ConditionalCheckFailedException") {
        // Not a failure: a fresh ARAI is there, written by another invocation after this batch read the record.
        logger.info("ARAI stored meanwhile by another invocation; fetched, not written", { globalUserId, correlationIds });
        return "storedMeanwhile";
      }
      const reason = `UpdateItem on ${table} failed: ${(error as Error).name}: ${(error as Error).message}`;
      logger.error("ARAI not written", { globalUserId, correlationIds, table, error: describeError(error) });
      return { failed: reason, kind: failureReasonOf(error) };
    }
    logger.info("ARAI stored", { globalUserId, correlationId: fan.latestCorrelationId, correlationIds, araiUpdatedAt: stamp });
    return "written";
  }

  /**
   * The messages to park because they failed on their last delivery: each own failure (not one
   * held back behind another) of a message SQS has delivered SQS_MAX_RECEIVE_COUNT times or more.
   */
  function givenUp(failures: readonly RecordFailure[], byId: ReadonlyMap<string, SqsRecord>): ParkRequest[] {
    return failures.flatMap((failure) => {
      const record = byId.get(failure.id)!;
      const deliveries = Number(record.attributes.ApproximateReceiveCount);
      if (!(deliveries >= SQS_MAX_RECEIVE_COUNT)) return [];
      const reason = `gave up after ${deliveries} deliveries: ${failure.reason}`;
      return [{ record, reason, kind: failure.kind ?? "error", correlationId: failure.correlationId }];
    });
  }

  return async function lookupArai(event: unknown): Promise<BatchResponse> {
    const { Records: records } = parseEvent(eventSchema, event, lookupAraiContract.name, "SQS");
    metrics.received(records.length);
    const byId = new Map(records.map((record) => [record.messageId, record]));
    // FIFO order is per message group; a standard-queue message has none and stands alone.
    const ordered = records.map((record) => ({
      id: record.messageId,
      group: record.attributes.MessageGroupId ?? `(no group) ${record.messageId}`,
    }));

    const decoded: ActivityRecord[] = [];
    const undecodable: ParkRequest[] = [];
    const correlationIds = new Map<string, string>();
    for (const record of records) {
      // An older producer sends no attribute: the message gets an id made from its messageId and is processed.
      const correlation = correlationOf(messageAttributeString(record, CORRELATION_ID_ATTRIBUTE), ["sqs", record.messageId]);
      const correlationId = correlation.id;
      correlationIds.set(record.messageId, correlationId);
      if (correlation.origin === "replaced") {
        logger.warn("correlation id replaced", { record: record.messageId, correlationId, problem: correlation.problem });
      }
      const json = decodeJson(record.body, "message body");
      const message = json.ok ? decodeWith(messageSchema, json.value, "activity message") : json;
      if (message.ok) {
        decoded.push({ id: record.messageId, message: message.value, correlationId });
        const { globalUserId, source, action } = message.value;
        logger.info("activity received", {
          record: record.messageId,
          // The queue's name, the last field of its ARN: a FIFO queue's ends in .fifo.
          queue: record.eventSourceARN?.split(":").at(-1),
          correlationId,
          correlationOrigin: correlation.origin === "carried" ? "attribute" : correlation.origin,
          globalUserId,
          source,
          action,
        });
      } else undecodable.push({ record, reason: message.reason, kind: "invalid", correlationId });
    }
    // A message that can never succeed is parked now, before any lookup: parked, it holds up nothing;
    // one that could not be parked is a failure, and the later messages of its group wait with it.
    const unparked = await park(undecodable);
    const blocked = new Set(stopGroupsAtFirstFailure(ordered, unparked).map((failure) => failure.id));
    const fans = fansOf(decoded.filter((record) => !blocked.has(record.id)));
    const failures: RecordFailure[] = [];
    const fail = (fan: FanLookup, reason: string, kind?: FailureReason) =>
      failures.push(...fan.messageIds.map((id) => ({ id, reason, kind, correlationId: correlationIds.get(id) })));

    const { stale, fresh } = await byFreshness(fans, fail);
    const outcomes = await mapConcurrently(stale, env.ARAI_CONCURRENCY, async (fan) => {
      const outcome = await refresh(fan);
      if (typeof outcome === "object") fail(fan, outcome.failed, outcome.kind);
      return outcome;
    });

    // Failed on its last delivery: parked now, rather than moved by SQS with the rest of its group.
    const lastDelivery = givenUp(failures, byId);
    const unparkedAtLast = await park(lastDelivery);
    const notParked = new Set([...unparked, ...unparkedAtLast].map((failure) => failure.id));
    const parkedIds = new Set(
      [...undecodable, ...lastDelivery].map((request) => request.record.messageId).filter((id) => !notParked.has(id)),
    );
    const lastDeliveryIds = new Set(lastDelivery.map((request) => request.record.messageId));
    // Once parked, a message is done: it neither fails nor holds up its group.
    const reported = stopGroupsAtFirstFailure(
      ordered.filter((message) => !parkedIds.has(message.id)),
      [...unparked, ...failures.filter((failure) => !lastDeliveryIds.has(failure.id)), ...unparkedAtLast],
    );
    // A fan the accounts service does not know is let go on purpose (logged above): its messages are skipped.
    const failedIds = new Set(reported.map((failure) => failure.id));
    const letGo = stale
      .filter((_fan, index) => outcomes[index] === "unknownFan")
      .flatMap((fan) => fan.messageIds)
      .filter((id) => !failedIds.has(id)).length;
    const parked = parkedIds.size;
    metrics.skipped(letGo);
    metrics.processed(records.length - failedIds.size - letGo - parked);
    logger.info("batch done", {
      messages: records.length,
      fans: fans.length,
      fresh,
      fetched: stale.length,
      written: outcomes.filter((outcome) => outcome === "written").length,
      storedMeanwhile: outcomes.filter((outcome) => outcome === "storedMeanwhile").length,
      unknownFans: outcomes.filter((outcome) => outcome === "unknownFan").length,
      parkedMessages: parked,
      failedMessages: reported.length,
    });
    return partialBatchResponse(
      reported.map((failure) => ({ ...failure, correlationId: failure.correlationId ?? correlationIds.get(failure.id) })),
      logger,
      undefined,
      metrics,
    );
  };
}

export const lookupArai = defineWorker(lookupAraiContract, () => {
  const env = loadEnvironment(lookupAraiContract);
  const logger = createLogger(lookupAraiContract);
  const metrics = createWorkerMetrics(lookupAraiContract);
  const readCredentials = createSecretReader({
    secretId: env.ARAI_CREDENTIALS_SECRET_ARN,
    schema: araiCredentialsSchema(),
    maxAgeMs: CREDENTIALS_MAX_AGE_MS,
    client: new SecretsManagerClient(awsClientConfig(AWS_CLIENT_BOUNDS.lookup.secretsManager)),
    // A hanging refresh holds the batch 3 s at most before the cached credentials serve on; a cold
    // read fails instead, and the batch's lookups with it, to be retried by the queue.
    waitMs: 3000,
    calls: metrics.calls(DEPENDENCIES.secretsManager),
    onStale: (error) => logger.warn("using cached ARAI credentials: refresh failed", { error: describeError(error) }),
  });
  const arai = createAraiClient({
    urlTemplate: env.ARAI_URL_TEMPLATE,
    timeoutMs: env.ARAI_TIMEOUT_MS,
    readCredentials,
    calls: metrics.calls(DEPENDENCIES.arai),
  });
  const dynamo = createDocumentClient(new DynamoDBClient(awsClientConfig(AWS_CLIENT_BOUNDS.lookup.dynamoDb)));
  const sqs = new SQSClient(awsClientConfig(AWS_CLIENT_BOUNDS.lookup.sqs));
  const handler = createLookupArai({ env, dynamo, sqs, logger, fetchArai: arai.fetchArai, metrics });
  return instrumentHandler({ logger, metrics }, handler);
});
