/**
 * The local SQS keeps FIFO deduplication's window as SQS does: a deduplication id accepted within
 * the window is not delivered again, even after its first message was received and deleted; a
 * repeat is answered with the first message's id; the window is per queue, or per message group
 * when the queue's scope says so, and it ends.
 */
import * as assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { DEDUPLICATION_WINDOW_MS, holdUndelayedMessagesAtOnce, startSqsEmulator } from "../tools/local/sqsDeduplication";

const credentials = { accessKeyId: "local", secretAccessKey: "local" };

/** A client of the local SQS listening on `server`. */
const clientOf = (server: Server) =>
  new SQSClient({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, region: "eu-west-1", credentials });

describe("local SQS: FIFO deduplication window", function () {
  /** The clock of the second emulator's window, moved by the test. */
  let clock = 0;
  let server: Server;
  let clockedServer: Server;
  let client: SQSClient;
  let clockedClient: SQSClient;
  let queues = 0;

  before(async function () {
    [server, clockedServer] = await Promise.all([startSqsEmulator(), startSqsEmulator(DEDUPLICATION_WINDOW_MS, () => clock)]);
    client = clientOf(server);
    clockedClient = clientOf(clockedServer);
  });

  after(async function () {
    client.destroy();
    clockedClient.destroy();
    await Promise.all([server, clockedServer].map((of) => new Promise<void>((resolve) => of.close(() => resolve()))));
  });

  async function fifoQueue(on: SQSClient, attributes: Record<string, string> = {}): Promise<string> {
    queues += 1;
    const answer = await on.send(
      new CreateQueueCommand({ QueueName: `dedup-${queues}.fifo`, Attributes: { FifoQueue: "true", ...attributes } }),
    );
    return answer.QueueUrl!;
  }

  /** Receives and deletes until the queue answers nothing, as a consumer does. */
  async function consume(on: SQSClient, queueUrl: string): Promise<Message[]> {
    const received: Message[] = [];
    for (;;) {
      const { Messages = [] } = await on.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
      );
      if (Messages.length === 0) return received;
      for (const message of Messages) {
        received.push(message);
        await on.send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle! }));
      }
    }
  }

  const send = (on: SQSClient, queueUrl: string, body: string, deduplicationId: string, group = "g") =>
    on.send(
      new SendMessageCommand({
        QueueUrl: queueUrl,
        MessageBody: body,
        MessageGroupId: group,
        MessageDeduplicationId: deduplicationId,
      }),
    );

  it("is SQS's five minutes", function () {
    assert.equal(DEDUPLICATION_WINDOW_MS, 300_000);
  });

  it("does not deliver a repeat sent after the first copy was received and deleted, and answers the first copy's id", async function () {
    const queueUrl = await fifoQueue(client);
    const first = await send(client, queueUrl, "first", "d1");
    assert.deepEqual(
      (await consume(client, queueUrl)).map((message) => message.Body),
      ["first"],
    );
    const repeat = await send(client, queueUrl, "repeat", "d1");
    assert.equal(repeat.MessageId, first.MessageId);
    assert.equal(repeat.SequenceNumber, first.SequenceNumber);
    assert.deepEqual(await consume(client, queueUrl), []);
    await send(client, queueUrl, "other", "d2");
    assert.deepEqual(
      (await consume(client, queueUrl)).map((message) => message.Body),
      ["other"],
    );
  });

  it("accepts every entry of a batch and stores only those whose ids are new", async function () {
    const queueUrl = await fifoQueue(client);
    await send(client, queueUrl, "a", "a");
    await consume(client, queueUrl);
    const answer = await client.send(
      new SendMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: ["a", "b", "c", "b"].map((id, index) => ({
          Id: `e${index}`,
          MessageBody: `${id}@${index}`,
          MessageGroupId: "g",
          MessageDeduplicationId: id,
        })),
      }),
    );
    assert.deepEqual(answer.Failed ?? [], []);
    assert.deepEqual(
      (answer.Successful ?? []).map((entry) => entry.Id),
      ["e0", "e1", "e2", "e3"],
    );
    assert.equal(answer.Successful![1].MessageId, answer.Successful![3].MessageId);
    assert.deepEqual(
      (await consume(client, queueUrl)).map((message) => message.Body),
      ["b@1", "c@2"],
    );
  });

  it("keeps ids per queue: the same id on another queue is delivered", async function () {
    const [one, two] = await Promise.all([fifoQueue(client), fifoQueue(client)]);
    await send(client, one, "one", "same");
    await send(client, two, "two", "same");
    assert.deepEqual(
      (await consume(client, one)).map((message) => message.Body),
      ["one"],
    );
    assert.deepEqual(
      (await consume(client, two)).map((message) => message.Body),
      ["two"],
    );
  });

  it("keeps ids per message group when the queue's deduplication scope is the group", async function () {
    const queueUrl = await fifoQueue(client, { DeduplicationScope: "messageGroup", FifoThroughputLimit: "perMessageGroupId" });
    await send(client, queueUrl, "g1", "same", "g1");
    await send(client, queueUrl, "g2", "same", "g2");
    await send(client, queueUrl, "g1 again", "same", "g1");
    assert.deepEqual((await consume(client, queueUrl)).map((message) => message.Body).sort(), ["g1", "g2"]);
  });

  it("delivers the id again once the window has passed", async function () {
    const queueUrl = await fifoQueue(clockedClient);
    const first = await send(clockedClient, queueUrl, "first", "d1");
    await consume(clockedClient, queueUrl);
    assert.equal((await send(clockedClient, queueUrl, "within", "d1")).MessageId, first.MessageId);
    clock += DEDUPLICATION_WINDOW_MS - 1;
    assert.equal((await send(clockedClient, queueUrl, "at the end", "d1")).MessageId, first.MessageId);
    clock += 1;
    const after = await send(clockedClient, queueUrl, "after", "d1");
    assert.notEqual(after.MessageId, first.MessageId);
    assert.deepEqual(
      (await consume(clockedClient, queueUrl)).map((message) => message.Body),
      ["after"],
    );
  });
});

describe("local SQS: messages sent without a delay", function () {
  type Queue = {
    setRecord(message: { MessageBody: string; DelaySeconds?: number }): unknown;
    getAttributes(names: string[]): Record<string, string>;
  };
  const { createRequestHandler } = require("local-aws-sqs") as {
    createRequestHandler(options: object): {
      service: { Queues: Queue[]; PORT: number };
      requestHandler: (request: unknown, response: unknown) => void;
    };
  };

  it("are on the queue as soon as they are sent; a delayed one is not until its delay ends", async function () {
    const { service, requestHandler } = createRequestHandler({
      port: 0,
      hostname: "127.0.0.1",
      emulateQueueCreationLifecycle: false,
    });
    const server = createServer(requestHandler);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const client = clientOf(server);
    try {
      await client.send(new CreateQueueCommand({ QueueName: "at-once" }));
      holdUndelayedMessagesAtOnce(service);
      const [queue] = service.Queues;
      // No timer runs between these calls: what the queue holds is what the send left there.
      queue!.setRecord({ MessageBody: "now" });
      assert.equal(queue!.getAttributes(["ApproximateNumberOfMessages"]).ApproximateNumberOfMessages, "1");
      queue!.setRecord({ MessageBody: "later", DelaySeconds: 30 });
      assert.equal(queue!.getAttributes(["ApproximateNumberOfMessages"]).ApproximateNumberOfMessages, "1");
    } finally {
      client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe("local SQS: queue depth", function () {
  let server: Server;
  let client: SQSClient;

  before(async function () {
    server = await startSqsEmulator();
    client = clientOf(server);
  });

  after(async function () {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const depthOf = async (queueUrl: string) => {
    const { Attributes } = await client.send(
      new GetQueueAttributesCommand({
        QueueUrl: queueUrl,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return {
      visible: Number(Attributes!.ApproximateNumberOfMessages),
      inFlight: Number(Attributes!.ApproximateNumberOfMessagesNotVisible),
    };
  };

  it("counts a received message as in flight only, not also as available", async function () {
    const { QueueUrl } = await client.send(new CreateQueueCommand({ QueueName: "depth" }));
    for (const body of ["one", "two", "three"]) await client.send(new SendMessageCommand({ QueueUrl, MessageBody: body }));
    assert.deepEqual(await depthOf(QueueUrl!), { visible: 3, inFlight: 0 });
    const { Messages = [] } = await client.send(
      new ReceiveMessageCommand({ QueueUrl, MaxNumberOfMessages: 1, VisibilityTimeout: 300, WaitTimeSeconds: 0 }),
    );
    assert.equal(Messages.length, 1);
    assert.deepEqual(await depthOf(QueueUrl!), { visible: 2, inFlight: 1 });
    await client.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages[0]!.ReceiptHandle! }));
    assert.deepEqual(await depthOf(QueueUrl!), { visible: 2, inFlight: 0 });
    const { Attributes } = await client.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ["All"] }));
    assert.equal(Attributes!.ApproximateNumberOfMessages, "2", "All reports the same count");
  });
});
