/**
 * Poison messages on the scoring queues, end to end: lookupArai built by its real factory behind
 * the local system's SQS source (tools/local/sources/sqs.ts), on queues of local-aws-sqs with the
 * redrive policy the stack gives them (maxReceiveCount SQS_MAX_RECEIVE_COUNT), once for the
 * on-demand standard queue and once for the account-activity FIFO queue. DynamoDB is dynalite,
 * the ARAI API and Secrets Manager are mocked at the wire; what the worker did is read at the
 * queues (deliveries, the dead-letter queue's messages), at the services (ARAI fetches, fan
 * writes) and in the EMF it writes.
 *
 * - A message that can never succeed is in the dead-letter queue after its first delivery, with
 *   its body and why, counted parked; the good messages of its batch (on the FIFO queue, those
 *   behind it in its group too) are processed once.
 * - A message that fails on all three deliveries is parked by the worker, saying it gave up after
 *   3 deliveries, and the messages behind it in its group are processed, not moved with it.
 */
import { strict as assert } from "node:assert";
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
} from "@aws-sdk/client-sqs";
import type { InvokeOutcome } from "../tools/local/lambda/pool";
import { startSqsMapping } from "../tools/local/sources/sqs";
import type { RunningMapping } from "../tools/local/sources/kinesis";
import { lookupArai } from "../workers/lookupArai";
import { SQS_MAX_RECEIVE_COUNT } from "../workers/shared/runtime/batch";
import { ARAI_PATH_TEMPLATE, ARAI_SECRET_ARN, araiAnswerFor } from "./support/arai";
import { emfMetrics } from "./support/emittedMetrics";
import { LAMBDA_AWS, setEnvironment } from "./support/environment";
import { type Answer, WireServer } from "./support/http";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { plannedFunction, reports, waitUntil } from "./support/local";
import { captureLogs, type LogLine } from "./support/logs";
import { startSecrets } from "./support/secrets";

type Handler = (event: unknown) => Promise<{ batchItemFailures: { itemIdentifier: string }[] }>;
type SqsEvent = { Records: { messageId: string; body: string; attributes: Record<string, string> }[] };

/** Seconds a received message stays invisible: longer than an invocation here, short for the test. */
const VISIBILITY_SECONDS = 2;
const ACCOUNT_PATH = /^\/arai\/v1\/accounts\/([^/]+)\/activity$/;

const activity = (globalUserId: string, action = "login") =>
  JSON.stringify({ globalUserId, source: "kafka", action, at: new Date().toISOString() });

describe("poison messages on the scoring queues, through the local SQS source", function () {
  let dynamo: LocalDynamo;
  let sqs: LocalSqs;
  let secrets: WireServer;
  let api: WireServer;
  let table: string;
  /** How the API answers for a fan; found by default. */
  let behaviour: Map<string, () => Answer>;
  let restore: () => void;
  const running: RunningMapping[] = [];
  let queues = 0;

  before(async function () {
    [dynamo, sqs] = await Promise.all([startDynamo(), startSqs()]);
    secrets = await startSecrets({ [ARAI_SECRET_ARN]: { username: "svc-scoring", password: "pw", clientId: "fan-identity" } });
    api = await WireServer.start((request) => {
      const fan = decodeURIComponent(ACCOUNT_PATH.exec(request.url)?.[1] ?? "");
      return (behaviour.get(fan) ?? (() => ({ body: araiAnswerFor(fan) })))();
    });
  });

  after(async function () {
    await Promise.all([dynamo?.close(), sqs?.close(), secrets?.close(), api?.close()]);
  });

  beforeEach(async function () {
    table = await dynamo.createFanTable();
    behaviour = new Map();
    api.requests.length = 0;
    dynamo.proxy.requests.length = 0;
  });

  afterEach(async function () {
    await Promise.all(running.splice(0).map((mapping) => mapping.stop()));
    restore?.();
  });

  async function queueArn(url: string): Promise<string> {
    const { Attributes } = await sqs.client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn"] }));
    return Attributes!.QueueArn!;
  }

  /** A source queue as the stack makes it: its dead-letter queue after SQS_MAX_RECEIVE_COUNT receives. */
  async function scoringQueue(name: "on-demand-scoring-sqs" | "acct-activity-sqs") {
    queues += 1;
    const fifo = name === "acct-activity-sqs";
    const named = (suffix: string) => `${name}${suffix}-${queues}${fifo ? ".fifo" : ""}`;
    const fifoAttributes = fifo ? { FifoQueue: "true" } : {};
    const dlq = (await sqs.client.send(new CreateQueueCommand({ QueueName: named("-dlq"), Attributes: fifoAttributes })))
      .QueueUrl!;
    const redrive = { deadLetterTargetArn: await queueArn(dlq), maxReceiveCount: SQS_MAX_RECEIVE_COUNT };
    const url = (
      await sqs.client.send(
        new CreateQueueCommand({
          QueueName: named(""),
          Attributes: {
            ...fifoAttributes,
            VisibilityTimeout: String(VISIBILITY_SECONDS),
            RedrivePolicy: JSON.stringify(redrive),
          },
        }),
      )
    ).QueueUrl!;
    return { url, arn: await queueArn(url), dlq, fifo };
  }

  type Queue = Awaited<ReturnType<typeof scoringQueue>>;

  /** Sends the bodies in one batch, in order; on a FIFO queue each in the group `group` gives it. */
  async function send(queue: Queue, messages: readonly { body: string; group?: string }[]) {
    const answer = await sqs.client.send(
      new SendMessageBatchCommand({
        QueueUrl: queue.url,
        Entries: messages.map((message, index) => ({
          Id: `e${index}`,
          MessageBody: message.body,
          MessageAttributes: { correlationId: { DataType: "String", StringValue: `corr-${queues}-${index}` } },
          ...(queue.fifo ? { MessageGroupId: message.group!, MessageDeduplicationId: `dedup-${queues}-${index}` } : {}),
        })),
      }),
    );
    assert.equal(answer.Failed, undefined);
  }

  /**
   * lookupArai built by its factory as Lambda builds it, consuming `queue` through the local
   * mapping; answers every event it was handed and every line it wrote (logs and EMF).
   */
  async function consume(queue: Queue, until: (deliveries: SqsEvent[]) => Promise<boolean>) {
    restore = setEnvironment({
      ...LAMBDA_AWS,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      POWERTOOLS_METRICS_DISABLED: "false",
      TABLE_NAME: table,
      ARAI_URL_TEMPLATE: `${api.url}${ARAI_PATH_TEMPLATE}`,
      ARAI_CREDENTIALS_SECRET_ARN: ARAI_SECRET_ARN,
      ARAI_TIMEOUT_MS: "500",
      // On the endpoint's host, as a deployment's queue URLs are on the SQS endpoint's.
      DEAD_LETTER_QUEUE_URLS: JSON.stringify({ [queue.arn]: `${sqs.endpoint}${new URL(queue.dlq).pathname}` }),
    });
    const handler = lookupArai.factory() as Handler;
    const events: SqsEvent[] = [];
    const invoke = async (event: unknown): Promise<InvokeOutcome> => {
      events.push(structuredClone(event) as SqsEvent);
      try {
        return { requestId: `r-${events.length}`, coldStart: events.length === 1, ms: 1, result: await handler(event) };
      } catch (error) {
        return {
          requestId: `r-${events.length}`,
          coldStart: false,
          ms: 1,
          error: { kind: "error", errorType: "Error", errorMessage: String(error) },
        };
      }
    };
    const { logs } = await captureLogs(async () => {
      const mapping = startSqsMapping({
        mapping: {
          kind: "sqs",
          name: `${queue.fifo ? "activity" : "on-demand"}-to-lookupArai`,
          functionName: "vfid-qa1-us-east-1-lookupArai",
          queueArn: queue.arn,
          batchSize: 10,
          batchingWindowSeconds: 0,
          filters: [],
          reportBatchItemFailures: true,
        },
        fn: plannedFunction({ name: "vfid-qa1-us-east-1-lookupArai", worker: "lookupArai" }),
        sqs: sqs.client,
        queueUrl: queue.url,
        invoke,
        report: reports().report,
        pollers: 1,
      });
      running.push(mapping);
      await waitUntil(() => until(events), "the queue's messages to be done", 120_000);
      await mapping.stop();
    });
    return { events, logs };
  }

  /** How many times each body was delivered to the worker. */
  const deliveriesOf = (events: readonly SqsEvent[], body: string) =>
    events.flatMap((event) => event.Records).filter((record) => record.body === body);

  async function depth(url: string): Promise<number> {
    const { Attributes } = await sqs.client.send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return Number(Attributes!.ApproximateNumberOfMessages) + Number(Attributes!.ApproximateNumberOfMessagesNotVisible);
  }

  /** The dead-letter queue's messages, read and left there. */
  async function parkedIn(queue: Queue): Promise<Message[]> {
    const { Messages } = await sqs.client.send(
      new ReceiveMessageCommand({
        QueueUrl: queue.dlq,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 60,
        AttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    return Messages ?? [];
  }

  /** ARAI fetches per fan, and UpdateItem calls naming the fan. */
  const fetchesOf = (fan: string) => api.requests.filter((request) => request.url.includes(`/${fan}/`)).length;
  const writesOf = (fan: string) =>
    dynamo.proxy.requests.filter(
      (request) => request.headers["x-amz-target"] === "DynamoDB_20120810.UpdateItem" && request.body.includes(`"${fan}"`),
    ).length;

  /** RecordsParked and RecordsFailed by reason, summed over the invocations. */
  function countsOf(logs: readonly LogLine[]) {
    const metrics = emfMetrics(logs as unknown as Record<string, unknown>[]);
    const byReason = (name: string) => {
      const counts: Record<string, number> = {};
      for (const metric of metrics.filter((candidate) => candidate.name === name)) {
        counts[metric.dimensions.reason!] = (counts[metric.dimensions.reason!] ?? 0) + metric.values[0]!;
      }
      return counts;
    };
    return { parked: byReason("RecordsParked"), failed: byReason("RecordsFailed") };
  }

  for (const kind of ["on-demand-scoring-sqs", "acct-activity-sqs"] as const) {
    const fifo = kind === "acct-activity-sqs";

    describe(fifo ? "the account-activity FIFO queue" : "the on-demand standard queue", function () {
      it("parks a poison message on its first delivery; the good messages of its batch are processed once", async function () {
        const queue = await scoringQueue(kind);
        const [a, b, c] = ["gu-park-a01", "gu-park-b02", "gu-park-c03"];
        const poison = '{"globalUserId": "gu-park-a01", "source": "kafka", "action": "login"';
        // On the FIFO queue the poison message sits in a's group, with a message of a's behind it.
        const messages = [
          { body: activity(a), group: a },
          { body: activity(b), group: b },
          { body: poison, group: a },
          { body: activity(a, "update_email"), group: a },
          { body: activity(c), group: c },
        ];
        await send(queue, messages);
        const { events, logs } = await consume(queue, async () => (await depth(queue.url)) === 0);

        assert.equal(deliveriesOf(events, poison).length, 1, "delivered once");
        const [parked, ...more] = await parkedIn(queue);
        assert.deepEqual(more, []);
        assert.equal(parked!.Body, poison);
        assert.equal(parked!.MessageAttributes?.parkedBy?.StringValue, "lookupArai");
        assert.match(String(parked!.MessageAttributes?.parkedReason?.StringValue), /^message body is not JSON/);
        assert.equal(parked!.MessageAttributes?.correlationId?.StringValue, `corr-${queues}-2`);
        if (fifo) assert.equal(parked!.Attributes?.MessageGroupId, a);
        assert.deepEqual(countsOf(logs), { parked: { invalid: 1 }, failed: {} });

        for (const message of messages.filter((candidate) => candidate.body !== poison)) {
          assert.equal(deliveriesOf(events, message.body).length, 1, `${message.body} delivered once`);
        }
        for (const fan of [a, b, c]) {
          assert.equal(fetchesOf(fan), 1, `${fan}: ARAI fetched once`);
          assert.equal(writesOf(fan), 1, `${fan}: written once`);
        }
        // a's message behind the poison one was processed: its activity is the one stored.
        assert.equal(((await dynamo.item(table, a))?.lastActivity as { action?: string }).action, "update_email");
      });

      it(`parks a message failing on all ${SQS_MAX_RECEIVE_COUNT} deliveries itself, and processes the messages behind it`, async function () {
        const queue = await scoringQueue(kind);
        const [down, behind, other] = ["gu-down-d01", "gu-behind-e02", "gu-other-f03"];
        behaviour.set(down, () => ({ status: 503, body: { message: "Service Unavailable" } }));
        // On the FIFO queue, behind's message is behind down's in one message group.
        const messages = [
          { body: activity(down), group: "g-shared" },
          { body: activity(behind), group: "g-shared" },
          { body: activity(other), group: other },
        ];
        await send(queue, messages);
        const { events, logs } = await consume(
          queue,
          async () => (await depth(queue.url)) === 0 && (await depth(queue.dlq)) === 1,
        );

        const deliveries = deliveriesOf(events, messages[0]!.body);
        assert.deepEqual(
          deliveries.map((record) => record.attributes.ApproximateReceiveCount),
          ["1", "2", "3"],
          "delivered three times",
        );
        const [parked, ...more] = await parkedIn(queue);
        assert.deepEqual(more, [], "only the failing message is in the dead-letter queue");
        assert.equal(parked!.Body, messages[0]!.body);
        assert.equal(parked!.MessageAttributes?.parkedBy?.StringValue, "lookupArai", "parked by the worker, not moved by SQS");
        assert.match(
          String(parked!.MessageAttributes?.parkedReason?.StringValue),
          /^gave up after 3 deliveries: ARAI lookup failed: accounts ARAI API GET account activity .*HTTP 503/,
        );
        if (fifo) assert.equal(parked!.Attributes?.MessageGroupId, "g-shared");
        const counts = countsOf(logs);
        assert.deepEqual(counts.parked, { dependency: 1 });

        // The messages behind it are done (the queue is empty, the dead-letter queue holds only the
        // failing one), each fan's ARAI fetched and stored once: a redelivery finds it fresh.
        for (const fan of [behind, other]) {
          assert.equal(fetchesOf(fan), 1, `${fan}: ARAI fetched once`);
          assert.equal(writesOf(fan), 1, `${fan}: written once`);
          assert.equal((await dynamo.item(table, fan))?.araiVersion, 1, fan);
        }
        assert.equal(deliveriesOf(events, messages[2]!.body).length, 1, "a message of another group is not held up");
        if (!fifo) assert.equal(deliveriesOf(events, messages[1]!.body).length, 1);
        assert.equal(await dynamo.item(table, down), undefined);
      });
    });
  }
});
