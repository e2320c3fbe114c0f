/**
 * Log shipping: every worker's log group is subscribed to the central log stream, a Kinesis
 * stream in the primary region. CloudWatch Logs subscribes a log group only to a target in its own
 * region, so a region elsewhere (west) gets a logs destination of its own, pointing at the
 * primary region's stream: west's logs end up in the east.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { assumeRolePolicy, checkStatement, policyDocument, regionOfArn } from "./iam";
import { Component } from "./component";
import type { RegionalPlatform } from "./platform";
import type { LogShippingTarget } from "./workerFunction";

export interface LogShippingArgs {
  /** The primary region's platform, where the stream is. */
  readonly platform: RegionalPlatform;
  /** The central log stream. */
  readonly streamArn: string;
}

export class LogShipping extends Component {
  /** The role CloudWatch Logs writes to the stream with. */
  readonly role: aws.iam.Role;
  private readonly targets = new Map<string, LogShippingTarget>();

  constructor(
    name: string,
    private readonly args: LogShippingArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("fan-identity:components:LogShipping", name, args.platform, opts);
    const { platform, streamArn } = args;
    const account = platform.settings.accountId;
    this.role = new aws.iam.Role(
      this.childName("role"),
      {
        name: platform.name("log-shipping-role", "iamRole"),
        description: "Lets CloudWatch Logs put this stack's log events on the central log stream",
        assumeRolePolicy: assumeRolePolicy("logs.amazonaws.com", {
          StringLike: { "aws:SourceArn": [`arn:aws:logs:*:${account}:*`] },
        }),
        tags: platform.tags,
      },
      this.child,
    );
    const put = { actions: ["kinesis:PutRecord", "kinesis:PutRecords"], resources: [streamArn] };
    checkStatement(put, `${name}, policy central_log_stream`);
    new aws.iam.RolePolicy(
      this.childName("stream"),
      { name: "central_log_stream", role: this.role.id, policy: policyDocument([put]) },
      this.child,
    );
    this.registerOutputs({ roleArn: this.role.arn });
  }

  /** Where log groups in the platform's region subscribe. */
  targetFor(platform: RegionalPlatform): LogShippingTarget {
    if (platform.region === regionOfArn(this.args.streamArn))
      return { destinationArn: this.args.streamArn, roleArn: this.role.arn };
    let target = this.targets.get(platform.region);
    if (!target) {
      const options = { parent: this, provider: platform.provider };
      const destination = new aws.cloudwatch.LogDestination(
        this.childName(platform.region),
        {
          name: platform.name("log-shipping", "logDestination"),
          targetArn: this.args.streamArn,
          roleArn: this.role.arn,
          tags: platform.tags,
        },
        options,
      );
      new aws.cloudwatch.LogDestinationPolicy(
        this.childName(`${platform.region}-policy`),
        {
          destinationName: destination.name,
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
        options,
      );
      target = { destinationArn: destination.arn };
      this.targets.set(platform.region, target);
    }
    return target;
  }
}
