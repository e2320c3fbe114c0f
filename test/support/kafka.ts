/**
 * Self-managed Kafka events built from the user-activity fixtures in test/fixtures/events, for the
 * tests of enqueueFromActivityStream and of the decoding behind it.
 */
import type { BatchResponse, KafkaItemIdentifier } from "../../workers/shared/runtime/batch";
import { fixture } from "./fixtures";
import { sha256 } from "./streams";

export interface KafkaFixtureRecord {
  topic: string;
  partition: number;
  offset: number;
  timestamp?: number;
  timestampType?: string;
  key?: string | null;
  value?: string | null;
  headers?: Record<string, number[]>[];
}

export interface KafkaFixtureEvent {
  eventSource: string;
  bootstrapServers?: string;
  records: Record<string, KafkaFixtureRecord[]>;
}

export const TOPIC = "user-activity-qa1";

/** The AWS docs' spelling of the event source (`SelfManagedKafka`): two partitions, three records. */
export const docsEvent = () => fixture<KafkaFixtureEvent>("kafka-user-activity.json");
/** Powertools' spelling (`aws:SelfManagedKafka`): one record. */
export const powertoolsEvent = () => fixture<KafkaFixtureEvent>("kafka-user-activity-powertools.json");

/** The record every built record is modelled on: the docs fixture's first. */
export const template = (): KafkaFixtureRecord => docsEvent().records[`${TOPIC}-0`]![0]!;

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** The JSON a record's value carries. */
export function valueOf(record: KafkaFixtureRecord): unknown {
  return JSON.parse(Buffer.from(record.value!, "base64").toString("utf8"));
}

/** An activity as the user-activity topic carries it. */
export const activity = (
  globalUserId: string,
  action = "login",
  result = "success",
  timestamp: unknown = "2026-11-24T18:09:15.370Z",
) => ({
  globalUserId,
  action,
  result,
  timestamp,
  metadata: { clientId: "fan-portal", ipCountry: "US" },
});

export interface KafkaRecordOptions {
  /** `value` exactly as given (not JSON-encoded, not base64-encoded); null is a tombstone. */
  readonly rawValue?: string | null;
  /** Leaves `value` out. */
  readonly noValue?: boolean;
  /** The record's own timestamp (epoch ms); null leaves it out. */
  readonly timestamp?: number | null;
}

/** The template record at `partition` and `offset` of the user-activity topic, carrying `payload` (JSON). */
export function kafkaRecord(
  partition: number,
  offset: number,
  payload: unknown,
  options: KafkaRecordOptions = {},
): KafkaFixtureRecord {
  const record: KafkaFixtureRecord = { ...template(), partition, offset };
  if (options.noValue) delete record.value;
  else record.value = options.rawValue !== undefined ? options.rawValue : base64(JSON.stringify(payload));
  if (options.timestamp === null) delete record.timestamp;
  else if (options.timestamp !== undefined) record.timestamp = options.timestamp;
  return record;
}

/** An event carrying `records`, grouped by `<topic>-<partition>` as Lambda groups them, in the order given. */
export function kafkaEvent(records: readonly KafkaFixtureRecord[], eventSource = "SelfManagedKafka"): KafkaFixtureEvent {
  const grouped: Record<string, KafkaFixtureRecord[]> = {};
  for (const record of records) (grouped[`${record.topic}-${record.partition}`] ??= []).push(record);
  return { eventSource, bootstrapServers: docsEvent().bootstrapServers, records: grouped };
}

/** The identifier Lambda expects back for a record of the user-activity topic. */
export const at = (partition: number, offset: number): KafkaItemIdentifier => ({ partition: `${TOPIC}-${partition}`, offset });

/** The identifiers a Kafka batch response fails, in order. */
export const kafkaFailuresOf = (response: BatchResponse<KafkaItemIdentifier>) =>
  response.batchItemFailures.map((failure) => failure.itemIdentifier);

/** The FIFO deduplication id of a record: the sha256 of its topic, partition and offset. */
export const deduplicationIdOf = (record: Pick<KafkaFixtureRecord, "topic" | "partition" | "offset">) =>
  sha256(`${record.topic}\n${record.partition}\n${record.offset}`);
