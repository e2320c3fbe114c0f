/**
 * Every AWS SDK client a worker builds is bounded in time (runtime/awsClients.ts, docs/rules.md#timeouts):
 * against a server that accepts connections and never answers, and an address that refuses
 * them, each use's client ends with the SDK's own error after exactly its configured attempts,
 * and the workers' factories build their clients that way. Only outcomes and counts are asserted;
 * how long the bounds take is the figures' business, not the tests'.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { GetItemCommand, DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { GlueClient, StartWorkflowRunCommand } from "@aws-sdk/client-glue";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { enqueueFromVfStream } from "../workers/enqueueFromVfStream";
import { AWS_CLIENT_BOUNDS, type AwsClientBounds, awsClientConfig, type AwsService } from "../workers/shared/runtime/awsClients";
import { projectRoot } from "../components/archive";
import { startBotOrNotImport } from "../workers/startBotOrNotImport";
import type { BatchResponse } from "../workers/shared/runtime/batch";
import { failuresOf } from "./support/batch";
import { AWS_VARIABLES, LAMBDA_AWS, setEnvironment, unset } from "./support/environment";
import { fixture } from "./support/fixtures";
import { captureLogs } from "./support/logs";
import { refusingUrl, type SilentServer, startSilentServer } from "./support/silentServer";
import type { KinesisFixtureEvent } from "./support/streams";

const CREDENTIALS = { accessKeyId: "test", secretAccessKey: "test" };

/** What the SDK rejects with: its error name and code, and the attempts it made. */
interface SdkFailure {
  readonly name: string;
  readonly code?: string;
  readonly message: string;
  readonly $metadata?: { attempts?: number };
}

/** One call of `service` through a client built as the workers build theirs, at `endpoint`. */
async function callOnce(service: AwsService, bounds: AwsClientBounds, endpoint: string): Promise<SdkFailure> {
  const config = { ...awsClientConfig(bounds), endpoint, region: "us-east-1", credentials: CREDENTIALS };
  const calls: Record<AwsService, () => { send: () => Promise<unknown>; destroy: () => void }> = {
    secretsManager: () => {
      const client = new SecretsManagerClient(config);
      return {
        send: () => client.send(new GetSecretValueCommand({ SecretId: "fan-identity/appsync-api-keys" })),
        destroy: () => client.destroy(),
      };
    },
    dynamoDb: () => {
      const client = new DynamoDBClient(config);
      return {
        send: () => client.send(new GetItemCommand({ TableName: "fan-identity-table", Key: { userId: { S: "gu-1" } } })),
        destroy: () => client.destroy(),
      };
    },
    sqs: () => {
      const client = new SQSClient(config);
      return {
        send: () =>
          client.send(
            new SendMessageBatchCommand({
              QueueUrl: `${endpoint}/000000000000/on-demand-scoring-sqs`,
              Entries: [{ Id: "m0", MessageBody: '{"globalUserId":"gu-1"}' }],
            }),
          ),
        destroy: () => client.destroy(),
      };
    },
    glue: () => {
      const client = new GlueClient(config);
      return {
        send: () => client.send(new StartWorkflowRunCommand({ Name: "fanid-dev1-bot-or-not-import" })),
        destroy: () => client.destroy(),
      };
    },
  };
  const client = calls[service]();
  try {
    await client.send();
  } catch (error) {
    return error as SdkFailure;
  } finally {
    client.destroy();
  }
  assert.fail(`${service} answered, though nothing at ${endpoint} does`);
}

/** An HTTP server that answers with headers and the start of a body, then stalls. */
async function startStallingServer(): Promise<{ url: string; requests: () => number; close: () => Promise<void> }> {
  let requests = 0;
  const server = http.createServer((request, response) => {
    requests += 1;
    request.resume();
    response.writeHead(200, { "content-type": "application/x-amz-json-1.0", "content-length": "64" });
    response.write('{"Item":');
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const USES = Object.entries(AWS_CLIENT_BOUNDS).flatMap(([use, services]) =>
  Object.entries(services as Partial<Record<AwsService, AwsClientBounds>>).map(([service, bounds]) => ({
    use,
    service: service as AwsService,
    bounds: bounds!,
  })),
);

/** The factories' environment, for both workers at once: they read disjoint variables. */
const FACTORY_VARIABLES = [
  ...AWS_VARIABLES,
  "AWS_ENDPOINT_URL_GLUE",
  "AWS_ENDPOINT_URL_SQS",
  "GLUE_WORKFLOW_NAME",
  "ON_DEMAND_QUEUE_URL",
  "FAILURE_QUEUE_URL",
  "POWERTOOLS_LOG_LEVEL",
];

describe("AWS SDK clients (runtime/awsClients.ts)", function () {
  // The calls below each end only on their own bounds, in real time: they are made together,
  // before the tests, and the suite waits for the longest rather than for their sum. Each call has
  // a server of its own, so what a server counts is that call's alone.
  const silent = new Map<string, SilentServer>();
  const outcomes = new Map<string, { silent: SdkFailure; refused: SdkFailure }>();
  let stalling: Awaited<ReturnType<typeof startStallingServer>> | undefined;
  let stalled: SdkFailure;
  const factoryServers: { glue?: SilentServer; sqs?: SilentServer } = {};
  let importOutcome: unknown;
  let enqueueOutcome: BatchResponse | undefined;
  const vfEvent = fixture<KinesisFixtureEvent>("kinesis-vf-login.json");

  async function everyUse() {
    await Promise.all(
      USES.map(async ({ use, service, bounds }) => {
        const server = await startSilentServer();
        silent.set(`${use}.${service}`, server);
        const [hung, refused] = await Promise.all([
          callOnce(service, bounds, server.url),
          callOnce(service, bounds, await refusingUrl()),
        ]);
        outcomes.set(`${use}.${service}`, { silent: hung, refused });
      }),
    );
  }

  async function stallingBody() {
    stalling = await startStallingServer();
    stalled = await callOnce("dynamoDb", AWS_CLIENT_BOUNDS.lookup.dynamoDb, stalling.url);
  }

  /** Each factory's handler, as Lambda would run it, against a silent Glue and a silent SQS. */
  async function factories() {
    const glue = (factoryServers.glue = await startSilentServer());
    const sqs = (factoryServers.sqs = await startSilentServer());
    const restore = setEnvironment({
      ...unset(FACTORY_VARIABLES),
      ...LAMBDA_AWS,
      AWS_ENDPOINT_URL_GLUE: glue.url,
      GLUE_WORKFLOW_NAME: "fanid-dev1-bot-or-not-import",
      AWS_ENDPOINT_URL_SQS: sqs.url,
      ON_DEMAND_QUEUE_URL: `${sqs.url}/000000000000/fanid-dev1-us-east-1-on-demand-scoring-sqs`,
      FAILURE_QUEUE_URL: `${sqs.url}/000000000000/fanid-dev1-us-east-1-scoring-stream-failures-sqs`,
      POWERTOOLS_LOG_LEVEL: "CRITICAL",
    });
    try {
      const importHandler = startBotOrNotImport.factory();
      const enqueueHandler = enqueueFromVfStream.factory();
      await captureLogs(() =>
        Promise.all([
          importHandler(fixture("s3-export-success.json")).then(
            () => (importOutcome = undefined),
            (error: unknown) => (importOutcome = error),
          ),
          enqueueHandler(vfEvent).then((result) => (enqueueOutcome = result as BatchResponse)),
        ]),
      );
    } finally {
      restore();
    }
  }

  before(async function () {
    // The uses' calls first, alone: their connection timeouts are a few hundred milliseconds, and
    // loading a worker's modules would hold the event loop past them.
    await everyUse();
    await Promise.all([stallingBody(), factories()]);
  });
  after(async function () {
    await Promise.all([...silent.values(), stalling, factoryServers.glue, factoryServers.sqs].map((server) => server?.close()));
  });

  it("bound every use: a connection and a request timeout, and at most two retries (REQ-007)", function () {
    assert.ok(USES.length > 0);
    for (const { use, service, bounds } of USES) {
      const what = `${use}.${service}`;
      assert.ok(bounds.maxAttempts >= 1 && bounds.maxAttempts <= 3, `${what}: ${bounds.maxAttempts} attempts`);
      assert.ok(bounds.connectionTimeoutMs > 0 && bounds.requestTimeoutMs > 0, what);
      assert.ok(bounds.connectionTimeoutMs <= bounds.requestTimeoutMs, `${what}: the connection is part of the request`);
      assert.deepEqual(awsClientConfig(bounds), {
        maxAttempts: bounds.maxAttempts,
        requestHandler: {
          connectionTimeout: bounds.connectionTimeoutMs,
          requestTimeout: bounds.requestTimeoutMs,
          socketTimeout: bounds.requestTimeoutMs,
          throwOnRequestTimeout: true,
        },
      });
    }
  });

  it("are the figures docs/rules.md#timeouts gives for each use", function () {
    const rules = fs.readFileSync(path.join(projectRoot(), "docs", "rules.md"), "utf8");
    const section = rules.slice(rules.indexOf("## Timeouts"), rules.indexOf("\n## ", rules.indexOf("## Timeouts")));
    const columns: AwsService[] = ["secretsManager", "dynamoDb", "sqs", "glue"];
    const documented = new Map<string, Partial<Record<AwsService, AwsClientBounds>>>();
    for (const [, use, cells] of section.matchAll(/^\| `(\w+)` \| [^|]+ \|(.*)\|$/gm)) {
      const figures = cells!.split("|").map((cell) => cell.trim());
      const services: Partial<Record<AwsService, AwsClientBounds>> = {};
      figures.forEach((cell, index) => {
        const match = /^(\d+) \/ (\d+) ms × (\d)$/.exec(cell);
        if (match) {
          services[columns[index]!] = {
            connectionTimeoutMs: Number(match[1]),
            requestTimeoutMs: Number(match[2]),
            maxAttempts: Number(match[3]),
          };
        } else assert.equal(cell, "", `docs/rules.md, ${use}: "${cell}" is not "<connect> / <request> ms × <attempts>"`);
      });
      documented.set(use!, services);
    }
    assert.deepEqual(Object.fromEntries(documented), AWS_CLIENT_BOUNDS);
  });

  describe("against a server that never answers, and an address that refuses connections", function () {
    // The calls were made in the suite's before (everyUse); these read their outcomes.
    for (const { use, service, bounds } of USES) {
      const key = `${use}.${service}`;
      it(`${key}: the SDK's TimeoutError after ${bounds.maxAttempts} unanswered requests, and ${bounds.maxAttempts} refused attempts`, function () {
        const outcome = outcomes.get(key)!;
        const server = silent.get(key)!;
        assert.equal(outcome.silent.name, "TimeoutError", outcome.silent.message);
        assert.match(outcome.silent.message, new RegExp(`${bounds.requestTimeoutMs} ms requestTimeout`));
        assert.equal(outcome.silent.$metadata?.attempts, bounds.maxAttempts);
        assert.equal(server.requests, bounds.maxAttempts, "requests the silent server received");
        assert.equal(server.connections, bounds.maxAttempts, "a new connection for each attempt");

        assert.equal(outcome.refused.code, "ECONNREFUSED", outcome.refused.message);
        assert.equal(outcome.refused.$metadata?.attempts, bounds.maxAttempts);
      });
    }
  });

  it("ends an answer whose body stalls with a TimeoutError after its attempts, not the SDK's five-minute default", function () {
    const bounds = AWS_CLIENT_BOUNDS.lookup.dynamoDb;
    assert.equal(stalled.name, "TimeoutError", stalled.message);
    assert.match(stalled.message, new RegExp(`${bounds.requestTimeoutMs} ms of inactivity`));
    assert.equal(stalled.$metadata?.attempts, bounds.maxAttempts);
    assert.equal(stalling!.requests(), bounds.maxAttempts);
  });

  describe("as the workers' factories build them", function () {
    it("startBotOrNotImport: a Glue that never answers fails the export after the import's Glue attempts", function () {
      const result = importOutcome;
      assert.ok(result instanceof Error, "the handler rejects, so Lambda retries the event");
      assert.match(result.message, new RegExp(`${AWS_CLIENT_BOUNDS.import.glue.requestTimeoutMs} ms requestTimeout`));
      assert.equal(factoryServers.glue!.requests, AWS_CLIENT_BOUNDS.import.glue.maxAttempts);
    });

    it("enqueueFromVfStream: an SQS that never answers fails the record after sendMessages' attempts of the enqueue SQS attempts", function () {
      assert.deepEqual(failuresOf(enqueueOutcome!), [vfEvent.Records[0]!.kinesis.sequenceNumber]);
      // sendMessages makes three attempts of each batch (runtime/sqs.ts), each the SDK's attempts.
      assert.equal(factoryServers.sqs!.requests, 3 * AWS_CLIENT_BOUNDS.enqueue.sqs.maxAttempts);
    });
  });
});
