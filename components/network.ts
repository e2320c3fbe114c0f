/**
 * VPC tiers: `web` for public-facing resources, `app` for Lambdas that need the VPC (Redis,
 * Kafka, the accounts APIs). Subnets are found by their tier tag in the environment's VPC, so the
 * network team can add or replace subnets without a change here.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";

export type Tier = "web" | "app";

export interface NetworkTiersArgs {
  readonly environment: string;
  readonly region: string;
  readonly vpcId?: string;
  readonly tierTagKey: string;
  readonly provider: aws.Provider;
}

export class NetworkTiers {
  private vpc?: pulumi.Output<string>;
  private readonly subnets = new Map<Tier, pulumi.Output<string[]>>();

  constructor(private readonly args: NetworkTiersArgs) {}

  /** The environment's VPC: the configured id, or the VPC tagged `Environment=<env>`. */
  vpcId(): pulumi.Output<string> {
    this.vpc ??= this.args.vpcId
      ? pulumi.output(this.args.vpcId)
      : aws.ec2.getVpcOutput({ tags: { Environment: this.args.environment } }, { provider: this.args.provider }).id;
    return this.vpc;
  }

  /** Subnets of one tier; a tier with no subnets fails the plan, naming the tag it looked for. */
  subnetIds(tier: Tier): pulumi.Output<string[]> {
    let ids = this.subnets.get(tier);
    if (!ids) {
      const { region, tierTagKey, provider } = this.args;
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
}
