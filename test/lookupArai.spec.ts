/**
 * lookupArai against a real local DynamoDB (dynalite, calls counted at the service) and SQS
 * (local-aws-sqs, the dead-letter queues it parks messages in), the accounts ARAI API and Secrets
 * Manager mocked at the wire, with SQS events in the shapes Lambda delivers from the
 * account-activity FIFO queue and the on-demand standard queue.
 */
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { Logger } from "@aws-lambda-powertools/logger";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { Message as SqsMessage } from "@aws-sdk/client-sqs";
import { PutCommand } from "@aws-sdk/lib-dynamodb";
import * as fc from "fast-check";
import { type BatchResponse, SQS_MAX_RECEIVE_COUNT } from "../workers/shared/runtime/batch";
import { loadEnvironment } from "../workers/shared/runtime/environment";
import { createWorkerMetrics } from "../workers/shared/runtime/metrics";
import { type ActivityMessage, ACTIVITY_SOURCES } from "../workers/shared/scoring/activity";
import { createLookupArai, lookupArai } from "../workers/lookupArai";
import { lookupAraiContract } from "../workers/lookupArai/contract";
import { fansOf, isFresh, lastActivityOf } from "../workers/lookupArai/fans";
import { HISTORY_LIMIT } from "../workers/lookupArai/trim";
import {
  ARAI_PATH_TEMPLATE as PATH_TEMPLATE,
  ARAI_SECRET_ARN as SECRET_ARN,
  araiAnswerFor,
  araiClientFor,
  araiDataFor,
} from "./support/arai";
import { failureReasons, failuresOf } from "./support/batch";
import { AWS_VARIABLES, environmentPerTest, LAMBDA_AWS, setEnvironment } from "./support/environment";
import { fixture } from "./support/fixtures";
import { type Answer, countOperations, type RecordedRequest, WireServer } from "./support/http";
import { emfMetrics } from "./support/emittedMetrics";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { captureLogs, linesAt, type LogLine } from "./support/logs";
import { secretsManagerClient, startSecrets } from "./support/secrets";
import { DYNAMO_ITEM_TOO_LARGE, serviceRefuses } from "./support/streams";

const CREDENTIALS = { username: "svc-fanid-qa1", password: "s3cr3t-pw", clientId: "verified-fan-scoring" };
const ACCOUNT_PATH = /^\/arai\/v1\/accounts\/([^/]+)\/activity$/;
/** The batch's clock: the fixtures' activities happen around 18:09 on 2026-11-24. */
const NOW = Date.parse("2026-11-24T18:10:00.000Z");
const FRESHNESS_SECONDS = 300;

type SqsRecord = {
  messageId: string;
  body: string;
  attributes: Record<string, string>;
  md5OfBody: string;
  eventSourceARN: string;
};
type SqsEvent = { Records: SqsRecord[] };
const FIFO_RECORD = fixture<SqsEvent>("sqs-account-activity-fifo.json").Records[0]!;
const STANDARD_RECORD = fixture<SqsEvent>("sqs-on-demand-standard.json").Records[0]!;

const md5 = (text: string) => createHash("md5").update(text).digest("hex");
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** A message for the batch: an activity of `fan`, or a raw `body`; `group` defaults to the fan (FIFO only). */
interface Message {
  readonly fan?: string;
  readonly action?: string;
  readonly source?: ActivityMessage["source"];
  readonly at?: string;
  readonly body?: string;
  readonly group?: string;
  /** The `correlationId` attribute: `act-<messageId>` by default; null for none (an older producer's message). */
  readonly correlationId?: string | null;
  /** Its ApproximateReceiveCount: the how-manyth delivery this is. @default 1 */
  readonly delivery?: number;
}

let messageCount = 0;
const messageId = () => `6f1c2a3b-0d4e-4f5a-9b6c-${String(++messageCount).padStart(12, "0")}`;
/** Activities one second apart from 18:09:00, in the order given, unless `at` says otherwise. */
const activityAt = (index: number) => new Date(Date.parse("2026-11-24T18:09:00.000Z") + index * 1000).toISOString();

/** The message attributes a message carries, in Lambda's shape. */
function attributesOf(message: Message, id: string) {
  const correlationId = message.correlationId === undefined ? `act-${id}` : message.correlationId;
  return correlationId === null
    ? {}
    : { correlationId: { stringValue: correlationId, stringListValues: [], binaryListValues: [], dataType: "String" } };
}

/** The correlation id of the event's `index`-th message, as its attribute carries it. */
const correlationIdOf = (event: { Records: { messageAttributes: object }[] }, index: number) =>
  (event.Records[index]!.messageAttributes as { correlationId: { stringValue: string } }).correlationId.stringValue;

/** The id made for a message without a usable attribute: 32 hex digits of the sha256 of `sqs` and its messageId. */
const madeFromMessageId = (id: string) => sha256(`sqs\n${id}`).slice(0, 32);

function bodyOf(message: Message, index: number): string {
  if (message.body !== undefined) return message.body;
  return JSON.stringify({
    v: 1,
    globalUserId: message.fan,
    source: message.source ?? "kafka",
    action: message.action ?? "login",
    at: message.at ?? activityAt(index),
  });
}

/** An event from the account-activity FIFO queue, as Lambda delivers it. */
function fifoEvent(messages: readonly Message[]) {
  return {
    Records: messages.map((message, index) => {
      const body = bodyOf(message, index);
      const id = messageId();
      return {
        ...structuredClone(FIFO_RECORD),
        messageId: id,
        body,
        md5OfBody: md5(body),
        messageAttributes: attributesOf(message, id),
        attributes: {
          ...FIFO_RECORD.attributes,
          ApproximateReceiveCount: String(message.delivery ?? 1),
          SequenceNumber: String(18873177232222703872n + BigInt(index)),
          MessageGroupId: message.group ?? message.fan ?? "gu-unknown",
          MessageDeduplicationId: sha256(`shardId-000000000000:${index}`),
        },
      };
    }),
  };
}

/** An event from the on-demand standard queue (no group, sequence or deduplication attributes). */
function standardEvent(messages: readonly Message[]) {
  return {
    Records: messages.map((message, index) => {
      const body = bodyOf(message, index);
      const id = messageId();
      return {
        ...structuredClone(STANDARD_RECORD),
        messageId: id,
        body,
        md5OfBody: md5(body),
        messageAttributes: attributesOf(message, id),
        attributes: { ...STANDARD_RECORD.attributes, ApproximateReceiveCount: String(message.delivery ?? 1) },
      };
    }),
  };
}

const idsOf = (event: { Records: { messageId: string }[] }, ...indexes: number[]) =>
  indexes.map((index) => event.Records[index]!.messageId);

/** What the fake API answers for a fan: the recorded `{data, meta}` answer, about that fan. */
const araiOf = (globalUserId: string) => araiAnswerFor(globalUserId);

describe("lookupArai", function () {
  let dynamo: LocalDynamo;
  let sqs: LocalSqs;
  /** The dead-letter queues of the test, by the source queue they serve. */
  let deadLetters: { fifo: string; standard: string };
  let api: WireServer;
  let secrets: WireServer;
  let secretsClient: SecretsManagerClient;
  let table: string;
  /** How the API answers for a fan (by decoded globalUserId) on its n-th request (from 1); found by default. */
  let behaviour: Map<string, (attempt: number) => Answer | Promise<Answer>>;
  let attemptsPerFan: Map<string, number>;
  let inFlight: number;
  let maxInFlight: number;

  let restoreMetrics: () => void;

  /** SQS answers every SendMessageBatch with an internal error: no message can be parked. */
  const refuseParking = () => {
    sqs.intercept = (request) =>
      request.headers["x-amz-target"] === "AmazonSQS.SendMessageBatch"
        ? {
            answer: {
              status: 500,
              headers: { "content-type": "application/x-amz-json-1.0" },
              body: { __type: "InternalError", message: "We encountered an internal error" },
            },
          }
        : undefined;
  };

  before(async function () {
    // The invocations' counts are read from the EMF they write (captured with their logs).
    restoreMetrics = setEnvironment({ POWERTOOLS_METRICS_DISABLED: "false" });
    [dynamo, sqs] = await Promise.all([startDynamo(), startSqs()]);
    api = await WireServer.start(async (request) => {
      const match = ACCOUNT_PATH.exec(request.url);
      if (!match) return { status: 400, body: { message: `no route for ${request.url}` } };
      const fan = decodeURIComponent(match[1]!);
      const attempt = (attemptsPerFan.get(fan) ?? 0) + 1;
      attemptsPerFan.set(fan, attempt);
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        return await (behaviour.get(fan) ?? (() => ({ body: araiOf(fan) })))(attempt);
      } finally {
        inFlight -= 1;
      }
    });
    secrets = await startSecrets({ [SECRET_ARN]: CREDENTIALS });
    secretsClient = secretsManagerClient(secrets);
  });

  after(async function () {
    secretsClient?.destroy();
    restoreMetrics?.();
    await Promise.all([dynamo?.close(), sqs?.close(), api?.close(), secrets?.close()]);
  });

  beforeEach(async function () {
    table = await dynamo.createFanTable();
    deadLetters = {
      fifo: await sqs.freshQueue("acct-activity-sqs-dlq.fifo"),
      standard: await sqs.freshQueue("on-demand-scoring-sqs-dlq"),
    };
    sqs.intercept = () => undefined;
    sqs.proxy.requests.length = 0;
    dynamo.intercept = () => undefined;
    dynamo.proxy.requests.length = 0;
    api.requests.length = 0;
    secrets.requests.length = 0;
    behaviour = new Map();
    attemptsPerFan = new Map();
    inFlight = 0;
    maxInFlight = 0;
  });

  interface Options {
    readonly timeoutMs?: number;
    readonly concurrency?: number;
    readonly now?: () => number;
    /** DEAD_LETTER_QUEUE_URLS. @default both fixtures' queues → the test's dead-letter queues */
    readonly deadLetterQueueUrls?: Record<string, string>;
  }

  /** The worker built from its parts, as the factory builds it, against the local services. */
  function worker(options: Options = {}) {
    const arai = araiClientFor(api.url, secretsClient, { timeoutMs: options.timeoutMs });
    const metrics = createWorkerMetrics(lookupAraiContract, { environment: "qa1", region: "us-east-1" });
    const handler = createLookupArai({
      env: {
        TABLE_NAME: table,
        ARAI_FRESHNESS_SECONDS: FRESHNESS_SECONDS,
        ARAI_CONCURRENCY: options.concurrency ?? 10,
        DEAD_LETTER_QUEUE_URLS: options.deadLetterQueueUrls ?? {
          [FIFO_RECORD.eventSourceARN]: deadLetters.fifo,
          [STANDARD_RECORD.eventSourceARN]: deadLetters.standard,
        },
      },
      dynamo: dynamo.documents,
      sqs: sqs.client,
      fetchArai: arai.fetchArai,
      logger: new Logger({ serviceName: lookupAraiContract.name, logLevel: "DEBUG" }),
      now: options.now ?? (() => NOW),
      readOptions: { baseDelayMs: 1 },
      sendOptions: { baseDelayMs: 1 },
      metrics,
    });
    return async (event: unknown): Promise<{ response: BatchResponse; logs: LogLine[]; counts: Counts }> => {
      const { result, logs } = await captureLogs(async () => {
        const response = await handler(event);
        metrics.publish();
        return response;
      });
      return { response: result, logs: logs.filter((line) => !("_aws" in line)), counts: countsOf(logs) };
    };
  }

  /** What the invocation counted, from the EMF it wrote: records processed, skipped, and parked and failed by reason. */
  interface Counts {
    readonly processed: number;
    readonly skipped: number;
    readonly parked: Record<string, number>;
    readonly failed: Record<string, number>;
  }
  function countsOf(lines: readonly LogLine[]): Counts {
    const metrics = emfMetrics(lines as unknown as Record<string, unknown>[]);
    const sum = (name: string) => metrics.filter((metric) => metric.name === name).reduce((total, m) => total + m.values[0]!, 0);
    const byReason = (name: string) =>
      Object.fromEntries(metrics.filter((metric) => metric.name === name).map((m) => [m.dimensions.reason!, m.values[0]!]));
    return {
      processed: sum("RecordsProcessed"),
      skipped: sum("RecordsSkipped"),
      parked: byReason("RecordsParked"),
      failed: byReason("RecordsFailed"),
    };
  }

  /** Every message on a dead-letter queue, taken off it. */
  const parkedIn = (queue: keyof typeof deadLetters): Promise<SqsMessage[]> => sqs.drain(deadLetters[queue]);
  /** A parked message's String attributes, by name. */
  const attributesOfParked = (message: SqsMessage) =>
    Object.fromEntries(Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue]));

  const fanRecord = (globalUserId: string) => dynamo.item(table, globalUserId);
  const putFanRecord = (item: Record<string, unknown>) => dynamo.documents.send(new PutCommand({ TableName: table, Item: item }));
  /** Calls DynamoDB received after the test's setup. */
  const dynamoCalls = () => countOperations(dynamo.proxy);
  const apiRequestsFor = (fan: string) => attemptsPerFan.get(fan) ?? 0;

  /** A scored fan whose ARAI was stored `ageSeconds` before NOW. */
  const scoredFan = (globalUserId: string, ageSeconds: number) => ({
    userId: globalUserId,
    type: "score",
    globalUserId,
    arai: { globalUserId, counts: { loginActivity: 1, failedLoginActivity: 0 } },
    araiUpdatedAt: new Date(NOW - ageSeconds * 1000).toISOString(),
    araiVersion: 4,
    lastActivity: { action: "login", source: "kafka", at: "2026-11-20T08:00:00.000Z" },
    score: 0.87,
    scoreVersion: "fanrisk-2026-10",
    scoredAraiVersion: 4,
    dateCreated: "2026-10-02T11:00:00.000Z",
    dateUpdated: "2026-11-20T08:00:05.000Z",
  });

  describe("a burst of activity", function () {
    it("costs one BatchGetItem, and one ARAI fetch and one UpdateItem per fan: 30 messages of 3 fans", async function () {
      const fans = ["gu-7f3c2a91", "gu-0b5e9d44", "gu-c41f07e8"];
      const event = standardEvent(Array.from({ length: 30 }, (_, index) => ({ fan: fans[index % 3], action: "login" })));
      const { response, logs } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.deepEqual(dynamoCalls(), { BatchGetItem: 1, UpdateItem: 3 });
      assert.equal(api.requests.length, 3);
      assert.deepEqual(
        fans.map((fan) => apiRequestsFor(fan)),
        [1, 1, 1],
      );
      assert.equal(secrets.requests.length, 1, "credentials read once");
      for (const fan of fans) {
        const item = await fanRecord(fan);
        assert.equal(item?.type, "activityData");
        assert.equal(item?.globalUserId, fan);
        assert.deepEqual(item?.arai, araiDataFor(fan), "the answer's data, not the answer");
        assert.equal(item?.araiVersion, 1);
        assert.equal(item?.araiUpdatedAt, new Date(NOW).toISOString());
        assert.equal(item?.dateUpdated, new Date(NOW).toISOString());
        assert.equal(item?.score, undefined);
        assert.equal(item?.dateCreated, undefined);
      }
      const summary = logs.find((line) => line.message === "batch done");
      assert.ok(summary, "a summary line per batch");
      const { messages, fans: fanCount, fresh, fetched, written, unknownFans, failedMessages } = summary;
      assert.deepEqual(
        { messages, fanCount, fresh, fetched, written, unknownFans, failedMessages },
        { messages: 30, fanCount: 3, fresh: 0, fetched: 3, written: 3, unknownFans: 0, failedMessages: 0 },
      );
    });

    it("sets lastActivity to the fan's latest message by time, wherever it sits in the batch", async function () {
      const fan = "gu-7f3c2a91";
      const event = standardEvent([
        { fan, action: "login", at: "2026-11-24T18:09:10.000Z" },
        { fan, action: "update_phone", source: "vf", at: "2026-11-24T18:09:40.000+00:00" },
        { fan, action: "verify_otp", at: "2026-11-24T19:09:20.000+01:00" },
      ]);
      await worker()(event);
      assert.deepEqual((await fanRecord(fan))?.lastActivity, {
        action: "update_phone",
        source: "vf",
        at: "2026-11-24T18:09:40.000+00:00",
        correlationId: correlationIdOf(event, 1),
      });
    });

    it("fetches at most ARAI_CONCURRENCY fans at a time", async function () {
      const fans = Array.from({ length: 7 }, (_, index) => `gu-concurrent-${index}`);
      for (const fan of fans) {
        behaviour.set(fan, async () => {
          await new Promise((resolve) => setTimeout(resolve, 40));
          return { body: araiOf(fan) };
        });
      }
      const { response } = await worker({ concurrency: 2 })(standardEvent(fans.map((fan) => ({ fan }))));
      assert.deepEqual(response.batchItemFailures, []);
      assert.equal(api.requests.length, 7);
      assert.equal(maxInFlight, 2);
    });

    it("stores the trimmed snapshot: the 100 newest entries by `at` of each history list, the counts as sent", async function () {
      const fan = "gu-frequent-flyer";
      const { history, counts } = araiDataFor(fan);
      // Hours after 2026-11-01, listed out of time order (a permutation of the hours).
      const entries = (template: unknown, count: number, step: number) =>
        Array.from({ length: count }, (_, index) => ({
          ...(template as object),
          at: new Date(Date.parse("2026-11-01T00:00:00Z") + ((index * step) % count) * 3_600_000).toISOString(),
        }));
      const loginActivity = entries(history!.loginActivity![0], 140, 3);
      const failedLoginActivity = entries(history!.failedLoginActivity![0], 120, 7);
      behaviour.set(fan, () => ({ body: araiAnswerFor(fan, { history: { loginActivity, failedLoginActivity } }) }));
      await worker()(standardEvent([{ fan }]));
      const stored = (await fanRecord(fan))?.arai as Record<string, { loginActivity: unknown[]; failedLoginActivity: unknown[] }>;
      // The rule: the entries of the latest HISTORY_LIMIT hours, in the order the service listed them.
      const newest = (list: { at: string }[], hours: number) =>
        list.filter(
          (entry) => entry.at >= new Date(Date.parse("2026-11-01T00:00:00Z") + (hours - HISTORY_LIMIT) * 3_600_000).toISOString(),
        );
      assert.equal(stored.history!.loginActivity.length, HISTORY_LIMIT);
      assert.deepEqual(stored.history!.loginActivity, newest(loginActivity, 140));
      assert.deepEqual(stored.history!.failedLoginActivity, newest(failedLoginActivity, 120));
      assert.deepEqual(stored.counts, counts);
    });
  });

  describe("correlation ids", function () {
    it("takes each message's id from its correlationId attribute, logs it on every line about it, and stores the latest's", async function () {
      const [a, b] = ["gu-7f3c2a91", "gu-0b5e9d44"];
      const event = fifoEvent([
        { fan: a, action: "login", correlationId: "0f3e9a2c-login-a" },
        { fan: b, action: "login", correlationId: "7c1d-login-b" },
        { fan: a, action: "update_email", correlationId: "0f3e9a2c-email-a" },
      ]);
      const { response, logs } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.deepEqual(
        logs
          .filter((line) => line.message === "activity received")
          .map((line) => [line.level, line.record, line.correlationId, line.queue]),
        [
          // The queue is the last field of the record's eventSourceARN.
          ["INFO", idsOf(event, 0)[0], "0f3e9a2c-login-a", "fanid-qa1-account-activity.fifo"],
          ["INFO", idsOf(event, 1)[0], "7c1d-login-b", "fanid-qa1-account-activity.fifo"],
          ["INFO", idsOf(event, 2)[0], "0f3e9a2c-email-a", "fanid-qa1-account-activity.fifo"],
        ],
      );
      // One line per fan written (fans are written side by side, in any order), with the id stored and all the fan's ids.
      const stored = logs.filter((line) => line.message === "ARAI stored");
      assert.deepEqual(
        new Map(stored.map((line) => [line.globalUserId, [line.correlationId, line.correlationIds]])),
        new Map([
          [a, ["0f3e9a2c-email-a", ["0f3e9a2c-login-a", "0f3e9a2c-email-a"]]],
          [b, ["7c1d-login-b", ["7c1d-login-b"]]],
        ]),
      );
      // Every line that names a fan carries the ids of that fan's activities, and no other.
      const idsOfFan = { [a]: ["0f3e9a2c-login-a", "0f3e9a2c-email-a"], [b]: ["7c1d-login-b"] };
      for (const line of logs.filter((entry) => entry.globalUserId !== undefined)) {
        const carried = [line.correlationId, ...((line.correlationIds as string[] | undefined) ?? [])].filter(Boolean);
        assert.ok(carried.length > 0, `${line.message} carries a correlation id`);
        for (const id of carried) assert.ok(idsOfFan[String(line.globalUserId)]!.includes(String(id)), `${line.message}: ${id}`);
      }
      assert.equal(((await fanRecord(a))?.lastActivity as { correlationId?: string }).correlationId, "0f3e9a2c-email-a");
      assert.equal(((await fanRecord(b))?.lastActivity as { correlationId?: string }).correlationId, "7c1d-login-b");
    });

    it("processes a message without the attribute (an older producer's) under an id made from its messageId, the same on redelivery", async function () {
      const fan = "gu-7f3c2a91";
      const event = standardEvent([{ fan, correlationId: null }]);
      const id = idsOf(event, 0)[0]!;
      const first = await worker()(event);
      // Redelivered after the freshness window: the same message, the same id.
      const again = await worker({ now: () => NOW + FRESHNESS_SECONDS * 1000 })(event);

      for (const { response, logs } of [first, again]) {
        assert.deepEqual(response, { batchItemFailures: [] });
        const received = logs.find((line) => line.message === "activity received");
        assert.deepEqual([received?.correlationId, received?.correlationOrigin], [madeFromMessageId(id), "made"]);
        assert.deepEqual(linesAt(logs, "WARN"), []);
      }
      assert.equal((await fanRecord(fan))?.araiVersion, 2);
      assert.equal(((await fanRecord(fan))?.lastActivity as { correlationId?: string }).correlationId, madeFromMessageId(id));
    });

    it("replaces an attribute that is not an id by the one made from the messageId, and logs why, never the value", async function () {
      const junk = ["has a space", "x".repeat(129), '"}, "level": "ERROR', "\u001b[31mred\u001b[0m", "-leading-dash"];
      const event = standardEvent(junk.map((correlationId, index) => ({ fan: `gu-junk-${index}`, correlationId })));
      const { response, logs } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] }, "a bad id never fails the message");
      const replaced = logs.filter((line) => line.message === "correlation id replaced");
      assert.deepEqual(
        replaced.map((line) => [line.level, line.record, line.correlationId]),
        idsOf(event, ...junk.keys()).map((id) => ["WARN", id, madeFromMessageId(id)]),
      );
      assert.match(String(replaced[1]!.problem), /^correlationId: .*128/);
      for (const line of replaced) assert.match(String(line.problem), /^correlationId: /);
      const written = JSON.stringify(logs);
      for (const value of junk) assert.ok(!written.includes(JSON.stringify(value).slice(1, -1)), `the log never holds ${value}`);
      for (const [index, id] of idsOf(event, ...junk.keys()).entries()) {
        const stored = (await fanRecord(`gu-junk-${index}`))?.lastActivity as { correlationId?: string };
        assert.equal(stored.correlationId, madeFromMessageId(id));
      }
    });

    it("logs a fan whose ARAI is fresh at INFO, with why and its messages' ids", async function () {
      const fan = "gu-7f3c2a91";
      await putFanRecord(scoredFan(fan, 60));
      const event = fifoEvent([{ fan }, { fan, action: "update_email" }]);
      const { logs } = await worker()(event);
      const fresh = logs.filter((line) => line.message.startsWith("ARAI fresh"));
      assert.deepEqual(
        fresh.map((line) => [line.level, line.globalUserId, line.correlationIds, line.araiUpdatedAt]),
        [["INFO", fan, [correlationIdOf(event, 0), correlationIdOf(event, 1)], scoredFan(fan, 60).araiUpdatedAt]],
      );
    });
  });

  describe("freshness", function () {
    it("neither fetches nor writes a fan whose ARAI is younger than the window; its messages succeed", async function () {
      const fan = "gu-7f3c2a91";
      await putFanRecord(scoredFan(fan, 60));
      dynamo.proxy.requests.length = 0;
      const event = fifoEvent([{ fan }, { fan, action: "update_email" }]);
      const { response } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.equal(api.requests.length, 0);
      assert.deepEqual(dynamoCalls(), { BatchGetItem: 1 });
      assert.deepEqual(await fanRecord(fan), scoredFan(fan, 60));
    });

    it("fetches a fan whose ARAI is as old as the window or older, and a fan without a record", async function () {
      await putFanRecord(scoredFan("gu-at-window", FRESHNESS_SECONDS));
      await putFanRecord(scoredFan("gu-stale", 3600));
      await putFanRecord(scoredFan("gu-fresh", FRESHNESS_SECONDS - 1));
      dynamo.proxy.requests.length = 0;
      const { response } = await worker()(
        standardEvent([{ fan: "gu-at-window" }, { fan: "gu-stale" }, { fan: "gu-fresh" }, { fan: "gu-new" }]),
      );
      assert.deepEqual(response, { batchItemFailures: [] });
      assert.deepEqual([...attemptsPerFan.keys()].sort(), ["gu-at-window", "gu-new", "gu-stale"]);
      assert.deepEqual(dynamoCalls(), { BatchGetItem: 1, UpdateItem: 3 });
      assert.equal((await fanRecord("gu-stale"))?.araiVersion, 5);
      assert.equal((await fanRecord("gu-new"))?.araiVersion, 1);
      assert.equal((await fanRecord("gu-fresh"))?.araiVersion, 4);
    });

    it("leaves a fresh ARAI stored by another invocation after the batch read the record: fetched, not written again", async function () {
      const fan = "gu-5e0d8c13";
      await putFanRecord(scoredFan(fan, 3600));
      // The fan's activity on the other queue, in another invocation, stores a fresh ARAI while this one fetches.
      const meanwhile = { ...scoredFan(fan, 0), type: "activityData", araiVersion: 5, arai: { globalUserId: fan, other: true } };
      behaviour.set(fan, async () => {
        await putFanRecord(meanwhile);
        return { body: araiOf(fan) };
      });
      dynamo.proxy.requests.length = 0;
      const { response, logs } = await worker()(fifoEvent([{ fan }]));

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.equal(apiRequestsFor(fan), 1);
      assert.deepEqual(dynamoCalls(), { BatchGetItem: 1, PutItem: 1, UpdateItem: 1 });
      assert.deepEqual(await fanRecord(fan), meanwhile, "the other invocation's write stands, araiVersion not incremented");
      assert.ok(logs.some((line) => line.message === "ARAI stored meanwhile by another invocation; fetched, not written"));
      const summary = logs.find((line) => line.message === "batch done")!;
      assert.deepEqual([summary.written, summary.storedMeanwhile, summary.failedMessages], [0, 1, 0]);
    });

    it("increments araiVersion with every write, and leaves score fields written by someone else alone", async function () {
      const fan = "gu-7f3c2a91";
      let clock = NOW;
      const handler = worker({ now: () => clock });
      await handler(fifoEvent([{ fan }]));
      assert.equal((await fanRecord(fan))?.araiVersion, 1);

      // scoreUsers scores the fan meanwhile.
      const scored = { ...(await fanRecord(fan))!, type: "score", score: 0.42, scoreVersion: "fanrisk-2026-10" };
      await putFanRecord({ ...scored, scoredAraiVersion: 1, dateCreated: "2026-11-24T18:10:01.000Z" });

      // Within the window: nothing happens.
      clock = NOW + 120_000;
      await handler(fifoEvent([{ fan, action: "verify_otp", at: "2026-11-24T18:11:30.000Z" }]));
      assert.equal((await fanRecord(fan))?.araiVersion, 1);
      assert.equal(apiRequestsFor(fan), 1);

      clock = NOW + FRESHNESS_SECONDS * 1000 + 1;
      const later = fifoEvent([{ fan, action: "update_phone", at: "2026-11-24T18:15:00.500Z" }]);
      await handler(later);
      const item = await fanRecord(fan);
      assert.equal(apiRequestsFor(fan), 2);
      assert.equal(item?.araiVersion, 2);
      assert.equal(item?.type, "activityData");
      assert.equal(item?.araiUpdatedAt, new Date(clock).toISOString());
      assert.deepEqual(item?.lastActivity, {
        action: "update_phone",
        source: "kafka",
        at: "2026-11-24T18:15:00.500Z",
        correlationId: correlationIdOf(later, 0),
      });
      assert.equal(item?.score, 0.42);
      assert.equal(item?.scoreVersion, "fanrisk-2026-10");
      assert.equal(item?.scoredAraiVersion, 1);
      assert.equal(item?.dateCreated, "2026-11-24T18:10:01.000Z");
    });
  });

  describe("the accounts API", function () {
    it("is called with basic credentials, the client id, and the fan's id URL-encoded", async function () {
      const fan = "auth0|5f1c/ab?x=1%";
      await worker()(standardEvent([{ fan }]));
      assert.equal(api.requests.length, 1);
      const request = api.requests[0] as RecordedRequest;
      assert.equal(request.url, "/arai/v1/accounts/auth0%7C5f1c%2Fab%3Fx%3D1%25/activity");
      assert.equal(request.headers.authorization, `Basic ${Buffer.from("svc-fanid-qa1:s3cr3t-pw").toString("base64")}`);
      assert.equal(request.headers["x-client-id"], "verified-fan-scoring");
      assert.equal((await fanRecord(fan))?.globalUserId, fan);
    });

    it("answering 503 twice then 200: the fan is written after three requests", async function () {
      const fan = "gu-7f3c2a91";
      behaviour.set(fan, (attempt) =>
        attempt <= 2 ? { status: 503, body: { message: "Service Unavailable" } } : { body: araiOf(fan) },
      );
      const { response } = await worker()(fifoEvent([{ fan }, { fan }]));
      assert.deepEqual(response, { batchItemFailures: [] });
      assert.equal(apiRequestsFor(fan), 3);
      assert.equal((await fanRecord(fan))?.araiVersion, 1);
    });

    it("answering 503 always: that fan's messages fail, logged with service, operation and status; other fans are written", async function () {
      const [down, fine] = ["gu-7f3c2a91", "gu-0b5e9d44"];
      behaviour.set(down, () => ({ status: 503, body: { message: "Service Unavailable" } }));
      const event = standardEvent([{ fan: down }, { fan: fine }, { fan: down }]);
      const { response, logs } = await worker()(event);

      assert.deepEqual(failuresOf(response), idsOf(event, 0, 2));
      assert.equal(apiRequestsFor(down), 3);
      assert.deepEqual(dynamoCalls(), { BatchGetItem: 1, UpdateItem: 1 });
      assert.equal(await fanRecord(down), undefined);
      assert.equal((await fanRecord(fine))?.type, "activityData");

      const error = logs.find((line) => line.message === "ARAI lookup failed");
      assert.equal(error?.level, "ERROR");
      assert.equal(error?.globalUserId, down);
      assert.equal(error?.messages, 2);
      assert.deepEqual(error?.error, {
        service: "accounts ARAI API",
        operation: "GET account activity",
        status: 503,
        message: 'accounts ARAI API GET account activity failed after 3 attempts: HTTP 503: {"message":"Service Unavailable"}',
      });
      const failed = logs.filter((line) => line.message === "record failed");
      assert.deepEqual(
        failed.map((line) => line.record),
        idsOf(event, 0, 2),
      );
      for (const line of failed)
        assert.match(String(line.reason), /^ARAI lookup failed: accounts ARAI API GET account activity .*HTTP 503/);
    });

    it("answering 404: the fan is unknown, its messages succeed with a warning, nothing is written", async function () {
      const fan = "gu-deleted-account";
      behaviour.set(fan, () => ({ status: 404, body: { code: "ACCOUNT_NOT_FOUND", message: `no account for ${fan}` } }));
      const { response, logs } = await worker()(fifoEvent([{ fan }, { fan }]));

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.equal(apiRequestsFor(fan), 1, "not retried");
      assert.deepEqual(dynamoCalls(), { BatchGetItem: 1 });
      assert.deepEqual(await dynamo.scan(table), []);
      const warning = linesAt(logs, "WARN")[0];
      assert.equal(warning?.message, "fan unknown to the accounts service; messages let go");
      assert.equal(warning?.globalUserId, fan);
      assert.equal(warning?.messages, 2);
    });

    it("hanging: the fan's messages fail once its attempts time out (200 ms each); other fans are written", async function () {
      const [hung, fine] = ["gu-7f3c2a91", "gu-0b5e9d44"];
      behaviour.set(hung, () => ({ delayMs: 5000, body: araiOf(hung) }));
      const event = standardEvent([{ fan: hung }, { fan: fine }]);
      const { response, logs } = await worker({ timeoutMs: 200 })(event);

      assert.deepEqual(failuresOf(response), idsOf(event, 0));
      assert.equal(apiRequestsFor(hung), 3);
      assert.equal(await fanRecord(hung), undefined);
      assert.equal((await fanRecord(fine))?.araiVersion, 1);
      const failed = logs.find((line) => line.message === "record failed");
      assert.match(String(failed?.reason), /no answer within 200 ms/);
    });

    it("answering 200 with a body that is not ARAI: the fan's messages fail, saying so", async function () {
      const fan = "gu-7f3c2a91";
      const other = "gu-0b5e9d44";
      // The account activity without its `data` envelope; and a history list that is not a list.
      behaviour.set(fan, () => ({ body: araiDataFor(fan) }));
      behaviour.set(other, () => ({ body: araiAnswerFor(other, { history: { loginActivity: "unavailable" } }) }));
      const event = standardEvent([{ fan }, { fan: other }]);
      const { response, logs } = await worker()(event);
      assert.deepEqual(failuresOf(response), idsOf(event, 0, 1));
      assert.deepEqual([await fanRecord(fan), await fanRecord(other)], [undefined, undefined], "nothing stored");
      const reasons = new Map(
        logs.filter((line) => line.message === "record failed").map((line) => [line.record, String(line.reason)]),
      );
      assert.match(reasons.get(idsOf(event, 0)[0]!)!, /HTTP 200: ARAI answer is not as expected: data: /);
      assert.match(reasons.get(idsOf(event, 1)[0]!)!, /HTTP 200: ARAI answer is not as expected: data\.history\.loginActivity: /);
    });
  });

  describe("messages that can never succeed", function () {
    it("are parked at once in their queue's dead-letter queue, with body, attributes and reason; the others go on", async function () {
      const fan = "gu-7f3c2a91";
      const valid = { v: 1, globalUserId: fan, source: "kafka", action: "login", at: "2026-11-24T18:09:01.000Z" };
      const event = standardEvent([
        { fan },
        { body: "not json {" },
        { body: JSON.stringify({ ...valid, source: "carrier-pigeon" }) },
        { body: JSON.stringify({ ...valid, at: "yesterday" }) },
        { body: JSON.stringify({ ...valid, globalUserId: "has space" }) },
        { body: JSON.stringify({ ...valid, action: undefined }) },
        { body: JSON.stringify([valid]) },
        { fan: "gu-0b5e9d44" },
      ]);
      const { response, logs, counts } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] }, "a parked message is done: not retried");
      assert.equal((await fanRecord(fan))?.araiVersion, 1);
      assert.equal((await fanRecord("gu-0b5e9d44"))?.araiVersion, 1);
      assert.deepEqual(counts, { processed: 2, skipped: 0, parked: { invalid: 6 }, failed: {} });

      const parked = await parkedIn("standard");
      const poison = [1, 2, 3, 4, 5, 6];
      assert.deepEqual(
        parked.map((message) => message.Body).sort(),
        poison.map((index) => event.Records[index]!.body).sort(),
        "each body as it came",
      );
      assert.deepEqual(await parkedIn("fifo"), [], "nothing in the other queue's");
      const reasons = Object.fromEntries(
        parked.map((message) => {
          const index = event.Records.findIndex((record) => record.body === message.Body);
          const attributes = attributesOfParked(message);
          assert.equal(attributes.correlationId, correlationIdOf(event, index), "its correlation id kept");
          assert.equal(attributes.parkedBy, "lookupArai");
          return [index, String(attributes.parkedReason)];
        }),
      );
      assert.match(reasons[1]!, /^message body is not JSON/);
      assert.match(reasons[2]!, /^activity message is not as expected: source: /);
      assert.match(reasons[3]!, /^activity message is not as expected: at: /);
      assert.match(reasons[4]!, /^activity message is not as expected: globalUserId: /);
      assert.match(reasons[5]!, /^activity message is not as expected: action: /);
      assert.match(reasons[6]!, /^activity message is not as expected: \(root\): /);

      // One WARN line per message: its id, reason and correlation id, never its body.
      const lines = logs.filter((line) => line.message === "record parked");
      assert.deepEqual(
        lines.map((line) => [line.level, line.record, line.reason, line.correlationId]),
        poison.map((index) => ["WARN", idsOf(event, index)[0], reasons[index], correlationIdOf(event, index)]),
      );
      for (const line of lines) assert.equal(line.body, undefined, "the body is not logged");
      assert.ok(!JSON.stringify(lines).includes("carrier-pigeon"), "nor any of it");
      assert.deepEqual(failureReasons(logs), []);
    });

    it("on the FIFO queue, keep their message group, with their messageId as the deduplication id", async function () {
      const event = fifoEvent([{ body: "{", group: "gu-7f3c2a91" }]);
      const { response } = await worker()(event);
      assert.deepEqual(response, { batchItemFailures: [] });
      const [parked, ...more] = await parkedIn("fifo");
      assert.deepEqual(more, []);
      assert.equal(parked!.Body, "{");
      assert.equal(parked!.Attributes?.MessageGroupId, "gu-7f3c2a91");
      assert.equal(parked!.Attributes?.MessageDeduplicationId, idsOf(event, 0)[0]);
    });

    it("pass every message attribute on, Binary ones included, and replace the parking attributes of an earlier parking", async function () {
      const event = standardEvent([{ body: "not json" }]);
      const record = event.Records[0]! as { messageAttributes: Record<string, unknown> };
      record.messageAttributes = {
        ...record.messageAttributes,
        checksum: {
          binaryValue: Buffer.from([1, 2, 3]).toString("base64"),
          stringListValues: [],
          binaryListValues: [],
          dataType: "Binary",
        },
        attempt: { stringValue: "2", stringListValues: [], binaryListValues: [], dataType: "Number" },
        parkedReason: { stringValue: "an earlier reason", stringListValues: [], binaryListValues: [], dataType: "String" },
      };
      await worker()(event);
      const [parked] = await parkedIn("standard");
      const attributes = parked!.MessageAttributes!;
      assert.deepEqual(Object.keys(attributes).sort(), ["attempt", "checksum", "correlationId", "parkedBy", "parkedReason"]);
      assert.deepEqual(Buffer.from(attributes.checksum!.BinaryValue!), Buffer.from([1, 2, 3]));
      assert.deepEqual([attributes.attempt!.DataType, attributes.attempt!.StringValue], ["Number", "2"]);
      assert.match(String(attributes.parkedReason!.StringValue), /^message body is not JSON/);
    });

    it("that cannot be parked fail instead, saying why, and hold up the rest of their FIFO group", async function () {
      const [a, b] = ["gu-7f3c2a91", "gu-0b5e9d44"];
      refuseParking();
      const event = fifoEvent([
        { fan: a, action: "login" },
        { body: "{", group: a },
        { fan: a, action: "update_email" },
        { fan: b, action: "login" },
      ]);
      const { response, logs, counts } = await worker()(event);

      assert.deepEqual(failuresOf(response), idsOf(event, 1, 2));
      const reasons = failureReasons(logs);
      assert.match(
        reasons[0]!,
        /^not parked \(.*acct-activity-sqs-dlq-\d+\.fifo: SendMessageBatch .* failed: .*\); it was to be parked because message body is not JSON/,
      );
      assert.equal(reasons[1], `follows failed message ${idsOf(event, 1)[0]} in message group ${a}`);
      // The message behind it was not looked at: a's ARAI is the first message's.
      assert.equal((await fanRecord(a))?.araiVersion, 1);
      assert.deepEqual(((await fanRecord(a))?.lastActivity as { action: string }).action, "login");
      assert.equal((await fanRecord(b))?.araiVersion, 1, "other groups go on");
      assert.deepEqual(counts.parked, {});
      assert.equal(logs.filter((line) => line.message === "record parked").length, 0);
    });

    it("whose queue DEAD_LETTER_QUEUE_URLS does not name fail instead, naming the queue", async function () {
      const event = standardEvent([{ body: "not json" }, { fan: "gu-7f3c2a91" }]);
      const { response, logs } = await worker({ deadLetterQueueUrls: { [FIFO_RECORD.eventSourceARN]: deadLetters.fifo } })(event);
      assert.deepEqual(failuresOf(response), idsOf(event, 0));
      assert.equal(
        failureReasons(logs)[0],
        `not parked (DEAD_LETTER_QUEUE_URLS names no dead-letter queue for ${STANDARD_RECORD.eventSourceARN}); it was to be parked because message body is not JSON (Unexpected token 'o', "not json" is not valid JSON)`,
      );
      assert.equal((await fanRecord("gu-7f3c2a91"))?.araiVersion, 1);
    });

    it("rejects an event that is not an SQS event, naming the worker", async function () {
      await assert.rejects(worker()({ Records: [{ kinesis: { data: "e30=" } }] }), /^Error: lookupArai: not a SQS event: /);
    });
  });

  describe(`a message failing on its last delivery (the ${SQS_MAX_RECEIVE_COUNT}rd)`, function () {
    const down = "gu-7f3c2a91";
    beforeEach(function () {
      behaviour.set(down, () => ({ status: 503, body: { message: "Service Unavailable" } }));
    });

    it("is parked by the worker, saying after how many deliveries and why; earlier deliveries fail as before", async function () {
      const event = standardEvent([
        { fan: down, delivery: 1 },
        { fan: down, delivery: 2 },
        { fan: down, delivery: SQS_MAX_RECEIVE_COUNT },
        { fan: "gu-0b5e9d44", delivery: SQS_MAX_RECEIVE_COUNT },
      ]);
      const { response, logs, counts } = await worker()(event);

      assert.deepEqual(failuresOf(response), idsOf(event, 0, 1));
      assert.deepEqual(counts, { processed: 1, skipped: 0, parked: { dependency: 1 }, failed: { dependency: 2 } });
      const [parked, ...more] = await parkedIn("standard");
      assert.deepEqual(more, []);
      assert.equal(parked!.Body, event.Records[2]!.body);
      const reason = String(attributesOfParked(parked!).parkedReason);
      assert.match(reason, /^gave up after 3 deliveries: ARAI lookup failed: accounts ARAI API GET account activity .*HTTP 503/);
      const line = logs.find((entry) => entry.message === "record parked");
      assert.deepEqual(
        [line?.record, line?.reason, line?.correlationId],
        [idsOf(event, 2)[0], reason, correlationIdOf(event, 2)],
      );
    });

    it("on the FIFO queue: the messages behind it in its group are processed, not failed", async function () {
      const [behind, elsewhere] = ["gu-0b5e9d44", "gu-c41f07e8"];
      const delivery = SQS_MAX_RECEIVE_COUNT;
      const event = fifoEvent([
        { fan: down, group: "g1", delivery },
        { fan: behind, group: "g1", delivery },
        { fan: elsewhere, group: "g2", delivery },
      ]);
      const { response, counts } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.deepEqual(counts, { processed: 2, skipped: 0, parked: { dependency: 1 }, failed: {} });
      assert.equal((await fanRecord(behind))?.araiVersion, 1);
      assert.equal((await fanRecord(elsewhere))?.araiVersion, 1);
      const [parked] = await parkedIn("fifo");
      assert.deepEqual(
        [parked?.Body, parked?.Attributes?.MessageGroupId, parked?.Attributes?.MessageDeduplicationId],
        [event.Records[0]!.body, "g1", idsOf(event, 0)[0]],
      );
    });

    it("that cannot be parked fails, and its group is held up behind it", async function () {
      refuseParking();
      const delivery = SQS_MAX_RECEIVE_COUNT;
      const event = fifoEvent([
        { fan: down, group: "g1", delivery },
        { fan: "gu-0b5e9d44", group: "g1", delivery },
      ]);
      const { response, logs } = await worker()(event);
      assert.deepEqual(failuresOf(response), idsOf(event, 0, 1));
      const reasons = failureReasons(logs);
      assert.match(reasons[0]!, /^not parked \(.*\); it was to be parked because gave up after 3 deliveries: ARAI lookup failed/);
      assert.equal(reasons[1], `follows failed message ${idsOf(event, 0)[0]} in message group g1`);
    });
  });

  describe("the message format (docs/data-model.md#activity-messages)", function () {
    const fan = "gu-7f3c2a91";
    const at = "2026-11-24T18:09:01.000Z";
    const current = { v: 1, globalUserId: fan, source: "kafka", action: "login", at };

    it("ignores fields it does not know: a newer producer's message is looked up as the same message without them", async function () {
      const event = standardEvent([
        { body: JSON.stringify({ ...current, channel: "app", device: { os: "iOS", model: "iPhone16,2" } }) },
      ]);
      const { response } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.equal(apiRequestsFor(fan), 1);
      const item = await fanRecord(fan);
      assert.equal(item?.araiVersion, 1);
      assert.deepEqual(item?.lastActivity, {
        action: "login",
        source: "kafka",
        at,
        correlationId: correlationIdOf(event, 0),
      });
    });

    it("takes a message without v (an older producer's) as version 1, like one with v 1", async function () {
      const older = "gu-0b5e9d44";
      const { v: _v, ...unversioned } = { ...current, globalUserId: older };
      const event = standardEvent([{ body: JSON.stringify(current) }, { body: JSON.stringify(unversioned) }]);
      const { response } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] });
      for (const globalUserId of [fan, older]) {
        assert.equal((await fanRecord(globalUserId))?.araiVersion, 1, globalUserId);
        assert.equal(apiRequestsFor(globalUserId), 1, globalUserId);
      }
    });

    it("refuses a message of a newer version for that alone, and a v that is not a positive integer naming the field", async function () {
      const newer = `activity message is not as expected: v: message version 2 is newer than this reader knows (1)`;
      const notAVersion = "activity message is not as expected: v: expected the message version, a positive integer";
      const cases = [
        { fan: "gu-0000000a", body: { ...current, v: 2 }, reason: newer },
        // A newer version may change any other field: the version is what is reported.
        { fan: "gu-0000000b", body: { v: 2, globalUserId: "gu-0000000b", activity: { kind: "login" } }, reason: newer },
        { fan: "gu-0000000c", body: { ...current, v: 0 }, reason: notAVersion },
        { fan: "gu-0000000d", body: { ...current, v: "1" }, reason: notAVersion },
        { fan: "gu-0000000e", body: { ...current, v: 1.5 }, reason: notAVersion },
        { fan: "gu-0000000f", body: { ...current, v: null }, reason: notAVersion },
      ];
      const event = standardEvent(
        cases.map((refused) => ({ body: JSON.stringify({ ...refused.body, globalUserId: refused.fan }) })),
      );
      const { response, logs } = await worker()(event);

      // Parked at once, to be redriven once a reader that knows the version is deployed.
      const ids = idsOf(event, ...cases.map((_refused, index) => index));
      assert.deepEqual(response, { batchItemFailures: [] });
      assert.equal((await parkedIn("standard")).length, cases.length);
      const reasons = new Map(logs.filter((line) => line.message === "record parked").map((line) => [line.record, line.reason]));
      cases.forEach((refused, index) => assert.equal(reasons.get(ids[index]), refused.reason, JSON.stringify(refused.body)));
      assert.equal(api.requests.length, 0, "nothing looked up for a refused message");
      assert.deepEqual(await dynamo.scan(table), []);
    });
  });

  describe("FIFO message groups", function () {
    it("a malformed message in g1 is parked, and the later messages of g1 go on", async function () {
      const [a, b] = ["gu-7f3c2a91", "gu-0b5e9d44"];
      const event = fifoEvent([
        { fan: a, action: "login" },
        { fan: b, action: "login" },
        { body: "{", group: a },
        { fan: a, action: "update_email" },
        { fan: b, action: "update_phone" },
        { fan: a, action: "verify_otp" },
      ]);
      const { response, logs } = await worker()(event);

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.deepEqual(failureReasons(logs), []);
      assert.deepEqual(
        (await parkedIn("fifo")).map((message) => [message.Body, message.Attributes?.MessageGroupId]),
        [["{", a]],
      );
      // Every message of the group after it was handled: the fan's latest activity is stored.
      assert.deepEqual((await fanRecord(a))?.lastActivity, {
        action: "verify_otp",
        source: "kafka",
        at: activityAt(5),
        correlationId: correlationIdOf(event, 5),
      });
      assert.deepEqual((await fanRecord(b))?.lastActivity, {
        action: "update_phone",
        source: "kafka",
        at: activityAt(4),
        correlationId: correlationIdOf(event, 4),
      });
    });

    it("a fan failing in g1 fails every later message of g1, whichever fan it is for, and nothing of g2", async function () {
      const [down, other, elsewhere] = ["gu-7f3c2a91", "gu-0b5e9d44", "gu-c41f07e8"];
      behaviour.set(down, () => ({ status: 503, body: { message: "Service Unavailable" } }));
      const event = fifoEvent([
        { fan: other, group: "g1" },
        { fan: down, group: "g1" },
        { fan: elsewhere, group: "g2" },
        { fan: other, group: "g1" },
        { fan: elsewhere, group: "g2" },
      ]);
      const { response } = await worker()(event);
      assert.deepEqual(failuresOf(response), idsOf(event, 1, 3));
      assert.equal((await fanRecord(elsewhere))?.araiVersion, 1);
    });

    it("a fan failing in one group does not touch a standard-queue batch's other messages", async function () {
      const [down, fine] = ["gu-7f3c2a91", "gu-0b5e9d44"];
      behaviour.set(down, () => ({ status: 500, body: "" }));
      const event = standardEvent([{ fan: down }, { fan: fine }, { fan: fine }]);
      const { response } = await worker()(event);
      assert.deepEqual(failuresOf(response), idsOf(event, 0));
    });
  });

  describe("DynamoDB failures", function () {
    const keysIn = (request: RecordedRequest, tableName: string) =>
      (JSON.parse(request.body) as { RequestItems: Record<string, { Keys: { userId: { S: string } }[] }> }).RequestItems[
        tableName
      ]!.Keys;

    it("fans DynamoDB keeps leaving unread fail without an ARAI fetch; the others go on", async function () {
      const [unread, fine] = ["gu-7f3c2a91", "gu-0b5e9d44"];
      dynamo.intercept = (request) => {
        if (request.headers["x-amz-target"] !== "DynamoDB_20120810.BatchGetItem") return undefined;
        const keys = keysIn(request, table);
        const { ProjectionExpression, ExpressionAttributeNames } = JSON.parse(request.body).RequestItems[table];
        const left = keys.filter((key) => key.userId.S === unread);
        const rest = keys.filter((key) => key.userId.S !== unread);
        const unprocessed = left.length > 0 ? { [table]: { Keys: left, ProjectionExpression, ExpressionAttributeNames } } : {};
        if (rest.length === 0) {
          const headers = { "content-type": "application/x-amz-json-1.0" };
          return { answer: { headers, body: { Responses: { [table]: [] }, UnprocessedKeys: unprocessed } } };
        }
        return {
          forwardBody: JSON.stringify({
            RequestItems: { [table]: { Keys: rest, ProjectionExpression, ExpressionAttributeNames } },
          }),
          rewriteAnswer: (body) => JSON.stringify({ ...JSON.parse(body), UnprocessedKeys: unprocessed }),
        };
      };
      const event = standardEvent([{ fan: unread }, { fan: fine }]);
      const { response, logs } = await worker()(event);

      assert.deepEqual(failuresOf(response), idsOf(event, 0));
      assert.equal(apiRequestsFor(unread), 0);
      assert.deepEqual(dynamoCalls(), { BatchGetItem: 5, UpdateItem: 1 }, "the unread key was asked for 5 times");
      assert.equal((await fanRecord(fine))?.araiVersion, 1);
      const failed = logs.find((line) => line.message === "record failed");
      assert.match(String(failed?.reason), /still unprocessed by BatchGetItem/);
    });

    it("when the fan records cannot be read at all, every message to look up fails and the API is not called", async function () {
      dynamo.intercept = serviceRefuses(["BatchGetItem"], {
        type: "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
        message: "Requested resource not found",
      });
      const event = fifoEvent([{ fan: "gu-7f3c2a91" }, { body: "{" }, { fan: "gu-0b5e9d44" }]);
      const { response, logs } = await worker()(event);
      // The malformed message does not need the table: it is parked.
      assert.deepEqual(failuresOf(response), idsOf(event, 0, 2));
      assert.equal((await parkedIn("fifo")).length, 1);
      assert.equal(api.requests.length, 0);
      const error = logs.find((line) => line.message === "fan records not read");
      assert.equal((error?.error as { code?: string }).code, "ResourceNotFoundException");
    });

    it("a refused UpdateItem fails that fan's messages, with the reason; others are written", async function () {
      const [refused, fine] = ["gu-7f3c2a91", "gu-0b5e9d44"];
      dynamo.intercept = serviceRefuses(["UpdateItem"], DYNAMO_ITEM_TOO_LARGE, (request) =>
        request.body.includes(`"${refused}"`),
      );
      const event = standardEvent([{ fan: refused }, { fan: fine }]);
      const { response, logs } = await worker()(event);
      assert.deepEqual(failuresOf(response), idsOf(event, 0));
      assert.equal((await fanRecord(fine))?.araiVersion, 1);
      const failed = logs.find((line) => line.message === "record failed");
      assert.equal(
        failed?.reason,
        `UpdateItem on ${table} failed: ValidationException: Item size has exceeded the maximum allowed size`,
      );
    });
  });

  describe("built by its factory, as Lambda runs it", function () {
    const VARIABLES = [
      "TABLE_NAME",
      "ARAI_URL_TEMPLATE",
      "ARAI_CREDENTIALS_SECRET_ARN",
      "ARAI_TIMEOUT_MS",
      "ARAI_FRESHNESS_SECONDS",
      "ARAI_CONCURRENCY",
      "DEAD_LETTER_QUEUE_URLS",
      ...AWS_VARIABLES,
      "AWS_ENDPOINT_URL_DYNAMODB",
      "AWS_ENDPOINT_URL_SECRETS_MANAGER",
      "AWS_ENDPOINT_URL_SQS",
    ];
    /** Sets the worker's environment to the variables given, and no other of VARIABLES. */
    const deploy = environmentPerTest(VARIABLES);

    it("reads its environment, credentials and table through the AWS endpoints, and writes the fixture's fan", async function () {
      deploy({
        ...LAMBDA_AWS,
        TABLE_NAME: table,
        ARAI_URL_TEMPLATE: `${api.url}${PATH_TEMPLATE}`,
        ARAI_CREDENTIALS_SECRET_ARN: SECRET_ARN,
        ARAI_TIMEOUT_MS: "500",
        DEAD_LETTER_QUEUE_URLS: JSON.stringify({
          [FIFO_RECORD.eventSourceARN]: deadLetters.fifo,
          [STANDARD_RECORD.eventSourceARN]: deadLetters.standard,
        }),
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      });
      const handler = lookupArai.factory();
      const fifo = fixture<SqsEvent>("sqs-account-activity-fifo.json");
      const standard = fixture<SqsEvent>("sqs-on-demand-standard.json");
      const first = await captureLogs(() => handler(fifo));
      const second = await captureLogs(() => handler(standard));
      // A message that is not JSON, on the standard queue: parked in its dead-letter queue.
      const poison = { Records: [{ ...standard.Records[0]!, messageId: "5d1f0c6e-poison", body: "not json" }] };
      const third = await captureLogs(() => handler(poison));

      assert.deepEqual(first.result, { batchItemFailures: [] });
      assert.deepEqual(second.result, { batchItemFailures: [] });
      assert.deepEqual(third.result, { batchItemFailures: [] });
      assert.deepEqual(
        (await parkedIn("standard")).map((message) => [message.Body, attributesOfParked(message).parkedBy]),
        [["not json", "lookupArai"]],
      );
      assert.deepEqual(dynamoCalls(), { BatchGetItem: 2, UpdateItem: 2 });
      assert.equal(secrets.requests.length, 1, "credentials read once per container");
      assert.equal(JSON.parse(secrets.requests[0]!.body).SecretId, SECRET_ARN);
      assert.deepEqual(
        api.requests.map((request) => request.url),
        ["/arai/v1/accounts/gu-7f3c2a91/activity", "/arai/v1/accounts/gu-0b5e9d44/activity"],
      );
      const item = await fanRecord("gu-7f3c2a91");
      assert.equal(item?.type, "activityData");
      assert.deepEqual(item?.arai, araiDataFor("gu-7f3c2a91"));
      // The FIFO fixture carries the correlationId attribute; the on-demand one, from an older producer, does not.
      assert.deepEqual(item?.lastActivity, {
        action: "login",
        source: "kafka",
        at: "2026-11-24T18:09:15.370Z",
        correlationId: "9f0c4e1a-5b7d-4c2e-8a31-6d2f0b9e7c54",
      });
      assert.ok(Math.abs(Date.parse(String(item?.araiUpdatedAt)) - Date.now()) < 60_000);
      assert.deepEqual((await fanRecord("gu-0b5e9d44"))?.lastActivity, {
        action: "verify_otp",
        source: "vf",
        at: "2026-11-24T18:11:02.004Z",
        correlationId: madeFromMessageId(standard.Records[0]!.messageId),
      });
    });

    it("fails at cold start, naming each variable that is missing or malformed", function () {
      deploy({ TABLE_NAME: table, ARAI_URL_TEMPLATE: "https://accounts.test/arai/v1/accounts/activity" });
      assert.throws(
        () => lookupArai.factory(),
        (error: Error) =>
          error.message.startsWith("lookupArai: environment does not meet the worker's contract: ") &&
          error.message.includes("ARAI_URL_TEMPLATE: expected {globalUserId} in the URL") &&
          error.message.includes("ARAI_CREDENTIALS_SECRET_ARN") &&
          error.message.includes("DEAD_LETTER_QUEUE_URLS"),
      );
    });
  });

  describe("contract", function () {
    const ACTIVITY_ARN = "arn:aws:sqs:us-east-1:210987654321:vfid-qa1-us-east-1-acct-activity-sqs.fifo";
    const ON_DEMAND_ARN = "arn:aws:sqs:us-east-1:210987654321:vfid-qa1-us-east-1-on-demand-scoring-sqs";
    const DEAD_LETTER_QUEUE_URLS = JSON.stringify({
      [ACTIVITY_ARN]: "https://sqs.us-east-1.amazonaws.com/210987654321/vfid-qa1-us-east-1-acct-activity-sqs-dlq.fifo",
      [ON_DEMAND_ARN]: "https://sqs.us-east-1.amazonaws.com/210987654321/vfid-qa1-us-east-1-on-demand-scoring-sqs-dlq",
    });
    const base = { TABLE_NAME: "fanid-qa1-fan-identity", ARAI_CREDENTIALS_SECRET_ARN: SECRET_ARN, DEAD_LETTER_QUEUE_URLS };
    const template = "https://accounts.example.com/arai/v1/accounts/{globalUserId}/activity";

    it("defaults the timeout to 2 s, the freshness window to 5 minutes and the concurrency to 10", function () {
      const env = loadEnvironment(lookupAraiContract, {
        ...base,
        ARAI_URL_TEMPLATE: "https://accounts-qa1.verifiedfan.example.com/arai/v1/accounts/{globalUserId}/activity",
      });
      assert.equal(env.ARAI_TIMEOUT_MS, 2000);
      assert.equal(env.ARAI_FRESHNESS_SECONDS, 300);
      assert.equal(env.ARAI_CONCURRENCY, 10);
    });

    it("takes an https template with {globalUserId}, or http only to a loopback stand-in", function () {
      const accepts = (url: string) => lookupAraiContract.environment().safeParse({ ...base, ARAI_URL_TEMPLATE: url }).success;
      assert.equal(accepts("https://accounts.example.com/arai/v1/accounts/{globalUserId}/activity"), true);
      assert.equal(accepts("http://127.0.0.1:4010/arai/v1/accounts/{globalUserId}/activity"), true);
      assert.equal(accepts("http://localhost:4010/{globalUserId}"), true);
      assert.equal(accepts("http://accounts.example.com/arai/v1/accounts/{globalUserId}/activity"), false);
      assert.equal(accepts("https://accounts.example.com/arai/v1/accounts/activity"), false);
      assert.equal(accepts("ftp://accounts.example.com/{globalUserId}"), false);
      assert.equal(accepts("{globalUserId}"), false);
    });

    it("reads DEAD_LETTER_QUEUE_URLS as source queue ARN → dead-letter queue URL", function () {
      const env = loadEnvironment(lookupAraiContract, { ...base, ARAI_URL_TEMPLATE: template });
      assert.deepEqual(env.DEAD_LETTER_QUEUE_URLS, JSON.parse(DEAD_LETTER_QUEUE_URLS));
    });

    it("refuses a DEAD_LETTER_QUEUE_URLS that is not such an object, naming the variable and what is wrong", function () {
      const problem = (value: string) => {
        try {
          loadEnvironment(lookupAraiContract, { ...base, ARAI_URL_TEMPLATE: template, DEAD_LETTER_QUEUE_URLS: value });
        } catch (error) {
          return (error as Error).message.replace("lookupArai: environment does not meet the worker's contract: ", "");
        }
        return "accepted";
      };
      const dlq = "https://sqs.us-east-1.amazonaws.com/210987654321/vfid-qa1-us-east-1-on-demand-scoring-sqs-dlq";
      assert.match(problem("{not json"), /^DEAD_LETTER_QUEUE_URLS: expected a JSON object .*; the value is not JSON$/);
      assert.match(
        problem(JSON.stringify([dlq])),
        /^DEAD_LETTER_QUEUE_URLS: expected a JSON object mapping each source queue ARN/,
      );
      assert.match(problem("{}"), /^DEAD_LETTER_QUEUE_URLS: expected at least one source queue$/);
      assert.match(problem(JSON.stringify({ "on-demand-scoring-sqs": dlq })), /^DEAD_LETTER_QUEUE_URLS\.on-demand-scoring-sqs: /);
      assert.match(
        problem(JSON.stringify({ [ON_DEMAND_ARN]: "http://sqs.example.com/q" })),
        new RegExp(
          `^DEAD_LETTER_QUEUE_URLS\\.${ON_DEMAND_ARN.replaceAll(".", "\\.")}: expected the dead-letter queue's https URL$`,
        ),
      );
      assert.match(
        problem(JSON.stringify({ [ACTIVITY_ARN]: dlq })),
        /^DEAD_LETTER_QUEUE_URLS\.arn:.*acct-activity-sqs\.fifo: a FIFO queue's dead-letter queue is a FIFO queue/,
      );
      assert.equal(problem(JSON.stringify({ [ON_DEMAND_ARN]: "http://127.0.0.1:4566/000000000000/dlq" })), "accepted");
    });

    it("lists exactly the access it uses", function () {
      assert.deepEqual(lookupAraiContract.access, {
        dynamodb_fan_records: { actions: ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"], on: "the fan-identity table" },
        arai_credentials: { actions: ["secretsmanager:GetSecretValue"], on: "the accounts API credentials secret" },
        dead_letter_queues: { actions: ["sqs:SendMessage"], on: "the dead-letter queues of the queues it consumes" },
      });
    });
  });
});

describe("lookupArai rules (fans.ts)", function () {
  const message = (globalUserId: string, at: string, action = "login"): ActivityMessage => ({
    v: 1,
    globalUserId,
    source: "kafka",
    action,
    at,
  });

  it("groups messages by fan in the order first seen, each fan with its latest activity", function () {
    const fans = fansOf([
      { id: "m1", message: message("gu-b", "2026-11-24T18:00:00Z"), correlationId: "c1" },
      { id: "m2", message: message("gu-a", "2026-11-24T18:00:05Z", "update_email"), correlationId: "c2" },
      { id: "m3", message: message("gu-b", "2026-11-24T17:59:00Z"), correlationId: "c3" },
      { id: "m4", message: message("gu-a", "2026-11-24T19:00:05+01:00", "verify_otp"), correlationId: "c4" },
    ]);
    assert.deepEqual(fans, [
      {
        globalUserId: "gu-b",
        messageIds: ["m1", "m3"],
        latest: message("gu-b", "2026-11-24T18:00:00Z"),
        correlationIds: ["c1", "c3"],
        latestCorrelationId: "c1",
      },
      // Same instant: the later in the batch wins.
      {
        globalUserId: "gu-a",
        messageIds: ["m2", "m4"],
        latest: message("gu-a", "2026-11-24T19:00:05+01:00", "verify_otp"),
        correlationIds: ["c2", "c4"],
        latestCorrelationId: "c4",
      },
    ]);
  });

  it("for any batch: every message belongs to exactly one fan, and no message of a fan is later than its latest", function () {
    const record = fc.record({
      fan: fc.constantFrom("gu-1", "gu-2", "gu-3", "gu-4"),
      at: fc.date({ min: new Date("2026-01-01"), max: new Date("2027-01-01"), noInvalidDate: true }),
      source: fc.constantFrom(...ACTIVITY_SOURCES),
    });
    fc.assert(
      fc.property(fc.array(record, { maxLength: 40 }), (batch) => {
        const records = batch.map((item, index) => ({
          id: `m${index}`,
          message: { v: 1 as const, globalUserId: item.fan, source: item.source, action: "login", at: item.at.toISOString() },
          correlationId: `c${index}`,
        }));
        const fans = fansOf(records);
        assert.deepEqual(fans.flatMap((fan) => fan.messageIds).sort(), records.map((item) => item.id).sort());
        assert.equal(new Set(fans.map((fan) => fan.globalUserId)).size, fans.length);
        for (const fan of fans) {
          const own = records.filter((item) => item.message.globalUserId === fan.globalUserId);
          assert.deepEqual(
            fan.messageIds,
            own.map((item) => item.id),
          );
          assert.ok(own.every((item) => Date.parse(item.message.at) <= Date.parse(fan.latest.at)));
          assert.ok(own.some((item) => item.message === fan.latest));
          // The stored id is the latest activity's own.
          assert.equal(fan.latestCorrelationId, own.find((item) => item.message === fan.latest)!.correlationId);
          assert.deepEqual(
            fan.correlationIds,
            own.map((item) => item.correlationId),
          );
        }
      }),
    );
  });

  it("lastActivity holds action, source, at and the activity's correlation id", function () {
    assert.deepEqual(lastActivityOf(message("gu-a", "2026-11-24T18:00:00Z", "add_phone"), "c-7"), {
      action: "add_phone",
      source: "kafka",
      at: "2026-11-24T18:00:00Z",
      correlationId: "c-7",
    });
  });

  it("ARAI is fresh while younger than the window, and a stamp a little ahead of the clock counts as fresh", function () {
    const now = Date.parse("2026-11-24T18:10:00.000Z");
    const window = 300_000;
    assert.equal(isFresh("2026-11-24T18:09:00.000Z", now, window), true);
    assert.equal(isFresh("2026-11-24T18:05:00.001Z", now, window), true);
    assert.equal(isFresh("2026-11-24T18:05:00.000Z", now, window), false);
    assert.equal(isFresh("2026-11-24T18:10:00.250Z", now, window), true);
    assert.equal(isFresh("2026-11-25T18:10:00.000Z", now, window), false, "a stamp far in the future is replaced");
    assert.equal(isFresh("2026-11-24T18:09:00.000Z", now, 0), false, "a window of 0 always fetches");
    for (const stamp of [undefined, null, "", "recently", 1_795_543_740_000]) assert.equal(isFresh(stamp, now, window), false);
  });
});
