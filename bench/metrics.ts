/**
 * What the worker metrics cost per record (target: under 2 µs).
 *
 * 1. A worker with and without its metrics: enqueueFromPurchaseStream on a batch of 100 Kinesis
 *    records (all purchases, then 5 of them undecodable, which it parks), SQS and DynamoDB answered at once in
 *    process, so the difference is the metrics' own work: counting, and per invocation building
 *    and writing the EMF documents. CPU time, in blocks rotating between the two and a second
 *    handler without metrics (how far two identical handlers lie apart: the noise), many times;
 *    medians of each, their difference per record. The publishing is also timed where it runs.
 * 2. The metrics alone, warm in a tight loop, per invocation of the batch with parked records: the
 *    counts, and publishing its two documents.
 * 3. The two ways to write a document per extra-dimension value: a `Metrics` kept per value (what
 *    runtime/metrics.ts does) against Powertools' `singleMetric()`, which builds a new one per
 *    document.
 *
 * The EMF documents go to stdout as in Lambda; here stdout's writes are dropped while timing, so
 * the terminal's speed is not measured (the string is still built and written).
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { Logger } from "@aws-lambda-powertools/logger";
import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import { createEnqueueFromPurchaseStream } from "../workers/enqueueFromPurchaseStream";
import { enqueueFromPurchaseStreamContract } from "../workers/enqueueFromPurchaseStream/contract";
import { instrumentHandler } from "../workers/shared/runtime/handler";
import { createWorkerMetrics } from "../workers/shared/runtime/metrics";
import { METRICS_NAMESPACE } from "../workers/shared/runtime/telemetry";
import { median, met, type Part, type Row } from "./report";

const RECORDS = 100;
const INVALID = 5;
const ROUNDS = Number(process.env.BENCH_METRICS_ROUNDS ?? 800);
/** Invocations timed together: process.cpuUsage counts in microseconds, too coarse for one. */
const BLOCK = 10;
const WARM_BLOCKS = 5;
const TARGET_US = 2;

const sequenceNumber = (index: number) => `49657828409187701520019995242508390119953358325${String(index).padStart(9, "0")}`;

function batch(invalid: number) {
  const Records = Array.from({ length: RECORDS }, (_, index) => {
    const purchase = {
      purchaseId: `ord-${index}`,
      status: "SUCCESS",
      customer: { globalUserId: `gu-${(0x100000 + index).toString(16)}` },
      timestamp: new Date(Date.UTC(2026, 10, 24, 9, 0, index % 60)).toISOString(),
    };
    const data =
      index < invalid ? Buffer.from("not json").toString("base64") : Buffer.from(JSON.stringify(purchase)).toString("base64");
    return {
      kinesis: {
        kinesisSchemaVersion: "1.0",
        partitionKey: `pk-${index}`,
        sequenceNumber: sequenceNumber(index),
        data,
        approximateArrivalTimestamp: 1795511755.932,
      },
      eventSource: "aws:kinesis",
      eventVersion: "1.0",
      eventID: `shardId-000000000000:${sequenceNumber(index)}`,
      eventName: "aws:kinesis:record",
      invokeIdentityArn: "arn:aws:iam::210987654321:role/bench",
      awsRegion: "us-east-1",
      eventSourceARN: "arn:aws:kinesis:us-east-1:210987654321:stream/purchase-stream-bench",
    };
  });
  return { Records };
}

/** Answers every call at once. */
const sqs = {
  send: async (command: { input: { Entries: { Id: string }[] } }) => ({
    Successful: command.input.Entries.map(({ Id }) => ({ Id })),
    Failed: [],
  }),
} as unknown as SQSClient;
const dynamo = { send: async () => ({}) } as unknown as DynamoDBDocumentClient;
const env = {
  ACTIVITY_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/210987654321/bench.fifo",
  TABLE_NAME: "bench",
  RESCORE_DELAY_DAYS: 5,
  FAILURE_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/210987654321/bench-failures",
};

/** Runs `action` with stdout's writes dropped; returns what it returns and the bytes it wrote. */
async function quietly<T>(action: () => Promise<T>): Promise<{ result: T; bytes: number }> {
  const write = process.stdout.write;
  let bytes = 0;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    bytes += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.length;
    return true;
  }) as typeof process.stdout.write;
  try {
    return { result: await action(), bytes };
  } finally {
    process.stdout.write = write;
  }
}

const micros = (from: bigint) => Number(process.hrtime.bigint() - from) / 1000;
const us = (value: number) => `${value.toFixed(2)} µs`;

/**
 * CPU time per invocation with and without metrics, in blocks of BLOCK invocations rotating
 * among the handlers (a shared machine's load changes by the second; CPU time, not wall time, and
 * rotation keep that out of the difference).
 */
async function withAndWithout(
  invalid: number,
): Promise<{ rows: string[][]; perRecord: number; noise: number; bytes: number; publishing: number }> {
  const logger = new Logger({ serviceName: "bench", logLevel: "ERROR" });
  const event = batch(invalid);
  const without = createEnqueueFromPurchaseStream({ env, sqs, dynamo, logger });
  const recorder = createWorkerMetrics(enqueueFromPurchaseStreamContract);
  // The same metrics, with each invocation's publishing timed where it runs, between the worker's own work.
  const publishing: number[] = [];
  const metrics = {
    ...recorder,
    publish: () => {
      const started = process.hrtime.bigint();
      recorder.publish();
      publishing.push(micros(started));
    },
  };
  const withMetrics = instrumentHandler(
    { logger, metrics },
    createEnqueueFromPurchaseStream({ env, sqs, dynamo, logger, metrics }),
  );
  // A second handler without metrics: how far two identical handlers' medians lie apart here.
  const again = createEnqueueFromPurchaseStream({ env, sqs, dynamo, logger });
  const handlers = { without, with: withMetrics, again };
  const times = { without: [] as number[], with: [] as number[], again: [] as number[] };
  const kinds = ["without", "with", "again"] as const;
  const blocks = Math.max(20, Math.round(ROUNDS / BLOCK));
  const { bytes } = await quietly(async () => {
    for (let block = 0; block < blocks + WARM_BLOCKS; block++) {
      const order = kinds.map((_, index) => kinds[(index + block) % kinds.length]!);
      for (const which of order) {
        const started = process.cpuUsage();
        for (let invocation = 0; invocation < BLOCK; invocation++) await handlers[which](event);
        const used = process.cpuUsage(started);
        if (block >= WARM_BLOCKS) times[which].push((used.user + used.system) / BLOCK);
      }
    }
  });
  const plain = median(times.without);
  const measured = median(times.with);
  const perRecord = (measured - plain) / RECORDS;
  return {
    rows: [
      ["without metrics", us(plain), us(plain / RECORDS)],
      ["without, a second handler", us(median(times.again)), us(median(times.again) / RECORDS)],
      ["with metrics", us(measured), us(measured / RECORDS)],
      ["difference (with − without)", us(measured - plain), us(perRecord)],
      ["noise (second − first without)", us(median(times.again) - plain), us((median(times.again) - plain) / RECORDS)],
    ],
    perRecord,
    noise: Math.abs(median(times.again) - plain) / RECORDS,
    bytes: Math.round(bytes / ((blocks + WARM_BLOCKS) * BLOCK)),
    publishing: median(publishing.slice(WARM_BLOCKS * BLOCK)),
  };
}

async function metricsAlone(): Promise<number> {
  const metrics = createWorkerMetrics(enqueueFromPurchaseStreamContract, { environment: "bench", region: "us-east-1" });
  const times: number[] = [];
  await quietly(async () => {
    for (let round = 0; round < ROUNDS + 50; round++) {
      const started = process.hrtime.bigint();
      metrics.started();
      metrics.received(RECORDS);
      for (let poison = 0; poison < INVALID; poison++) metrics.parked("invalid");
      metrics.skipped(0);
      metrics.processed(RECORDS - INVALID);
      metrics.publish();
      if (round >= 50) times.push(micros(started));
    }
  });
  return median(times);
}

/** Three documents of one metric each, with one extra dimension, written `rounds` times each way. */
async function strategies(): Promise<Record<string, number>> {
  const defaults = { environment: "bench", region: "us-east-1" };
  const values = ["invalid", "dependency", "throttled"];
  const build = (extra: Record<string, string> = {}) =>
    new Metrics({ namespace: METRICS_NAMESPACE, serviceName: "bench", defaultDimensions: { ...defaults, ...extra } });
  const main = build();
  const kept = new Map(values.map((value) => [value, build({ reason: value })]));
  const kinds = {
    "a Metrics kept per value": () => {
      for (const value of values) {
        const document = kept.get(value)!;
        document.addMetric("RecordsFailed", MetricUnit.Count, 1);
        document.publishStoredMetrics();
      }
    },
    "singleMetric() per document": () => {
      for (const value of values) {
        const single = main.singleMetric();
        single.addDimension("reason", value);
        single.addMetric("RecordsFailed", MetricUnit.Count, 1);
      }
    },
  };
  const rows: Record<string, number> = {};
  await quietly(async () => {
    for (const [name, write] of Object.entries(kinds)) {
      const times: number[] = [];
      for (let round = 0; round < ROUNDS + 50; round++) {
        const started = process.hrtime.bigint();
        write();
        if (round >= 50) times.push(micros(started) / values.length);
      }
      rows[name] = median(times);
    }
  });
  return rows;
}

export async function benchMetrics(): Promise<Part> {
  const rows: Row[] = [];
  const target = `< ${TARGET_US} µs`;
  for (const invalid of [0, INVALID]) {
    const compared = await withAndWithout(invalid);
    const batch = `batch of ${RECORDS}, ${invalid} undecodable`;
    rows.push({
      what: `metrics CPU per record (with − without), ${batch}`,
      figure: us(compared.perRecord),
      anchor: `two handlers without ${us(compared.noise)} apart`,
      target,
      met: met(compared.perRecord < TARGET_US),
    });
    rows.push({
      what: `metrics publishing per record, timed in place, ${batch}`,
      figure: us(compared.publishing / RECORDS),
      anchor: `${compared.bytes} bytes of EMF per invocation`,
      target,
      met: met(compared.publishing / RECORDS < TARGET_US),
    });
  }
  const alone = await metricsAlone();
  rows.push({
    what: `metrics alone per record, warm loop, batch with ${INVALID} parked`,
    figure: us(alone / RECORDS),
    target,
    met: met(alone / RECORDS < TARGET_US),
  });
  const ways = await strategies();
  const kept = ways["a Metrics kept per value"]!;
  const single = ways["singleMetric() per document"]!;
  rows.push({
    what: "EMF document per extra-dimension value, a Metrics kept per value",
    figure: us(kept),
    anchor: `singleMetric() per document ${us(single)}`,
    against: `${(kept / single).toFixed(2)}×`,
  });
  return {
    how:
      `enqueueFromPurchaseStream on batches of ${RECORDS} records, clients answering in process, CPU time of ${ROUNDS} ` +
      "invocations each way in rotating blocks, medians; stdout's writes dropped while timing",
    rows,
  };
}
