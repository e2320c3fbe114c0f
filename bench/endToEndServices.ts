/**
 * The end-to-end bench's first part: each local service alone, as the local system runs it
 * (dynalite, kinesalite and the local SQS each in a process of its own, hostService; the table
 * endpoint, the accounts service and model serving in this process, as `npm start` runs them),
 * driven from this process with IN_FLIGHT calls at a time. Calls per second of each operation
 * the scoring path makes, with fan records of about 3 KB (an ARAI of SERVICE_ARAI_ACTIVITIES
 * logins, docs/data-model.md).
 */
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { BatchGetCommand, type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { hostService, stopAll } from "../tools/local/processes";
import { araiDocument, startAccounts } from "../tools/local/services/accounts";
import { startModelServing } from "../tools/local/services/modelServing";
import { type Item, itemSize } from "../tools/local/table/images";
import { kinesisSink } from "../tools/local/table/kinesisSink";
import { startTableWithStream } from "../tools/local/table/streamingDestination";
import { createDocumentClient } from "../workers/shared/runtime/dynamo";
import { mapConcurrently } from "../workers/shared/runtime/retry";
import { ACTIVITY_MESSAGE_VERSION } from "../workers/shared/scoring/activity";
import { median } from "./report";

export const IN_FLIGHT = 32;
/** Calls per figure and round (the HTTP stand-ins twice as many, the local SQS and PutRecords fewer). */
const CALLS = Number(process.env.BENCH_SERVICE_CALLS ?? 250);
/** SendMessageBatch calls per round: their 10 messages each stay under the local SQS's 20,000 in flight. */
const SQS_CALLS = Math.min(Math.round(CALLS * 0.6), 1000);
/** PutRecords calls per round (kinesalite keeps every record in memory). */
const KINESIS_CALLS = Math.round(CALLS * 0.4);
const ROUNDS = Number(process.env.BENCH_SERVICE_ROUNDS ?? 3);
/** Logins in the ARAI of a fan record: about 3 KB of ARAI. */
const SERVICE_ARAI_ACTIVITIES = 16;
/** Records per model-serving call. */
export const MODEL_RECORDS = Number(process.env.BENCH_MODEL_RECORDS ?? 20);
/** Records per PutRecords and per GetRecords call. */
export const STREAM_RECORDS = 10;
const TABLE = "bench-fan-identity-table";
const region = "us-east-1";
const credentials = { accessKeyId: "bench", secretAccessKey: "bench" };

/** One figure: calls per second of an operation on a service, the median of ROUNDS rounds. */
export interface ServiceFigure {
  /** The service as the proxies name it: dynamodb, table, sqs, kinesis, accounts, modelServing. */
  readonly service: string;
  /** The operation as counted at the wire (the X-Amz-Target operation, or the HTTP call). */
  readonly operation: string;
  /** What one call is, for the table. */
  readonly what: string;
  readonly callsPerSecond: number;
  readonly rounds: readonly number[];
}

const fanId = (prefix: string, index: number) => `gu-${prefix}${index.toString(16).padStart(6, "0")}`;

const activities = Array.from({ length: SERVICE_ARAI_ACTIVITIES }, (_, index) => ({
  action: index % 3 ? "login" : "checkout",
  result: index % 5 ? "success" : "failure",
  at: new Date(Date.UTC(2026, 10, 24, 9, index)).toISOString(),
}));

/** A fan's ARAI of about 3 KB. */
const araiOf = (globalUserId: string) => araiDocument(globalUserId, SERVICE_ARAI_ACTIVITIES, activities);

/** A fan record as lookupArai leaves it (docs/data-model.md#fan-record). */
function fanRecord(globalUserId: string) {
  const now = new Date().toISOString();
  return {
    userId: globalUserId,
    type: "activityData",
    globalUserId,
    arai: araiOf(globalUserId),
    araiUpdatedAt: now,
    araiVersion: 1,
    lastActivity: { action: "login", source: "kafka", at: now },
    dateUpdated: now,
  };
}

/** A fan record's size as DynamoDB counts it (names and values). */
export const fanRecordBytes = () => itemSize(marshall(fanRecord(fanId("size", 0))) as unknown as Item);

/** Calls per second of `calls` calls, IN_FLIGHT at a time. */
async function rate(calls: number, call: (index: number) => Promise<unknown>): Promise<number> {
  const indexes = Array.from({ length: calls }, (_, index) => index);
  const started = performance.now();
  await mapConcurrently(indexes, IN_FLIGHT, (index) => call(index));
  return calls / ((performance.now() - started) / 1000);
}

/** Runs each round's measures in turn; answers the medians. */
async function measure(
  rounds: number,
  measures: readonly Omit<ServiceFigure, "callsPerSecond" | "rounds">[],
  round: (index: number) => Promise<readonly number[]>,
): Promise<ServiceFigure[]> {
  const runs: number[][] = measures.map(() => []);
  for (let index = 0; index < rounds; index++) {
    const figures = await round(index);
    figures.forEach((figure, at) => runs[at]!.push(figure));
  }
  return measures.map((entry, at) => ({ ...entry, callsPerSecond: median(runs[at]!), rounds: runs[at]! }));
}

/** The DynamoDB operations of the scoring path on one endpoint (dynalite, or the table endpoint in front of it). */
async function dynamoRound(documents: DynamoDBDocumentClient, prefix: string, calls: number): Promise<number[]> {
  const key = (index: number) => fanId(prefix, index);
  const put = await rate(calls, (index) =>
    documents.send(
      new PutCommand({ TableName: TABLE, Item: fanRecord(key(index)), ConditionExpression: "attribute_not_exists(userId)" }),
    ),
  );
  // lookupArai's ARAI write.
  const update = await rate(calls, (index) =>
    documents.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { userId: key(index) },
        UpdateExpression:
          "SET #type = :activityData, globalUserId = :g, arai = :arai, araiUpdatedAt = :now, lastActivity = :latest, dateUpdated = :now ADD araiVersion :one",
        ExpressionAttributeNames: { "#type": "type" },
        ExpressionAttributeValues: {
          ":activityData": "activityData",
          ":g": key(index),
          ":arai": araiOf(key(index)),
          ":now": new Date().toISOString(),
          ":latest": { action: "login", source: "kafka", at: new Date().toISOString() },
          ":one": 1,
        },
      }),
    ),
  );
  const get = await rate(calls, (index) =>
    documents.send(new GetCommand({ TableName: TABLE, Key: { userId: key(index) }, ConsistentRead: true })),
  );
  // lookupArai's freshness read: one per batch of 10 messages.
  const batchGet = await rate(Math.ceil(calls / 10), (index) =>
    documents.send(
      new BatchGetCommand({
        RequestItems: {
          [TABLE]: {
            Keys: Array.from({ length: 10 }, (_, offset) => ({ userId: key(index * 10 + offset) })),
            ProjectionExpression: "userId, araiUpdatedAt",
          },
        },
      }),
    ),
  );
  // scoreUsers' conditional score write.
  const score = await rate(calls, (index) =>
    documents.send(
      new UpdateCommand({
        TableName: TABLE,
        Key: { userId: key(index) },
        UpdateExpression:
          "SET score = :score, scoreVersion = :version, scoredAraiVersion = :v, #type = :score_type, dateUpdated = :now, dateCreated = if_not_exists(dateCreated, :now)",
        ConditionExpression: "attribute_exists(#key) AND (attribute_not_exists(scoredAraiVersion) OR scoredAraiVersion < :v)",
        ExpressionAttributeNames: { "#type": "type", "#key": "userId" },
        ExpressionAttributeValues: {
          ":score": 0.5,
          ":version": "bench",
          ":v": 2,
          ":score_type": "score",
          ":now": new Date().toISOString(),
        },
      }),
    ),
  );
  return [put, update, get, batchGet, score];
}

const dynamoMeasures = (service: string) => [
  { service, operation: "PutItem", what: "PutItem, conditional, ~3 KB item" },
  { service, operation: "UpdateItem", what: "UpdateItem, ARAI write, ~3 KB item" },
  { service, operation: "GetItem", what: "GetItem, consistent" },
  { service, operation: "BatchGetItem", what: "BatchGetItem, 10 keys, projected" },
  { service, operation: "UpdateItem (score)", what: "UpdateItem, conditional score write" },
];

async function waitForStream(kinesis: KinesisClient, name: string) {
  for (;;) {
    const { StreamDescriptionSummary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }));
    if (StreamDescriptionSummary?.StreamStatus === "ACTIVE") return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** dynalite alone, then the table endpoint in front of it with its change stream on kinesalite. */
async function benchTable(): Promise<ServiceFigure[]> {
  const [dynamo, stream] = await Promise.all([hostService("dynamodb"), hostService("kinesis")]);
  const client = new DynamoDBClient({ endpoint: dynamo.url, region, credentials });
  await client.send(
    new CreateTableCommand({
      TableName: TABLE,
      KeySchema: [{ AttributeName: "userId", KeyType: "HASH" }],
      AttributeDefinitions: [{ AttributeName: "userId", AttributeType: "S" }],
      BillingMode: "PAY_PER_REQUEST",
    }),
  );
  const kinesis = new KinesisClient({ endpoint: stream.url, region, credentials, requestHandler: new NodeHttpHandler() });
  await kinesis.send(new CreateStreamCommand({ StreamName: "bench-table-stream", ShardCount: 2 }));
  await waitForStream(kinesis, "bench-table-stream");
  // As the stand-ins start it: every change record onto the table's stream, in few PutRecords calls.
  const endpoint = await startTableWithStream({
    dynamoUrl: dynamo.url,
    tables: [TABLE],
    region,
    sink: kinesisSink(async (entries) => {
      const answer = await kinesis.send(new PutRecordsCommand({ StreamName: "bench-table-stream", Records: entries }));
      if (answer.FailedRecordCount) throw new Error(`${answer.FailedRecordCount} change records refused`);
    }),
  });
  const direct = createDocumentClient(client);
  const through = createDocumentClient(new DynamoDBClient({ endpoint: endpoint.url, region, credentials }));
  await dynamoRound(direct, "warm-d", 200);
  await dynamoRound(through, "warm-t", 200);
  const figures = await measure(ROUNDS, [...dynamoMeasures("dynamodb"), ...dynamoMeasures("table")], async (round) => [
    ...(await dynamoRound(direct, `d${round}-`, CALLS)),
    ...(await dynamoRound(through, `t${round}-`, CALLS)),
  ]);
  direct.destroy();
  through.destroy();
  kinesis.destroy();
  await endpoint.close();
  dynamo.child.kill("SIGTERM");
  stream.child.kill("SIGTERM");
  return figures;
}

/** The local SQS alone: a FIFO queue as the activity queue, 10 messages per SendMessageBatch. */
async function benchSqs(): Promise<ServiceFigure[]> {
  const service = await hostService("sqs");
  const sqs = new SQSClient({ endpoint: service.url, region, credentials });
  const { QueueUrl } = await sqs.send(
    new CreateQueueCommand({ QueueName: "bench-activity.fifo", Attributes: { FifoQueue: "true", VisibilityTimeout: "360" } }),
  );
  const send = (round: string, calls: number) =>
    rate(calls, (index) =>
      sqs.send(
        new SendMessageBatchCommand({
          QueueUrl,
          Entries: Array.from({ length: 10 }, (_, offset) => {
            const fan = fanId(round, index * 10 + offset);
            return {
              Id: `m${offset}`,
              MessageBody: JSON.stringify({
                v: ACTIVITY_MESSAGE_VERSION,
                globalUserId: fan,
                source: "kafka",
                action: "login",
                at: new Date().toISOString(),
              }),
              MessageGroupId: fan,
              MessageDeduplicationId: `${round}-${index}-${offset}`,
            };
          }),
        }),
      ),
    );
  // As a poller takes a batch: up to 10 messages, then the batch's deletion.
  const receiveAndDelete = (calls: number) =>
    rate(calls, async () => {
      const { Messages = [] } = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (Messages.length === 0) return;
      await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl,
          Entries: Messages.map((message, index) => ({ Id: `m${index}`, ReceiptHandle: message.ReceiptHandle! })),
        }),
      );
    });
  await send("warm", 50);
  await receiveAndDelete(50);
  const figures = await measure(
    ROUNDS,
    [
      { service: "sqs", operation: "SendMessageBatch", what: "SendMessageBatch, FIFO, 10 messages" },
      { service: "sqs", operation: "ReceiveMessage", what: "ReceiveMessage (10) + DeleteMessageBatch" },
    ],
    async (round) => [await send(`s${round}-`, SQS_CALLS), await receiveAndDelete(SQS_CALLS)],
  );
  sqs.destroy();
  service.child.kill("SIGTERM");
  return figures;
}

/** A change record of a fan record's ARAI write, with both images, as the table's stream carries it. */
function changeRecordData(globalUserId: string): Uint8Array {
  const image = marshall(fanRecord(globalUserId), { removeUndefinedValues: true });
  const data = {
    awsRegion: region,
    eventID: globalUserId,
    eventName: "MODIFY",
    userIdentity: null,
    recordFormat: "application/json",
    tableName: TABLE,
    dynamodb: {
      ApproximateCreationDateTime: Date.now(),
      Keys: { userId: { S: globalUserId } },
      NewImage: image,
      OldImage: image,
      SizeBytes: 2 * JSON.stringify(image).length,
    },
    eventSource: "aws:dynamodb",
  };
  return Buffer.from(JSON.stringify(data), "utf8");
}

/** kinesalite alone: PutRecords of STREAM_RECORDS change records, GetRecords of as many. */
async function benchKinesis(): Promise<ServiceFigure[]> {
  const service = await hostService("kinesis");
  const kinesis = new KinesisClient({ endpoint: service.url, region, credentials, requestHandler: new NodeHttpHandler() });
  const stream = "bench-stream";
  await kinesis.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
  await waitForStream(kinesis, stream);
  const shards = ((await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? []).map(
    (shard) => shard.ShardId!,
  );
  const data = changeRecordData(fanId("rec", 0));
  const put = (round: string, calls: number) =>
    rate(calls, (index) =>
      kinesis.send(
        new PutRecordsCommand({
          StreamName: stream,
          Records: Array.from({ length: STREAM_RECORDS }, (_, offset) => ({
            PartitionKey: fanId(round, index * STREAM_RECORDS + offset),
            Data: data,
          })),
        }),
      ),
    );
  // IN_FLIGHT readers, each following its own iterator from the start of a shard, as pollers do.
  const get = async (calls: number) => {
    const iterators = await Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, index) => {
        const answer = await kinesis.send(
          new GetShardIteratorCommand({
            StreamName: stream,
            ShardId: shards[index % shards.length],
            ShardIteratorType: "TRIM_HORIZON",
          }),
        );
        return answer.ShardIterator;
      }),
    );
    const started = performance.now();
    let made = 0;
    await Promise.all(
      iterators.map(async (first) => {
        let iterator = first;
        while (made < calls && iterator) {
          made += 1;
          const answer = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: STREAM_RECORDS }));
          iterator = answer.NextShardIterator;
        }
      }),
    );
    return made / ((performance.now() - started) / 1000);
  };
  await put("warm", 50);
  const figures = await measure(
    ROUNDS,
    [
      {
        service: "kinesis",
        operation: "PutRecords",
        what: `PutRecords, ${STREAM_RECORDS} change records of ${(data.length / 1024).toFixed(1)} KB`,
      },
      { service: "kinesis", operation: "GetRecords", what: `GetRecords, ${STREAM_RECORDS} records` },
    ],
    async (round) => [await put(`k${round}-`, KINESIS_CALLS), await get(CALLS)],
  );
  kinesis.destroy();
  service.child.kill("SIGTERM");
  return figures;
}

/** The accounts service's ARAI API and model serving, in this process as the stand-ins run them. */
async function benchHttpStandIns(): Promise<ServiceFigure[]> {
  const araiCredentials = { username: "bench", password: "bench-password", clientId: "bench-client" };
  const accounts = await startAccounts({ credentials: araiCredentials, issuer: "https://accounts.local", audience: "bench" });
  const fans = Array.from({ length: 500 }, (_, index) => fanId("arai", index));
  for (const fan of fans) for (const activity of activities) accounts.recordActivity(fan, activity);
  const authorization = `Basic ${Buffer.from(`${araiCredentials.username}:${araiCredentials.password}`).toString("base64")}`;
  const getArai = (calls: number) =>
    rate(calls, async (index) => {
      const fan = fans[index % fans.length]!;
      const answer = await fetch(accounts.araiUrlTemplate.replace("{globalUserId}", fan), {
        headers: { authorization, "x-client-id": araiCredentials.clientId },
      });
      if (answer.status !== 200) throw new Error(`ARAI: ${answer.status}`);
      await answer.text();
    });
  const model = await startModelServing({ token: "bench-token" });
  const body = JSON.stringify({
    dataframe_records: fans
      .slice(0, MODEL_RECORDS)
      .map((fan) => ({ globalUserId: fan, raw_json_string: JSON.stringify(accounts.currentArai(fan)) })),
  });
  const predict = (calls: number) =>
    rate(calls, async () => {
      const answer = await fetch(`${model.url}/serving-endpoints/bench-model/invocations`, {
        method: "POST",
        headers: { authorization: "Bearer bench-token", "content-type": "application/json" },
        body,
      });
      if (answer.status !== 200) throw new Error(`model serving: ${answer.status}`);
      await answer.text();
    });
  await getArai(100);
  await predict(100);
  const araiBytes = JSON.stringify(accounts.currentArai(fans[0]!)).length;
  const figures = await measure(
    ROUNDS,
    [
      { service: "accounts", operation: "GET ARAI", what: `GET account activity, ${(araiBytes / 1024).toFixed(1)} KB` },
      { service: "modelServing", operation: "POST invocations", what: `POST invocations, ${MODEL_RECORDS} records` },
    ],
    async () => [await getArai(2 * CALLS), await predict(2 * CALLS)],
  );
  await accounts.close();
  await model.close();
  return figures;
}

/** Every service alone; figures in the order of the scoring path. */
export async function benchServicesAlone(): Promise<ServiceFigure[]> {
  try {
    const table = await benchTable();
    const streams = await benchKinesis();
    const sqs = await benchSqs();
    const http = await benchHttpStandIns();
    return [...sqs, ...http, ...table, ...streams];
  } finally {
    await stopAll();
  }
}
