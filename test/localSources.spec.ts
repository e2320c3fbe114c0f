/**
 * The local event source mappings against their local services, with fake functions: Kinesis
 * (kinesalite) shard pollers delivering in order per shard, in batches of at most the batch
 * size, after the filter, and parking exhausted batches as Lambda's KinesisBatchInfo record on
 * an SQS queue; SQS (local-aws-sqs) pollers deleting what succeeded, leaving failures for
 * redelivery after the visibility timeout and to the redrive policy, keeping FIFO group order;
 * the self-managed Kafka mapping on the local partitioned log.
 */
import * as assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CreateStreamCommand, DescribeStreamSummaryCommand, KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
} from "@aws-sdk/client-sqs";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { InvokeOutcome } from "../tools/local/lambda/pool";
import { createKafkaLog, type KafkaLog, startKafkaMapping } from "../tools/local/sources/kafka";
import { type RunningMapping, startKinesisMapping } from "../tools/local/sources/kinesis";
import { startSqsMapping } from "../tools/local/sources/sqs";
import type { QueueMapping, StreamMapping } from "../tools/local/wiring";
import { type LocalSqs, startSqs } from "./support/localAws";
import { plannedFunction, reports, waitUntil } from "./support/local";

const ACCOUNT = "210987654321";
const FN = plannedFunction();
const FAILURES_ARN = `arn:aws:sqs:us-east-1:${ACCOUNT}:vfid-qa1-us-east-1-scoring-stream-failures-sqs`;

const ok = (result: unknown = { batchItemFailures: [] }): InvokeOutcome => ({
  requestId: "r-ok",
  coldStart: false,
  ms: 1,
  result,
});
const failed = (requestId = "r-failed"): InvokeOutcome => ({
  requestId,
  coldStart: false,
  ms: 1,
  error: { kind: "error", errorType: "Error", errorMessage: "boom" },
});
const reporting = (...itemIdentifiers: unknown[]) =>
  ok({ batchItemFailures: itemIdentifiers.map((itemIdentifier) => ({ itemIdentifier })) });

/** A fake function: every event it is invoked with, answered by `answer`. */
function fakeFunction<E>(answer: (event: E, call: number) => InvokeOutcome | Promise<InvokeOutcome>) {
  const events: E[] = [];
  return {
    events,
    invoke: async (event: unknown) => {
      events.push(event as E);
      return answer(event as E, events.length - 1);
    },
  };
}

const decode = (data: string) => JSON.parse(Buffer.from(data, "base64").toString("utf8")) as Record<string, unknown>;

describe("the local event source mappings", function () {
  const running: RunningMapping[] = [];
  let sqs: LocalSqs;

  before(async function () {
    sqs = await startSqs();
  });

  after(async function () {
    await sqs.close();
  });

  afterEach(async function () {
    await Promise.all(running.splice(0).map((mapping) => mapping.stop()));
  });

  /** Reads a queue's messages without deleting them (they become visible again after its timeout). */
  async function peek(queueUrl: string, wanted: number): Promise<Message[]> {
    const messages: Message[] = [];
    await waitUntil(async () => {
      const answer = await sqs.client.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, AttributeNames: ["All"] }),
      );
      messages.push(...(answer.Messages ?? []));
      return messages.length >= wanted;
    }, `${wanted} messages on ${queueUrl}`);
    return messages;
  }

  async function queueDepth(queueUrl: string): Promise<number> {
    const { Attributes } = await sqs.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  }

  let queues = 0;
  async function createQueue(name: string, attributes: Record<string, string> = {}): Promise<{ url: string; arn: string }> {
    queues += 1;
    const fifo = name.endsWith(".fifo");
    const QueueName = fifo ? `${name.slice(0, -5)}-${queues}.fifo` : `${name}-${queues}`;
    const { QueueUrl } = await sqs.client.send(
      new CreateQueueCommand({ QueueName, Attributes: { ...(fifo ? { FifoQueue: "true" } : {}), ...attributes } }),
    );
    const { Attributes } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["QueueArn"] }));
    return { url: QueueUrl!, arn: Attributes!.QueueArn! };
  }

  describe("Kinesis", function () {
    let server: Server;
    let kinesis: KinesisClient;
    let streams = 0;
    const SHARD_1_HASH = (2n ** 127n).toString();

    before(async function () {
      server = (require("kinesalite") as (options: object) => Server)({ createStreamMs: 0, deleteStreamMs: 0 });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      kinesis = new KinesisClient({
        endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        region: "us-east-1",
        credentials: { accessKeyId: "test", secretAccessKey: "test" },
        requestHandler: new NodeHttpHandler(),
      });
    });

    after(async function () {
      kinesis.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    async function createStream(shards = 2): Promise<string> {
      const name = `vf-input-stream-${++streams}`;
      await kinesis.send(new CreateStreamCommand({ StreamName: name, ShardCount: shards }));
      await waitUntil(
        async () =>
          (await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: name }))).StreamDescriptionSummary?.StreamStatus ===
          "ACTIVE",
        `stream ${name} to be active`,
      );
      return name;
    }

    /** Puts records on a shard (0 or 1 of two); answers their sequence numbers. */
    async function put(stream: string, shard: 0 | 1, payloads: readonly unknown[]): Promise<string[]> {
      const answer = await kinesis.send(
        new PutRecordsCommand({
          StreamName: stream,
          Records: payloads.map((payload, index) => ({
            PartitionKey: `pk-${index}`,
            ExplicitHashKey: shard === 0 ? "0" : SHARD_1_HASH,
            Data: Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload)),
          })),
        }),
      );
      assert.equal(answer.FailedRecordCount ?? 0, 0);
      return answer.Records!.map((record) => record.SequenceNumber!);
    }

    function mapping(stream: string, changes: Partial<StreamMapping> = {}): StreamMapping {
      return {
        kind: "kinesis",
        name: "scoring-east-vf-to-enqueue",
        functionName: FN.name,
        streamArn: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}`,
        batchSize: 3,
        batchingWindowSeconds: 0,
        filters: [],
        reportBatchItemFailures: true,
        startingPosition: "TRIM_HORIZON",
        bisectOnError: false,
        maximumRetryAttempts: 1,
        onFailureArn: FAILURES_ARN,
        ...changes,
      };
    }

    type KinesisEvent = {
      Records: {
        kinesis: { data: string; sequenceNumber: string; partitionKey: string };
        eventID: string;
        eventSource: string;
        eventSourceARN: string;
        awsRegion: string;
        invokeIdentityArn: string;
      }[];
    };

    async function start(
      stream: string,
      changes: Partial<StreamMapping>,
      fn: { invoke: (event: unknown) => Promise<InvokeOutcome> },
      sendFailure: (arn: string, record: object) => Promise<void> = async () => assert.fail("nothing is to be parked"),
    ) {
      const collected = reports();
      const started = await startKinesisMapping({
        mapping: mapping(stream, changes),
        fn: FN,
        kinesis,
        streamName: stream,
        invoke: fn.invoke,
        sendFailure,
        report: collected.report,
        idleMs: 20,
      });
      running.push(started);
      return { mapping: started, ...collected };
    }

    it("delivers each shard's records in order, in batches of at most the batch size, each from one shard", async function () {
      const stream = await createStream();
      const fn = fakeFunction<KinesisEvent>(() => ok());
      const sequence0 = await put(
        stream,
        0,
        Array.from({ length: 10 }, (_, n) => ({ shard: 0, n })),
      );
      const sequence1 = await put(
        stream,
        1,
        Array.from({ length: 7 }, (_, n) => ({ shard: 1, n })),
      );
      const { mapping: started, count } = await start(stream, { batchSize: 3 }, fn);
      await waitUntil(() => fn.events.flatMap((event) => event.Records).length >= 17, "17 records delivered");
      await waitUntil(() => started.pending() === 0, "nothing pending");

      assert.ok(fn.events.every((event) => event.Records.length >= 1 && event.Records.length <= 3));
      for (const event of fn.events) {
        const shards = new Set(event.Records.map((record) => record.eventID.split(":")[0]));
        assert.equal(shards.size, 1, "a batch holds one shard's records");
      }
      const delivered = (shard: number) =>
        fn.events
          .flatMap((event) => event.Records)
          .filter((record) => decode(record.kinesis.data).shard === shard)
          .map((record) => record.kinesis.sequenceNumber);
      assert.deepEqual(delivered(0), sequence0);
      assert.deepEqual(delivered(1), sequence1);
      assert.equal(count("delivered"), 17);

      const [first] = fn.events[0]!.Records;
      assert.equal(first!.eventSource, "aws:kinesis");
      assert.equal(first!.eventSourceARN, `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}`);
      assert.equal(first!.eventID, `${first!.eventID.split(":")[0]}:${first!.kinesis.sequenceNumber}`);
      assert.match(first!.eventID, /^shardId-\d{12}:/);
      assert.equal(first!.awsRegion, "us-east-1");
      assert.equal(first!.invokeIdentityArn, FN.roleArn);
    });

    it("delivers only the records the filter keeps, and reports how many it kept back", async function () {
      const stream = await createStream();
      const fn = fakeFunction<KinesisEvent>(() => ok());
      await put(stream, 0, [
        { type: "vfLogin", n: 1 },
        { type: "vfLogout", n: 2 },
        "not json",
        { type: "vfLogin", n: 4 },
        { other: true, n: 5 },
        { type: "vfLogin", n: 6 },
      ]);
      const { mapping: started, count } = await start(stream, { filters: [{ data: { type: ["vfLogin"] } }] }, fn);
      await waitUntil(() => started.pending() === 0 && count("filtered") + count("delivered") >= 6, "all six records done");
      assert.deepEqual(
        fn.events.flatMap((event) => event.Records).map((record) => decode(record.kinesis.data).n),
        [1, 4, 6],
      );
      assert.equal(count("filtered"), 3);
    });

    it("refuses to start with a filter operator it cannot evaluate", async function () {
      const stream = await createStream(1);
      await assert.rejects(
        start(
          stream,
          { filters: [{ data: { type: [{ wildcard: "vf*" }] } }] },
          fakeFunction(() => ok()),
        ),
        /"wildcard"/,
      );
    });

    it("parks a batch whose retries ran out as a KinesisBatchInfo record on the on-failure queue, and moves on", async function () {
      const stream = await createStream();
      const failures = await createQueue("scoring-stream-failures");
      const fn = fakeFunction<KinesisEvent>((event) =>
        event.Records.some((record) => decode(record.kinesis.data).bad) ? failed("c9b8fa9f-req") : ok(),
      );
      const sent: string[] = [];
      const sendFailure = async (arn: string, record: object) => {
        sent.push(arn);
        await sqs.client.send(new SendMessageCommand({ QueueUrl: failures.url, MessageBody: JSON.stringify(record) }));
      };
      const sequences = await put(stream, 1, [
        { bad: true, n: 1 },
        { bad: true, n: 2 },
        { bad: true, n: 3 },
      ]);
      const { count } = await start(stream, { batchSize: 5, maximumRetryAttempts: 1, bisectOnError: false }, fn, sendFailure);
      const [message] = await peek(failures.url, 1);
      assert.deepEqual(sent, [FAILURES_ARN]);
      assert.equal(fn.events.length, 2, "the first invocation and one retry");
      const record = JSON.parse(message!.Body!) as Record<string, Record<string, unknown>>;
      assert.deepEqual(record.KinesisBatchInfo, {
        shardId: "shardId-000000000001",
        startSequenceNumber: sequences[0],
        endSequenceNumber: sequences[2],
        approximateArrivalOfFirstRecord: record.KinesisBatchInfo!.approximateArrivalOfFirstRecord,
        approximateArrivalOfLastRecord: record.KinesisBatchInfo!.approximateArrivalOfLastRecord,
        batchSize: 3,
        streamArn: `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${stream}`,
      });
      const info = record.KinesisBatchInfo as Record<string, unknown>;
      for (const at of ["approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord"]) {
        assert.ok(!Number.isNaN(Date.parse(String(info[at]))), at);
      }
      assert.deepEqual(record.requestContext, {
        requestId: "c9b8fa9f-req",
        functionArn: FN.arn,
        condition: "RetryAttemptsExhausted",
        approximateInvokeCount: 2,
      });
      assert.equal(record.responseContext!.functionError, "Unhandled");
      assert.equal(count("parked"), 3);

      // The shard goes on past the parked records.
      const [next] = await put(stream, 1, [{ n: 4 }]);
      await waitUntil(
        () => fn.events.some((event) => event.Records.some((r) => r.kinesis.sequenceNumber === next)),
        "the next record",
      );
    });

    it("with bisect on, parks only the bad record and delivers the rest of its batch", async function () {
      const stream = await createStream(1);
      const parked: Record<string, Record<string, unknown>>[] = [];
      const fn = fakeFunction<KinesisEvent>((event) =>
        event.Records.some((record) => decode(record.kinesis.data).bad) ? failed() : ok(),
      );
      const sequences = await put(stream, 0, [{ n: 1 }, { n: 2 }, { n: 3, bad: true }, { n: 4 }]);
      await start(stream, { batchSize: 4, bisectOnError: true, maximumRetryAttempts: 0 }, fn, async (_arn, record) => {
        parked.push(record as Record<string, Record<string, unknown>>);
      });
      await waitUntil(
        () => parked.length === 1 && fn.events.some((e) => e.Records[0]?.kinesis.sequenceNumber === sequences[3]),
        "the batch done",
      );
      assert.equal(parked[0]!.KinesisBatchInfo!.startSequenceNumber, sequences[2]);
      assert.equal(parked[0]!.KinesisBatchInfo!.endSequenceNumber, sequences[2]);
      assert.equal(parked[0]!.KinesisBatchInfo!.batchSize, 1);
      const succeeded = fn.events
        .filter((event) => !event.Records.some((record) => decode(record.kinesis.data).bad))
        .flatMap((event) => event.Records.map((record) => record.kinesis.sequenceNumber));
      assert.deepEqual(succeeded, [sequences[0], sequences[1], sequences[3]]);
    });

    it("retries a partial batch failure from the sequence number reported", async function () {
      const stream = await createStream(1);
      const sequences = await put(stream, 0, [{ n: 1 }, { n: 2 }, { n: 3 }]);
      const fn = fakeFunction<KinesisEvent>((_event, call) => (call === 0 ? reporting(sequences[1]) : ok()));
      await start(stream, { batchSize: 3 }, fn);
      await waitUntil(() => fn.events.length >= 2, "the retry");
      assert.deepEqual(
        fn.events.map((event) => event.Records.map((record) => record.kinesis.sequenceNumber)),
        [sequences, sequences.slice(1)],
      );
    });

    it("from LATEST, skips what the stream held before the mapping started", async function () {
      const stream = await createStream(1);
      await put(stream, 0, [{ n: "old-1" }, { n: "old-2" }]);
      const fn = fakeFunction<KinesisEvent>(() => ok());
      await start(stream, { startingPosition: "LATEST" }, fn);
      const [fresh] = await put(stream, 0, [{ n: "new" }]);
      await waitUntil(() => fn.events.length > 0, "the new record");
      assert.deepEqual(
        fn.events.flatMap((event) => event.Records.map((record) => record.kinesis.sequenceNumber)),
        [fresh],
      );
    });
  });

  describe("SQS", function () {
    type SqsEvent = {
      Records: {
        messageId: string;
        receiptHandle: string;
        body: string;
        attributes: Record<string, string>;
        messageAttributes: Record<string, unknown>;
        eventSource: string;
        eventSourceARN: string;
        awsRegion: string;
      }[];
    };

    function mapping(queueArn: string, changes: Partial<QueueMapping> = {}): QueueMapping {
      return {
        kind: "sqs",
        name: "scoring-east-on-demand-to-lookupArai",
        functionName: FN.name,
        queueArn,
        batchSize: 10,
        batchingWindowSeconds: 0,
        filters: [],
        reportBatchItemFailures: true,
        ...changes,
      };
    }

    function start(
      queue: { url: string; arn: string },
      fn: { invoke: (event: unknown) => Promise<InvokeOutcome> },
      changes: Partial<QueueMapping> = {},
      pollers = 1,
    ) {
      const collected = reports();
      const started = startSqsMapping({
        mapping: mapping(queue.arn, changes),
        fn: FN,
        sqs: sqs.client,
        queueUrl: queue.url,
        invoke: fn.invoke,
        report: collected.report,
        pollers,
      });
      running.push(started);
      return { mapping: started, ...collected };
    }

    const deliveries = (events: SqsEvent[], body: string) =>
      events.flatMap((event) => event.Records).filter((record) => record.body === body);

    async function send(queueUrl: string, bodies: readonly string[], group?: (body: string) => string) {
      for (let at = 0; at < bodies.length; at += 10) {
        await sqs.client.send(
          new SendMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: bodies.slice(at, at + 10).map((body, index) => ({
              Id: `e${at + index}`,
              MessageBody: body,
              ...(group ? { MessageGroupId: group(body), MessageDeduplicationId: body } : {}),
            })),
          }),
        );
      }
    }

    it("hands messages over in Lambda's shape and deletes them when the function succeeds", async function () {
      const queue = await createQueue("on-demand-scoring", { VisibilityTimeout: "1" });
      const fn = fakeFunction<SqsEvent>(() => ok());
      await send(queue.url, ["a", "b", "c"]);
      const { count } = start(queue, fn);
      await waitUntil(() => fn.events.flatMap((event) => event.Records).length >= 3, "three messages");
      await waitUntil(async () => (await queueDepth(queue.url)) === 0, "the queue to be empty");
      const record = fn.events[0]!.Records[0]!;
      assert.equal(record.eventSource, "aws:sqs");
      assert.equal(record.eventSourceARN, queue.arn);
      assert.equal(record.awsRegion, "us-east-1");
      assert.ok(record.messageId && record.receiptHandle);
      assert.equal(record.attributes.ApproximateReceiveCount, "1");
      assert.equal(count("delivered"), 3);
    });

    it("hands message attributes sent with SendMessageBatch over as Lambda does, and none when a message has none", async function () {
      const queue = await createQueue("on-demand-scoring", { VisibilityTimeout: "1" });
      const fn = fakeFunction<SqsEvent>(() => ok());
      await sqs.client.send(
        new SendMessageBatchCommand({
          QueueUrl: queue.url,
          Entries: [
            {
              Id: "e0",
              MessageBody: "with",
              MessageAttributes: {
                correlationId: { DataType: "String", StringValue: "9f0c4e1a-5b7d-4c2e-8a31-6d2f0b9e7c54" },
                checksum: { DataType: "Binary", BinaryValue: Buffer.from([1, 2, 3]) },
              },
            },
            { Id: "e1", MessageBody: "without" },
          ],
        }),
      );
      start(queue, fn);
      await waitUntil(() => fn.events.flatMap((event) => event.Records).length >= 2, "both messages");
      const [withAttributes] = deliveries(fn.events, "with");
      const [withoutAttributes] = deliveries(fn.events, "without");
      assert.deepEqual(withAttributes!.messageAttributes, {
        correlationId: {
          stringValue: "9f0c4e1a-5b7d-4c2e-8a31-6d2f0b9e7c54",
          stringListValues: [],
          binaryListValues: [],
          dataType: "String",
        },
        checksum: { binaryValue: "AQID", stringListValues: [], binaryListValues: [], dataType: "Binary" },
      });
      assert.deepEqual(withoutAttributes!.messageAttributes, {});
    });

    it("deletes the messages that succeeded and leaves those reported for redelivery after the visibility timeout", async function () {
      const queue = await createQueue("on-demand-scoring", { VisibilityTimeout: "1" });
      let failedOnce = false;
      const fn = fakeFunction<SqsEvent>((event) => {
        const bad = event.Records.find((record) => record.body === "bad");
        if (bad && !failedOnce) {
          failedOnce = true;
          return reporting(bad.messageId);
        }
        return ok();
      });
      await send(queue.url, ["good-1", "bad", "good-2", "good-3"]);
      start(queue, fn);
      await waitUntil(() => deliveries(fn.events, "bad").length >= 2, "the reported message to come back");
      await waitUntil(async () => (await queueDepth(queue.url)) === 0, "the queue to be empty");
      // Redelivered after the same timeout, a message left on the queue would have come back by now.
      for (const body of ["good-1", "good-2", "good-3"]) assert.equal(deliveries(fn.events, body).length, 1, body);
      const [, again] = deliveries(fn.events, "bad");
      assert.equal(again!.attributes.ApproximateReceiveCount, "2");
    });

    it("leaves the whole batch on the queue when the function fails", async function () {
      const queue = await createQueue("on-demand-scoring", { VisibilityTimeout: "1" });
      const fn = fakeFunction<SqsEvent>((_event, call) => (call === 0 ? failed() : ok()));
      await send(queue.url, ["x", "y"]);
      start(queue, fn);
      await waitUntil(() => deliveries(fn.events, "x").length >= 2 && deliveries(fn.events, "y").length >= 2, "both back");
      await waitUntil(async () => (await queueDepth(queue.url)) === 0, "the queue to be empty");
    });

    it("fails the whole batch when the response names a message not in it", async function () {
      const queue = await createQueue("on-demand-scoring", { VisibilityTimeout: "1" });
      const fn = fakeFunction<SqsEvent>((_event, call) => (call === 0 ? reporting("not-a-message-id") : ok()));
      await send(queue.url, ["p", "q"]);
      start(queue, fn);
      await waitUntil(() => deliveries(fn.events, "p").length >= 2 && deliveries(fn.events, "q").length >= 2, "both back");
    });

    it("moves a message that always fails to the dead-letter queue after maxReceiveCount receives", async function () {
      const dlq = await createQueue("on-demand-scoring-dlq");
      const queue = await createQueue("on-demand-scoring", {
        VisibilityTimeout: "1",
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }),
      });
      const fn = fakeFunction<SqsEvent>((event) => {
        const poison = event.Records.filter((record) => record.body === "poison").map((record) => record.messageId);
        return poison.length > 0 ? reporting(...poison) : ok();
      });
      await send(queue.url, ["poison", "fine"]);
      start(queue, fn);
      const [dead] = await peek(dlq.url, 1);
      assert.equal(dead!.Body, "poison");
      await waitUntil(async () => (await queueDepth(queue.url)) === 0, "the source queue to be empty");
      assert.equal(deliveries(fn.events, "poison").length, 2, "received maxReceiveCount times");
      assert.equal(deliveries(fn.events, "fine").length, 1);
    });

    it("keeps each FIFO message group in order, groups side by side", async function () {
      const queue = await createQueue("acct-activity-sqs.fifo", { VisibilityTimeout: "1" });
      const bodies = Array.from({ length: 6 }, (_, n) => ["A", "B", "C"].map((group) => `${group}-${n}`)).flat();
      let failedOnce = false;
      const reported = new Set<string>();
      // A-2 fails once: the function reports it and the rest of its group in the batch, as a FIFO consumer must.
      const fn = fakeFunction<SqsEvent>((event) => {
        const at = event.Records.findIndex((record) => record.body === "A-2");
        if (at < 0 || failedOnce) return ok();
        failedOnce = true;
        const stopped = event.Records.slice(at).filter((record) => record.body.startsWith("A-"));
        stopped.forEach((record) => reported.add(record.receiptHandle));
        return reporting(...stopped.map((record) => record.messageId));
      });
      await send(queue.url, bodies, (body) => body.split("-")[0]!);
      start(queue, fn, { batchSize: 4 }, 2);
      await waitUntil(() => bodies.every((body) => deliveries(fn.events, body).length >= 1), "every message");
      await waitUntil(async () => (await queueDepth(queue.url)) === 0, "the queue to be empty");
      assert.ok(failedOnce, "A-2 was delivered and failed once");
      // Each group's messages, as the function took them (not those it reported), are in the order sent.
      const taken = fn.events.flatMap((event) => event.Records).filter((record) => !reported.has(record.receiptHandle));
      for (const group of ["A", "B", "C"]) {
        assert.deepEqual(
          taken.filter((record) => record.body.startsWith(`${group}-`)).map((record) => record.body),
          Array.from({ length: 6 }, (_, n) => `${group}-${n}`),
          group,
        );
      }
      // The other groups went on while A waited for A-2 to come back.
      const position = (body: string) => taken.findIndex((record) => record.body === body);
      assert.ok(position("B-5") < position("A-2") && position("C-5") < position("A-2"));
      // A-2 came back on its second receive: its group was not held past its return, which would cost it a receive.
      assert.deepEqual(
        deliveries(fn.events, "A-2").map((record) => record.attributes.ApproximateReceiveCount),
        ["1", "2"],
      );
    });
  });

  describe("self-managed Kafka", function () {
    const TOPIC = "user-activity-qa1";
    const SERVERS = "kafka-1.qa1.use1.verifiedfan.internal:9096,kafka-2.qa1.use1.verifiedfan.internal:9096";

    type KafkaEvent = {
      eventSource: string;
      bootstrapServers: string;
      records: Record<
        string,
        { topic: string; partition: number; offset: number; timestamp: number; key: string; value: string | null }[]
      >;
    };

    function mapping(changes: Partial<StreamMapping> = {}): StreamMapping {
      return {
        kind: "kafka",
        name: "scoring-east-kafka-to-enqueue",
        functionName: FN.name,
        topic: TOPIC,
        batchSize: 4,
        batchingWindowSeconds: 0,
        filters: [],
        reportBatchItemFailures: true,
        startingPosition: "TRIM_HORIZON",
        bisectOnError: false,
        maximumRetryAttempts: 1,
        onFailureArn: FAILURES_ARN,
        consumerGroupId: "vfid-qa1-fan-identity-workers",
        bootstrapServers: SERVERS,
        ...changes,
      };
    }

    function start(
      log: KafkaLog,
      fn: { invoke: (event: unknown) => Promise<InvokeOutcome> },
      changes: Partial<StreamMapping> = {},
      sendFailure: (arn: string, record: object) => Promise<void> = async () => assert.fail("nothing is to be parked"),
    ) {
      const collected = reports();
      const started = startKafkaMapping({
        mapping: mapping(changes),
        fn: FN,
        log,
        invoke: fn.invoke,
        sendFailure,
        report: collected.report,
      });
      running.push(started);
      return { mapping: started, ...collected };
    }

    const flat = (events: KafkaEvent[]) => events.flatMap((event) => Object.values(event.records).flat());

    /** Keys that land on `partition` of `log`. */
    function keysOn(log: KafkaLog, partition: number, count: number): string[] {
      const probe = createKafkaLog(log.topic, log.partitions);
      const keys: string[] = [];
      for (let n = 0; keys.length < count; n++) {
        const key = `gu-${n}`;
        if (probe.produce([{ key, value: null }])[0]!.partition === partition) keys.push(key);
      }
      return keys;
    }

    it("delivers each partition in order, grouped by <topic>-<partition>, key and value base64", async function () {
      const log = createKafkaLog(TOPIC, 3);
      const produced = log.produce(
        Array.from({ length: 12 }, (_, n) => ({
          key: `gu-${n}`,
          value: Buffer.from(JSON.stringify({ n })),
          timestamp: 1_795_511_000_000 + n,
        })),
      );
      const fn = fakeFunction<KafkaEvent>(() => ok());
      const { mapping: started } = start(log, fn);
      await waitUntil(() => flat(fn.events).length >= 12 && started.pending() === 0, "twelve records");

      for (const event of fn.events) {
        assert.equal(event.eventSource, "SelfManagedKafka");
        assert.equal(event.bootstrapServers, SERVERS);
        for (const [group, records] of Object.entries(event.records)) {
          assert.ok(
            records.every((record) => group === `${record.topic}-${record.partition}`),
            group,
          );
        }
        assert.ok(flat([event]).length <= 4, "at most the batch size");
      }
      for (let partition = 0; partition < 3; partition++) {
        const offsets = flat(fn.events)
          .filter((record) => record.partition === partition)
          .map((record) => record.offset);
        const expected = produced.filter((where) => where.partition === partition).map((where) => where.offset);
        assert.deepEqual(offsets, expected, `partition ${partition}`);
      }
      const first = flat(fn.events).find(
        (record) => record.partition === produced[0]!.partition && record.offset === produced[0]!.offset,
      )!;
      assert.equal(Buffer.from(first.key, "base64").toString("utf8"), "gu-0");
      assert.deepEqual(JSON.parse(Buffer.from(first.value!, "base64").toString("utf8")), { n: 0 });
      assert.equal(first.timestamp, 1_795_511_000_000);
    });

    it("retries a partial failure from the {partition, offset} reported, with the records after it", async function () {
      const log = createKafkaLog(TOPIC, 2);
      const keys = keysOn(log, 1, 4);
      log.produce(keys.map((key) => ({ key, value: Buffer.from(JSON.stringify({ key })) })));
      const fn = fakeFunction<KafkaEvent>((_event, call) =>
        call === 0 ? reporting({ partition: `${TOPIC}-1`, offset: 2 }) : ok(),
      );
      start(log, fn);
      await waitUntil(() => fn.events.length >= 2, "the retry");
      assert.deepEqual(
        fn.events.map((event) => flat([event]).map((record) => record.offset)),
        [
          [0, 1, 2, 3],
          [2, 3],
        ],
      );
      assert.deepEqual(Object.keys(fn.events[1]!.records), [`${TOPIC}-1`]);
    });

    it("fails the whole batch when a reported record is not in it", async function () {
      const log = createKafkaLog(TOPIC, 1);
      log.produce([
        { key: "gu-1", value: Buffer.from("{}") },
        { key: "gu-2", value: Buffer.from("{}") },
      ]);
      const fn = fakeFunction<KafkaEvent>((_event, call) =>
        call === 0 ? reporting({ partition: `${TOPIC}-0`, offset: 7 }) : ok(),
      );
      start(log, fn);
      await waitUntil(() => fn.events.length >= 2, "the retry");
      assert.deepEqual(
        flat([fn.events[1]!]).map((record) => record.offset),
        [0, 1],
      );
    });

    it("parks a batch whose retries ran out with Lambda's KafkaBatchInfo, then goes on", async function () {
      const log = createKafkaLog(TOPIC, 1);
      log.produce(
        [0, 1, 2].map((n) => ({
          key: `gu-${n}`,
          value: Buffer.from(JSON.stringify({ bad: true })),
          timestamp: 1_795_511_000_000 + n,
        })),
      );
      const parked: { arn: string; record: Record<string, Record<string, unknown>> }[] = [];
      const fn = fakeFunction<KafkaEvent>((event) =>
        flat([event]).some((record) => record.value && JSON.parse(Buffer.from(record.value, "base64").toString()).bad)
          ? failed("kafka-req")
          : ok(),
      );
      start(log, fn, { maximumRetryAttempts: 1 }, async (arn, record) => {
        parked.push({ arn, record: record as Record<string, Record<string, unknown>> });
      });
      await waitUntil(() => parked.length === 1, "the batch parked");
      assert.equal(fn.events.length, 2);
      assert.equal(parked[0]!.arn, FAILURES_ARN);
      const { KafkaBatchInfo: info, requestContext } = parked[0]!.record;
      assert.equal(info!.batchSize, 3);
      assert.equal(info!.bootstrapServers, SERVERS);
      assert.deepEqual(info!.recordsInfo, {
        [`${TOPIC}-0`]: {
          firstRecordOffset: "0",
          firstRecordTimestamp: new Date(1_795_511_000_000).toISOString(),
          lastRecordOffset: "2",
          lastRecordTimestamp: new Date(1_795_511_000_002).toISOString(),
        },
      });
      assert.deepEqual(requestContext, {
        requestId: "kafka-req",
        functionArn: FN.arn,
        condition: "RetryAttemptsExhausted",
        approximateInvokeCount: 2,
      });
      log.produce([{ key: "gu-9", value: Buffer.from("{}") }]);
      await waitUntil(() => flat(fn.events).some((record) => record.offset === 3), "the next record");
    });

    it("delivers only what the filter keeps, matching the value parsed as JSON", async function () {
      const log = createKafkaLog(TOPIC, 1);
      log.produce([
        { key: "gu-1", value: Buffer.from(JSON.stringify({ eventType: "login" })) },
        { key: "gu-2", value: Buffer.from(JSON.stringify({ eventType: "logout" })) },
        { key: "gu-3", value: Buffer.from("plain text") },
        { key: "gu-4", value: Buffer.from(JSON.stringify({ eventType: "login" })) },
      ]);
      const fn = fakeFunction<KafkaEvent>(() => ok());
      const { mapping: started, count } = start(log, fn, { filters: [{ value: { eventType: ["login"] } }] });
      await waitUntil(() => started.pending() === 0 && count("filtered") === 2, "the four records done");
      assert.deepEqual(
        flat(fn.events).map((record) => record.offset),
        [0, 3],
      );
    });

    it("from LATEST, skips the records produced before it started", async function () {
      const log = createKafkaLog(TOPIC, 2);
      const before = [...keysOn(log, 0, 2), ...keysOn(log, 1, 2)];
      log.produce(before.map((key) => ({ key, value: Buffer.from(JSON.stringify({ when: "before" })) })));
      const fn = fakeFunction<KafkaEvent>(() => ok());
      const { mapping: started } = start(log, fn, { startingPosition: "LATEST" });
      const after = log.produce(before.map((key) => ({ key, value: Buffer.from(JSON.stringify({ when: "after" })) })));
      await waitUntil(() => flat(fn.events).length >= 4 && started.pending() === 0, "the four new records");
      // Each partition is read in order: had the old records been read, they would have come first.
      const values = flat(fn.events).map((record) => JSON.parse(Buffer.from(record.value!, "base64").toString()).when);
      assert.deepEqual(values, ["after", "after", "after", "after"]);
      assert.deepEqual(
        flat(fn.events)
          .map((record) => `${record.partition}@${record.offset}`)
          .sort(),
        after.map((where) => `${where.partition}@${where.offset}`).sort(),
      );
    });
  });
});
