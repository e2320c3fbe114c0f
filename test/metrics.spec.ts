/**
 * Worker metrics: the per-container recorder and the handler wrapper on their own, then every
 * registered worker built by its factory and run on real events against local services, its EMF
 * output read from stdout and checked against the counting rule and the catalogue
 * (workers/shared/runtime/telemetry.ts).
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import { defineContract } from "../workers/shared/runtime/contract";
import { instrumentHandler } from "../workers/shared/runtime/handler";
import { createHttpClient } from "../workers/shared/runtime/http";
import { createWorkerMetrics, failureReasonOf } from "../workers/shared/runtime/metrics";
import {
  DEPENDENCIES,
  FAILURE_REASONS,
  METRICS_NAMESPACE,
  WORKER_DIMENSIONS,
  WORKER_METRICS,
} from "../workers/shared/runtime/telemetry";
import { WORKERS, type WorkerName } from "../workers/registry";
import { setEnvironment } from "./support/environment";
import {
  type EmfMetric,
  emfDocuments,
  emfMetrics,
  emittedMetrics,
  type MetricServices,
  runEveryWorker,
  startMetricServices,
  WORKER_NAMES,
  type WorkerRun,
} from "./support/emittedMetrics";
import { WireServer } from "./support/http";
import { captureLogs } from "./support/logs";
import { z } from "zod";

const contract = defineContract({
  name: "sampleWorker",
  description: "a worker for the metrics' own tests",
  environment: () => z.object({}),
  access: {},
  dependencies: [DEPENDENCIES.arai],
});

/** The metric named `name` (with `extra` as its one extra dimension, if given) in `metrics`. */
function find(metrics: readonly EmfMetric[], name: string, extra?: Record<string, string>): EmfMetric[] {
  return metrics.filter((metric) => {
    if (metric.name !== name) return false;
    const own = Object.entries(metric.dimensions).filter(([key]) => !(WORKER_DIMENSIONS as readonly string[]).includes(key));
    return JSON.stringify(Object.fromEntries(own)) === JSON.stringify(extra ?? {});
  });
}

/** The one value of a count in `metrics`, 0 when not emitted; fails when emitted more than once. */
function count(metrics: readonly EmfMetric[], name: string, extra?: Record<string, string>): number {
  const found = find(metrics, name, extra);
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(extra ?? {})} emitted ${found.length} times in one invocation`);
  return found[0]?.values.reduce((total, value) => total + value, 0) ?? 0;
}

/** The dimension names a metric must carry: the worker's, then the catalogue's one extra, if any. */
function expectedDimensions(name: string): string[] {
  const entry = Object.values(WORKER_METRICS).find((metric) => metric.name === name);
  assert.ok(entry, `${name} is not in the catalogue`);
  return [...WORKER_DIMENSIONS, ...("dimension" in entry ? [entry.dimension] : [])];
}

describe("worker metrics", function () {
  // The suite's set-up turns worker metrics off (test/support/setup.ts); here they are the subject.
  let restoreMetrics: () => void;
  before(() => (restoreMetrics = setEnvironment({ POWERTOOLS_METRICS_DISABLED: "false" })));
  after(() => restoreMetrics());

  describe("the per-container recorder", function () {
    let restore: () => void;
    beforeEach(function () {
      restore = setEnvironment({
        DEPLOYMENT: "prod1w",
        AWS_REGION: "us-west-2",
        AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
        POWERTOOLS_DEV: undefined,
      });
    });
    afterEach(function () {
      restore();
    });

    it("writes one document for the worker's counts and one per failure reason, with exactly their dimensions", async function () {
      const metrics = createWorkerMetrics(contract);
      const { logs } = await captureLogs(async () => {
        metrics.started();
        metrics.received(5);
        metrics.processed(3);
        metrics.failed("invalid");
        metrics.failed("dependency");
        metrics.publish();
      });
      const documents = emfDocuments(logs);
      assert.equal(documents.length, 3, "the worker's counts, reason=invalid, reason=dependency");
      const emitted = emfMetrics(logs);
      for (const metric of emitted) {
        assert.equal(metric.namespace, METRICS_NAMESPACE);
        assert.deepEqual(metric.dimensionNames, expectedDimensions(metric.name));
        assert.equal(metric.dimensions.service, "sampleWorker");
        assert.equal(metric.dimensions.environment, "prod1w");
        assert.equal(metric.dimensions.region, "us-west-2");
      }
      assert.equal(count(emitted, "RecordsReceived"), 5);
      assert.equal(count(emitted, "RecordsProcessed"), 3);
      assert.equal(count(emitted, "RecordsSkipped"), 0);
      assert.equal(count(emitted, "RecordsFailed", { reason: "invalid" }), 1);
      assert.equal(count(emitted, "RecordsFailed", { reason: "dependency" }), 1);
      assert.equal(count(emitted, "ColdStart"), 1);
    });

    it("adds up an invocation's counts into one value per metric, and starts over for the next", async function () {
      const metrics = createWorkerMetrics(contract);
      const invoke = (failures: number) =>
        captureLogs(async () => {
          metrics.started();
          for (let record = 0; record < 100; record++) metrics.received(1);
          for (let failure = 0; failure < failures; failure++) metrics.failed("throttled");
          metrics.publish();
        });
      const first = emfMetrics((await invoke(40)).logs);
      const second = emfMetrics((await invoke(0)).logs);
      assert.deepEqual(find(first, "RecordsReceived")[0]?.values, [100]);
      assert.deepEqual(find(first, "RecordsFailed", { reason: "throttled" })[0]?.values, [40]);
      assert.equal(count(first, "ColdStart"), 1);
      assert.deepEqual(find(second, "RecordsReceived")[0]?.values, [100], "not 200: counts start over");
      assert.equal(find(second, "RecordsFailed", { reason: "throttled" }).length, 0, "no failure, no failure document");
      assert.equal(find(second, "ColdStart").length, 0, "only the container's first invocation is its cold start");
    });

    it("counts calls, failures after retries and each call's latency, under the dependency", async function () {
      const metrics = createWorkerMetrics(contract);
      const arai = metrics.calls(DEPENDENCIES.arai);
      const notFound = Object.assign(new Error("HTTP 404"), { status: 404 });
      const { logs } = await captureLogs(async () => {
        metrics.started();
        await arai(async () => "found");
        await assert.rejects(arai(async () => Promise.reject(new Error("HTTP 503"))));
        // An answer, not a failure: the caller says so.
        await assert.rejects(
          arai(
            async () => Promise.reject(notFound),
            (error) => error !== notFound,
          ),
        );
        metrics.publish();
      });
      const emitted = emfMetrics(logs);
      const arAI = { dependency: "ARAI" };
      assert.equal(count(emitted, "ExternalCalls", arAI), 3);
      assert.equal(count(emitted, "ExternalCallFailures", arAI), 1);
      const latency = find(emitted, "ExternalCallLatency", arAI);
      assert.equal(latency.length, 1, "one document for the dependency");
      assert.equal(latency[0]!.values.length, 3, "one latency per call");
      assert.equal(latency[0]!.unit, "Milliseconds");
      assert.ok(latency[0]!.values.every((value) => value >= 0));
    });

    it("counts an HTTP request once with its retries, failed only after them, and an answer such as a 404 not failed", async function () {
      const server = await WireServer.start((request) =>
        request.url.startsWith("/unknown") ? { status: 404, body: { message: "no such fan" } } : { status: 503, body: {} },
      );
      try {
        const metrics = createWorkerMetrics(contract);
        const request = createHttpClient({
          service: "accounts ARAI API",
          timeoutMs: 1000,
          baseDelayMs: 1,
          calls: metrics.calls(DEPENDENCIES.arai),
          isAnswer: (error) => error.status === 404,
        });
        const { logs } = await captureLogs(async () => {
          metrics.started();
          await assert.rejects(request({ operation: "GET account", url: `${server.url}/unknown` }), /HTTP 404/);
          await assert.rejects(request({ operation: "GET account", url: `${server.url}/down` }), /after 3 attempts/);
          metrics.publish();
        });
        assert.equal(server.requests.length, 4, "one 404, then three attempts at the 503");
        const emitted = emfMetrics(logs);
        assert.equal(count(emitted, "ExternalCalls", { dependency: "ARAI" }), 2);
        assert.equal(count(emitted, "ExternalCallFailures", { dependency: "ARAI" }), 1);
      } finally {
        await server.close();
      }
    });

    it("refuses, when a factory binds it, a dependency the contract does not list", function () {
      const metrics = createWorkerMetrics(contract);
      assert.throws(
        () => metrics.calls(DEPENDENCIES.redis),
        /^Error: sampleWorker: calls to Redis are not in the contract's dependencies \(ARAI\); add Redis there$/,
      );
    });

    it("names the environment and region it could not read", async function () {
      restore();
      restore = setEnvironment({ DEPLOYMENT: undefined, AWS_REGION: undefined, AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand" });
      const metrics = createWorkerMetrics(contract);
      const { logs } = await captureLogs(async () => {
        metrics.started();
        metrics.publish();
      });
      const [received] = find(emfMetrics(logs), "RecordsReceived");
      assert.deepEqual(received?.dimensions, { service: "sampleWorker", environment: "unset", region: "unset" });
    });

    it("classifies failures into the catalogue's reasons", function () {
      const cases: [unknown, (typeof FAILURE_REASONS)[number]][] = [
        [Object.assign(new Error("bad arguments"), { name: "ValidationError" }), "invalid"],
        [Object.assign(new Error("slow down"), { name: "ProvisionedThroughputExceededException" }), "throttled"],
        ["SendMessageBatch to q failed: ThrottlingException: Rate exceeded", "throttled"],
        [Object.assign(new Error("model down"), { name: "HttpServiceError" }), "dependency"],
        [new Error("session not read", { cause: Object.assign(new Error("x"), { name: "ThrottlingException" }) }), "throttled"],
        [new Error("something else"), "error"],
      ];
      for (const [error, reason] of cases) assert.equal(failureReasonOf(error), reason, String(error));
    });
  });

  describe("the handler wrapper", function () {
    const context = {
      awsRequestId: "c6af9ac6-7b61-11e6-9a41-93e812345678",
      functionName: "vfid-qa1-us-east-1-sampleWorker",
      functionVersion: "$LATEST",
      invokedFunctionArn: "arn:aws:lambda:us-east-1:210987654321:function:vfid-qa1-us-east-1-sampleWorker",
      memoryLimitInMB: "256",
    };
    let restore: () => void;
    beforeEach(function () {
      restore = setEnvironment({
        DEPLOYMENT: "qa1",
        AWS_REGION: "us-east-1",
        AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
        POWERTOOLS_LOG_LEVEL: "INFO",
      });
    });
    afterEach(function () {
      restore();
    });

    it("puts the request id, function name and cold start on every line", async function () {
      const logger = new Logger({ serviceName: contract.name });
      const metrics = createWorkerMetrics(contract);
      const handler = instrumentHandler({ logger, metrics }, async (event: { n: number }) => {
        logger.info("handled", { n: event.n });
        return event.n;
      });
      const { logs } = await captureLogs(async () => {
        await handler({ n: 1 }, context);
        await handler({ n: 2 }, { ...context, awsRequestId: "second-request" });
      });
      const lines = logs.filter((line) => line.message === "handled");
      assert.equal(lines.length, 2);
      assert.equal(lines[0]!.function_request_id, context.awsRequestId);
      assert.equal(lines[0]!.function_name, context.functionName);
      assert.equal(lines[0]!.cold_start, true);
      assert.equal(lines[1]!.function_request_id, "second-request");
      assert.equal(lines[1]!.cold_start, false);
    });

    it("publishes the metrics when the handler throws, and throws its error", async function () {
      const logger = new Logger({ serviceName: contract.name });
      const metrics = createWorkerMetrics(contract);
      const failure = new Error("the batch could not be read");
      const handler = instrumentHandler({ logger, metrics }, async () => {
        metrics.received(3);
        throw failure;
      });
      const { result, logs } = await captureLogs(() =>
        handler({}, context).then(
          () => undefined,
          (error: unknown) => error,
        ),
      );
      assert.equal(result, failure);
      assert.equal(count(emfMetrics(logs), "RecordsReceived"), 3);
    });

    it("counts a request worker's request processed when it answers, failed by reason when it throws", async function () {
      const logger = new Logger({ serviceName: contract.name });
      const metrics = createWorkerMetrics(contract);
      const handler = instrumentHandler({ logger, metrics, request: true }, async (event: { valid: boolean }) => {
        if (!event.valid) throw Object.assign(new Error("no fan"), { name: "ValidationError" });
        return "answer";
      });
      // Called with the event alone, as tests and tools may.
      const answered = emfMetrics((await captureLogs(() => handler({ valid: true }))).logs);
      const refused = emfMetrics((await captureLogs(() => handler({ valid: false }).catch(() => undefined))).logs);
      assert.deepEqual(
        [
          count(answered, "RecordsReceived"),
          count(answered, "RecordsProcessed"),
          count(answered, "RecordsFailed", { reason: "invalid" }),
        ],
        [1, 1, 0],
      );
      assert.deepEqual(
        [
          count(refused, "RecordsReceived"),
          count(refused, "RecordsProcessed"),
          count(refused, "RecordsFailed", { reason: "invalid" }),
        ],
        [1, 0, 1],
      );
    });
  });

  describe("emittedMetrics(), the list alarms are checked against", function () {
    it("lists each metric a worker emitted once, failure metrics included, for every worker", async function () {
      const metrics = await emittedMetrics();
      const keys = metrics.map((metric) => JSON.stringify([metric.namespace, metric.name, metric.dimensions]));
      assert.equal(new Set(keys).size, keys.length, "each once");
      assert.deepEqual([...new Set(metrics.map((metric) => metric.dimensions.service))].sort(), [...WORKER_NAMES].sort());
      for (const metric of metrics) assert.deepEqual(Object.keys(metric).sort(), ["dimensions", "name", "namespace"]);
      // A failing call in each worker that has dependencies: its failure metric is listed.
      for (const [worker, dependency] of [
        ["lookupArai", "ARAI"],
        ["scoreUsers", "ModelServing"],
        ["checkLiveness", "Persona"],
        ["validateToken", "JWKS"],
        ["getArmScore", "Redis"],
        ["startBotOrNotImport", "Glue"],
      ] as const) {
        assert.ok(
          metrics.some(
            (metric) =>
              metric.name === "ExternalCallFailures" &&
              metric.dimensions.service === worker &&
              metric.dimensions.dependency === dependency,
          ),
          `${worker}: ExternalCallFailures for ${dependency}`,
        );
      }
      assert.ok(metrics.some((metric) => metric.name === "RecordsFailed" && metric.dimensions.reason === "dependency"));
      assert.ok(metrics.some((metric) => metric.name === "RecordsFailed" && metric.dimensions.reason === "invalid"));
      // The stream workers park the undecodable record of their batch themselves.
      assert.ok(metrics.some((metric) => metric.name === "RecordsParked" && metric.dimensions.reason === "invalid"));
    });
  });

  describe("every worker, on real events against local services", function () {
    let services: MetricServices;
    let runs: WorkerRun[];

    before(async function () {
      services = await startMetricServices();
      runs = await runEveryWorker(services);
    });
    after(async function () {
      await services?.close();
    });

    /** The runs of `worker` labelled `label`, in invocation order. */
    const runsOf = (worker: WorkerName, label: string) => {
      const found = runs.filter((run) => run.worker === worker && run.label === label);
      assert.ok(found.length > 0, `no run of ${worker} "${label}"`);
      return found;
    };

    it("runs every registered worker", function () {
      assert.deepEqual([...new Set(runs.map((run) => run.worker))].sort(), [...WORKER_NAMES].sort());
    });

    it("emits only catalogue metrics, each with exactly its dimensions, never a fan id", function () {
      const names = Object.values(WORKER_METRICS).map((metric) => metric.name as string);
      for (const run of runs) {
        assert.ok(run.metrics.length > 0, `${run.worker} "${run.label}" emitted nothing`);
        for (const metric of run.metrics) {
          const where = `${run.worker} "${run.label}" ${metric.name}`;
          assert.equal(metric.namespace, METRICS_NAMESPACE, where);
          assert.ok(names.includes(metric.name), `${where} is not in the catalogue`);
          assert.deepEqual(metric.dimensionNames, expectedDimensions(metric.name), where);
          assert.deepEqual(
            [metric.dimensions.service, metric.dimensions.environment, metric.dimensions.region],
            [run.worker, "qa1", "us-east-1"],
            where,
          );
          if (metric.dimensions.reason !== undefined)
            assert.ok(FAILURE_REASONS.includes(metric.dimensions.reason as never), where);
          for (const value of Object.values(metric.dimensions)) assert.doesNotMatch(value, /gu-[0-9a-f]/, `${where}: a fan id`);
        }
      }
    });

    it("emits call metrics only for the dependencies each worker's contract lists", function () {
      for (const run of runs) {
        const listed: readonly string[] = WORKERS[run.worker].worker.contract.dependencies;
        for (const metric of run.metrics.filter((candidate) => candidate.dimensions.dependency !== undefined)) {
          assert.ok(
            listed.includes(metric.dimensions.dependency!),
            `${run.worker} emits ${metric.name} for ${metric.dimensions.dependency}`,
          );
        }
      }
    });

    it("counts every record once: received = processed + skipped + failed + parked", function () {
      for (const run of runs) {
        const sum = (name: string) => FAILURE_REASONS.reduce((total, reason) => total + count(run.metrics, name, { reason }), 0);
        const outcomes =
          count(run.metrics, "RecordsProcessed") +
          count(run.metrics, "RecordsSkipped") +
          sum("RecordsFailed") +
          sum("RecordsParked");
        assert.equal(count(run.metrics, "RecordsReceived"), outcomes, `${run.worker} "${run.label}"`);
      }
    });

    it("puts the Lambda request id, function name and cold start on the workers' log lines", function () {
      const logged = runs.flatMap((run) =>
        run.lines.filter((line) => typeof line.level === "string").map((line) => ({ run, line })),
      );
      assert.ok(logged.length >= 5, `expected the failing runs to log errors, got ${logged.length} lines`);
      for (const { run, line } of logged) {
        assert.match(
          String(line.function_request_id),
          new RegExp(`^req-${run.worker}-`),
          `${run.worker}: ${String(line.message)}`,
        );
        assert.equal(line.function_name, `vfid-qa1-us-east-1-${run.worker}`);
        assert.equal(typeof line.cold_start, "boolean");
      }
    });

    /** Records received, processed and skipped, and failed and parked by reason, of one invocation. */
    const records = (run: WorkerRun) => {
      const byReason = (name: string) =>
        Object.fromEntries(
          FAILURE_REASONS.map((reason) => [reason, count(run.metrics, name, { reason })]).filter(([, n]) => n !== 0),
        );
      return {
        received: count(run.metrics, "RecordsReceived"),
        processed: count(run.metrics, "RecordsProcessed"),
        skipped: count(run.metrics, "RecordsSkipped"),
        failed: byReason("RecordsFailed"),
        parked: byReason("RecordsParked"),
      };
    };
    /** [calls, failures, latencies] of one dependency in one invocation. */
    const calls = (run: WorkerRun, dependency: string) => [
      count(run.metrics, "ExternalCalls", { dependency }),
      count(run.metrics, "ExternalCallFailures", { dependency }),
      find(run.metrics, "ExternalCallLatency", { dependency })[0]?.values.length ?? 0,
    ];

    it("enqueue workers: a good record processed, an undecodable one parked as invalid", function () {
      for (const worker of [
        "enqueueFromVfStream",
        "enqueueFromDemandStream",
        "enqueueFromPurchaseStream",
        "enqueueFromSQJourneyStream",
        "processRescoreEvents",
      ] as const) {
        const [run] = runsOf(worker, "one good record, one undecodable");
        assert.deepEqual(records(run!), { received: 2, processed: 1, skipped: 0, failed: {}, parked: { invalid: 1 } }, worker);
        assert.equal(count(run!.metrics, "ColdStart"), 1, worker);
      }
      // The fixture's failed login is not scorable: skipped; the successful login and phone update are enqueued.
      const [kafka] = runsOf("enqueueFromActivityStream", "three records");
      assert.deepEqual(records(kafka!), { received: 3, processed: 2, skipped: 1, failed: {}, parked: {} });
    });

    it("lookupArai: the credentials read once, ARAI called per stale fan, an undecodable message parked as invalid; ARAI down fails the message as a dependency failure", function () {
      const [up] = runsOf("lookupArai", "ARAI up, one message undecodable");
      assert.deepEqual(records(up!), { received: 2, processed: 1, skipped: 0, failed: {}, parked: { invalid: 1 } });
      assert.equal(count(up!.metrics, "RecordsParked", { reason: "invalid" }), 1);
      assert.deepEqual(calls(up!, "ARAI"), [1, 0, 1]);
      assert.deepEqual(calls(up!, "SecretsManager"), [1, 0, 1]);
      const [down] = runsOf("lookupArai", "ARAI down");
      assert.deepEqual(records(down!), { received: 1, processed: 0, skipped: 0, failed: { dependency: 1 }, parked: {} });
      assert.deepEqual(calls(down!, "ARAI"), [1, 1, 1], "one call, its retries included, failed");
    });

    it("scoring workers: scores written under the model version; the model down fails its fans' records", function () {
      for (const worker of ["scoreUsers", "stagingScoreUsers"] as const) {
        const [up] = runsOf(worker, "model up");
        assert.deepEqual(records(up!), { received: 2, processed: 1, skipped: 0, failed: {}, parked: { invalid: 1 } }, worker);
        assert.equal(count(up!.metrics, "ScoresWritten", { modelVersion: "fan-risk-7" }), 1, worker);
        assert.deepEqual(calls(up!, "ModelServing"), [1, 0, 1], worker);
        const [down] = runsOf(worker, "model down");
        assert.deepEqual(
          records(down!),
          { received: 1, processed: 0, skipped: 0, failed: { dependency: 1 }, parked: {} },
          worker,
        );
        assert.deepEqual(calls(down!, "ModelServing"), [1, 1, 1], worker);
        assert.equal(find(down!.metrics, "ScoresWritten", { modelVersion: "fan-risk-7" }).length, 0, worker);
      }
    });

    it("imports: an export started, one without a date skipped, a refused run failed as a dependency failure", function () {
      for (const worker of ["startBotOrNotImport", "startClusterImport"] as const) {
        const [started, skipped] = runsOf(worker, "started");
        assert.deepEqual(records(started!), { received: 1, processed: 1, skipped: 0, failed: {}, parked: {} }, worker);
        assert.deepEqual(calls(started!, "Glue"), [1, 0, 1], worker);
        assert.deepEqual(records(skipped!), { received: 1, processed: 0, skipped: 1, failed: {}, parked: {} }, worker);
        assert.equal(find(skipped!.metrics, "ColdStart").length, 0, `${worker}: the second invocation is warm`);
        const [refused] = runsOf(worker, "Glue refuses");
        assert.ok(refused!.error, `${worker} throws so Lambda retries the event`);
        assert.deepEqual(
          records(refused!),
          { received: 1, processed: 0, skipped: 0, failed: { dependency: 1 }, parked: {} },
          worker,
        );
        assert.deepEqual(calls(refused!, "Glue"), [1, 1, 1], worker);
      }
    });

    it("request workers: one request each, its dependencies' failures counted", function () {
      const [verified] = runsOf("validateToken", "verified");
      assert.deepEqual(records(verified!), { received: 1, processed: 1, skipped: 0, failed: {}, parked: {} });
      assert.deepEqual(calls(verified!, "JWKS"), [1, 0, 1]);
      assert.deepEqual(calls(verified!, "SecretsManager"), [1, 0, 1]);
      const [jwksDown] = runsOf("validateToken", "JWKS down");
      assert.deepEqual(records(jwksDown!), { received: 1, processed: 0, skipped: 0, failed: { dependency: 1 }, parked: {} });
      assert.deepEqual(calls(jwksDown!, "JWKS")[1], 1);

      const [stored] = runsOf("getArmScore", "stored score");
      assert.deepEqual(stored!.result, { armScore: 3 });
      assert.deepEqual(records(stored!), { received: 1, processed: 1, skipped: 0, failed: {}, parked: {} });
      assert.deepEqual(calls(stored!, "Redis"), [1, 0, 1]);
      const [unreachable] = runsOf("getArmScore", "Redis unreachable");
      assert.deepEqual(records(unreachable!), { received: 1, processed: 0, skipped: 0, failed: { dependency: 1 }, parked: {} });
      assert.deepEqual(calls(unreachable!, "Redis"), [1, 1, 1]);

      // Persona down: the fan is answered (asked to verify, no session) and the call counted failed.
      const [liveness] = runsOf("checkLiveness", "Persona down");
      assert.deepEqual(records(liveness!), { received: 1, processed: 1, skipped: 0, failed: {}, parked: {} });
      assert.deepEqual(calls(liveness!, "Persona"), [1, 1, 1]);
      assert.deepEqual(calls(liveness!, "SecretsManager"), [2, 0, 2], "the API key and the signing key");

      const [webhook] = runsOf("handleEvent", "signature refused");
      assert.deepEqual(records(webhook!), { received: 1, processed: 0, skipped: 0, failed: { invalid: 1 }, parked: {} });
      assert.deepEqual(calls(webhook!, "SecretsManager"), [1, 0, 1]);
    });
  });
});
