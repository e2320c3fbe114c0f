/**
 * One activity through the whole scoring pipeline, each worker built by its real factory as
 * Lambda builds it: a purchase on the purchase stream → enqueueFromPurchaseStream → the
 * account-activity FIFO queue → lookupArai (ARAI over HTTP) → the fan record → the table's
 * change, as the Kinesis streaming destination delivers it and as the mapping's filter lets it
 * through → scoreUsers (model over HTTP) → the stored score. Then the same activity again, and
 * the score write's own change: nothing is stored twice and nothing loops. DynamoDB and SQS are
 * real local services; dynalite has no streams, so the change records are built from the
 * table's items exactly as DynamoDB writes them to Kinesis. Last, two activities followed by their
 * correlation ids through every log line the workers write, from the stream to the stored score.
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
import { araiAnswerFor, araiDataFor } from "./support/arai";
import { LAMBDA_BASICS, setEnvironment } from "./support/environment";
import { deliversKinesisRecord } from "./support/eventFilter";
import { fixture } from "./support/fixtures";
import { ModelServer, modelRecordsOf, predictionFor } from "./support/fanTableStream";
import { countOperations, WireServer } from "./support/http";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { captureLogs, type LogLine } from "./support/logs";
import { startSecrets } from "./support/secrets";
import { payloads, templates } from "./support/streamFixtures";
import { recordLike, sequenceNumber, sha256 } from "./support/streams";

type Item = Record<string, unknown>;
type Handler = (event: unknown) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;

const FAN = "gu-a04c77e2";
const ACTIVITY_QUEUE_ARN = "arn:aws:sqs:us-east-1:210987654321:vfid-qa1-us-east-1-acct-activity-sqs.fifo";
const MODEL_VERSION = "fan-risk-7";

describe("the scoring pipeline, one activity end to end", function () {
  let dynamo: LocalDynamo;
  let sqs: LocalSqs;
  let secrets: WireServer;
  let arai: WireServer;
  let model: ModelServer;
  let table: string;
  let queue: string;
  let deadLetters: string;
  let failures: string;
  let restore: () => void;
  let workers: { enqueue: Handler; lookup: Handler; score: Handler; rescore: Handler };
  let sequence = 0;

  before(async function () {
    [dynamo, sqs, model] = await Promise.all([startDynamo(), startSqs(), ModelServer.start()]);
    table = await dynamo.createFanTable();
    queue = await sqs.createQueue("vfid-qa1-us-east-1-acct-activity-sqs.fifo");
    deadLetters = await sqs.createQueue("vfid-qa1-us-east-1-acct-activity-sqs-dlq.fifo");
    failures = await sqs.createQueue("vfid-qa1-us-east-1-scoring-stream-failures-sqs");
    secrets = await startSecrets({
      "arai-credentials": { username: "svc-scoring", password: "pw", clientId: "fan-identity" },
      "model-serving-token": { token: "dapi-pipeline" },
    });
    // The recorded answer, about the fan asked for (/arai/v1/accounts/<id>/activity).
    arai = await WireServer.start((request) => ({ body: araiAnswerFor(decodeURIComponent(request.url.split("/")[4]!)) }));
    // Every worker reads what it needs from one Lambda-like environment.
    restore = setEnvironment({
      ...LAMBDA_BASICS,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      TABLE_NAME: table,
      ACTIVITY_QUEUE_URL: queue,
      FAILURE_QUEUE_URL: failures,
      RESCORE_DELAY_DAYS: "5",
      ARAI_URL_TEMPLATE: `${arai.url}/arai/v1/accounts/{globalUserId}/activity`,
      ARAI_CREDENTIALS_SECRET_ARN: "arai-credentials",
      DEAD_LETTER_QUEUE_URLS: JSON.stringify({ [ACTIVITY_QUEUE_ARN]: deadLetters }),
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
      // String attributes as Lambda hands them over.
      messageAttributes: Object.fromEntries(
        Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
          name,
          { stringValue: value.StringValue, stringListValues: [], binaryListValues: [], dataType: value.DataType },
        ]),
      ),
      md5OfBody: message.MD5OfBody!,
      eventSource: "aws:sqs",
      eventSourceARN: ACTIVITY_QUEUE_ARN,
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
    assert.deepEqual(await sqs.drain(deadLetters), [], "nothing parked");

    const insert = tableChange("INSERT", FAN, { new: fresh! });
    assert.ok(deliversKinesisRecord(WORKERS.scoreUsers.trigger.filter, insert), "the scoreUsers mapping delivers fresh ARAI");
    assert.ok(!deliversKinesisRecord(WORKERS.processRescoreEvents.trigger.filter, insert));
    assert.deepEqual(await workers.score({ Records: [insert] }), noFailures);

    // The answer's data is what is stored and what the model is sent, as sent (it needs no trimming).
    assert.deepEqual(fresh?.arai, araiDataFor(FAN));
    const [modelRecord] = modelRecordsOf(model.requests[0]!);
    assert.deepEqual(modelRecord, { globalUserId: FAN, raw_json_string: JSON.stringify(fresh!.arai) });
    assert.deepEqual(JSON.parse(modelRecord!.raw_json_string), araiDataFor(FAN));

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
      [{ v: 1, globalUserId: FAN, source: "rescore", action: "rescore", at: "2026-11-29T00:00:00.000Z" }],
    );
  });
  it("lets each activity be followed by its correlation id through every log line, from the stream to the stored score", async function () {
    const [fanA, fanB] = ["gu-trail-0a71", "gu-trail-0b72"];
    // A's producer sends an id in the event; B's sends none, so B's is made from its stream position.
    const carried = "purchase-7d2e1c90-4f3b";
    const made = sha256(`purchase\n${templates.purchase.eventSourceARN}\n${sequenceNumber(902)}`).slice(0, 32);
    const idOf: Record<string, string> = { [fanA]: carried, [fanB]: made };
    const batch = {
      Records: [
        recordLike(templates.purchase, 901, { ...payloads.purchase(fanA), correlationId: carried }),
        recordLike(templates.purchase, 902, payloads.purchase(fanB)),
      ],
    };
    // The workers as Lambda builds them, logging at INFO, the level they are deployed with.
    const restoreLevel = setEnvironment({ POWERTOOLS_LOG_LEVEL: "INFO" });
    const traced = {
      enqueue: enqueueFromPurchaseStream.factory() as Handler,
      lookup: lookupArai.factory() as Handler,
      score: scoreUsers.factory() as Handler,
      rescore: processRescoreEvents.factory() as Handler,
    };
    restoreLevel();

    let queued: Message[] = [];
    const { logs } = await captureLogs(async () => {
      assert.deepEqual(await traced.enqueue(batch), noFailures);
      queued = await sqs.drain(queue);
      assert.deepEqual(await traced.lookup(sqsEvent(queued)), noFailures);
      const changes = [];
      for (const fan of [fanA, fanB]) changes.push(tableChange("INSERT", fan, { new: (await dynamo.item(table, fan))! }));
      assert.deepEqual(await traced.score({ Records: changes }), noFailures);
    });

    // On the queue, as the String message attribute correlationId.
    assert.deepEqual(
      new Map(queued.map((message) => [JSON.parse(message.Body!).globalUserId, message.MessageAttributes?.correlationId])),
      new Map([
        [fanA, { DataType: "String", StringValue: carried }],
        [fanB, { DataType: "String", StringValue: made }],
      ]),
    );
    const idsOn = (line: LogLine) =>
      [line.correlationId, ...((line.correlationIds as unknown[] | undefined) ?? [])].filter((id) => id !== undefined);
    const summaries = ["batch enqueued", "batch done", "batch scored"];
    // Log lines, not the metrics documents (EMF) written beside them.
    const lines = logs.filter((line) => !("_aws" in line));
    for (const line of lines) {
      if (line.globalUserId === undefined) {
        // A line about no fan is a batch's summary, and names no activity.
        assert.ok(summaries.includes(line.message), `${line.service}: "${line.message}" names no fan`);
        assert.deepEqual(idsOn(line), [], `${line.service}: "${line.message}"`);
        continue;
      }
      const fan = String(line.globalUserId);
      assert.ok(idOf[fan], `${line.service}: "${line.message}" is about a fan of this test`);
      assert.ok(idsOn(line).length > 0, `${line.service}: "${line.message}" about ${fan} carries its correlation id`);
      assert.deepEqual(
        [...new Set(idsOn(line))],
        [idOf[fan]],
        `${line.service}: "${line.message}" carries ${fan}'s id and no other`,
      );
    }
    for (const [fan, id] of Object.entries(idOf)) {
      const lines = logs.filter((line) => idsOn(line).includes(id));
      const hop = (service: string, message: string) =>
        lines.find((line) => line.service === service && line.message === message);
      assert.ok(hop("enqueueFromPurchaseStream", "activity enqueued"), `${fan}: enqueued under ${id}`);
      assert.ok(hop("lookupArai", "activity received"), `${fan}: received by lookupArai under ${id}`);
      assert.ok(hop("lookupArai", "ARAI stored"), `${fan}: ARAI stored under ${id}`);
      const record = (await dynamo.item(table, fan))!;
      assert.equal(record.type, "score");
      assert.equal((record.lastActivity as { correlationId?: string }).correlationId, id, `${fan}: stored with lastActivity`);
      const stored = hop("scoreUsers", "score stored");
      assert.ok(stored, `${fan}: score stored under ${id}`);
      assert.deepEqual([stored.globalUserId, stored.score], [fan, record.score]);
    }
    assert.notEqual(carried, made);

    // Five days on, TTL deletes A's rescore: the rescore's activity carries the id of the activity that scheduled it.
    const rescore = (await dynamo.item(table, `rescore#${fanA}#2026-11-29`))!;
    assert.equal(rescore.correlationId, carried);
    const removal = tableChange("REMOVE", String(rescore.userId), { old: rescore }, true);
    assert.deepEqual((await captureLogs(() => traced.rescore({ Records: [removal] }))).result, noFailures);
    const [rescored] = await sqs.drain(queue);
    assert.equal(rescored?.MessageAttributes?.correlationId?.StringValue, carried);
  });
});
