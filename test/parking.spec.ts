/**
 * Poison records parked on their first delivery (docs/worker-contract.md#parked-records),
 * observed at the source: the local system planned from qa1 runs the real Kinesis and Kafka
 * mappings (batch sizes, partial batch responses, bisect, two retries, the on-failure queue) and
 * the real archives of enqueueFromPurchaseStream and enqueueFromActivityStream. A batch with a
 * poison record among good ones is put on the stream (the topic); then, from the mapping's own
 * deliveries and what the queues and the table hold:
 *
 * - each record of the batch was delivered once: the batch response named none, so nothing was
 *   retried or bisected;
 * - the poison record is in the failure queue, parked by its worker, with the record as delivered
 *   and the reason, counted `RecordsParked{reason=invalid}`; Lambda's pointer is not there;
 * - the good records were enqueued once (and, for the purchase stream, their rescores written once).
 */
import { strict as assert } from "node:assert";
import { PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { LocalQueue } from "../tools/local/resources";
import { nameOfArn, type StreamMapping } from "../tools/local/wiring";
import { createDocumentClient } from "../workers/shared/runtime/dynamo";
import { emfMetrics } from "./support/emittedMetrics";
import { type BootedSystem, bootLocal, until } from "./support/localSystem";
import { type ParkedMessage, parkedRecordsOf } from "./support/parked";
import { planStack } from "./support/program";

const FAILURES = "vfid-qa1-us-east-1-scoring-stream-failures-sqs";
const ACTIVITY = "vfid-qa1-us-east-1-acct-activity-sqs.fifo";

describe("poison records, parked on their first delivery (the local system's real mappings)", function () {
  let booted: BootedSystem;

  before(async function () {
    const plan = await planStack("qa1");
    booted = await bootLocal(plan.resources, {
      workers: ["enqueueFromPurchaseStream", "enqueueFromActivityStream"],
      shards: 1,
      partitions: 1,
    });
  });

  after(async function () {
    await booted?.stop();
  });

  const queue = (name: string): LocalQueue =>
    [...booted.system.queues.values()].find((candidate) => candidate.planned.name === name)!;

  /** Every message of a queue, received and deleted (FIFO groups unblock as they go). */
  async function drain(name: string): Promise<Message[]> {
    const { url } = queue(name);
    const messages: Message[] = [];
    for (;;) {
      const { Messages } = await booted.system.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 10,
          AttributeNames: ["All"],
          MessageAttributeNames: ["All"],
          WaitTimeSeconds: 0,
        }),
      );
      if (!Messages?.length) return messages;
      messages.push(...Messages);
      await booted.system.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: Messages.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle! })),
        }),
      );
    }
  }

  afterEach(async function () {
    for (const name of [FAILURES, ACTIVITY]) await drain(name);
  });

  const mappingOf = (worker: string): StreamMapping => {
    const fn = booted.system.wiring.functions.find((candidate) => candidate.worker === worker)!;
    return booted.system.wiring.mappings.find((candidate) => candidate.functionName === fn.name) as StreamMapping;
  };

  /** How many times the mapping delivered each record, by its key, from the source's own reports. */
  const deliveries = (mapping: StreamMapping): Map<string, number> => {
    const counts = new Map<string, number>();
    for (const event of booted.of("delivered").filter((candidate) => candidate.mapping === mapping.name)) {
      for (const record of event.records ?? []) counts.set(record, (counts.get(record) ?? 0) + 1);
    }
    return counts;
  };

  /** Records the worker's batch summaries have accounted for so far. */
  const summarized = (worker: string) =>
    booted.logs(worker, "batch enqueued").reduce((sum, line) => sum + Number(line.records ?? 0), 0);

  /** Waits until the worker has accounted for `count` records more than `since`, and the mappings have nothing left in hand. */
  async function settled(worker: string, since: number, count: number) {
    await until(`${worker} to account for its ${count} records`, () => summarized(worker) - since >= count);
    // Nothing read from the sources is still being delivered or retried.
    await until("the mappings to be done", () => booted.system.pending() === 0);
  }

  /** The worker's metrics as its EMF documents say, summed: RecordsParked by reason. */
  const parkedCounted = (worker: string) =>
    emfMetrics(booted.logs(worker))
      .filter((metric) => metric.name === "RecordsParked")
      .reduce<Record<string, number>>((sum, metric) => {
        const reason = metric.dimensions.reason!;
        sum[reason] = (sum[reason] ?? 0) + metric.values.reduce((total, value) => total + value, 0);
        return sum;
      }, {});

  /** The failure queue's messages: every one a parked-record document (none of Lambda's pointers). */
  async function parkedOnFailureQueue(): Promise<ParkedMessage[]> {
    const messages = await drain(FAILURES);
    for (const message of messages) {
      const body = JSON.parse(message.Body!) as object;
      assert.ok(!("KinesisBatchInfo" in body) && !("KafkaBatchInfo" in body), `a pointer of Lambda's: ${message.Body}`);
    }
    return parkedRecordsOf(messages);
  }

  /** The activity messages on the account-activity queue, by fan. */
  async function enqueuedFans(): Promise<string[]> {
    return (await drain(ACTIVITY)).map((message) => (JSON.parse(message.Body!) as { globalUserId: string }).globalUserId).sort();
  }

  it("Kinesis: a poison purchase among good ones is parked with its record and reason; the good ones are enqueued once", async function () {
    const worker = "enqueueFromPurchaseStream";
    const mapping = mappingOf(worker);
    const since = summarized(worker);
    const purchase = (globalUserId: string, index: number) => ({
      purchaseId: `ord-park-${index}`,
      status: "SUCCESS",
      customer: { globalUserId },
      timestamp: new Date().toISOString(),
    });
    // The poison record passes the mapping's filter (status SUCCESS, a globalUserId), but its fan id is no fan id.
    const payloads = [
      purchase("fan-park-k1", 0),
      purchase("fan park k2", 1),
      purchase("fan-park-k3", 2),
      purchase("fan-park-k4", 3),
    ];
    const data = payloads.map((payload) => Buffer.from(JSON.stringify(payload)));
    const { Records } = await booted.system.kinesis.send(
      new PutRecordsCommand({
        StreamName: nameOfArn(mapping.streamArn!),
        Records: data.map((Data) => ({ PartitionKey: "one-shard", Data })),
      }),
    );
    const sequenceNumbers = Records!.map((record) => record.SequenceNumber!);

    await settled(worker, since, sequenceNumbers.length);

    // Delivered once each, in one batch: nothing was named in the response, retried or bisected.
    const delivered = deliveries(mapping);
    assert.deepEqual(
      sequenceNumbers.map((seq) => delivered.get(seq)),
      [1, 1, 1, 1],
    );
    const parked = await parkedOnFailureQueue();
    assert.equal(parked.length, 1);
    const [{ document, attributes }] = parked as [ParkedMessage];
    assert.deepEqual(document.source, { kind: "kinesis", eventSourceARN: mapping.streamArn, sequenceNumber: sequenceNumbers[1] });
    // The record as the mapping delivered it: its data, the bytes put.
    const record = document.record as { kinesis: { data: string; sequenceNumber: string }; eventSourceARN: string };
    assert.equal(Buffer.from(record.kinesis.data, "base64").toString("utf8"), data[1]!.toString("utf8"));
    assert.equal(record.kinesis.sequenceNumber, sequenceNumbers[1]);
    assert.equal(record.eventSourceARN, mapping.streamArn);
    assert.match(document.reason, /^purchase event is not as expected: customer\.globalUserId: /);
    assert.deepEqual([document.worker, document.failureReason], [worker, "invalid"]);
    assert.equal(attributes.parkedBy, worker);
    assert.deepEqual(parkedCounted(worker), { invalid: 1 });
    const lines = booted.logs(worker, "record parked");
    assert.deepEqual(
      lines.map((line) => [line.level, line.record]),
      [["WARN", sequenceNumbers[1]]],
    );
    assert.ok(!JSON.stringify(lines).includes(record.kinesis.data), "the payload is not logged");
    assert.deepEqual(booted.logs(worker, "record failed"), []);
    // The good records, enqueued once each, and each fan's rescore written once.
    assert.deepEqual(await enqueuedFans(), ["fan-park-k1", "fan-park-k3", "fan-park-k4"]);
    assert.deepEqual(
      booted
        .logs(worker, "activity enqueued")
        .map((line) => line.record)
        .filter((seq) => sequenceNumbers.includes(String(seq)))
        .sort(),
      [sequenceNumbers[0], sequenceNumbers[2], sequenceNumbers[3]].sort(),
    );
    const documents = createDocumentClient(
      new DynamoDBClient({
        endpoint: booted.standIns.dynamodbUrl,
        region: "us-east-1",
        credentials: { accessKeyId: "local", secretAccessKey: "local" },
      }),
    );
    try {
      const { Items } = await documents.send(new ScanCommand({ TableName: booted.system.wiring.tables[0]!.name }));
      assert.deepEqual(
        (Items ?? [])
          .filter(
            (item) => String(item.globalUserId).startsWith("fan-park-k") || String(item.globalUserId).startsWith("fan park"),
          )
          .map((item) => [item.type, item.globalUserId])
          .sort(),
        [
          ["rescore", "fan-park-k1"],
          ["rescore", "fan-park-k3"],
          ["rescore", "fan-park-k4"],
        ],
      );
    } finally {
      documents.destroy();
    }
  });

  it("Kafka: an undecodable activity among good ones is parked with its record and reason; the good ones are enqueued once", async function () {
    const worker = "enqueueFromActivityStream";
    const mapping = mappingOf(worker);
    const log = booted.system.kafka!;
    const since = summarized(worker);
    const activity = (globalUserId: string) =>
      Buffer.from(JSON.stringify({ globalUserId, action: "login", result: "success", timestamp: new Date().toISOString() }));
    const values = [activity("fan-park-a1"), Buffer.from("{ not an activity"), activity("fan-park-a3")];
    const placed = log.produce(values.map((value) => ({ key: "one-partition", value })));
    const keys = placed.map(({ partition, offset }) => `${log.topic}-${partition}@${offset}`);

    await settled(worker, since, keys.length);

    const delivered = deliveries(mapping);
    assert.deepEqual(
      keys.map((key) => delivered.get(key)),
      [1, 1, 1],
    );
    const parked = await parkedOnFailureQueue();
    assert.equal(parked.length, 1);
    const [{ document, attributes }] = parked as [ParkedMessage];
    const { partition, offset } = placed[1]!;
    assert.deepEqual(document.source, { kind: "kafka", topic: log.topic, partition, offset });
    // The record as the mapping delivered it: its value, the bytes produced, base64.
    const record = document.record as { topic: string; partition: number; offset: number; value: string };
    assert.deepEqual([record.topic, record.partition, record.offset], [log.topic, partition, offset]);
    assert.equal(Buffer.from(record.value, "base64").toString("utf8"), "{ not an activity");
    assert.match(document.reason, /^value is not JSON \(/);
    assert.deepEqual([document.worker, document.failureReason, attributes.parkedBy], [worker, "invalid", worker]);
    assert.deepEqual(parkedCounted(worker), { invalid: 1 });
    assert.deepEqual(
      booted.logs(worker, "record parked").map((line) => line.record),
      [{ partition: `${log.topic}-${partition}`, offset }],
    );
    assert.deepEqual(booted.logs(worker, "record failed"), []);
    assert.deepEqual(await enqueuedFans(), ["fan-park-a1", "fan-park-a3"]);
  });
});
