/**
 * The correlation id rule (docs/following-an-activity.md): taken from the source record when it
 * carries a valid one, else made once from what identifies the record (so a redelivered record
 * keeps its id), a bad one replaced and the replacement logged without the value. Then the rule
 * at work in the enqueue workers against real local SQS: every message carries the id as the
 * String attribute `correlationId`, a Kinesis record's from its JSON, a Kafka record's from its
 * header or its value.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import * as fc from "fast-check";
import { createEnqueueFromActivityStream } from "../workers/enqueueFromActivityStream";
import { createEnqueueFromVfStream } from "../workers/enqueueFromVfStream";
import { createCorrelationRule, madeCorrelationId } from "../workers/shared/runtime/correlation";
import { activity, at, kafkaEvent, kafkaRecord, TOPIC } from "./support/kafka";
import { type LocalSqs, startSqs } from "./support/localAws";
import { captureLogs, type LogLine } from "./support/logs";
import { payloads, templates } from "./support/streamFixtures";
import { recordLike, sequenceNumber, sha256 } from "./support/streams";

/** What the rule says a made id is: the first 32 hex digits of the sha256 of the identity's parts, one per line. */
const madeFrom = (...identity: string[]) => sha256(identity.join("\n")).slice(0, 32);

/** A Kafka header as Lambda delivers it: the bytes of the value as numbers. */
const header = (name: string, value: string) => ({ [name]: [...Buffer.from(value, "utf8")] });

describe("correlation ids", function () {
  describe("the rule", function () {
    const correlationOf = createCorrelationRule();
    const identity = ["purchase", "arn:aws:kinesis:us-east-1:210987654321:stream/purchase-stream", sequenceNumber(7)];

    it("keeps an id the record carries", function () {
      for (const id of [
        "9f0c4e1a-5b7d-4c2e-8a31-6d2f0b9e7c54",
        "01JDQ8ZC3T7W0YB1XK9M5P2R4S",
        "1-5759e988-bd862e3fe1be46a994272793",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "checkout.v2:order_81723",
        "a".repeat(128),
      ]) {
        assert.deepEqual(correlationOf(id, identity), { id, origin: "carried" });
      }
    });

    it("makes one from the record's identity when it carries none", function () {
      for (const absent of [undefined, null, ""]) {
        assert.deepEqual(correlationOf(absent, identity), { id: madeFrom(...identity), origin: "made" });
      }
      assert.equal(
        madeCorrelationId("sqs", "69bc4bbd-ed69-4325-a434-85c3b428ceab"),
        madeFrom("sqs", "69bc4bbd-ed69-4325-a434-85c3b428ceab"),
      );
      assert.match(madeCorrelationId(...identity), /^[0-9a-f]{32}$/);
    });

    it("replaces one that is not an id by the made one, saying why without quoting it", function () {
      const bad: [unknown, RegExp][] = [
        ["a".repeat(129), /128/],
        ["has a space", /letters, digits/],
        ['"}, "level": "ERROR', /letters, digits/],
        ["line\nbreak", /letters, digits/],
        ["\u001b[31mred", /letters, digits/],
        ["café-42", /letters, digits/],
        ["-starts-with-a-dash", /starting with a letter or digit/],
        [42, /expected a string, got number/],
        [{ id: "x" }, /expected a string, got object/],
        [["x"], /expected a string, got array/],
      ];
      for (const [value, why] of bad) {
        const correlation = correlationOf(value, identity);
        assert.equal(correlation.origin, "replaced", String(value));
        assert.equal(correlation.id, madeFrom(...identity));
        const { problem } = correlation as { problem: string };
        assert.match(problem, /^correlationId: /);
        assert.match(problem, why);
        if (typeof value === "string") assert.ok(!problem.includes(value), `the problem does not quote ${JSON.stringify(value)}`);
      }
    });

    it("gives a record delivered again the same id, and records at other positions ids of their own", function () {
      const position = fc.tuple(
        fc.constantFrom("purchase", "demand", "kafka"),
        fc.string({ maxLength: 30 }),
        fc.string({ maxLength: 30 }),
      );
      fc.assert(
        fc.property(position, position, (a, b) => {
          const once = correlationOf(undefined, a).id;
          assert.equal(correlationOf(undefined, [...a]).id, once);
          assert.equal(correlationOf(undefined, b).id === once, a.join("\n") === b.join("\n"));
        }),
      );
    });
  });

  describe("in the enqueue workers, through local SQS", function () {
    let sqs: LocalSqs;

    before(async function () {
      sqs = await startSqs();
    });

    after(async function () {
      await sqs.close();
    });

    const logger = (serviceName: string) => new Logger({ serviceName, logLevel: "DEBUG" });
    const idOf = (message: { MessageAttributes?: Record<string, { DataType?: string; StringValue?: string }> }) => {
      assert.equal(message.MessageAttributes?.correlationId?.DataType, "String");
      return message.MessageAttributes.correlationId.StringValue;
    };
    const enqueued = (logs: readonly LogLine[]) =>
      logs.filter((line) => line.message === "activity enqueued").map((line) => [line.record, line.correlationId]);

    it("sends a Kinesis record's own id, makes one for a record without, and the same one when the record is retried", async function () {
      const queue = await sqs.freshQueue("vfid-qa1-us-east-1-on-demand-scoring-sqs");
      const handler = createEnqueueFromVfStream({
        env: {
          ON_DEMAND_QUEUE_URL: queue,
          FAILURE_QUEUE_URL: await sqs.freshQueue("vfid-qa1-us-east-1-scoring-stream-failures-sqs"),
        },
        sqs: sqs.client,
        logger: logger("enqueueFromVfStream"),
      });
      const batch = {
        Records: [
          recordLike(templates.vf, 1, { ...payloads.vf("gu-7f3c2a91"), correlationId: "vf-login-5b7d" }),
          recordLike(templates.vf, 2, payloads.vf("gu-0b5e9d44")),
        ],
      };
      const made = madeFrom("vf", templates.vf.eventSourceARN, sequenceNumber(2));

      const first = await captureLogs(() => handler(batch));
      // Lambda retries the batch (a standard queue keeps both deliveries).
      const retried = await captureLogs(() => handler(structuredClone(batch)));

      const messages = await sqs.drain(queue);
      assert.deepEqual(messages.map(idOf).sort(), ["vf-login-5b7d", "vf-login-5b7d", made, made].sort());
      for (const { logs } of [first, retried]) {
        assert.deepEqual(enqueued(logs), [
          [sequenceNumber(1), "vf-login-5b7d"],
          [sequenceNumber(2), made],
        ]);
      }
    });

    it("sends a Kafka record's id from its correlationId header, else from its value, else one made from its position", async function () {
      const queue = await sqs.freshQueue("vfid-qa1-us-east-1-account-activity-kafka.fifo");
      const handler = createEnqueueFromActivityStream({
        env: {
          ACTIVITY_QUEUE_URL: queue,
          FAILURE_QUEUE_URL: await sqs.freshQueue("vfid-qa1-us-east-1-scoring-stream-failures-sqs"),
        },
        sqs: sqs.client,
        logger: logger("enqueueFromActivityStream"),
      });
      const fromHeader = { ...kafkaRecord(0, 10, { ...activity("gu-h"), correlationId: "from-the-value" }) };
      fromHeader.headers = [...(fromHeader.headers ?? []), header("correlationId", "from-the-header")];
      const fromValue = kafkaRecord(0, 11, { ...activity("gu-v"), correlationId: "from-the-value-only" });
      const none = kafkaRecord(1, 12, activity("gu-n"));
      const badHeader = { ...kafkaRecord(1, 13, activity("gu-b")) };
      badHeader.headers = [header("correlationId", "not an id; DROP TABLE")];

      const { result, logs } = await captureLogs(() => handler(kafkaEvent([fromHeader, fromValue, none, badHeader])));

      assert.deepEqual(result, { batchItemFailures: [] }, "a bad id never fails the record");
      const byFan = new Map((await sqs.drain(queue)).map((message) => [JSON.parse(message.Body!).globalUserId, idOf(message)]));
      assert.deepEqual(
        byFan,
        new Map([
          ["gu-h", "from-the-header"],
          ["gu-v", "from-the-value-only"],
          ["gu-n", madeFrom(TOPIC, "1", "12")],
          ["gu-b", madeFrom(TOPIC, "1", "13")],
        ]),
      );
      const replaced = logs.filter((line) => line.message === "correlation id replaced");
      assert.deepEqual(
        replaced.map((line) => [line.level, line.record, line.correlationId]),
        [["WARN", at(1, 13), madeFrom(TOPIC, "1", "13")]],
      );
      assert.ok(!JSON.stringify(logs).includes("DROP TABLE"), "the bad value is never logged");
    });
  });
});
