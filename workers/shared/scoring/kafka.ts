/**
 * The Kafka user-activity topic (docs/flows.md#kafka-user-activity): the events Lambda delivers
 * from a self-managed Kafka source, what a record means for scoring, and the scorable ones
 * (docs/rules.md#scorable-activities) planned as messages for the account-activity FIFO queue.
 * Pure functions; the worker (enqueueFromActivityStream) reads each record's value and does the I/O.
 */
import { z } from "../zod";
import { itemKey, type KafkaItemIdentifier } from "../runtime/batch";
import { createCorrelationRule, type CorrelationRule } from "../runtime/correlation";
import type { ParkedSource } from "../runtime/parking";
import { ACTIVITY_MESSAGE_VERSION } from "./activity";
import { activityTime, deduplicationId, type PlannedActivity } from "./enqueuePlan";

/** Lambda's docs spell a self-managed source `SelfManagedKafka`; events also come as `aws:SelfManagedKafka`. */
export const KAFKA_EVENT_SOURCES = ["SelfManagedKafka", "aws:SelfManagedKafka"] as const;

/** A self-managed Kafka event: records grouped by `<topic>-<partition>`; only what the worker reads is required. */
export const kafkaEventSchema = () =>
  z.object({
    eventSource: z.enum(KAFKA_EVENT_SOURCES),
    bootstrapServers: z.optional(z.string()),
    records: z.record(
      z.string().check(z.minLength(1)),
      z.array(
        z.object({
          topic: z.string().check(z.minLength(1)),
          partition: z.number().check(z.int(), z.gte(0)),
          offset: z.number().check(z.int(), z.gte(0)),
          /** Epoch milliseconds (CREATE_TIME or LOG_APPEND_TIME); -1 when the record has none. */
          timestamp: z.optional(z.number()),
          timestampType: z.optional(z.string()),
          // Base64; a tombstone has a null value, a record may have no key.
          key: z.nullish(z.string()),
          value: z.nullish(z.string()),
          headers: z.optional(z.array(z.unknown())),
        }),
      ),
    ),
  });
export type KafkaEvent = z.infer<ReturnType<typeof kafkaEventSchema>>;
export type KafkaRecord = KafkaEvent["records"][string][number];

/** A record of the event with its identifier in the batch response. */
export interface IdentifiedKafkaRecord {
  readonly id: KafkaItemIdentifier;
  readonly record: KafkaRecord;
  /** The record exactly as Lambda delivered it (from the event before parsing, when given). */
  readonly delivered: unknown;
}

/**
 * The event's records in the order Lambda delivered them (partition by partition, each by offset),
 * each identified by the group it came in (`<topic>-<partition>`, as Lambda expects it back) and
 * its offset. `delivered` is the event as Lambda delivered it, of which `event` is the parse.
 */
export function kafkaRecordsInOrder(event: KafkaEvent, delivered: unknown = event): IdentifiedKafkaRecord[] {
  const raw = (delivered as { records?: Record<string, readonly unknown[]> } | null)?.records ?? {};
  return Object.entries(event.records).flatMap(([partition, records]) =>
    records.map((record, index) => ({
      id: { partition, offset: record.offset },
      record,
      delivered: raw[partition]?.[index] ?? record,
    })),
  );
}

/** Where a Kafka record was read, as its parked record names it. */
export function kafkaParkedSource(record: KafkaRecord): ParkedSource {
  return { kind: "kafka", topic: record.topic, partition: record.partition, offset: record.offset };
}

/** What one user-activity record means for scoring. */
export type KafkaReading =
  | {
      readonly kind: "activity";
      readonly globalUserId: string;
      readonly action: string;
      /** The activity's own time, as it gives it (ISO 8601 or epoch milliseconds). */
      readonly timestamp?: unknown;
      /** The correlation id the record carries (its header, else its value's field), unchecked. */
      readonly correlationId?: unknown;
    }
  | { readonly kind: "skip"; readonly reason: string }
  | { readonly kind: "fail"; readonly reason: string };

// 9999-12-31T23:59:59.999Z: the last instant ISO 8601 writes with a four-digit year, as the queues' messages carry it.
const LATEST_EPOCH_MS = 253_402_300_799_999;

/** An epoch-milliseconds time the queues can carry, else undefined. */
function epochMillis(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value > 0 && value <= LATEST_EPOCH_MS ? value : undefined;
}

/**
 * When the fan acted: the activity's own timestamp (ISO 8601 with a zone, or epoch milliseconds)
 * when valid, else the Kafka record's timestamp (epoch milliseconds; -1 when it has none), else now.
 */
export function kafkaActivityTime(timestamp: unknown, recordTimestamp: number | undefined, now: Date): string {
  const own = typeof timestamp === "number" ? epochMillis(timestamp) : undefined;
  const fallback = epochMillis(recordTimestamp);
  return activityTime(
    own === undefined ? timestamp : new Date(own).toISOString(),
    fallback === undefined ? undefined : fallback / 1000,
    now,
  );
}

/**
 * The value of a record's header `name`, as text. Lambda delivers headers as a list of one-key
 * objects, each value the header's bytes as a JSON array of numbers (Java bytes, so -128..127);
 * no library reads that shape, hence this. Undefined when absent; a value that is not such an
 * array comes back as it is, for the caller's check to refuse.
 */
export function kafkaHeader(record: KafkaRecord, name: string): unknown {
  for (const header of record.headers ?? []) {
    if (typeof header !== "object" || header === null || !Object.hasOwn(header, name)) continue;
    const bytes = (header as Record<string, unknown>)[name];
    if (!Array.isArray(bytes) || !bytes.every((byte) => Number.isInteger(byte) && byte >= -128 && byte <= 255)) return bytes;
    return Buffer.from(bytes.map((byte: number) => byte & 0xff)).toString("utf8");
  }
  return undefined;
}

/** What identifies a Kafka record, hashed into its FIFO deduplication id: its topic, partition and offset. */
export function kafkaRecordIdentity(record: KafkaRecord): string[] {
  return [record.topic, String(record.partition), String(record.offset)];
}

/**
 * The activity message a scorable record stands for, identified by the `itemKey` of its
 * identifier, with its correlation id: the one it carries, else made from its topic, partition
 * and offset. Workers pass the rule they built at cold start.
 */
export function planKafkaActivity(
  id: KafkaItemIdentifier,
  record: KafkaRecord,
  reading: Extract<KafkaReading, { kind: "activity" }>,
  now: Date,
  correlationOf: CorrelationRule = createCorrelationRule(),
): PlannedActivity {
  return {
    id: itemKey(id),
    message: {
      v: ACTIVITY_MESSAGE_VERSION,
      globalUserId: reading.globalUserId,
      source: "kafka",
      action: reading.action,
      at: kafkaActivityTime(reading.timestamp, record.timestamp, now),
    },
    deduplicationId: deduplicationId(...kafkaRecordIdentity(record)),
    correlation: correlationOf(reading.correlationId, kafkaRecordIdentity(record)),
  };
}
