/**
 * scoreUsers against a real local DynamoDB (dynalite behind a recording proxy), the model
 * endpoint and Secrets Manager at the wire, and local SQS for the records it parks, fed Kinesis
 * events carrying the fan-identity table's change records in the recorded shape.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import { unmarshall } from "@aws-sdk/util-dynamodb";
import * as fc from "fast-check";
import type { BatchResponse } from "../workers/shared/runtime/batch";
import { loadEnvironment } from "../workers/shared/runtime/environment";
import { createDynamoChangeDecoder, type DynamoChange } from "../workers/shared/runtime/records";
import { chunk } from "../workers/shared/runtime/retry";
import { collapseByFan, fanImageSchema, type PendingRecord, scoringDecision } from "../workers/shared/scoring/score";
import { createScoreUsers, scoreUpdate, scoreUsers, WRITE_CONCURRENCY } from "../workers/scoreUsers";
import { scoreUsersContract } from "../workers/scoreUsers/contract";
import { araiDataFor, recordedAraiAnswer } from "./support/arai";
import { failureReasons, failuresOf } from "./support/batch";
import { LAMBDA_AWS, setEnvironment } from "./support/environment";
import {
  activityDataChange,
  activityDataImage,
  araiFor,
  type ChangeRecord,
  expectedScore,
  kinesisEvent,
  MODEL_PATH,
  MODEL_TOKEN,
  MODEL_TOKEN_SECRET_ARN,
  modelClientFor,
  type ModelServer,
  modelRecordsOf,
  predictionFor,
  type ScoringServices,
  startScoringServices,
} from "./support/fanTableStream";
import { fixture } from "./support/fixtures";
import { countOperations, type WireServer } from "./support/http";
import type { LocalDynamo, LocalSqs } from "./support/localAws";
import { captureLogs, linesAt, type LogLine } from "./support/logs";
import { parkedBySequenceNumber, parkedLines } from "./support/parked";
import { DYNAMO_ITEM_TOO_LARGE, serviceRefuses } from "./support/streams";

const MODEL_VERSION = "fan-risk-7";
const RECORDED_FAN = "gu-3b9e51d7";
const FIRST_FAN = "gu-e07d4c19";

type Item = Record<string, unknown>;

const imageOf = (change: ChangeRecord) => unmarshall(change.dynamodb.NewImage as never);
/** A fan record as lookupArai first writes it: no score yet. */
const unscored = (image: Item): Item => {
  const { score: _score, scoreVersion: _version, scoredAraiVersion: _scored, dateCreated: _created, ...fresh } = image;
  return fresh;
};

describe("scoreUsers", function () {
  let services: ScoringServices;
  let dynamo: LocalDynamo;
  let model: ModelServer;
  let secrets: WireServer;
  let sqs: LocalSqs;
  let table: string;
  let failureQueue: string;
  let clock: Date;

  before(async function () {
    services = await startScoringServices();
    ({ dynamo, model, secrets, sqs } = services);
  });
  after(async function () {
    await services?.close();
  });
  beforeEach(async function () {
    table = await services.freshTable();
    failureQueue = await services.freshFailureQueue();
    clock = new Date("2026-11-24T09:14:33.018Z");
  });

  /** The worker built from its parts, as the factory builds it, with a fixed clock. */
  function worker(vars: Record<string, string> = {}) {
    const env = loadEnvironment(scoreUsersContract, {
      TABLE_NAME: table,
      MODEL_URL: model.url(),
      MODEL_VERSION,
      MODEL_TOKEN_SECRET_ARN,
      MODEL_TIMEOUT_MS: "1000",
      FAILURE_QUEUE_URL: failureQueue,
      ...vars,
    });
    const logger = new Logger({ serviceName: scoreUsersContract.name, logLevel: "DEBUG" });
    const handler = createScoreUsers({
      env,
      logger,
      documents: dynamo.documents,
      sqs: sqs.client,
      model: modelClientFor(secrets, env, "scoring model", logger),
      now: () => clock,
    });
    return (event: unknown): Promise<{ result: BatchResponse; logs: LogLine[] }> => captureLogs(() => handler(event));
  }

  /** Fan records as lookupArai leaves them (type=activityData); the calls are not counted. */
  const seed = (items: readonly Item[]) => dynamo.seed(table, items);
  const stored = (globalUserId: string) => dynamo.item(table, globalUserId);

  it("scores the recorded activityData change: one model request as Databricks expects it, the score stored with its version", async function () {
    const event = fixture<{ Records: { kinesis: { sequenceNumber: string } }[] }>("kinesis-fan-table-activity-data.json");
    const image = activityDataImage();
    await seed([image]);

    const { result, logs } = await worker()(event);

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(model.requests.length, 1);
    const [request] = model.requests;
    assert.equal(request!.method, "POST");
    assert.equal(request!.url, MODEL_PATH);
    assert.equal(request!.headers.authorization, `Bearer ${MODEL_TOKEN}`);
    const records = modelRecordsOf(request!);
    assert.deepEqual(records, [{ globalUserId: RECORDED_FAN, raw_json_string: JSON.stringify(image.arai) }]);
    assert.deepEqual(JSON.parse(records[0]!.raw_json_string), image.arai);

    assert.deepEqual(countOperations(dynamo.proxy), { UpdateItem: 1 });
    assert.deepEqual(await stored(RECORDED_FAN), {
      ...image,
      type: "score",
      score: expectedScore(RECORDED_FAN, image.arai),
      scoreVersion: MODEL_VERSION,
      scoredAraiVersion: 4,
      dateUpdated: clock.toISOString(),
      // Scored before (araiVersion 3): the first score's date stays.
      dateCreated: "2026-10-02T08:11:45.902Z",
    });
    const summary = logs.find((line) => line.message === "batch scored");
    assert.deepEqual(
      { records: summary?.records, fans: summary?.fans, scored: summary?.scored, modelCalls: summary?.modelCalls },
      { records: 1, fans: 1, scored: 1, modelCalls: 1 },
    );
  });

  it("sends the model the stored snapshot, the accounts service's `data`, as raw_json_string at the wire", async function () {
    const globalUserId = "gu-5a7e0c31";
    const snapshot = araiDataFor(globalUserId);
    await seed([{ userId: globalUserId, type: "activityData", globalUserId, araiVersion: 1, arai: snapshot }]);

    const { result } = await worker()(kinesisEvent([activityDataChange({ globalUserId, araiVersion: 1, arai: snapshot })]).event);

    assert.deepEqual(result, { batchItemFailures: [] });
    const [record] = modelRecordsOf(model.requests[0]!);
    assert.equal(record!.globalUserId, globalUserId);
    const sent = JSON.parse(record!.raw_json_string) as Record<string, unknown>;
    assert.deepEqual(sent, { ...recordedAraiAnswer().data, globalUserId }, "the recorded answer's data, for this fan");
    assert.ok(!("data" in sent) && !("meta" in sent), "the account activity itself, not the answer around it");
    assert.equal((await stored(globalUserId))?.score, expectedScore(globalUserId, snapshot));
  });

  it("does not bring back a fan record deleted before its score was written, and does not fail the record", async function () {
    const event = fixture<{ Records: unknown[] }>("kinesis-fan-table-activity-data.json");

    const { result } = await worker()(event);

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.deepEqual(countOperations(dynamo.proxy), { UpdateItem: 1 });
    assert.equal(await stored(RECORDED_FAN), undefined);
  });

  it("sets dateCreated on a fan's first score and keeps it on the next", async function () {
    const first = fixture<ChangeRecord>("dynamodb-change-fan-first-activity-data.json");
    await seed([imageOf(first)]);
    const firstAt = clock.toISOString();

    const once = await worker()(kinesisEvent([first]).event);
    assert.deepEqual(once.result, { batchItemFailures: [] });
    const afterFirst = await stored(FIRST_FAN);
    assert.equal(afterFirst?.type, "score");
    assert.equal(afterFirst?.dateCreated, firstAt);
    assert.equal(afterFirst?.dateUpdated, firstAt);
    assert.equal(afterFirst?.scoredAraiVersion, 1);
    assert.equal(afterFirst?.scoreVersion, MODEL_VERSION);

    clock = new Date("2026-11-24T11:02:40.555Z");
    const next = activityDataChange({ globalUserId: FIRST_FAN, araiVersion: 2 });
    const twice = await worker()(kinesisEvent([next]).event);
    assert.deepEqual(twice.result, { batchItemFailures: [] });
    const afterNext = await stored(FIRST_FAN);
    assert.equal(afterNext?.dateCreated, firstAt);
    assert.equal(afterNext?.dateUpdated, clock.toISOString());
    assert.equal(afterNext?.scoredAraiVersion, 2);
    assert.equal(afterNext?.score, expectedScore(FIRST_FAN, araiFor(FIRST_FAN, 2)));
  });

  it("costs one model request per MODEL_BATCH_SIZE fans and exactly one UpdateItem per fan, scoring each fan's newest ARAI", async function () {
    const fans = Array.from({ length: 230 }, (_, index) => `gu-${(0xa0000 + index).toString(16)}`);
    // Every fifth fan changed three times within the batch, its versions out of order.
    const bursts = new Set(fans.filter((_, index) => index % 5 === 0));
    const changes = fans.flatMap((globalUserId) =>
      bursts.has(globalUserId)
        ? [2, 5, 3].map((araiVersion) => activityDataChange({ globalUserId, araiVersion }))
        : [activityDataChange({ globalUserId, araiVersion: 1 })],
    );
    const newest = (globalUserId: string) => (bursts.has(globalUserId) ? 5 : 1);
    await seed(
      fans.map((globalUserId) => ({
        userId: globalUserId,
        type: "activityData",
        globalUserId,
        araiVersion: newest(globalUserId),
      })),
    );

    const { result } = await worker({ MODEL_BATCH_SIZE: "100" })(kinesisEvent(changes).event);

    assert.equal(changes.length, 322);
    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(model.requests.length, 3, "ceil(230 / 100) model requests");
    const asked = model.requests.map(modelRecordsOf);
    // Each request holds one chunk of the fans in order of first appearance.
    assert.deepEqual(
      asked.map((records) => records.map((record) => record.globalUserId)).sort((a, b) => a[0]!.localeCompare(b[0]!)),
      chunk(fans, 100),
    );
    for (const record of asked.flat()) {
      assert.equal(record.raw_json_string, JSON.stringify(araiFor(record.globalUserId, newest(record.globalUserId))));
    }
    assert.deepEqual(countOperations(dynamo.proxy), { UpdateItem: 230 });
    const items = new Map((await dynamo.scan(table)).map((item) => [item.userId as string, item]));
    for (const globalUserId of fans) {
      const item = items.get(globalUserId);
      assert.equal(item?.scoredAraiVersion, newest(globalUserId), globalUserId);
      assert.equal(item?.score, expectedScore(globalUserId, araiFor(globalUserId, newest(globalUserId))), globalUserId);
      assert.equal(item?.type, "score");
    }
  });

  it("keeps the score of a newer ARAI when an older araiVersion arrives late, and the late record does not fail", async function () {
    const globalUserId = "gu-7a11c0de";
    await seed([{ userId: globalUserId, type: "activityData", globalUserId, araiVersion: 5 }]);
    const score = worker();
    assert.deepEqual((await score(kinesisEvent([activityDataChange({ globalUserId, araiVersion: 5 })]).event)).result, {
      batchItemFailures: [],
    });
    const scored = await stored(globalUserId);

    model.answer = (records) => ({ body: { predictions: records.map(() => 0.999) } });
    clock = new Date("2026-11-24T10:00:00.000Z");
    const late = kinesisEvent([activityDataChange({ globalUserId, araiVersion: 4 })]);
    const replay = kinesisEvent([activityDataChange({ globalUserId, araiVersion: 5 })]);
    const { result, logs } = await score({ Records: [...late.event.Records, ...replay.event.Records] });

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.deepEqual(await stored(globalUserId), scored, "the stored score is untouched");
    assert.notEqual(scored?.score, 0.999);
    const stale = logs.filter((line) => line.message.startsWith("score not stored: the fan was already scored"));
    assert.equal(stale.length, 1, JSON.stringify(logs));
    assert.equal(stale[0]!.level, "INFO");
    assert.equal(stale[0]!.globalUserId, globalUserId);
    assert.equal(stale[0]!.araiVersion, 5, "the batch's newest version was tried, and was already scored");

    // On its own, the older version is refused too.
    const alone = await score(late.event);
    assert.deepEqual(alone.result, { batchItemFailures: [] });
    assert.deepEqual(await stored(globalUserId), scored);
    assert.ok(alone.logs.some((line) => line.level === "INFO" && line.araiVersion === 4));
  });

  it("skips every change that is not fresh activityData without calling the model or the table (the feedback-loop guard)", async function () {
    const scoredFan = fixture<ChangeRecord>("dynamodb-change-fan-scored.json");
    const fanRemoved = structuredClone(scoredFan);
    fanRemoved.eventName = "REMOVE";
    fanRemoved.dynamodb.OldImage = fanRemoved.dynamodb.NewImage;
    delete fanRemoved.dynamodb.NewImage;
    const ignored = [
      scoredFan,
      fixture<ChangeRecord>("dynamodb-change-rescore-insert.json"),
      fixture<ChangeRecord>("dynamodb-change-rescore-ttl-removal.json"),
      fixture<ChangeRecord>("dynamodb-change-staging-score.json"),
      fanRemoved,
    ];

    const { result, logs } = await worker()(kinesisEvent(ignored).event);

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(model.requests.length, 0);
    assert.equal(dynamo.proxy.requests.length, 0);
    const skipped = logs.filter((line) => line.message === "record skipped");
    assert.equal(skipped.length, 5);
    assert.deepEqual(
      skipped.map((line) => line.level),
      Array(5).fill("INFO"),
      "skipped on purpose: logged at INFO with why",
    );
    assert.match(String(skipped[0]!.reason), /MODIFY of a record of type "score", not activityData/);
    assert.match(String(skipped[3]!.reason), /INSERT of a record of type "stagingScore"/);
    assert.equal(skipped[4]!.reason, "REMOVE");

    // Among them, the one activityData change is scored alone.
    const globalUserId = "gu-0b5e55ed";
    const mixed = kinesisEvent([
      ...ignored.slice(0, 2),
      activityDataChange({ globalUserId, araiVersion: 1 }),
      ...ignored.slice(2),
    ]);
    assert.deepEqual((await worker()(mixed.event)).result, { batchItemFailures: [] });
    assert.deepEqual(
      model.requests.flatMap(modelRecordsOf).map((record) => record.globalUserId),
      [globalUserId],
    );
    assert.deepEqual(countOperations(dynamo.proxy), { UpdateItem: 1 });
  });

  it("parks each malformed record alone, with its reason, on its first delivery, and scores the rest of the batch", async function () {
    const valid = activityDataChange({ globalUserId: "gu-600dfa01", araiVersion: 2 });
    const notDynamoJson = activityDataChange({ globalUserId: "gu-bad00001", araiVersion: 2 });
    (notDynamoJson.dynamodb.NewImage as Record<string, unknown>).arai = { X: "no such DynamoDB type" };
    const entries: { entry: object | string; reason: RegExp }[] = [
      { entry: "this is not base64!", reason: /data is not base64/ },
      { entry: Buffer.from("{ not json").toString("base64"), reason: /data is not JSON/ },
      { entry: { Records: [] }, reason: /DynamoDB change record is not as expected/ },
      {
        entry: activityDataChange({ globalUserId: "gu-bad00002", araiVersion: 1, image: { araiVersion: undefined } }),
        reason: /activityData image is not as expected: araiVersion/,
      },
      {
        entry: activityDataChange({ globalUserId: "gu-bad00003", araiVersion: 1, image: { araiVersion: "3" } }),
        reason: /araiVersion: .*expected number/i,
      },
      {
        entry: activityDataChange({ globalUserId: "gu-bad00004", araiVersion: 0 }),
        reason: /araiVersion: .*>=1/,
      },
      {
        entry: activityDataChange({ globalUserId: "gu-bad00005", araiVersion: 1, image: { arai: '{"counts":{}}' } }),
        reason: /arai: .*expected record/i,
      },
      {
        entry: activityDataChange({ globalUserId: "gu-bad00006", araiVersion: 1, image: { globalUserId: 40417 } }),
        reason: /globalUserId: .*expected string/i,
      },
      { entry: notDynamoJson, reason: /not DynamoDB JSON/ },
    ];
    const { event, sequenceNumbers } = kinesisEvent([entries[0]!.entry, valid, ...entries.slice(1).map(({ entry }) => entry)]);
    const [firstBad, validSequence, ...otherBad] = sequenceNumbers;
    await seed([unscored(imageOf(valid))]);

    const { result, logs } = await worker()(event);

    // Nothing for Lambda to retry: the shard moves on.
    assert.deepEqual(result, { batchItemFailures: [] });
    const bad = [firstBad!, ...otherBad];
    const parked = parkedBySequenceNumber(await sqs.drain(failureQueue));
    assert.deepEqual([...parked.keys()].sort(), [...bad].sort());
    assert.ok(!parked.has(validSequence!), "the valid record is not parked");
    entries.forEach(({ reason }, index) => {
      const { document } = parked.get(bad[index]!)!;
      assert.match(document.reason, reason);
      assert.deepEqual(document.record, event.Records[index === 0 ? 0 : index + 1]);
      assert.equal(document.worker, "scoreUsers");
    });
    const lines = parkedLines(logs);
    assert.deepEqual(
      lines.map((line) => [line.level, line.record]),
      bad.map((seq) => ["WARN", seq]),
    );
    assert.deepEqual(
      logs.filter((line) => line.message === "record failed"),
      [],
    );
    assert.equal(logs.find((line) => line.message === "batch scored")?.parked, entries.length);
    assert.deepEqual(
      model.requests.flatMap(modelRecordsOf).map((record) => record.globalUserId),
      ["gu-600dfa01"],
    );
    assert.deepEqual(countOperations(dynamo.proxy), { UpdateItem: 1 });
    assert.equal((await stored("gu-600dfa01"))?.scoredAraiVersion, 2);
  });

  it("fails every record and writes nothing while the model answers 503, with an error log naming the service and status", async function () {
    model.answer = () => ({ status: 503, body: { error_code: "TEMPORARILY_UNAVAILABLE", message: "Endpoint is not ready" } });
    const changes = [
      activityDataChange({ globalUserId: "gu-d0a10001", araiVersion: 1 }),
      activityDataChange({ globalUserId: "gu-d0a10002", araiVersion: 3 }),
      activityDataChange({ globalUserId: "gu-d0a10001", araiVersion: 2 }),
    ];
    const { event, sequenceNumbers } = kinesisEvent(changes);

    const { result, logs } = await worker()(event);

    assert.deepEqual(failuresOf(result), sequenceNumbers);
    assert.equal(model.requests.length, 3, "one request, two retries");
    assert.equal(dynamo.proxy.requests.length, 0, "nothing written");
    const errors = linesAt(logs, "ERROR");
    assert.equal(errors.length, 1, JSON.stringify(errors));
    assert.equal(errors[0]!.service, "scoreUsers");
    assert.equal(errors[0]!.dependency, "scoring model");
    assert.equal(errors[0]!.status, 503);
    assert.equal(errors[0]!.fans, 2);
    assert.equal(errors[0]!.records, 3);
    assert.match(
      String((errors[0]!.error as { message: string }).message),
      /^scoring model POST \S+ failed after 3 attempts: HTTP 503/,
    );
    const reasons = failureReasons(logs);
    assert.equal(reasons.length, 3);
    for (const reason of reasons) assert.match(reason, /^not scored: scoring model .*HTTP 503/);
  });

  for (const { title, predictions } of [
    { title: "fewer predictions than fans", predictions: () => [0.2] },
    { title: "a prediction outside [0, 1]", predictions: () => [0.2, 1.7] },
  ]) {
    it(`fails the records and writes nothing when the model answers ${title}`, async function () {
      model.answer = () => ({ body: { predictions: predictions() } });
      const { event, sequenceNumbers } = kinesisEvent([
        activityDataChange({ globalUserId: "gu-0dd50001", araiVersion: 1 }),
        activityDataChange({ globalUserId: "gu-0dd50002", araiVersion: 1 }),
      ]);

      const { result, logs } = await worker()(event);

      assert.deepEqual(failuresOf(result), sequenceNumbers);
      assert.equal(model.requests.length, 1, "a wrong answer is not asked again");
      assert.equal(dynamo.proxy.requests.length, 0);
      const error = linesAt(logs, "ERROR")[0];
      assert.match(
        String((error?.error as { message?: string })?.message),
        /scoring model .*(predictions for 2 records|not a score in \[0, 1\])/,
      );
    });
  }

  it("fails only the fans of the model request that failed", async function () {
    const fans = ["gu-c4a70001", "gu-c4a70002", "gu-c4a70003", "gu-c4a70004", "gu-c4a70005"];
    model.answer = (records) =>
      records.some((record) => record.globalUserId === "gu-c4a70003")
        ? { status: 500, body: { error_code: "INTERNAL_ERROR" } }
        : { body: { predictions: records.map(predictionFor) } };
    const changes = fans.map((globalUserId) => activityDataChange({ globalUserId, araiVersion: 1 }));
    const { event, sequenceNumbers } = kinesisEvent(changes);
    await seed(changes.map((change) => unscored(imageOf(change))));

    const { result } = await worker({ MODEL_BATCH_SIZE: "2" })(event);

    assert.deepEqual(failuresOf(result), sequenceNumbers.slice(2, 4));
    assert.deepEqual(countOperations(dynamo.proxy), { UpdateItem: 3 });
    assert.equal((await stored("gu-c4a70003"))?.score, undefined);
    assert.equal((await stored("gu-c4a70005"))?.type, "score");
  });

  it("fails a fan's records when its write fails for another reason than a newer score, and stores the others", async function () {
    dynamo.intercept = serviceRefuses(["UpdateItem"], DYNAMO_ITEM_TOO_LARGE, (request) => request.body.includes('"gu-f41100b2"'));
    const changes = [
      activityDataChange({ globalUserId: "gu-f41100b1", araiVersion: 1 }),
      activityDataChange({ globalUserId: "gu-f41100b2", araiVersion: 1 }),
      activityDataChange({ globalUserId: "gu-f41100b3", araiVersion: 1 }),
      activityDataChange({ globalUserId: "gu-f41100b2", araiVersion: 2 }),
    ];
    const { event, sequenceNumbers } = kinesisEvent(changes);
    await seed(changes.slice(0, 3).map((change) => unscored(imageOf(change))));

    const { result, logs } = await worker()(event);

    assert.deepEqual(failuresOf(result), [sequenceNumbers[1], sequenceNumbers[3]]);
    const reasons = failureReasons(logs);
    for (const reason of reasons) {
      assert.match(reason, new RegExp(`^score not stored: UpdateItem on ${table} failed: ValidationException: Item size`));
    }
    assert.equal((await stored("gu-f41100b1"))?.type, "score");
    assert.equal((await stored("gu-f41100b3"))?.type, "score");
    assert.equal((await stored("gu-f41100b2"))?.type, "activityData");
  });

  it("logs each stored score and each failure with the correlation id stored with the fan's lastActivity", async function () {
    dynamo.intercept = serviceRefuses(["UpdateItem"], DYNAMO_ITEM_TOO_LARGE, (request) => request.body.includes('"gu-c0440002"'));
    const lastActivity = (correlationId?: string) => ({
      action: "login",
      source: "kafka",
      at: "2026-11-24T09:14:31.000Z",
      ...(correlationId === undefined ? {} : { correlationId }),
    });
    const changes = [
      activityDataChange({ globalUserId: "gu-c0440001", araiVersion: 1, image: { lastActivity: lastActivity("act-0001") } }),
      activityDataChange({ globalUserId: "gu-c0440002", araiVersion: 1, image: { lastActivity: lastActivity("act-0002") } }),
      // Written before ids were stored, and holding one that is not an id: scored all the same, logged without one.
      activityDataChange({ globalUserId: "gu-c0440003", araiVersion: 1, image: { lastActivity: lastActivity() } }),
      activityDataChange({ globalUserId: "gu-c0440004", araiVersion: 1, image: { lastActivity: lastActivity("not an id") } }),
    ];
    const { event, sequenceNumbers } = kinesisEvent(changes);
    await seed(changes.map((change) => unscored(imageOf(change))));

    const { result, logs } = await worker()(event);

    assert.deepEqual(failuresOf(result), [sequenceNumbers[1]]);
    const storedLines = linesAt(logs, "INFO").filter((line) => line.message === "score stored");
    const scores = new Map<string, unknown>();
    for (const fan of ["gu-c0440001", "gu-c0440003", "gu-c0440004"]) scores.set(fan, (await stored(fan))?.score);
    assert.deepEqual(
      new Map(storedLines.map((line) => [line.globalUserId, [line.correlationId, line.score, line.scoreVersion]])),
      new Map([
        ["gu-c0440001", ["act-0001", scores.get("gu-c0440001"), MODEL_VERSION]],
        ["gu-c0440003", [undefined, scores.get("gu-c0440003"), MODEL_VERSION]],
        ["gu-c0440004", [undefined, scores.get("gu-c0440004"), MODEL_VERSION]],
      ]),
    );
    const error = logs.find((line) => line.message === "score not stored");
    assert.deepEqual([error?.level, error?.globalUserId, error?.correlationId], ["ERROR", "gu-c0440002", "act-0002"]);
    const failed = logs.filter((line) => line.message === "record failed");
    assert.deepEqual(
      failed.map((line) => [line.record, line.correlationId]),
      [[sequenceNumbers[1], "act-0002"]],
    );
  });

  it("rejects an event that is not a Kinesis event, naming the worker", async function () {
    await assert.rejects(
      worker()({ Records: [{ messageId: "69bc4bbd-ed69-4325-a434-85c3b428ceab", body: "{}" }] }),
      /^Error: scoreUsers: not a Kinesis event: Records\.0\.kinesis/,
    );
  });

  describe("built by its factory, as Lambda runs it", function () {
    const ENVIRONMENT = { ...LAMBDA_AWS, AWS_LAMBDA_LOG_LEVEL: undefined, POWERTOOLS_LOG_LEVEL: "INFO" };

    it("reads its environment, the token once per container, and stores scores through the endpoints it is given", async function () {
      secrets.requests.length = 0;
      const restore = setEnvironment({
        ...ENVIRONMENT,
        TABLE_NAME: table,
        MODEL_URL: model.url(),
        MODEL_VERSION,
        MODEL_TOKEN_SECRET_ARN,
        MODEL_TIMEOUT_MS: undefined,
        MODEL_BATCH_SIZE: undefined,
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        FAILURE_QUEUE_URL: failureQueue,
      });
      try {
        const handler = scoreUsers.factory();
        const image = activityDataImage();
        await seed([image]);
        const first = await captureLogs(() => handler(fixture("kinesis-fan-table-activity-data.json")));
        const second = await captureLogs(() =>
          handler(kinesisEvent([activityDataChange({ globalUserId: RECORDED_FAN, araiVersion: 5 })]).event),
        );

        assert.deepEqual(first.result, { batchItemFailures: [] });
        assert.deepEqual(second.result, { batchItemFailures: [] });
        assert.equal(secrets.requests.length, 1, "one token read for two invocations");
        assert.equal(model.requests.length, 2);
        for (const request of model.requests) assert.equal(request.headers.authorization, `Bearer ${MODEL_TOKEN}`);
        assert.deepEqual(countOperations(dynamo.proxy), { UpdateItem: 2 });
        assert.match(
          String(dynamo.proxy.requests[0]!.headers.authorization),
          /Credential=test\/\d{8}\/us-east-1\/dynamodb\/aws4_request/,
        );
        const item = await stored(RECORDED_FAN);
        assert.equal(item?.scoredAraiVersion, 5);
        assert.equal(item?.scoreVersion, MODEL_VERSION);
        assert.equal(item?.score, expectedScore(RECORDED_FAN, araiFor(RECORDED_FAN, 5)));
        const summary = second.logs.find((line) => line.message === "batch scored");
        assert.equal(summary?.service, "scoreUsers");
        assert.equal(summary?.level, "INFO");
      } finally {
        restore();
      }
    });

    it("fails at cold start, naming each variable, when MODEL_URL is missing and MODEL_BATCH_SIZE is not a number", function () {
      const restore = setEnvironment({
        ...ENVIRONMENT,
        TABLE_NAME: table,
        MODEL_URL: undefined,
        MODEL_VERSION,
        MODEL_TOKEN_SECRET_ARN,
        MODEL_BATCH_SIZE: "lots",
      });
      try {
        assert.throws(() => scoreUsers.factory(), /^Error: scoreUsers: environment .*MODEL_URL.*MODEL_BATCH_SIZE/);
      } finally {
        restore();
      }
    });
  });

  describe("scoring rules", function () {
    const decode = createDynamoChangeDecoder();
    const decision = (change: object) => {
      const decoded = decode(change);
      assert.ok(decoded.ok);
      return scoringDecision(decoded.value as DynamoChange, fanImageSchema());
    };

    it("scores INSERT and MODIFY of activityData, and nothing else of the recorded changes", function () {
      assert.equal(decision(fixture("dynamodb-change-fan-activity-data.json")).action, "score");
      assert.equal(decision(fixture("dynamodb-change-fan-first-activity-data.json")).action, "score");
      for (const name of [
        "dynamodb-change-fan-scored.json",
        "dynamodb-change-rescore-insert.json",
        "dynamodb-change-rescore-ttl-removal.json",
        "dynamodb-change-staging-score.json",
      ]) {
        assert.equal(decision(fixture(name)).action, "skip", name);
      }
    });

    it("the recorded Kinesis event carries the recorded change record", function () {
      const event = fixture<{ Records: { kinesis: { data: string } }[] }>("kinesis-fan-table-activity-data.json");
      assert.deepEqual(
        JSON.parse(Buffer.from(event.Records[0]!.kinesis.data, "base64").toString("utf8")),
        fixture("dynamodb-change-fan-activity-data.json"),
      );
    });

    it("collapses a batch to one entry per fan holding its highest araiVersion and all its records", function () {
      const record = fc.record({ fan: fc.integer({ min: 0, max: 8 }), araiVersion: fc.integer({ min: 1, max: 20 }) });
      fc.assert(
        fc.property(fc.array(record, { maxLength: 60 }), (drawn) => {
          const records: PendingRecord[] = drawn.map(({ fan, araiVersion }, index) => ({
            id: `seq-${index}`,
            input: { globalUserId: `gu-${fan}`, araiVersion, arai: { drawn: index } },
          }));
          const fans = collapseByFan(records);
          assert.deepEqual(
            fans.map((fan) => fan.globalUserId),
            [...new Set(records.map((entry) => entry.input.globalUserId))],
          );
          assert.deepEqual(fans.flatMap((fan) => fan.records).sort(), records.map((entry) => entry.id).sort());
          for (const fan of fans) {
            const own = records.filter((entry) => entry.input.globalUserId === fan.globalUserId);
            const highest = Math.max(...own.map((entry) => entry.input.araiVersion));
            assert.equal(fan.araiVersion, highest);
            // The ARAI travels with its version: the last record holding the highest one.
            assert.deepEqual(fan.arai, own.filter((entry) => entry.input.araiVersion === highest).at(-1)!.input.arai);
            assert.deepEqual(
              fan.records,
              own.map((entry) => entry.id),
            );
          }
        }),
      );
    });

    it("writes with the araiVersion condition and type=score", function () {
      const update = scoreUpdate(
        "fan-identity",
        { globalUserId: "gu-1", araiVersion: 7, score: 0.42 },
        MODEL_VERSION,
        "2026-11-24T00:00:00.000Z",
      );
      assert.equal(
        update.ConditionExpression,
        "attribute_exists(#key) AND (attribute_not_exists(scoredAraiVersion) OR scoredAraiVersion < :v)",
      );
      assert.deepEqual(update.Key, { userId: "gu-1" });
      assert.equal(update.ExpressionAttributeValues?.[":v"], 7);
      assert.equal(update.ExpressionAttributeValues?.[":score_type"], "score");
      assert.ok(WRITE_CONCURRENCY > 1 && WRITE_CONCURRENCY <= 25);
    });
  });
});
