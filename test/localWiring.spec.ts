/**
 * The local system's topology (tools/local/wiring.ts) read from the program run offline for qa1
 * and prod1, checked against the planned resources and the stack files on their own terms: the
 * functions and their settings, the event source mappings with the stack file's batch sizes, the
 * registry's filters and the on-failure queue, the queues' FIFO and redrive settings, the table
 * and its change stream, the webhook route with its validation, and the regions of prod1.
 */
import * as assert from "node:assert/strict";
import { functionEnvironment, type LocalEndpoints } from "../tools/local/environment";
import { type Wiring, readWiring } from "../tools/local/wiring";
import type { RecordedResource } from "../tools/offline/runtime";
import { planStack } from "../tools/offline/planStack";
import { REGISTERED, WORKERS, type WorkerName } from "../workers/registry";
import { stackSection } from "./support/program";

interface ScoringSection {
  streamBatchSize: number;
  queueBatchSize: number;
  kafka: { enabled: boolean; consumerGroupId: string; batchSize: number };
  [region: string]: unknown;
}

interface ScoringRegion {
  inputStreams: Record<string, string>;
  kafka?: { bootstrapServers: string[]; topic: string };
}

const ofType = (resources: readonly RecordedResource[], type: string) => resources.filter((resource) => resource.type === type);

/** The scoring regions a stack file configures, with the AWS region its input streams are in. */
function scoringRegions(stack: string): { key: string; region: string; config: ScoringRegion }[] {
  const scoring = stackSection<ScoringSection>(stack, "scoring");
  return Object.entries(scoring)
    .filter(([, value]) => typeof value === "object" && value !== null && "inputStreams" in value)
    .map(([key, value]) => {
      const config = value as ScoringRegion;
      return { key, region: Object.values(config.inputStreams)[0]!.split(":")[3]!, config };
    });
}

async function plan(stack: string): Promise<{ resources: RecordedResource[]; wiring: Wiring }> {
  const { run } = await planStack(stack);
  assert.deepEqual(
    run.errors.map((error) => error.message),
    [],
  );
  return { resources: run.resources, wiring: readWiring(run.resources) };
}

describe("the local system's wiring", function () {
  describe("qa1", function () {
    let resources: RecordedResource[];
    let wiring: Wiring;
    const scoring = stackSection<ScoringSection>("qa1", "scoring");
    const [east] = scoringRegions("qa1");

    before(async function () {
      ({ resources, wiring } = await plan("qa1"));
    });

    const functionOf = (worker: WorkerName) => {
      const found = wiring.functions.filter((fn) => fn.worker === worker);
      assert.equal(found.length, 1, `one ${worker} function`);
      return found[0]!;
    };
    const mappingsOf = (worker: WorkerName) =>
      wiring.mappings.filter((mapping) => mapping.functionName === functionOf(worker).name);

    it("has every planned function, with its worker, timeout, memory and environment", function () {
      const planned = ofType(resources, "aws:lambda/function:Function");
      assert.equal(wiring.functions.length, planned.length);
      for (const resource of planned) {
        const name = String(resource.inputs.name);
        const fn = wiring.functions.find((candidate) => candidate.name === name);
        assert.ok(fn, name);
        assert.ok(name.endsWith(`-${fn.worker}`), name);
        assert.equal(fn.timeoutSeconds, resource.inputs.timeout, name);
        assert.equal(fn.memoryMb, resource.inputs.memorySize, name);
        assert.deepEqual(fn.variables, (resource.inputs.environment as { variables: Record<string, string> }).variables, name);
        assert.equal(fn.region, "us-east-1");
        assert.equal(fn.arn, `arn:aws:lambda:us-east-1:210987654321:function:${name}`);
        assert.equal(fn.roleArn, resource.inputs.role);
        assert.ok(fn.code, `${name} has its archive`);
      }
      // qa1 configures every input stream and Kafka: every registered worker is deployed once.
      assert.deepEqual(wiring.functions.map((fn) => fn.worker).sort(), REGISTERED.map((entry) => entry.name).sort());
    });

    it("has every planned event source mapping", function () {
      assert.equal(wiring.mappings.length, ofType(resources, "aws:lambda/eventSourceMapping:EventSourceMapping").length);
      assert.ok(wiring.mappings.every((mapping) => wiring.functions.some((fn) => fn.name === mapping.functionName)));
    });

    it("reads each input stream's mapping: its stream from the stack file, its batch size, the registry's filter", function () {
      const streamFailures = wiring.queues.find((queue) => queue.name.endsWith("-scoring-stream-failures-sqs"));
      assert.ok(streamFailures);
      for (const entry of REGISTERED) {
        if (entry.trigger.kind !== "inputStream") continue;
        const [mapping, ...others] = mappingsOf(entry.name);
        assert.equal(others.length, 0, entry.name);
        assert.equal(mapping!.kind, "kinesis", entry.name);
        if (mapping!.kind !== "kinesis") continue;
        assert.equal(mapping!.streamArn, east!.config.inputStreams[entry.trigger.stream], entry.name);
        assert.equal(mapping!.batchSize, scoring.streamBatchSize, entry.name);
        assert.deepEqual(mapping!.filters, [entry.trigger.filter], entry.name);
        assert.equal(mapping!.onFailureArn, streamFailures.arn, entry.name);
        assert.equal(mapping!.reportBatchItemFailures, true, entry.name);
      }
    });

    it("reads the table stream's mappings: the table's own stream, the registry's filters", function () {
      const [table] = wiring.tables;
      for (const name of ["scoreUsers", "stagingScoreUsers", "processRescoreEvents"] as const) {
        const [mapping, ...others] = mappingsOf(name);
        assert.equal(others.length, 0, name);
        assert.equal(mapping!.kind, "kinesis");
        if (mapping!.kind !== "kinesis") continue;
        assert.equal(mapping!.streamArn, table!.streamArn, name);
        assert.equal(mapping!.batchSize, scoring.streamBatchSize, name);
        assert.deepEqual(mapping!.filters, [(WORKERS[name].trigger as { filter: object }).filter], name);
        assert.ok(mapping!.onFailureArn?.endsWith("-scoring-stream-failures-sqs"), name);
      }
    });

    it("reads the scoring queues' mappings with the queue batch size, no filter, and the Kafka mapping", function () {
      const queueMappings = mappingsOf("lookupArai");
      assert.equal(queueMappings.length, 2);
      for (const mapping of queueMappings) {
        assert.equal(mapping.kind, "sqs");
        if (mapping.kind !== "sqs") continue;
        assert.equal(mapping.batchSize, scoring.queueBatchSize);
        assert.deepEqual(mapping.filters, []);
        assert.equal(mapping.reportBatchItemFailures, true);
        assert.ok(
          wiring.queues.some((queue) => queue.arn === mapping.queueArn && !queue.name.includes("-dlq")),
          mapping.queueArn,
        );
      }
      assert.deepEqual(
        queueMappings
          .map((mapping) => wiring.queues.find((queue) => queue.arn === (mapping as { queueArn: string }).queueArn)!.fifo)
          .sort(),
        [false, true],
      );

      const [kafka, ...others] = mappingsOf("enqueueFromActivityStream");
      assert.equal(others.length, 0);
      assert.equal(kafka!.kind, "kafka");
      if (kafka!.kind !== "kafka") return;
      assert.equal(kafka!.topic, east!.config.kafka!.topic);
      assert.equal(kafka!.batchSize, scoring.kafka.batchSize);
      assert.equal(kafka!.consumerGroupId, scoring.kafka.consumerGroupId);
      assert.deepEqual(kafka!.bootstrapServers?.split(","), east!.config.kafka!.bootstrapServers);
      assert.deepEqual(kafka!.filters, []);
      assert.ok(kafka!.onFailureArn?.endsWith("-scoring-stream-failures-sqs"));
    });

    it("reads the queues: FIFO where the name says so, and the redrive policy's dead-letter queue and maxReceiveCount", function () {
      const planned = ofType(resources, "aws:sqs/queue:Queue");
      assert.equal(wiring.queues.length, planned.length);
      for (const resource of planned) {
        const queue = wiring.queues.find((candidate) => candidate.name === resource.inputs.name)!;
        assert.ok(queue, String(resource.inputs.name));
        assert.equal(queue.fifo, queue.name.endsWith(".fifo"), queue.name);
        assert.equal(queue.visibilityTimeoutSeconds, resource.inputs.visibilityTimeoutSeconds ?? 30, queue.name);
        const policy = resource.inputs.redrivePolicy as string | undefined;
        assert.deepEqual(queue.redrive, policy ? JSON.parse(policy) : undefined, queue.name);
      }
      for (const name of ["-acct-activity-sqs.fifo", "-on-demand-scoring-sqs"]) {
        const queue = wiring.queues.find((candidate) => candidate.name.endsWith(name))!;
        assert.ok(queue.redrive, name);
        assert.ok(queue.redrive.maxReceiveCount >= 1, name);
        const dlq = wiring.queues.find((candidate) => candidate.arn === queue.redrive!.deadLetterTargetArn);
        assert.ok(dlq, `${name}'s dead-letter queue is planned`);
        assert.equal(dlq.fifo, queue.fifo, "a FIFO queue's dead-letter queue is FIFO too");
      }
    });

    it("reads the table: keyed by userId, expiring on expiresOn, its changes streamed to a planned stream", function () {
      assert.equal(wiring.tables.length, 1);
      const [table] = wiring.tables;
      assert.equal(table!.hashKey, "userId");
      assert.equal(table!.rangeKey, undefined);
      assert.deepEqual(table!.attributes, [{ name: "userId", type: "S" }]);
      assert.equal(table!.ttlAttribute, "expiresOn");
      assert.equal(table!.region, "us-east-1");
      assert.ok(table!.streamArn);
      assert.ok(
        wiring.streams.some((stream) => stream.arn === table!.streamArn),
        "the streaming destination is the program's own stream",
      );
      const destinations = ofType(resources, "aws:dynamodb/kinesisStreamingDestination:KinesisStreamingDestination");
      assert.equal(destinations.length, 1);
      assert.equal(destinations[0]!.inputs.streamArn, table!.streamArn);
    });

    it("reads the S3 import functions' asynchronous invocation settings and who may invoke what", function () {
      const exportsBucket = stackSection<{ exportsBucketArn: string }>("qa1", "dataScience").exportsBucketArn;
      for (const worker of ["startBotOrNotImport", "startClusterImport"] as const) {
        const fn = functionOf(worker);
        const config = wiring.asyncConfigs.find((candidate) => candidate.functionName === fn.name);
        assert.ok(config, worker);
        assert.ok(config.onFailureArn && wiring.queues.some((queue) => queue.arn === config.onFailureArn), worker);
        assert.ok(
          wiring.grants.some(
            (grant) =>
              grant.functionName === fn.name && grant.principal === "s3.amazonaws.com" && grant.sourceArn === exportsBucket,
          ),
          worker,
        );
      }
      const appsync = stackSection<{ appsyncApiArn: string }>("qa1", "auth").appsyncApiArn;
      for (const worker of ["validateToken", "getArmScore", "checkLiveness", "handleEvent"] as const) {
        assert.ok(
          wiring.grants.some(
            (grant) =>
              grant.functionName === functionOf(worker).name &&
              grant.principal === "appsync.amazonaws.com" &&
              grant.sourceArn === appsync,
          ),
          worker,
        );
      }
    });

    it("reads the webhook route: POST /webhooks/persona to handleEvent, the signature header required, a body schema", function () {
      assert.equal(wiring.routes.length, 1);
      const [route] = wiring.routes;
      assert.equal(route!.method, "POST");
      assert.equal(route!.path, "/webhooks/persona");
      assert.equal(route!.functionName, functionOf("handleEvent").name);
      assert.equal(route!.stage, "qa1");
      assert.deepEqual(route!.requiredHeaders, ["persona-signature"]);
      assert.deepEqual(route!.requiredQueryStrings, []);
      const schema = route!.bodySchema as { $schema?: string; type?: string; required?: string[] };
      assert.equal(schema.$schema, "http://json-schema.org/draft-04/schema#");
      assert.equal(schema.type, "object");
      assert.deepEqual(schema.required, ["data"]);
      for (const type of ["BAD_REQUEST_BODY", "BAD_REQUEST_PARAMETERS"]) {
        const planned = ofType(resources, "aws:apigateway/response:Response").find(
          (response) => response.inputs.responseType === type,
        );
        assert.ok(planned, type);
        assert.equal(route!.responses[type]?.statusCode, Number(planned.inputs.statusCode), type);
        assert.match(route!.responses[type]?.template ?? "", /\$context\.error\.validationErrorString/);
      }
    });

    it("gives every planned function a local environment: each address it holds has a stand-in", function () {
      const endpoints: LocalEndpoints = {
        dynamodb: "http://127.0.0.1:1001",
        sqs: "http://127.0.0.1:1002",
        secretsManager: "http://127.0.0.1:1003",
        glue: "http://127.0.0.1:1004",
        queueUrls: new Map(wiring.queues.map((queue) => [queue.url, `http://127.0.0.1:1002/000000000000/${queue.name}`])),
        origins: {
          accounts: "http://127.0.0.1:2001",
          modelServing: "http://127.0.0.1:2002",
          persona: "http://127.0.0.1:2003",
          redis: "redis://127.0.0.1:2004",
        },
      };
      for (const fn of wiring.functions) {
        const env = functionEnvironment(fn, endpoints, "/tmp/archive");
        assert.equal(env.AWS_LAMBDA_FUNCTION_NAME, fn.name);
        assert.equal(env.AWS_REGION, fn.region);
        for (const [name, value] of Object.entries(fn.variables)) {
          if (wiring.queues.some((queue) => queue.url === value)) assert.match(env[name]!, /^http:\/\/127\.0\.0\.1:1002\//, name);
          if (/amazonaws\.com|verifiedfan|databricks|withpersona/.test(value) && name !== "JWT_ISSUER") {
            assert.match(env[name]!, /127\.0\.0\.1/, `${fn.worker} ${name}`);
          }
        }
      }
      // A JSON object of queue URLs: each URL made local, the keys (the source queues' ARNs) kept.
      const lookup = wiring.functions.find((fn) => fn.worker === "lookupArai")!;
      const deadLetters = JSON.parse(functionEnvironment(lookup, endpoints, "/tmp/archive").DEAD_LETTER_QUEUE_URLS!) as Record<
        string,
        string
      >;
      const expected = wiring.queues.flatMap((queue) => {
        const dlq = queue.redrive && wiring.queues.find((candidate) => candidate.arn === queue.redrive!.deadLetterTargetArn);
        return dlq ? [[queue.arn, `http://127.0.0.1:1002/000000000000/${dlq.name}`]] : [];
      });
      assert.equal(expected.length, 2);
      assert.deepEqual(deadLetters, Object.fromEntries(expected));
    });
  });

  describe("prod1, with a second region", function () {
    let wiring: Wiring;
    const regions = scoringRegions("prod1");

    before(async function () {
      ({ wiring } = await plan("prod1"));
    });

    it("configures two scoring regions in two AWS regions", function () {
      assert.deepEqual(regions.map((region) => region.region).sort(), ["us-east-1", "us-west-2"]);
    });

    it("places each function in the region its name and ARN say", function () {
      for (const fn of wiring.functions) {
        const region = /^vfid-prod1-([a-z]+-[a-z]+-\d)-/.exec(fn.name)?.[1];
        assert.equal(fn.region, region, fn.name);
        assert.equal(fn.arn.split(":")[3], region, fn.name);
      }
      for (const { region } of regions) {
        for (const worker of ["scoreUsers", "lookupArai", "enqueueFromVfStream", "enqueueFromActivityStream"]) {
          assert.ok(
            wiring.functions.some((fn) => fn.worker === worker && fn.region === region),
            `${worker} in ${region}`,
          );
        }
      }
    });

    it("has a table per region, in that region, streaming to a stream of that region", function () {
      assert.deepEqual(wiring.tables.map((table) => table.region).sort(), ["us-east-1", "us-west-2"]);
      for (const table of wiring.tables) {
        assert.ok(table.name.includes(table.region), table.name);
        assert.equal(table.streamArn?.split(":")[3], table.region, table.name);
      }
    });

    it("wires each region's functions to that region's streams, queues, topic and on-failure queue", function () {
      for (const { region, config } of regions) {
        const mappings = wiring.mappings.filter(
          (mapping) => wiring.functions.find((fn) => fn.name === mapping.functionName)!.region === region,
        );
        assert.ok(mappings.length > 0, region);
        for (const mapping of mappings) {
          const fn = wiring.functions.find((candidate) => candidate.name === mapping.functionName)!;
          const trigger = WORKERS[fn.worker].trigger;
          if (mapping.kind === "sqs") assert.equal(mapping.queueArn.split(":")[3], region, mapping.name);
          else {
            assert.equal(mapping.onFailureArn?.split(":")[3], region, mapping.name);
            if (trigger.kind === "inputStream")
              assert.equal(mapping.streamArn, config.inputStreams[trigger.stream], mapping.name);
            if (trigger.kind === "tableStream") assert.equal(mapping.streamArn?.split(":")[3], region, mapping.name);
            if (mapping.kind === "kafka") {
              assert.equal(mapping.topic, config.kafka!.topic, mapping.name);
              assert.deepEqual(mapping.bootstrapServers?.split(","), config.kafka!.bootstrapServers, mapping.name);
            }
          }
        }
      }
    });
  });
});
