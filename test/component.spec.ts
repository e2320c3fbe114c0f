/**
 * The component base (components/component.ts) makes the naming rules impossible to break: a
 * child named without its parent's prefix, or with a physical name the platform did not make,
 * fails the offline run with a message naming it.
 */
import { strict as assert } from "node:assert";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Component } from "../components/component";
import { createRegionalPlatform, type RegionalPlatform } from "../components/platform";
import { Queue } from "../components/queue";
import { runOffline } from "../tools/offline/runtime";
import { testPlatformSettings } from "./support/platform";

/** A component whose one child is built by `build`, as a component author would write it. */
class Probe extends Component {
  constructor(name: string, platform: RegionalPlatform, build: (probe: Probe, platform: RegionalPlatform) => void) {
    super("fan-identity:test:Probe", name, platform);
    build(this, platform);
    this.registerOutputs({});
  }
}

function plan(build: (probe: Probe, platform: RegionalPlatform) => void, region = "us-east-1") {
  return runOffline({
    project: "fan-identity-workers",
    stack: "qa1",
    config: {},
    secretKeys: [],
    accountId: "210987654321",
    program: () => {
      new Probe("probe", createRegionalPlatform(testPlatformSettings(), region), build);
      return {};
    },
  });
}

describe("Component base", function () {
  it("accepts a child named after its parent, with a physical name from the platform, in the platform's region", async function () {
    const run = await plan(
      (probe, platform) => new aws.sqs.Queue("probe-orders", { name: platform.name("orders", "sqsQueue") }, { parent: probe }),
      "us-west-2",
    );
    assert.deepEqual(run.errors, []);
    const queue = run.resources.find((resource) => resource.type === "aws:sqs/queue:Queue")!;
    assert.equal(queue.inputs.name, "vfid-qa1-us-west-2-orders");
    const provider = run.resources.find((resource) => resource.urn === queue.providerUrn);
    assert.equal(provider?.inputs.region, "us-west-2", "the child inherits the component's regional provider");
  });

  it("fails when a child's logical name does not start with its parent's", async function () {
    await assert.rejects(
      plan((probe, platform) => new aws.sqs.Queue("orders", { name: platform.name("orders", "sqsQueue") }, { parent: probe })),
      /fan-identity:test:Probe "probe": child aws:sqs\/queue:Queue "orders" must be named "probe-<role>"/,
    );
  });

  it("fails when a child component's name does not start with its parent's", async function () {
    await assert.rejects(
      plan((probe, platform) => new Queue("orders", { platform, name: "orders" }, { parent: probe })),
      /child fan-identity:components:Queue "orders" must be named "probe-<role>"/,
    );
  });

  it("fails when a child is given a hand-made physical name", async function () {
    await assert.rejects(
      plan(
        (probe) => new aws.dynamodb.Table("probe-table", { name: "fan-identity-table", hashKey: "userId" }, { parent: probe }),
      ),
      /child aws:dynamodb\/table:Table "probe-table" is named "fan-identity-table" by hand/,
    );
  });

  it("fails when a physical name is written out by hand, even in the platform's own format", async function () {
    await assert.rejects(
      plan(
        (probe) => new aws.iam.Role("probe-role", { name: "vfid-qa1-us-east-1-x", assumeRolePolicy: "{}" }, { parent: probe }),
      ),
      /child aws:iam\/role:Role "probe-role" is named "vfid-qa1-us-east-1-x" by hand/,
    );
  });

  it("checks a dashboard's name, which it takes as dashboardName, like any other", async function () {
    await assert.rejects(
      plan(
        (probe) =>
          new aws.cloudwatch.Dashboard("probe-dashboard", { dashboardName: "ops", dashboardBody: "{}" }, { parent: probe }),
      ),
      /child aws:cloudwatch\/dashboard:Dashboard "probe-dashboard" is named "ops" by hand/,
    );
    const run = await plan(
      (probe, platform) =>
        new aws.cloudwatch.Dashboard(
          "probe-dashboard",
          { dashboardName: platform.name("ops", "dashboard"), dashboardBody: "{}" },
          { parent: probe },
        ),
    );
    assert.deepEqual(run.errors, []);
  });

  it("fails when a physically named child has no name, which Pulumi would make up", async function () {
    await assert.rejects(
      plan((probe) => new aws.kinesis.Stream("probe-stream", { shardCount: 1 }, { parent: probe })),
      /child aws:kinesis\/stream:Stream "probe-stream" has no physical name/,
    );
  });

  it("fails the run when a name known only later (an output) turns out hand-made", async function () {
    const run = await plan(
      (probe) =>
        new aws.cloudwatch.LogGroup(
          "probe-logs",
          { name: pulumi.output("probe").apply((id) => `/custom/${id}`) },
          { parent: probe },
        ),
    );
    assert.ok(
      run.errors.some((error) =>
        /child aws:cloudwatch\/logGroup:LogGroup "probe-logs" is named "\/custom\/probe" by hand/.test(error.message),
      ),
      run.errors.map((error) => error.message).join("; ") || "no error",
    );
  });

  it("names log groups only after a resource the platform named", function () {
    const platform = createRegionalPlatform(testPlatformSettings(), "us-east-1");
    assert.equal(
      platform.logGroupName("lambda", platform.name("scoreUsers", "lambdaFunction")),
      "/aws/lambda/vfid-qa1-us-east-1-scoreUsers",
    );
    assert.throws(
      () => platform.logGroupName("lambda", "scoreUsers"),
      /"scoreUsers": the resource's name was not made by platform.name/,
    );
  });
});
