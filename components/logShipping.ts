/**
 * Log shipping: every worker's log group is subscribed to the central log stream, a Kinesis
 * stream in the primary region. CloudWatch Logs subscribes a log group only to a target in its own
 * region, so a region elsewhere (west) gets a logs destination of its own, pointing at the
 * primary region's stream: west's logs end up in the east.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { checkStatement, policyDocument } from "./iam";
import type { RegionalPlatform } from "./platform";
import type { LogShippingTarget } from "./workerFunction";

export interface LogShippingArgs {
  /** The primary region's platform, where the stream is. */
  readonly platform: RegionalPlatform;
  /** The central log stream. */
  readonly streamArn: string;
}

export class LogShipping extends pulumi.ComponentResource {
  /** The role CloudWatch Logs writes to the stream with. */
  readonly role: aws.iam.Role;
  private readonly targets = new Map<string, LogShippingTarget>();

  constructor(
    private readonly name: string,
    private readonly args: LogShippingArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("fan-identity:components:LogShipping", name, {}, opts);
    const { platform, streamArn } = args;
    const account = platform.settings.accountId;
    this.role = new aws.iam.Role(
      `${name}-role`,
      {
        name: platform.name("log-shipping-role", "iamRole"),
        description: "Lets CloudWatch Logs put this stack's log events on the central log stream",
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              Effect: "Allow",
              Principal: { Service: "logs.amazonaws.com" },
              Action: "sts:AssumeRole",
              Condition: { StringLike: { "aws:SourceArn": [`arn:aws:logs:*:${account}:*`] } },
            },
          ],
        }),
        tags: platform.tags,
      },
      { parent: this },
    );
    const put = { actions: ["kinesis:PutRecord", "kinesis:PutRecords"], resources: [streamArn] };
    checkStatement(put, `${name}, policy central_log_stream`);
    new aws.iam.RolePolicy(
      `${name}-stream`,
      { name: "central_log_stream", role: this.role.id, policy: policyDocument([put]) },
      { parent: this },
    );
    this.registerOutputs({ roleArn: this.role.arn });
  }

  /** Where log groups in the platform's region subscribe. */
  targetFor(platform: RegionalPlatform): LogShippingTarget {
    const streamRegion = this.args.streamArn.split(":")[3];
    if (platform.region === streamRegion) return { destinationArn: this.args.streamArn, roleArn: this.role.arn };
    let target = this.targets.get(platform.region);
    if (!target) {
      const options = { parent: this, provider: platform.provider };
      const destinationName = platform.name("log-shipping", "logDestination");
      const destination = new aws.cloudwatch.LogDestination(
        `${this.name}-${platform.region}`,
        { name: destinationName, targetArn: this.args.streamArn, roleArn: this.role.arn, tags: platform.tags },
        options,
      );
      new aws.cloudwatch.LogDestinationPolicy(
        `${this.name}-${platform.region}-policy`,
        {
          destinationName,
          accessPolicy: pulumi.jsonStringify({
            Version: "2012-10-17",
            Statement: [
              {
                Effect: "Allow",
                Principal: { AWS: platform.settings.accountId },
                Action: "logs:PutSubscriptionFilter",
                Resource: destination.arn,
              },
            ],
          }),
        },
        { ...options, dependsOn: [destination] },
      );
      target = { destinationArn: destination.arn };
      this.targets.set(platform.region, target);
    }
    return target;
  }
}
