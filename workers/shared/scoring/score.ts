/**
 * Scoring from the fan-identity table's change stream (docs/flows.md#scoring), shared by
 * `scoreUsers` and `stagingScoreUsers`: decode the Kinesis batch, keep the fans whose fresh ARAI
 * awaits scoring, score each fan once per batch (its newest ARAI), and hand the scores to the
 * worker's writer. Every record ends scored, skipped (not for us), parked (it can never be scored:
 * runtime/parking.ts) or failed with a reason; none is dropped.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { z } from "../zod";
import { type BatchResponse, partialBatchResponse, type RecordFailure } from "../runtime/batch";
import { correlationIdSchema } from "../runtime/correlation";
import { describeError, type Logger } from "../runtime/logging";
import { discardedMetrics, failureReasonOf, type WorkerMetrics } from "../runtime/metrics";
import { createParker, kinesisParkedSource, type PoisonRecord } from "../runtime/parking";
import type { FailureReason } from "../runtime/telemetry";
import {
  createDynamoChangeDecoder,
  decodeKinesisData,
  decodeWith,
  type DynamoChange,
  kinesisEventSchema,
  parseEvent,
} from "../runtime/records";
import { chunk, mapConcurrently } from "../runtime/retry";
import { globalUserIdSchema } from "./activity";
import type { ModelClient } from "./modelServing";
import { RECORD_TYPES } from "./table";

/** What scoring reads from a fan record's new image. */
export interface ScoringInput {
  readonly globalUserId: string;
  readonly arai: Record<string, unknown>;
  readonly araiVersion: number;
  /** The correlation id stored with the fan's `lastActivity`, when it has a valid one. */
  readonly correlationId?: string;
}

/**
 * The fields of an activityData image scoring needs; other fields are ignored. A record written
 * before correlation ids were stored, or holding one that is not an id, is scored all the same.
 */
export const fanImageSchema = () =>
  z.object({
    globalUserId: globalUserIdSchema(),
    arai: z.record(z.string(), z.unknown()),
    araiVersion: z.number().check(z.int(), z.gte(1)),
    lastActivity: z.catch(
      z.optional(z.object({ correlationId: z.catch(z.optional(correlationIdSchema()), undefined) })),
      undefined,
    ),
  });

export type ScoringDecision =
  | { readonly action: "score"; readonly input: ScoringInput }
  | { readonly action: "skip"; readonly reason: string }
  | { readonly action: "fail"; readonly reason: string };

/**
 * What a change asks of the scorer. Only INSERT and MODIFY whose new image is `activityData`
 * are scored: the score write itself (type=score), staging scores, rescore records and removals
 * come back through the same stream and must not be scored again (the feedback-loop guard,
 * checked here as well as in the event source mapping's filter).
 */
export function scoringDecision(change: DynamoChange, imageSchema: ReturnType<typeof fanImageSchema>): ScoringDecision {
  if (change.eventName === "REMOVE") return { action: "skip", reason: "REMOVE" };
  const type = change.newImage?.type;
  if (type !== RECORD_TYPES.activityData) {
    return { action: "skip", reason: `${change.eventName} of a record of type ${JSON.stringify(type)}, not activityData` };
  }
  const decoded = decodeWith(imageSchema, change.newImage, "activityData image");
  if (!decoded.ok) return { action: "fail", reason: decoded.reason };
  const { lastActivity, ...input } = decoded.value;
  const correlationId = lastActivity?.correlationId;
  return { action: "score", input: correlationId === undefined ? input : { ...input, correlationId } };
}

/** A record of the batch to score, by its identifier in the batch response. */
export interface PendingRecord {
  readonly id: string;
  readonly input: ScoringInput;
}

/** A fan to score once: its newest ARAI in the batch, and every record of the batch about it. */
export interface FanToScore extends ScoringInput {
  readonly records: readonly string[];
}

/**
 * One entry per fan, in order of first appearance, holding the highest araiVersion (on a tie,
 * the later record). All of a fan's records share the outcome of that one score: a burst of
 * ARAI writes costs one model call and one write.
 */
export function collapseByFan(records: readonly PendingRecord[]): FanToScore[] {
  const fans = new Map<string, { input: ScoringInput; records: string[] }>();
  for (const record of records) {
    const fan = fans.get(record.input.globalUserId);
    if (!fan) fans.set(record.input.globalUserId, { input: record.input, records: [record.id] });
    else {
      fan.records.push(record.id);
      if (record.input.araiVersion >= fan.input.araiVersion) fan.input = record.input;
    }
  }
  return [...fans.values()].map(({ input, records: ids }) => ({ ...input, records: ids }));
}

/** A score to store. */
export interface ScoredFan {
  readonly globalUserId: string;
  /** The ARAI version the score was computed from. */
  readonly araiVersion: number;
  readonly score: number;
  /** The correlation id of the activity whose ARAI was scored, when the fan record holds one. */
  readonly correlationId?: string;
}

export interface WriteOutcome {
  /** Fans whose score was not stored, with why: their records fail (counted under `kind`, default `error`). */
  readonly failed: readonly { readonly globalUserId: string; readonly reason: string; readonly kind?: FailureReason }[];
  /** Figures for the batch's summary log line (calls made, stale scores not written…). */
  readonly stats?: Record<string, number>;
}

export interface StreamScorerDependencies {
  /** The worker's name, for errors about the event itself and on the records it parks. */
  readonly worker: string;
  readonly logger: Logger;
  /** Where the records that can never be scored are parked: the failure queue (`FAILURE_QUEUE_URL`), through `sqs`. */
  readonly sqs: SQSClient;
  readonly failureQueueUrl: string;
  readonly model: ModelClient;
  /** Fans per model request. */
  readonly modelBatchSize: number;
  /** Stores the batch's scores; reports per fan what it could not store. */
  readonly write: (scores: readonly ScoredFan[]) => Promise<WriteOutcome>;
  /** Model requests in flight at once. @default 4 */
  readonly modelConcurrency?: number;
  /** Records received, scored, skipped and failed. @default none */
  readonly metrics?: WorkerMetrics;
}

/** The handler both scoring workers run, around their writer. */
export function createStreamScorer(deps: StreamScorerDependencies) {
  const { logger } = deps;
  const eventSchema = kinesisEventSchema();
  const decodeChange = createDynamoChangeDecoder();
  const imageSchema = fanImageSchema();
  const metrics = deps.metrics ?? discardedMetrics();
  const park = createParker({ worker: deps.worker, sqs: deps.sqs, queueUrl: deps.failureQueueUrl, logger, metrics });

  return async function scoreBatch(event: unknown): Promise<BatchResponse> {
    const { Records } = parseEvent(eventSchema, event, deps.worker, "Kinesis");
    metrics.received(Records.length);
    const delivered = (event as { Records: readonly unknown[] }).Records;
    const failures: RecordFailure[] = [];
    const poison: PoisonRecord[] = [];
    const pending: PendingRecord[] = [];
    /** Each record's correlation id, for the lines that name its failure. */
    const correlationIds = new Map<string, string | undefined>();
    let skipped = 0;

    for (const [index, record] of Records.entries()) {
      const id = record.kinesis.sequenceNumber;
      const data = decodeKinesisData(record);
      const change = data.ok ? decodeChange(data.value) : data;
      const parking = { id, source: kinesisParkedSource(record), record: delivered[index] };
      if (!change.ok) {
        poison.push({ ...parking, reason: change.reason });
        continue;
      }
      const decision = scoringDecision(change.value, imageSchema);
      if (decision.action === "score") {
        pending.push({ id, input: decision.input });
        correlationIds.set(id, decision.input.correlationId);
      } else if (decision.action === "fail") poison.push({ ...parking, reason: decision.reason });
      else {
        skipped += 1;
        logger.info("record skipped", { record: id, reason: decision.reason });
      }
    }

    // Parked while the fans are scored; a record the queue did not take fails instead.
    const parking = park(poison);
    const fans = collapseByFan(pending);
    const scored: ScoredFan[] = [];
    const chunks = chunk(fans, deps.modelBatchSize);
    await mapConcurrently(chunks, deps.modelConcurrency ?? 4, async (group) => {
      try {
        const predictions = await deps.model.predict(
          group.map((fan) => ({ globalUserId: fan.globalUserId, rawJson: JSON.stringify(fan.arai) })),
        );
        group.forEach((fan, index) =>
          scored.push({
            globalUserId: fan.globalUserId,
            araiVersion: fan.araiVersion,
            score: predictions[index]!,
            ...(fan.correlationId === undefined ? {} : { correlationId: fan.correlationId }),
          }),
        );
      } catch (error) {
        // The fans go back to the stream to be scored on the retry, never dropped.
        const { service, status } = error as { service?: string; status?: number };
        const records = group.flatMap((fan) => fan.records);
        // `dependency`, not `service`: the logger's own `service` key names the worker.
        logger.error("model call failed; its fans' records fail", {
          dependency: service,
          status,
          fans: group.length,
          records: records.length,
          correlationIds: records.map((id) => correlationIds.get(id)),
          error: describeError(error),
        });
        const reason = `not scored: ${describeError(error).message}`;
        failures.push(...records.map((id) => ({ id, reason, kind: "dependency" as const })));
      }
    });

    let outcome: WriteOutcome = { failed: [] };
    if (scored.length > 0) {
      try {
        outcome = await deps.write(scored);
      } catch (error) {
        logger.error("scores not stored", {
          fans: scored.length,
          correlationIds: scored.map((fan) => fan.correlationId),
          error: describeError(error),
        });
        const kind = failureReasonOf(error);
        outcome = {
          failed: scored.map((fan) => ({ globalUserId: fan.globalUserId, reason: describeError(error).message, kind })),
        };
      }
    }
    const recordsOf = new Map(fans.map((fan) => [fan.globalUserId, fan.records]));
    for (const { globalUserId, reason, kind } of outcome.failed) {
      failures.push(...(recordsOf.get(globalUserId) ?? []).map((id) => ({ id, reason: `score not stored: ${reason}`, kind })));
    }
    const unparked = await parking;
    failures.push(...unparked);
    const parked = poison.length - unparked.length;

    logger.info("batch scored", {
      records: Records.length,
      skipped,
      parked,
      fans: fans.length,
      scored: scored.length - outcome.failed.length,
      modelCalls: chunks.length,
      failedRecords: failures.length,
      ...outcome.stats,
    });
    // In batch order, so the log reads like the stream.
    const response = partialBatchResponse(
      failures.map((failure) => ({ ...failure, correlationId: correlationIds.get(failure.id) })),
      logger,
      Records.map((record) => record.kinesis.sequenceNumber),
      metrics,
    );
    metrics.skipped(skipped);
    metrics.processed(Records.length - skipped - parked - response.batchItemFailures.length);
    return response;
  };
}
