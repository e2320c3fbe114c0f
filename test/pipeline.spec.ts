/**
 * One activity through the whole scoring pipeline, each worker built by its real factory as
 * Lambda builds it: a purchase on the purchase stream → enqueueFromPurchaseStream → the
 * account-activity FIFO queue → lookupArai (ARAI over HTTP) → the fan record → the table's
 * change, as the Kinesis streaming destination delivers it and as the mapping's filter lets it
 * through → scoreUsers (model over HTTP) → the stored score. Then the same activity again, and
 * the score write's own change: nothing is stored twice and nothing loops. DynamoDB and SQS are
 * real local services; dynalite has no streams, so the change records are built from the
 * table's items exactly as DynamoDB writes them to Kinesis.
 */
import { strict as assert } from "node:assert";
import { randomUUID } from "node:crypto";
import type { Message } from "@aws-sdk/client-sqs";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { marshall } from "@aws-sdk/util-dynamodb";
import { WORKERS } from "../workers/registry";
import { enqueueFromPurchaseStream } from "../workers/enqueueFromPurchaseStream";
import { lookupArai } from "../workers/lookupArai";
import { processRescoreEvents } from "../workers/processRescoreEvents";
import { scoreUsers } from "../workers/scoreUsers";
import { LAMBDA_BASICS, setEnvironment } from "./support/environment";
import { deliversKinesisRecord } from "./support/eventFilter";
import { fixture } from "./support/fixtures";
import { ModelServer, predictionFor } from "./support/fanTableStream";
import { countOperations, WireServer } from "./support/http";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { startSecrets } from "./support/secrets";

type Item = Record<string, unknown>;
type Handler = (event: unknown) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;

const FAN = "gu-a04c77e2";
const MODEL_VERSION = "fan-risk-7";

describe("the scoring pipeline, one activity end to end", function () {
  let dynamo: LocalDynamo;
  let sqs: LocalSqs;
  let secrets: WireServer;
  let arai: WireServer;
  let model: ModelServer;
  let table: string;
  let queue: string;
  let restore: () => void;
  let workers: { enqueue: Handler; lookup: Handler; score: Handler; rescore: Handler };
  let sequence = 0;

  before(async function () {
    [dynamo, sqs, model] = await Promise.all([startDynamo(), startSqs(), ModelServer.start()]);
    table = await dynamo.createFanTable();
    queue = await sqs.createQueue("vfid-qa1-us-east-1-acct-activity-sqs.fifo");
    secrets = await startSecrets({
      "arai-credentials": { username: "svc-scoring", password: "pw", clientId: "fan-identity" },
      "model-serving-token": { token: "dapi-pipeline" },
    });
    arai = await WireServer.start(() => ({ body: { ...fixture<object>("arai/account-activity.json"), globalUserId: FAN } }));
    // Every worker reads what it needs from one Lambda-like environment.
    restore = setEnvironment({
      ...LAMBDA_BASICS,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      TABLE_NAME: table,
      ACTIVITY_QUEUE_URL: queue,
      RESCORE_DELAY_DAYS: "5",
      ARAI_URL_TEMPLATE: `${arai.url}/arai/v1/accounts/{globalUserId}/activity`,
      ARAI_CREDENTIALS_SECRET_ARN: "arai-credentials",
      MODEL_URL: model.url(),
      MODEL_VERSION,
      MODEL_TOKEN_SECRET_ARN: "model-serving-token",
    });
    workers = {
      enqueue: enqueueFromPurchaseStream.factory() as Handler,
      lookup: lookupArai.factory() as Handler,
      score: scoreUsers.factory() as Handler,
      rescore: processRescoreEvents.factory() as Handler,
    };
  });

  after(async function () {
    restore();
    await Promise.all([dynamo.close(), sqs.close(), secrets.close(), arai.close(), model.close()]);
  });

  const noFailures = { batchItemFailures: [] };

  /** The messages on the queue as the FIFO mapping hands them to lookupArai. */
  const sqsEvent = (messages: readonly Message[]) => ({
    Records: messages.map((message) => ({
      messageId: message.MessageId!,
      receiptHandle: message.ReceiptHandle!,
      body: message.Body!,
      attributes: { ApproximateReceiveCount: "1", SentTimestamp: String(Date.now()), ...message.Attributes },
      messageAttributes: {},
      md5OfBody: message.MD5OfBody!,
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:us-east-1:210987654321:vfid-qa1-us-east-1-acct-activity-sqs.fifo",
      awsRegion: "us-east-1",
    })),
  });

  /** A change of the table, as its Kinesis streaming destination delivers it to the mappings. */
  function tableChange(eventName: "INSERT" | "MODIFY" | "REMOVE", key: string, images: { old?: Item; new?: Item }, ttl = false) {
    const change = {
      awsRegion: "us-east-1",
      eventID: randomUUID(),
      eventName,
      userIdentity: ttl ? { type: "Service", principalId: "dynamodb.amazonaws.com" } : null,
      recordFormat: "application/json",
      tableName: table,
      dynamodb: {
        ApproximateCreationDateTime: Date.now(),
        Keys: marshall({ userId: key }),
        ...(images.new ? { NewImage: marshall(images.new) } : {}),
        ...(images.old ? { OldImage: marshall(images.old) } : {}),
        SizeBytes: 512,
      },
      eventSource: "aws:dynamodb",
    };
    const sequenceNumber = `4965782840918770152001999524250839011995335832519${String(++sequence).padStart(7, "0")}`;
    return {
      kinesis: {
        kinesisSchemaVersion: "1.0",
        partitionKey: key,
        sequenceNumber,
        data: Buffer.from(JSON.stringify(change)).toString("base64"),
        approximateArrivalTimestamp: Date.now() / 1000,
      },
      eventSource: "aws:kinesis",
      eventVersion: "1.0",
      eventID: `shardId-000000000000:${sequenceNumber}`,
      eventName: "aws:kinesis:record",
      invokeIdentityArn: "arn:aws:iam::210987654321:role/vfid-qa1-us-east-1-scoreUsers-role",
      awsRegion: "us-east-1",
      eventSourceARN: "arn:aws:kinesis:us-east-1:210987654321:stream/vfid-qa1-us-east-1-fan-identity-table-stream",
    };
  }

  const fanRecord = async () => (await dynamo.documents.send(new GetCommand({ TableName: table, Key: { userId: FAN } }))).Item;

  let scored: Item;

  it("takes a purchase from the stream to a stored score", async function () {
    const purchase = fixture("kinesis-purchase-success.json");
    assert.deepEqual(await workers.enqueue(purchase), noFailures);
    const messages = await sqs.drain(queue);
    assert.equal(messages.length, 1);
    assert.equal(messages[0]!.Attributes?.MessageGroupId, FAN);

    assert.deepEqual(await workers.lookup(sqsEvent(messages)), noFailures);
    const fresh = await fanRecord();
    assert.equal(fresh?.type, "activityData");
    assert.equal(fresh?.araiVersion, 1);
    assert.equal(arai.requests.length, 1);

    const insert = tableChange("INSERT", FAN, { new: fresh! });
    assert.ok(deliversKinesisRecord(WORKERS.scoreUsers.trigger.filter, insert), "the scoreUsers mapping delivers fresh ARAI");
    assert.ok(!deliversKinesisRecord(WORKERS.processRescoreEvents.trigger.filter, insert));
    assert.deepEqual(await workers.score({ Records: [insert] }), noFailures);

    scored = (await fanRecord())!;
    const expected = predictionFor({ globalUserId: FAN, raw_json_string: JSON.stringify(fresh!.arai) });
    assert.equal(scored.type, "score");
    assert.equal(scored.score, expected);
    assert.equal(scored.scoreVersion, MODEL_VERSION);
    assert.equal(scored.scoredAraiVersion, 1);
    assert.equal(typeof scored.dateCreated, "string");
    assert.equal(scored.dateCreated, scored.dateUpdated, "the first score sets dateCreated");
    assert.equal(model.requests.length, 1);

    const rescores = (await dynamo.scan(table)).filter((item) => item.type === "rescore");
    assert.deepEqual(
      rescores.map((item) => [item.userId, item.source]),
      [[`rescore#${FAN}#2026-11-29`, "purchase"]],
    );
  });

  it("does not loop: the score write's own change is neither delivered to nor scored by scoreUsers", async function () {
    const before = await fanRecord();
    const modify = tableChange("MODIFY", FAN, { old: { ...before, type: "activityData" }, new: before! });
    assert.ok(!deliversKinesisRecord(WORKERS.scoreUsers.trigger.filter, modify), "the mapping filters the score write out");
    // Even if delivered, the worker itself skips it: no model call, no write.
    const calls = countOperations(dynamo.proxy).UpdateItem ?? 0;
    assert.deepEqual(await workers.score({ Records: [modify] }), noFailures);
    assert.equal(model.requests.length, 1);
    assert.equal(countOperations(dynamo.proxy).UpdateItem ?? 0, calls);
    assert.deepEqual(await fanRecord(), scored);
  });

  it("stores nothing twice when the same activity comes again", async function () {
    const writes = countOperations(dynamo.proxy);
    const purchase = fixture("kinesis-purchase-success.json");
    assert.deepEqual(await workers.enqueue(purchase), noFailures);
    // SQS drops a repeat within five minutes by its deduplication id; local SQS forgets ids of
    // deleted messages, so the repeat may arrive: then the ARAI is fresh and nothing is fetched.
    const again = await sqs.drain(queue);
    if (again.length > 0) assert.deepEqual(await workers.lookup(sqsEvent(again)), noFailures);

    assert.equal(arai.requests.length, 1, "no second ARAI fetch inside the freshness window");
    assert.equal(model.requests.length, 1, "no second score");
    assert.equal(countOperations(dynamo.proxy).UpdateItem, writes.UpdateItem, "no second fan write");
    assert.deepEqual(await fanRecord(), scored);
    const items = await dynamo.scan(table);
    assert.deepEqual(items.map((item) => item.userId).sort(), [FAN, `rescore#${FAN}#2026-11-29`]);
  });

  it("rescores the fan when TTL deletes the rescore record, and only then", async function () {
    const [rescore] = (await dynamo.scan(table)).filter((item) => item.type === "rescore");
    const byTtl = tableChange("REMOVE", String(rescore!.userId), { old: rescore! }, true);
    const byHand = tableChange("REMOVE", String(rescore!.userId), { old: rescore! });
    assert.ok(deliversKinesisRecord(WORKERS.processRescoreEvents.trigger.filter, byTtl));
    assert.ok(!deliversKinesisRecord(WORKERS.processRescoreEvents.trigger.filter, byHand), "a manual delete is not a rescore");
    assert.ok(!deliversKinesisRecord(WORKERS.scoreUsers.trigger.filter, byTtl));

    assert.deepEqual(await workers.rescore({ Records: [byTtl] }), noFailures);
    const messages = await sqs.drain(queue);
    assert.deepEqual(
      messages.map((message) => JSON.parse(message.Body!)),
      [{ globalUserId: FAN, source: "rescore", action: "rescore", at: "2026-11-29T00:00:00.000Z" }],
    );
  });
});
