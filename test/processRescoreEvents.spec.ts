/**
 * processRescoreEvents against real local SQS: a rescore record that TTL deletes from the
 * fan-identity table puts the fan back on the account-activity queue, once; nothing else on the
 * table's stream does, nothing else is a failure, and a malformed removal is parked in the failure
 * queue on its first delivery.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import { createProcessRescoreEvents, processRescoreEvents } from "../workers/processRescoreEvents";
import { failuresOf } from "./support/batch";
import { AWS_VARIABLES, environmentPerTest, LAMBDA_AWS } from "./support/environment";
import { fixture } from "./support/fixtures";
import { countOperations } from "./support/http";
import { type LocalSqs, startSqs } from "./support/localAws";
import { captureLogs, warnings } from "./support/logs";
import { parkedBySequenceNumber } from "./support/parked";
import { fanChange, rescoreRemoval, templates, TTL } from "./support/streamFixtures";
import {
  attribute,
  bodyOf,
  type KinesisFixtureEvent,
  recordLike,
  refuseEntries,
  sequenceNumber,
  seqs,
  serviceDown,
  sha256,
  SQS_INTERNAL_ERROR,
} from "./support/streams";

const ENVIRONMENT = [
  "ACTIVITY_QUEUE_URL",
  "FAILURE_QUEUE_URL",
  ...AWS_VARIABLES,
  "AWS_ENDPOINT_URL_SQS",
  "POWERTOOLS_LOG_LEVEL",
] as const;

const ttlRemoval = fixture<KinesisFixtureEvent>("kinesis-rescore-ttl-removal.json");
const template = templates.rescoreRemoval;

describe("processRescoreEvents", function () {
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

  const activityQueue = () => sqs.freshQueue("vfid-qa1-us-east-1-account-activity-rescore.fifo");

  function direct(queueUrl: string) {
    return createProcessRescoreEvents({
      env: { ACTIVITY_QUEUE_URL: queueUrl, FAILURE_QUEUE_URL: failureQueue },
      sqs: sqs.client,
      logger: new Logger({ serviceName: "processRescoreEvents", logLevel: "DEBUG" }),
    });
  }

  const sendCalls = () => countOperations(sqs.proxy).SendMessageBatch ?? 0;

  it("enqueues the fan of a rescore record TTL deleted, once, at 00:00 UTC of its date, deduplicated by its key", async function () {
    const queueUrl = await activityQueue();
    setWorkerEnvironment({
      ...LAMBDA_AWS,
      ACTIVITY_QUEUE_URL: queueUrl,
      FAILURE_QUEUE_URL: failureQueue,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      POWERTOOLS_LOG_LEVEL: "WARN",
    });
    const handler = processRescoreEvents.factory();

    const response = await handler(ttlRemoval);

    assert.deepEqual(response, { batchItemFailures: [] });
    assert.equal(sendCalls(), 1);
    const messages = await sqs.drain(queueUrl);
    assert.equal(messages.length, 1);
    assert.deepEqual(bodyOf(messages[0]!), {
      v: 1,
      globalUserId: "gu-a04c77e2",
      source: "rescore",
      action: "rescore",
      at: "2026-11-29T00:00:00.000Z",
    });
    assert.equal(attribute(messages[0]!, "MessageGroupId"), "gu-a04c77e2");
    assert.equal(attribute(messages[0]!, "MessageDeduplicationId"), sha256("rescore#gu-a04c77e2#2026-11-29"));
  });

  it("enqueues nothing, and fails nothing, for what is not a TTL deletion of a rescore record", async function () {
    const queueUrl = await activityQueue();
    const handler = direct(queueUrl);
    const cases: [unknown, string][] = [
      [rescoreRemoval("gu-1", "2026-11-29", { userIdentity: null }), "rescore record removed by a user, not by TTL"],
      [
        rescoreRemoval("gu-2", "2026-11-29", { userIdentity: { type: "Service", principalId: "backup.amazonaws.com" } }),
        "rescore record removed by a user, not by TTL",
      ],
      [
        (() => {
          const removal = rescoreRemoval("gu-3", "2026-11-29", { eventName: "INSERT", userIdentity: null });
          return { ...removal, dynamodb: { Keys: removal.dynamodb.Keys, NewImage: removal.dynamodb.OldImage } };
        })(),
        "INSERT is not a removal",
      ],
      [fanChange("MODIFY", null), "MODIFY is not a removal"],
      [fanChange("REMOVE", null), "removed record is of type score"],
      [fanChange("REMOVE", TTL), "removed record is of type score"],
      [{ ...fanChange("REMOVE", null), dynamodb: { Keys: { userId: { S: "gu-5d13f0b8" } } } }, "removal carries no old image"],
    ];

    const { result, logs } = await captureLogs(() =>
      handler({ Records: cases.map(([change], index) => recordLike(template, index, change)) }),
    );

    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(sendCalls(), 0);
    assert.deepEqual(warnings(logs), []);
    assert.deepEqual(
      logs.filter((line) => line.message === "record skipped").map((line) => [line.level, line.record, line.reason]),
      cases.map(([, reason], index) => ["INFO", sequenceNumber(index), reason]),
    );
    assert.deepEqual(await sqs.drain(queueUrl), []);
  });

  it("parks only the malformed records of a batch, each with what was wrong, and enqueues the rest", async function () {
    const queueUrl = await activityQueue();
    const handler = direct(queueUrl);
    const noOldImage = rescoreRemoval("gu-4", "2026-11-29");
    const records = [
      recordLike(template, 0, rescoreRemoval("gu-0", "2026-11-29")),
      recordLike(template, 1, undefined, { rawData: "not base64 at all" }),
      recordLike(template, 2, undefined, { rawData: Buffer.from("REMOVE rescore#gu-2").toString("base64") }),
      recordLike(template, 3, { eventName: "REMOVE", userIdentity: TTL }),
      recordLike(template, 4, { ...noOldImage, dynamodb: { Keys: noOldImage.dynamodb.Keys } }),
      recordLike(template, 5, rescoreRemoval("gu-5", "2026-11-29")),
      (() => {
        const removal = rescoreRemoval("gu-6", "2026-11-29");
        const oldImage = { ...removal.dynamodb.OldImage };
        delete oldImage.globalUserId;
        return recordLike(template, 6, { ...removal, dynamodb: { ...removal.dynamodb, OldImage: oldImage } });
      })(),
      recordLike(template, 7, rescoreRemoval("gu-7", "2026-02-30")),
      recordLike(template, 8, rescoreRemoval("gu-8", "2026-11-30")),
    ];

    const { result, logs } = await captureLogs(() => handler({ Records: records }));

    assert.deepEqual(result, { batchItemFailures: [] });
    const parked = parkedBySequenceNumber(await sqs.drain(failureQueue));
    assert.deepEqual([...parked.keys()].sort(), seqs([1, 2, 3, 4, 6, 7]));
    for (const [seq, { document }] of parked) {
      assert.deepEqual(
        document.record,
        records.find((record) => record.kinesis.sequenceNumber === seq),
      );
      assert.equal(document.worker, "processRescoreEvents");
    }
    assert.deepEqual(
      warnings(logs).map((line) => [line.message, line.record]),
      seqs([1, 2, 3, 4, 6, 7]).map((seq) => ["record parked", seq]),
    );
    const reasons = new Map([...parked].map(([seq, { document }]) => [seq, document.reason]));
    assert.equal(reasons.get(sequenceNumber(1)), "data is not base64");
    assert.match(reasons.get(sequenceNumber(2))!, /^data is not JSON/);
    assert.match(reasons.get(sequenceNumber(3))!, /^DynamoDB change record is not as expected: .*dynamodb/);
    assert.equal(reasons.get(sequenceNumber(4)), "rescore removal carries no old image (the stream must carry old images)");
    assert.match(reasons.get(sequenceNumber(6))!, /^rescore record is not as expected: globalUserId: /);
    assert.match(reasons.get(sequenceNumber(7))!, /^rescore record is not as expected: rescoreDate: expected YYYY-MM-DD/);
    assert.deepEqual(
      (await sqs.drain(queueUrl)).map((message) => [bodyOf(message).globalUserId, bodyOf(message).at]),
      [
        ["gu-0", "2026-11-29T00:00:00.000Z"],
        ["gu-5", "2026-11-29T00:00:00.000Z"],
        ["gu-8", "2026-11-30T00:00:00.000Z"],
      ],
    );
  });

  it("enqueues a removal Kinesis delivers twice once", async function () {
    const queueUrl = await activityQueue();
    const handler = direct(queueUrl);
    const event = { Records: [0, 1, 2].map((index) => recordLike(template, index, rescoreRemoval(`gu-${index}`, "2026-11-29"))) };

    await captureLogs(() => handler(event));
    // Local SQS remembers a deduplication id only while its message is in the queue: read afterwards.
    await captureLogs(() => handler(event));

    assert.equal(sendCalls(), 2);
    const messages = await sqs.drain(queueUrl);
    assert.deepEqual(messages.map((message) => bodyOf(message).globalUserId).sort(), ["gu-0", "gu-1", "gu-2"]);
  });

  for (const n of [1, 9, 10, 11, 25, 1000]) {
    it(`sends ${n} due rescores in ${Math.ceil(n / 10)} SendMessageBatch calls`, async function () {
      const queueUrl = await activityQueue();
      const handler = direct(queueUrl);
      const records = Array.from({ length: n }, (_, index) =>
        recordLike(template, index, rescoreRemoval(`gu-${String(index).padStart(4, "0")}`, "2026-11-29")),
      );

      const { result } = await captureLogs(() => handler({ Records: records }));

      assert.deepEqual(result, { batchItemFailures: [] });
      assert.equal(sendCalls(), Math.ceil(n / 10));
      const messages = await sqs.drain(queueUrl);
      assert.equal(messages.length, n);
      for (const message of messages) {
        const { globalUserId } = bodyOf(message);
        assert.equal(attribute(message, "MessageGroupId"), globalUserId);
        assert.equal(attribute(message, "MessageDeduplicationId"), sha256(`rescore#${globalUserId}#2026-11-29`));
      }
    });
  }

  it("fails the records whose messages SQS refuses, retrying what SQS could not take for a moment", async function () {
    const queueUrl = await activityQueue();
    const handler = direct(queueUrl);
    const event = {
      Records: [0, 1, 2, 3].map((index) => recordLike(template, index, rescoreRemoval(`gu-${index}`, "2026-11-29"))),
    };
    sqs.intercept = refuseEntries(
      { pick: (entry) => entry.MessageBody.includes('"gu-1"'), senderFault: false, times: 1 },
      { pick: (entry) => entry.MessageBody.includes('"gu-2"'), senderFault: true },
    );

    const { result, logs } = await captureLogs(() => handler(event));

    assert.deepEqual(failuresOf(result), seqs([2]));
    assert.match(String(warnings(logs)[0]!.reason), /^SQS refused the message: InvalidParameterValue/);
    assert.equal(sendCalls(), 2);
    assert.deepEqual((await sqs.drain(queueUrl)).map((message) => bodyOf(message).globalUserId).sort(), ["gu-0", "gu-1", "gu-3"]);
  });

  it("fails every due rescore while SQS is down", async function () {
    const queueUrl = await activityQueue();
    const handler = direct(queueUrl);
    sqs.intercept = serviceDown(["SendMessageBatch"], SQS_INTERNAL_ERROR);
    const event = { Records: [0, 1, 2].map((index) => recordLike(template, index, rescoreRemoval(`gu-${index}`, "2026-11-29"))) };

    const { result, logs } = await captureLogs(() => handler(event));

    assert.deepEqual(failuresOf(result), seqs([0, 1, 2]));
    assert.equal(logs.find((line) => line.message === "batch enqueued")?.sent, 0);
    sqs.intercept = () => undefined;
    assert.deepEqual(await sqs.drain(queueUrl), []);
  });

  it("fails at cold start, naming ACTIVITY_QUEUE_URL, when it is not a FIFO queue's URL", function () {
    setWorkerEnvironment({
      ACTIVITY_QUEUE_URL: "https://sqs.us-east-1.amazonaws.com/210987654321/vfid-qa1-us-east-1-on-demand-scoring",
      FAILURE_QUEUE_URL: failureQueue,
    });
    assert.throws(() => processRescoreEvents.factory(), /^Error: processRescoreEvents: environment .*ACTIVITY_QUEUE_URL: .*FIFO/);
  });
});
