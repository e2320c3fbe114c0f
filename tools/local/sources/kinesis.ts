/**
 * A Kinesis event source mapping: one poller per shard reads the stream in order (kinesalite),
 * keeps the records the filter criteria deliver, gathers them into batches of the mapping's
 * size within its batching window, and delivers each as Lambda does (streamDelivery.ts). Records
 * given up on go to the on-failure destination as Lambda's metadata record: a pointer to the
 * shard's sequence numbers, not the data.
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  ListShardsCommand,
  type _Record,
} from "@aws-sdk/client-kinesis";
import type { InvokeOutcome } from "../lambda/pool";
import type { Report } from "../types";
import type { PlannedFunction, StreamMapping } from "../wiring";
import { checkPattern, delivers } from "./filter";
import { deliverBatch, failureContext } from "./streamDelivery";

export interface KinesisMappingOptions {
  readonly mapping: StreamMapping;
  readonly fn: PlannedFunction;
  readonly kinesis: KinesisClient;
  readonly streamName: string;
  readonly invoke: (event: unknown) => Promise<InvokeOutcome>;
  /** Sends an on-failure record to the destination named by ARN. */
  readonly sendFailure: (destinationArn: string, record: object) => Promise<void>;
  readonly report: Report;
  /** How long an idle shard waits before polling again. */
  readonly idleMs?: number;
}

export interface RunningMapping {
  /** Records read but not yet done (delivered, filtered or parked). */
  pending(): number;
  stop(): Promise<void>;
}

/** A record as read from a shard, with the shard it came from. */
export interface ShardRecord {
  readonly shardId: string;
  readonly record: _Record;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The event Lambda hands a function for Kinesis records of `streamArn`, as its mapping builds it
 * (also what `npm run redrive` re-delivers).
 */
export function kinesisEvent(
  fn: Pick<PlannedFunction, "roleArn" | "region">,
  streamArn: string | undefined,
  records: readonly ShardRecord[],
) {
  return {
    Records: records.map(({ shardId, record }) => ({
      kinesis: {
        kinesisSchemaVersion: "1.0",
        partitionKey: record.PartitionKey,
        sequenceNumber: record.SequenceNumber,
        data: Buffer.from(record.Data ?? new Uint8Array()).toString("base64"),
        approximateArrivalTimestamp: (record.ApproximateArrivalTimestamp?.getTime() ?? Date.now()) / 1000,
      },
      eventSource: "aws:kinesis",
      eventVersion: "1.0",
      eventID: `${shardId}:${record.SequenceNumber}`,
      eventName: "aws:kinesis:record",
      invokeIdentityArn: fn.roleArn,
      awsRegion: fn.region,
      eventSourceARN: streamArn,
    })),
  };
}

/** Whether the mapping's filter criteria deliver the record to its function. */
export function isDelivered(mapping: StreamMapping, record: _Record): boolean {
  const metadata = {
    partitionKey: record.PartitionKey,
    sequenceNumber: record.SequenceNumber,
    kinesisSchemaVersion: "1.0",
    approximateArrivalTimestamp: record.ApproximateArrivalTimestamp?.getTime(),
  };
  return delivers(mapping.filters, metadata, "data", () => Buffer.from(record.Data ?? new Uint8Array()).toString("utf8"));
}

/** Starts polling every shard of the stream; resolves once each shard has its starting position. */
export async function startKinesisMapping(options: KinesisMappingOptions): Promise<RunningMapping> {
  const { mapping, kinesis, report } = options;
  mapping.filters.forEach((pattern) => checkPattern(pattern, `mapping ${mapping.name}`));
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: options.streamName }))).Shards ?? [];
  let stopping = false;
  let pending = 0;

  const park = async (records: readonly ShardRecord[], outcome: InvokeOutcome, attempts: number) => {
    const first = records[0]!;
    const last = records.at(-1)!;
    const arrival = (record: _Record) => (record.ApproximateArrivalTimestamp ?? new Date()).toISOString();
    const failure = {
      ...failureContext(options.fn.arn, outcome, attempts),
      KinesisBatchInfo: {
        shardId: first.shardId,
        startSequenceNumber: first.record.SequenceNumber,
        endSequenceNumber: last.record.SequenceNumber,
        approximateArrivalOfFirstRecord: arrival(first.record),
        approximateArrivalOfLastRecord: arrival(last.record),
        batchSize: records.length,
        streamArn: mapping.streamArn,
      },
    };
    if (mapping.onFailureArn) await options.sendFailure(mapping.onFailureArn, failure);
    report({ kind: "parked", mapping: mapping.name, destination: mapping.onFailureArn ?? "(discarded)", count: records.length });
  };

  const policy = {
    reportBatchItemFailures: mapping.reportBatchItemFailures,
    bisectOnError: mapping.bisectOnError,
    maximumRetryAttempts: mapping.maximumRetryAttempts,
    idOf: (record: ShardRecord) => record.record.SequenceNumber!,
    keyOfReported: (identifier: unknown) => (typeof identifier === "string" && identifier !== "" ? identifier : undefined),
    invoke: (records: readonly ShardRecord[]) => {
      report({
        kind: "delivered",
        mapping: mapping.name,
        count: records.length,
        records: records.map((record) => record.record.SequenceNumber!),
      });
      return options.invoke(kinesisEvent(options.fn, mapping.streamArn, records));
    },
    park,
  };

  const poll = async (shardId: string, iterator: string | undefined) => {
    const buffer: ShardRecord[] = [];
    let windowStart = 0;
    while (!stopping && iterator) {
      const answer = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      iterator = answer.NextShardIterator;
      const records = answer.Records ?? [];
      pending += records.length;
      const kept = records.filter((record) => isDelivered(mapping, record));
      if (records.length > kept.length) {
        report({ kind: "filtered", mapping: mapping.name, count: records.length - kept.length });
        pending -= records.length - kept.length;
      }
      if (buffer.length === 0 && kept.length > 0) windowStart = Date.now();
      buffer.push(...kept.map((record) => ({ shardId, record })));
      const windowOver = Date.now() - windowStart >= mapping.batchingWindowSeconds * 1000;
      if (buffer.length >= mapping.batchSize || (buffer.length > 0 && windowOver)) {
        while (buffer.length >= mapping.batchSize || (buffer.length > 0 && windowOver)) {
          const batch = buffer.splice(0, mapping.batchSize);
          await deliverBatch(policy, batch);
          pending -= batch.length;
        }
        windowStart = Date.now();
      } else if (records.length === 0) {
        await sleep(options.idleMs ?? 100);
      }
    }
  };

  const pollers = await Promise.all(
    shards.map(async (shard) => {
      const { ShardIterator } = await kinesis.send(
        new GetShardIteratorCommand({
          StreamName: options.streamName,
          ShardId: shard.ShardId,
          ShardIteratorType: mapping.startingPosition,
        }),
      );
      return () => poll(shard.ShardId!, ShardIterator);
    }),
  );
  const running = pollers.map((start) =>
    start().catch((error: unknown) => {
      if (!stopping)
        report({ kind: "output", function: options.fn.name, text: `mapping ${mapping.name} stopped: ${String(error)}` });
    }),
  );
  return {
    pending: () => pending,
    async stop() {
      stopping = true;
      await Promise.all(running);
    },
  };
}
