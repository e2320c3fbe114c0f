/**
 * The network the VPC workers run in, in one of two modes a stack chooses (`network.mode`):
 *
 * - `existing`: the environment's VPC, which another team owns, found by its id or its
 *   `Environment` tag, and its subnets found by their tier tag (`web` for public-facing
 *   resources, `app` for Lambdas that need the VPC), so the network team can add or replace
 *   subnets without a change here;
 * - `create`: a VPC built with awsx, a public `web` tier and a private `app` tier across the
 *   configured zones, tagged with the same tier tag, NAT gateways as configured, gateway endpoints
 *   for DynamoDB and S3 and an interface endpoint for every other AWS service an app-tier worker
 *   calls, behind security groups that let out exactly the workers' traffic.
 *
 * Components see only `NetworkTiers`: a VPC id, a tier's subnets, a security group for their
 * app-tier functions, and `place`, which records what a function there reaches. Once every
 * component is built, `complete` turns the placements into endpoints and egress rules (`create`),
 * or reports what the workers rely on the VPC for (`existing`).
 */
import * as aws from "@pulumi/aws";
import * as awsx from "@pulumi/awsx/ec2";
import { Provider as AwsxProvider } from "@pulumi/awsx/provider";
import * as pulumi from "@pulumi/pulumi";
import type { WorkerContract } from "../workers/shared/runtime/contract";
import { DEPENDENCIES, type Dependency } from "../workers/shared/runtime/telemetry";
import { Component } from "./component";
import type { RegionalPlatform } from "./platform";

export type Tier = "web" | "app";
export type NatGateways = "none" | "single" | "onePerZone";

/** The `network` settings of a stack (stacks/config.ts). */
export interface NetworkSettings {
  readonly mode: "existing" | "create";
  /** `existing`: the environment's VPC per region; found by its `Environment` tag where not given. */
  readonly vpcIds: Readonly<Partial<Record<string, string>>>;
  /** Tag whose value (`web`, `app`) marks a subnet's tier. */
  readonly tierTagKey: string;
  /** `create`: the VPC to build in each region. */
  readonly create?: {
    readonly cidrBlocks: Readonly<Partial<Record<string, string>>>;
    readonly availabilityZones: number;
    readonly natGateways: NatGateways;
  };
}

/** What a function in the app tier reaches over the network. */
export type Destination =
  /** An AWS API, by its IAM service prefix: through an endpoint, or a NAT. */
  | { readonly kind: "aws"; readonly service: string }
  /** A service outside the VPC over HTTPS (a vendor, another team's API): through a NAT. */
  | { readonly kind: "internet"; readonly what: string }
  /** A service inside the VPC (a Redis cluster) on a TCP port. */
  | { readonly kind: "vpc"; readonly what: string; readonly port: number };

/** A function placed in the app tier with a security group, and what it reaches. */
export interface Placement {
  readonly workerName: string;
  readonly securityGroup: aws.ec2.SecurityGroup;
  readonly destinations: readonly Destination[];
}

/** What the app tier's workers in a region reach, by way of what. */
export interface Reliance {
  readonly region: string;
  readonly mode: NetworkSettings["mode"];
  /** AWS services reached through a gateway endpoint (or, in `existing`, an endpoint or a NAT). */
  readonly gatewayServices: readonly string[];
  /** AWS services reached through an interface endpoint (or, in `existing`, an endpoint or a NAT). */
  readonly interfaceServices: readonly string[];
  /** Services outside the VPC reached over HTTPS, through a NAT, and the workers reaching each. */
  readonly internet: Readonly<Record<string, readonly string[]>>;
  /** Services inside the VPC, by port. */
  readonly inVpc: readonly { readonly what: string; readonly port: number }[];
}

export interface NetworkTiers {
  readonly mode: NetworkSettings["mode"];
  /** The VPC the tiers belong to. */
  vpcId(): pulumi.Output<string>;
  /** Subnets of one tier. */
  subnetIds(tier: Tier): pulumi.Output<string[]>;
  /**
   * A security group for a component's app-tier functions: outbound only. What it lets out is
   * the network's to decide: everything in `existing` (the VPC's routes and the network team's
   * controls decide), exactly what the placements need in `create`.
   */
  securityGroup(
    logicalName: string,
    args: { readonly name: string; readonly description: string; readonly tags: Record<string, string> },
    opts: pulumi.CustomResourceOptions,
  ): aws.ec2.SecurityGroup;
  /** Records a function placed in the app tier, and what it reaches. */
  place(placement: Placement): void;
  /** Called once every component is built: endpoints and egress for the placements, or a report. */
  complete(): Reliance;
}

/** Dependencies reached over HTTPS outside any VPC of this program (runtime/telemetry.ts). */
const HTTPS_DEPENDENCIES: ReadonlySet<Dependency> = new Set([
  DEPENDENCIES.arai,
  DEPENDENCIES.modelServing,
  DEPENDENCIES.persona,
  DEPENDENCIES.jwks,
]);

/**
 * What a worker's own code reaches, from its contract: every AWS service its access needs name
 * (the event-source pollers, logs and traces travel outside the function's network interfaces),
 * and every dependency called over HTTPS. Services inside the VPC (Redis) are the stack's to add,
 * with their ports.
 */
export function destinationsOf(contract: Pick<WorkerContract, "access" | "dependencies">): Destination[] {
  const services = new Set(Object.values(contract.access).flatMap((need) => need.actions.map((action) => action.split(":")[0]!)));
  return [
    ...[...services].sort().map((service): Destination => ({ kind: "aws", service })),
    ...contract.dependencies
      .filter((dependency) => HTTPS_DEPENDENCIES.has(dependency))
      .map((dependency): Destination => ({ kind: "internet", what: dependency })),
  ];
}

/** Services AWS offers a gateway endpoint for: free, routed through the app tier's route tables. */
const GATEWAY_SERVICES: readonly string[] = ["dynamodb", "s3"];

/**
 * Interface endpoint names of the AWS services an app-tier worker may call, by IAM service prefix
 * (`kinesis` is `kinesis-streams`); a service missing here fails the plan of a created network
 * until it is added.
 */
const INTERFACE_ENDPOINT_NAMES: Readonly<Record<string, string>> = {
  sqs: "sqs",
  secretsmanager: "secretsmanager",
  kinesis: "kinesis-streams",
  glue: "glue",
  lambda: "lambda",
  sts: "sts",
  sns: "sns",
};

/** The reliance of a set of placements, each list sorted. */
export function relianceOf(region: string, mode: NetworkSettings["mode"], placements: readonly Placement[]): Reliance {
  const gateway = new Set<string>();
  const interfaces = new Set<string>();
  const internet: Record<string, string[]> = {};
  const inVpc = new Map<string, { what: string; port: number }>();
  for (const { workerName, destinations } of placements) {
    for (const destination of destinations) {
      if (destination.kind === "aws") {
        (GATEWAY_SERVICES.includes(destination.service) ? gateway : interfaces).add(destination.service);
      } else if (destination.kind === "internet") {
        (internet[destination.what] ??= []).push(workerName);
      } else {
        inVpc.set(`${destination.what}:${destination.port}`, { what: destination.what, port: destination.port });
      }
    }
  }
  return {
    region,
    mode,
    gatewayServices: [...gateway].sort(),
    interfaceServices: [...interfaces].sort(),
    internet: Object.fromEntries(
      Object.entries(internet)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([what, workers]) => [what, [...new Set(workers)].sort()]),
    ),
    inVpc: [...inVpc.values()].sort((a, b) => a.what.localeCompare(b.what) || a.port - b.port),
  };
}

/** One line per way out, for the plan's log and the deploy guide. */
export function describeReliance(reliance: Reliance): string {
  const parts: string[] = [];
  const services = [...reliance.gatewayServices, ...reliance.interfaceServices];
  if (services.length > 0) {
    parts.push(
      reliance.mode === "create"
        ? `endpoints for ${services.join(", ")}`
        : `${services.join(", ")} through a VPC endpoint or a NAT each`,
    );
  }
  const outside = Object.entries(reliance.internet).map(([what, workers]) => `${what} (${workers.join(", ")})`);
  if (outside.length > 0) parts.push(`HTTPS through a NAT to ${outside.join(", ")}`);
  if (reliance.inVpc.length > 0) {
    parts.push(`inside the VPC ${reliance.inVpc.map(({ what, port }) => `${what} on port ${port}`).join(", ")}`);
  }
  return `the app tier's workers in ${reliance.region} rely on: ${parts.join("; ") || "nothing outside their functions"}`;
}

/** The network of one region, in the stack's mode. */
export function networkTiers(platform: RegionalPlatform): NetworkTiers {
  const { network } = platform.settings;
  return network.mode === "create" ? new CreatedNetworkTiers(platform) : new ExistingNetworkTiers(platform);
}

/** What both modes share: the placements, and their reliance reported once every component is built. */
abstract class PlacedTiers implements NetworkTiers {
  abstract readonly mode: NetworkSettings["mode"];
  protected readonly placements: Placement[] = [];

  constructor(protected readonly platform: RegionalPlatform) {}

  abstract vpcId(): pulumi.Output<string>;
  abstract subnetIds(tier: Tier): pulumi.Output<string[]>;
  abstract securityGroup(...args: Parameters<NetworkTiers["securityGroup"]>): aws.ec2.SecurityGroup;
  /** What the mode does for placements' reliance, when there are placements. */
  protected abstract provide(reliance: Reliance): void;

  place(placement: Placement): void {
    this.placements.push(placement);
  }

  complete(): Reliance {
    const reliance = relianceOf(this.platform.region, this.mode, this.placements);
    if (this.placements.length > 0) {
      this.provide(reliance);
      pulumi.log.info(describeReliance(reliance));
    }
    return reliance;
  }
}

/** Today's network of the shared environments, looked up; nothing is created but the security groups. */
class ExistingNetworkTiers extends PlacedTiers {
  readonly mode = "existing";
  private vpc?: pulumi.Output<string>;
  private readonly subnets = new Map<Tier, pulumi.Output<string[]>>();

  /** The environment's VPC: the configured id, or the VPC tagged `Environment=<env>`. */
  vpcId(): pulumi.Output<string> {
    const { settings, region, provider } = this.platform;
    const configured = settings.network.vpcIds[region];
    this.vpc ??= configured
      ? pulumi.output(configured)
      : aws.ec2.getVpcOutput({ tags: { Environment: settings.environment } }, { provider }).id;
    return this.vpc;
  }

  /** Subnets of one tier; a tier with no subnets fails the plan, naming the tag it looked for. */
  subnetIds(tier: Tier): pulumi.Output<string[]> {
    let ids = this.subnets.get(tier);
    if (!ids) {
      const { region, provider } = this.platform;
      const { tierTagKey } = this.platform.settings.network;
      ids = this.vpcId().apply((vpcId) =>
        aws.ec2
          .getSubnetsOutput(
            {
              filters: [
                { name: "vpc-id", values: [vpcId] },
                { name: `tag:${tierTagKey}`, values: [tier] },
              ],
            },
            { provider },
          )
          .ids.apply((found) => {
            if (found.length === 0) {
              throw new Error(`no subnets tagged ${tierTagKey}=${tier} in ${vpcId} (${region})`);
            }
            return [...found].sort();
          }),
      );
      this.subnets.set(tier, ids);
    }
    return ids;
  }

  securityGroup(...[logicalName, args, opts]: Parameters<NetworkTiers["securityGroup"]>): aws.ec2.SecurityGroup {
    return new aws.ec2.SecurityGroup(
      logicalName,
      {
        ...args,
        vpcId: this.vpcId(),
        egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
      },
      opts,
    );
  }

  /** The VPC's routes and the network team's controls provide it; the plan only reports it. */
  protected provide(): void {}
}

/** awsx's names for the NAT strategies. */
const NAT_STRATEGIES = { none: "None", single: "Single", onePerZone: "OnePerAz" } as const;

/**
 * The subnet sizes of a created VPC: each zone gets an equal share of the block, of which the
 * app tier takes half (Lambda's network interfaces) and the web tier an eighth; the rest stays
 * free for tiers to come. Throws, naming the key, when the block is too small for the zones.
 */
export function subnetMasks(cidrBlock: string, zones: number, key: string): { web: number; app: number } {
  const prefix = Number(cidrBlock.split("/")[1]);
  const zoneMask = prefix + Math.ceil(Math.log2(zones));
  const masks = { web: zoneMask + 3, app: zoneMask + 1 };
  // AWS's smallest subnet is a /28.
  if (masks.web > 28) {
    throw new Error(
      `${key}: ${cidrBlock} is too small for ${zones} availability zones (a web subnet would be /${masks.web}, smaller than /28)`,
    );
  }
  return masks;
}

/** A VPC built for the stack, with the endpoints and egress its app tier needs. */
class CreatedNetworkTiers extends PlacedTiers {
  readonly mode = "create";
  private built?: CreatedNetwork;

  /** The VPC is created on first use: the platform is complete by then. */
  private get network(): CreatedNetwork {
    this.built ??= new CreatedNetwork(`network-${this.platform.region}`, this.platform);
    return this.built;
  }

  vpcId(): pulumi.Output<string> {
    return this.network.vpc.vpcId;
  }

  subnetIds(tier: Tier): pulumi.Output<string[]> {
    return tier === "app" ? this.network.vpc.privateSubnetIds : this.network.vpc.publicSubnetIds;
  }

  securityGroup(...[logicalName, args, opts]: Parameters<NetworkTiers["securityGroup"]>): aws.ec2.SecurityGroup {
    // No inline rules: the egress rules are separate resources, made by `complete` for the
    // placements. Pulumi's AWS provider removes the allow-all rule AWS gives a new group.
    const group = new aws.ec2.SecurityGroup(logicalName, { ...args, vpcId: this.vpcId() }, opts);
    groupNames.set(group, logicalName);
    return group;
  }

  protected provide(reliance: Reliance): void {
    this.network.allow(this.placements, reliance);
  }
}

const HTTPS = { ipProtocol: "tcp", fromPort: 443, toPort: 443 } as const;

/** The logical names of the security groups a created network made, which its rules are named after. */
const groupNames = new WeakMap<aws.ec2.SecurityGroup, string>();

/** The awsx VPC, its endpoints and the rules between them and the app tier's security groups. */
class CreatedNetwork extends Component {
  readonly vpc: awsx.Vpc;
  private readonly settings: NonNullable<NetworkSettings["create"]>;
  private readonly cidrBlock: string;

  constructor(name: string, platform: RegionalPlatform) {
    super("fan-identity:components:Network", name, platform);
    const { network } = platform.settings;
    if (!network.create) throw new Error(`${name}: network.mode is create, but network.create is missing`);
    this.settings = network.create;
    const cidrKey = `fan-identity-workers:network.create.cidrBlocks.${platform.region}`;
    const cidrBlock = network.create.cidrBlocks[platform.region];
    if (!cidrBlock) throw new Error(`${cidrKey}: missing; network.mode create builds a VPC in ${platform.region}`);
    this.cidrBlock = cidrBlock;
    const zones = network.create.availabilityZones;
    const masks = subnetMasks(cidrBlock, zones, cidrKey);
    const tier = (name: Tier) => ({ ...platform.tags, [network.tierTagKey]: name });
    // Remote components run in their own provider plugin, which needs one of its own when the
    // stack disables default providers (as every stack here does).
    const awsxProvider = new AwsxProvider(this.childName("awsx"), {}, { parent: this });
    this.vpc = new awsx.Vpc(
      this.childName("vpc"),
      {
        cidrBlock,
        numberOfAvailabilityZones: zones,
        subnetStrategy: "Auto",
        subnetSpecs: [
          { type: "Public", name: "web", cidrMask: masks.web, tags: tier("web") },
          { type: "Private", name: "app", cidrMask: masks.app, tags: tier("app") },
        ],
        natGateways: { strategy: NAT_STRATEGIES[network.create.natGateways] },
        // Interface endpoints answer the services' own names only with private DNS, which needs both.
        enableDnsHostnames: true,
        enableDnsSupport: true,
        vpcEndpointStrategy: "Auto",
        vpcEndpointSpecs: GATEWAY_SERVICES.map((service) => ({
          serviceName: `com.amazonaws.${platform.region}.${service}`,
          vpcEndpointType: "Gateway",
          tags: { ...platform.tags, Name: `${platform.prefix}-${service}` },
        })),
        tags: { ...platform.tags, Name: `${platform.prefix}-vpc` },
      },
      { parent: this, provider: awsxProvider, providers: { aws: platform.provider } },
    );
    this.registerOutputs({ vpcId: this.vpc.vpcId });
  }

  /** Interface endpoints for the services the placements call, and each security group's egress. */
  allow(placements: readonly Placement[], reliance: Reliance): void {
    this.refuseUnknownServices(placements, reliance);
    this.refuseUnreachable(reliance);
    const endpointsGroup = reliance.interfaceServices.length > 0 ? this.createInterfaceEndpoints(reliance) : undefined;
    const groups = new Map<aws.ec2.SecurityGroup, Destination[]>();
    for (const placement of placements) {
      groups.set(placement.securityGroup, [...(groups.get(placement.securityGroup) ?? []), ...placement.destinations]);
    }
    for (const [group, destinations] of groups) this.allowGroup(group, destinations, endpointsGroup);
  }

  /** An AWS service with no interface endpoint known for it fails the plan, naming the workers calling it. */
  private refuseUnknownServices(placements: readonly Placement[], reliance: Reliance): void {
    for (const service of reliance.interfaceServices.filter((name) => !(name in INTERFACE_ENDPOINT_NAMES))) {
      const callers = placements
        .filter(({ destinations }) => destinations.some((to) => to.kind === "aws" && to.service === service))
        .map(({ workerName }) => workerName);
      throw new Error(
        `${callers.join(", ")} call${callers.length === 1 ? "s" : ""} ${service} from the app tier, and components/network.ts knows no VPC endpoint for it; add it to INTERFACE_ENDPOINT_NAMES`,
      );
    }
  }

  /** A service outside the VPC with no NAT to reach it by fails the plan, naming the key and the workers. */
  private refuseUnreachable(reliance: Reliance): void {
    const outside = Object.entries(reliance.internet);
    if (outside.length === 0 || this.settings.natGateways !== "none") return;
    const reaching = outside.map(([what, workers]) => `${workers.join(", ")} reach${workers.length === 1 ? "es" : ""} ${what}`);
    throw new Error(
      `fan-identity-workers:network.create.natGateways: none, but ${reaching.join("; ")} outside the VPC over HTTPS; set it to single or onePerZone`,
    );
  }

  /** The egress rules of one app-tier security group: exactly what its workers reach. */
  private allowGroup(group: aws.ec2.SecurityGroup, destinations: Destination[], endpointsGroup?: aws.ec2.SecurityGroup): void {
    const { platform } = this;
    const label = groupNames.get(group);
    if (!label) throw new Error(`${this.logicalName}: a placement's security group was not made by network.securityGroup(…)`);
    const own = relianceOf(platform.region, "create", [{ workerName: label, securityGroup: group, destinations }]);
    const egress = (role: string, rule: Omit<aws.vpc.SecurityGroupEgressRuleArgs, "securityGroupId" | "tags">) =>
      new aws.vpc.SecurityGroupEgressRule(
        this.childName(`${label}-to-${role}`),
        { securityGroupId: group.id, tags: platform.tags, ...rule },
        this.child,
      );
    if (own.interfaceServices.length > 0 && endpointsGroup) {
      egress("endpoints", {
        ...HTTPS,
        referencedSecurityGroupId: endpointsGroup.id,
        description: `HTTPS to the interface endpoints: ${own.interfaceServices.join(", ")}`,
      });
      new aws.vpc.SecurityGroupIngressRule(
        this.childName(`endpoints-from-${label}`),
        {
          ...HTTPS,
          securityGroupId: endpointsGroup.id,
          referencedSecurityGroupId: group.id,
          description: "HTTPS from the app tier's workers",
          tags: platform.tags,
        },
        this.child,
      );
    }
    for (const service of own.gatewayServices) {
      const prefixList = aws.ec2.getManagedPrefixListOutput(
        { name: `com.amazonaws.${platform.region}.${service}` },
        { provider: platform.provider },
      );
      egress(service, { ...HTTPS, prefixListId: prefixList.id, description: `HTTPS to ${service} through its gateway endpoint` });
    }
    const outside = Object.keys(own.internet);
    if (outside.length > 0) {
      egress("internet-https", {
        ...HTTPS,
        cidrIpv4: "0.0.0.0/0",
        description: `HTTPS through the NAT to ${outside.join(", ")}`,
      });
    }
    for (const { what, port } of own.inVpc) {
      const rule = {
        ipProtocol: "tcp",
        fromPort: port,
        toPort: port,
        cidrIpv4: this.cidrBlock,
        description: `${what} inside the VPC`,
      };
      egress(`${what.toLowerCase()}-${port}`, rule);
    }
  }

  /** One interface endpoint per service, in the app tier, behind a group taking HTTPS from the workers only. */
  private createInterfaceEndpoints(reliance: Reliance): aws.ec2.SecurityGroup {
    const { platform } = this;
    const group = new aws.ec2.SecurityGroup(
      this.childName("endpoints-sg"),
      {
        name: platform.name("vpc-endpoints", "securityGroup"),
        description: "Interface endpoints: HTTPS from the app tier's workers only",
        vpcId: this.vpc.vpcId,
        tags: platform.tags,
      },
      this.child,
    );
    for (const service of reliance.interfaceServices) {
      const endpoint = INTERFACE_ENDPOINT_NAMES[service]!;
      new aws.ec2.VpcEndpoint(
        this.childName(`endpoint-${endpoint}`),
        {
          vpcId: this.vpc.vpcId,
          serviceName: `com.amazonaws.${platform.region}.${endpoint}`,
          vpcEndpointType: "Interface",
          privateDnsEnabled: true,
          subnetIds: this.vpc.privateSubnetIds,
          securityGroupIds: [group.id],
          tags: { ...platform.tags, Name: `${platform.prefix}-${endpoint}` },
        },
        this.child,
      );
    }
    return group;
  }
}
