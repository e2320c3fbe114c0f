/**
 * The local table's streaming endpoint: writes per second to dynalite directly and through the
 * endpoint (which serialises writes per item, reads old images and hands change records to its
 * sink), with a sink that takes records at once and with one that puts them on kinesalite.
 *
 * Everything runs in this process, as in `npm start`: dynalite, kinesalite, the endpoint and the
 * client share one event loop. Fan-sized items (about 1 KB), written by the workers' document
 * client, 32 writes in flight.
 */
import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { type DynamoDBDocumentClient, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { kinesisSink } from "../tools/local/table/kinesisSink";
import { type ChangeSink, startTableWithStream } from "../tools/local/table/streamingDestination";
import { createDocumentClient } from "../workers/shared/runtime/dynamo";
import { mapConcurrently } from "../workers/shared/runtime/retry";
import { median, type Part, type Row } from "./report";

const WRITES = Number(process.env.BENCH_TABLE_WRITES ?? 600);
/** Rounds per figure, taken in turn (direct, endpoint, endpoint+kinesalite); the median is printed. */
const ROUNDS = Number(process.env.BENCH_TABLE_ROUNDS ?? 3);
const IN_FLIGHT = 32;
const credentials = { accessKeyId: "bench", secretAccessKey: "bench" };
const region = "us-east-1";

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const fan = (index: number, round: number) => ({
  userId: `gu-${index.toString(16).padStart(8, "0")}`,
  type: "activityData",
  globalUserId: `gu-${index.toString(16).padStart(8, "0")}`,
  arai: {
    identity: { email: `fan${index}@example.com`, country: "GB" },
    history: Array.from({ length: 8 }, (_, i) => ({ at: i, ip: "81.2.69.142", device: "iPhone" })),
  },
  araiVersion: round,
  dateUpdated: new Date(Date.UTC(2026, 10, 24, 9, 0, round)).toISOString(),
});

type Write = (documents: DynamoDBDocumentClient, tableName: string, index: number, round: number) => Promise<unknown>;

const put: Write = (documents, tableName, index, round) =>
  documents.send(new PutCommand({ TableName: tableName, Item: fan(index, round) }));
const update: Write = (documents, tableName, index, round) =>
  documents.send(
    new UpdateCommand({
      TableName: tableName,
      Key: { userId: fan(index, round).userId },
      UpdateExpression: "SET araiVersion = :v, dateUpdated = :at",
      ExpressionAttributeValues: { ":v": round, ":at": new Date().toISOString() },
    }),
  );

/** Writes per second: WRITES writes, IN_FLIGHT at a time, to `items` items in turn. */
async function rate(endpoint: string, tableName: string, write: Write, items = WRITES): Promise<number> {
  const client = new DynamoDBClient({ endpoint, region, credentials });
  const documents = createDocumentClient(client);
  const indexes = Array.from({ length: WRITES }, (_, index) => index);
  await mapConcurrently(indexes.slice(0, 200), IN_FLIGHT, (index) => write(documents, tableName, index % items, 0));
  const started = process.hrtime.bigint();
  await mapConcurrently(indexes, IN_FLIGHT, (index) => write(documents, tableName, index % items, 1 + Math.floor(index / items)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  client.destroy();
  return WRITES / seconds;
}

/** A kinesalite stream and the sink that puts records on it, coalescing PutRecords calls. */
async function kinesaliteSink(): Promise<{ sink: ChangeSink; close(): Promise<void> }> {
  const kinesalite = (require("kinesalite") as (options: object) => http.Server)({ createStreamMs: 0 });
  const kinesis = new KinesisClient({
    endpoint: await listen(kinesalite),
    region,
    credentials,
    requestHandler: new NodeHttpHandler(),
  });
  await kinesis.send(new CreateStreamCommand({ StreamName: "bench", ShardCount: 4 }));
  for (;;) {
    const { StreamDescriptionSummary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: "bench" }));
    if (StreamDescriptionSummary?.StreamStatus === "ACTIVE") break;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const sink = kinesisSink(async (entries) => {
    const answer = await kinesis.send(new PutRecordsCommand({ StreamName: "bench", Records: entries }));
    if (answer.FailedRecordCount) throw new Error(`${answer.FailedRecordCount} records refused`);
  });
  return {
    sink,
    async close() {
      kinesis.destroy();
      await new Promise<void>((resolve) => kinesalite.close(() => resolve()));
    },
  };
}

/** Prints writes per second, direct and through the endpoint. */
export async function benchLocalTable(): Promise<Part> {
  const dynalite = (require("dynalite") as (options: object) => http.Server)({ createTableMs: 0 });
  const dynamoUrl = await listen(dynalite);
  const admin = new DynamoDBClient({ endpoint: dynamoUrl, region, credentials });
  const tables = ["direct", "taken", "kinesis"].map((name) => `bench-${name}`);
  for (const TableName of tables) {
    await admin.send(
      new CreateTableCommand({
        TableName,
        KeySchema: [{ AttributeName: "userId", KeyType: "HASH" }],
        AttributeDefinitions: [{ AttributeName: "userId", AttributeType: "S" }],
        BillingMode: "PAY_PER_REQUEST",
      }),
    );
  }
  const [direct, taken, streamed] = tables as [string, string, string];
  let records = 0;
  const counting = await startTableWithStream({
    dynamoUrl,
    tables: [taken],
    sink: async (changes) => void (records += changes.length),
  });
  const kinesis = await kinesaliteSink();
  const toKinesis = await startTableWithStream({ dynamoUrl, tables: [streamed], sink: kinesis.sink });

  const rows: Row[] = [];
  const endpoints: [string, string][] = [
    [dynamoUrl, direct],
    [counting.url, taken],
    [toKinesis.url, streamed],
  ];
  const row = async (what: string, write: Write, items?: number) => {
    const runs: number[][] = endpoints.map(() => []);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [index, [endpoint, tableName]] of endpoints.entries())
        runs[index]!.push(await rate(endpoint, tableName, write, items));
    }
    const [direct, endpoint, withKinesis] = runs.map(median) as [number, number, number];
    for (const [through, figure] of [
      ["table endpoint", endpoint],
      ["table endpoint + kinesalite", withKinesis],
    ] as const) {
      rows.push({
        what: `${what} writes/s through the ${through}`,
        figure: figure.toFixed(0),
        anchor: `dynalite directly ${direct.toFixed(0)}`,
        against: `${((figure / direct) * 100).toFixed(0)}%`,
      });
    }
  };
  await row("PutItem, distinct items", put);
  await row("UpdateItem, distinct items", update);
  await row("UpdateItem, 8 items", update, 8);

  await counting.close();
  await toKinesis.close();
  await kinesis.close();
  admin.destroy();
  await new Promise<void>((resolve) => dynalite.close(() => resolve()));
  return {
    how: `writes/s, median of ${ROUNDS} rounds of ${WRITES} writes, ${IN_FLIGHT} in flight, in this process (${records} change records counted)`,
    rows,
  };
}
