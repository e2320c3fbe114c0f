/**
 * The user-activity topic, locally: no Kafka broker can be installed here, so the topic is a
 * partitioned, append-only log in memory (records keyed to a partition by a hash of their key,
 * offsets from 0 per partition), and the self-managed Kafka event source mapping reads it as
 * Lambda's pollers read a topic: each partition in order, batches up to the mapping's size
 * within its batching window, the event in Lambda's self-managed Kafka shape (records grouped by
 * `<topic>-<partition>`, key and value base64), partial batch failures by partition and offset,
 * bisect, retries and the on-failure destination as for Kinesis (streamDelivery.ts).
 */
import { createHash } from "node:crypto";
import type { InvokeOutcome } from "../lambda/pool";
import type { Report } from "../types";
import type { PlannedFunction, StreamMapping } from "../wiring";
import { checkPattern, delivers } from "./filter";
import type { RunningMapping } from "./kinesis";
import { deliverBatch, failureContext } from "./streamDelivery";

export interface KafkaRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly timestamp: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

export interface KafkaLog {
  readonly topic: string;
  readonly partitions: number;
  /** Appends records; answers where each went. */
  produce(records: readonly { key: string; value: Buffer | null; timestamp?: number }[]): { partition: number; offset: number }[];
  /** The offset the next record of `partition` will get. */
  end(partition: number): number;
  read(partition: number, from: number, max: number): KafkaRecord[];
  /** Resolves when `partition` has a record at `offset`, or after `ms`. */
  waitFor(partition: number, offset: number, ms: number): Promise<void>;
}

/** A topic of `partitions` partitions. */
export function createKafkaLog(topic: string, partitions: number): KafkaLog {
  const logs: KafkaRecord[][] = Array.from({ length: partitions }, () => []);
  const waiters: (() => void)[][] = Array.from({ length: partitions }, () => []);
  return {
    topic,
    partitions,
    produce(records) {
      return records.map(({ key, value, timestamp }) => {
        const partition = createHash("md5").update(key).digest().readUInt32BE(0) % partitions;
        const offset = logs[partition]!.length;
        logs[partition]!.push({ topic, partition, offset, timestamp: timestamp ?? Date.now(), key: Buffer.from(key), value });
        waiters[partition]!.splice(0).forEach((wake) => wake());
        return { partition, offset };
      });
    },
    end: (partition) => logs[partition]!.length,
    read: (partition, from, max) => logs[partition]!.slice(from, from + max),
    waitFor(partition, offset, ms) {
      if (logs[partition]!.length > offset) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        waiters[partition]!.push(() => (clearTimeout(timer), resolve()));
      });
    },
  };
}

export interface KafkaMappingOptions {
  readonly mapping: StreamMapping;
  readonly fn: PlannedFunction;
  readonly log: KafkaLog;
  readonly invoke: (event: unknown) => Promise<InvokeOutcome>;
  readonly sendFailure: (destinationArn: string, record: object) => Promise<void>;
  readonly report: Report;
}

const partitionKey = (record: KafkaRecord) => `${record.topic}-${record.partition}`;
const recordKey = (record: KafkaRecord) => `${partitionKey(record)}@${record.offset}`;

/**
 * The event Lambda hands a function for self-managed Kafka records, given as Lambda delivers each
 * (key and value base64): grouped by `<topic>-<partition>`, in the order given (also what
 * `npm run redrive` re-delivers a parked record in).
 */
export function selfManagedKafkaEvent(
  bootstrapServers: string | undefined,
  records: readonly { readonly topic: string; readonly partition: number }[],
) {
  const grouped: Record<string, object[]> = {};
  for (const record of records) (grouped[`${record.topic}-${record.partition}`] ??= []).push(record);
  return { eventSource: "SelfManagedKafka", bootstrapServers, records: grouped };
}

/** The event Lambda hands a function for records of the local topic. */
function kafkaEvent(options: KafkaMappingOptions, records: readonly KafkaRecord[]) {
  return selfManagedKafkaEvent(
    options.mapping.bootstrapServers,
    records.map((record) => ({
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      timestampType: "CREATE_TIME",
      key: record.key?.toString("base64"),
      value: record.value === null ? null : record.value.toString("base64"),
      headers: [],
    })),
  );
}

/** The on-failure record for Kafka: which offsets of which partition were given up on. */
function kafkaFailure(options: KafkaMappingOptions, records: readonly KafkaRecord[], outcome: InvokeOutcome, attempts: number) {
  const first = records[0]!;
  const last = records.at(-1)!;
  return {
    ...failureContext(options.fn.arn, outcome, attempts),
    KafkaBatchInfo: {
      batchSize: records.length,
      bootstrapServers: options.mapping.bootstrapServers,
      consumerGroupId: options.mapping.consumerGroupId,
      payloadSize: records.reduce((size, record) => size + (record.value?.length ?? 0), 0),
      recordsInfo: {
        [partitionKey(first)]: {
          firstRecordOffset: String(first.offset),
          firstRecordTimestamp: new Date(first.timestamp).toISOString(),
          lastRecordOffset: String(last.offset),
          lastRecordTimestamp: new Date(last.timestamp).toISOString(),
        },
      },
    },
  };
}

/** Starts one consumer per partition, from the end of the log (LATEST) or its start. */
export function startKafkaMapping(options: KafkaMappingOptions): RunningMapping {
  const { mapping, log, report } = options;
  mapping.filters.forEach((pattern) => checkPattern(pattern, `mapping ${mapping.name}`));
  let stopping = false;
  const positions = Array.from({ length: log.partitions }, (_, partition) =>
    mapping.startingPosition === "LATEST" ? log.end(partition) : 0,
  );
  const policy = {
    reportBatchItemFailures: mapping.reportBatchItemFailures,
    bisectOnError: mapping.bisectOnError,
    maximumRetryAttempts: mapping.maximumRetryAttempts,
    idOf: recordKey,
    keyOfReported: (identifier: unknown) => {
      const { partition, offset } = (identifier ?? {}) as { partition?: unknown; offset?: unknown };
      const at = typeof offset === "string" && /^\d+$/.test(offset) ? Number(offset) : offset;
      return typeof partition === "string" && typeof at === "number" ? `${partition}@${at}` : undefined;
    },
    invoke: (records: readonly KafkaRecord[]) => {
      report({ kind: "delivered", mapping: mapping.name, count: records.length, records: records.map(recordKey) });
      return options.invoke(kafkaEvent(options, records));
    },
    park: async (records: readonly KafkaRecord[], outcome: InvokeOutcome, attempts: number) => {
      if (mapping.onFailureArn)
        await options.sendFailure(mapping.onFailureArn, kafkaFailure(options, records, outcome, attempts));
      report({
        kind: "parked",
        mapping: mapping.name,
        destination: mapping.onFailureArn ?? "(discarded)",
        count: records.length,
      });
    },
  };
  const consume = async (partition: number) => {
    while (!stopping) {
      const from = positions[partition]!;
      await log.waitFor(partition, from, 250);
      if (log.end(partition) === from) continue;
      // Gather up to the batch size within the batching window.
      const until = Date.now() + mapping.batchingWindowSeconds * 1000;
      while (!stopping && log.end(partition) - from < mapping.batchSize && Date.now() < until) {
        await log.waitFor(partition, from + mapping.batchSize - 1, Math.max(1, until - Date.now()));
      }
      const records = log.read(partition, from, mapping.batchSize);
      const kept = records.filter((record) =>
        delivers(mapping.filters, { topic: record.topic, partition: record.partition, offset: record.offset }, "value", () =>
          record.value?.toString("utf8"),
        ),
      );
      if (kept.length < records.length) report({ kind: "filtered", mapping: mapping.name, count: records.length - kept.length });
      await deliverBatch(policy, kept);
      positions[partition] = from + records.length;
    }
  };
  const running = positions.map((_, partition) =>
    consume(partition).catch((error: unknown) => {
      if (!stopping)
        report({ kind: "output", function: options.fn.name, text: `mapping ${mapping.name} stopped: ${String(error)}` });
    }),
  );
  return {
    pending: () => positions.reduce((sum, position, partition) => sum + log.end(partition) - position, 0),
    async stop() {
      stopping = true;
      await Promise.all(running);
    },
  };
}
