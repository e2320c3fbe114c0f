/**
 * The stream enqueue workers against real local SQS and DynamoDB: what each stream's records
 * become on the scoring queues and in the fan-identity table, what it costs at the service, that
 * a malformed record is parked in the failure queue on its first delivery, and that a misbehaving
 * dependency fails only the records it concerns.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import * as fc from "fast-check";
import { createEnqueueFromDemandStream, enqueueFromDemandStream } from "../workers/enqueueFromDemandStream";
import { createEnqueueFromPurchaseStream, enqueueFromPurchaseStream } from "../workers/enqueueFromPurchaseStream";
import { createEnqueueFromSQJourneyStream, enqueueFromSQJourneyStream } from "../workers/enqueueFromSQJourneyStream";
import { createEnqueueFromVfStream, enqueueFromVfStream } from "../workers/enqueueFromVfStream";
import type { BatchResponse } from "../workers/shared/runtime/batch";
import { type ActivityStreamDependencies, createStreamEnqueuer } from "../workers/shared/scoring/enqueuer";
import { failuresOf } from "./support/batch";
import { AWS_VARIABLES, environmentPerTest, LAMBDA_AWS } from "./support/environment";
import { fixture } from "./support/fixtures";
import { countOperations } from "./support/http";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { captureLogs, linesAt, warnings } from "./support/logs";
import { parkedBySequenceNumber, parkedLines, parkedRecordsOf } from "./support/parked";
import { payloads, templates } from "./support/streamFixtures";
import {
  attribute,
  bodyOf,
  DYNAMO_INTERNAL_ERROR,
  type KinesisFixtureEvent,
  payloadOf,
  recordLike,
  refuseEntries,
  sequenceNumber,
  seqs,
  serviceDown,
  sha256,
  SQS_INTERNAL_ERROR,
} from "./support/streams";

const ENVIRONMENT = [
  "ON_DEMAND_QUEUE_URL",
  "FAILURE_QUEUE_URL",
  "ACTIVITY_QUEUE_URL",
  "TABLE_NAME",
  "RESCORE_DELAY_DAYS",
  ...AWS_VARIABLES,
  "AWS_ENDPOINT_URL_SQS",
  "AWS_ENDPOINT_URL_DYNAMODB",
  "POWERTOOLS_LOG_LEVEL",
] as const;

/** The clock of direct tests: a day after the fixtures' activity. */
const NOW = new Date("2026-11-25T12:00:00.000Z");

const { vf, demand, purchase, sqJourney } = templates;

/** The activity-stream workers (FIFO queue and rescores), each with what its fixture must produce. */
const activityWorkers = [
  {
    worker: enqueueFromDemandStream,
    create: createEnqueueFromDemandStream,
    source: "demand",
    fixtureFile: "kinesis-demand-insert.json",
    template: demand,
    payload: payloads.demand,
    fixture: { globalUserId: "gu-2b91d0e4", at: "2026-11-24T09:15:55.370Z", rescoreDate: "2026-11-29" },
  },
  {
    worker: enqueueFromPurchaseStream,
    create: createEnqueueFromPurchaseStream,
    source: "purchase",
    fixtureFile: "kinesis-purchase-success.json",
    template: purchase,
    payload: payloads.purchase,
    fixture: { globalUserId: "gu-a04c77e2", at: "2026-11-24T09:20:11.004Z", rescoreDate: "2026-11-29" },
  },
  {
    worker: enqueueFromSQJourneyStream,
    create: createEnqueueFromSQJourneyStream,
    source: "sqJourney",
    fixtureFile: "kinesis-sq-journey.json",
    template: sqJourney,
    payload: payloads.sqJourney,
    // The event's own time, given with a +01:00 offset, in UTC.
    fixture: { globalUserId: "gu-5d13f0b8", at: "2026-11-24T08:30:45.880Z", rescoreDate: "2026-11-29" },
  },
] as const;

describe("stream enqueue workers", function () {
  let sqs: LocalSqs;
  let dynamo: LocalDynamo;
  let queues = 0;
  const setWorkerEnvironment = environmentPerTest(ENVIRONMENT);

  before(async function () {
    [sqs, dynamo] = await Promise.all([startSqs(), startDynamo()]);
  });

  after(async function () {
    await Promise.all([sqs.close(), dynamo.close()]);
  });

  beforeEach(function () {
    sqs.intercept = () => undefined;
    dynamo.intercept = () => undefined;
  });

  /** The failure queue of the latest resources(), which every worker below parks in. */
  let failureQueueUrl = "";

  /** Fresh queues and table, and the service call counts from now on. */
  async function resources() {
    queues += 1;
    const [activityQueue, onDemandQueue, failureQueue, table] = await Promise.all([
      sqs.createQueue(`vfid-qa1-us-east-1-account-activity-${queues}.fifo`),
      sqs.createQueue(`vfid-qa1-us-east-1-on-demand-scoring-${queues}`),
      sqs.createQueue(`vfid-qa1-us-east-1-scoring-stream-failures-${queues}`),
      dynamo.createFanTable(`vfid-qa1-us-east-1-fan-identity-${queues}`),
    ]);
    sqs.proxy.requests.length = 0;
    dynamo.proxy.requests.length = 0;
    failureQueueUrl = failureQueue;
    return { activityQueue: activityQueue, onDemandQueue: onDemandQueue, failureQueue, table };
  }

  /** Sets the environment a deployed worker gets, pointed at the local services. */
  function deploy(variables: Record<string, string>) {
    setWorkerEnvironment({
      ...LAMBDA_AWS,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      POWERTOOLS_LOG_LEVEL: "WARN",
      FAILURE_QUEUE_URL: failureQueueUrl,
      ...variables,
    });
  }

  const logger = (serviceName: string) => new Logger({ serviceName, logLevel: "DEBUG" });

  /** A worker built directly on the local services' clients. */
  function direct(
    create: (deps: ActivityStreamDependencies) => (event: unknown) => Promise<BatchResponse>,
    env: { activityQueue: string; table: string },
    name = "test",
  ) {
    return create({
      env: {
        ACTIVITY_QUEUE_URL: env.activityQueue,
        TABLE_NAME: env.table,
        RESCORE_DELAY_DAYS: 5,
        FAILURE_QUEUE_URL: failureQueueUrl,
      },
      sqs: sqs.client,
      dynamo: dynamo.documents,
      logger: logger(name),
      now: () => NOW,
    });
  }

  const sendCalls = () => countOperations(sqs.proxy).SendMessageBatch ?? 0;
  const putCalls = () => countOperations(dynamo.proxy).PutItem ?? 0;

  describe("enqueueFromVfStream", function () {
    it("sends a VF login to the on-demand standard queue, without group or deduplication id, and schedules no rescore", async function () {
      const { onDemandQueue, table } = await resources();
      deploy({ ON_DEMAND_QUEUE_URL: onDemandQueue });
      const handler = enqueueFromVfStream.factory();

      const response = await handler(fixture<KinesisFixtureEvent>("kinesis-vf-login.json"));

      assert.deepEqual(response, { batchItemFailures: [] });
      const messages = await sqs.drain(onDemandQueue);
      assert.equal(messages.length, 1);
      assert.deepEqual(bodyOf(messages[0]!), {
        v: 1,
        globalUserId: "gu-7f3c2a91",
        source: "vf",
        action: "vfLogin",
        at: "2026-11-24T09:15:02.417Z",
      });
      assert.equal(attribute(messages[0]!, "MessageGroupId"), undefined);
      assert.equal(attribute(messages[0]!, "MessageDeduplicationId"), undefined);
      assert.deepEqual(countOperations(sqs.proxy), { SendMessageBatch: 1, ReceiveMessage: 2, DeleteMessageBatch: 1 });
      assert.deepEqual(countOperations(dynamo.proxy), {});
      assert.deepEqual(await dynamo.scan(table), []);
    });

    for (const n of [1, 9, 10, 11, 25, 1000]) {
      it(`sends ${n} logins in ceil(${n}/10) = ${Math.ceil(n / 10)} SendMessageBatch calls, every one reaching the queue`, async function () {
        const { onDemandQueue } = await resources();
        const handler = createEnqueueFromVfStream({
          env: { ON_DEMAND_QUEUE_URL: onDemandQueue, FAILURE_QUEUE_URL: failureQueueUrl },
          sqs: sqs.client,
          logger: logger("enqueueFromVfStream"),
          now: () => NOW,
        });
        const records = Array.from({ length: n }, (_, index) => recordLike(vf, index, payloads.vf(`gu-${index % 97}`)));

        const { result, logs } = await captureLogs(() => handler({ Records: records }));

        assert.deepEqual(result, { batchItemFailures: [] });
        assert.equal(sendCalls(), Math.ceil(n / 10));
        const messages = await sqs.drain(onDemandQueue);
        assert.equal(messages.length, n);
        assert.deepEqual(
          messages.map((message) => bodyOf(message).globalUserId).sort(),
          records.map((_, index) => `gu-${index % 97}`).sort(),
        );
        const summary = logs.find((line) => line.message === "batch enqueued");
        assert.equal(summary?.sent, n);
        assert.equal(summary?.sendCalls, Math.ceil(n / 10));
      });
    }

    it("skips an event that is not a vfLogin, logged at INFO with why, not a failure", async function () {
      const { onDemandQueue } = await resources();
      const handler = createEnqueueFromVfStream({
        env: { ON_DEMAND_QUEUE_URL: onDemandQueue, FAILURE_QUEUE_URL: failureQueueUrl },
        sqs: sqs.client,
        logger: logger("enqueueFromVfStream"),
      });
      const { result, logs } = await captureLogs(() =>
        handler({
          Records: [
            recordLike(vf, 1, { ...(payloadOf(vf) as object), type: "vfRegistration" }),
            recordLike(vf, 2, payloadOf(vf)),
          ],
        }),
      );

      assert.deepEqual(result, { batchItemFailures: [] });
      const skipped = logs.filter((line) => line.message === "record skipped");
      assert.deepEqual(
        skipped.map((line) => [line.level, line.record, line.reason]),
        [["INFO", sequenceNumber(1), "event type vfRegistration is not vfLogin"]],
      );
      assert.equal((await sqs.drain(onDemandQueue)).length, 1);
    });
  });

  for (const spec of activityWorkers) {
    describe(spec.worker.contract.name, function () {
      it(`sends its fixture's ${spec.source} activity to the account-activity FIFO queue and schedules one rescore 5 days later`, async function () {
        const { activityQueue, table } = await resources();
        deploy({ ACTIVITY_QUEUE_URL: activityQueue, TABLE_NAME: table });
        const handler = spec.worker.factory();
        const event = fixture<KinesisFixtureEvent>(spec.fixtureFile);
        const before = Date.now();

        const response = await handler(event);

        assert.deepEqual(response, { batchItemFailures: [] });
        const [record] = event.Records;
        const messages = await sqs.drain(activityQueue);
        assert.equal(messages.length, 1);
        const [message] = messages;
        assert.deepEqual(bodyOf(message!), {
          v: 1,
          globalUserId: spec.fixture.globalUserId,
          source: spec.source,
          action: spec.source,
          at: spec.fixture.at,
        });
        assert.equal(attribute(message!, "MessageGroupId"), spec.fixture.globalUserId);
        const identity = `${spec.source}\n${record!.eventSourceARN}\n${record!.kinesis.sequenceNumber}`;
        assert.equal(attribute(message!, "MessageDeduplicationId"), sha256(identity));
        // The fixture carries no correlation id: one is made from the same identity, and sent as a String attribute.
        const correlationId = sha256(identity).slice(0, 32);
        assert.deepEqual(message!.MessageAttributes, { correlationId: { DataType: "String", StringValue: correlationId } });

        const items = await dynamo.scan(table);
        assert.equal(items.length, 1);
        const { dateCreated, ...item } = items[0] as { dateCreated: string };
        assert.deepEqual(item, {
          userId: `rescore#${spec.fixture.globalUserId}#${spec.fixture.rescoreDate}`,
          type: "rescore",
          globalUserId: spec.fixture.globalUserId,
          rescoreDate: spec.fixture.rescoreDate,
          source: spec.source,
          expiresOn: Date.parse(`${spec.fixture.rescoreDate}T00:00:00Z`) / 1000,
          correlationId,
        });
        assert.ok(Date.parse(dateCreated) >= before - 1000 && Date.parse(dateCreated) <= Date.now(), dateCreated);
        assert.equal(sendCalls(), 1);
        assert.equal(putCalls(), 1);
      });

      it("fails at cold start, naming ACTIVITY_QUEUE_URL, when the queue is not a FIFO queue", async function () {
        const { onDemandQueue, table } = await resources();
        deploy({ ACTIVITY_QUEUE_URL: onDemandQueue, TABLE_NAME: table });
        assert.throws(
          () => spec.worker.factory(),
          (error: Error) =>
            error.message.startsWith(`${spec.worker.contract.name}: environment`) &&
            /ACTIVITY_QUEUE_URL: .*FIFO/.test(error.message),
        );
      });
    });
  }

  describe("the account-activity workers at the service", function () {
    it("sends 1,000 queue-journey activities of 250 fans in 100 SendMessageBatch calls and writes 250 rescores; a second run writes and enqueues nothing new", async function () {
      const { activityQueue, table } = await resources();
      deploy({ ACTIVITY_QUEUE_URL: activityQueue, TABLE_NAME: table, RESCORE_DELAY_DAYS: "5", POWERTOOLS_LOG_LEVEL: "INFO" });
      const handler = enqueueFromSQJourneyStream.factory();
      const fan = (index: number) => `gu-${String(index % 250).padStart(4, "0")}`;
      const event = {
        Records: Array.from({ length: 1000 }, (_, index) =>
          recordLike(
            sqJourney,
            index,
            // A minute apart, all on 24 November: stream order is time order.
            payloads.sqJourney(fan(index), new Date(Date.UTC(2026, 10, 24) + index * 60_000).toISOString()),
          ),
        ),
      };

      const first = await captureLogs(() => handler(event));

      assert.deepEqual(first.result, { batchItemFailures: [] });
      assert.equal(sendCalls(), 100);
      assert.equal(putCalls(), 250, "one PutItem per fan and date");
      const items = await dynamo.scan(table);
      assert.equal(items.length, 250);
      for (const item of items) {
        assert.equal(item.userId, `rescore#${String(item.globalUserId)}#2026-11-29`);
        assert.equal(item.expiresOn, Date.UTC(2026, 10, 29) / 1000);
        assert.equal(item.source, "sqJourney");
      }
      // Kinesis redelivers the batch (say a later record failed). Read the queue only afterwards:
      // local SQS, unlike SQS, forgets a deduplication id once its message is deleted.
      sqs.proxy.requests.length = 0;
      dynamo.proxy.requests.length = 0;
      const second = await captureLogs(() => handler(event));

      assert.deepEqual(second.result, { batchItemFailures: [] });
      assert.equal(sendCalls(), 100);
      assert.equal(putCalls(), 250, "one conditional PutItem per fan and date, each finding the record there");
      assert.equal((await dynamo.scan(table)).length, 250, "no second rescore record");
      const summary = second.logs.find((line) => line.message === "batch enqueued");
      assert.equal(summary?.rescoresScheduled, 0);
      assert.equal(summary?.rescoresExisting, 250);

      const messages = await sqs.drain(activityQueue);
      assert.equal(messages.length, 1000, "SQS dropped the redelivered messages as duplicates");
      assert.deepEqual(
        messages.map((message) => attribute(message, "MessageDeduplicationId")).sort(),
        event.Records.map((record) => sha256(`sqJourney\n${record.eventSourceARN}\n${record.kinesis.sequenceNumber}`)).sort(),
      );
      for (const message of messages) assert.equal(attribute(message, "MessageGroupId"), bodyOf(message).globalUserId);
      // Within a fan's group, messages arrive in the order of the stream.
      const byFan = new Map<string, string[]>();
      for (const { globalUserId, at } of messages.map(bodyOf)) byFan.set(globalUserId, [...(byFan.get(globalUserId) ?? []), at]);
      assert.equal(byFan.size, 250);
      for (const [fanId, times] of byFan) assert.deepEqual(times, [...times].sort(), fanId);
    });

    it("for any batch size, makes ceil(n/10) SendMessageBatch calls and one PutItem per distinct fan and date", async function () {
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 12 }), async (n, fans) => {
          const { activityQueue, table } = await resources();
          const handler = direct(createEnqueueFromPurchaseStream, { activityQueue, table });
          const records = Array.from({ length: n }, (_, index) =>
            recordLike(purchase, index, payloads.purchase(`gu-${index % fans}`, `2026-11-2${index % 2}T10:00:00Z`)),
          );
          const distinct = new Set(records.map((_, index) => `${index % fans}/${index % 2}`)).size;

          const { result: response } = await captureLogs(() => handler({ Records: records }));

          assert.deepEqual(response, { batchItemFailures: [] });
          assert.equal(sendCalls(), Math.ceil(n / 10));
          assert.equal(putCalls(), distinct);
          assert.equal((await dynamo.scan(table)).length, distinct);
          assert.equal((await sqs.drain(activityQueue)).length, n);
        }),
        { numRuns: 15 },
      );
    });
  });

  describe("malformed records", function () {
    it("are parked one by one on their first delivery, each with its payload and what was wrong, while the rest of the batch reaches the queue and the table", async function () {
      const { activityQueue, failureQueue, table } = await resources();
      const handler = direct(createEnqueueFromPurchaseStream, { activityQueue, table }, "enqueueFromPurchaseStream");
      const good = (index: number) => recordLike(purchase, index, payloads.purchase(`gu-good-${index}`));
      const event = {
        Records: [
          good(0),
          recordLike(purchase, 1, undefined, { rawData: "%%% not base64 %%%" }),
          good(2),
          recordLike(purchase, 3, undefined, { rawData: Buffer.from('{"purchaseId": "ord-1", ').toString("base64") }),
          recordLike(purchase, 4, { ...(payloadOf(purchase) as object), customer: { country: "US" } }),
          recordLike(purchase, 5, { ...(payloadOf(purchase) as object), customer: { globalUserId: 1234 } }),
          recordLike(purchase, 6, { ...(payloadOf(purchase) as object), customer: undefined }),
          recordLike(purchase, 7, { ...(payloadOf(purchase) as object), status: "PAYMENT_DECLINED" }),
          good(8),
        ],
      };

      const { result, logs } = await captureLogs(() => handler(event));

      // Nothing for Lambda to retry: the shard moves on.
      assert.deepEqual(result, { batchItemFailures: [] });
      const parked = parkedBySequenceNumber(await sqs.drain(failureQueue));
      assert.deepEqual([...parked.keys()].sort(), seqs([1, 3, 4, 5, 6]));
      for (const index of [1, 3, 4, 5, 6]) {
        const { document, attributes } = parked.get(sequenceNumber(index))!;
        // The record exactly as Lambda delivered it, and where it was read.
        assert.deepEqual(document.record, event.Records[index]);
        assert.deepEqual(document.source, {
          kind: "kinesis",
          eventSourceARN: event.Records[index]!.eventSourceARN,
          sequenceNumber: sequenceNumber(index),
        });
        assert.equal(document.worker, "enqueueFromPurchaseStream");
        assert.equal(document.failureReason, "invalid");
        assert.equal(document.parkedAt, NOW.toISOString());
        assert.deepEqual(attributes, { parkedBy: "enqueueFromPurchaseStream", failureReason: "invalid" });
      }
      const reasons = new Map([...parked].map(([seq, { document }]) => [seq, document.reason]));
      assert.equal(reasons.get(sequenceNumber(1)), "data is not base64");
      assert.match(reasons.get(sequenceNumber(3))!, /^data is not JSON/);
      assert.match(reasons.get(sequenceNumber(4))!, /^purchase event is not as expected: customer\.globalUserId: /);
      assert.match(reasons.get(sequenceNumber(5))!, /customer\.globalUserId: .*expected string/);
      assert.match(reasons.get(sequenceNumber(6))!, /^purchase event is not as expected: customer: /);
      // Each logged once at WARN, with its reason and never its payload.
      assert.deepEqual(
        warnings(logs).map((line) => [line.message, line.record, line.reason]),
        [1, 3, 4, 5, 6].map((index) => ["record parked", sequenceNumber(index), reasons.get(sequenceNumber(index))]),
      );
      for (const line of parkedLines(logs)) assert.ok(!JSON.stringify(line).includes(event.Records[4]!.kinesis.data));
      const summary = logs.find((line) => line.message === "batch enqueued");
      assert.deepEqual([summary?.parked, summary?.skipped, summary?.failed], [5, 1, 0]);
      const messages = await sqs.drain(activityQueue);
      assert.deepEqual(messages.map((message) => bodyOf(message).globalUserId).sort(), ["gu-good-0", "gu-good-2", "gu-good-8"]);
      assert.deepEqual((await dynamo.scan(table)).map((item) => item.globalUserId).sort(), [
        "gu-good-0",
        "gu-good-2",
        "gu-good-8",
      ]);
    });

    it("of a VF login and of a demand change are parked alone too", async function () {
      const { activityQueue, onDemandQueue, failureQueue, table } = await resources();
      const vfHandler = createEnqueueFromVfStream({
        env: { ON_DEMAND_QUEUE_URL: onDemandQueue, FAILURE_QUEUE_URL: failureQueueUrl },
        sqs: sqs.client,
        logger: logger("enqueueFromVfStream"),
      });
      const vfRun = await captureLogs(() =>
        vfHandler({
          Records: [
            recordLike(vf, 0, { type: "vfLogin", timestamp: "2026-11-24T09:15:02.417Z" }),
            recordLike(vf, 1, payloadOf(vf)),
            recordLike(vf, 2, { type: "vfLogin", globalUserId: ["gu-1"] }),
          ],
        }),
      );
      assert.deepEqual(vfRun.result, { batchItemFailures: [] });
      const vfParked = parkedBySequenceNumber(await sqs.drain(failureQueue));
      assert.deepEqual(
        seqs([0, 2]).map((seq) => [vfParked.get(seq)?.document.worker, vfParked.get(seq)?.document.reason]),
        [
          [
            "enqueueFromVfStream",
            "VF login event is not as expected: globalUserId: Invalid input: expected string, received undefined",
          ],
          [
            "enqueueFromVfStream",
            "VF login event is not as expected: globalUserId: Invalid input: expected string, received array",
          ],
        ],
      );
      assert.equal((await sqs.drain(onDemandQueue)).length, 1);

      const demandHandler = direct(createEnqueueFromDemandStream, { activityQueue, table });
      const demandRun = await captureLogs(() =>
        demandHandler({
          Records: [
            recordLike(demand, 0, payloads.demand("gu-d1")),
            recordLike(demand, 1, {
              ...payloads.demand("gu-d2"),
              dynamodb: { Keys: { userId: { S: "gu-d2" } }, NewImage: { globalUserId: { BOOL: true } } },
            }),
            recordLike(demand, 2, payloads.demand("gu-d3", "REMOVE")),
            recordLike(demand, 3, { ...payloads.demand("gu-d4"), dynamodb: "nope" }),
          ],
        }),
      );
      assert.deepEqual(demandRun.result, { batchItemFailures: [] });
      const demandParked = parkedBySequenceNumber(await sqs.drain(failureQueue));
      assert.deepEqual([...demandParked.keys()].sort(), seqs([1, 3]));
      assert.match(
        demandParked.get(sequenceNumber(1))!.document.reason,
        /^demand INSERT new image is not as expected: globalUserId/,
      );
      assert.match(demandParked.get(sequenceNumber(3))!.document.reason, /^DynamoDB change record is not as expected: dynamodb/);
      assert.deepEqual(
        (await sqs.drain(activityQueue)).map((message) => bodyOf(message).globalUserId),
        ["gu-d1"],
      );
    });

    it("are parked alone even when reading one throws", async function () {
      const { onDemandQueue, failureQueue } = await resources();
      const handler = createStreamEnqueuer(
        { worker: "enqueueFromVfStream", sqs: sqs.client, failureQueueUrl: failureQueue, logger: logger("enqueueFromVfStream") },
        {
          source: "vf",
          action: "vfLogin",
          queueUrl: onDemandQueue,
          fifo: false,
          read: (record) => {
            if (record.kinesis.sequenceNumber === sequenceNumber(1)) throw new TypeError("Cannot read properties of null");
            return { kind: "activity", globalUserId: "gu-1" };
          },
        },
      );
      const { result } = await captureLogs(() => handler({ Records: [0, 1, 2].map((index) => recordLike(vf, index, {})) }));
      assert.deepEqual(result, { batchItemFailures: [] });
      const parked = parkedRecordsOf(await sqs.drain(failureQueue));
      assert.deepEqual(
        parked.map(({ document }) => document.reason),
        ["record could not be read: Cannot read properties of null"],
      );
      assert.equal((await sqs.drain(onDemandQueue)).length, 2);
    });

    it("that are not a Kinesis event at all fail the invocation, naming the worker", async function () {
      const { activityQueue, table } = await resources();
      const handler = direct(createEnqueueFromSQJourneyStream, { activityQueue, table }, "enqueueFromSQJourneyStream");
      await assert.rejects(
        handler({ Records: [{ messageId: "69bc4bbd", body: "{}" }] }),
        /^Error: enqueueFromSQJourneyStream: not a Kinesis event: Records\.0\.kinesis/,
      );
      assert.equal(sendCalls(), 0);
    });
  });

  describe("dates", function () {
    it("take the arrival in Kinesis when the event's timestamp is missing or invalid, and now when there is no arrival either", async function () {
      const { activityQueue, table } = await resources();
      const handler = direct(createEnqueueFromSQJourneyStream, { activityQueue, table });
      const untimed: Record<string, unknown> = { ...payloads.sqJourney("gu-2") };
      delete untimed.timestamp;
      await captureLogs(() =>
        handler({
          Records: [
            recordLike(sqJourney, 0, payloads.sqJourney("gu-1", "2026-11-24T25:00:00Z"), {
              arrival: Date.parse("2026-11-24T08:30:46.021Z") / 1000,
            }),
            recordLike(sqJourney, 1, untimed, { arrival: Date.parse("2026-11-26T08:00:00.000Z") / 1000 }),
            recordLike(sqJourney, 2, payloads.sqJourney("gu-3", "not a time"), { arrival: null }),
          ],
        }),
      );
      const messages = await sqs.drain(activityQueue);
      assert.deepEqual(Object.fromEntries(messages.map((message) => [bodyOf(message).globalUserId, bodyOf(message).at])), {
        "gu-1": "2026-11-24T08:30:46.021Z",
        "gu-2": "2026-11-26T08:00:00.000Z",
        "gu-3": NOW.toISOString(),
      });
      assert.deepEqual((await dynamo.scan(table)).map((item) => item.userId).sort(), [
        "rescore#gu-1#2026-11-29",
        "rescore#gu-2#2026-12-01",
        "rescore#gu-3#2026-11-30",
      ]);
    });

    it("schedule rescores RESCORE_DELAY_DAYS after the activity", async function () {
      const { activityQueue, table } = await resources();
      deploy({ ACTIVITY_QUEUE_URL: activityQueue, TABLE_NAME: table, RESCORE_DELAY_DAYS: "12" });
      await enqueueFromPurchaseStream.factory()(fixture<KinesisFixtureEvent>("kinesis-purchase-success.json"));
      assert.deepEqual(
        (await dynamo.scan(table)).map((item) => [item.userId, item.rescoreDate, item.expiresOn]),
        [["rescore#gu-a04c77e2#2026-12-06", "2026-12-06", Date.UTC(2026, 11, 6) / 1000]],
      );
    });
  });

  describe("when SQS or DynamoDB misbehaves", function () {
    const batch = (count: number) => ({
      Records: Array.from({ length: count }, (_, index) => recordLike(purchase, index, payloads.purchase(`gu-${index}`))),
    });

    it("retries entries SQS could not take for a moment (SenderFault false) and sends them all", async function () {
      const { activityQueue, table } = await resources();
      const handler = direct(createEnqueueFromPurchaseStream, { activityQueue, table });
      sqs.intercept = refuseEntries({ pick: (entry) => /"gu-(3|7|11)"/.test(entry.MessageBody), senderFault: false, times: 1 });

      const { result, logs } = await captureLogs(() => handler(batch(15)));

      assert.deepEqual(result, { batchItemFailures: [] });
      assert.equal(sendCalls(), 2 + 2, "two batches, each retried once for its refused entries");
      assert.deepEqual(warnings(logs), []);
      const messages = await sqs.drain(activityQueue);
      assert.equal(messages.length, 15);
    });

    it("fails the records whose messages SQS refuses as malformed (SenderFault true), and only those", async function () {
      const { activityQueue, table } = await resources();
      const handler = direct(createEnqueueFromPurchaseStream, { activityQueue, table });
      sqs.intercept = refuseEntries({ pick: (entry) => /"gu-(3|12)"/.test(entry.MessageBody), senderFault: true });

      const { result, logs } = await captureLogs(() => handler(batch(15)));

      assert.deepEqual(failuresOf(result), seqs([3, 12]));
      assert.equal(sendCalls(), 2, "a sender fault is not retried");
      for (const line of warnings(logs)) {
        assert.match(String(line.reason), /^SQS refused the message: InvalidParameterValue: /);
      }
      const errors = linesAt(logs, "ERROR");
      assert.deepEqual(
        errors.map((line) => [line.message, line.count]),
        [["activity messages not sent", 2]],
      );
      assert.equal((await sqs.drain(activityQueue)).length, 13);
    });

    it("fails every record while SQS is down, and claims nothing as sent", async function () {
      const { activityQueue, table } = await resources();
      const handler = direct(createEnqueueFromPurchaseStream, { activityQueue, table });
      sqs.intercept = serviceDown(["SendMessageBatch"], SQS_INTERNAL_ERROR);

      const { result, logs } = await captureLogs(() => handler(batch(12)));

      assert.deepEqual(failuresOf(result), seqs([...Array(12).keys()]));
      for (const line of warnings(logs)) assert.match(String(line.reason), /^SendMessageBatch to .* failed: InternalError: /);
      const summary = logs.find((line) => line.message === "batch enqueued");
      assert.equal(summary?.sent, 0);
      // Two batches, three attempts each by sendMessages, each of those tried three times by the SDK.
      assert.equal(summary?.sendCalls, 6);
      assert.equal(sendCalls(), 18);
      sqs.intercept = () => undefined;
      assert.deepEqual(await sqs.drain(activityQueue), []);
    });

    it("fails a malformed record it cannot park while the failure queue is unreachable, so Lambda tries it again; the rest are sent", async function () {
      const { activityQueue, failureQueue, table } = await resources();
      const handler = direct(createEnqueueFromPurchaseStream, { activityQueue, table });
      const failures = new URL(failureQueue).pathname;
      sqs.intercept = serviceDown(["SendMessageBatch"], SQS_INTERNAL_ERROR, (request) => request.body.includes(failures));
      const event = {
        Records: [
          recordLike(purchase, 0, payloads.purchase("gu-0")),
          recordLike(purchase, 1, { ...(payloadOf(purchase) as object), customer: {} }),
          recordLike(purchase, 2, payloads.purchase("gu-2")),
        ],
      };

      const { result, logs } = await captureLogs(() => handler(event));

      assert.deepEqual(failuresOf(result), seqs([1]));
      const failed = logs.filter((line) => line.message === "record failed");
      assert.equal(failed.length, 1);
      assert.match(
        String(failed[0]!.reason),
        /^purchase event is not as expected: customer\.globalUserId: .*; not parked: SendMessageBatch to .* failed: InternalError: /,
      );
      assert.deepEqual(parkedLines(logs), []);
      assert.deepEqual(
        linesAt(logs, "ERROR").map((line) => [line.message, line.count]),
        [["records not parked", 1]],
      );
      assert.deepEqual((await sqs.drain(activityQueue)).map((message) => bodyOf(message).globalUserId).sort(), ["gu-0", "gu-2"]);
      sqs.intercept = () => undefined;
      assert.deepEqual(await sqs.drain(failureQueue), []);

      // Delivered again with the queue back, it is parked and the batch is done.
      const again = await captureLogs(() => handler(event));
      assert.deepEqual(again.result, { batchItemFailures: [] });
      assert.deepEqual([...parkedBySequenceNumber(await sqs.drain(failureQueue)).keys()], seqs([1]));
    });

    it("fails a malformed record too large to park whole, saying so, never cutting it down, and parks the others", async function () {
      const { activityQueue, failureQueue, table } = await resources();
      const handler = direct(createEnqueueFromPurchaseStream, { activityQueue, table }, "enqueueFromPurchaseStream");
      // Under Kinesis's 1 MiB a record, over what one SQS message carries once base64-encoded in a document.
      const huge = { ...(payloadOf(purchase) as object), customer: {}, notes: "x".repeat(200 * 1024) };
      const event = {
        Records: [
          recordLike(purchase, 0, payloads.purchase("gu-0")),
          recordLike(purchase, 1, huge),
          recordLike(purchase, 2, { ...(payloadOf(purchase) as object), customer: {} }),
        ],
      };

      const { result, logs } = await captureLogs(() => handler(event));

      // Lambda retries it, then its own on-failure record names it.
      assert.deepEqual(failuresOf(result), seqs([1]));
      const tooLarge = logs.filter((line) => line.message === "record not parked: too large");
      assert.deepEqual(
        tooLarge.map((line) => [line.level, line.record, line.limit]),
        [["WARN", sequenceNumber(1), 262_144]],
      );
      assert.ok(Number(tooLarge[0]!.bytes) > 262_144);
      const failed = logs.find((line) => line.message === "record failed");
      assert.match(String(failed?.reason), /; not parked: as a parked record it is \d+ bytes, over SQS's 262144/);
      assert.deepEqual([...parkedBySequenceNumber(await sqs.drain(failureQueue)).keys()], seqs([2]));
      assert.deepEqual(
        (await sqs.drain(activityQueue)).map((message) => bodyOf(message).globalUserId),
        ["gu-0"],
      );
    });

    it("fails the records whose rescore could not be written, all of that fan's records for that date, and only those", async function () {
      const { activityQueue, table } = await resources();
      const handler = direct(createEnqueueFromPurchaseStream, { activityQueue, table });
      dynamo.intercept = serviceDown(["PutItem"], DYNAMO_INTERNAL_ERROR, (request) => request.body.includes('"rescore#gu-2#'));
      const event = {
        Records: [0, 1, 2, 3, 4].map((index) => recordLike(purchase, index, payloads.purchase(`gu-${index % 3}`))),
      };

      const { result, logs } = await captureLogs(() => handler(event));

      assert.deepEqual(failuresOf(result), seqs([2]));
      assert.match(String(warnings(logs)[0]!.reason), /^rescore not scheduled: PutItem on .* failed: InternalServerError: /);
      assert.deepEqual((await dynamo.scan(table)).map((item) => item.globalUserId).sort(), ["gu-0", "gu-1"]);

      dynamo.intercept = serviceDown(["PutItem"], DYNAMO_INTERNAL_ERROR, (request) => request.body.includes('"rescore#gu-1#'));
      const { result: again } = await captureLogs(() => handler(event));
      assert.deepEqual(failuresOf(again), seqs([1, 4]), "both records of gu-1 depend on its one rescore");
    });

    it("fails every record while DynamoDB is down", async function () {
      const { activityQueue, table } = await resources();
      const handler = direct(createEnqueueFromDemandStream, { activityQueue, table });
      dynamo.intercept = serviceDown(["PutItem"], DYNAMO_INTERNAL_ERROR);
      const event = { Records: [0, 1, 2].map((index) => recordLike(demand, index, payloads.demand(`gu-${index}`))) };

      const { result } = await captureLogs(() => handler(event));

      assert.deepEqual(failuresOf(result), seqs([0, 1, 2]));
    });
  });
});
