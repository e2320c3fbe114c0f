/**
 * The scoring workers at volume.
 *
 * 1. CPU work per worker: the handler's own parsing, filtering and mapping, records per second on
 *    one core (process CPU time), with the AWS and HTTP calls answered instantly in process so
 *    only the worker's work is timed.
 * 2. AWS calls per 1,000 records, made to real local services (DynamoDB, SQS) and counted at the
 *    service, next to the minimum the batching limits allow.
 *
 * 1,000 activities from 250 fans, four in a row per fan, in the batch sizes the stacks configure
 * (100 records per stream invocation, 10 messages per queue invocation).
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { BatchGetCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { Logger } from "@aws-lambda-powertools/logger";
import { createEnqueueFromDemandStream } from "../workers/enqueueFromDemandStream";
import { createEnqueueFromPurchaseStream } from "../workers/enqueueFromPurchaseStream";
import { createEnqueueFromSQJourneyStream } from "../workers/enqueueFromSQJourneyStream";
import { createEnqueueFromVfStream } from "../workers/enqueueFromVfStream";
import { createLookupArai } from "../workers/lookupArai";
import type { AraiLookup } from "../workers/lookupArai/araiClient";
import { createProcessRescoreEvents } from "../workers/processRescoreEvents";
import { chunk } from "../workers/shared/runtime/retry";
import { ACTIVITY_MESSAGE_VERSION } from "../workers/shared/scoring/activity";
import { createScoreUsers } from "../workers/scoreUsers";
import { createStagingScoreUsers } from "../workers/stagingScoreUsers";
import araiAnswer from "../test/fixtures/arai/account-activity.json";
import { countOperations } from "../test/support/http";
import { startDynamo, startSqs } from "../test/support/localAws";
import type { Part, Row } from "./report";

const RECORDS = 1000;
const FANS = 250;
const STREAM_BATCH = 100;
const QUEUE_BATCH = 10;
const CPU_ROUNDS = Number(process.env.BENCH_SCORING_ROUNDS ?? 5);

type Handler = (event: unknown) => Promise<{ batchItemFailures: unknown[] }>;

/** Four records in a row per fan, as a burst of activity arrives. */
const BURST = RECORDS / FANS;
const fanOf = (index: number) => `gu-${(0x100000 + Math.floor(index / BURST)).toString(16)}`;
const at = (index: number) => new Date(Date.UTC(2026, 10, 24, 9, 0, index % 60)).toISOString();
const logger = () => new Logger({ serviceName: "bench", logLevel: "ERROR" });

// Events in the shapes Lambda delivers.

function kinesisRecord(index: number, payload: unknown) {
  const sequenceNumber = `49657828409187701520019995242508390119953358325${String(index).padStart(9, "0")}`;
  return {
    kinesis: {
      kinesisSchemaVersion: "1.0",
      partitionKey: fanOf(index),
      sequenceNumber,
      data: Buffer.from(JSON.stringify(payload)).toString("base64"),
      approximateArrivalTimestamp: 1795511755.932,
    },
    eventSource: "aws:kinesis",
    eventVersion: "1.0",
    eventID: `shardId-000000000000:${sequenceNumber}`,
    eventName: "aws:kinesis:record",
    invokeIdentityArn: "arn:aws:iam::210987654321:role/bench",
    awsRegion: "us-east-1",
    eventSourceARN: "arn:aws:kinesis:us-east-1:210987654321:stream/bench",
  };
}

const change = (eventName: string, keys: object, images: { NewImage?: object; OldImage?: object }, ttl = false) => ({
  awsRegion: "us-east-1",
  eventID: `evt-${Math.random().toString(16).slice(2)}`,
  eventName,
  userIdentity: ttl ? { type: "Service", principalId: "dynamodb.amazonaws.com" } : null,
  recordFormat: "application/json",
  tableName: "bench",
  dynamodb: { ApproximateCreationDateTime: 1795511755370, Keys: marshall(keys), ...images, SizeBytes: 2048 },
  eventSource: "aws:dynamodb",
});

const payloads: Record<string, (index: number) => unknown> = {
  vf: (i) => ({ type: "vfLogin", globalUserId: fanOf(i), timestamp: at(i), campaignId: "bench" }),
  purchase: (i) => ({ purchaseId: `ord-${i}`, status: "SUCCESS", customer: { globalUserId: fanOf(i) }, timestamp: at(i) }),
  sqJourney: (i) => ({ globalUserId: fanOf(i), journeyStep: "queue_joined", timestamp: at(i) }),
  demand: (i) =>
    change(
      "INSERT",
      { userId: fanOf(i), eventId: `evt-${i}` },
      { NewImage: marshall({ userId: fanOf(i), eventId: `evt-${i}`, globalUserId: fanOf(i) }) },
    ),
  rescore: (i) => {
    const key = `rescore#${fanOf(i)}#2026-11-29`;
    const old = {
      userId: key,
      type: "rescore",
      globalUserId: fanOf(i),
      rescoreDate: "2026-11-29",
      source: "purchase",
      expiresOn: 1795910400,
    };
    return change("REMOVE", { userId: key }, { OldImage: marshall(old) }, true);
  },
  activityData: (i) => {
    const image = {
      userId: fanOf(i),
      type: "activityData",
      globalUserId: fanOf(i),
      // The snapshot lookupArai stores: the answer's data.
      arai: { ...araiAnswer.data, globalUserId: fanOf(i) },
      araiVersion: 1 + (i % BURST),
    };
    return change("MODIFY", { userId: fanOf(i) }, { NewImage: marshall(image, { removeUndefinedValues: true }) });
  },
};

const kinesisBatches = (payload: (index: number) => unknown) =>
  chunk(
    Array.from({ length: RECORDS }, (_, index) => kinesisRecord(index, payload(index))),
    STREAM_BATCH,
  ).map((Records) => ({ Records }));

const sqsBatches = () =>
  chunk(
    Array.from({ length: RECORDS }, (_, index) => ({
      messageId: `00000000-0000-4000-8000-${String(index).padStart(12, "0")}`,
      receiptHandle: "AQEB",
      body: JSON.stringify({
        v: ACTIVITY_MESSAGE_VERSION,
        globalUserId: fanOf(index),
        source: "purchase",
        action: "purchase",
        at: at(index),
      }),
      attributes: {
        ApproximateReceiveCount: "1",
        SentTimestamp: "1795511755442",
        MessageGroupId: fanOf(index),
        SequenceNumber: String(index),
      },
      messageAttributes: {},
      md5OfBody: "0",
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:us-east-1:210987654321:bench.fifo",
      awsRegion: "us-east-1",
    })),
    QUEUE_BATCH,
  ).map((Records) => ({ Records }));

const predict = async (records: readonly unknown[]) => records.map((_, index) => (index % 100) / 100);
const found = async (globalUserId: string): Promise<AraiLookup> => ({
  status: "found",
  arai: { ...araiAnswer.data, globalUserId },
});

interface Clients {
  sqs: SQSClient;
  dynamo: DynamoDBDocumentClient;
  queue: string;
  standardQueue: string;
  /** Where poison records are parked (none in these batches). */
  failureQueue: string;
  table: string;
  fetchArai: typeof found;
  model: { predict: typeof predict };
}

/** Each worker built from its parts, with the given clients. */
function workers(c: Clients): { name: string; handler: () => Handler; events: () => { Records: unknown[] }[] }[] {
  const parking = { FAILURE_QUEUE_URL: c.failureQueue };
  const stream = { ACTIVITY_QUEUE_URL: c.queue, TABLE_NAME: c.table, RESCORE_DELAY_DAYS: 5, ...parking };
  const scoring = { TABLE_NAME: c.table, MODEL_VERSION: "bench", MODEL_BATCH_SIZE: 100, ...parking };
  const streamDeps = { env: stream, sqs: c.sqs, dynamo: c.dynamo, logger: logger() };
  return [
    {
      name: "enqueueFromVfStream",
      handler: () =>
        createEnqueueFromVfStream({ env: { ON_DEMAND_QUEUE_URL: c.standardQueue, ...parking }, sqs: c.sqs, logger: logger() }),
      events: () => kinesisBatches(payloads.vf!),
    },
    {
      name: "enqueueFromDemandStream",
      handler: () => createEnqueueFromDemandStream(streamDeps),
      events: () => kinesisBatches(payloads.demand!),
    },
    {
      name: "enqueueFromPurchaseStream",
      handler: () => createEnqueueFromPurchaseStream(streamDeps),
      events: () => kinesisBatches(payloads.purchase!),
    },
    {
      name: "enqueueFromSQJourneyStream",
      handler: () => createEnqueueFromSQJourneyStream(streamDeps),
      events: () => kinesisBatches(payloads.sqJourney!),
    },
    {
      name: "processRescoreEvents",
      handler: () =>
        createProcessRescoreEvents({ env: { ACTIVITY_QUEUE_URL: c.queue, ...parking }, sqs: c.sqs, logger: logger() }),
      events: () => kinesisBatches(payloads.rescore!),
    },
    {
      name: "lookupArai",
      handler: () =>
        createLookupArai({
          // Every message of the bench is valid: none is parked.
          env: { TABLE_NAME: c.table, ARAI_FRESHNESS_SECONDS: 300, ARAI_CONCURRENCY: 10, DEAD_LETTER_QUEUE_URLS: {} },
          dynamo: c.dynamo,
          sqs: c.sqs,
          fetchArai: c.fetchArai,
          logger: logger(),
        }),
      events: sqsBatches,
    },
    {
      name: "scoreUsers",
      handler: () => createScoreUsers({ env: scoring, logger: logger(), documents: c.dynamo, sqs: c.sqs, model: c.model }),
      events: () => kinesisBatches(payloads.activityData!),
    },
    {
      name: "stagingScoreUsers",
      handler: () => createStagingScoreUsers({ env: scoring, logger: logger(), documents: c.dynamo, sqs: c.sqs, model: c.model }),
      events: () => kinesisBatches(payloads.activityData!),
    },
  ] as { name: string; handler: () => Handler; events: () => { Records: unknown[] }[] }[];
}

/** Answers every call at once: only the worker's own work is left to time. */
const instantClients = (): Clients => ({
  sqs: {
    send: async (command: { input: { Entries: { Id: string }[] } }) => ({
      Successful: command.input.Entries.map(({ Id }) => ({ Id })),
      Failed: [],
    }),
  } as unknown as SQSClient,
  dynamo: {
    send: async (command: unknown) => (command instanceof BatchGetCommand ? { Responses: {}, UnprocessedKeys: {} } : {}),
  } as unknown as DynamoDBDocumentClient,
  queue: "https://sqs.us-east-1.amazonaws.com/210987654321/bench.fifo",
  standardQueue: "https://sqs.us-east-1.amazonaws.com/210987654321/bench",
  failureQueue: "https://sqs.us-east-1.amazonaws.com/210987654321/bench-failures",
  table: "bench",
  fetchArai: found,
  model: { predict },
});

async function cpuWork(): Promise<Row[]> {
  const rows: Row[] = [];
  for (const worker of workers(instantClients())) {
    const events = worker.events();
    const run = async () => {
      const handler = worker.handler();
      for (const event of events) {
        const response = await handler(event);
        if (response.batchItemFailures.length > 0)
          throw new Error(`${worker.name}: ${response.batchItemFailures.length} records failed`);
      }
    };
    await run(); // warm up
    const started = process.cpuUsage();
    for (let round = 0; round < CPU_ROUNDS; round++) await run();
    const used = process.cpuUsage(started);
    const seconds = (used.user + used.system) / 1e6;
    const records = RECORDS * CPU_ROUNDS;
    rows.push({
      what: `${worker.name} records/s per core (own work)`,
      figure: Math.round(records / seconds).toLocaleString("en-US"),
    });
  }
  return rows;
}

/** Distinct fans in one invocation's batch. */
const distinctFans = (batch: { Records: unknown[] }) =>
  new Set(
    batch.Records.map((record) => {
      const r = record as { kinesis?: { partitionKey: string }; attributes?: { MessageGroupId: string } };
      return r.kinesis?.partitionKey ?? r.attributes?.MessageGroupId;
    }),
  ).size;

async function awsCalls(): Promise<Row[]> {
  const [dynamo, sqs] = await Promise.all([startDynamo(), startSqs()]);
  const rows: Row[] = [];
  try {
    for (const worker of workers(instantClients())) {
      const tableName = await dynamo.createFanTable();
      const http = { "ARAI GET (HTTP)": 0, "model POST (HTTP)": 0 };
      const clients: Clients = {
        sqs: sqs.client,
        dynamo: dynamo.documents,
        queue: await sqs.createQueue(`bench-${worker.name}.fifo`),
        standardQueue: await sqs.createQueue(`bench-${worker.name}`),
        failureQueue: await sqs.createQueue(`bench-${worker.name}-failures`),
        table: tableName,
        fetchArai: (id) => ((http["ARAI GET (HTTP)"] += 1), found(id)),
        model: { predict: (records) => ((http["model POST (HTTP)"] += 1), predict(records)) },
      };
      const built = workers(clients).find((candidate) => candidate.name === worker.name)!;
      const handler = built.handler();
      const events = built.events();
      dynamo.proxy.requests.length = 0;
      sqs.proxy.requests.length = 0;
      for (const event of events) {
        const response = await handler(event);
        if (response.batchItemFailures.length > 0)
          throw new Error(`${worker.name}: ${response.batchItemFailures.length} records failed`);
      }
      const calls: Record<string, number> = { ...countOperations(dynamo.proxy), ...countOperations(sqs.proxy) };
      for (const [operation, count] of Object.entries(http)) if (count > 0) calls[operation] = count;
      const perInvocation = (size: number) => events.reduce((sum, event) => sum + Math.ceil(distinctFans(event) / size), 0);
      const minimum: Record<string, number> = {
        SendMessageBatch: events.reduce((sum, event) => sum + Math.ceil(event.Records.length / 10), 0),
        PutItem: perInvocation(1),
        BatchGetItem: perInvocation(100),
        UpdateItem: worker.name === "lookupArai" ? FANS : perInvocation(1),
        BatchWriteItem: perInvocation(25),
        "ARAI GET (HTTP)": FANS,
        "model POST (HTTP)": perInvocation(100),
      };
      for (const [operation, count] of Object.entries(calls).sort()) {
        const least = minimum[operation];
        rows.push({
          what: `${worker.name} ${operation} per ${RECORDS.toLocaleString("en-US")} records`,
          figure: String(count),
          anchor: least === undefined ? undefined : `batching minimum ${least}`,
          against: least === undefined ? undefined : `${(count / least).toFixed(2)}×`,
        });
      }
    }
  } finally {
    await Promise.all([dynamo.close(), sqs.close()]);
  }
  return rows;
}

export async function benchScoring(): Promise<Part> {
  const rows = [...(await cpuWork()), ...(await awsCalls())];
  return {
    how:
      `${RECORDS} records of ${FANS} fans per worker in the stacks' batch sizes; records/s: CPU time of ${CPU_ROUNDS} rounds, ` +
      "AWS and HTTP answered in process; calls: one round against local DynamoDB and SQS, counted at the service. " +
      "Minimums: SendMessageBatch ceil(records/10) per invocation; BatchGetItem ceil(fans/100), BatchWriteItem ceil(fans/25), " +
      "PutItem and UpdateItem one per distinct fan, per invocation; lookupArai's UpdateItem and ARAI GET one per fan in all; " +
      "model POST ceil(fans/100) per invocation",
    rows,
  };
}
