/**
 * stagingScoreUsers against a real local DynamoDB (dynalite behind a recording proxy that can
 * leave items unprocessed, as DynamoDB does under load), the staging model endpoint and Secrets
 * Manager at the wire, and local SQS for the records it parks.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import type { BatchResponse } from "../workers/shared/runtime/batch";
import { loadEnvironment } from "../workers/shared/runtime/environment";
import { createStagingScoreUsers, stagingScoreUsers } from "../workers/stagingScoreUsers";
import { stagingScoreUsersContract } from "../workers/stagingScoreUsers/contract";
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
  MODEL_TOKEN,
  MODEL_TOKEN_SECRET_ARN,
  modelClientFor,
  type ModelServer,
  modelRecordsOf,
  type ScoringServices,
  STAGING_MODEL_PATH,
  startScoringServices,
} from "./support/fanTableStream";
import { fixture } from "./support/fixtures";
import { countOperations, type Interception, operationOf, type RecordedRequest, type WireServer } from "./support/http";
import type { LocalDynamo, LocalSqs } from "./support/localAws";
import { captureLogs, linesAt, type LogLine } from "./support/logs";
import { parkedBySequenceNumber } from "./support/parked";

const STAGING_VERSION = "fan-risk-8-rc1";
const RECORDED_FAN = "gu-3b9e51d7";

type Item = Record<string, unknown>;
type WriteRequest = { PutRequest: { Item: Record<string, { S?: string }> } };

/** The puts a recorded BatchWriteItem request carried, by key. */
const putKeys = (request: RecordedRequest) =>
  Object.values((JSON.parse(request.body) as { RequestItems: Record<string, WriteRequest[]> }).RequestItems)
    .flat()
    .map((write) => write.PutRequest.Item.userId?.S);

describe("stagingScoreUsers", function () {
  let services: ScoringServices;
  let dynamo: LocalDynamo;
  let model: ModelServer;
  let secrets: WireServer;
  let sqs: LocalSqs;
  let table: string;
  let failureQueue: string;
  const clock = new Date("2026-11-24T09:14:33.245Z");

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
  });

  function worker(vars: Record<string, string> = {}) {
    const env = loadEnvironment(stagingScoreUsersContract, {
      TABLE_NAME: table,
      MODEL_URL: model.url(STAGING_MODEL_PATH),
      MODEL_VERSION: STAGING_VERSION,
      MODEL_TOKEN_SECRET_ARN,
      MODEL_TIMEOUT_MS: "1000",
      FAILURE_QUEUE_URL: failureQueue,
      ...vars,
    });
    const logger = new Logger({ serviceName: stagingScoreUsersContract.name, logLevel: "DEBUG" });
    const handler = createStagingScoreUsers({
      env,
      logger,
      documents: dynamo.documents,
      sqs: sqs.client,
      model: modelClientFor(secrets, env, "staging scoring model", logger),
      now: () => clock,
      batchOptions: { baseDelayMs: 5 },
    });
    return (event: unknown): Promise<{ result: BatchResponse; logs: LogLine[] }> => captureLogs(() => handler(event));
  }

  /** Fan records as lookupArai leaves them; the calls are not counted. */
  const seed = (items: readonly Item[]) => dynamo.seed(table, items);

  const fanRecord = (globalUserId: string): Item => ({
    userId: globalUserId,
    type: "activityData",
    globalUserId,
    araiVersion: 1,
    arai: araiFor(globalUserId, 1),
    dateUpdated: "2026-11-24T09:14:32.540Z",
  });

  const stored = (userId: string) => dynamo.item(table, userId);

  /**
   * Makes DynamoDB leave the put of `userId` unprocessed in the next `times` BatchWriteItem
   * requests holding it: the request goes on without it, and the answer lists it in UnprocessedItems.
   */
  function leaveUnprocessed(userId: string, times = Infinity) {
    let left = times;
    dynamo.intercept = (request): Interception | undefined => {
      if (operationOf(request) !== "BatchWriteItem" || left <= 0) return undefined;
      const body = JSON.parse(request.body) as { RequestItems: Record<string, WriteRequest[]> };
      const [tableName, writes] = Object.entries(body.RequestItems)[0]!;
      const held = writes.filter((write) => write.PutRequest.Item.userId?.S === userId);
      if (held.length === 0) return undefined;
      left -= 1;
      const rest = writes.filter((write) => !held.includes(write));
      const unprocessed = { [tableName]: held };
      if (rest.length === 0) {
        return {
          answer: { headers: { "content-type": "application/x-amz-json-1.0" }, body: { UnprocessedItems: unprocessed } },
        };
      }
      return {
        forwardBody: JSON.stringify({ ...body, RequestItems: { [tableName]: rest } }),
        rewriteAnswer: (text) => JSON.stringify({ ...(JSON.parse(text) as object), UnprocessedItems: unprocessed }),
      };
    };
  }

  it("scores the recorded change with the staging endpoint and puts the staging item, leaving the fan record untouched", async function () {
    const image = activityDataImage();
    await seed([image]);

    const { result } = await worker()(fixture("kinesis-fan-table-activity-data.json"));

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(model.requests.length, 1);
    assert.equal(model.requests[0]!.url, STAGING_MODEL_PATH);
    assert.equal(model.requests[0]!.headers.authorization, `Bearer ${MODEL_TOKEN}`);
    assert.deepEqual(modelRecordsOf(model.requests[0]!), [
      { globalUserId: RECORDED_FAN, raw_json_string: JSON.stringify(image.arai) },
    ]);
    assert.deepEqual(countOperations(dynamo.proxy), { BatchWriteItem: 1 });
    assert.deepEqual(await stored(`staging#${RECORDED_FAN}`), {
      userId: `staging#${RECORDED_FAN}`,
      type: "stagingScore",
      globalUserId: RECORDED_FAN,
      score: expectedScore(RECORDED_FAN, image.arai),
      version: STAGING_VERSION,
      dateUpdated: clock.toISOString(),
    });
    assert.deepEqual(await stored(RECORDED_FAN), image, "the fan record is untouched");
  });

  it("sends the staging model the stored snapshot, the accounts service's `data`, as raw_json_string at the wire", async function () {
    const globalUserId = "gu-5a7e0c32";
    const snapshot = araiDataFor(globalUserId);
    await seed([{ ...fanRecord(globalUserId), arai: snapshot }]);

    const { result } = await worker()(kinesisEvent([activityDataChange({ globalUserId, araiVersion: 1, arai: snapshot })]).event);

    assert.deepEqual(result, { batchItemFailures: [] });
    const [record] = modelRecordsOf(model.requests[0]!);
    const sent = JSON.parse(record!.raw_json_string) as Record<string, unknown>;
    assert.deepEqual(sent, { ...recordedAraiAnswer().data, globalUserId }, "the recorded answer's data, for this fan");
    assert.ok(!("data" in sent) && !("meta" in sent), "the account activity itself, not the answer around it");
  });
  it("puts n fans' staging items in ceil(n/25) BatchWriteItem calls, one item per fan, fan records untouched", async function () {
    const fans = Array.from({ length: 130 }, (_, index) => `gu-${(0x5a000 + index).toString(16)}`);
    const records = fans.map(fanRecord);
    await seed(records);
    // Every tenth fan twice, its newer ARAI second.
    const changes = fans.flatMap((globalUserId, index) =>
      index % 10 === 0
        ? [activityDataChange({ globalUserId, araiVersion: 1 }), activityDataChange({ globalUserId, araiVersion: 2 })]
        : [activityDataChange({ globalUserId, araiVersion: 1 })],
    );

    const { result, logs } = await worker({ MODEL_BATCH_SIZE: "50" })(kinesisEvent(changes).event);

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(model.requests.length, 3, "ceil(130 / 50) model requests");
    assert.deepEqual(countOperations(dynamo.proxy), { BatchWriteItem: 6 }, "ceil(130 / 25)");
    assert.equal(logs.find((line) => line.message === "batch scored")?.batchWriteCalls, 6);
    const items = new Map((await dynamo.scan(table)).map((item) => [item.userId as string, item]));
    assert.equal(items.size, 260);
    fans.forEach((globalUserId, index) => {
      const araiVersion = index % 10 === 0 ? 2 : 1;
      assert.deepEqual(items.get(`staging#${globalUserId}`), {
        userId: `staging#${globalUserId}`,
        type: "stagingScore",
        globalUserId,
        score: expectedScore(globalUserId, araiFor(globalUserId, araiVersion)),
        version: STAGING_VERSION,
        dateUpdated: clock.toISOString(),
      });
      assert.deepEqual(items.get(globalUserId), records[index], "the fan record is untouched");
    });
  });

  it("retries an item DynamoDB left unprocessed once, and writes it", async function () {
    const fans = Array.from({ length: 30 }, (_, index) => `gu-${(0x6b000 + index).toString(16)}`);
    const held = `staging#${fans[7]}`;
    leaveUnprocessed(held, 1);

    const { result } = await worker()(
      kinesisEvent(fans.map((globalUserId) => activityDataChange({ globalUserId, araiVersion: 1 }))).event,
    );

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.deepEqual(countOperations(dynamo.proxy), { BatchWriteItem: 3 }, "25 + 5, and one retry of the unprocessed item");
    assert.deepEqual(
      dynamo.proxy.requests.map((request) => putKeys(request).length).sort((a, b) => a - b),
      [1, 5, 25],
    );
    assert.deepEqual(putKeys(dynamo.proxy.requests.at(-1)!), [held]);
    assert.equal((await stored(held))?.globalUserId, fans[7]);
    assert.equal((await dynamo.scan(table)).length, 30);
  });

  it("fails the records of a fan whose item stays unprocessed, after the retries, and writes the others", async function () {
    const fans = Array.from({ length: 10 }, (_, index) => `gu-${(0x7c000 + index).toString(16)}`);
    const stuck = fans[3]!;
    leaveUnprocessed(`staging#${stuck}`);
    const changes = [
      ...fans.map((globalUserId) => activityDataChange({ globalUserId, araiVersion: 1 })),
      activityDataChange({ globalUserId: stuck, araiVersion: 2 }),
    ];
    const { event, sequenceNumbers } = kinesisEvent(changes);

    const { result, logs } = await worker()(event);

    assert.deepEqual(failuresOf(result), [sequenceNumbers[3], sequenceNumbers[10]]);
    assert.deepEqual(countOperations(dynamo.proxy), { BatchWriteItem: 5 }, "the first call and four retries of the stuck item");
    const reasons = failureReasons(logs);
    assert.deepEqual(reasons, [
      "score not stored: still unprocessed after 5 BatchWriteItem attempts",
      "score not stored: still unprocessed after 5 BatchWriteItem attempts",
    ]);
    const error = logs.find((line) => line.message === "staging score not stored");
    assert.equal(error?.level, "ERROR");
    assert.equal(error?.globalUserId, stuck);
    assert.equal(await stored(`staging#${stuck}`), undefined);
    assert.equal((await dynamo.scan(table)).length, 9);
  });

  it("logs each staging score stored, and each not stored, with the correlation id of the fan's last activity", async function () {
    const [kept, stuck] = ["gu-5ca1e001", "gu-5ca1e002"];
    leaveUnprocessed(`staging#${stuck}`);
    const lastActivity = (correlationId: string) => ({
      action: "login",
      source: "kafka",
      at: "2026-11-24T09:14:31.000Z",
      correlationId,
    });
    const { event } = kinesisEvent([
      activityDataChange({ globalUserId: kept, araiVersion: 1, image: { lastActivity: lastActivity("act-kept") } }),
      activityDataChange({ globalUserId: stuck, araiVersion: 1, image: { lastActivity: lastActivity("act-stuck") } }),
    ]);

    const { logs } = await worker()(event);

    const storedLine = logs.find((line) => line.message === "staging score stored");
    assert.deepEqual(
      [storedLine?.level, storedLine?.globalUserId, storedLine?.correlationId, storedLine?.score, storedLine?.version],
      ["INFO", kept, "act-kept", (await stored(`staging#${kept}`))?.score, STAGING_VERSION],
    );
    assert.equal(logs.filter((line) => line.message === "staging score stored").length, 1);
    const error = logs.find((line) => line.message === "staging score not stored");
    assert.deepEqual([error?.globalUserId, error?.correlationId], [stuck, "act-stuck"]);
    assert.deepEqual(
      logs.filter((line) => line.message === "record failed").map((line) => line.correlationId),
      ["act-stuck"],
    );
  });

  it("skips every change that is not fresh activityData, its own staging writes included, calling nothing", async function () {
    const { result } = await worker()(
      kinesisEvent(
        [
          "dynamodb-change-staging-score.json",
          "dynamodb-change-fan-scored.json",
          "dynamodb-change-rescore-insert.json",
          "dynamodb-change-rescore-ttl-removal.json",
        ].map((name) => fixture<ChangeRecord>(name)),
      ).event,
    );

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(model.requests.length, 0);
    assert.equal(dynamo.proxy.requests.length, 0);
  });

  it("parks a malformed record alone, on its first delivery, and scores the rest", async function () {
    const { event, sequenceNumbers } = kinesisEvent([
      "not-base64?",
      activityDataChange({ globalUserId: "gu-8d000001", araiVersion: 1, image: { araiVersion: undefined } }),
      activityDataChange({ globalUserId: "gu-8d000002", araiVersion: 1 }),
    ]);

    const { result, logs } = await worker()(event);

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.deepEqual(failureReasons(logs), []);
    const parked = parkedBySequenceNumber(await sqs.drain(failureQueue));
    assert.deepEqual(
      sequenceNumbers.slice(0, 2).map((seq) => parked.get(seq)?.document.reason.split(":")[0]),
      ["data is not base64", "activityData image is not as expected"],
    );
    assert.equal(parked.size, 2);
    for (const { document } of parked.values()) assert.equal(document.worker, "stagingScoreUsers");
    assert.equal((await stored("staging#gu-8d000002"))?.version, STAGING_VERSION);
  });

  it("fails every record and writes nothing while the staging model is down, naming it and its status", async function () {
    model.answer = () => ({ status: 503, body: { error_code: "TEMPORARILY_UNAVAILABLE" } });
    const { event, sequenceNumbers } = kinesisEvent([
      activityDataChange({ globalUserId: "gu-9e000001", araiVersion: 1 }),
      activityDataChange({ globalUserId: "gu-9e000002", araiVersion: 1 }),
    ]);

    const { result, logs } = await worker()(event);

    assert.deepEqual(failuresOf(result), sequenceNumbers);
    assert.equal(dynamo.proxy.requests.length, 0);
    const error = linesAt(logs, "ERROR")[0];
    assert.equal(error?.dependency, "staging scoring model");
    assert.equal(error?.status, 503);
    assert.match(
      String((error?.error as { message?: string })?.message),
      /^staging scoring model POST \S+-staging\/invocations .*HTTP 503/,
    );
  });

  it("built by its factory, reads its environment and writes through the endpoints it is given", async function () {
    secrets.requests.length = 0;
    const restore = setEnvironment({
      ...LAMBDA_AWS,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      TABLE_NAME: table,
      MODEL_URL: model.url(STAGING_MODEL_PATH),
      MODEL_VERSION: STAGING_VERSION,
      MODEL_TOKEN_SECRET_ARN,
      MODEL_TIMEOUT_MS: undefined,
      MODEL_BATCH_SIZE: undefined,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      FAILURE_QUEUE_URL: failureQueue,
    });
    try {
      const handler = stagingScoreUsers.factory();
      const image = activityDataImage();
      await seed([image]);
      const { result } = await captureLogs(() => handler(fixture("kinesis-fan-table-activity-data.json")));

      assert.deepEqual(result, { batchItemFailures: [] });
      assert.equal(secrets.requests.length, 1);
      assert.equal(model.requests[0]!.url, STAGING_MODEL_PATH);
      assert.deepEqual(countOperations(dynamo.proxy), { BatchWriteItem: 1 });
      assert.match(
        String(dynamo.proxy.requests[0]!.headers.authorization),
        /Credential=test\/\d{8}\/us-east-1\/dynamodb\/aws4_request/,
      );
      assert.equal((await stored(`staging#${RECORDED_FAN}`))?.version, STAGING_VERSION);
      assert.deepEqual(await stored(RECORDED_FAN), image);
    } finally {
      restore();
    }
  });
});
