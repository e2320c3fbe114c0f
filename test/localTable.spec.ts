/**
 * The local fan-identity table: the streaming endpoint in front of real dynalite makes the change
 * records DynamoDB's Kinesis streaming destination writes (new and old images, none for a write
 * that changes nothing, an item's records in the order of its writes), and the TTL sweeper
 * deletes expired items as DynamoDB's TTL does, its REMOVE records carrying the service's
 * identity. Expected records follow DynamoDB's documented behaviour and the recorded fixtures.
 */
import * as assert from "node:assert/strict";
import {
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
} from "@aws-sdk/client-dynamodb";
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
  KinesisClient,
  ListShardsCommand,
  PutRecordsCommand,
} from "@aws-sdk/client-kinesis";
import { BatchWriteCommand, DeleteCommand, type DynamoDBDocumentClient, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { AddressInfo } from "node:net";
import {
  createTablesFromPlan,
  startTableWithStream,
  type TableChange,
  tableSpecFromPlan,
  type TableWithStream,
} from "../tools/local/table/streamingDestination";
import { kinesisSink } from "../tools/local/table/kinesisSink";
import { createClock, startTtlSweeper, type TtlTable } from "../tools/local/table/ttl";
import type { TableChangeRecord } from "../tools/local/types";
import { createDocumentClient } from "../workers/shared/runtime/dynamo";
import { createDynamoChangeDecoder } from "../workers/shared/runtime/records";
import { rejectionOf } from "./support/assertions";
import { fixture } from "./support/fixtures";
import { countOperations, operationOf } from "./support/http";
import { type LocalDynamo, startDynamo } from "./support/localAws";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const region = "us-east-1";
const TTL_IDENTITY = { type: "Service", principalId: "dynamodb.amazonaws.com" };
const DAY_S = 24 * 3600;

const decode = createDynamoChangeDecoder();
const recordedInsert = fixture<Record<string, unknown>>("dynamodb-change-fan-first-activity-data.json");
const recordedModify = fixture<Record<string, unknown>>("dynamodb-change-fan-activity-data.json");
const recordedRemove = fixture<Record<string, unknown>>("dynamodb-change-rescore-ttl-removal.json");

const planned = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  billingMode: "PAY_PER_REQUEST",
  hashKey: "userId",
  attributes: [{ name: "userId", type: "S" }],
  ...extra,
});

const userIdOf = (change: TableChange) => (change.data.dynamodb.Keys.userId as { S?: string } | undefined)?.S;

/** The record without what is made fresh for each (its id and time). */
function stable(record: TableChangeRecord) {
  const { eventID: _id, dynamodb, ...rest } = record;
  const { ApproximateCreationDateTime: _at, ...images } = dynamodb;
  return { ...rest, dynamodb: images };
}

describe("local table: streaming destination", function () {
  let dynamo: LocalDynamo;
  let stream: TableWithStream;
  let client: DynamoDBClient;
  let documents: DynamoDBDocumentClient;
  let table: string;
  let unstreamed: string;
  let ranged: string;
  let captured: TableChange[];
  /** Holds the sink's calls for records of this item until released; `reached` is called when one is held. */
  let hold: { userId: string; reached: () => void; until: Promise<void> } | undefined;

  before(async function () {
    dynamo = await startDynamo();
    table = await dynamo.createFanTable();
    unstreamed = await dynamo.createFanTable();
    ranged = `${table}-ranged`;
    await createTablesFromPlan(dynamo.client, [
      tableSpecFromPlan(
        planned(ranged, {
          rangeKey: "at",
          attributes: [
            { name: "userId", type: "S" },
            { name: "at", type: "N" },
          ],
        }),
      ),
    ]);
    stream = await startTableWithStream({
      dynamoUrl: dynamo.endpoint,
      tables: [table, ranged],
      sink: async (records) => {
        const held = hold;
        if (held && records.some((record) => userIdOf(record) === held.userId)) {
          held.reached();
          await held.until;
        }
        captured.push(...records);
      },
    });
    client = new DynamoDBClient({ endpoint: stream.url, region, credentials });
    documents = createDocumentClient(client);
  });

  after(async function () {
    client.destroy();
    await stream.close();
    await dynamo.close();
  });

  beforeEach(function () {
    captured = [];
    hold = undefined;
    dynamo.intercept = () => undefined;
  });

  /** Writes items through the endpoint as a test's starting state, and forgets their records. */
  async function seed(...items: Record<string, unknown>[]) {
    for (const item of items) await documents.send(new PutCommand({ TableName: table, Item: item }));
    captured = [];
  }

  const datas = () => captured.map((change) => change.data);

  it("a PutItem of a new item is an INSERT with the new image only, shaped as the recorded one", async function () {
    const item = { userId: "gu-insert", type: "activityData", araiVersion: 1 };
    const before = Date.now();
    const answer = await documents.send(new PutCommand({ TableName: table, Item: item }));
    const after = Date.now();

    assert.equal(answer.Attributes, undefined, "the caller asked for no attributes");
    assert.equal(captured.length, 1);
    const [{ partitionKey, data }] = captured as [TableChange];
    assert.deepEqual(stable(data), {
      awsRegion: "us-east-1",
      eventName: "INSERT",
      userIdentity: null,
      recordFormat: "application/json",
      tableName: table,
      // Keys "userId"+"gu-insert" 15; image 15 + "type"+"activityData" 16 + "araiVersion" 11 + one digit 2.
      dynamodb: { Keys: marshall({ userId: "gu-insert" }), NewImage: marshall(item), SizeBytes: 59 },
      eventSource: "aws:dynamodb",
    });
    assert.match(data.eventID, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const at = data.dynamodb.ApproximateCreationDateTime;
    assert.ok(Number.isInteger(at) && at >= before && at <= after, `${at}: epoch milliseconds of the write`);
    assert.match(partitionKey, /^[0-9A-F]{32}$/);
    assert.deepEqual(Object.keys(data), Object.keys(recordedInsert));
    assert.deepEqual(Object.keys(data.dynamodb), Object.keys(recordedInsert.dynamodb as object));
  });

  it("the workers' decoder reads a record as the streamed one", async function () {
    const before = Date.now();
    await documents.send(new PutCommand({ TableName: table, Item: { userId: "gu-decoded", type: "activityData" } }));
    const decoded = decode(JSON.parse(JSON.stringify(captured[0]!.data)));
    assert.ok(decoded.ok);
    assert.equal(decoded.value.eventName, "INSERT");
    assert.deepEqual(decoded.value.newImage, { userId: "gu-decoded", type: "activityData" });
    assert.ok(decoded.value.changedAt! >= before && decoded.value.changedAt! <= Date.now(), "changedAt in epoch milliseconds");
  });

  it("a PutItem over an item is a MODIFY with both images, on the item's partition key", async function () {
    const old = { userId: "gu-replace", type: "score", score: 0.25 };
    await documents.send(new PutCommand({ TableName: table, Item: old }));
    const inserted = captured[0]!;
    captured = [];
    const item = { userId: "gu-replace", type: "activityData", araiVersion: 2 };
    await documents.send(new PutCommand({ TableName: table, Item: item }));

    assert.equal(captured.length, 1);
    const [{ partitionKey, data }] = captured as [TableChange];
    assert.equal(data.eventName, "MODIFY");
    assert.deepEqual(data.dynamodb.NewImage, marshall(item));
    assert.deepEqual(data.dynamodb.OldImage, marshall(old));
    assert.equal(partitionKey, inserted.partitionKey, "one item, one partition key");
    assert.deepEqual(Object.keys(data.dynamodb), Object.keys(recordedModify.dynamodb as object));
  });

  it("a write that leaves the item as it was makes no record", async function () {
    const item = { userId: "gu-same", type: "score", score: 0.5, tags: new Set(["a", "b"]) };
    await seed(item);
    await documents.send(new PutCommand({ TableName: table, Item: { ...item, tags: new Set(["b", "a"]) } }));
    await documents.send(
      new UpdateCommand({
        TableName: table,
        Key: { userId: "gu-same" },
        UpdateExpression: "SET score = :score",
        ExpressionAttributeValues: { ":score": 0.5 },
      }),
    );
    assert.deepEqual(captured, []);
  });

  it("a number is imaged as DynamoDB stores it", async function () {
    await client.send(new PutItemCommand({ TableName: table, Item: { userId: { S: "gu-number" }, score: { N: "0.50" } } }));
    const stored = await client.send(new GetItemCommand({ TableName: table, Key: { userId: { S: "gu-number" } } }));
    assert.deepEqual(stored.Item!.score, { N: "0.5" });
    assert.deepEqual(captured[0]!.data.dynamodb.NewImage, stored.Item);
  });

  it("an UpdateItem is a MODIFY with the item before and after; the caller's ReturnValues are kept", async function () {
    await seed({ userId: "gu-update", type: "activityData", araiVersion: 3 });
    const update = (returnValues?: "UPDATED_NEW" | "ALL_OLD" | "ALL_NEW") =>
      documents.send(
        new UpdateCommand({
          TableName: table,
          Key: { userId: "gu-update" },
          UpdateExpression: "SET #type = :score, score = if_not_exists(score, :zero) + :one",
          ExpressionAttributeNames: { "#type": "type" },
          ExpressionAttributeValues: { ":score": "score", ":zero": 0, ":one": 1 },
          ...(returnValues ? { ReturnValues: returnValues } : {}),
        }),
      );
    assert.equal((await update()).Attributes, undefined);
    assert.deepEqual((await update("UPDATED_NEW")).Attributes, { type: "score", score: 2 });
    assert.deepEqual((await update("ALL_OLD")).Attributes, { userId: "gu-update", type: "score", araiVersion: 3, score: 2 });
    assert.deepEqual((await update("ALL_NEW")).Attributes, { userId: "gu-update", type: "score", araiVersion: 3, score: 4 });

    const image = (score?: number) => ({
      userId: "gu-update",
      type: score === undefined ? "activityData" : "score",
      araiVersion: 3,
      ...(score === undefined ? {} : { score }),
    });
    assert.deepEqual(
      datas().map((data) => [data.eventName, data.dynamodb.OldImage, data.dynamodb.NewImage]),
      [1, 2, 3, 4].map((score) => ["MODIFY", marshall(image(score === 1 ? undefined : score - 1)), marshall(image(score))]),
    );
  });

  it("an UpdateItem that creates the item is an INSERT", async function () {
    await documents.send(
      new UpdateCommand({
        TableName: table,
        Key: { userId: "gu-upsert" },
        UpdateExpression: "SET araiVersion = :one",
        ExpressionAttributeValues: { ":one": 1 },
      }),
    );
    assert.deepEqual(
      datas().map((data) => [data.eventName, data.dynamodb.OldImage, data.dynamodb.NewImage]),
      [["INSERT", undefined, marshall({ userId: "gu-upsert", araiVersion: 1 })]],
    );
  });

  it("a write whose condition fails makes no record", async function () {
    await seed({ userId: "gu-conditional", type: "rescore" });
    const put = documents.send(
      new PutCommand({
        TableName: table,
        Item: { userId: "gu-conditional", type: "other" },
        ConditionExpression: "attribute_not_exists(userId)",
      }),
    );
    assert.equal((await rejectionOf(put)).name, "ConditionalCheckFailedException");
    const update = documents.send(
      new UpdateCommand({
        TableName: table,
        Key: { userId: "gu-conditional" },
        UpdateExpression: "SET score = :one",
        ConditionExpression: "attribute_exists(scoredAraiVersion)",
        ExpressionAttributeValues: { ":one": 1 },
      }),
    );
    assert.equal((await rejectionOf(update)).name, "ConditionalCheckFailedException");
    assert.deepEqual(captured, []);
  });

  it("a DeleteItem is a REMOVE with the old image and no identity; deleting no item makes no record", async function () {
    const item = { userId: "gu-delete", type: "rescore", expiresOn: 1795910400 };
    await seed(item);
    const answer = await documents.send(new DeleteCommand({ TableName: table, Key: { userId: "gu-delete" } }));
    await documents.send(new DeleteCommand({ TableName: table, Key: { userId: "gu-delete" } }));

    assert.equal(answer.Attributes, undefined);
    assert.equal(captured.length, 1);
    const { data } = captured[0]!;
    assert.equal(data.eventName, "REMOVE");
    assert.equal(data.userIdentity, null);
    assert.deepEqual(data.dynamodb.OldImage, marshall(item));
    assert.equal(data.dynamodb.NewImage, undefined);
    assert.deepEqual(Object.keys(data.dynamodb), ["ApproximateCreationDateTime", "Keys", "OldImage", "SizeBytes"]);
  });

  it("a BatchWriteItem makes a record per item it changed, in the batch's order", async function () {
    await seed({ userId: "gu-b1", v: 1 }, { userId: "gu-b2", v: 2 }, { userId: "gu-b5", v: 5 });
    const answer = await documents.send(
      new BatchWriteCommand({
        RequestItems: {
          [table]: [
            { PutRequest: { Item: { userId: "gu-b1", v: 10 } } },
            { PutRequest: { Item: { userId: "gu-b3", v: 3 } } },
            { DeleteRequest: { Key: { userId: "gu-b2" } } },
            { DeleteRequest: { Key: { userId: "gu-b4" } } },
            { PutRequest: { Item: { userId: "gu-b5", v: 5 } } },
          ],
          [unstreamed]: [{ PutRequest: { Item: { userId: "gu-b1", v: 1 } } }],
        },
      }),
    );
    assert.deepEqual(answer.UnprocessedItems, {});
    assert.deepEqual(
      datas().map((data) => [data.eventName, data.tableName, data.dynamodb.OldImage, data.dynamodb.NewImage]),
      [
        ["MODIFY", table, marshall({ userId: "gu-b1", v: 1 }), marshall({ userId: "gu-b1", v: 10 })],
        ["INSERT", table, undefined, marshall({ userId: "gu-b3", v: 3 })],
        ["REMOVE", table, marshall({ userId: "gu-b2", v: 2 }), undefined],
      ],
    );
  });

  it("a table not streamed makes no records", async function () {
    await documents.send(new PutCommand({ TableName: unstreamed, Item: { userId: "gu-unstreamed" } }));
    await documents.send(new DeleteCommand({ TableName: unstreamed, Key: { userId: "gu-unstreamed" } }));
    assert.deepEqual(captured, []);
  });

  it("a table with a sort key has both in the record's keys", async function () {
    await documents.send(new PutCommand({ TableName: ranged, Item: { userId: "gu-ranged", at: 7, note: "x" } }));
    assert.deepEqual(captured[0]!.data.dynamodb.Keys, marshall({ userId: "gu-ranged", at: 7 }));
  });

  it("concurrent writes to one item make records whose images chain, in the order of the writes", async function () {
    const writes = Array.from({ length: 40 }, () =>
      documents.send(
        new UpdateCommand({
          TableName: table,
          Key: { userId: "gu-hot" },
          UpdateExpression: "ADD n :one",
          ExpressionAttributeValues: { ":one": 1 },
        }),
      ),
    );
    await Promise.all(writes);
    const records = datas();
    assert.equal(records.length, 40);
    assert.equal(records[0]!.eventName, "INSERT");
    for (let index = 1; index < records.length; index++) {
      assert.equal(records[index]!.eventName, "MODIFY");
      assert.deepEqual(records[index]!.dynamodb.OldImage, records[index - 1]!.dynamodb.NewImage, `record ${index}`);
    }
    assert.deepEqual(
      records.map((record) => record.dynamodb.NewImage!.n),
      Array.from({ length: 40 }, (_, index) => ({ N: String(index + 1) })),
    );
    assert.equal(new Set(captured.map((change) => change.partitionKey)).size, 1);
  });

  it("a write to one item waits for the sink of the one before; other items' writes do not", async function () {
    let release!: () => void;
    let reached!: () => void;
    const held = new Promise<void>((resolve) => (reached = resolve));
    hold = { userId: "gu-slow", reached, until: new Promise<void>((resolve) => (release = resolve)) };
    const done: string[] = [];
    const put = (userId: string, v: number) =>
      documents.send(new PutCommand({ TableName: table, Item: { userId, v } })).then(() => void done.push(`${userId} v${v}`));
    const first = put("gu-slow", 1);
    await held;
    const second = put("gu-slow", 2);
    await put("gu-fast", 1);
    assert.deepEqual(done, ["gu-fast v1"], "the held item's writes are not answered before their records are taken");
    assert.deepEqual(captured.map(userIdOf), ["gu-fast"]);
    release();
    await Promise.all([first, second]);
    assert.deepEqual(done, ["gu-fast v1", "gu-slow v1", "gu-slow v2"]);
    assert.deepEqual(
      datas().map((data) => [data.eventName, data.dynamodb.Keys, data.dynamodb.NewImage?.v]),
      [
        ["INSERT", marshall({ userId: "gu-fast" }), { N: "1" }],
        ["INSERT", marshall({ userId: "gu-slow" }), { N: "1" }],
        ["MODIFY", marshall({ userId: "gu-slow" }), { N: "2" }],
      ],
    );
  });

  it("a PutItem costs the service one call; an UpdateItem two", async function () {
    await seed({ userId: "gu-calls-warm" }); // the table's key schema is asked for once
    dynamo.proxy.requests.length = 0;
    await documents.send(new PutCommand({ TableName: table, Item: { userId: "gu-calls" } }));
    await documents.send(
      new UpdateCommand({
        TableName: table,
        Key: { userId: "gu-calls" },
        UpdateExpression: "SET v = :one",
        ExpressionAttributeValues: { ":one": 1 },
      }),
    );
    assert.deepEqual(countOperations(dynamo.proxy), { PutItem: 1, GetItem: 1, UpdateItem: 1 });
  });

  it("a deletion carrying headers other than the endpoint's service headers is not TTL's", async function () {
    await seed({ userId: "gu-impostor" });
    const impostor = new DynamoDBClient({ endpoint: stream.url, region, credentials });
    const [[name]] = Object.entries(stream.serviceHeaders) as [[string, string]];
    impostor.middlewareStack.add(
      (next) => (args) => {
        (args.request as { headers: Record<string, string> }).headers[name] = "guessed";
        return next(args);
      },
      { step: "build" },
    );
    await impostor.send(new DeleteItemCommand({ TableName: table, Key: { userId: { S: "gu-impostor" } } }));
    impostor.destroy();
    assert.equal(captured[0]!.data.userIdentity, null);
  });

  it("tables are created from the plan, on demand, keyed as planned; those with TTL are returned", async function () {
    const name = `${table}-planned`;
    const spec = tableSpecFromPlan(
      planned(name, {
        rangeKey: "sk",
        attributes: [
          { name: "userId", type: "S" },
          { name: "sk", type: "S" },
          { name: "gsiKey", type: "S" },
        ],
        ttl: { attributeName: "expiresOn", enabled: true },
      }),
    );
    const withoutTtl = tableSpecFromPlan(planned(`${name}-no-ttl`, { ttl: { attributeName: "expiresOn", enabled: false } }));
    const ttlTables = await createTablesFromPlan(dynamo.client, [spec, withoutTtl]);
    assert.deepEqual(await createTablesFromPlan(dynamo.client, [spec]), ttlTables, "a table that exists is left as it is");

    assert.deepEqual(ttlTables, [{ name, hashKey: "userId", rangeKey: "sk", ttlAttribute: "expiresOn" }]);
    const { Table } = await dynamo.client.send(new DescribeTableCommand({ TableName: name }));
    assert.deepEqual(Table!.KeySchema, [
      { AttributeName: "userId", KeyType: "HASH" },
      { AttributeName: "sk", KeyType: "RANGE" },
    ]);
    assert.equal(Table!.BillingModeSummary?.BillingMode, "PAY_PER_REQUEST");
  });
});

describe("local table: change records through Kinesis (kinesalite)", function () {
  let dynamo: LocalDynamo;
  let kinesalite: import("node:http").Server;
  let kinesis: KinesisClient;
  let stream: TableWithStream;
  let documents: DynamoDBDocumentClient;
  let client: DynamoDBClient;
  let table: string;
  let iterator: string | undefined;
  /** What the sink took, in the order it was taken, and the PutRecords calls it made. */
  const taken: TableChange[] = [];
  let calls = 0;
  const streamName = "fan-identity-table-stream";

  async function startKinesalite() {
    kinesalite = (require("kinesalite") as (options: object) => import("node:http").Server)({ createStreamMs: 0 });
    await new Promise<void>((resolve) => kinesalite.listen(0, "127.0.0.1", resolve));
    kinesis = new KinesisClient({
      endpoint: `http://127.0.0.1:${(kinesalite.address() as AddressInfo).port}`,
      region,
      credentials,
      requestHandler: new NodeHttpHandler(),
    });
    await kinesis.send(new CreateStreamCommand({ StreamName: streamName, ShardCount: 1 }));
    for (;;) {
      const { StreamDescriptionSummary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
      if (StreamDescriptionSummary?.StreamStatus === "ACTIVE") break;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName: streamName }));
    iterator = (
      await kinesis.send(
        new GetShardIteratorCommand({ StreamName: streamName, ShardId: Shards![0]!.ShardId!, ShardIteratorType: "TRIM_HORIZON" }),
      )
    ).ShardIterator;
  }

  /** The records put on the stream since the last read. */
  async function readStream(): Promise<TableChange[]> {
    const { Records, NextShardIterator } = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator }));
    iterator = NextShardIterator;
    return Records!.map((record) => ({
      partitionKey: record.PartitionKey!,
      data: JSON.parse(Buffer.from(record.Data!).toString("utf8")) as TableChangeRecord,
    }));
  }

  before(async function () {
    dynamo = await startDynamo();
    table = await dynamo.createFanTable();
    await startKinesalite();
    const toKinesis = kinesisSink(async (entries) => {
      calls += 1;
      const answer = await kinesis.send(new PutRecordsCommand({ StreamName: streamName, Records: entries }));
      if (answer.FailedRecordCount) throw new Error(`${answer.FailedRecordCount} records refused`);
    });
    stream = await startTableWithStream({
      dynamoUrl: dynamo.endpoint,
      tables: [table],
      sink: async (records) => {
        await toKinesis(records);
        taken.push(...records);
      },
    });
    client = new DynamoDBClient({ endpoint: stream.url, region, credentials });
    documents = createDocumentClient(client);
  });

  after(async function () {
    client.destroy();
    kinesis.destroy();
    await stream.close();
    await new Promise<void>((resolve) => kinesalite.close(() => resolve()));
    await dynamo.close();
  });

  beforeEach(function () {
    taken.length = 0;
    calls = 0;
  });

  it("the records read back from the stream are the records put, in order, with their partition keys", async function () {
    await documents.send(new PutCommand({ TableName: table, Item: { userId: "gu-k1", type: "activityData", araiVersion: 1 } }));
    await documents.send(new PutCommand({ TableName: table, Item: { userId: "gu-k2", type: "rescore" } }));
    await documents.send(
      new UpdateCommand({
        TableName: table,
        Key: { userId: "gu-k1" },
        UpdateExpression: "SET #t = :s",
        ExpressionAttributeNames: { "#t": "type" },
        ExpressionAttributeValues: { ":s": "score" },
      }),
    );
    await documents.send(new DeleteCommand({ TableName: table, Key: { userId: "gu-k2" } }));

    const read = await readStream();
    assert.deepEqual(read, JSON.parse(JSON.stringify(taken)));
    assert.deepEqual(
      read.map(({ data }) => [data.eventName, userIdOf({ partitionKey: "", data }), decode(data).ok]),
      [
        ["INSERT", "gu-k1", true],
        ["INSERT", "gu-k2", true],
        ["MODIFY", "gu-k1", true],
        ["REMOVE", "gu-k2", true],
      ],
    );
  });

  it("concurrent writes go in fewer PutRecords calls, each item's records on the stream in write order", async function () {
    const fans = ["gu-c1", "gu-c2", "gu-c3", "gu-c4"];
    await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        documents.send(
          new UpdateCommand({
            TableName: table,
            Key: { userId: fans[index % fans.length] },
            UpdateExpression: "ADD n :one",
            ExpressionAttributeValues: { ":one": 1 },
          }),
        ),
      ),
    );

    const read = await readStream();
    assert.equal(read.length, 40);
    assert.ok(calls < 40, `${calls} PutRecords calls for 40 records`);
    for (const fan of fans) {
      const records = read.filter((change) => userIdOf(change) === fan).map((change) => change.data);
      assert.deepEqual(
        records.map((record) => [record.eventName, record.dynamodb.OldImage?.n, record.dynamodb.NewImage?.n]),
        Array.from({ length: 10 }, (_, index) => [
          index === 0 ? "INSERT" : "MODIFY",
          index === 0 ? undefined : { N: String(index) },
          { N: String(index + 1) },
        ]),
        fan,
      );
      assert.equal(new Set(read.filter((change) => userIdOf(change) === fan).map((change) => change.partitionKey)).size, 1);
    }
  });
});

describe("local table: TTL", function () {
  let dynamo: LocalDynamo;
  let stream: TableWithStream;
  let documents: DynamoDBDocumentClient;
  let client: DynamoDBClient;
  let captured: TableChange[];
  let ttlTables: TtlTable[];
  const NOW = Date.UTC(2026, 10, 29, 12, 0, 0);
  const nowS = NOW / 1000;

  before(async function () {
    dynamo = await startDynamo();
    ttlTables = await createTablesFromPlan(dynamo.client, [
      tableSpecFromPlan(planned("fan-identity-ttl", { ttl: { attributeName: "expiresOn", enabled: true } })),
      tableSpecFromPlan(planned("fan-identity-ttl-fast", { ttl: { attributeName: "expiresOn", enabled: true } })),
    ]);
    stream = await startTableWithStream({
      dynamoUrl: dynamo.endpoint,
      tables: ttlTables.map((table) => table.name),
      sink: async (records) => void captured.push(...records),
    });
    client = new DynamoDBClient({ endpoint: stream.url, region, credentials });
    documents = createDocumentClient(client);
  });

  after(async function () {
    client.destroy();
    await stream.close();
    await dynamo.close();
  });

  beforeEach(function () {
    captured = [];
    dynamo.intercept = () => undefined;
  });

  const ITEMS = {
    expired: { userId: "rescore#gu-1#2026-11-29", type: "rescore", expiresOn: nowS - 60 },
    future: { userId: "rescore#gu-2#2026-12-04", type: "rescore", expiresOn: nowS + 5 * DAY_S },
    noTtl: { userId: "gu-3", type: "score" },
    stringTtl: { userId: "gu-4", type: "score", expiresOn: String(nowS - 60) },
    setTtl: { userId: "gu-5", type: "score", expiresOn: new Set([nowS - 60]) },
    longAgo: { userId: "gu-6", type: "score", expiresOn: nowS - 6 * 365 * DAY_S },
  };

  async function fill(name: string) {
    for (const item of Object.values(ITEMS)) await documents.send(new PutCommand({ TableName: name, Item: item }));
    captured = [];
  }

  async function remaining(name: string) {
    return (await dynamo.scan(name)).map((item) => item.userId as string).sort();
  }

  it("deletes only the items expired by the clock, each with a REMOVE carrying the TTL service's identity", async function () {
    const [table] = ttlTables as [TtlTable];
    await fill(table.name);
    const sweeper = startTtlSweeper({ dynamo: stream, tables: [table], clock: () => NOW, intervalMs: 3_600_000 });
    try {
      assert.equal(await sweeper.sweep(), 1);
    } finally {
      await sweeper.close();
    }

    const { expired, ...kept } = ITEMS;
    assert.deepEqual(
      await remaining(table.name),
      Object.values(kept)
        .map((item) => item.userId)
        .sort(),
    );
    assert.equal(captured.length, 1);
    const { data } = captured[0]!;
    assert.deepEqual(stable(data), {
      awsRegion: "us-east-1",
      eventName: "REMOVE",
      userIdentity: TTL_IDENTITY,
      recordFormat: "application/json",
      tableName: table.name,
      dynamodb: {
        Keys: marshall({ userId: expired.userId }),
        OldImage: marshall(expired),
        // Keys 6 + 23; image 29 + "type"+"rescore" 11 + "expiresOn" 9 + ten digits 6.
        SizeBytes: 29 + 29 + 11 + 15,
      },
      eventSource: "aws:dynamodb",
    });
    assert.deepEqual(Object.keys(data), Object.keys(recordedRemove));
    const decoded = decode(data);
    assert.ok(decoded.ok);
    assert.deepEqual(decoded.value.userIdentity, TTL_IDENTITY);
  });

  it("deletes an item seen expired only if it is expired still: one whose TTL moved stays", async function () {
    const [, table] = ttlTables as [TtlTable, TtlTable];
    await fill(table.name);
    await documents.send(
      new PutCommand({ TableName: table.name, Item: { ...ITEMS.expired, userId: "gu-7", expiresOn: nowS - 1 } }),
    );
    captured = [];
    // The sweeper's scan sees every item as if expired: what changed since must survive the deletion's condition.
    dynamo.intercept = (request) => {
      if (operationOf(request) !== "Scan") return undefined;
      const { TableName, ProjectionExpression, ExpressionAttributeNames, ExclusiveStartKey } = JSON.parse(request.body);
      const { "#ttl": _ttl, ...names } = ExpressionAttributeNames as Record<string, string>;
      return {
        forwardBody: JSON.stringify({ TableName, ProjectionExpression, ExpressionAttributeNames: names, ExclusiveStartKey }),
      };
    };
    dynamo.proxy.requests.length = 0;
    const sweeper = startTtlSweeper({ dynamo: stream, tables: [table], clock: () => NOW, intervalMs: 3_600_000 });
    try {
      assert.equal(await sweeper.sweep(), 2);
    } finally {
      await sweeper.close();
      dynamo.intercept = () => undefined;
    }

    assert.equal(countOperations(dynamo.proxy).DeleteItem, 7, "every item scanned was tried");
    const { expired: _expired, ...kept } = ITEMS;
    assert.deepEqual(
      await remaining(table.name),
      Object.values(kept)
        .map((item) => item.userId)
        .sort(),
    );
    assert.deepEqual(captured.map(userIdOf).sort(), ["gu-7", ITEMS.expired.userId]);
  });

  it("a sped-up clock makes a five-day TTL expire within the test", async function () {
    const [, table] = ttlTables as [TtlTable, TtlTable];
    const clock = createClock(10 * DAY_S); // ten days a second
    const item = { userId: "rescore#gu-8#2026-12-04", type: "rescore", expiresOn: Math.floor(clock() / 1000) + 5 * DAY_S };
    await documents.send(new PutCommand({ TableName: table.name, Item: item }));
    captured = [];
    const started = Date.now();
    const sweeper = startTtlSweeper({ dynamo: stream, tables: [table], clock, intervalMs: 25 });
    try {
      while (!captured.some((change) => userIdOf(change) === item.userId)) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      await sweeper.close();
    }
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 400, `${elapsed} ms: five days pass in half a second of real time`);
    assert.ok(clock() >= item.expiresOn * 1000);
    assert.deepEqual(captured.find((change) => userIdOf(change) === item.userId)!.data.userIdentity, TTL_IDENTITY);
    assert.equal(await dynamo.item(table.name, item.userId), undefined);
  });

  it("createClock runs `speed` times real time from `start`", async function () {
    // Every bound is bracketed by real readings taken around the clock's: a timer may fire early
    // by the event loop's reckoning, and a busy machine may pause anywhere between two lines.
    const start = Date.UTC(2026, 0, 1);
    const beforeReal = Date.now();
    const realNow = createClock(1)();
    assert.ok(beforeReal <= realNow && realNow <= Date.now(), "at speed 1 it reads the real time");

    const beforeCreate = Date.now();
    const fast = createClock(3600, start);
    const afterCreate = Date.now();
    const first = fast() - start;
    assert.ok(first >= 0 && first <= (Date.now() - beforeCreate) * 3600, `it reads start at first, not ${first} ms later`);

    while (Date.now() - afterCreate < 50) await new Promise((resolve) => setTimeout(resolve, 10));
    const beforeRead = Date.now();
    const later = fast() - start;
    const afterRead = Date.now();
    assert.ok(later >= (beforeRead - afterCreate) * 3600, `an hour a second: ${later} ms after ${beforeRead - afterCreate} ms`);
    assert.ok(later <= (afterRead - beforeCreate) * 3600, `no more than an hour a second: ${later} ms`);
    assert.throws(() => createClock(0), /positive/);
  });
});
