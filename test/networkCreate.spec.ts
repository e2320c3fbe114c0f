/**
 * A network the program creates (network.mode create), planned from Pulumi.sandbox1.yaml: the
 * awsx VPC's inputs, its endpoints and security groups, every app-tier worker placed in its
 * private subnets, and the settings that contradict each other failing with the key they name.
 * The awsx VPC runs in its own provider plugin, so the offline runtime answers its outputs; what
 * the program does with them (subnets, VPC id) is what these tests follow.
 */
import { strict as assert } from "node:assert";
import type { RecordedResource } from "../tools/offline/runtime";
import { WORKERS } from "../workers/registry";
import { REQUIRED_TAG_KEYS } from "../components/platform";
import { planAfresh, type PlannedStack, planStack, stackSection } from "./support/program";

const REGION = "us-east-1";
const VPC = "awsx:ec2:Vpc";
const FUNCTION = "aws:lambda/function:Function";
const ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint";
const GROUP = "aws:ec2/securityGroup:SecurityGroup";
const EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule";
const INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule";

/** AWS's gateway endpoints: DynamoDB and S3 are the only services that have one. */
const GATEWAY_SERVICES = ["dynamodb", "s3"];
/** The workers' dependencies that live outside AWS and any VPC, reached over HTTPS (docs/flows.md). */
const OUTSIDE_OVER_HTTPS = ["ARAI", "ModelServing", "Persona", "JWKS"];

interface NetworkSection {
  mode: string;
  tierTagKey: string;
  create: { cidrBlocks: Record<string, string>; availabilityZones: number; natGateways: string };
}

const vpcFunctions = (plan: PlannedStack) => plan.ofType(FUNCTION).filter((fn) => fn.inputs.vpcConfig !== undefined);
const workerOf = (fn: RecordedResource) => {
  const entry = Object.values(WORKERS).find((candidate) => String(fn.inputs.name).endsWith(`-${candidate.worker.contract.name}`));
  assert.ok(entry, `no worker of the registry deploys as ${String(fn.inputs.name)}`);
  return entry.worker.contract;
};
/** The AWS services a worker's own code calls: the service prefixes of its contract's access needs. */
const servicesOf = (fn: RecordedResource) =>
  new Set(Object.values(workerOf(fn).access).flatMap((need) => need.actions.map((action) => action.split(":")[0]!)));
/** The id the offline runtime gives a resource with a physical name. */
const idOf = (resource: RecordedResource) => `${String(resource.inputs.name)}-id`;

describe("network: a VPC the program creates (sandbox1)", function () {
  let plan: PlannedStack;
  let network: NetworkSection;
  let vpc: RecordedResource;

  before(async function () {
    plan = await planStack("sandbox1");
    network = stackSection<NetworkSection>("sandbox1", "network");
    vpc = plan.find(VPC, `network-${REGION}-vpc`);
  });

  it("is in create mode in the stack file, with Kafka off and the Data Science bucket in this account", function () {
    assert.equal(network.mode, "create");
    assert.equal(stackSection<{ kafka: { enabled: boolean } }>("sandbox1", "scoring").kafka.enabled, false);
    assert.equal(stackSection<{ bucketInThisAccount: boolean }>("sandbox1", "dataScience").bucketInThisAccount, true);
  });

  it("builds the awsx VPC: a public web tier and a private app tier across the zones, tagged by tier, with the NAT configured", function () {
    const inputs = vpc.inputs as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    assert.equal(inputs.cidrBlock, network.create.cidrBlocks[REGION]);
    assert.equal(inputs.numberOfAvailabilityZones, network.create.availabilityZones);
    assert.deepEqual(
      inputs.subnetSpecs.map((spec: { type: string; name: string; tags: Record<string, string> }) => [
        spec.name,
        spec.type,
        spec.tags[network.tierTagKey],
      ]),
      [
        ["web", "Public", "web"],
        ["app", "Private", "app"],
      ],
    );
    assert.equal(inputs.natGateways.strategy, "Single");
    assert.equal(inputs.enableDnsHostnames, true, "interface endpoints' private DNS needs DNS hostnames");
    assert.equal(inputs.enableDnsSupport, true);
    for (const tags of [inputs.tags, ...inputs.subnetSpecs.map((spec: { tags: object }) => spec.tags)]) {
      for (const key of REQUIRED_TAG_KEYS) assert.ok(tags[key], `tag ${key} on ${JSON.stringify(tags)}`);
    }
  });

  it("sizes the subnets inside each zone's share of the block: the app tier larger than the web tier", function () {
    const [web, app] = (vpc.inputs.subnetSpecs as { cidrMask: number }[]).map((spec) => spec.cidrMask);
    const prefix = Number(network.create.cidrBlocks[REGION]!.split("/")[1]);
    const zoneShare = 2 ** (32 - prefix) / network.create.availabilityZones;
    assert.ok(
      2 ** (32 - web!) + 2 ** (32 - app!) <= zoneShare,
      `web /${web} and app /${app} fit a zone's ${zoneShare} addresses`,
    );
    assert.ok(app! < web!, "the app tier, where Lambda's interfaces go, is the larger");
    assert.ok(web! <= 28, "AWS's smallest subnet is a /28");
  });

  it("has awsx make the gateway endpoints for DynamoDB and S3, on the VPC's route tables", function () {
    assert.equal(vpc.inputs.vpcEndpointStrategy, "Auto", "Auto fills in the route tables of the VPC it creates");
    assert.deepEqual(
      (vpc.inputs.vpcEndpointSpecs as { serviceName: string; vpcEndpointType: string }[]).map((spec) => [
        spec.serviceName,
        spec.vpcEndpointType,
      ]),
      GATEWAY_SERVICES.map((service) => [`com.amazonaws.${REGION}.${service}`, "Gateway"]),
    );
  });

  it("places every VPC worker in the created VPC's app-tier subnets, with the workers' security group in that VPC", function () {
    const appSubnets = vpc.state.privateSubnetIds as string[];
    assert.equal(appSubnets.length, network.create.availabilityZones);
    const workersGroup = plan.find(GROUP, "scoring-east-workers-sg");
    assert.equal(workersGroup.inputs.vpcId, vpc.state.vpcId);
    const placed = vpcFunctions(plan);
    assert.ok(placed.length > 0);
    for (const fn of placed) {
      const vpcConfig = fn.inputs.vpcConfig as { subnetIds: string[]; securityGroupIds: string[] };
      assert.deepEqual(vpcConfig.subnetIds, appSubnets, String(fn.inputs.name));
      assert.deepEqual(vpcConfig.securityGroupIds, [idOf(workersGroup)], String(fn.inputs.name));
    }
  });

  it("places the same workers in the app tier as a stack on an existing VPC does", async function () {
    const existing = await planStack("dev1");
    const names = (of: PlannedStack) =>
      vpcFunctions(of)
        .map((fn) => workerOf(fn).name)
        .sort();
    assert.deepEqual(names(plan), names(existing));
  });

  it("makes an interface endpoint for each other AWS service an app-tier worker calls, and for no other", function () {
    const called = new Set(vpcFunctions(plan).flatMap((fn) => [...servicesOf(fn)]));
    const expected = [...called].filter((service) => !GATEWAY_SERVICES.includes(service)).sort();
    const endpoints = plan.ofType(ENDPOINT);
    assert.deepEqual(
      endpoints.map((endpoint) => String(endpoint.inputs.serviceName).replace(`com.amazonaws.${REGION}.`, "")).sort(),
      expected,
    );
    const endpointsGroup = plan.find(GROUP, `network-${REGION}-endpoints-sg`);
    for (const endpoint of endpoints) {
      assert.equal(endpoint.inputs.vpcEndpointType, "Interface");
      assert.equal(endpoint.inputs.privateDnsEnabled, true, "so the SDK's own endpoint names resolve to it");
      assert.equal(endpoint.inputs.vpcId, vpc.state.vpcId);
      assert.deepEqual(endpoint.inputs.subnetIds, vpc.state.privateSubnetIds);
      assert.deepEqual(endpoint.inputs.securityGroupIds, [idOf(endpointsGroup)]);
    }
  });

  it("lets the workers out exactly to the endpoints, DynamoDB's prefix list, HTTPS through the NAT and Redis in the VPC", function () {
    const workers = idOf(plan.find(GROUP, "scoring-east-workers-sg"));
    const endpointsGroup = idOf(plan.find(GROUP, `network-${REGION}-endpoints-sg`));
    const dynamodbList = plan.calls.find(
      (call) =>
        call.token === "aws:ec2/getManagedPrefixList:getManagedPrefixList" &&
        call.inputs.name === `com.amazonaws.${REGION}.dynamodb`,
    );
    assert.ok(dynamodbList, "the DynamoDB prefix list is looked up in the region");
    const redisPort = Number(
      new URL(stackSection<{ east: { armRedis: { url: string } } }>("sandbox1", "scoring").east.armRedis.url).port,
    );
    const rule = (resource: RecordedResource) => {
      const i = resource.inputs;
      return [i.securityGroupId, i.ipProtocol, i.fromPort, i.toPort, i.referencedSecurityGroupId ?? i.prefixListId ?? i.cidrIpv4];
    };
    const prefixListId = plan.ofType(EGRESS).find((egress) => egress.inputs.prefixListId)?.inputs.prefixListId;
    assert.match(String(prefixListId), /^pl-/);
    assert.deepEqual(
      plan.ofType(EGRESS).map(rule).sort(),
      [
        [workers, "tcp", 443, 443, "0.0.0.0/0"],
        [workers, "tcp", 443, 443, endpointsGroup],
        [workers, "tcp", 443, 443, prefixListId],
        [workers, "tcp", redisPort, redisPort, network.create.cidrBlocks[REGION]],
      ].sort(),
    );
    assert.deepEqual(plan.ofType(INGRESS).map(rule), [[endpointsGroup, "tcp", 443, 443, workers]]);
    for (const group of plan.ofType(GROUP)) {
      assert.equal(group.inputs.egress, undefined, `${group.name} has no inline rules to fight the separate ones`);
      assert.equal(group.inputs.ingress, undefined, group.name);
    }
    for (const resource of [...plan.ofType(EGRESS), ...plan.ofType(INGRESS), ...plan.ofType(ENDPOINT)]) {
      for (const key of REQUIRED_TAG_KEYS)
        assert.ok((resource.inputs.tags as Record<string, string>)[key], `${resource.name}: ${key}`);
    }
  });

  it("leaves no app-tier worker a service it calls without an endpoint, or a NAT and an HTTPS rule to it", function () {
    const interfaceEndpoints = new Set(
      plan.ofType(ENDPOINT).map((endpoint) => String(endpoint.inputs.serviceName).replace(`com.amazonaws.${REGION}.`, "")),
    );
    const gateways = new Set(
      (vpc.inputs.vpcEndpointSpecs as { serviceName: string }[]).map((spec) =>
        spec.serviceName.replace(`com.amazonaws.${REGION}.`, ""),
      ),
    );
    const nat = (vpc.inputs.natGateways as { strategy: string }).strategy !== "None";
    const httpsOut = plan
      .ofType(EGRESS)
      .some((egress) => egress.inputs.cidrIpv4 === "0.0.0.0/0" && egress.inputs.fromPort === 443);
    for (const fn of vpcFunctions(plan)) {
      const contract = workerOf(fn);
      for (const service of servicesOf(fn)) {
        assert.ok(interfaceEndpoints.has(service) || gateways.has(service), `${contract.name} calls ${service} with no endpoint`);
      }
      for (const dependency of contract.dependencies.filter((name) => OUTSIDE_OVER_HTTPS.includes(name))) {
        assert.ok(nat && httpsOut, `${contract.name} reaches ${dependency} outside the VPC with no NAT or no HTTPS rule`);
      }
    }
  });

  it("maps each NAT setting to awsx's strategy", async function () {
    for (const [setting, strategy] of [
      ["onePerZone", "OnePerAz"],
      ["single", "Single"],
    ]) {
      const changed = await planAfresh("sandbox1", {
        network: { ...network, create: { ...network.create, natGateways: setting } },
      });
      assert.equal((changed.find(VPC, `network-${REGION}-vpc`).inputs.natGateways as { strategy: string }).strategy, strategy);
    }
  });
});

describe("network: settings a created network refuses, each naming its key", function () {
  let network: NetworkSection;
  before(function () {
    network = stackSection<NetworkSection>("sandbox1", "network");
  });
  const planWith = (changes: Record<string, unknown>) => planAfresh("sandbox1", changes);

  it("no NAT while workers reach services outside the VPC: network.create.natGateways, with the workers", async function () {
    await assert.rejects(
      planWith({ network: { ...network, create: { ...network.create, natGateways: "none" } } }),
      (error: Error) => {
        assert.match(error.message, /fan-identity-workers:network\.create\.natGateways: none/);
        assert.match(error.message, /lookupArai reaches ARAI/);
        assert.match(error.message, /scoreUsers, stagingScoreUsers reach ModelServing/);
        return true;
      },
    );
  });

  for (const [what, change, pattern] of [
    ["create mode without its settings", { mode: "create", create: undefined }, /network\.create: missing/],
    ["create settings in existing mode", { mode: "existing" }, /network\.create: set, but network\.mode is existing/],
    [
      "VPC ids to look up in create mode",
      { vpcIds: { [REGION]: "vpc-0a1b2c3d4e5f60718" } },
      /network\.vpcIds: names VPCs to look up \(us-east-1\)/,
    ],
    ["no NAT setting", { create: { cidrBlocks: { [REGION]: "10.64.0.0/16" } } }, /network\.create\.natGateways: /],
    [
      "no block for the region",
      { create: { cidrBlocks: {}, natGateways: "single" } },
      /network\.create\.cidrBlocks\.us-east-1: missing/,
    ],
    [
      "a block that is no CIDR",
      { create: { cidrBlocks: { [REGION]: "10.64.0.0" }, natGateways: "single" } },
      /network\.create\.cidrBlocks\.us-east-1: expected an IPv4 CIDR block/,
    ],
    [
      "a block too small for its zones",
      { create: { cidrBlocks: { [REGION]: "10.64.0.0/24" }, availabilityZones: 6, natGateways: "single" } },
      /network\.create\.cidrBlocks\.us-east-1: 10\.64\.0\.0\/24 is too small for 6 availability zones/,
    ],
  ] as const) {
    it(what, async function () {
      // The change is merged into the stack file's network settings; an undefined key is removed.
      await assert.rejects(planWith({ network: change }), pattern);
    });
  }

  it("Kafka on in create mode: scoring.kafka.enabled", async function () {
    const scoring = stackSection<{ kafka: object; east: object }>("sandbox1", "scoring");
    const kafka = stackSection<{ east: { kafka: object } }>("dev1", "scoring").east.kafka;
    await assert.rejects(
      planWith({ scoring: { ...scoring, kafka: { ...scoring.kafka, enabled: true }, east: { ...scoring.east, kafka } } }),
      /fan-identity-workers:scoring\.kafka\.enabled: true, but a VPC the program creates/,
    );
  });
});

describe("network: a stack on an existing VPC (the shared environments)", function () {
  it("says in its plan what the app tier's workers rely on the VPC for, region by region", async function () {
    const plan = await planStack("prod1");
    const regions = [...new Set(plan.ofType("pulumi:providers:aws").map((provider) => String(provider.inputs.region)))];
    assert.deepEqual(regions.sort(), ["us-east-1", "us-west-2"]);
    const placed = vpcFunctions(plan);
    const services = [...new Set(placed.flatMap((fn) => [...servicesOf(fn)]))].sort();
    const outside = new Map<string, string[]>();
    for (const fn of placed) {
      for (const dependency of workerOf(fn).dependencies.filter((name) => OUTSIDE_OVER_HTTPS.includes(name))) {
        outside.set(dependency, [...(outside.get(dependency) ?? []), workerOf(fn).name]);
      }
    }
    const scoring = stackSection<{ east: { armRedis: { url: string } } }>("prod1", "scoring");
    const redisPort = new URL(scoring.east.armRedis.url).port || "6379";
    for (const region of regions) {
      const line = plan.messages.find((message) => message.startsWith(`info: the app tier's workers in ${region} rely on:`));
      assert.ok(line, `no reliance line for ${region} in ${JSON.stringify(plan.messages)}`);
      assert.ok(line.includes(`${services.join(", ")} through a VPC endpoint or a NAT each`), line);
      for (const [dependency, workers] of outside) {
        assert.ok(line.includes(`${dependency} (${[...new Set(workers)].sort().join(", ")})`), `${dependency} in ${line}`);
      }
      assert.ok(line.includes(`Redis on port ${redisPort}`), line);
    }
  });

  it("creates no VPC, endpoints or rules, and keeps its workers' security group open outbound", async function () {
    for (const stack of ["qa1", "dev1", "preprod1", "prod1"]) {
      const plan = await planStack(stack);
      assert.deepEqual(
        [VPC, ENDPOINT, EGRESS, INGRESS].map((type) => plan.ofType(type).length),
        [0, 0, 0, 0],
        stack,
      );
      for (const group of plan.ofType(GROUP)) {
        assert.deepEqual(group.inputs.egress, [
          { protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] },
        ]);
      }
    }
  });
});
