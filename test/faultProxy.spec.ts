/**
 * Faults at the wire (tools/local/faults): the fault proxy in front of real local services
 * (dynalite and local-aws-sqs, each behind the recording proxy of support/localAws.ts, so what
 * reached the service is counted there), with the AWS SDK and the workers' own batch helpers as
 * its callers. A throttled call is retried by the SDK, and counted; keys and items left
 * unprocessed are sent again by runtime/dynamo.ts and nothing is lost; entries SQS refused are
 * sent again by runtime/sqs.ts; a hanging request is answered once its rule is cleared.
 */
import * as assert from "node:assert/strict";
import { GetItemCommand, PutItemCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { CreateQueueCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { awsError, awsOperation } from "../tools/local/faults/awsJson";
import { throttling, unprocessedItems } from "../tools/local/faults/dynamodb";
import { createFaultProxies, type FaultProxies } from "../tools/local/faults/proxy";
import { failedEntries } from "../tools/local/faults/sqs";
import { batchGetItems, batchPutItems, createDocumentClient } from "../workers/shared/runtime/dynamo";
import { SEND_ATTEMPTS, sendMessages } from "../workers/shared/runtime/sqs";
import { countOperations } from "./support/http";
import { waitUntil } from "./support/local";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const region = "us-east-1";

describe("faults at the wire", function () {
  let dynamo: LocalDynamo;
  let sqs: LocalSqs;
  let faults: FaultProxies;
  let dynamoUrl: string;
  let sqsUrl: string;
  let client: DynamoDBClient;
  let sqsClient: SQSClient;

  before(async function () {
    [dynamo, sqs] = await Promise.all([startDynamo(), startSqs()]);
    faults = createFaultProxies();
    dynamoUrl = await faults.wrapEndpoint("dynamodb", dynamo.endpoint);
    sqsUrl = await faults.wrapEndpoint("sqs", sqs.endpoint);
    // Three attempts: the SDK's standard retry mode, which the workers use.
    client = new DynamoDBClient({ endpoint: dynamoUrl, region, credentials, maxAttempts: 3 });
    sqsClient = new SQSClient({ endpoint: sqsUrl, region, credentials, maxAttempts: 3 });
  });
  afterEach(function () {
    faults.clear();
  });
  after(async function () {
    client?.destroy();
    sqsClient?.destroy();
    await faults?.close();
    await Promise.all([dynamo?.close(), sqs?.close()]);
  });

  const fans = (prefix: string, n: number) => Array.from({ length: n }, (_, index) => `${prefix}-${index}`);

  it("passes every request through unchanged while no rule is set, counting them", async function () {
    const table = await dynamo.createFanTable();
    const before = faults.counts("dynamodb");
    await client.send(new PutItemCommand({ TableName: table, Item: { userId: { S: "gu-pass" }, score: { N: "0.5" } } }));
    const { Item } = await client.send(new GetItemCommand({ TableName: table, Key: { userId: { S: "gu-pass" } } }));
    assert.deepEqual(Item, { userId: { S: "gu-pass" }, score: { N: "0.5" } });
    const after = faults.counts("dynamodb");
    assert.equal(after.seen - before.seen, 2);
    assert.equal(after.faulted - before.faulted, 0);
  });

  describe("DynamoDB throttling", function () {
    it("answers ProvisionedThroughputExceededException, which the SDK retries: every write lands, each throttled attempt retried once", async function () {
      const table = await dynamo.createFanTable();
      const throttle = throttling({ share: 1 });
      faults.set("dynamodb", throttle.rule);
      const before = faults.counts("dynamodb");
      const ids = fans("gu-throttled", 6);
      await Promise.all(ids.map((id) => client.send(new PutItemCommand({ TableName: table, Item: { userId: { S: id } } }))));
      faults.clear();
      // Every attempt but the SDK's last is throttled: 2 of 3 per call.
      assert.equal(throttle.stats().throttled, ids.length * 2);
      assert.deepEqual(throttle.stats().byOperation, { PutItem: ids.length * 2 });
      assert.equal(throttle.stats().retried, ids.length * 2, "each throttled attempt was followed by another");
      const counts = faults.counts("dynamodb");
      assert.equal(counts.faulted - before.faulted, ids.length * 2);
      assert.equal(counts.retried - before.retried, ids.length * 2, "the SDK marked its retries as such");
      assert.deepEqual((await dynamo.scan(table)).map((item) => item.userId).sort(), [...ids].sort());
    });

    it("throttling every attempt fails the call with the service's error, after the SDK's attempts", async function () {
      const table = await dynamo.createFanTable();
      faults.set("dynamodb", throttling({ share: 1, spareLastAttempt: false }).rule);
      const reached = countOperations(dynamo.proxy).PutItem ?? 0;
      const error = await client.send(new PutItemCommand({ TableName: table, Item: { userId: { S: "gu-never" } } })).then(
        () => undefined,
        (thrown: unknown) => thrown as Error & { $metadata: { attempts?: number; httpStatusCode?: number } },
      );
      assert.equal(error?.name, "ProvisionedThroughputExceededException");
      assert.equal(error.$metadata.httpStatusCode, 400);
      assert.equal(error.$metadata.attempts, 3);
      assert.equal(countOperations(dynamo.proxy).PutItem ?? 0, reached, "no attempt reached the service");
    });
  });

  describe("unprocessed keys and items", function () {
    it("BatchWriteItem: the items left unprocessed are written by batchPutItems' retries, none lost", async function () {
      const table = await dynamo.createFanTable();
      const unprocessed = unprocessedItems({ share: 0.5 });
      faults.set("dynamodb", unprocessed.rule);
      const items = fans("gu-write", 25).map((userId) => ({ userId, type: "stagingScore", score: 0.25 }));
      const documents = createDocumentClient(client);
      const result = await batchPutItems(documents, table, "userId", items);
      faults.clear();
      assert.deepEqual(result.unwritten, []);
      // Every second item of the 25, each left unprocessed once: the retry writes them all.
      assert.equal(unprocessed.stats().moved, 12);
      assert.equal(unprocessed.stats().sentAgain, 12, "every item left unprocessed was sent again");
      assert.equal(result.calls, 2);
      assert.deepEqual((await dynamo.scan(table)).map((item) => item.userId).sort(), items.map((item) => item.userId).sort());
    });

    it("BatchGetItem: the keys left unprocessed are read by batchGetItems' retries, with the projection asked for", async function () {
      const table = await dynamo.createFanTable();
      const ids = fans("gu-read", 40);
      await dynamo.seed(
        table,
        ids.map((userId) => ({ userId, araiUpdatedAt: "2026-11-24T09:00:00.000Z", arai: { big: true } })),
      );
      const unprocessed = unprocessedItems({ share: 0.25, operations: ["BatchGetItem"] });
      faults.set("dynamodb", unprocessed.rule);
      const read = await batchGetItems(createDocumentClient(client), table, "userId", ids, ["userId", "araiUpdatedAt"]);
      faults.clear();
      assert.deepEqual(read.unread, []);
      assert.equal(unprocessed.stats().moved, 10, "a quarter of 40 keys, each at most once");
      assert.equal(unprocessed.stats().sentAgain, 10);
      assert.equal(read.calls, 2);
      assert.deepEqual(read.items.map((item) => item.userId).sort(), [...ids].sort());
      for (const item of read.items) assert.deepEqual(Object.keys(item).sort(), ["araiUpdatedAt", "userId"]);
    });
  });

  describe("SQS batch entries refused", function () {
    let queueUrl: string;
    before(async function () {
      // Created through the fault proxy: the answer's URL names the proxy, so the SDK keeps coming through it.
      const created = await sqsClient.send(
        new CreateQueueCommand({ QueueName: "fault-proxy-activity.fifo", Attributes: { FifoQueue: "true" } }),
      );
      queueUrl = created.QueueUrl!;
      assert.equal(new URL(queueUrl).host, new URL(sqsUrl).host);
    });

    /** Every message of the queue, received and deleted (a FIFO group gives more once its messages in flight are gone). */
    const receiveAll = async () => {
      const bodies: string[] = [];
      for (;;) {
        const { Messages } = await sqsClient.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
        );
        if (!Messages?.length) return bodies;
        bodies.push(...Messages.map((message) => message.Body!));
        await sqsClient.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: Messages.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle! })),
          }),
        );
      }
    };
    const messages = (prefix: string, n: number) =>
      fans(prefix, n).map((id, index) => ({
        id,
        body: JSON.stringify({ globalUserId: id }),
        groupId: `group-${index % 3}`,
        deduplicationId: id,
      }));

    it("entries refused once are sent again by sendMessages: every message reaches the queue once, none sent twice", async function () {
      const refuse = failedEntries({ share: 0.3 });
      faults.set("sqs", refuse.rule);
      const sent = messages("gu-sqs", 30);
      const outcome = await sendMessages(sqsClient, queueUrl, sent, { ordered: true, baseDelayMs: 1 });
      faults.clear();
      assert.deepEqual(outcome.failed, []);
      const stats = refuse.stats();
      assert.equal(stats.picked, 9, "30% of 30 entries");
      assert.equal(stats.takenAfter, stats.picked, "every refused entry was sent again and taken");
      assert.ok(stats.refused >= stats.picked, "entries of a refused entry's group behind it are held back too");
      assert.deepEqual((await receiveAll()).sort(), sent.map((message) => message.body).sort());
    });

    it(`entries refused ${SEND_ATTEMPTS} times make sendMessages give up on them; sent again later they are taken`, async function () {
      const refuse = failedEntries({ share: 1, limit: 2, times: SEND_ATTEMPTS });
      faults.set("sqs", refuse.rule);
      const sent = messages("gu-sticky", 5).map((message) => ({ ...message, groupId: message.id }));
      const first = await sendMessages(sqsClient, queueUrl, sent, { baseDelayMs: 1 });
      assert.deepEqual(first.failed.map((failure) => failure.id).sort(), ["gu-sticky-0", "gu-sticky-1"]);
      assert.match(first.failed[0]!.reason, /SQS refused the message: InternalError/);
      // The source delivers the failed records again: their messages are sent again, and taken.
      const again = await sendMessages(sqsClient, queueUrl, sent, { baseDelayMs: 1 });
      faults.clear();
      assert.deepEqual(again.failed, []);
      assert.equal(refuse.stats().takenAfter, 2);
      // Deduplication ids keep the messages sent twice from reaching the queue twice.
      assert.deepEqual((await receiveAll()).sort(), sent.map((message) => message.body).sort());
    });

    it("an error answer made by awsError is read by the SDK as the service's own error", async function () {
      faults.set("sqs", (request) =>
        awsOperation(request) === "ReceiveMessage"
          ? { kind: "respond", ...awsError("sqs", "QueueDoesNotExist", "The specified queue does not exist.") }
          : undefined,
      );
      const error = await sqsClient.send(new ReceiveMessageCommand({ QueueUrl: queueUrl })).then(
        () => undefined,
        (thrown: unknown) => thrown as Error,
      );
      assert.equal(error?.name, "QueueDoesNotExist");
      assert.equal(error.message, "The specified queue does not exist.");
    });
  });

  describe("a hanging request", function () {
    it("is not forwarded while its rule holds, and is answered by forwarding it once the rule is cleared", async function () {
      const table = await dynamo.createFanTable();
      await dynamo.seed(table, [{ userId: "gu-hang", score: 0.75 }]);
      faults.set("dynamodb", (request) => (awsOperation(request) === "GetItem" ? { kind: "hang" } : undefined));
      const seen = faults.counts("dynamodb").seen;
      const reached = countOperations(dynamo.proxy).GetItem ?? 0;
      let settled = false;
      const answer = client.send(new GetItemCommand({ TableName: table, Key: { userId: { S: "gu-hang" } } })).finally(() => {
        settled = true;
      });
      await waitUntil(() => faults.counts("dynamodb").seen > seen, "the GetItem at the proxy");
      // A PutItem passes meanwhile: only the rule's requests hang.
      await client.send(new PutItemCommand({ TableName: table, Item: { userId: { S: "gu-other" } } }));
      assert.equal(settled, false, "the hanging GetItem was answered");
      assert.equal(countOperations(dynamo.proxy).GetItem ?? 0, reached, "the hanging GetItem reached the service");
      faults.clear();
      const { Item } = await answer;
      assert.deepEqual(Item, { userId: { S: "gu-hang" }, score: { N: "0.75" } });
      assert.equal(countOperations(dynamo.proxy).GetItem ?? 0, reached + 1);
    });
  });
});
