/**
 * The policy pack (policy/): every stack file's plan keeps every policy, and each policy catches a
 * plan that breaks it. A broken plan is a real planned stack with one property of one resource
 * changed (or one alarm gone), so a violation there is that policy's and no other's.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { projectRoot } from "../components/archive";
import { policies, TYPES } from "../policy/policies";
import type { RecordedResource } from "../tools/offline/runtime";
import { type PlannedStack, planStacks } from "./support/program";
import { runPolicies, type Violation, withChange } from "./support/policyRun";
import { type PolicyServer, startPolicyServer } from "./support/policyServer";

/** Every stack file at the project root: `Pulumi.qa1.yaml` → `qa1`. */
const STACKS = fs
  .readdirSync(projectRoot())
  .map((file) => /^Pulumi\.(.+)\.yaml$/.exec(file)?.[1])
  .filter((stack): stack is string => stack !== undefined);

const urnOf = (resource: RecordedResource) => resource.urn!;

describe("policy pack", function () {
  let plans: Map<string, PlannedStack>;
  let qa1: PlannedStack;

  before(async function () {
    plans = await planStacks(STACKS);
    qa1 = plans.get("qa1")!;
  });

  it("has every policy mandatory, named and described", function () {
    assert.equal(new Set(policies.map((policy) => policy.name)).size, policies.length);
    for (const policy of policies) {
      assert.equal(policy.enforcementLevel, "mandatory", policy.name);
      assert.ok(policy.description.length > 40, `${policy.name} says what it requires and why`);
    }
  });

  it("plans every stack file", function () {
    assert.deepEqual([...plans.keys()].sort(), ["dev1", "preprod1", "prod1", "qa1", "sandbox1"]);
  });

  for (const stack of ["dev1", "qa1", "preprod1", "prod1"]) {
    it(`finds no violation in ${stack}`, async function () {
      assert.deepEqual(await runPolicies(policies, plans.get(stack)!.resources), []);
    });
  }

  /** The violations of `resources`, asserting that all are `policy`'s and at least one is reported. */
  async function violationsOf(policy: string, resources: readonly RecordedResource[]): Promise<Violation[]> {
    const violations = await runPolicies(policies, resources);
    assert.ok(violations.length > 0, `${policy} reports the change`);
    assert.deepEqual(
      violations.filter((violation) => violation.policy !== policy),
      [],
      `only ${policy} reports the change`,
    );
    return violations;
  }

  /** Asserts that changing one resource breaks `policy`, on that resource, with a message naming it. */
  async function breaks(policy: string, type: string, name: string, change: (props: Record<string, unknown>) => void) {
    const violations = await violationsOf(policy, withChange(qa1.resources, type, name, change));
    const resource = qa1.find(type, name);
    assert.ok(
      violations.some((violation) => violation.urn === urnOf(resource) && violation.message.includes(name)),
      `a violation names ${name}: ${JSON.stringify(violations)}`,
    );
    return violations;
  }

  describe("required-tags", function () {
    it("names the resource and the missing key", async function () {
      const violations = await breaks("required-tags", TYPES.queue, "scoring-east-on-demand-queue", (props) => {
        delete (props.tags as Record<string, string>).ProductCode;
      });
      assert.equal(violations.length, 1);
      assert.match(violations[0]!.message, /ProductCode/);
    });

    it("reports each of the four keys on an untagged resource", async function () {
      const violations = await breaks("required-tags", TYPES.function, "botornot-startBotOrNotImport-function", (props) => {
        delete props.tags;
      });
      assert.deepEqual(violations.map((violation) => /has no (\w+) tag/.exec(violation.message)?.[1]).sort(), [
        "Environment",
        "InventoryCode",
        "ProductCode",
        "iacRepo",
      ]);
    });
  });

  describe("iam-least-privilege", function () {
    const document = (statement: object) => JSON.stringify({ Version: "2012-10-17", Statement: [statement] });

    it("refuses a service wildcard action", async function () {
      await breaks("iam-least-privilege", TYPES.rolePolicy, "log-shipping-stream", (props) => {
        props.policy = document({ Effect: "Allow", Action: ["kinesis:*"], Resource: ["arn:aws:kinesis:us-east-1:1:stream/x"] });
      });
    });

    it("refuses Action *", async function () {
      await breaks("iam-least-privilege", TYPES.rolePolicy, "log-shipping-stream", (props) => {
        props.policy = document({ Effect: "Allow", Action: "*", Resource: "arn:aws:kinesis:us-east-1:1:stream/x" });
      });
    });

    it('refuses Resource "*" for an action that names its resources', async function () {
      const violations = await breaks("iam-least-privilege", TYPES.rolePolicy, "log-shipping-stream", (props) => {
        props.policy = document({ Effect: "Allow", Action: ["kinesis:PutRecord", "xray:PutTraceSegments"], Resource: "*" });
      });
      assert.equal(violations.length, 1);
      assert.match(violations[0]!.message, /kinesis:PutRecord on resource "\*"/);
      assert.doesNotMatch(violations[0]!.message, /xray/);
    });

    it("checks a role's inline policies", async function () {
      await breaks("iam-least-privilege", TYPES.role, "log-shipping-role", (props) => {
        props.inlinePolicies = [{ name: "broad", policy: document({ Effect: "Allow", Action: "s3:*", Resource: "*" }) }];
      });
    });
  });

  describe("encryption-at-rest", function () {
    it("requires a table's server-side encryption", async function () {
      await breaks("encryption-at-rest", TYPES.table, "scoring-east-table", (props) => {
        delete props.serverSideEncryption;
      });
    });

    it("requires a queue's SSE", async function () {
      await breaks("encryption-at-rest", TYPES.queue, "scoring-east-on-demand-queue", (props) => {
        props.sqsManagedSseEnabled = false;
      });
    });

    it("requires a stream's KMS encryption", async function () {
      await breaks("encryption-at-rest", TYPES.stream, "scoring-east-table-stream", (props) => {
        props.encryptionType = "NONE";
      });
    });

    it("requires a topic's KMS key", async function () {
      await breaks("encryption-at-rest", TYPES.topic, "operations-east-alerts", (props) => {
        delete props.kmsMasterKeyId;
      });
    });
  });

  describe("stream-on-failure-destination", function () {
    for (const mapping of ["scoring-east-vf-to-enqueue", "scoring-east-kafka-to-enqueue"]) {
      it(`requires ${mapping}'s on-failure destination`, async function () {
        await breaks("stream-on-failure-destination", TYPES.mapping, mapping, (props) => {
          delete props.destinationConfig;
        });
      });
    }

    it("counts a DynamoDB stream as a stream", async function () {
      await breaks("stream-on-failure-destination", TYPES.mapping, "scoring-east-table-to-scoreUsers", (props) => {
        props.eventSourceArn = "arn:aws:dynamodb:us-east-1:210987654321:table/fans/stream/2026-01-01T00:00:00.000";
        delete props.destinationConfig;
      });
    });
  });

  describe("async-failure-destinations", function () {
    it("requires a redrive policy on a queue a mapping reads", async function () {
      await breaks("async-failure-destinations", TYPES.queue, "scoring-east-on-demand-queue", (props) => {
        delete props.redrivePolicy;
      });
    });

    it("requires an on-failure destination of a function S3 invokes", async function () {
      const resources = withChange(qa1.resources, TYPES.invokeConfig, "botornot-startBotOrNotImport-async", (props) => {
        delete props.destinationConfig;
      });
      const violations = await violationsOf("async-failure-destinations", resources);
      assert.deepEqual(
        violations.map((violation) => violation.urn),
        [urnOf(qa1.find(TYPES.function, "botornot-startBotOrNotImport-function"))],
      );
    });
  });

  describe("report-batch-item-failures", function () {
    it("requires ReportBatchItemFailures on an SQS mapping", async function () {
      await breaks("report-batch-item-failures", TYPES.mapping, "scoring-east-on-demand-to-lookupArai", (props) => {
        props.functionResponseTypes = [];
      });
    });
  });

  describe("supported-lambda-runtime", function () {
    it("refuses nodejs20.x", async function () {
      const violations = await breaks(
        "supported-lambda-runtime",
        TYPES.function,
        "botornot-startBotOrNotImport-function",
        (props) => {
          props.runtime = "nodejs20.x";
        },
      );
      assert.match(violations[0]!.message, /nodejs20\.x/);
    });
  });

  describe("explicit-lambda-timeout", function () {
    it("requires a timeout", async function () {
      await breaks("explicit-lambda-timeout", TYPES.function, "botornot-startBotOrNotImport-function", (props) => {
        delete props.timeout;
      });
    });
  });

  describe("log-retention", function () {
    it("requires retentionInDays", async function () {
      await breaks("log-retention", TYPES.logGroup, "auth-validateToken-logs", (props) => {
        delete props.retentionInDays;
      });
    });
  });

  describe("function-log-groups", function () {
    it("requires the log group a function writes to", async function () {
      const group = qa1.find(TYPES.logGroup, "auth-validateToken-logs");
      const fn = qa1
        .ofType(TYPES.function)
        .find((candidate) => (candidate.inputs.loggingConfig as { logGroup?: string }).logGroup === group.inputs.name)!;
      const resources = withChange(qa1.resources, TYPES.logGroup, group.name, (props) => {
        props.name = "/aws/lambda/somewhere-else";
      });
      const violations = await violationsOf("function-log-groups", resources);
      assert.deepEqual(
        violations.map((violation) => violation.urn),
        [urnOf(fn)],
      );
    });
  });

  describe("async-path-alarms", function () {
    /** The alarms of qa1 watching `metricName` by `dimension` = `value`. */
    const alarmsOn = (metricName: string, dimension: string, value: string) =>
      qa1
        .ofType(TYPES.alarm)
        .filter(
          (alarm) =>
            alarm.inputs.metricName === metricName && (alarm.inputs.dimensions as Record<string, string>)[dimension] === value,
        );

    /** qa1 without the alarms of `metricNames` on `dimension` = `value`; asserts there were some. */
    function withoutAlarms(metricNames: string[], dimension: string, value: string): RecordedResource[] {
      const gone = new Set(metricNames.flatMap((metricName) => alarmsOn(metricName, dimension, value)));
      assert.ok(gone.size > 0, `qa1 alarms on ${metricNames.join(", ")} of ${value}`);
      return qa1.resources.filter((resource) => !gone.has(resource));
    }

    const mappingCases = [
      { mapping: "scoring-east-vf-to-enqueue", metric: "IteratorAge", dimension: "FunctionName" },
      { mapping: "scoring-east-kafka-to-enqueue", metric: "OffsetLag", dimension: "FunctionName" },
      { mapping: "scoring-east-on-demand-to-lookupArai", metric: "ApproximateAgeOfOldestMessage", dimension: "QueueName" },
    ];
    for (const { mapping, metric, dimension } of mappingCases) {
      it(`requires a ${metric} alarm for ${mapping}`, async function () {
        const props = qa1.find(TYPES.mapping, mapping).inputs;
        const value = dimension === "QueueName" ? String(props.eventSourceArn).split(":").pop()! : String(props.functionName);
        const violations = await violationsOf("async-path-alarms", withoutAlarms([metric], dimension, value));
        assert.ok(violations.some((violation) => violation.urn === urnOf(qa1.find(TYPES.mapping, mapping))));
      });
    }

    it("requires a depth or age alarm on a failure queue", async function () {
      const queue = qa1.find(TYPES.queue, "botornot-failures-queue");
      const name = String(queue.inputs.name);
      const ageOnly = withoutAlarms(["ApproximateNumberOfMessagesVisible"], "QueueName", name);
      assert.deepEqual(await runPolicies(policies, ageOnly), [], "an age alarm alone is enough");
      const violations = await violationsOf(
        "async-path-alarms",
        withoutAlarms(["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"], "QueueName", name),
      );
      assert.deepEqual(
        violations.map((violation) => violation.urn),
        [urnOf(queue)],
      );
      assert.match(violations[0]!.message, new RegExp(name));
    });
  });

  describe("as the Pulumi CLI loads it", function () {
    let server: PolicyServer;

    before(async function () {
      server = await startPolicyServer();
    });

    after(function () {
      server?.close();
    });

    it("serves every policy, mandatory, under the pack's name", async function () {
      const info = await server.info();
      assert.equal(info.name, "fan-identity-workers");
      assert.deepEqual(
        info.policies,
        policies.map((policy) => ({ name: policy.name, mandatory: true })),
      );
    });

    it("passes a planned queue and reports it unencrypted", async function () {
      const queue = qa1.find(TYPES.queue, "scoring-east-on-demand-queue");
      const resource = { type: queue.type, name: queue.name, urn: queue.urn!, props: queue.inputs };
      assert.deepEqual(await server.analyze(resource), []);
      const diagnostics = await server.analyze({ ...resource, props: { ...queue.inputs, sqsManagedSseEnabled: false } });
      assert.deepEqual(
        diagnostics.map((diagnostic) => [diagnostic.policy, diagnostic.mandatory]),
        [["encryption-at-rest", true]],
      );
      assert.match(diagnostics[0]!.message, /scoring-east-on-demand-queue/);
    });
  });

  it("checks every preview and up in CI, built first", function () {
    type Step = { run?: string; uses?: string; with?: Record<string, unknown> };
    const action = parse(fs.readFileSync(path.join(projectRoot(), ".github/actions/pulumi/action.yml"), "utf8")) as {
      runs: { steps: Step[] };
    };
    const steps = action.runs.steps;
    const pulumi = steps.findIndex((step) => step.uses?.startsWith("pulumi/actions@"));
    assert.ok(pulumi >= 0, "the action runs no pulumi/actions step");
    assert.equal(steps[pulumi]!.with?.policyPacks, "policy");
    const build = steps.findIndex((step) => step.run === "npm run build");
    assert.ok(build >= 0 && build < pulumi, "the pack is not built before Pulumi runs");
  });
});
