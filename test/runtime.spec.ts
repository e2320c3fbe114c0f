/**
 * The scoring runtime: record decoding, partial batch responses (with FIFO group stops), batched
 * SQS sends and DynamoDB reads and writes against the real local services (calls counted at the
 * service), and the retry helpers.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { type DynamoDBDocumentClient, PutCommand } from "@aws-sdk/lib-dynamodb";
import * as fc from "fast-check";
import { itemKey, partialBatchResponse, type RecordFailure, stopGroupsAtFirstFailure } from "../workers/shared/runtime/batch";
import { batchGetItems, batchPutItems, createDocumentClient } from "../workers/shared/runtime/dynamo";
import {
  createDynamoChangeDecoder,
  decodeJson,
  decodeKinesisData,
  decodeWith,
  type KinesisRecord,
  kinesisEventSchema,
  parseEvent,
  sqsEventSchema,
} from "../workers/shared/runtime/records";
import { parkedRecordDocument, readParkedRecord } from "../workers/shared/runtime/parking";
import { backoffDelay, chunk, mapConcurrently, withRetries } from "../workers/shared/runtime/retry";
import { type OutgoingMessage, sendMessages } from "../workers/shared/runtime/sqs";
import { z } from "zod";
import { fixture } from "./support/fixtures";
import { countOperations, type Interception, type RecordedRequest } from "./support/http";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { captureLogs } from "./support/logs";
import { DYNAMO_INTERNAL_ERROR, refuseEntries, serviceDown, SQS_INTERNAL_ERROR } from "./support/streams";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const region = "us-east-1";

/** A Kinesis record carrying `data` as given. */
const kinesisRecord = (data: string): KinesisRecord => ({
  kinesis: { data, sequenceNumber: "49657828409187701520019995242508390119953358325192589314" },
});
const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

describe("scoring runtime", function () {
  describe("records", function () {
    it("decodes the JSON any Kinesis record carries", function () {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const decoded = decodeKinesisData(kinesisRecord(base64(JSON.stringify(value))));
          assert.ok(decoded.ok);
          assert.deepEqual(decoded.value, JSON.parse(JSON.stringify(value)));
        }),
      );
    });

    it("says when data is not base64, or not JSON", function () {
      for (const data of ["eyJhIjoxfQ", "eyJhIjoxfQ=", "eyJh IjoxfQ==", "eyJhIjoxfQ==\n", "eyJhIjoxfQ_-", '{"a":1}', "%%%"]) {
        assert.deepEqual(decodeKinesisData(kinesisRecord(data)), { ok: false, reason: "data is not base64" }, data);
      }
      const notJson = decodeKinesisData(kinesisRecord(base64("REMOVE rescore#gu-1")));
      assert.equal(notJson.ok, false);
      assert.match((notJson as { reason: string }).reason, /^data is not JSON \(.+\)$/);
      assert.match((decodeKinesisData(kinesisRecord("")) as { reason: string }).reason, /^data is not JSON/);
      assert.deepEqual(decodeJson("[1,2]", "body"), { ok: true, value: [1, 2] });
      assert.match((decodeJson("[1,2", "body") as { reason: string }).reason, /^body is not JSON \(/);
    });

    it("names up to three wrong fields of a value, by path", function () {
      const schema = z.object({ a: z.string(), b: z.object({ c: z.number() }), d: z.boolean(), e: z.string() });
      assert.deepEqual(decodeWith(schema, { a: "x", b: { c: 1 }, d: true, e: "y" }, "thing"), {
        ok: true,
        value: { a: "x", b: { c: 1 }, d: true, e: "y" },
      });
      const wrong = decodeWith(schema, { a: 1, b: { c: "1" } }, "thing");
      assert.equal(wrong.ok, false);
      const reason = (wrong as { reason: string }).reason;
      assert.match(reason, /^thing is not as expected: a: .*; b\.c: .*; d: /);
      assert.ok(!reason.includes("e: "), "at most three problems");
      assert.match((decodeWith(schema, "text", "thing") as { reason: string }).reason, /^thing is not as expected: \(root\): /);
    });

    it("parses Lambda's Kinesis and SQS events, and throws naming the worker and the wrong fields otherwise", function () {
      const kinesis = parseEvent(kinesisEventSchema(), fixture("kinesis-vf-login.json"), "w", "Kinesis");
      assert.equal(kinesis.Records[0]!.kinesis.sequenceNumber, "49657828409187701520019995242508390119953358325192589314");
      assert.equal(kinesis.Records[0]!.eventSourceARN, "arn:aws:kinesis:us-east-1:210987654321:stream/vf-input-stream-qa1");
      const sqsRecord = {
        messageId: "69bc4bbd-ed69-4325-a434-85c3b428ceab",
        receiptHandle: "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a",
        body: '{"globalUserId":"gu-1","source":"purchase","action":"purchase","at":"2026-11-24T09:20:11.004Z"}',
        attributes: {
          ApproximateReceiveCount: "1",
          SentTimestamp: "1665754525442",
          SequenceNumber: "18873177232222703872",
          MessageGroupId: "gu-1",
          SenderId: "AIDAWYJAWPFU7SUQGUJC6",
          MessageDeduplicationId: "4e0a0f61c1d5a0dbd9b9c2c7e1c6f1b0e6f3b8a2d4c9e7f5a1b3c5d7e9f1a3b5",
          ApproximateFirstReceiveTimestamp: "1665754525442",
        },
        messageAttributes: {},
        md5OfBody: "f3c788e623445e3feb263e80c1bffc0b",
        eventSource: "aws:sqs",
        eventSourceARN: "arn:aws:sqs:us-east-1:210987654321:vfid-qa1-us-east-1-account-activity.fifo",
        awsRegion: "us-east-1",
      };
      const sqs = parseEvent(sqsEventSchema(), { Records: [sqsRecord] }, "w", "SQS");
      assert.equal(sqs.Records[0]!.attributes.MessageGroupId, "gu-1");
      assert.equal(sqs.Records[0]!.attributes.SequenceNumber, "18873177232222703872", "other attributes are kept");

      assert.throws(
        () => parseEvent(kinesisEventSchema(), { Records: [sqsRecord] }, "enqueueFromVfStream", "Kinesis"),
        /^Error: enqueueFromVfStream: not a Kinesis event: Records\.0\.kinesis: /,
      );
      assert.throws(
        () => parseEvent(sqsEventSchema(), null, "lookupArai", "SQS"),
        /^Error: lookupArai: not a SQS event: \(event\): /,
      );
      const many = { Records: Array.from({ length: 8 }, () => ({})) };
      const error = (() => {
        try {
          parseEvent(sqsEventSchema(), many, "w", "SQS");
        } catch (thrown) {
          return thrown as Error;
        }
        return undefined;
      })();
      assert.equal(error?.message.split("; ").length, 5, "at most five problems");
    });

    it("decodes DynamoDB change records, images unmarshalled, times in milliseconds", function () {
      const decode = createDynamoChangeDecoder();
      const change = {
        awsRegion: "us-east-1",
        eventID: "26b1b865-1ee7-47f9-816e-d51cdeef9dc5",
        eventName: "MODIFY",
        userIdentity: null,
        recordFormat: "application/json",
        tableName: "vfid-qa1-us-east-1-fan-identity",
        dynamodb: {
          ApproximateCreationDateTime: 1795511755370,
          Keys: { userId: { S: "gu-1" } },
          NewImage: {
            userId: { S: "gu-1" },
            type: { S: "activityData" },
            araiVersion: { N: "4" },
            lastActivity: { M: { action: { S: "purchase" }, source: { S: "purchase" }, at: { S: "2026-11-24T09:20:11.004Z" } } },
            flags: { L: [{ BOOL: true }, { NULL: true }] },
          },
          OldImage: { userId: { S: "gu-1" }, type: { S: "score" }, araiVersion: { N: "3" } },
          SizeBytes: 192,
        },
        eventSource: "aws:dynamodb",
      };
      assert.deepEqual(decode(change), {
        ok: true,
        value: {
          eventID: "26b1b865-1ee7-47f9-816e-d51cdeef9dc5",
          eventName: "MODIFY",
          userIdentity: null,
          keys: { userId: "gu-1" },
          newImage: {
            userId: "gu-1",
            type: "activityData",
            araiVersion: 4,
            lastActivity: { action: "purchase", source: "purchase", at: "2026-11-24T09:20:11.004Z" },
            flags: [true, null],
          },
          oldImage: { userId: "gu-1", type: "score", araiVersion: 3 },
          changedAt: 1795511755370,
        },
      });
      const micro = decode({
        ...change,
        dynamodb: {
          ...change.dynamodb,
          ApproximateCreationDateTime: 1795511755370123,
          ApproximateCreationDateTimePrecision: "MICROSECOND",
        },
      });
      assert.ok(micro.ok);
      assert.equal(micro.value.changedAt, 1795511755370.123);
      const removal = decode({
        ...change,
        eventName: "REMOVE",
        userIdentity: { type: "Service", principalId: "dynamodb.amazonaws.com" },
        dynamodb: { Keys: change.dynamodb.Keys, OldImage: change.dynamodb.OldImage },
      });
      assert.ok(removal.ok);
      assert.deepEqual(removal.value.userIdentity, { type: "Service", principalId: "dynamodb.amazonaws.com" });
      assert.equal(removal.value.newImage, undefined);
      assert.equal(removal.value.changedAt, undefined);
    });

    it("says what is wrong with a change record that is not one", function () {
      const decode = createDynamoChangeDecoder();
      const reason = (value: unknown) => {
        const decoded = decode(value);
        assert.equal(decoded.ok, false);
        return (decoded as { reason: string }).reason;
      };
      assert.match(
        reason({ eventID: "e", eventName: "UPSERT", dynamodb: { Keys: {} } }),
        /^DynamoDB change record is not as expected: eventName: /,
      );
      assert.match(reason({ eventID: "e", eventName: "INSERT" }), /dynamodb: /);
      assert.match(
        reason({ eventID: "e", eventName: "INSERT", eventSource: "aws:kinesis", dynamodb: { Keys: {} } }),
        /eventSource: /,
      );
      assert.match(
        reason({
          eventID: "e",
          eventName: "INSERT",
          dynamodb: { Keys: { userId: { S: "gu-1" } }, NewImage: { userId: { Q: "gu-1" } } },
        }),
        /^DynamoDB change record has an image that is not DynamoDB JSON \(/,
      );
    });
  });

  describe("partial batch responses", function () {
    it("report each failed record once, in the order first reported, with a warning saying what was wrong", async function () {
      const logger = new Logger({ serviceName: "runtime", logLevel: "DEBUG" });
      const { result, logs } = await captureLogs(async () =>
        partialBatchResponse(
          [
            { id: "s3", reason: "data is not base64" },
            { id: "s1", reason: "SQS refused the message: InternalError" },
            { id: "s3", reason: "rescore not scheduled" },
          ],
          logger,
        ),
      );
      assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: "s3" }, { itemIdentifier: "s1" }] });
      assert.deepEqual(
        logs.map((line) => [line.level, line.message, line.record, line.reason]),
        [
          ["WARN", "record failed", "s3", "data is not base64"],
          ["WARN", "record failed", "s1", "SQS refused the message: InternalError"],
        ],
      );
      const empty = await captureLogs(async () => partialBatchResponse([], logger));
      assert.deepEqual(empty.result, { batchItemFailures: [] });
      assert.deepEqual(empty.logs, []);
    });

    it("count each reported record once, under the kind of its first failure (error when none is named)", async function () {
      const logger = new Logger({ serviceName: "runtime", logLevel: "ERROR" });
      const counted: string[] = [];
      partialBatchResponse(
        [
          { id: "s3", reason: "data is not base64", kind: "invalid" },
          { id: "s1", reason: "SQS refused the message: InternalError" },
          { id: "s3", reason: "rescore not scheduled", kind: "throttled" },
          { id: "s2", reason: "follows failed message s1", kind: "unprocessed" },
        ],
        logger,
        undefined,
        { failed: (reason, count = 1) => counted.push(...Array<string>(count).fill(reason)) },
      );
      assert.deepEqual(counted, ["invalid", "error", "unprocessed"]);
    });

    it("report in batch order when given it, Kafka identifiers compared by value", async function () {
      const logger = new Logger({ serviceName: "runtime", logLevel: "DEBUG" });
      const at = (partition: string, offset: number) => ({ partition, offset });
      const batch = [at("user-activity-0", 15), at("user-activity-0", 16), at("user-activity-1", 3), at("logins-0", 15)];
      const { result, logs } = await captureLogs(async () =>
        partialBatchResponse(
          [
            { id: at("logins-0", 15), reason: "not an activity" },
            { id: at("user-activity-1", 3), reason: "SQS refused the message" },
            { id: at("user-activity-0", 16), reason: "data is not base64" },
            { id: at("user-activity-1", 3), reason: "rescore not scheduled" },
          ],
          logger,
          batch,
        ),
      );
      assert.deepEqual(
        result.batchItemFailures.map(({ itemIdentifier }) => itemIdentifier),
        [at("user-activity-0", 16), at("user-activity-1", 3), at("logins-0", 15)],
      );
      assert.deepEqual(
        logs.map((line) => line.reason),
        ["data is not base64", "SQS refused the message", "not an activity"],
      );
      assert.equal(itemKey(at("user-activity-0", 16)), "user-activity-0@16");
      assert.equal(
        itemKey("49590338271490256608559692538361571095921575989136588898"),
        "49590338271490256608559692538361571095921575989136588898",
      );
    });

    it("stop a FIFO group at its first failed message: the group's later messages fail too, naming it", function () {
      const messages = [
        { id: "m1", group: "gu-a" },
        { id: "m2", group: "gu-b" },
        { id: "m3", group: "gu-a" },
        { id: "m4", group: "gu-a" },
        { id: "m5", group: "gu-b" },
        { id: "m6", group: "gu-c" },
      ];
      assert.deepEqual(stopGroupsAtFirstFailure(messages, [{ id: "m3", reason: "ARAI lookup failed" }]), [
        { id: "m3", reason: "ARAI lookup failed" },
        // Not failed for a fault of its own: counted as unprocessed.
        { id: "m4", reason: "follows failed message m3 in message group gu-a", kind: "unprocessed" },
      ]);
      assert.deepEqual(stopGroupsAtFirstFailure(messages, []), []);
    });

    it("stop groups exactly as a model of FIFO order says, for any batch and failures", function () {
      const batch = fc
        .array(fc.tuple(fc.constantFrom("g1", "g2", "g3", "g4"), fc.boolean()), { maxLength: 40 })
        .map((entries) => entries.map(([group, fails], index) => ({ id: `m${index}`, group, fails })));
      fc.assert(
        fc.property(batch, (entries) => {
          const messages = entries.map(({ id, group }) => ({ id, group }));
          const failures: RecordFailure[] = entries.filter((entry) => entry.fails).map(({ id }) => ({ id, reason: `own ${id}` }));
          const result = stopGroupsAtFirstFailure(messages, [...failures].reverse());

          const expected: RecordFailure[] = [];
          const firstFailed = new Map<string, string>();
          for (const entry of entries) {
            if (entry.fails) {
              expected.push({ id: entry.id, reason: `own ${entry.id}` });
              if (!firstFailed.has(entry.group)) firstFailed.set(entry.group, entry.id);
            } else if (firstFailed.has(entry.group)) {
              expected.push({
                id: entry.id,
                reason: `follows failed message ${firstFailed.get(entry.group)} in message group ${entry.group}`,
                kind: "unprocessed",
              });
            }
          }
          assert.deepEqual(result, expected);
          // Every failure reported survives with its own reason; a group with none is untouched.
          for (const failure of failures)
            assert.ok(result.some((item) => item.id === failure.id && item.reason === failure.reason));
          const failedGroups = new Set(entries.filter((entry) => entry.fails).map((entry) => entry.group));
          for (const item of result) assert.ok(failedGroups.has(entries.find((entry) => entry.id === item.id)!.group));
        }),
      );
    });
  });

  describe("parked-record documents", function () {
    const record = fixture<{ Records: object[] }>("kinesis-vf-login.json").Records[0]!;
    const document = parkedRecordDocument({
      worker: "enqueueFromVfStream",
      reason: "VF login event is not as expected: globalUserId: Invalid input",
      failureReason: "invalid",
      parkedAt: new Date("2026-12-01T10:00:00.000Z"),
      source: {
        kind: "kinesis",
        eventSourceARN: "arn:aws:kinesis:us-east-1:210987654321:stream/vf-input-stream-qa1",
        sequenceNumber: "49657828409187701520019995242508390119953358325192589314",
      },
      record,
    });

    it("are read back as written, from the message body or its parse, fields a reader does not know ignored", function () {
      assert.deepEqual(document, {
        parkedRecord: 1,
        worker: "enqueueFromVfStream",
        reason: "VF login event is not as expected: globalUserId: Invalid input",
        failureReason: "invalid",
        parkedAt: "2026-12-01T10:00:00.000Z",
        source: document.source,
        record,
      });
      assert.deepEqual(readParkedRecord(JSON.stringify(document)), { ok: true, value: document });
      const later = { ...document, correlationId: "vf-login-5b7d", parkedFrom: "a later writer's field" };
      assert.deepEqual(readParkedRecord(later), { ok: true, value: { ...document, correlationId: "vf-login-5b7d" } });
      const kafka = {
        ...document,
        source: { kind: "kafka", topic: "user-activity-qa1", partition: 3, offset: 17502 },
      };
      assert.deepEqual(readParkedRecord(kafka), { ok: true, value: kafka });
    });

    it("that are not one, or of a newer version, are refused saying why", function () {
      const reason = (body: unknown) => {
        const reading = readParkedRecord(body);
        assert.equal(reading.ok, false);
        return (reading as { reason: string }).reason;
      };
      assert.equal(reason("{not json"), "the body is not JSON");
      assert.match(reason({ KinesisBatchInfo: {} }), /no parkedRecord field/);
      assert.equal(
        reason({ ...document, parkedRecord: 2 }),
        "parked-record format version 2 is newer than this reader knows (1)",
      );
      assert.match(reason({ ...document, source: { kind: "kinesis", sequenceNumber: "abc" } }), /source\.sequenceNumber: /);
      assert.match(reason({ ...document, source: { kind: "sqs" } }), /^not a parked record as the workers write it: source/);
      const { record: _record, ...withoutRecord } = document;
      assert.match(reason(withoutRecord), /record: /);
    });
  });

  describe("sending to SQS", function () {
    let sqs: LocalSqs;
    /** One attempt per SDK call, so every attempt sendMessages makes is one request at the service. */
    let client: SQSClient;
    let queues = 0;

    before(async function () {
      sqs = await startSqs();
      client = new SQSClient({ endpoint: sqs.endpoint, region, credentials, maxAttempts: 1 });
    });

    after(async function () {
      client.destroy();
      await sqs.close();
    });

    beforeEach(function () {
      sqs.intercept = () => undefined;
    });

    async function queue(fifo = false) {
      queues += 1;
      const url = await sqs.createQueue(`runtime-${queues}${fifo ? ".fifo" : ""}`);
      sqs.proxy.requests.length = 0;
      return url;
    }

    const messages = (count: number, group?: (index: number) => string): OutgoingMessage[] =>
      Array.from({ length: count }, (_, index) => ({
        id: `r${index}`,
        body: JSON.stringify({ index }),
        ...(group ? { groupId: group(index), deduplicationId: `d${index}` } : {}),
      }));
    const sendCalls = () => countOperations(sqs.proxy).SendMessageBatch ?? 0;

    it("sends n messages in ceil(n/10) SendMessageBatch calls, for any n", async function () {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: 45 }), fc.boolean(), async (n, ordered) => {
          const url = await queue();
          const outcome = await sendMessages(client, url, messages(n), { ordered });
          assert.deepEqual(outcome, { failed: [], calls: Math.ceil(n / 10) });
          assert.equal(sendCalls(), Math.ceil(n / 10));
          assert.equal((await sqs.drain(url)).length, n);
        }),
        { numRuns: 20 },
      );
    });

    it("keeps each SendMessageBatch within SQS's 256 KiB, body and attributes counted, and sends every message", async function () {
      const url = await queue();
      // 100 KiB bodies (multi-byte characters, so bytes are counted, not characters), with attributes.
      const body = (index: number) => JSON.stringify({ index, text: "é".repeat(50 * 1024) });
      const heavy = Array.from({ length: 7 }, (_, index) => ({
        id: `h${index}`,
        body: body(index),
        attributes: { parkedBy: "enqueueFromVfStream" },
      }));
      const light = messages(5);

      const outcome = await sendMessages(client, url, [...heavy, ...light]);

      assert.deepEqual(outcome.failed, []);
      const batches = sqs.proxy.requests.map(
        (request) => (JSON.parse(request.body) as { Entries: { MessageBody: string; MessageAttributes?: object }[] }).Entries,
      );
      for (const entries of batches) {
        const bytes = entries.reduce(
          (sum, entry) =>
            sum +
            Buffer.byteLength(entry.MessageBody) +
            (entry.MessageAttributes ? Buffer.byteLength("parkedBy" + "String" + "enqueueFromVfStream") : 0),
          0,
        );
        assert.ok(bytes <= 262_144, `a batch of ${bytes} bytes`);
        assert.ok(entries.length <= 10);
      }
      // Two heavy messages a call (three would be over), the last heavy one with the light ones.
      assert.deepEqual(batches.map((entries) => entries.length).sort(), [2, 2, 2, 6].sort());
      assert.equal(outcome.calls, 4);
      assert.equal((await sqs.drain(url)).length, 12);
    });

    it("with ordered, sends batch after batch, so each FIFO group reaches the queue in order", async function () {
      const url = await queue(true);
      const outcome = await sendMessages(
        client,
        url,
        messages(57, (index) => `g${index % 3}`),
        { ordered: true },
      );
      assert.deepEqual(outcome, { failed: [], calls: 6 });
      const received = await sqs.drain(url);
      for (const group of ["g0", "g1", "g2"]) {
        const indexes = received
          .filter((message) => message.Attributes?.MessageGroupId === group)
          .map((message) => (JSON.parse(message.Body!) as { index: number }).index);
        assert.deepEqual(
          indexes,
          [...indexes].sort((a, b) => a - b),
          group,
        );
        assert.equal(indexes.length, 19);
      }
    });

    it("retries only the entries SQS could not take for a moment, until taken", async function () {
      const url = await queue();
      sqs.intercept = refuseEntries({
        pick: (entry) => ['{"index":2}', '{"index":13}'].includes(entry.MessageBody),
        senderFault: false,
        times: 2,
      });
      const outcome = await sendMessages(client, url, messages(15), { baseDelayMs: 1 });
      assert.deepEqual(outcome, { failed: [], calls: 6 });
      const bodies = sqs.proxy.requests.map((request) => (JSON.parse(request.body) as { Entries: unknown[] }).Entries.length);
      assert.deepEqual(bodies.sort(), [1, 1, 1, 1, 10, 5].sort(), "the retries carry only the refused entries");
      assert.equal((await sqs.drain(url)).length, 15);
    });

    it("reports an entry refused as the sender's fault at once, and one refused on every attempt after the last", async function () {
      const url = await queue();
      sqs.intercept = refuseEntries(
        { pick: (entry) => entry.MessageBody === '{"index":1}', senderFault: true },
        { pick: (entry) => entry.MessageBody === '{"index":4}', senderFault: false, code: "RequestThrottled" },
      );
      const outcome = await sendMessages(client, url, messages(6), { attempts: 3, baseDelayMs: 1 });
      assert.deepEqual(outcome.failed.map((failure) => failure.id).sort(), ["r1", "r4"]);
      assert.match(
        outcome.failed.find((failure) => failure.id === "r1")!.reason,
        /^SQS refused the message: InvalidParameterValue: /,
      );
      assert.match(outcome.failed.find((failure) => failure.id === "r4")!.reason, /^SQS refused the message: RequestThrottled: /);
      assert.equal(outcome.calls, 3);
      assert.equal(sendCalls(), 3);
      assert.equal((await sqs.drain(url)).length, 4);
    });

    it("reports every message of a batch SQS never answered, after the attempts, and none as sent", async function () {
      const url = await queue();
      sqs.intercept = serviceDown(["SendMessageBatch"], SQS_INTERNAL_ERROR);
      const outcome = await sendMessages(client, url, messages(12), { attempts: 2, baseDelayMs: 1 });
      assert.deepEqual(
        outcome.failed.map((failure) => failure.id),
        messages(12).map((message) => message.id),
      );
      assert.match(outcome.failed[0]!.reason, /^SendMessageBatch to .*runtime-\d+ failed: InternalError: /);
      assert.equal(outcome.calls, 4);
      assert.equal(sendCalls(), 4);
      sqs.intercept = () => undefined;
      assert.deepEqual(await sqs.drain(url), []);
    });
  });

  describe("DynamoDB batches", function () {
    let dynamo: LocalDynamo;
    let documents: DynamoDBDocumentClient;
    let raw: DynamoDBClient;

    before(async function () {
      dynamo = await startDynamo();
      raw = new DynamoDBClient({ endpoint: dynamo.endpoint, region, credentials, maxAttempts: 1 });
      documents = createDocumentClient(raw);
    });

    after(async function () {
      raw.destroy();
      await dynamo.close();
    });

    beforeEach(function () {
      dynamo.intercept = () => undefined;
    });

    async function table() {
      const name = await dynamo.createFanTable();
      dynamo.proxy.requests.length = 0;
      return name;
    }

    const calls = (operation: string) => countOperations(dynamo.proxy)[operation] ?? 0;
    const fans = (count: number, version = 1) =>
      Array.from({ length: count }, (_, index) => ({
        userId: `gu-${index}`,
        type: "score",
        score: index / 1000,
        araiVersion: version,
      }));

    /**
     * DynamoDB leaving requests unprocessed: on its nth call (while `keep` lasts) it processes only
     * the first `keep[n]` requests and returns the rest as unprocessed, as DynamoDB does.
     */
    function leaveUnprocessed(operation: "BatchWriteItem" | "BatchGetItem", keep: readonly number[]) {
      let call = 0;
      return (request: RecordedRequest): Interception | undefined => {
        if (request.headers["x-amz-target"] !== `DynamoDB_20120810.${operation}` || call >= keep.length) return undefined;
        const kept = keep[call++]!;
        const body = JSON.parse(request.body) as { RequestItems: Record<string, unknown> };
        const [[name, requests]] = Object.entries(body.RequestItems) as [[string, unknown]];
        const writes = operation === "BatchWriteItem" ? (requests as unknown[]) : undefined;
        const reads = operation === "BatchGetItem" ? (requests as { Keys: unknown[] }) : undefined;
        const forwarded = writes ? { [name]: writes.slice(0, kept) } : { [name]: { ...reads, Keys: reads!.Keys.slice(0, kept) } };
        const left = writes
          ? { UnprocessedItems: { [name]: writes.slice(kept) } }
          : { UnprocessedKeys: { [name]: { ...reads, Keys: reads!.Keys.slice(kept) } } };
        if (kept === 0) {
          const answer = writes ? left : { Responses: { [name]: [] }, ...left };
          return { answer: { status: 200, headers: { "content-type": "application/x-amz-json-1.0" }, body: answer } };
        }
        return {
          forwardBody: JSON.stringify({ ...body, RequestItems: forwarded }),
          rewriteAnswer: (text: string) => JSON.stringify({ ...(JSON.parse(text) as object), ...left }),
        };
      };
    }

    it("writes n items in ceil(n/25) BatchWriteItem calls, only the last of a key's items, and reads them back 100 keys a call", async function () {
      const name = await table();
      const items = [...fans(260), ...fans(10, 2)];

      const written = await batchPutItems(documents, name, "userId", items);

      assert.deepEqual(written, { unwritten: [], calls: 11 });
      assert.equal(calls("BatchWriteItem"), 11, "260 distinct keys: 11 calls of at most 25");
      const keys = [...items.map((item) => item.userId), "gu-absent", "gu-0", "gu-1"];
      const read = await batchGetItems(documents, name, "userId", keys, ["userId", "araiVersion"]);
      assert.equal(read.calls, 3, "261 distinct keys, 100 a call");
      assert.equal(calls("BatchGetItem"), 3);
      assert.deepEqual(read.unread, []);
      assert.equal(read.items.length, 260);
      const byKey = new Map(read.items.map((item) => [item.userId, item]));
      assert.deepEqual(
        byKey.get("gu-3"),
        { userId: "gu-3", araiVersion: 2 },
        "the last write of a key wins; only the projected attributes",
      );
      assert.deepEqual(byKey.get("gu-200"), { userId: "gu-200", araiVersion: 1 });
    });

    it("retries the items DynamoDB left unprocessed until written", async function () {
      const name = await table();
      dynamo.intercept = leaveUnprocessed("BatchWriteItem", [10, 10]);

      const written = await batchPutItems(documents, name, "userId", fans(25), { baseDelayMs: 1 });

      assert.deepEqual(written, { unwritten: [], calls: 3 });
      assert.equal(calls("BatchWriteItem"), 3);
      assert.equal((await dynamo.scan(name)).length, 25);
    });

    it("reports the items still unprocessed after the last attempt, with why", async function () {
      const name = await table();
      dynamo.intercept = leaveUnprocessed("BatchWriteItem", [20, 0, 0]);

      const written = await batchPutItems(documents, name, "userId", fans(25), { attempts: 3, baseDelayMs: 1 });

      assert.equal(written.calls, 3);
      assert.deepEqual(
        written.unwritten.map(({ item }) => item.userId),
        ["gu-20", "gu-21", "gu-22", "gu-23", "gu-24"],
      );
      assert.equal(written.unwritten[0]!.reason, "still unprocessed after 3 BatchWriteItem attempts");
      assert.equal((await dynamo.scan(name)).length, 20);
    });

    it("reports every item of a batch DynamoDB refused on every attempt, naming the table and the error", async function () {
      const name = await table();
      dynamo.intercept = serviceDown(["BatchWriteItem"], DYNAMO_INTERNAL_ERROR);

      const written = await batchPutItems(documents, name, "userId", fans(30), { attempts: 2, baseDelayMs: 1 });

      assert.equal(written.calls, 4, "two chunks, two attempts each");
      assert.equal(calls("BatchWriteItem"), 4);
      assert.equal(written.unwritten.length, 30);
      assert.equal(written.unwritten[0]!.reason, `BatchWriteItem on ${name} failed: InternalServerError: Internal server error`);
    });

    it("retries the keys DynamoDB left unread, and reports those still unread after the last attempt", async function () {
      const name = await table();
      await batchPutItems(documents, name, "userId", fans(30));
      dynamo.proxy.requests.length = 0;
      dynamo.intercept = leaveUnprocessed("BatchGetItem", [12]);

      const read = await batchGetItems(
        documents,
        name,
        "userId",
        fans(30).map((fan) => fan.userId),
        undefined,
        { baseDelayMs: 1 },
      );

      assert.equal(read.calls, 2);
      assert.equal(read.items.length, 30);
      assert.deepEqual(read.unread, []);

      dynamo.intercept = leaveUnprocessed("BatchGetItem", [12, 12]);
      const partial = await batchGetItems(
        documents,
        name,
        "userId",
        fans(30).map((fan) => fan.userId),
        undefined,
        {
          attempts: 2,
          baseDelayMs: 1,
        },
      );
      assert.equal(partial.calls, 2);
      assert.equal(partial.items.length, 24);
      assert.equal(partial.unread.length, 6);
    });

    it("reads nothing for no keys", async function () {
      const name = await table();
      await documents.send(new PutCommand({ TableName: name, Item: { userId: "gu-1" } }));
      dynamo.proxy.requests.length = 0;
      assert.deepEqual(await batchGetItems(documents, name, "userId", []), { items: [], unread: [], calls: 0 });
      assert.deepEqual(await batchPutItems(documents, name, "userId", []), { unwritten: [], calls: 0 });
      assert.equal(dynamo.proxy.requests.length, 0);
    });
  });

  describe("retries", function () {
    it("waits a random delay within base·2^(attempt-1), capped", function () {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 30 }),
          fc.integer({ min: 1, max: 1000 }),
          fc.integer({ min: 1, max: 10_000 }),
          (attempt, base, cap) => {
            const delay = backoffDelay(attempt, base, cap);
            assert.ok(delay >= 0 && delay <= Math.min(cap, base * 2 ** (attempt - 1)), `${delay}`);
          },
        ),
      );
      assert.ok(backoffDelay(40, 100) <= 5000, "capped at 5 s by default");
    });

    it("runs an action until it succeeds, a failure is not worth retrying, or the attempts are spent", async function () {
      const waits: number[] = [];
      const sleep = async (ms: number) => {
        waits.push(ms);
      };
      let runs = 0;
      const flaky = async (attempt: number) => {
        runs += 1;
        if (attempt < 3) throw new Error(`attempt ${attempt}`);
        return "done";
      };
      assert.equal(await withRetries(flaky, { attempts: 3, baseDelayMs: 10, sleep }), "done");
      assert.equal(runs, 3);
      assert.equal(waits.length, 2);
      assert.ok(waits[0]! <= 10 && waits[1]! <= 20);

      runs = 0;
      await assert.rejects(withRetries(flaky, { attempts: 2, baseDelayMs: 1, sleep }), /^Error: attempt 2$/);
      assert.equal(runs, 2);

      runs = 0;
      await assert.rejects(
        withRetries(flaky, { attempts: 5, baseDelayMs: 1, sleep, retryable: (error) => !(error as Error).message.includes("1") }),
        /^Error: attempt 1$/,
      );
      assert.equal(runs, 1, "not retried");
    });

    it("maps with at most `limit` actions in flight, keeping the order of the results", async function () {
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 30 }),
          fc.integer({ min: 1, max: 6 }),
          async (delays, limit) => {
            let inFlight = 0;
            let most = 0;
            const results = await mapConcurrently(delays, limit, async (delay, index) => {
              inFlight += 1;
              most = Math.max(most, inFlight);
              await new Promise((resolve) => setTimeout(resolve, delay));
              inFlight -= 1;
              return `${index}:${delay}`;
            });
            assert.deepEqual(
              results,
              delays.map((delay, index) => `${index}:${delay}`),
            );
            assert.ok(most <= limit, `${most} in flight, limit ${limit}`);
            if (delays.length > 0) assert.equal(most, Math.min(limit, delays.length));
          },
        ),
        { numRuns: 30 },
      );
    });

    it("splits into chunks of at most `size`, all full but the last, in order", function () {
      fc.assert(
        fc.property(fc.array(fc.integer()), fc.integer({ min: 1, max: 30 }), (items, size) => {
          const chunks = chunk(items, size);
          assert.deepEqual(chunks.flat(), items);
          assert.equal(chunks.length, Math.ceil(items.length / size));
          chunks.forEach((part, index) => {
            assert.ok(part.length > 0);
            if (index < chunks.length - 1) assert.equal(part.length, size);
            else assert.ok(part.length <= size);
          });
        }),
      );
    });
  });
});
