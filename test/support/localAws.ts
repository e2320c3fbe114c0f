/**
 * Real local AWS services for the workers' tests: DynamoDB (dynalite) and SQS (local-aws-sqs),
 * on loopback, each behind a recording proxy so tests count the calls at the service.
 */
import { CreateTableCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchWriteCommand, type DynamoDBDocumentClient, GetCommand, ScanCommand } from "@aws-sdk/lib-dynamodb";
import { createDocumentClient } from "../../workers/shared/runtime/dynamo";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import type { AddressInfo } from "node:net";
import { startSqsEmulator } from "../../tools/local/sqsDeduplication";
import { chunk } from "../../workers/shared/runtime/retry";
import { startProxy, type Interception, type RecordedRequest, type WireServer } from "./http";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };
const region = "us-east-1";

type Intercept = (request: RecordedRequest) => Interception | undefined;

export interface LocalDynamo {
  /** The proxy's URL: point clients (or AWS_ENDPOINT_URL_DYNAMODB) here. */
  readonly endpoint: string;
  /** Requests the service received, through the proxy. */
  readonly proxy: WireServer;
  readonly client: DynamoDBClient;
  readonly documents: DynamoDBDocumentClient;
  /** Makes the proxy misbehave for the requests `intercept` picks (undefined: pass through). */
  intercept: Intercept;
  /** Creates a table keyed like the fan-identity table; returns its name. */
  createFanTable(name?: string): Promise<string>;
  /** Every item of a table. */
  scan(table: string): Promise<Record<string, unknown>[]>;
  /** The item of a fan table under `userId`, if there is one. */
  item(table: string, userId: string): Promise<Record<string, unknown> | undefined>;
  /** Writes items as a test's starting state: the calls are not counted (the proxy's record is cleared). */
  seed(table: string, items: readonly Record<string, unknown>[]): Promise<void>;
  close(): Promise<void>;
}

let tables = 0;
let queues = 0;

export async function startDynamo(): Promise<LocalDynamo> {
  const dynalite = (require("dynalite") as (options: object) => import("node:http").Server)({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  await new Promise<void>((resolve) => dynalite.listen(0, "127.0.0.1", resolve));
  const target = `http://127.0.0.1:${(dynalite.address() as AddressInfo).port}`;
  const local: { intercept: Intercept } = { intercept: () => undefined };
  const proxy = await startProxy(target, (request) => local.intercept(request));
  const client = new DynamoDBClient({ endpoint: proxy.url, region, credentials });
  const documents = createDocumentClient(client);
  return Object.assign(local, {
    endpoint: proxy.url,
    proxy,
    client,
    documents,
    async createFanTable(name = `fan-identity-table-${++tables}`) {
      await client.send(
        new CreateTableCommand({
          TableName: name,
          KeySchema: [{ AttributeName: "userId", KeyType: "HASH" }],
          AttributeDefinitions: [{ AttributeName: "userId", AttributeType: "S" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
      return name;
    },
    async scan(table: string) {
      const items: Record<string, unknown>[] = [];
      let start: Record<string, unknown> | undefined;
      do {
        const page = await documents.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
        items.push(...(page.Items ?? []));
        start = page.LastEvaluatedKey;
      } while (start);
      return items;
    },
    async item(table: string, userId: string) {
      return (await documents.send(new GetCommand({ TableName: table, Key: { userId } }))).Item;
    },
    async seed(table: string, items: readonly Record<string, unknown>[]) {
      for (const batch of chunk(items, 25)) {
        await documents.send(
          new BatchWriteCommand({ RequestItems: { [table]: batch.map((item) => ({ PutRequest: { Item: item } })) } }),
        );
      }
      proxy.requests.length = 0;
    },
    async close() {
      client.destroy();
      await proxy.close();
      // Idle keep-alive sockets (the proxy's) would hold close() until they time out.
      dynalite.closeAllConnections();
      await new Promise<void>((resolve) => dynalite.close(() => resolve()));
    },
  });
}

export interface LocalSqs {
  readonly endpoint: string;
  readonly proxy: WireServer;
  readonly client: SQSClient;
  intercept: Intercept;
  /**
   * Creates a queue (FIFO when the name ends in .fifo); returns its URL, on the proxy's host: the
   * SDK sends to the host of the queue URL it is given, so a worker given this URL is counted.
   */
  createQueue(name: string): Promise<string>;
  /** Reads a queue as its consumer does: receive, then delete, until nothing is left (FIFO groups unblock as they go). */
  drain(queueUrl: string): Promise<Message[]>;
  /** A new queue (name + a counter; FIFO when the name ends in .fifo), with the service's call counts from now on. */
  freshQueue(name: string): Promise<string>;
  close(): Promise<void>;
}

export async function startSqs(): Promise<LocalSqs> {
  const server = await startSqsEmulator();
  const target = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const local: { intercept: Intercept } = { intercept: () => undefined };
  const proxy = await startProxy(target, (request) => local.intercept(request));
  const client = new SQSClient({ endpoint: proxy.url, region, credentials });
  return Object.assign(local, {
    endpoint: proxy.url,
    proxy,
    client,
    async createQueue(name: string) {
      const fifo = name.endsWith(".fifo");
      const answer = await client.send(
        new CreateQueueCommand({
          QueueName: name,
          Attributes: fifo ? { FifoQueue: "true", VisibilityTimeout: "300" } : { VisibilityTimeout: "300" },
        }),
      );
      return `${proxy.url}${new URL(answer.QueueUrl!).pathname}`;
    },
    async freshQueue(name: string) {
      queues += 1;
      const url = await this.createQueue(name.endsWith(".fifo") ? `${name.slice(0, -5)}-${queues}.fifo` : `${name}-${queues}`);
      proxy.requests.length = 0;
      return url;
    },
    async drain(queueUrl: string) {
      const messages: Message[] = [];
      for (;;) {
        const answer = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: queueUrl,
            MaxNumberOfMessages: 10,
            // Local SQS reads the older AttributeNames; SQS takes either.
            AttributeNames: ["All"],
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
            WaitTimeSeconds: 0,
          }),
        );
        if (!answer.Messages?.length) return messages;
        messages.push(...answer.Messages);
        await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: answer.Messages.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle! })),
          }),
        );
      }
    },
    async close() {
      client.destroy();
      await proxy.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}
