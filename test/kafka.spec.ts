/**
 * Reading the Kafka user-activity topic, without I/O: the event envelope, each record's value as
 * an activity, when the fan acted, the FIFO deduplication id, and the Kafka partial batch response.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import * as fc from "fast-check";
import { createUserActivityReader } from "../workers/enqueueFromActivityStream";
import { type KafkaItemIdentifier, partialBatchResponse } from "../workers/shared/runtime/batch";
import { decodeBase64Json, parseEvent } from "../workers/shared/runtime/records";
import { activityMessageSchema, activityTimeSchema, isScorable, SCORABLE_ACTIONS } from "../workers/shared/scoring/activity";
import {
  type KafkaEvent,
  kafkaActivityTime,
  kafkaEventSchema,
  type KafkaRecord,
  kafkaRecordsInOrder,
  planKafkaActivity,
} from "../workers/shared/scoring/kafka";
import {
  activity,
  at,
  deduplicationIdOf,
  docsEvent,
  kafkaEvent,
  type KafkaFixtureRecord,
  kafkaRecord,
  powertoolsEvent,
  TOPIC,
} from "./support/kafka";
import { captureLogs } from "./support/logs";

const NOW = new Date("2026-11-25T12:00:00.000Z");
const parse = (event: unknown): KafkaEvent =>
  parseEvent(kafkaEventSchema(), event, "enqueueFromActivityStream", "self-managed Kafka");
const asRecord = (record: KafkaFixtureRecord) => record as unknown as KafkaRecord;
const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

describe("the Kafka user-activity topic", function () {
  describe("events", function () {
    it("take both spellings of the self-managed source, and list records partition by partition, each by offset", function () {
      const docs = kafkaRecordsInOrder(parse(docsEvent()));
      assert.deepEqual(
        docs.map(({ id }) => id),
        [at(0, 48213), at(0, 48214), at(3, 17502)],
      );
      assert.deepEqual(
        kafkaRecordsInOrder(parse(powertoolsEvent())).map(({ id }) => id),
        [at(1, 9021)],
      );
      const swapped = { ...docsEvent(), eventSource: "aws:SelfManagedKafka" };
      assert.deepEqual(kafkaRecordsInOrder(parse(swapped)), docs);
    });

    it("take records without key or value, and a tombstone's null value, leaving them to fail one by one", function () {
      const event = kafkaEvent([
        { ...kafkaRecord(0, 1, {}), key: null, value: null },
        kafkaRecord(0, 2, {}, { noValue: true }),
        { ...kafkaRecord(0, 3, activity("gu-1")), key: undefined, headers: undefined },
      ]);
      assert.equal(kafkaRecordsInOrder(parse(event)).length, 3);
    });

    it("are refused as a whole, naming the worker, when not a self-managed Kafka event (a wiring fault)", function () {
      for (const [event, problem] of [
        [{ Records: [{ kinesis: { data: "e30=", sequenceNumber: "1" } }] }, /eventSource/],
        [{ ...docsEvent(), eventSource: "aws:kafka" }, /eventSource/],
        [{ ...docsEvent(), records: { [`${TOPIC}-0`]: [{ topic: TOPIC, partition: 0, value: "e30=" }] } }, /offset/],
        [{ ...docsEvent(), records: [] }, /records/],
      ] as const) {
        assert.throws(
          () => parse(event),
          (error: Error) =>
            error.message.startsWith("enqueueFromActivityStream: not a self-managed Kafka event: ") &&
            problem.test(error.message),
        );
      }
    });
  });

  describe("a record's value", function () {
    const read = (record: KafkaFixtureRecord) => createUserActivityReader()(asRecord(record));

    it("is a scorable activity when its result is success and its action is scorable, and is skipped, saying why, otherwise", function () {
      for (const action of SCORABLE_ACTIONS) {
        assert.deepEqual(read(kafkaRecord(0, 1, activity("gu-7f3c2a91", action))), {
          kind: "activity",
          globalUserId: "gu-7f3c2a91",
          action,
          timestamp: "2026-11-24T18:09:15.370Z",
        });
        assert.deepEqual(read(kafkaRecord(0, 1, activity("gu-7f3c2a91", action, "failure"))), {
          kind: "skip",
          reason: `${action} result is failure, not success`,
        });
      }
      assert.deepEqual(read(kafkaRecord(0, 1, activity("gu-1", "logout"))), {
        kind: "skip",
        reason: "action logout is not scorable",
      });
      assert.deepEqual(read(kafkaRecord(0, 1, activity("gu-1", "LOGIN"))), {
        kind: "skip",
        reason: "action LOGIN is not scorable",
      });
      assert.deepEqual(read(kafkaRecord(0, 1, activity("gu-1", "login", "SUCCESS"))), {
        kind: "skip",
        reason: "login result is SUCCESS, not success",
      });
    });

    it("fails when it is not an activity, saying what was wrong", function () {
      const { metadata: _metadata, ...bare } = activity("gu-1");
      const cases: [KafkaFixtureRecord, RegExp | string][] = [
        [kafkaRecord(0, 1, undefined, { rawValue: null }), "value is null (a tombstone), not an activity"],
        [kafkaRecord(0, 1, undefined, { noValue: true }), "record has no value"],
        [kafkaRecord(0, 1, undefined, { rawValue: "%%% not base64 %%%" }), "value is not base64"],
        [kafkaRecord(0, 1, undefined, { rawValue: "eyJrZXkiOiJ2YWx1ZSJ9=" }), "value is not base64"],
        [kafkaRecord(0, 1, undefined, { rawValue: base64('{"globalUserId": "gu-1", ') }), /^value is not JSON \(/],
        [kafkaRecord(0, 1, undefined, { rawValue: "" }), /^value is not JSON \(/],
        [
          kafkaRecord(0, 1, undefined, { rawValue: Buffer.from([0x7b, 0xff, 0xfe, 0x7d]).toString("base64") }),
          "value is not UTF-8",
        ],
        [
          kafkaRecord(0, 1, { ...bare, globalUserId: undefined }),
          /^activity is not as expected: globalUserId: .*expected string, received undefined/,
        ],
        [kafkaRecord(0, 1, { ...bare, globalUserId: "" }), /^activity is not as expected: globalUserId: /],
        [kafkaRecord(0, 1, { ...bare, globalUserId: "gu 1" }), /globalUserId: expected a globalUserId/],
        [kafkaRecord(0, 1, { ...bare, globalUserId: "gu#1" }), /globalUserId: expected a globalUserId/],
        [kafkaRecord(0, 1, { ...bare, globalUserId: 1234 }), /globalUserId: .*expected string, received number/],
        [kafkaRecord(0, 1, { ...bare, action: 7 }), /^activity is not as expected: action: .*expected string/],
        [kafkaRecord(0, 1, { ...bare, result: true }), /^activity is not as expected: result: .*expected string/],
        [kafkaRecord(0, 1, { ...bare, result: undefined }), /^activity is not as expected: result: /],
        [kafkaRecord(0, 1, { ...bare, timestamp: { iso: "2026-11-24T18:09:15Z" } }), /^activity is not as expected: timestamp: /],
        [kafkaRecord(0, 1, { ...bare, metadata: ["fan-portal"] }), /^activity is not as expected: metadata: /],
        [kafkaRecord(0, 1, { ...bare, metadata: "fan-portal" }), /^activity is not as expected: metadata: /],
        [kafkaRecord(0, 1, ["gu-1", "login", "success"]), /^activity is not as expected: \(root\): /],
        [kafkaRecord(0, 1, null), /^activity is not as expected: \(root\): /],
        [kafkaRecord(0, 1, "gu-1"), /^activity is not as expected: \(root\): /],
      ];
      for (const [record, expected] of cases) {
        const reading = read(record);
        const label = `${String(record.value)} → ${JSON.stringify(reading)}`;
        assert.equal(reading.kind, "fail", label);
        if (typeof expected === "string") assert.equal((reading as { reason: string }).reason, expected, label);
        else assert.match((reading as { reason: string }).reason, expected, label);
      }
    });

    it("takes optional fields given as null as absent, and fields it does not know as they come", function () {
      const reading = read(kafkaRecord(0, 1, { ...activity("gu-1"), timestamp: null, metadata: null, sessionId: "s-81f2" }));
      assert.deepEqual(reading, { kind: "activity", globalUserId: "gu-1", action: "login", timestamp: null });
      const { metadata: _metadata, timestamp: _timestamp, ...bare } = activity("gu-2");
      assert.deepEqual(read(kafkaRecord(0, 1, bare)), {
        kind: "activity",
        globalUserId: "gu-2",
        action: "login",
        timestamp: undefined,
      });
    });

    it("is read as isScorable says, for any activity", function () {
      const reader = createUserActivityReader();
      const action = fc.oneof(fc.constantFrom(...SCORABLE_ACTIONS), fc.string({ maxLength: 20 }));
      const result = fc.oneof(
        fc.constant("success"),
        fc.constantFrom("failure", "error", "Success", ""),
        fc.string({ maxLength: 10 }),
      );
      const globalUserId = fc.stringMatching(/^gu-[0-9a-f]{8}$/);
      fc.assert(
        fc.property(globalUserId, action, result, fc.option(fc.oneof(fc.string(), fc.integer())), (id, act, res, timestamp) => {
          const reading = reader(asRecord(kafkaRecord(0, 1, { globalUserId: id, action: act, result: res, timestamp })));
          if (isScorable({ action: act, result: res })) {
            assert.deepEqual(reading, { kind: "activity", globalUserId: id, action: act, timestamp });
          } else assert.equal(reading.kind, "skip");
        }),
        { numRuns: 500 },
      );
    });

    it("never throws, whatever the bytes: it reads an activity, skips one, or fails saying why", function () {
      const reader = createUserActivityReader();
      const bytes = fc.uint8Array({ maxLength: 64 }).map((array) => Buffer.from(array).toString("base64"));
      const json = fc.jsonValue().map((value) => base64(JSON.stringify(value) ?? "null"));
      fc.assert(
        fc.property(fc.oneof(bytes, json, fc.string(), fc.constant(null)), (value) => {
          const reading = reader(asRecord({ ...kafkaRecord(0, 1, {}), value }));
          assert.ok(reading.kind === "activity" || reading.reason.length > 0, JSON.stringify(reading));
        }),
        { numRuns: 1000 },
      );
    });

    it("is decoded as base64 UTF-8 JSON, round trip for any JSON document", function () {
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const decoded = decodeBase64Json(base64(JSON.stringify(value)), "value");
          assert.ok(decoded.ok);
          assert.deepEqual(decoded.value, JSON.parse(JSON.stringify(value)));
        }),
      );
      assert.deepEqual(decodeBase64Json("eyJrZXkiOiJ2YWx1ZSJ9", "value"), { ok: true, value: { key: "value" } });
      assert.match(
        (decodeBase64Json("SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg==", "value") as { reason: string }).reason,
        /^value is not JSON \(Unexpected token 'H'/,
      );
    });
  });

  describe("when the fan acted", function () {
    const recordTime = Date.parse("2026-11-24T18:09:15.412Z");

    it("is the activity's own time (ISO 8601 with a zone, or epoch milliseconds), else the record's timestamp, else now", function () {
      assert.equal(kafkaActivityTime("2026-11-24T19:09:15.370+01:00", recordTime, NOW), "2026-11-24T18:09:15.370Z");
      assert.equal(kafkaActivityTime(Date.parse("2026-11-24T18:15:00.500Z"), recordTime, NOW), "2026-11-24T18:15:00.500Z");
      for (const unusable of [
        undefined,
        null,
        "yesterday",
        "2026-11-24T18:09:15",
        "2026-02-30T00:00:00Z",
        "1795543755370",
        0,
        -5,
        1e20,
        Number.NaN,
      ]) {
        assert.equal(kafkaActivityTime(unusable, recordTime, NOW), "2026-11-24T18:09:15.412Z", String(unusable));
      }
      // Kafka writes -1 for a record without a timestamp.
      for (const none of [undefined, -1, 0, 1e20])
        assert.equal(kafkaActivityTime(undefined, none, NOW), NOW.toISOString(), String(none));
    });

    it("is always a date-time the queues' messages take", function () {
      const atSchema = activityTimeSchema();
      const time = fc.oneof(
        fc.anything(),
        fc.double(),
        fc.integer({ min: -1, max: 300_000_000_000_000 }),
        fc.date().map((date) => date.getTime()),
      );
      fc.assert(
        fc.property(
          time,
          fc.option(fc.oneof(fc.double(), fc.integer({ min: -1, max: 300_000_000_000_000 }))),
          (timestamp, recorded) => {
            const result = kafkaActivityTime(timestamp, recorded ?? undefined, NOW);
            assert.ok(atSchema.safeParse(result).success, `${fc.stringify(timestamp)}, ${fc.stringify(recorded)} → ${result}`);
          },
        ),
        { numRuns: 2000 },
      );
    });
  });

  describe("the message of a scorable record", function () {
    it("is the activity from source kafka, deduplicated by the sha256 of the record's topic, partition and offset", function () {
      const record = kafkaRecord(3, 17502, activity("gu-a04c77e2", "update_phone"));
      const planned = planKafkaActivity(
        at(3, 17502),
        asRecord(record),
        { kind: "activity", globalUserId: "gu-a04c77e2", action: "update_phone", timestamp: "2026-11-24T18:15:00.500Z" },
        NOW,
      );
      assert.deepEqual(planned, {
        id: `${TOPIC}-3@17502`,
        message: { v: 1, globalUserId: "gu-a04c77e2", source: "kafka", action: "update_phone", at: "2026-11-24T18:15:00.500Z" },
        deduplicationId: deduplicationIdOf({ topic: TOPIC, partition: 3, offset: 17502 }),
        // No id on the record: one made from the same topic, partition and offset.
        correlation: { id: deduplicationIdOf({ topic: TOPIC, partition: 3, offset: 17502 }).slice(0, 32), origin: "made" },
      });
      assert.ok(activityMessageSchema().safeParse(planned.message).success);
    });

    it("has a deduplication id of its own for every record, and the same one each time the record comes again", function () {
      const position = fc.record({
        topic: fc.constantFrom(TOPIC, "user-activity-prod1", "user-activity-qa"),
        partition: fc.integer({ min: 0, max: 200 }),
        offset: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
      });
      const reading = { kind: "activity", globalUserId: "gu-1", action: "login" } as const;
      const plan = (p: { topic: string; partition: number; offset: number }) =>
        planKafkaActivity(
          { partition: `${p.topic}-${p.partition}`, offset: p.offset },
          asRecord({ ...kafkaRecord(0, 0, {}), ...p }),
          reading,
          NOW,
        ).deduplicationId;
      fc.assert(
        fc.property(position, position, (a, b) => {
          assert.equal(plan(a), plan({ ...a }));
          assert.equal(plan(a), deduplicationIdOf(a));
          const same = a.topic === b.topic && a.partition === b.partition && a.offset === b.offset;
          assert.equal(plan(a) === plan(b), same);
        }),
      );
    });
  });

  describe("the partial batch response", function () {
    it("names each failed record once by its partition and offset, in the order first reported, each logged with what was wrong", async function () {
      const logger = new Logger({ serviceName: "enqueueFromActivityStream", logLevel: "DEBUG" });
      const failures: { id: KafkaItemIdentifier; reason: string }[] = [
        { id: at(0, 48214), reason: "value is not base64" },
        { id: at(3, 48214), reason: "value is null (a tombstone), not an activity" },
        { id: { ...at(0, 48214) }, reason: "SQS refused the message: InvalidParameterValue" },
        { id: at(0, 48215), reason: "record has no value" },
      ];
      const { result, logs } = await captureLogs(async () => partialBatchResponse(failures, logger));
      assert.deepEqual(result, {
        batchItemFailures: [{ itemIdentifier: at(0, 48214) }, { itemIdentifier: at(3, 48214) }, { itemIdentifier: at(0, 48215) }],
      });
      assert.deepEqual(
        logs.map((line) => [line.level, line.message, line.record, line.reason]),
        [
          ["WARN", "record failed", at(0, 48214), "value is not base64"],
          ["WARN", "record failed", at(3, 48214), "value is null (a tombstone), not an activity"],
          ["WARN", "record failed", at(0, 48215), "record has no value"],
        ],
      );
      assert.equal(
        JSON.stringify(result),
        `{"batchItemFailures":[{"itemIdentifier":{"partition":"${TOPIC}-0","offset":48214}},{"itemIdentifier":{"partition":"${TOPIC}-3","offset":48214}},{"itemIdentifier":{"partition":"${TOPIC}-0","offset":48215}}]}`,
      );
    });
  });
});
