/**
 * The batch loop of the stream enqueue workers: each record that says a fan did something becomes
 * one activity message on a scoring queue and, for the demand, purchase and queue-journey streams,
 * a rescore record some days later; a record that can never become one (undecodable, invalid, no
 * fan id) is parked in the failure queue on its first delivery (runtime/parking.ts). Each worker's
 * reader says what a record means (pure, in the worker's folder) and enqueuePlan.ts what to send
 * for it; the I/O is here, one `sendMessages` call, one `scheduleRescores` call and one parking
 * per batch, in parallel.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { type BatchResponse, type ItemIdentifier, itemKey, partialBatchResponse, type RecordFailure } from "../runtime/batch";
import { createCorrelationRule } from "../runtime/correlation";
import type { Logger } from "../runtime/logging";
import { discardedMetrics, failureReasonOf, type WorkerMetrics } from "../runtime/metrics";
import { createParker, kinesisParkedSource, type ParkedSource, type PoisonRecord } from "../runtime/parking";
import { type KinesisRecord, kinesisEventSchema, parseEvent } from "../runtime/records";
import { sendMessages } from "../runtime/sqs";
import type { ActivitySource } from "./activity";
import type { ActivityStreamEnvironment } from "./enqueueContracts";
import { outgoingMessage, planActivity, type PlannedActivity, plannedRescores } from "./enqueuePlan";
import { type RescoreItem, scheduleRescores, type ScheduleResult } from "./rescore";
import type { StreamReader, StreamReading } from "./streamReading";

export interface StreamEnqueueDependencies {
  /** The worker's name, for errors about the event as a whole and on the records it parks. */
  readonly worker: string;
  readonly sqs: SQSClient;
  /** The failure queue poison records are parked in (`FAILURE_QUEUE_URL`). */
  readonly failureQueueUrl: string;
  readonly logger: Logger;
  readonly now?: () => Date;
  /** Records received, enqueued, skipped and failed. @default none */
  readonly metrics?: WorkerMetrics;
}

export interface StreamEnqueueOptions extends EnqueueTarget {
  readonly source: ActivitySource;
  readonly action: string;
  readonly read: StreamReader;
}

/** What one record means for scoring: an activity (of the source's own shape), nothing, or a failure. */
export type Reading<Activity> =
  | (Activity & { readonly kind: "activity" })
  | { readonly kind: "skip"; readonly reason: string }
  | { readonly kind: "fail"; readonly reason: string };

/** A record of the batch: its identifier in the batch response, as parsed, as delivered, and where it was read. */
export interface BatchRecord<Rec, Id> {
  readonly id: Id;
  readonly record: Rec;
  /** The record exactly as Lambda delivered it in the event (what a parked record carries). */
  readonly delivered: unknown;
  readonly source: ParkedSource;
}

/**
 * A kind of batch an enqueue worker takes: how its records come out of the event (in order, each
 * with its identifier in the batch response), how one is read, and the activity it stands for.
 */
export interface EnqueueSource<Rec, Id, Activity> {
  readonly records: (event: unknown) => readonly BatchRecord<Rec, Id>[];
  readonly read: (record: Rec) => Reading<Activity>;
  /** Plans the activity a record stands for; its `id` is the record identifier's `itemKey`. */
  readonly plan: (id: Id, record: Rec, reading: Activity, now: Date) => PlannedActivity;
}

export interface EnqueueTarget {
  readonly queueUrl: string;
  /** A FIFO queue: messages grouped by fan, deduplicated by record, sent in order. */
  readonly fifo: boolean;
  /** Schedules rescores for the activities, when the source calls for them. */
  readonly rescore?: {
    readonly delayDays: number;
    readonly schedule: (items: readonly RescoreItem[]) => Promise<ScheduleResult>;
  };
}

/**
 * The handler of an enqueue worker: reads each record on its own, sends the batch's activities in
 * one `sendMessages` call (and schedules their rescores alongside), parks the records that can
 * never succeed, and reports the records that failed, in batch order (streams resume from the
 * first failure). A poison record is in the response only when it could not be parked.
 */
export function createEnqueuer<Rec, Id extends ItemIdentifier, Activity>(
  deps: StreamEnqueueDependencies,
  source: EnqueueSource<Rec, Id, Activity>,
  target: EnqueueTarget,
) {
  const { logger, sqs } = deps;
  const clock = deps.now ?? (() => new Date());
  const metrics = deps.metrics ?? discardedMetrics();
  const park = createParker({ worker: deps.worker, sqs, queueUrl: deps.failureQueueUrl, logger, metrics, now: clock });

  return async function enqueue(event: unknown): Promise<BatchResponse<Id>> {
    const records = source.records(event);
    metrics.received(records.length);
    const now = clock();
    const failures: RecordFailure<Id>[] = [];
    const poison: PoisonRecord<Id>[] = [];
    const activities: PlannedActivity[] = [];
    const idOf = new Map<string, Id>();
    let skipped = 0;

    for (const { id, record, delivered, source: origin } of records) {
      let reading: Reading<Activity>;
      try {
        reading = source.read(record);
      } catch (error) {
        // A reader should say what is wrong rather than throw; if one throws, it fails only its record.
        reading = { kind: "fail", reason: `record could not be read: ${(error as Error).message}` };
      }
      if (reading.kind === "fail") poison.push({ id, reason: reading.reason, source: origin, record: delivered });
      else if (reading.kind === "skip") {
        skipped += 1;
        logger.info("record skipped", { record: id, reason: reading.reason });
      } else {
        idOf.set(itemKey(id), id);
        const planned = source.plan(id, record, reading as Activity, now);
        activities.push(planned);
        if (planned.correlation.origin === "replaced") {
          // The producer's value is not logged: it is what the rule keeps out of the logs.
          logger.warn("correlation id replaced", {
            record: id,
            correlationId: planned.correlation.id,
            problem: planned.correlation.problem,
          });
        }
      }
    }

    const rescores = target.rescore ? plannedRescores(activities, now, target.rescore.delayDays) : [];
    const [sent, scheduled, unparked] = await Promise.all([
      sendMessages(
        sqs,
        target.queueUrl,
        activities.map((activity) => outgoingMessage(activity, target.fifo)),
        { ordered: target.fifo },
      ),
      target.rescore && rescores.length > 0 ? target.rescore.schedule(rescores.map((planned) => planned.item)) : undefined,
      park(poison),
    ]);
    failures.push(...unparked);
    const parked = poison.length - unparked.length;

    const correlationIds = new Map(activities.map((activity) => [activity.id, activity.correlation.id]));
    for (const failed of sent.failed)
      failures.push({
        id: idOf.get(failed.id)!,
        reason: failed.reason,
        kind: failureReasonOf(failed.reason),
        correlationId: correlationIds.get(failed.id),
      });
    const unsent = new Set(sent.failed.map((failed) => failed.id));
    for (const activity of activities) {
      if (unsent.has(activity.id)) continue;
      const { globalUserId, source: activitySource, action } = activity.message;
      logger.info("activity enqueued", {
        record: idOf.get(activity.id),
        correlationId: activity.correlation.id,
        globalUserId,
        source: activitySource,
        action,
      });
    }
    if (sent.failed.length > 0) {
      logger.error("activity messages not sent", {
        queue: target.queueUrl,
        count: sent.failed.length,
        reason: sent.failed[0]!.reason,
      });
    }
    if (scheduled && scheduled.failed.length > 0) {
      const reasons = new Map(scheduled.failed.map((failure) => [failure.key, failure.reason]));
      for (const planned of rescores) {
        const reason = reasons.get(planned.item.userId);
        if (reason === undefined) continue;
        failures.push(
          ...planned.records.map((key) => ({
            id: idOf.get(key)!,
            reason: `rescore not scheduled: ${reason}`,
            kind: failureReasonOf(reason),
            correlationId: correlationIds.get(key),
          })),
        );
      }
      logger.error("rescores not scheduled", { count: scheduled.failed.length, reason: scheduled.failed[0]!.reason });
    }
    if (scheduled && scheduled.existingKeys.length > 0) {
      const existing = new Set(scheduled.existingKeys);
      for (const planned of rescores) {
        if (!existing.has(planned.item.userId)) continue;
        logger.info("rescore already scheduled; not written again", {
          rescore: planned.item.userId,
          correlationIds: planned.records.map((key) => correlationIds.get(key)),
        });
      }
    }

    // Streams resume from the first failed record: report in batch order.
    const response = partialBatchResponse(
      failures,
      logger,
      records.map(({ id }) => id),
      metrics,
    );
    metrics.skipped(skipped);
    metrics.processed(records.length - skipped - parked - response.batchItemFailures.length);
    logger.info("batch enqueued", {
      records: records.length,
      activities: activities.length,
      sent: activities.length - sent.failed.length,
      skipped,
      parked,
      failed: response.batchItemFailures.length,
      sendCalls: sent.calls,
      ...(scheduled ? { rescoresScheduled: scheduled.scheduled, rescoresExisting: scheduled.existing } : {}),
    });
    return response;
  };
}

/** The handler of a Kinesis stream enqueue worker: records by sequence number, read by `options.read`. */
export function createStreamEnqueuer(deps: StreamEnqueueDependencies, options: StreamEnqueueOptions) {
  const eventSchema = kinesisEventSchema();
  const correlationOf = createCorrelationRule();
  return createEnqueuer<KinesisRecord, string, Extract<StreamReading, { kind: "activity" }>>(
    deps,
    {
      records: (event) =>
        parseEvent(eventSchema, event, deps.worker, "Kinesis").Records.map((record, index) => ({
          id: record.kinesis.sequenceNumber,
          record,
          delivered: (event as { Records: readonly unknown[] }).Records[index],
          source: kinesisParkedSource(record),
        })),
      read: options.read,
      plan: (_id, record, reading, now) => planActivity(options.source, options.action, record, reading, now, correlationOf),
    },
    options,
  );
}

/** What an enqueue worker is built from: its environment, SQS, its logger, and a clock (tests fix it). */
export interface EnqueueDependencies<Env> {
  readonly env: Env;
  readonly sqs: SQSClient;
  readonly logger: Logger;
  readonly now?: () => Date;
  readonly metrics?: WorkerMetrics;
}

/** The demand, purchase and queue-journey workers also write rescore records to the table. */
export interface ActivityStreamDependencies extends EnqueueDependencies<ActivityStreamEnvironment> {
  readonly dynamo: DynamoDBDocumentClient;
}

/**
 * The demand, purchase and queue-journey workers: each activity to the account-activity FIFO
 * queue, and a rescore `RESCORE_DELAY_DAYS` later (one per fan and date).
 */
export function createActivityStreamEnqueuer(
  deps: ActivityStreamDependencies,
  stream: { readonly worker: string; readonly source: ActivitySource; readonly read: StreamReader },
) {
  const { env, dynamo } = deps;
  return createStreamEnqueuer(
    {
      worker: stream.worker,
      sqs: deps.sqs,
      failureQueueUrl: env.FAILURE_QUEUE_URL,
      logger: deps.logger,
      now: deps.now,
      metrics: deps.metrics,
    },
    {
      source: stream.source,
      action: stream.source,
      read: stream.read,
      queueUrl: env.ACTIVITY_QUEUE_URL,
      fifo: true,
      rescore: { delayDays: env.RESCORE_DELAY_DAYS, schedule: (items) => scheduleRescores(dynamo, env.TABLE_NAME, items) },
    },
  );
}
