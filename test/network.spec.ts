/**
 * VPC tiers: subnets are found by their tier tag in the environment's VPC, through the region's
 * provider, and a tier without subnets fails the plan.
 */
import { strict as assert } from "node:assert";
import * as pulumi from "@pulumi/pulumi";
import { createRegionalPlatform, type PlatformSettings } from "../components/platform";
import { runOffline } from "../tools/offline/runtime";

const settings = (network: PlatformSettings["network"]): PlatformSettings => ({
  environment: "preprod1",
  productCode: "vfid",
  inventoryCode: "fanid",
  iacRepo: "https://github.com/verified-fan/fan-identity-workers",
  accountId: "310987654321",
  lambda: { runtime: "nodejs24.x", architecture: "arm64", logRetentionDays: 30, tracing: "Active" },
  network,
});

function lookUp(network: PlatformSettings["network"], answers?: Parameters<typeof runOffline>[0]["answers"]) {
  return runOffline({
    project: "fan-identity-workers",
    stack: "preprod1",
    config: {},
    secretKeys: [],
    accountId: "310987654321",
    answers,
    program: () => {
      const platform = createRegionalPlatform(settings(network), "us-west-2");
      return pulumi.all({
        app: platform.network.subnetIds("app"),
        web: platform.network.subnetIds("web"),
        again: platform.network.subnetIds("app"),
      });
    },
  });
}

describe("network tiers", function () {
  it("finds each tier's subnets by tag in the configured VPC, once per tier, through the regional provider", async function () {
    const run = await lookUp({ mode: "existing", vpcIds: { "us-west-2": "vpc-0a1b2c3d4e5f60718" }, tierTagKey: "Tier" });
    assert.deepEqual(run.errors, []);
    const subnetCalls = run.calls.filter((call) => call.token === "aws:ec2/getSubnets:getSubnets");
    assert.deepEqual(
      subnetCalls.map((call) => call.inputs.filters),
      [
        [
          { name: "vpc-id", values: ["vpc-0a1b2c3d4e5f60718"] },
          { name: "tag:Tier", values: ["app"] },
        ],
        [
          { name: "vpc-id", values: ["vpc-0a1b2c3d4e5f60718"] },
          { name: "tag:Tier", values: ["web"] },
        ],
      ],
    );
    assert.equal(run.calls.filter((call) => call.token === "aws:ec2/getVpc:getVpc").length, 0);
    const provider = run.resources.find((resource) => resource.type === "pulumi:providers:aws")!;
    assert.equal(provider.inputs.region, "us-west-2");
    for (const call of run.calls) assert.equal(call.providerUrn, provider.urn);
    const outputs = run.outputs;
    assert.equal(outputs.app.length, 3);
    assert.ok(outputs.app.every((id) => id.startsWith("subnet-app")));
    assert.deepEqual(outputs.again, outputs.app);
  });

  it("finds the environment's VPC by its Environment tag when none is configured", async function () {
    const run = await lookUp({ mode: "existing", vpcIds: {}, tierTagKey: "Tier" });
    const vpcCalls = run.calls.filter((call) => call.token === "aws:ec2/getVpc:getVpc");
    assert.deepEqual(
      vpcCalls.map((call) => call.inputs.tags),
      [{ Environment: "preprod1" }],
    );
  });

  it("fails the plan, naming the tag and the VPC, when a tier has no subnets", async function () {
    const run = await lookUp(
      { mode: "existing", vpcIds: { "us-west-2": "vpc-0a1b2c3d4e5f60718" }, tierTagKey: "NetworkTier" },
      { "aws:ec2/getSubnets:getSubnets": (inputs) => ({ id: "none", ids: [], filters: inputs.filters }) },
    );
    assert.ok(
      run.errors.some((error) =>
        error.message.includes("no subnets tagged NetworkTier=app in vpc-0a1b2c3d4e5f60718 (us-west-2)"),
      ),
      run.errors.map((error) => error.message).join("\n"),
    );
  });
});
