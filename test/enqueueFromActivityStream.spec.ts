/**
 * enqueueFromActivityStream against real local SQS: what the Kafka user-activity topic's records
 * become on the account-activity FIFO queue, what it costs at the service, that a malformed record
 * is parked in the failure queue on its first delivery, and that a misbehaving queue fails only the
 * records it concerns, by partition and offset.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import { createEnqueueFromActivityStream, enqueueFromActivityStream } from "../workers/enqueueFromActivityStream";
import { SCORABLE_ACTIONS } from "../workers/shared/scoring/activity";
import { AWS_VARIABLES, environmentPerTest, LAMBDA_AWS } from "./support/environment";
import { countOperations } from "./support/http";
import {
  activity,
  at,
  deduplicationIdOf,
  docsEvent,
  kafkaEvent,
  kafkaFailuresOf,
  kafkaRecord,
  powertoolsEvent,
  TOPIC,
  valueOf,
} from "./support/kafka";
import { type LocalSqs, startSqs } from "./support/localAws";
import { captureLogs, linesAt } from "./support/logs";
import { parkedLines, parkedRecordsOf } from "./support/parked";
import { attribute, bodyOf, refuseEntries, serviceDown, SQS_INTERNAL_ERROR } from "./support/streams";

const ENVIRONMENT = [
  "ACTIVITY_QUEUE_URL",
  "FAILURE_QUEUE_URL",
  ...AWS_VARIABLES,
  "AWS_ENDPOINT_URL_SQS",
  "POWERTOOLS_LOG_LEVEL",
] as const;

/** The clock of direct tests: the day after the fixtures' activity. */
const NOW = new Date("2026-11-25T12:00:00.000Z");

describe("enqueueFromActivityStream", function () {
  let sqs: LocalSqs;
  const setWorkerEnvironment = environmentPerTest(ENVIRONMENT);

  before(async function () {
    sqs = await startSqs();
  });

  after(async function () {
    await sqs.close();
  });

  /** Each test's failure queue, where the worker parks what it cannot enqueue. */
  let failureQueue = "";

  beforeEach(async function () {
    sqs.intercept = () => undefined;
    failureQueue = await sqs.freshQueue("vfid-qa1-us-east-1-scoring-stream-failures-sqs");
  });

  const activityQueue = () => sqs.freshQueue("vfid-qa1-us-east-1-account-activity-kafka.fifo");

  /** The worker built directly on the local queue's client, logging everything. */
  const direct = (queueUrl: string) =>
    createEnqueueFromActivityStream({
      env: { ACTIVITY_QUEUE_URL: queueUrl, FAILURE_QUEUE_URL: failureQueue },
      sqs: sqs.client,
      logger: new Logger({ serviceName: "enqueueFromActivityStream", logLevel: "DEBUG" }),
      now: () => NOW,
    });

  const sendCalls = () => countOperations(sqs.proxy).SendMessageBatch ?? 0;

  describe("through its factory, as deployed", function () {
    it("sends the scorable activity of the docs-shaped event to the FIFO queue, grouped by fan and deduplicated by record", async function () {
      const queue = await activityQueue();
      setWorkerEnvironment({
        ...LAMBDA_AWS,
        AWS_ENDPOINT_URL_SQS: sqs.endpoint,
        ACTIVITY_QUEUE_URL: queue,
        FAILURE_QUEUE_URL: failureQueue,
        POWERTOOLS_LOG_LEVEL: "WARN",
      });
      const handler = enqueueFromActivityStream.factory();

      const response = await handler(docsEvent());

      assert.deepEqual(response, { batchItemFailures: [] });
      assert.equal(sendCalls(), 1);
      const messages = await sqs.drain(queue);
      assert.deepEqual(
        messages.map((message) => [
          bodyOf(message),
          attribute(message, "MessageGroupId"),
          attribute(message, "MessageDeduplicationId"),
        ]),
        [
          [
            { v: 1, globalUserId: "gu-7f3c2a91", source: "kafka", action: "login", at: "2026-11-24T18:09:15.370Z" },
            "gu-7f3c2a91",
            deduplicationIdOf({ topic: TOPIC, partition: 0, offset: 48213 }),
          ],
          [
            // The activity's timestamp in epoch milliseconds.
            { v: 1, globalUserId: "gu-a04c77e2", source: "kafka", action: "update_phone", at: "2026-11-24T18:15:00.500Z" },
            "gu-a04c77e2",
            deduplicationIdOf({ topic: TOPIC, partition: 3, offset: 17502 }),
          ],
        ],
      );
    });

    it("fails at cold start, naming ACTIVITY_QUEUE_URL, when the queue is not a FIFO queue or not set", async function () {
      const standard = await sqs.freshQueue("vfid-qa1-us-east-1-on-demand-scoring-kafka");
      for (const value of [standard, undefined]) {
        setWorkerEnvironment({
          ...LAMBDA_AWS,
          AWS_ENDPOINT_URL_SQS: sqs.endpoint,
          ACTIVITY_QUEUE_URL: value,
          FAILURE_QUEUE_URL: failureQueue,
        });
        assert.throws(
          () => enqueueFromActivityStream.factory(),
          (error: Error) =>
            error.message.startsWith("enqueueFromActivityStream: environment") && /ACTIVITY_QUEUE_URL: /.test(error.message),
        );
      }
    });

    it("declares the access it needs (its archive and packages are checked with every worker's in infrastructure.spec)", function () {
      assert.deepEqual(enqueueFromActivityStream.contract.access, {
        lambda_sqs_producer: { actions: ["sqs:SendMessage"], on: "the account-activity queue" },
        parked_records_producer: {
          actions: ["sqs:SendMessage"],
          on: "the stream failure queue (the mapping's on-failure destination)",
        },
      });
    });
  });

  describe("events", function () {
    it("are read alike in both spellings of the event source", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);

      const powertools = await captureLogs(() => handler(powertoolsEvent()));
      const respelled = await captureLogs(() => handler({ ...docsEvent(), eventSource: "aws:SelfManagedKafka" }));
      const docs = await captureLogs(() => handler({ ...powertoolsEvent(), eventSource: "SelfManagedKafka" }));

      for (const run of [powertools, respelled, docs]) assert.deepEqual(run.result, { batchItemFailures: [] });
      const messages = (await sqs.drain(queue)).map(bodyOf).sort((a, b) => a.globalUserId.localeCompare(b.globalUserId));
      // The Powertools-shaped record twice (same record: SQS keeps one), the docs-shaped event's two activities once.
      assert.deepEqual(messages, [
        // Given with a +01:00 offset, carried in UTC.
        { v: 1, globalUserId: "gu-5d13f0b8", source: "kafka", action: "verify_otp", at: "2026-11-24T18:20:07.861Z" },
        { v: 1, globalUserId: "gu-7f3c2a91", source: "kafka", action: "login", at: "2026-11-24T18:09:15.370Z" },
        { v: 1, globalUserId: "gu-a04c77e2", source: "kafka", action: "update_phone", at: "2026-11-24T18:15:00.500Z" },
      ]);
    });

    it("that are not self-managed Kafka events fail the invocation, naming the worker, and send nothing", async function () {
      const handler = direct(await activityQueue());
      await assert.rejects(
        handler({ Records: [{ kinesis: { data: "e30=", sequenceNumber: "1" } }] }),
        /^Error: enqueueFromActivityStream: not a self-managed Kafka event: eventSource/,
      );
      await assert.rejects(handler({ ...docsEvent(), eventSource: "aws:kafka" }), /not a self-managed Kafka event: eventSource/);
      assert.equal(sendCalls(), 0);
    });

    it("without records send nothing", async function () {
      const handler = direct(await activityQueue());
      const { result } = await captureLogs(() => handler({ ...docsEvent(), records: {} }));
      assert.deepEqual(result, { batchItemFailures: [] });
      assert.equal(sendCalls(), 0);
    });
  });

  describe("activities", function () {
    it("are enqueued for every scorable action with result success, and skipped, logged at INFO with why, otherwise", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);
      const actions = [...SCORABLE_ACTIONS];
      const records = [
        ...actions.map((action, index) => kafkaRecord(0, 100 + index, activity(`gu-ok-${index}`, action))),
        ...actions.map((action, index) => kafkaRecord(1, 200 + index, activity(`gu-failed-${index}`, action, "failure"))),
        kafkaRecord(2, 300, activity("gu-other-1", "logout")),
        kafkaRecord(2, 301, activity("gu-other-2", "view_event")),
      ];

      const { result, logs } = await captureLogs(() => handler(kafkaEvent(records)));

      assert.deepEqual(result, { batchItemFailures: [] });
      assert.equal(sendCalls(), 1);
      const messages = (await sqs.drain(queue)).map(bodyOf);
      assert.deepEqual(
        messages.map((message) => [message.globalUserId, message.action]),
        actions.map((action, index) => [`gu-ok-${index}`, action]),
      );
      assert.deepEqual(
        logs.filter((line) => line.message === "record skipped").map((line) => [line.level, line.record, line.reason]),
        [
          ...actions.map((action, index) => ["INFO", at(1, 200 + index), `${action} result is failure, not success`]),
          ["INFO", at(2, 300), "action logout is not scorable"],
          ["INFO", at(2, 301), "action view_event is not scorable"],
        ],
      );
      assert.deepEqual(linesAt(logs, "WARN"), []);
      const summary = logs.find((line) => line.message === "batch enqueued");
      assert.deepEqual(
        [summary?.records, summary?.activities, summary?.sent, summary?.skipped, summary?.failed, summary?.sendCalls],
        [20, 9, 9, 11, 0, 1],
      );
    });

    it("are dated by their own time, else by the Kafka record's timestamp, else now", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);
      const recorded = Date.parse("2026-11-24T18:30:00.250Z");
      const { metadata: _metadata, timestamp: _timestamp, ...untimed } = activity("gu-3");
      await captureLogs(() =>
        handler(
          kafkaEvent([
            kafkaRecord(0, 1, activity("gu-1", "login", "success", "2026-11-24T13:09:15.370-05:00"), { timestamp: recorded }),
            kafkaRecord(0, 2, activity("gu-2", "login", "success", Date.parse("2026-11-24T18:20:00.000Z")), {
              timestamp: recorded,
            }),
            kafkaRecord(0, 3, untimed, { timestamp: recorded }),
            kafkaRecord(0, 4, activity("gu-4", "login", "success", "not a time"), { timestamp: recorded }),
            kafkaRecord(0, 5, activity("gu-5", "login", "success", null), { timestamp: -1 }),
            kafkaRecord(0, 6, { ...untimed, globalUserId: "gu-6" }, { timestamp: null }),
          ]),
        ),
      );
      const messages = (await sqs.drain(queue)).map(bodyOf);
      assert.deepEqual(Object.fromEntries(messages.map((message) => [message.globalUserId, message.at])), {
        "gu-1": "2026-11-24T18:09:15.370Z",
        "gu-2": "2026-11-24T18:20:00.000Z",
        "gu-3": "2026-11-24T18:30:00.250Z",
        "gu-4": "2026-11-24T18:30:00.250Z",
        "gu-5": NOW.toISOString(),
        "gu-6": NOW.toISOString(),
      });
    });
  });

  describe("malformed records", function () {
    /** The parked records of the failure queue, by `<partition>@<offset>`. */
    async function parkedByPosition() {
      return new Map(
        parkedRecordsOf(await sqs.drain(failureQueue)).map((parked) => {
          const source = parked.document.source as { kind: string; topic: string; partition: number; offset: number };
          assert.equal(source.kind, "kafka");
          return [`${source.topic}-${source.partition}@${source.offset}`, parked];
        }),
      );
    }

    it("are parked one by one on their first delivery, each with its record and what was wrong, while the rest reaches the queue", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);
      const good = (partition: number, offset: number) =>
        kafkaRecord(partition, offset, activity(`gu-good-${partition}-${offset}`));
      const { globalUserId: _globalUserId, ...anonymous } = activity("gu-x");
      const event = kafkaEvent([
        good(0, 10),
        kafkaRecord(0, 11, anonymous),
        kafkaRecord(0, 12, activity("gu with space")),
        good(0, 13),
        kafkaRecord(1, 20, undefined, { rawValue: "%%% not base64 %%%" }),
        kafkaRecord(1, 21, undefined, { rawValue: Buffer.from('{"globalUserId": "gu-1", ').toString("base64") }),
        kafkaRecord(1, 22, undefined, { rawValue: null }),
        kafkaRecord(1, 23, undefined, { noValue: true }),
        good(1, 24),
        kafkaRecord(2, 30, { ...activity("gu-2"), action: 42 }),
        kafkaRecord(2, 31, { ...activity("gu-3"), metadata: "fan-portal" }),
        kafkaRecord(2, 32, activity("gu-4", "login", "failure")),
        good(2, 33),
      ]);

      const { result, logs } = await captureLogs(() => handler(event));

      // Nothing for Lambda to retry: the partitions move on.
      assert.deepEqual(result, { batchItemFailures: [] });
      const parked = await parkedByPosition();
      const poison = [at(0, 11), at(0, 12), at(1, 20), at(1, 21), at(1, 22), at(1, 23), at(2, 30), at(2, 31)];
      assert.deepEqual([...parked.keys()].sort(), poison.map(({ partition, offset }) => `${partition}@${offset}`).sort());
      for (const { partition, offset } of poison) {
        const { document, attributes } = parked.get(`${partition}@${offset}`)!;
        // The record exactly as Lambda delivered it, and where it was read.
        const delivered = event.records[partition]!.find((record) => record.offset === offset);
        assert.deepEqual(document.record, delivered);
        assert.deepEqual(document.source, {
          kind: "kafka",
          topic: TOPIC,
          partition: Number(partition.slice(TOPIC.length + 1)),
          offset,
        });
        assert.deepEqual(
          [document.worker, document.failureReason, document.parkedAt],
          ["enqueueFromActivityStream", "invalid", NOW.toISOString()],
        );
        assert.deepEqual(attributes, { parkedBy: "enqueueFromActivityStream", failureReason: "invalid" });
      }
      const reason = (partition: number, offset: number) => parked.get(`${TOPIC}-${partition}@${offset}`)!.document.reason;
      assert.match(
        reason(0, 11),
        /^activity is not as expected: globalUserId: Invalid input: expected string, received undefined$/,
      );
      assert.match(reason(0, 12), /^activity is not as expected: globalUserId: expected a globalUserId/);
      assert.equal(reason(1, 20), "value is not base64");
      assert.match(reason(1, 21), /^value is not JSON \(/);
      assert.equal(reason(1, 22), "value is null (a tombstone), not an activity");
      assert.equal(reason(1, 23), "record has no value");
      assert.match(reason(2, 30), /^activity is not as expected: action: Invalid input: expected string, received number$/);
      assert.match(reason(2, 31), /^activity is not as expected: metadata: /);
      // One WARN line each, naming the record by partition and offset, with its reason.
      const warnings = linesAt(logs, "WARN");
      assert.ok(warnings.every((line) => line.message === "record parked"));
      assert.deepEqual(
        parkedLines(logs).map((line) => line.record),
        poison,
      );
      const summary = logs.find((line) => line.message === "batch enqueued");
      assert.deepEqual([summary?.parked, summary?.skipped, summary?.failed], [8, 1, 0]);
      const messages = (await sqs.drain(queue)).map(bodyOf);
      assert.deepEqual(
        messages.map((message) => message.globalUserId),
        ["gu-good-0-10", "gu-good-0-13", "gu-good-1-24", "gu-good-2-33"],
      );
    });

    it("are parked naming the topic and partition they came from, across several partitions and topics", async function () {
      const handler = direct(await activityQueue());
      const other = { ...kafkaRecord(0, 7, undefined, { rawValue: null }), topic: "user-activity-replay-qa1" };
      const event = kafkaEvent([
        kafkaRecord(5, 900, undefined, { rawValue: "!" }),
        kafkaRecord(5, 901, activity("gu-1")),
        kafkaRecord(5, 902, undefined, { rawValue: "!" }),
        kafkaRecord(0, 3, undefined, { rawValue: "!" }),
        other,
        kafkaRecord(12, 0, undefined, { rawValue: "!" }),
      ]);

      const { result } = await captureLogs(() => handler(event));

      assert.deepEqual(result, { batchItemFailures: [] });
      assert.deepEqual([...(await parkedByPosition()).keys()].sort(), [
        `${TOPIC}-0@3`,
        `${TOPIC}-12@0`,
        `${TOPIC}-5@900`,
        `${TOPIC}-5@902`,
        "user-activity-replay-qa1-0@7",
      ]);
    });

    it("fall back to failures by partition and offset, in batch order, while the failure queue is unreachable", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);
      const failures = new URL(failureQueue).pathname;
      sqs.intercept = serviceDown(["SendMessageBatch"], SQS_INTERNAL_ERROR, (request) => request.body.includes(failures));
      const event = kafkaEvent([
        kafkaRecord(1, 40, undefined, { rawValue: "!" }),
        kafkaRecord(0, 8, activity("gu-1")),
        kafkaRecord(0, 9, undefined, { rawValue: null }),
      ]);

      const { result, logs } = await captureLogs(() => handler(event));

      assert.deepEqual(kafkaFailuresOf(result), [at(1, 40), at(0, 9)]);
      for (const line of logs.filter((candidate) => candidate.message === "record failed"))
        assert.match(String(line.reason), /; not parked: SendMessageBatch to .* failed: InternalError: /);
      assert.deepEqual(
        (await sqs.drain(queue)).map(bodyOf).map((body) => body.globalUserId),
        ["gu-1"],
      );
    });
  });

  describe("at the service", function () {
    for (const n of [1, 10, 11, 95, 1000]) {
      it(`sends ${n} activities in ceil(${n}/10) = ${Math.ceil(n / 10)} SendMessageBatch calls, every one reaching the queue`, async function () {
        const queue = await activityQueue();
        const handler = direct(queue);
        // Spread over four partitions, fans keyed to partitions as producers key them.
        const records = Array.from({ length: n }, (_, index) =>
          kafkaRecord(
            index % 4,
            1000 + index,
            activity(`gu-${String(index % 97).padStart(4, "0")}`, SCORABLE_ACTIONS[index % 9]),
          ),
        );

        const { result, logs } = await captureLogs(() => handler(kafkaEvent(records)));

        assert.deepEqual(result, { batchItemFailures: [] });
        assert.equal(sendCalls(), Math.ceil(n / 10));
        const summary = logs.find((line) => line.message === "batch enqueued");
        assert.equal(summary?.sent, n);
        assert.equal(summary?.sendCalls, Math.ceil(n / 10));
        const messages = await sqs.drain(queue);
        assert.equal(messages.length, n);
        assert.deepEqual(
          messages.map((message) => attribute(message, "MessageDeduplicationId")).sort(),
          records.map(deduplicationIdOf).sort(),
        );
      });
    }

    it("adds no duplicate when a batch of 1,000 is delivered again: 100 SendMessageBatch calls each time, 1,000 messages in all", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);
      const fan = (index: number) => `gu-${String(index % 250).padStart(4, "0")}`;
      const records = Array.from({ length: 1000 }, (_, index) =>
        kafkaRecord(
          (index % 250) % 6,
          5000 + index,
          // A second apart: topic order is time order.
          activity(fan(index), "login", "success", new Date(Date.UTC(2026, 10, 24, 18) + index * 1000).toISOString()),
        ),
      );
      const event = kafkaEvent(records);

      const first = await captureLogs(() => handler(event));
      assert.deepEqual(first.result, { batchItemFailures: [] });
      assert.equal(sendCalls(), 100);
      // Lambda delivers the batch again (say the function timed out). Read the queue only afterwards:
      // local SQS, unlike SQS, forgets a deduplication id once its message is deleted.
      sqs.proxy.requests.length = 0;
      const second = await captureLogs(() => handler(event));
      assert.deepEqual(second.result, { batchItemFailures: [] });
      assert.equal(sendCalls(), 100);

      const messages = await sqs.drain(queue);
      assert.equal(messages.length, 1000, "SQS dropped the redelivered messages as duplicates");
      assert.equal(new Set(messages.map((message) => attribute(message, "MessageDeduplicationId"))).size, 1000);
      for (const message of messages) assert.equal(attribute(message, "MessageGroupId"), bodyOf(message).globalUserId);
      // Within a fan's group, messages arrive in the order of the topic.
      const byFan = new Map<string, string[]>();
      for (const { globalUserId, at: time } of messages.map(bodyOf))
        byFan.set(globalUserId, [...(byFan.get(globalUserId) ?? []), time]);
      assert.equal(byFan.size, 250);
      for (const [fanId, times] of byFan) assert.deepEqual(times, [...times].sort(), fanId);
    });
  });

  describe("when SQS misbehaves", function () {
    const batch = (count: number) =>
      kafkaEvent(Array.from({ length: count }, (_, index) => kafkaRecord(index % 2, 700 + index, activity(`gu-${index}`))));

    it("fails only the record whose message SQS refuses (SenderFault true), by partition and offset", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);
      sqs.intercept = refuseEntries({ pick: (entry) => /"gu-(3|12)"/.test(entry.MessageBody), senderFault: true });

      const { result, logs } = await captureLogs(() => handler(batch(15)));

      // Batch order: partition 0's records (the even ones) come first.
      assert.deepEqual(kafkaFailuresOf(result), [at(0, 712), at(1, 703)]);
      assert.equal(sendCalls(), 2, "a sender fault is not retried");
      for (const line of linesAt(logs, "WARN"))
        assert.match(String(line.reason), /^SQS refused the message: InvalidParameterValue: /);
      assert.deepEqual(
        linesAt(logs, "ERROR").map((line) => [line.message, line.count]),
        [["activity messages not sent", 2]],
      );
      assert.equal((await sqs.drain(queue)).length, 13);
    });

    it("retries entries SQS could not take for a moment (SenderFault false) and fails none", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);
      sqs.intercept = refuseEntries({ pick: (entry) => /"gu-(3|7|11)"/.test(entry.MessageBody), senderFault: false, times: 1 });

      const { result } = await captureLogs(() => handler(batch(15)));

      assert.deepEqual(result, { batchItemFailures: [] });
      assert.equal(sendCalls(), 2 + 2, "two batches, each retried once for its refused entries");
      assert.equal((await sqs.drain(queue)).length, 15);
    });

    it("fails every scorable record while SQS is down, and none that was skipped", async function () {
      const queue = await activityQueue();
      const handler = direct(queue);
      sqs.intercept = serviceDown(["SendMessageBatch"], SQS_INTERNAL_ERROR);
      const event = kafkaEvent([
        kafkaRecord(0, 1, activity("gu-1")),
        kafkaRecord(0, 2, activity("gu-2", "login", "failure")),
        kafkaRecord(1, 3, activity("gu-3", "verify_otp_mfa")),
      ]);

      const { result, logs } = await captureLogs(() => handler(event));

      assert.deepEqual(kafkaFailuresOf(result), [at(0, 1), at(1, 3)]);
      for (const line of linesAt(logs, "WARN"))
        assert.match(String(line.reason), /^SendMessageBatch to .* failed: InternalError: /);
      assert.equal(logs.find((line) => line.message === "batch enqueued")?.sent, 0);
      sqs.intercept = () => undefined;
      assert.deepEqual(await sqs.drain(queue), []);
    });
  });

  it("keeps the fixtures' values as the activities this project's topic carries", function () {
    const [login, failedLogin] = docsEvent().records[`${TOPIC}-0`]!;
    assert.deepEqual(valueOf(login!), {
      globalUserId: "gu-7f3c2a91",
      action: "login",
      result: "success",
      timestamp: "2026-11-24T18:09:15.370Z",
      metadata: { clientId: "fan-portal", ipCountry: "US", mfa: false },
    });
    assert.equal((valueOf(failedLogin!) as { result: string }).result, "failure");
  });
});
