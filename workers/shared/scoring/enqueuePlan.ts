/**
 * What an enqueue worker sends for the records it read, decided without I/O: the activity message
 * of each, when the fan acted, its FIFO deduplication id, the outgoing message, and the rescores
 * a batch calls for. The batch loop (enqueuer.ts) sends what is planned here.
 */
import { createHash } from "node:crypto";
import { correlationAttributes, type Correlation, createCorrelationRule, type CorrelationRule } from "../runtime/correlation";
import type { KinesisRecord } from "../runtime/records";
import type { OutgoingMessage } from "../runtime/sqs";
import { ACTIVITY_MESSAGE_VERSION, type ActivityMessage, type ActivitySource } from "./activity";
import { rescoreItem, type RescoreItem } from "./rescore";
import { parseIsoDateTime, type StreamReading } from "./streamReading";

/**
 * When the fan acted: the event's own timestamp when present and valid, else when Kinesis took
 * the record (`approximateArrivalTimestamp`, epoch seconds), else now. ISO 8601, UTC.
 */
export function activityTime(timestamp: unknown, arrivalSeconds: number | undefined, now: Date): string {
  const own = parseIsoDateTime(timestamp);
  if (own) return own.toISOString();
  if (arrivalSeconds !== undefined && Number.isFinite(arrivalSeconds) && arrivalSeconds > 0) {
    const arrival = new Date(Math.round(arrivalSeconds * 1000));
    if (!Number.isNaN(arrival.getTime())) return arrival.toISOString();
  }
  return now.toISOString();
}

/** A stable FIFO deduplication id: the sha256 (hex) of what identifies the producing record. */
export function deduplicationId(...identity: readonly string[]): string {
  return createHash("sha256").update(identity.join("\n"), "utf8").digest("hex");
}

/** What identifies a stream record for an activity of `source`: the stream and the record's position in it. */
export function streamRecordIdentity(source: ActivitySource, record: KinesisRecord): string[] {
  return [source, record.eventSourceARN ?? "", record.kinesis.sequenceNumber];
}

/** A record read as activity, ready to send. */
export interface PlannedActivity {
  /** The producing record's id in the batch (a Kinesis record's sequence number: its identifier in the batch response). */
  readonly id: string;
  readonly message: ActivityMessage;
  readonly deduplicationId: string;
  /** The activity's correlation id (docs/following-an-activity.md), sent as the message attribute `correlationId`. */
  readonly correlation: Correlation;
}

/**
 * The activity a reading stands for, with the FIFO deduplication id of its record and its
 * correlation id: the one the record carries, else made from the same identity as the
 * deduplication id. Workers pass the rule they built at cold start.
 */
export function planActivity(
  source: ActivitySource,
  action: string,
  record: KinesisRecord,
  reading: Extract<StreamReading, { kind: "activity" }>,
  now: Date,
  correlationOf: CorrelationRule = createCorrelationRule(),
): PlannedActivity {
  const at = activityTime(reading.timestamp, record.kinesis.approximateArrivalTimestamp, now);
  const identity = reading.identity === undefined ? streamRecordIdentity(source, record) : [reading.identity];
  return {
    id: record.kinesis.sequenceNumber,
    message: { v: ACTIVITY_MESSAGE_VERSION, globalUserId: reading.globalUserId, source, action, at },
    deduplicationId: deduplicationId(...identity),
    correlation: correlationOf(reading.correlationId, identity),
  };
}

/**
 * The outgoing message of an activity: its body the versioned activity message, JSON; FIFO queues
 * group by fan and deduplicate by record; every message carries the correlation id as a message
 * attribute (transport metadata, beside the body rather than in it).
 */
export function outgoingMessage(activity: PlannedActivity, fifo: boolean): OutgoingMessage {
  const body = JSON.stringify(activity.message);
  const attributes = correlationAttributes(activity.correlation.id);
  return fifo
    ? { id: activity.id, body, groupId: activity.message.globalUserId, deduplicationId: activity.deduplicationId, attributes }
    : { id: activity.id, body, attributes };
}

/**
 * The rescore records a batch's activities call for, one per fan and date, each with the
 * records that depend on it (so a failed write fails each of them) and the correlation id of the
 * first activity that called for it.
 */
export function plannedRescores(
  activities: readonly PlannedActivity[],
  now: Date,
  delayDays: number,
): { item: RescoreItem; records: string[] }[] {
  const byKey = new Map<string, { item: RescoreItem; records: string[] }>();
  for (const activity of activities) {
    const { globalUserId, source, at } = activity.message;
    const item = rescoreItem(globalUserId, source, new Date(at), now, delayDays, activity.correlation.id);
    const planned = byKey.get(item.userId);
    if (planned) planned.records.push(activity.id);
    else byKey.set(item.userId, { item, records: [activity.id] });
  }
  return [...byKey.values()];
}
