/**
 * `npm run redrive` (tools/redrive.ts) against the local system (tools/local) planned from qa1:
 * dead-letter queues emptied back into their source queues (standard and FIFO), Kinesis failure
 * records resolved to their records and re-delivered to enqueueFromVfStream through the local
 * Lambda Invoke API, the records a worker still rejects left parked, records the shard no longer
 * holds left (a proxy in front of kinesalite answers as Kinesis does after trimming), Kafka and
 * unrecognisable records reported and left, the records the workers parked themselves (Kinesis and
 * Kafka) invoked again one by one, an import worker's parked S3 event invoked again, and an unknown
 * queue refused with the list. The cases that move work run a dry run first and check that it
 * changed nothing. The failure records are written as Lambda documents them, the parked records as
 * the workers write them (or by the workers themselves); the dead letters are made by SQS itself,
 * from receives past the queues' maxReceiveCount, and by the parking lookupArai uses
 * (workers/shared/runtime/deadLetters.ts).
 */
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import * as path from "node:path";
import { KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { LambdaClient } from "@aws-sdk/client-lambda";
import {
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { Logger } from "@aws-lambda-powertools/logger";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { projectRoot } from "../components/archive";
import { kinesisEvent } from "../tools/local/sources/kinesis";
import { readWiring, type StreamMapping, type Wiring } from "../tools/local/wiring";
import { redrive, type RedriveClients } from "../tools/redrive/run";
import { UnknownQueueError } from "../tools/redrive/targets";
import { createDeadLetterParking } from "../workers/shared/runtime/deadLetters";
import { parkedRecordDocument, type ParkedSource } from "../workers/shared/runtime/parking";
import { type BootedSystem, bootLocal } from "./support/localSystem";
import { fixture } from "./support/fixtures";
import { operationOf, startProxy } from "./support/http";
import { waitUntil } from "./support/local";
import { parkedRecordsOf } from "./support/parked";
import { planStack } from "./support/program";

const PREFIX = "vfid-qa1-us-east-1-";
const credentials = { accessKeyId: "local", secretAccessKey: "local" };

describe("npm run redrive, against the local system", function () {
  let booted: BootedSystem;
  let wiring: Wiring;
  let clients: RedriveClients;
  const queueUrl = (name: string) => [...booted.system.queues.values()].find((queue) => queue.planned.name === name)!.url;
  const sqs = () => booted.system.sqs;

  before(async function () {
    const plan = await planStack("qa1");
    wiring = readWiring(plan.resources);
    // The VF and Kafka workers, their mappings not polling (the records reach them through the redrive
    // alone), and an import worker.
    booted = await bootLocal(plan.resources, {
      workers: ["enqueueFromVfStream", "enqueueFromActivityStream", "startBotOrNotImport"],
      mappings: false,
      shards: 1,
    });
    const { endpoints } = booted.system;
    clients = {
      sqs: new SQSClient({ endpoint: endpoints.sqs, region: "us-east-1", credentials }),
      kinesis: new KinesisClient({
        endpoint: endpoints.kinesis,
        region: "us-east-1",
        credentials,
        requestHandler: new NodeHttpHandler(),
      }),
      lambda: new LambdaClient({ endpoint: endpoints.lambda, region: "us-east-1", credentials }),
    };
  });

  after(async function () {
    if (clients) Object.values(clients).forEach((client) => client.destroy());
    await booted?.stop();
  });

  afterEach(async function () {
    for (const queue of booted.system.queues.values()) await drain(queue.url);
  });

  /** Runs the redrive in this process, collecting what it prints. */
  async function run(from: string, apply: boolean, limit?: number) {
    const lines: string[] = [];
    const result = await redrive({
      wiring,
      from,
      apply,
      limit,
      clients: () => clients,
      print: (line) => lines.push(line),
      // A short poll: the local SQS answers one from every message it holds, where SQS samples
      // only some of its servers (which is why the redrive long-polls by default).
      waitSeconds: 0,
    });
    return { ...result, output: lines.join("\n") };
  }

  /** Runs `node build/tools/redrive.js` with the local endpoints in the SDK's environment. */
  function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const { endpoints } = booted.system;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      AWS_ENDPOINT_URL_SQS: endpoints.sqs,
      AWS_ENDPOINT_URL_KINESIS: endpoints.kinesis,
      AWS_ENDPOINT_URL_LAMBDA: endpoints.lambda,
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
      AWS_REGION: "us-east-1",
    };
    delete env.AWS_PROFILE;
    const root = projectRoot();
    return new Promise((resolve) =>
      execFile(
        process.execPath,
        [path.join(root, "build/tools/redrive.js"), ...args],
        { cwd: root, env },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      ),
    );
  }

  async function depth(url: string): Promise<number> {
    const { Attributes } = await sqs().send(
      new GetQueueAttributesCommand({
        QueueUrl: url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    return Number(Attributes!.ApproximateNumberOfMessages) + Number(Attributes!.ApproximateNumberOfMessagesNotVisible);
  }

  /** That `url` holds `count` messages; if not, the failure shows those it can see. */
  async function assertDepth(url: string, count: number): Promise<void> {
    const held = await depth(url);
    if (held === count) return;
    const { Messages = [] } = await sqs().send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 0, WaitTimeSeconds: 0 }),
    );
    const seen = Messages.map((message) => `\n  ${message.Body!.slice(0, 300)}`).join("");
    assert.fail(`${url} holds ${held} messages, not ${count}; visible now:${seen || " none"}`);
  }

  /** Every message of a queue, received and deleted, with all their attributes. */
  async function drain(url: string): Promise<Message[]> {
    const messages: Message[] = [];
    for (;;) {
      const { Messages } = await sqs().send(
        new ReceiveMessageCommand({
          QueueUrl: url,
          MaxNumberOfMessages: 10,
          AttributeNames: ["All"],
          MessageSystemAttributeNames: ["All"],
          MessageAttributeNames: ["All"],
          WaitTimeSeconds: 0,
        }),
      );
      if (!Messages?.length) return messages;
      messages.push(...Messages);
      await sqs().send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: Messages.map((message, index) => ({ Id: `d${index}`, ReceiptHandle: message.ReceiptHandle! })),
        }),
      );
    }
  }

  /**
   * Makes SQS move the source queue's messages to its dead-letter queue, as it does after
   * maxReceiveCount receives: receives them, visible again at once, until all `count` are there.
   */
  async function deadLetter(source: string, dlq: string, count: number): Promise<void> {
    await waitUntil(async () => {
      await sqs().send(new ReceiveMessageCommand({ QueueUrl: source, MaxNumberOfMessages: 10, VisibilityTimeout: 0 }));
      return (await depth(dlq)) === count && (await depth(source)) === 0;
    }, `${count} messages moved to ${dlq}`);
  }

  const attribute = (value: string): MessageAttributeValue => ({ DataType: "String", StringValue: value });

  describe("a dead-letter queue", function () {
    it("lists each message in a dry run, moving none, then moves each back with its body and attributes", async function () {
      const source = queueUrl(`${PREFIX}on-demand-scoring-sqs`);
      const dlq = queueUrl(`${PREFIX}on-demand-scoring-sqs-dlq`);
      const sent = ["fan-a", "fan-b", "fan-c"].map((fan) => ({
        body: JSON.stringify({ globalUserId: fan, source: "vf", action: "vfLogin", at: "2026-12-01T10:00:00.000Z" }),
        correlationId: `corr-${fan}`,
      }));
      for (const message of sent) {
        await sqs().send(
          new SendMessageCommand({
            QueueUrl: source,
            MessageBody: message.body,
            MessageAttributes: { correlationId: attribute(message.correlationId) },
          }),
        );
      }
      await deadLetter(source, dlq, 3);

      const dry = await run("on-demand-scoring-sqs-dlq", false);
      assert.equal(dry.target.kind, "deadLetter");
      assert.equal(dry.outcomes.length, 3);
      assert.ok(dry.outcomes.every((outcome) => outcome.action === "would move"));
      for (const outcome of dry.outcomes)
        assert.match(dry.output, new RegExp(`would move ${outcome.messageId} \\(.*attributes correlationId`));
      assert.equal(new Set(dry.outcomes.map((outcome) => outcome.messageId)).size, 3);
      // Nothing moved, and the messages are visible again for the real run.
      await assertDepth(source, 0);
      await assertDepth(dlq, 3);

      const real = await run(`${PREFIX}on-demand-scoring-sqs-dlq`, true);
      assert.deepEqual(
        real.outcomes.map((outcome) => outcome.action),
        ["moved", "moved", "moved"],
      );
      await assertDepth(dlq, 0);
      const back = await drain(source);
      assert.deepEqual(
        back.map((message) => [message.Body, message.MessageAttributes?.correlationId?.StringValue]).sort(),
        sent.map((message) => [message.body, message.correlationId]).sort(),
      );
    });

    it("moves a FIFO dead-letter queue's messages back in their groups, in order, through the CLI, after a dry run and a limit", async function () {
      const source = queueUrl(`${PREFIX}acct-activity-sqs.fifo`);
      const dlq = queueUrl(`${PREFIX}acct-activity-sqs-dlq.fifo`);
      const sent = [
        { group: "fan-1", body: "fan-1 first" },
        { group: "fan-2", body: "fan-2 only" },
        { group: "fan-1", body: "fan-1 second" },
      ];
      for (const [index, message] of sent.entries()) {
        await sqs().send(
          new SendMessageCommand({
            QueueUrl: source,
            MessageBody: message.body,
            MessageGroupId: message.group,
            MessageDeduplicationId: `dedup-${index}`,
            MessageAttributes: { correlationId: attribute(`corr-${index}`) },
          }),
        );
      }
      await deadLetter(source, dlq, 3);

      const dry = await cli("--stack", "qa1", "--from", "acct-activity-sqs-dlq.fifo");
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(
        dry.stdout,
        /Dry run: would move the messages of vfid-qa1-us-east-1-acct-activity-sqs-dlq\.fifo back to vfid-qa1-us-east-1-acct-activity-sqs\.fifo/,
      );
      assert.match(dry.stdout, /would move \S+ \(group fan-1,/);
      assert.match(dry.stdout, /would move \S+ \(group fan-2,/);
      assert.match(dry.stdout, /Nothing was changed/);
      await assertDepth(dlq, 3);
      await assertDepth(source, 0);

      const one = await run("acct-activity-sqs-dlq", true, 1);
      assert.deepEqual(
        one.outcomes.map((outcome) => outcome.action),
        ["moved"],
      );
      await assertDepth(dlq, 2);

      const rest = await cli("--stack", "qa1", "--from", "acct-activity-sqs-dlq", "--apply");
      assert.equal(rest.code, 0, rest.stderr);
      assert.equal((rest.stdout.match(/^ {2}moved /gm) ?? []).length, 2, rest.stdout);
      await assertDepth(dlq, 0);
      const back = await drain(source);
      const byGroup = (group: string) =>
        back.filter((message) => message.Attributes?.MessageGroupId === group).map((message) => message.Body);
      assert.deepEqual(byGroup("fan-1"), ["fan-1 first", "fan-1 second"]);
      assert.deepEqual(byGroup("fan-2"), ["fan-2 only"]);
      assert.deepEqual(back.map((message) => message.MessageAttributes?.correlationId?.StringValue).sort(), [
        "corr-0",
        "corr-1",
        "corr-2",
      ]);
      assert.ok(
        back.every((message) => message.Attributes?.MessageDeduplicationId),
        "each message sent with a deduplication id",
      );
    });
  });

  describe("a message a worker parked itself", function () {
    it("goes back to its source queue without parkedBy and parkedReason, with its body, correlation id and group", async function () {
      const sourceQueue = wiring.queues.find((queue) => queue.name === `${PREFIX}acct-activity-sqs.fifo`)!;
      const source = queueUrl(sourceQueue.name);
      const dlq = queueUrl(`${PREFIX}acct-activity-sqs-dlq.fifo`);
      // The message as the FIFO mapping hands it to lookupArai, parked as lookupArai parks it.
      const body = '{"globalUserId":"gu-7f3c2a91","source":"kafka","action":"login","at":"not a time"}';
      const record = {
        messageId: "0e6c7a4d-1f2b-4c3d-9e8f-7a6b5c4d3e2f",
        body,
        attributes: { ApproximateReceiveCount: "1", MessageGroupId: "gu-7f3c2a91" },
        messageAttributes: {
          correlationId: { stringValue: "corr-parked", stringListValues: [], binaryListValues: [], dataType: "String" },
        },
        eventSourceARN: sourceQueue.arn,
      };
      const park = createDeadLetterParking({
        sqs: sqs(),
        queueUrls: { [sourceQueue.arn]: dlq },
        worker: "lookupArai",
        logger: new Logger({ serviceName: "lookupArai", logLevel: "SILENT" }),
      });
      assert.deepEqual(
        await park([{ record, reason: "activity message is not as expected: at: Invalid ISO datetime", kind: "invalid" }]),
        [],
      );
      await assertDepth(dlq, 1);

      const dry = await run("acct-activity-sqs-dlq.fifo", false);
      assert.match(
        dry.output,
        /would move \S+ \(group gu-7f3c2a91, .*parked by lookupArai, attributes correlationId, parkedBy, parkedReason\)/,
      );
      assert.doesNotMatch(dry.output, /Invalid ISO datetime/, "the reason may quote the message: not printed");

      const real = await run("acct-activity-sqs-dlq.fifo", true);
      assert.deepEqual(
        real.outcomes.map((outcome) => outcome.action),
        ["moved"],
      );
      const [back, ...more] = await drain(source);
      assert.deepEqual(more, []);
      assert.equal(back!.Body, body);
      assert.equal(back!.Attributes?.MessageGroupId, "gu-7f3c2a91");
      assert.deepEqual(Object.keys(back!.MessageAttributes ?? {}), ["correlationId"]);
      assert.equal(back!.MessageAttributes!.correlationId!.StringValue, "corr-parked");
    });
  });

  describe("the stream failure queue", function () {
    const failures = () => queueUrl(`${PREFIX}scoring-stream-failures-sqs`);
    const onDemand = () => queueUrl(`${PREFIX}on-demand-scoring-sqs`);
    const vfStream = "vf-input-stream-qa1";
    const vfFunction = () => wiring.functions.find((fn) => fn.worker === "enqueueFromVfStream")!;

    /** Puts JSON records on the VF stream, in order on its one shard; answers their sequence numbers. */
    async function put(payloads: readonly object[]): Promise<{ shardId: string; sequenceNumbers: string[]; at: Date }> {
      const at = new Date();
      const { Records } = await booted.system.kinesis.send(
        new PutRecordsCommand({
          StreamName: vfStream,
          Records: payloads.map((payload) => ({ PartitionKey: "redrive", Data: Buffer.from(JSON.stringify(payload)) })),
        }),
      );
      return { shardId: Records![0]!.ShardId!, sequenceNumbers: Records!.map((record) => record.SequenceNumber!), at };
    }

    /** The failure record Lambda writes for a Kinesis batch it gave up on (its documented shape). */
    function failureRecord(shardId: string, first: string, last: string, batchSize: number, arrival: Date) {
      return {
        requestContext: {
          requestId: "3f9a1c2e-7d64-4b1e-9a0f-1c2d3e4f5a6b",
          functionArn: vfFunction().arn,
          condition: "RetryAttemptsExhausted",
          approximateInvokeCount: 3,
        },
        responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
        version: "1.0",
        timestamp: new Date().toISOString(),
        KinesisBatchInfo: {
          shardId,
          startSequenceNumber: first,
          endSequenceNumber: last,
          approximateArrivalOfFirstRecord: arrival.toISOString(),
          approximateArrivalOfLastRecord: arrival.toISOString(),
          batchSize,
          streamArn: `arn:aws:kinesis:us-east-1:210987654321:stream/${vfStream}`,
        },
      };
    }

    const park = (record: object) =>
      sqs().send(new SendMessageCommand({ QueueUrl: failures(), MessageBody: JSON.stringify(record) }));
    const login = (globalUserId: string) => ({ type: "vfLogin", globalUserId, timestamp: "2026-12-01T10:00:00.000Z" });
    const fansOn = async (url: string) =>
      (await drain(url)).map((message) => (JSON.parse(message.Body!) as { globalUserId: string }).globalUserId).sort();

    it("re-delivers exactly the records the mapping delivers, after a dry run that reports them and changes nothing", async function () {
      // A record the mapping's filter (type = vfLogin) drops sits among the parked ones.
      const {
        shardId,
        sequenceNumbers: seq,
        at,
      } = await put([login("fan-k1"), { type: "purchase", globalUserId: "fan-not-a-login" }, login("fan-k2"), login("fan-k3")]);
      await park(failureRecord(shardId, seq[0]!, seq[3]!, 3, at));

      const dry = await run("scoring-stream-failures-sqs", false);
      assert.deepEqual(
        dry.outcomes.map((outcome) => outcome.action),
        ["would redeliver"],
      );
      const listed = [...dry.output.matchAll(/^ {6}(\d+) \(/gm)].map((match) => match[1]);
      assert.deepEqual(listed, [seq[0], seq[2], seq[3]]);
      await assertDepth(failures(), 1);
      await assertDepth(onDemand(), 0);

      const real = await run("scoring-stream-failures-sqs", true);
      assert.deepEqual(
        real.outcomes.map((outcome) => outcome.action),
        ["redelivered"],
      );
      assert.match(
        real.output,
        /re-delivered 3 records to vfid-qa1-us-east-1-enqueueFromVfStream .*all accepted; message deleted/,
      );
      assert.deepEqual(await fansOn(onDemand()), ["fan-k1", "fan-k2", "fan-k3"]);
      await assertDepth(failures(), 0);
    });

    it("re-delivers a batch with a record the worker now parks itself: all accepted, and the record parked with its reason", async function () {
      const {
        shardId,
        sequenceNumbers: seq,
        at,
      } = await put([login("fan-p1"), { type: "vfLogin", timestamp: "2026-12-01T10:00:00.000Z" }, login("fan-p2")]);
      await park(failureRecord(shardId, seq[0]!, seq[2]!, 3, at));

      const real = await run("scoring-stream-failures-sqs", true, 1);
      assert.deepEqual(
        real.outcomes.map((outcome) => outcome.action),
        ["redelivered"],
      );
      assert.match(real.output, /re-delivered 3 records to \S+ .*all accepted; message deleted/);
      assert.deepEqual(await fansOn(onDemand()), ["fan-p1", "fan-p2"]);
      // The pointer is gone; the record without a fan is on the queue whole, parked by its worker.
      const parked = parkedRecordsOf(await drain(failures()));
      assert.deepEqual(
        parked.map(({ document }) => [document.worker, (document.source as { sequenceNumber: string }).sequenceNumber]),
        [["enqueueFromVfStream", seq[1]]],
      );
      assert.match(parked[0]!.document.reason, /^VF login event is not as expected: globalUserId: /);
    });

    it("leaves the message when the worker still fails a record (too large to park), listing it and every record after it", async function () {
      const huge = { type: "vfLogin", timestamp: "2026-12-01T10:00:00.000Z", notes: "x".repeat(200 * 1024) };
      const { shardId, sequenceNumbers: seq, at } = await put([login("fan-r1"), huge, login("fan-r2")]);
      await park(failureRecord(shardId, seq[0]!, seq[2]!, 3, at));

      const real = await cli("--stack", "qa1", "--from", `${PREFIX}scoring-stream-failures-sqs`, "--apply");
      assert.equal(real.code, 1, real.stderr);
      // Lambda retries a partial failure from the first record reported: those are still failing.
      const failing = real.stdout
        .slice(real.stdout.indexOf("still failing:"))
        .match(/^ {6}(\d+)$/gm)
        ?.map((line) => line.trim());
      assert.deepEqual(failing, [seq[1], seq[2]]);
      assert.match(real.stdout, /left on the queue: 2 of 3 records still failing/);
      await assertDepth(failures(), 1);
    });

    it("leaves records the shard no longer holds, or cannot be read at, saying so, and invokes nothing", async function () {
      const { shardId, sequenceNumbers: seq, at } = await put([login("fan-t1"), login("fan-t2")]);
      await park(failureRecord(shardId, seq[0]!, seq[1]!, 2, at));
      // Kinesis as it answers once the first record is trimmed: the iterator starts at the trim
      // horizon, after it; or, for the other case, it refuses the sequence number.
      let refuse = false;
      const proxy = await startProxy(booted.system.endpoints.kinesis, (request) => {
        const operation = operationOf(request);
        if (refuse && operation === "GetShardIterator") {
          return {
            answer: {
              status: 400,
              headers: { "content-type": "application/x-amz-json-1.1" },
              body: { __type: "InvalidArgumentException", message: `StartingSequenceNumber ${seq[0]} is invalid` },
            },
          };
        }
        if (operation !== "GetRecords") return undefined;
        return {
          rewriteAnswer: (body) => {
            const answer = JSON.parse(body) as { Records: { SequenceNumber: string }[] };
            return JSON.stringify({ ...answer, Records: answer.Records.filter((record) => record.SequenceNumber !== seq[0]) });
          },
        };
      });
      const kinesis = new KinesisClient({
        endpoint: proxy.url,
        region: "us-east-1",
        credentials,
        requestHandler: new NodeHttpHandler(),
      });
      const through = async () => {
        const lines: string[] = [];
        const result = await redrive({
          wiring,
          from: "scoring-stream-failures-sqs",
          apply: true,
          clients: () => ({ ...clients, kinesis }),
          print: (line) => lines.push(line),
          waitSeconds: 0,
        });
        return { ...result, output: lines.join("\n") };
      };
      try {
        const trimmed = await through();
        assert.deepEqual(
          trimmed.outcomes.map((outcome) => outcome.action),
          ["left"],
        );
        assert.match(
          trimmed.output,
          new RegExp(
            `left on the queue: past retention: shard ${shardId} of ${vfStream} no longer holds sequence number ${seq[0]}`,
          ),
        );
        refuse = true;
        const refused = await through();
        assert.match(
          refused.output,
          new RegExp(
            `left on the queue: cannot read shard ${shardId} of ${vfStream}: InvalidArgumentException: StartingSequenceNumber`,
          ),
        );
      } finally {
        kinesis.destroy();
        await proxy.close();
      }
      await assertDepth(failures(), 1);
      await assertDepth(onDemand(), 0);
    });

    it("leaves records past the stream's retention, Kafka records and unrecognisable messages, saying why", async function () {
      const { shardId, sequenceNumbers: seq } = await put([login("fan-old")]);
      // kinesalite keeps records 24 hours, as Kinesis does by default.
      await park(failureRecord(shardId, seq[0]!, seq[0]!, 1, new Date(Date.now() - 25 * 3_600_000)));
      await park({
        requestContext: {
          requestId: "5e1d2c3b-4a59-4687-9786-a5b4c3d2e1f0",
          functionArn: wiring.functions.find((fn) => fn.worker === "enqueueFromActivityStream")!.arn,
          condition: "RetryAttemptsExhausted",
          approximateInvokeCount: 3,
        },
        responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
        version: "1.0",
        timestamp: new Date().toISOString(),
        KafkaBatchInfo: {
          batchSize: 2,
          bootstrapServers: "b-1.kafka.example.com:9096",
          consumerGroupId: "vfid-qa1-activity",
          payloadSize: 512,
          recordsInfo: {
            "user-activity-qa1-3": {
              firstRecordOffset: "41",
              firstRecordTimestamp: "2026-12-01T10:00:00.000Z",
              lastRecordOffset: "42",
              lastRecordTimestamp: "2026-12-01T10:00:01.000Z",
            },
          },
        },
      });
      await sqs().send(new SendMessageCommand({ QueueUrl: failures(), MessageBody: "not a failure record" }));

      const real = await run("scoring-stream-failures-sqs", true);
      assert.deepEqual(
        real.outcomes.map((outcome) => outcome.action),
        ["left", "left", "left"],
      );
      assert.match(real.output, /left on the queue: past retention: the first record arrived .* keeps records 24 h/);
      assert.match(
        real.output,
        /Kafka records user-activity-qa1-3 offsets 41–42 \(2 records, consumer group vfid-qa1-activity\)/,
      );
      assert.match(real.output, /left on the queue: Kafka records cannot be read here/);
      assert.match(real.output, /left on the queue: the body is not JSON/);
      await assertDepth(failures(), 3);
      await assertDepth(onDemand(), 0);
    });

    describe("records the workers parked themselves", function () {
      const activity = () => queueUrl(`${PREFIX}acct-activity-sqs.fifo`);
      const kafkaMapping = () => wiring.mappings.find((mapping): mapping is StreamMapping => mapping.kind === "kafka")!;
      const vfStreamArn = `arn:aws:kinesis:us-east-1:210987654321:stream/${vfStream}`;

      /** A parked record as a worker writes it, on the failure queue; answers its body. */
      async function parkDocument(worker: string, reason: string, source: ParkedSource, record: object) {
        const document = parkedRecordDocument({ worker, reason, failureReason: "invalid", parkedAt: new Date(), source, record });
        await sqs().send(
          new SendMessageCommand({
            QueueUrl: failures(),
            MessageBody: JSON.stringify(document),
            MessageAttributes: { parkedBy: attribute(worker), failureReason: attribute("invalid") },
          }),
        );
        return document;
      }

      /** A VF login on the stream, as Lambda delivers it in an event (the record a parked document carries). */
      async function deliveredLogin(globalUserId: string) {
        const { shardId, sequenceNumbers, at } = await put([login(globalUserId)]);
        const data = Buffer.from(JSON.stringify(login(globalUserId)));
        const [record] = kinesisEvent(vfFunction(), vfStreamArn, [
          {
            shardId,
            record: { SequenceNumber: sequenceNumbers[0], PartitionKey: "redrive", Data: data, ApproximateArrivalTimestamp: at },
          },
        ]).Records;
        return { record: record!, sequenceNumber: sequenceNumbers[0]! };
      }

      it("invokes the worker with a parked Kinesis record alone, once its cause is fixed, after a dry run that lists it with its reason", async function () {
        // Parked by a reader since fixed: the record is a good login now.
        const { record, sequenceNumber } = await deliveredLogin("fan-fixed-1");
        const reason = "VF login event is not as expected: globalUserId: expected a globalUserId (no whitespace or #)";
        await parkDocument(
          "enqueueFromVfStream",
          reason,
          { kind: "kinesis", eventSourceARN: vfStreamArn, sequenceNumber },
          record,
        );

        const dry = await run("scoring-stream-failures-sqs", false);
        assert.deepEqual(
          dry.outcomes.map((outcome) => [outcome.action, outcome.detail]),
          [["would redeliver", reason]],
        );
        assert.match(
          dry.output,
          new RegExp(`parked by enqueueFromVfStream, Kinesis ${vfStream} ${sequenceNumber}: VF login event`),
        );
        assert.match(dry.output, /would invoke vfid-qa1-us-east-1-enqueueFromVfStream with it/);
        await assertDepth(failures(), 1);
        await assertDepth(onDemand(), 0);

        const real = await run("scoring-stream-failures-sqs", true);
        assert.deepEqual(
          real.outcomes.map((outcome) => outcome.action),
          ["redelivered"],
        );
        assert.match(real.output, /re-delivered to vfid-qa1-us-east-1-enqueueFromVfStream: accepted; message deleted/);
        await assertDepth(failures(), 0);
        assert.deepEqual(await fansOn(onDemand()), ["fan-fixed-1"]);
      });

      it("invokes the Kafka worker with a parked Kafka record in Lambda's Kafka event, which a pointer to the cluster could not", async function () {
        const mapping = kafkaMapping();
        const value = {
          globalUserId: "fan-kafka-fixed",
          action: "login",
          result: "success",
          timestamp: "2026-12-01T10:00:00.000Z",
        };
        const record = {
          topic: mapping.topic!,
          partition: 3,
          offset: 41,
          timestamp: Date.parse("2026-12-01T10:00:00.000Z"),
          timestampType: "CREATE_TIME",
          key: Buffer.from("fan-kafka-fixed").toString("base64"),
          value: Buffer.from(JSON.stringify(value)).toString("base64"),
          headers: [],
        };
        await parkDocument(
          "enqueueFromActivityStream",
          "activity is not as expected: metadata: Invalid input",
          { kind: "kafka", topic: mapping.topic!, partition: 3, offset: 41 },
          record,
        );

        const dry = await run("scoring-stream-failures-sqs", false);
        assert.match(
          dry.output,
          new RegExp(`parked by enqueueFromActivityStream, Kafka ${mapping.topic}-3@41: activity is not as expected`),
        );
        assert.deepEqual(
          dry.outcomes.map((outcome) => outcome.action),
          ["would redeliver"],
        );

        const real = await cli("--stack", "qa1", "--from", "scoring-stream-failures-sqs", "--apply");
        assert.equal(real.code, 0, real.stdout + real.stderr);
        assert.match(real.stdout, /re-delivered to vfid-qa1-us-east-1-enqueueFromActivityStream: accepted; message deleted/);
        await assertDepth(failures(), 0);
        assert.deepEqual(
          (await drain(activity())).map((message) => [
            (JSON.parse(message.Body!) as { globalUserId: string }).globalUserId,
            message.Attributes?.MessageGroupId,
          ]),
          [["fan-kafka-fixed", "fan-kafka-fixed"]],
        );
      });

      it("deletes a still-poison record's message once its worker parks it again, and leaves the new one in the same run", async function () {
        // The worker itself parks the record, delivered as its mapping would deliver it.
        const { shardId, sequenceNumbers, at } = await put([{ type: "vfLogin", timestamp: "2026-12-01T10:00:00.000Z" }]);
        const data = Buffer.from(JSON.stringify({ type: "vfLogin", timestamp: "2026-12-01T10:00:00.000Z" }));
        const event = kinesisEvent(vfFunction(), vfStreamArn, [
          {
            shardId,
            record: { SequenceNumber: sequenceNumbers[0], PartitionKey: "redrive", Data: data, ApproximateArrivalTimestamp: at },
          },
        ]);
        const first = await booted.system.invoke(vfFunction().name, event);
        assert.deepEqual(first.result, { batchItemFailures: [] });
        await assertDepth(failures(), 1);

        const real = await run("scoring-stream-failures-sqs", true);
        assert.deepEqual(
          real.outcomes.map((outcome) => outcome.action),
          ["redelivered", "left"],
        );
        assert.match(
          real.output,
          /left on the queue: enqueueFromVfStream parked this record again when it was redriven in this run/,
        );
        const parked = parkedRecordsOf(await drain(failures()));
        assert.deepEqual(
          parked.map(({ document }) => document.source),
          [{ kind: "kinesis", eventSourceARN: vfStreamArn, sequenceNumber: sequenceNumbers[0] }],
        );
        await assertDepth(onDemand(), 0);
      });

      it("leaves a parked record whose worker the stack maps to no such source, or of a newer format, saying why", async function () {
        const { record, sequenceNumber } = await deliveredLogin("fan-nowhere");
        const purchaseArn = "arn:aws:kinesis:us-east-1:210987654321:stream/purchase-stream-qa1";
        await parkDocument(
          "enqueueFromVfStream",
          "no such mapping",
          { kind: "kinesis", eventSourceARN: purchaseArn, sequenceNumber },
          record,
        );
        const newer = { ...parkDocumentBody(record, sequenceNumber), parkedRecord: 2 };
        await sqs().send(new SendMessageCommand({ QueueUrl: failures(), MessageBody: JSON.stringify(newer) }));

        const real = await run("scoring-stream-failures-sqs", true);
        assert.deepEqual(
          real.outcomes.map((outcome) => outcome.action),
          ["left", "left"],
        );
        assert.match(
          real.output,
          new RegExp(
            `left on the queue: the stack has no Kinesis mapping of ${purchaseArn} to enqueueFromVfStream failing to ${PREFIX}scoring-stream-failures-sqs`,
          ),
        );
        assert.match(real.output, /left on the queue: parked-record format version 2 is newer than this reader knows \(1\)/);
        await assertDepth(failures(), 2);
        await assertDepth(onDemand(), 0);
      });

      /** A parked record's body as the worker writes it, not sent. */
      function parkDocumentBody(record: object, sequenceNumber: string) {
        return parkedRecordDocument({
          worker: "enqueueFromVfStream",
          reason: "from a later worker",
          failureReason: "invalid",
          parkedAt: new Date(),
          source: { kind: "kinesis", eventSourceARN: vfStreamArn, sequenceNumber },
          record,
        });
      }
    });
  });

  describe("an import worker's failure queue", function () {
    it("invokes each parked S3 event again, asynchronously, after a dry run that invokes nothing", async function () {
      const failures = queueUrl(`${PREFIX}startBotOrNotImport-failures`);
      const fn = wiring.functions.find((candidate) => candidate.worker === "startBotOrNotImport")!;
      const event = fixture("s3-export-success.json");
      // The record Lambda sends for an asynchronous invocation it gave up on (its documented shape).
      const record = {
        version: "1.0",
        timestamp: new Date().toISOString(),
        requestContext: {
          requestId: "8c2e4f6a-1b3d-4e5f-9a7b-0c1d2e3f4a5b",
          functionArn: `${fn.arn}:$LATEST`,
          condition: "RetriesExhausted",
          approximateInvokeCount: 3,
        },
        requestPayload: event,
        responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
        responsePayload: { errorType: "Error", errorMessage: "StartWorkflowRun failed" },
      };
      await sqs().send(new SendMessageCommand({ QueueUrl: failures, MessageBody: JSON.stringify(record) }));
      const runs = () => booted.standIns.glue.runsOf("vfid-qa1-bot-or-not-import");
      const before = runs().length;

      const dry = await run("startBotOrNotImport-failures", false);
      assert.deepEqual(
        dry.outcomes.map((outcome) => outcome.action),
        ["would redeliver"],
      );
      assert.match(dry.output, /would invoke vfid-qa1-us-east-1-startBotOrNotImport with it again, asynchronously/);
      await assertDepth(failures, 1);

      const real = await run("startBotOrNotImport-failures", true);
      assert.deepEqual(
        real.outcomes.map((outcome) => outcome.action),
        ["redelivered"],
      );
      await assertDepth(failures, 0);
      await waitUntil(() => runs().length > before, "the import's workflow run");
      // An asynchronous invocation is at least once: on a loaded machine Lambda's retry may start the
      // workflow again, so every run started is this event's, and there is at least one.
      const started = runs().slice(before);
      assert.ok(started.length >= 1);
      for (const { runProperties } of started) {
        // The run properties the import sets: the object's key and the date in it (docs/flows.md#data-science-imports).
        assert.equal(runProperties.key, "bot-or-not/date=2026-11-24/_SUCCESS");
        assert.equal(runProperties.date, "2026-11-24");
      }
    });
  });

  describe("the queue to redrive", function () {
    it("fails on a name the stack has no redrivable queue of, listing those it has", async function () {
      await assert.rejects(run("on-demand-scoring-sqs", false), (error: Error) => {
        assert.ok(error instanceof UnknownQueueError);
        return true;
      });
      const refused = await cli("--stack", "qa1", "--from", "no-such-queue");
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /--from no-such-queue: no queue of this name can be redriven/);
      // The dead-letter queues of the planned redrive policies, and the failure destinations of the
      // stream mappings and of the import workers' asynchronous invocations.
      const names = [
        "on-demand-scoring-sqs-dlq",
        "acct-activity-sqs-dlq.fifo",
        "scoring-stream-failures-sqs",
        "startBotOrNotImport-failures",
        "startClusterImport-failures",
      ];
      for (const name of names) {
        assert.match(refused.stderr, new RegExp(`^ {2}${PREFIX}${name.replace(".", "\\.")} `, "m"));
      }
    });
  });
});
