/**
 * The shared arguments every stack component receives: where it deploys (an explicit regional
 * provider), what it is called (naming) and how it is labelled (tags), and which network tiers
 * it may use. Built once per region by the program; no component reads configuration itself.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { FlowRecord } from "./flows";
import { type NameKind, namePrefix, physicalName } from "./naming";
import { type NetworkSettings, type NetworkTiers, networkTiers } from "./network";

export interface PlatformSettings {
  /** The environment tag and name part: qa1, dev1, preprod1, prod1. */
  readonly environment: string;
  readonly productCode: string;
  readonly inventoryCode: string;
  /** URL of this repository, tagged on every resource so anyone can find the code behind it. */
  readonly iacRepo: string;
  /** The AWS account the stack deploys to; the providers refuse any other. */
  readonly accountId: string;
  readonly lambda: {
    readonly runtime: string;
    readonly architecture: "arm64" | "x86_64";
    readonly logRetentionDays: number;
    /** X-Ray tracing of every function: `Active` samples and records invocations, `PassThrough` only follows callers' decisions. */
    readonly tracing: "Active" | "PassThrough";
  };
  /** Where the VPC workers run: the environment's VPC, looked up, or one the stack creates. */
  readonly network: NetworkSettings;
}

/** The four tags on every resource that takes tags. */
export const REQUIRED_TAG_KEYS = ["Environment", "ProductCode", "InventoryCode", "iacRepo"] as const;

export function standardTags(settings: PlatformSettings): Record<(typeof REQUIRED_TAG_KEYS)[number], string> {
  return {
    Environment: settings.environment,
    ProductCode: settings.productCode,
    InventoryCode: settings.inventoryCode,
    iacRepo: settings.iacRepo,
  };
}

/**
 * The physical names the platforms of one program have made, by the settings they share: a
 * component refuses a child whose physical name is not among them (components/component.ts).
 */
const issuedNames = new WeakMap<PlatformSettings, Set<string>>();

/** Everything a component needs to place resources in one region. */
export class RegionalPlatform {
  readonly tags: Record<string, string>;
  readonly prefix: string;
  readonly network: NetworkTiers;
  /** The configuration name the region's workers run under: `prod1`, or `prod1w` in the west region. */
  readonly deployment: string;
  /** What the region's components wire together, for its alarms and dashboard (components/flows.ts). */
  readonly flows: FlowRecord;

  constructor(
    readonly settings: PlatformSettings,
    readonly region: string,
    readonly provider: aws.Provider,
    configSuffix = "",
  ) {
    this.deployment = `${settings.environment}${configSuffix}`;
    this.tags = standardTags(settings);
    this.prefix = namePrefix(settings.productCode, settings.environment, region);
    this.flows = new FlowRecord(region);
    this.network = networkTiers(this);
  }

  /** The physical name of a resource of `kind`: `<productCode>-<env>-<region>-<name>`. */
  name(name: string, kind: NameKind): string {
    return this.issue(physicalName(this.prefix, name, kind));
  }

  /**
   * The log group a service writes a resource's logs to, `/aws/<service>/<resource name>`, for a
   * resource named by `name()`.
   */
  logGroupName(service: "lambda" | "apigateway", resourceName: string): string {
    if (!this.issued(resourceName)) {
      throw new Error(`log group of "${resourceName}": the resource's name was not made by platform.name(…)`);
    }
    return this.issue(`/aws/${service}/${resourceName}`);
  }

  /** The log group API Gateway writes a stage's execution logs to; AWS fixes this name. */
  executionLogGroupName(restApiId: pulumi.Input<string>, stage: string): pulumi.Output<string> {
    return pulumi.interpolate`API-Gateway-Execution-Logs_${restApiId}/${stage}`.apply((name) => this.issue(name));
  }

  /** Whether a physical name was made by this program's naming. */
  issued(name: string): boolean {
    return issuedNames.get(this.settings)?.has(name) ?? false;
  }

  private issue(name: string): string {
    let names = issuedNames.get(this.settings);
    if (!names) issuedNames.set(this.settings, (names = new Set()));
    names.add(name);
    return name;
  }

  /** An ARN in this region and account. */
  arn(service: string, resource: string): string {
    return `arn:aws:${service}:${this.region}:${this.settings.accountId}:${resource}`;
  }
}

/**
 * The regional provider. Default providers are disabled for the project, so a resource created
 * without one of these fails instead of landing in whatever region the shell points at.
 */
export function createRegionalPlatform(settings: PlatformSettings, region: string, configSuffix = ""): RegionalPlatform {
  const provider = new aws.Provider(`aws-${region}`, {
    region: region as aws.Region,
    allowedAccountIds: [settings.accountId],
    defaultTags: { tags: standardTags(settings) },
  });
  return new RegionalPlatform(settings, region, provider, configSuffix);
}
