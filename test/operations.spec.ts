/**
 * Operating the system, on the offline plan of every stack (docs/operations.md): every
 * asynchronous path has its alarm, read from the planned mappings, queues and failure
 * destinations themselves; alarms go to an encrypted alert topic; thresholds, subscriptions and
 * tracing follow the stack file; the dashboard's flows are the diagram's; and the outputs give
 * callers what they wire up, including a JWKS that verifies the decision tokens.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { createLocalJWKSet, exportPKCS8, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import { parse } from "yaml";
import { projectRoot } from "../components/archive";
import { dashboardFlows } from "../components/dashboard";
import { alarmSpecs, type AlarmThresholds, workerMetric } from "../components/alarms";
import { FlowRecord, flowKey } from "../components/flows";
import { PROJECT } from "../stacks/config";
import { describeResources } from "../tools/offline/describe";
import { plannedFlows } from "../tools/offline/diagram";
import type { RecordedResource } from "../tools/offline/runtime";
import { decisionTokenVerifyOptions } from "../workers/checkLiveness/token";
import { REGISTERED } from "../workers/registry";
import { DEPENDENCIES, METRICS_NAMESPACE, WORKER_METRICS } from "../workers/shared/runtime/telemetry";
import { type PlannedStack, planStack, planStacks, stackConfig, stackSection, statementsOf } from "./support/program";

const STACKS = ["qa1", "dev1", "preprod1", "prod1"] as const;
const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";
const QUEUE = "aws:sqs/queue:Queue";
const MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping";
const FUNCTION = "aws:lambda/function:Function";
const TOPIC = "aws:sns/topic:Topic";

interface Watched {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Record<string, string>;
}

/** The metrics an alarm reads: its one metric, or those of its metric math. */
function watched(alarm: RecordedResource): Watched[] {
  const inputs = alarm.inputs as {
    namespace?: string;
    metricName?: string;
    dimensions?: Record<string, string>;
    metricQueries?: { metric?: Watched }[];
  };
  if (inputs.metricName) {
    return [{ namespace: inputs.namespace!, metricName: inputs.metricName, dimensions: inputs.dimensions ?? {} }];
  }
  return (inputs.metricQueries ?? []).flatMap((query) => (query.metric ? [query.metric] : []));
}

const regionOf = (plan: PlannedStack, resource: RecordedResource) =>
  String(plan.resources.find((candidate) => candidate.urn === resource.providerUrn)?.inputs.region);

/** The alarms reading `metricName` of `namespace` with exactly these dimensions. */
function alarmsOn(plan: PlannedStack, namespace: string, metricName: string, dimensions: Record<string, string>) {
  return plan
    .ofType(ALARM)
    .filter((alarm) =>
      watched(alarm).some(
        (metric) =>
          metric.namespace === namespace && metric.metricName === metricName && sameDimensions(metric.dimensions, dimensions),
      ),
    );
}

const sameDimensions = (a: Record<string, string>, b: Record<string, string>) =>
  JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());

/** A queue's name, from its ARN (`arn:aws:sqs:<region>:<account>:<name>`). */
const queueNameOf = (arn: unknown) => String(arn).split(":")[5]!;

/** Where Lambda sends what a mapping or an asynchronous invocation gave up on. */
function failureDestinations(plan: PlannedStack): string[] {
  return plan.resources.flatMap((resource) => {
    const onFailure = (
      resource.inputs as { destinationConfig?: { onFailure?: { destinationArn?: string; destination?: string } } }
    ).destinationConfig?.onFailure;
    return onFailure ? [String(onFailure.destinationArn ?? onFailure.destination)] : [];
  });
}

/** The stack file's alarm thresholds, with the defaults docs/operations.md gives. */
function thresholdsOf(stack: string): AlarmThresholds {
  const defaults = {
    periodSeconds: 300,
    evaluationPeriods: 1,
    queueOldestMessageAgeSeconds: 900,
    failedMessageAgeSeconds: 604_800,
    failedMessages: 0,
    iteratorAgeSeconds: 300,
    kafkaOffsetLag: 10_000,
    functionErrors: 0,
    functionThrottles: 0,
    api5xxErrors: 0,
    apiLatencyP99Ms: 3000,
    authoriserDurationP99Ms: 1000,
    externalCallFailureRate: 0.05,
  };
  const operations = stackSection<{ alarms?: Partial<AlarmThresholds> }>(stack, "operations");
  return { ...defaults, ...operations.alarms };
}

/** Asserts exactly one alarm on the metric, firing above `threshold`. */
function assertAlarm(plan: PlannedStack, what: string, metric: [string, string, Record<string, string>], threshold: number) {
  const alarms = alarmsOn(plan, ...metric);
  assert.equal(alarms.length, 1, `${what}: expected one alarm on ${metric[1]} ${JSON.stringify(metric[2])}`);
  assert.equal(alarms[0]!.inputs.comparisonOperator, "GreaterThanThreshold", what);
  assert.equal(alarms[0]!.inputs.threshold, threshold, `${what}: threshold`);
}

describe("operations, on the offline plan of every stack", function () {
  let planned: Map<string, PlannedStack>;
  before(async function () {
    planned = await planStacks(STACKS);
  });

  for (const stack of STACKS) {
    describe(stack, function () {
      const plan = () => planned.get(stack)!;
      const thresholds = thresholdsOf(stack);

      it("alarms on every asynchronous path: every mapping, every queue, every failure destination", function () {
        const mappings = plan().ofType(MAPPING);
        assert.ok(mappings.length >= 6);
        for (const mapping of mappings) {
          const source = String(mapping.inputs.eventSourceArn ?? "");
          const fn = String(mapping.inputs.functionName);
          if (source.startsWith("arn:aws:kinesis:")) {
            assertAlarm(
              plan(),
              mapping.name,
              ["AWS/Lambda", "IteratorAge", { FunctionName: fn }],
              thresholds.iteratorAgeSeconds * 1000,
            );
          } else if (source.startsWith("arn:aws:sqs:")) {
            const queueName = queueNameOf(source);
            const age = thresholds.queueOldestMessageAgeSeconds;
            assertAlarm(plan(), mapping.name, ["AWS/SQS", "ApproximateAgeOfOldestMessage", { QueueName: queueName }], age);
          } else {
            assert.ok(mapping.inputs.topics, `${mapping.name} is a Kafka mapping`);
            assertAlarm(plan(), mapping.name, ["AWS/Lambda", "OffsetLag", { FunctionName: fn }], thresholds.kafkaOffsetLag);
          }
        }

        const deadLetterQueues = plan()
          .ofType(QUEUE)
          .flatMap((queue) =>
            queue.inputs.redrivePolicy
              ? [
                  queueNameOf(
                    (JSON.parse(String(queue.inputs.redrivePolicy)) as { deadLetterTargetArn: string }).deadLetterTargetArn,
                  ),
                ]
              : [],
          );
        const failureQueues = failureDestinations(plan()).map(queueNameOf);
        assert.ok(deadLetterQueues.length >= 2 && failureQueues.length >= 3);
        const holdingFailures = new Set([...deadLetterQueues, ...failureQueues]);
        for (const queue of plan().ofType(QUEUE)) {
          const name = String(queue.inputs.name);
          const failed = holdingFailures.has(name);
          const age = failed ? thresholds.failedMessageAgeSeconds : thresholds.queueOldestMessageAgeSeconds;
          assertAlarm(plan(), name, ["AWS/SQS", "ApproximateAgeOfOldestMessage", { QueueName: name }], age);
          const depth = alarmsOn(plan(), "AWS/SQS", "ApproximateNumberOfMessagesVisible", { QueueName: name });
          if (failed)
            assertAlarm(
              plan(),
              name,
              ["AWS/SQS", "ApproximateNumberOfMessagesVisible", { QueueName: name }],
              thresholds.failedMessages,
            );
          else assert.equal(depth.length, 0, `${name} is a work queue: its depth is its load, not an alarm`);
        }
      });

      it("alarms on every function's errors and throttles, the webhook API's 5XX and p99 latency, and the authoriser's p99 duration", function () {
        for (const fn of plan().ofType(FUNCTION)) {
          const name = String(fn.inputs.name);
          assertAlarm(plan(), name, ["AWS/Lambda", "Errors", { FunctionName: name }], thresholds.functionErrors);
          assertAlarm(plan(), name, ["AWS/Lambda", "Throttles", { FunctionName: name }], thresholds.functionThrottles);
        }
        const api = plan().ofType("aws:apigateway/restApi:RestApi");
        assert.equal(api.length, 1);
        const dimensions = { ApiName: String(api[0]!.inputs.name), Stage: stack };
        assertAlarm(plan(), "API 5XX", ["AWS/ApiGateway", "5XXError", dimensions], thresholds.api5xxErrors);
        assertAlarm(plan(), "API latency", ["AWS/ApiGateway", "Latency", dimensions], thresholds.apiLatencyP99Ms);
        assert.equal(alarmsOn(plan(), "AWS/ApiGateway", "Latency", dimensions)[0]!.inputs.extendedStatistic, "p99");
        const authoriser = `vfid-${stack}-us-east-1-validateToken`;
        assertAlarm(
          plan(),
          "authoriser",
          ["AWS/Lambda", "Duration", { FunctionName: authoriser }],
          thresholds.authoriserDurationP99Ms,
        );
        assert.equal(
          alarmsOn(plan(), "AWS/Lambda", "Duration", { FunctionName: authoriser })[0]!.inputs.extendedStatistic,
          "p99",
        );
      });

      it("alarms on the failure rate of each worker's calls to each dependency its contract declares, from the metric catalogue", function () {
        let checked = 0;
        for (const fn of plan().ofType(FUNCTION)) {
          const region = regionOf(plan(), fn);
          const worker = REGISTERED.find(({ name }) => String(fn.inputs.name).endsWith(`-${name}`))!;
          const where = { service: worker.name, environment: region === "us-west-2" ? `${stack}w` : stack, region };
          for (const dependency of worker.worker.contract.dependencies) {
            const dimensions = { ...where, dependency };
            const [alarm, ...others] = alarmsOn(plan(), METRICS_NAMESPACE, "ExternalCallFailures", dimensions);
            assert.ok(alarm && others.length === 0, `${worker.name} → ${dependency}: expected one failure-rate alarm`);
            const queries = alarm.inputs.metricQueries as {
              id: string;
              expression?: string;
              returnData?: boolean;
              metric?: Watched & { stat: string };
            }[];
            const calls = queries.find((query) => query.metric?.metricName === "ExternalCalls");
            assert.ok(calls && sameDimensions(calls.metric!.dimensions, dimensions), "the same dimensions for the calls");
            const rate = queries.filter((query) => query.returnData);
            assert.equal(rate.length, 1);
            assert.match(
              rate[0]!.expression!,
              /IF\(FILL\(calls, 0\) > 0, FILL\(failures, 0\) \/ calls, 0\)/,
              "no calls is a rate of 0",
            );
            assert.equal(alarm.inputs.threshold, thresholds.externalCallFailureRate);
            checked += 1;
          }
        }
        const onMetric = plan()
          .ofType(ALARM)
          .filter((alarm) => watched(alarm).some((metric) => metric.namespace === METRICS_NAMESPACE));
        assert.equal(onMetric.length, checked, "no alarm on a worker metric for a dependency no contract declares");
        assert.ok(checked >= Object.keys(DEPENDENCIES).length - 1);
      });

      it("sends every alarm, and its return to OK, to its region's alert topic, encrypted with a rotated key CloudWatch may use", function () {
        const topics = plan().ofType(TOPIC);
        const regions = new Set(
          plan()
            .ofType(FUNCTION)
            .map((fn) => regionOf(plan(), fn)),
        );
        assert.deepEqual(new Set(topics.map((topic) => regionOf(plan(), topic))), regions, "one topic per region");
        for (const alarm of plan().ofType(ALARM)) {
          const topic = topics.find((candidate) => regionOf(plan(), candidate) === regionOf(plan(), alarm))!;
          assert.deepEqual(alarm.inputs.alarmActions, [topic.state.arn], String(alarm.inputs.name));
          assert.deepEqual(alarm.inputs.okActions, [topic.state.arn], String(alarm.inputs.name));
          assert.equal(alarm.inputs.evaluationPeriods, thresholds.evaluationPeriods);
          assert.match(String(alarm.inputs.alarmDescription), /Runbook: docs\/operations\.md#[a-z0-9-]+$/);
        }
        const runbook = fs.readFileSync(path.join(projectRoot(), "docs/operations.md"), "utf8");
        const anchors = new Set([...runbook.matchAll(/^#{2,4} (.+)$/gm)].map(([, heading]) => slug(heading!)));
        for (const alarm of plan().ofType(ALARM)) {
          const anchor = /#([a-z0-9-]+)$/.exec(String(alarm.inputs.alarmDescription))![1]!;
          assert.ok(anchors.has(anchor), `docs/operations.md has no heading for #${anchor}`);
        }
        for (const topic of topics) {
          const key = plan()
            .ofType("aws:kms/key:Key")
            .find((candidate) => candidate.state.arn === topic.inputs.kmsMasterKeyId);
          assert.ok(key, `${String(topic.inputs.name)} is encrypted with a key of this stack, not alias/aws/sns`);
          assert.equal(key.inputs.enableKeyRotation, true);
          const policy = JSON.parse(String(key.inputs.policy)) as {
            Statement: { Principal: unknown; Action: string[] | string }[];
          };
          const forCloudWatch = policy.Statement.find(
            (statement) => JSON.stringify(statement.Principal) === JSON.stringify({ Service: "cloudwatch.amazonaws.com" }),
          );
          assert.ok(forCloudWatch, "the key's policy admits CloudWatch");
          assert.deepEqual([...forCloudWatch.Action].sort(), ["kms:Decrypt", "kms:GenerateDataKey*"]);
        }
      });

      it("subscribes the stack file's emails to every region's topic", function () {
        const emails = stackSection<{ alerts: { emails: string[] } }>(stack, "operations").alerts.emails;
        const subscriptions = plan().ofType("aws:sns/topicSubscription:TopicSubscription");
        for (const topic of plan().ofType(TOPIC)) {
          const ofTopic = subscriptions.filter((subscription) => subscription.inputs.topic === topic.state.arn);
          assert.deepEqual(
            ofTopic.map((subscription) => [subscription.inputs.protocol, subscription.inputs.endpoint]).sort(),
            emails.map((email) => ["email", email]).sort(),
          );
        }
      });

      it("draws one dashboard per region whose flows are the event-flow diagram's edges", async function () {
        const dashboards = plan().ofType("aws:cloudwatch/dashboard:Dashboard");
        const regions = [
          ...new Set(
            plan()
              .ofType(FUNCTION)
              .map((fn) => regionOf(plan(), fn)),
          ),
        ];
        assert.equal(dashboards.length, regions.length);
        const shown = dashboards.flatMap((dashboard) => {
          const flows = dashboardFlows(String(dashboard.inputs.dashboardBody));
          assert.ok(flows.length > 0);
          // A region's dashboard shows only its own workers.
          const region = regionOf(plan(), dashboard);
          for (const flow of flows) {
            for (const node of [flow.from, flow.to]) {
              if (node.shape === "worker")
                assert.ok(node.name.startsWith(`vfid-${stack}-${region}-`), `${node.name} on the ${region} dashboard`);
            }
          }
          return flows.map(flowKey);
        });
        const drawn = plannedFlows(await describeResources(plan().resources)).map(flowKey);
        assert.deepEqual([...new Set(shown)].sort(), [...new Set(drawn)].sort());
        assert.equal(shown.length, new Set(shown).size, "no flow shown twice");
      });

      it("traces every function as the stack file says, with the X-Ray statements active tracing needs", function () {
        const mode = stackSection<{ tracing?: string }>(stack, "lambda").tracing ?? "Active";
        const policies = plan().ofType("aws:iam/rolePolicy:RolePolicy");
        for (const fn of plan().ofType(FUNCTION)) {
          assert.deepEqual(fn.inputs.tracingConfig, { mode }, String(fn.inputs.name));
          const roleName = String(fn.inputs.role).split("/").pop();
          const xray = policies
            .filter((policy) => policy.inputs.role === roleName)
            .flatMap(statementsOf)
            .filter((statement) => statement.Action.some((action) => action.startsWith("xray:")));
          if (mode === "Active") {
            assert.deepEqual(
              xray.map((statement) => [statement.Action.sort(), statement.Resource]),
              [[["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]]],
            );
          } else {
            assert.equal(xray.length, 0, `${String(fn.inputs.name)} needs no X-Ray access without active tracing`);
          }
        }
        const stage = plan().ofType("aws:apigateway/stage:Stage")[0]!;
        assert.equal(stage.inputs.xrayTracingEnabled, mode === "Active");
      });

      it("outputs the functions callers wire up, the failure queues, the alert topics and the dashboards", function () {
        const outputs = plan().outputs;
        const arnOf = (worker: string, region = "us-east-1") =>
          plan()
            .ofType(FUNCTION)
            .find((fn) => fn.inputs.name === `vfid-${stack}-${region}-${worker}`)!.state.arn;
        assert.equal(outputs.checkLivenessArn, arnOf("checkLiveness"));
        assert.equal(outputs.handleEventArn, arnOf("handleEvent"));
        assert.equal(outputs.getArmScoreArnEast, arnOf("getArmScore"));
        assert.equal(outputs.validateTokenArn, arnOf("validateToken"));
        const holdingFailures = new Set([
          ...plan()
            .ofType(QUEUE)
            .flatMap((queue) =>
              queue.inputs.redrivePolicy
                ? [(JSON.parse(String(queue.inputs.redrivePolicy)) as { deadLetterTargetArn: string }).deadLetterTargetArn]
                : [],
            ),
          ...failureDestinations(plan()),
        ]);
        const urls = plan()
          .ofType(QUEUE)
          .filter((queue) => holdingFailures.has(String(queue.state.arn)))
          .map((queue) => [String(queue.inputs.name), queue.state.url]);
        assert.deepEqual(Object.entries(outputs.failureQueueUrls as object).sort(), urls.sort());
        const west = plan()
          .ofType(FUNCTION)
          .some((fn) => regionOf(plan(), fn) === "us-west-2");
        for (const [suffix, region] of [["East", "us-east-1"], ...(west ? [["West", "us-west-2"]] : [])] as const) {
          const topic = plan()
            .ofType(TOPIC)
            .find((candidate) => regionOf(plan(), candidate) === region)!;
          assert.equal(outputs[`alertTopicArn${suffix}`], topic.state.arn);
          const dashboard = plan()
            .ofType("aws:cloudwatch/dashboard:Dashboard")
            .find((candidate) => regionOf(plan(), candidate) === region)!;
          assert.equal(
            outputs[`dashboardUrl${suffix}`],
            `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${String(dashboard.inputs.dashboardName)}`,
          );
        }
        if (west) assert.equal(outputs.getArmScoreArnWest, arnOf("getArmScore", "us-west-2"));
        // Offline, the decision signing key is one generated for the run: the JWKS is still derived.
        const jwks = outputs.decisionTokenJwks as { keys: { kty: string; kid: string; d?: string }[] };
        assert.equal(jwks.keys.length, 1);
        assert.equal(jwks.keys[0]!.kty, "RSA");
        assert.equal(jwks.keys[0]!.d, undefined, "no private part");
      });
    });
  }
});

/** GitHub's heading anchors: lower case, spaces to dashes, punctuation dropped. */
const slug = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^a-z0-9 -]/g, "")
    .replace(/ /g, "-");

describe("operations, as a stack file configures them (qa1)", function () {
  let plan: PlannedStack;
  let signingKey: Awaited<ReturnType<typeof generateKeyPair>>;
  const endpoints = [
    "https://events.pager.example.com/integration/abc123/enqueue",
    "https://hooks.chat.example.com/services/T0/B0/xyz",
  ];
  const emails = ["oncall@verifiedfan.example.com", "scoring-team@verifiedfan.example.com"];
  const alarms = {
    periodSeconds: 120,
    evaluationPeriods: 3,
    queueOldestMessageAgeSeconds: 111,
    failedMessageAgeSeconds: 222,
    failedMessages: 3,
    iteratorAgeSeconds: 44,
    kafkaOffsetLag: 555,
    functionErrors: 6,
    functionThrottles: 7,
    api5xxErrors: 8,
    apiLatencyP99Ms: 999,
    authoriserDurationP99Ms: 1111,
    externalCallFailureRate: 0.25,
  };

  before(async function () {
    signingKey = await generateKeyPair("RS256", { extractable: true });
    plan = await planStack(
      "qa1",
      {
        operations: { alerts: { emails }, alarms },
        decisionSigningKey: await exportPKCS8(signingKey.privateKey),
      },
      { alertHttpsEndpoints: endpoints },
    );
  });

  it("sets every alarm's threshold, period and evaluation periods from the configuration", function () {
    const expected: [string, string, number][] = [
      ["AWS/SQS", "ApproximateAgeOfOldestMessage", alarms.queueOldestMessageAgeSeconds],
      ["AWS/SQS", "ApproximateNumberOfMessagesVisible", alarms.failedMessages],
      ["AWS/Lambda", "IteratorAge", alarms.iteratorAgeSeconds * 1000],
      ["AWS/Lambda", "OffsetLag", alarms.kafkaOffsetLag],
      ["AWS/Lambda", "Errors", alarms.functionErrors],
      ["AWS/Lambda", "Throttles", alarms.functionThrottles],
      ["AWS/ApiGateway", "5XXError", alarms.api5xxErrors],
      ["AWS/ApiGateway", "Latency", alarms.apiLatencyP99Ms],
      ["AWS/Lambda", "Duration", alarms.authoriserDurationP99Ms],
      [METRICS_NAMESPACE, "ExternalCallFailures", alarms.externalCallFailureRate],
    ];
    for (const [namespace, metricName, threshold] of expected) {
      const matching = plan
        .ofType(ALARM)
        .filter((alarm) => watched(alarm).some((metric) => metric.namespace === namespace && metric.metricName === metricName));
      assert.ok(matching.length > 0, metricName);
      const thresholds = new Set(matching.map((alarm) => alarm.inputs.threshold));
      if (metricName === "ApproximateAgeOfOldestMessage") {
        assert.deepEqual([...thresholds].sort(), [alarms.failedMessageAgeSeconds, alarms.queueOldestMessageAgeSeconds].sort());
      } else {
        assert.deepEqual([...thresholds], [threshold], metricName);
      }
    }
    for (const alarm of plan.ofType(ALARM)) {
      assert.equal(alarm.inputs.evaluationPeriods, alarms.evaluationPeriods);
      const periods = alarm.inputs.metricQueries
        ? (alarm.inputs.metricQueries as { metric?: { period: number } }[]).flatMap((query) =>
            query.metric ? [query.metric.period] : [],
          )
        : [alarm.inputs.period];
      assert.deepEqual(new Set(periods), new Set([alarms.periodSeconds]));
    }
  });

  it("subscribes every email and every HTTPS endpoint to the alert topic, keeping the endpoints secret", function () {
    const subscriptions = plan.ofType("aws:sns/topicSubscription:TopicSubscription");
    /** A secret input reaches the engine wrapped, marked by Pulumi's secret signature. */
    const reveal = (endpoint: unknown): { secret: boolean; value: unknown } =>
      typeof endpoint === "object" &&
      endpoint !== null &&
      (endpoint as Record<string, unknown>)[specialSigKey] === specialSecretSig
        ? { secret: true, value: (endpoint as { value: unknown }).value }
        : { secret: false, value: endpoint };
    const seen = subscriptions.map((subscription) => {
      const { secret, value } = reveal(subscription.inputs.endpoint);
      return [subscription.inputs.protocol, value, secret];
    });
    assert.deepEqual(
      seen.sort(),
      [...emails.map((email) => ["email", email, false]), ...endpoints.map((url) => ["https", url, true])].sort(),
    );
  });

  it("never shows an HTTPS endpoint in the plan's description", async function () {
    const described = await describeResources(plan.resources);
    const text = JSON.stringify(described);
    for (const endpoint of endpoints) assert.ok(!text.includes(endpoint), "an endpoint is in the plan's JSON");
    const https = described.filter(
      (resource) => resource.type === "aws:sns/topicSubscription:TopicSubscription" && resource.inputs.protocol === "https",
    );
    assert.equal(https.length, endpoints.length);
    for (const subscription of https) {
      assert.equal(subscription.inputs.endpoint, "[secret]");
      assert.deepEqual(subscription.settings, ["https [secret]"]);
    }
  });

  it("publishes the decision signing key's public half as a JWKS that verifies a decision token", async function () {
    const jwks = plan.outputs.decisionTokenJwks as { keys: { kid: string; alg: string; use: string; d?: string }[] };
    const kid = stackSection<{ signingKeyId: string }>("qa1", "idv").signingKeyId;
    assert.deepEqual(
      jwks.keys.map(({ kid, alg, use }) => ({ kid, alg, use })),
      [{ kid, alg: "RS256", use: "sig" }],
    );
    assert.equal(jwks.keys[0]!.d, undefined, "no private part");
    // A token as checkLiveness signs it for qa1 (idv.decisionTokenAudience left at its default).
    const token = await new SignJWT({ requiresVerification: false })
      .setProtectedHeader({ alg: "RS256", kid })
      .setIssuer("fan-identity")
      .setAudience("verified-fan-liveness")
      .setJti("0b7c6f9e-2a1d-4c3b-8e5f-7a6b5c4d3e2f")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(signingKey.privateKey);
    const verifyOptions = decisionTokenVerifyOptions({ issuer: "fan-identity", audience: "verified-fan-liveness" });
    const { payload } = await jwtVerify(token, createLocalJWKSet(jwks as never), verifyOptions);
    assert.equal(payload.requiresVerification, false);
    const other = await generateKeyPair("RS256");
    const forged = await new SignJWT({}).setProtectedHeader({ alg: "RS256", kid }).sign(other.privateKey);
    await assert.rejects(jwtVerify(forged, createLocalJWKSet(jwks as never)), /signature verification failed/);
  });

  it("fails the plan naming decisionSigningKey when the key is not an RSA key, without quoting it", async function () {
    const ec = await generateKeyPair("ES256", { extractable: true });
    const pem = await exportPKCS8(ec.privateKey);
    await assert.rejects(planStack("qa1", { decisionSigningKey: pem }), (error: Error) => {
      assert.match(error.message, /decisionSigningKey: decision tokens are RS256, which needs an RSA key, not EC/);
      assert.ok(!error.message.includes(pem.split("\n")[1]!));
      return true;
    });
  });
});

describe("the account-level API Gateway CloudWatch setting", function () {
  const stackFiles = fs.readdirSync(projectRoot()).flatMap((file) => {
    const stack = /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1];
    return stack ? [stack] : [];
  });

  it("is managed by exactly one stack file of each account", function () {
    const managers = new Map<string, string[]>();
    for (const stack of stackFiles) {
      const { values } = stackConfig(stack);
      const account = values[`${PROJECT}:accountId`]!;
      const manages = values[`${PROJECT}:manageApiGatewayAccount`] === "true";
      managers.set(account, [...(managers.get(account) ?? []), ...(manages ? [stack] : [])]);
    }
    assert.ok(managers.size >= 2);
    for (const [account, stacks] of managers)
      assert.equal(stacks.length, 1, `account ${account} is managed by ${stacks.join(", ") || "no stack"}`);
  });

  it("is created, with its role, only by the stack that manages it", async function () {
    for (const stack of ["qa1", "dev1"]) {
      const plan = await planStack(stack);
      const manages = stackConfig(stack).values[`${PROJECT}:manageApiGatewayAccount`] === "true";
      assert.equal(plan.ofType("aws:apigateway/account:Account").length, manages ? 1 : 0, stack);
      const roles = plan
        .ofType("aws:iam/role:Role")
        .filter((role) => String(role.inputs.name).endsWith("-apigateway-cloudwatch-role"));
      assert.equal(roles.length, manages ? 1 : 0, stack);
      assert.equal(plan.ofType("aws:apigateway/stage:Stage").length, 1, `${stack} still has its stage`);
    }
  });
});

describe("the infrastructure workflow", function () {
  const workflow = parse(fs.readFileSync(path.join(projectRoot(), ".github/workflows/infrastructure.yml"), "utf8")) as {
    jobs: Record<string, { steps: { uses?: string; with?: Record<string, string> }[] }>;
  };
  const rolesOf = (job: string) =>
    workflow.jobs[job]!.steps.filter((step) => step.uses === "./.github/actions/pulumi").map((step) => step.with!.role!);

  it("previews with a read-only role, and only the up jobs use the deploy roles", function () {
    const [preview] = rolesOf("preview");
    assert.match(preview!, /AWS_PREVIEW_ROLE_/);
    const upJobs = Object.keys(workflow.jobs).filter((job) => job.startsWith("up-"));
    assert.equal(upJobs.length, 4);
    for (const job of upJobs) {
      const [role] = rolesOf(job);
      assert.match(role!, new RegExp(`vars\\.AWS_DEPLOY_ROLE_${job.slice(3).toUpperCase()}\\b`));
    }
  });
});

describe("alarm specs, from a region's wiring record", function () {
  const thresholds = { ...thresholdsOf("qa1"), iteratorAgeSeconds: 60 };

  it("alarm each registered queue, stream consumer and worker, and each dependency the contract declares", function () {
    const record = new FlowRecord("us-west-2");
    record.workers.push(
      { workerName: "lookupArai", functionName: "p-lookupArai", dependencies: ["ARAI", "SecretsManager"], statements: {} },
      { workerName: "scoreUsers", functionName: "p-scoreUsers", dependencies: [], statements: {} },
    );
    record.queues.push(
      { queueName: "p-work", role: "work", arn: "arn:aws:sqs:us-west-2:1:p-work", url: "https://sqs/p-work" },
      { queueName: "p-work-dlq", role: "deadLetter", arn: "arn:aws:sqs:us-west-2:1:p-work-dlq", url: "https://sqs/p-work-dlq" },
    );
    record.mappings.push(
      { kind: "sqs", functionName: "p-lookupArai", sourceArn: "arn:aws:sqs:us-west-2:1:p-work" },
      { kind: "kinesis", functionName: "p-scoreUsers", sourceArn: "arn:aws:kinesis:us-west-2:1:stream/s" },
    );
    const specs = alarmSpecs(record, { prefix: "p", deployment: "qa1w" }, thresholds);
    assert.deepEqual(specs.map((spec) => spec.label).sort(), [
      "lookupArai-ARAI-failure-rate",
      "lookupArai-SecretsManager-failure-rate",
      "lookupArai-errors",
      "lookupArai-throttles",
      "scoreUsers-errors",
      "scoreUsers-iterator-age",
      "scoreUsers-throttles",
      "work-dlq-messages",
      "work-dlq-oldest-message-age",
      "work-oldest-message-age",
    ]);
    const iteratorAge = specs.find((spec) => spec.label === "scoreUsers-iterator-age")!;
    assert.equal(iteratorAge.threshold, 60_000, "Lambda reports iterator age in milliseconds");
    const rate = specs.find((spec) => spec.label === "lookupArai-ARAI-failure-rate")!.watches;
    assert.ok("rate" in rate);
    assert.deepEqual(rate.rate.numerator.dimensions, {
      service: "lookupArai",
      environment: "qa1w",
      region: "us-west-2",
      dependency: "ARAI",
    });
  });

  it("refuse a worker metric without the extra dimension the catalogue gives it, or with one it does not", function () {
    const where = { service: "lookupArai", environment: "qa1", region: "us-east-1" };
    assert.throws(() => workerMetric(WORKER_METRICS.externalCalls, where), /ExternalCalls: needs its dependency dimension/);
    assert.throws(() => workerMetric(WORKER_METRICS.recordsReceived, where, "ARAI"), /RecordsReceived: has no extra dimension/);
  });
});
