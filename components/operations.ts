/**
 * Operating one region (docs/operations.md): its alert topic, the alarms of everything the
 * region's components wired (components/alarms.ts, from the region's wiring record), and one
 * dashboard of its flows. Built after every other component of the region, so the record is
 * complete.
 *
 * CloudWatch alarms cannot publish to a topic encrypted with the AWS-managed `alias/aws/sns`
 * key, whose policy admits no service: the topic is encrypted with a customer-managed key
 * (rotated yearly) whose policy lets CloudWatch use it.
 */
import { createHash } from "node:crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { type AlarmMetric, type AlarmSpec, alarmSpecs, type AlarmThresholds } from "./alarms";
import { Component } from "./component";
import { dashboardUrl, dashboardWidgets } from "./dashboard";
import type { RegionalPlatform } from "./platform";

export interface RegionalOperationsArgs {
  readonly platform: RegionalPlatform;
  readonly thresholds: AlarmThresholds;
  readonly alerts: {
    /** Email addresses subscribed to the alert topic. */
    readonly emails: readonly string[];
    /** HTTPS endpoints subscribed to the alert topic; each a secret, as they usually carry a token. */
    readonly httpsEndpoints: readonly pulumi.Input<string>[];
  };
}

export class RegionalOperations extends Component {
  readonly key: aws.kms.Key;
  readonly topic: aws.sns.Topic;
  readonly alarms: aws.cloudwatch.MetricAlarm[];
  readonly dashboard: aws.cloudwatch.Dashboard;
  readonly dashboardUrl: string;

  constructor(name: string, args: RegionalOperationsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:components:RegionalOperations", name, args.platform, opts);
    ({ key: this.key, topic: this.topic } = this.createTopic(args.alerts));
    const specs = alarmSpecs(this.platform.flows, this.platform, args.thresholds);
    this.alarms = specs.map((spec) => this.createAlarm(spec, args.thresholds));
    const dashboardName = this.platform.name("operations", "dashboard");
    this.dashboard = new aws.cloudwatch.Dashboard(
      this.childName("dashboard"),
      { dashboardName, dashboardBody: this.dashboardBody(args.thresholds.periodSeconds) },
      this.child,
    );
    this.dashboardUrl = dashboardUrl(this.platform.region, dashboardName);
    this.registerOutputs({ topicArn: this.topic.arn, dashboardUrl: this.dashboardUrl });
  }

  /** The encrypted alert topic, its policy and its subscriptions. */
  private createTopic(alerts: RegionalOperationsArgs["alerts"]) {
    const { platform } = this;
    const key = this.createKey();
    const topic = new aws.sns.Topic(
      this.childName("alerts"),
      { name: platform.name("alerts", "snsTopic"), kmsMasterKeyId: key.arn, tags: platform.tags },
      this.child,
    );
    new aws.sns.TopicPolicy(
      this.childName("alerts-policy"),
      {
        arn: topic.arn,
        policy: pulumi.jsonStringify({
          Version: "2012-10-17",
          Statement: [
            {
              Sid: "CloudWatchAlarmsOfThisAccount",
              Effect: "Allow",
              Principal: { Service: "cloudwatch.amazonaws.com" },
              Action: "sns:Publish",
              Resource: topic.arn,
              Condition: {
                ArnLike: { "aws:SourceArn": platform.arn("cloudwatch", "alarm:*") },
                StringEquals: { "aws:SourceAccount": platform.settings.accountId },
              },
            },
          ],
        }),
      },
      this.child,
    );
    this.subscribe(topic, alerts);
    return { key, topic };
  }

  /** The topic's key: rotated, administered by the account, usable by CloudWatch. */
  private createKey(): aws.kms.Key {
    const { platform } = this;
    return new aws.kms.Key(
      this.childName("alerts-key"),
      {
        description: `Encrypts the alert topic of ${platform.prefix}`,
        enableKeyRotation: true,
        deletionWindowInDays: 30,
        policy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [
            {
              // AWS's default key policy: without it the account could lose control of the key.
              Sid: "AccountAdministersTheKey",
              Effect: "Allow",
              Principal: { AWS: `arn:aws:iam::${platform.settings.accountId}:root` },
              Action: "kms:*",
              Resource: "*",
            },
            {
              // What CloudWatch needs to publish an alarm to a topic encrypted with this key.
              Sid: "CloudWatchAlarmsPublish",
              Effect: "Allow",
              Principal: { Service: "cloudwatch.amazonaws.com" },
              Action: ["kms:Decrypt", "kms:GenerateDataKey*"],
              Resource: "*",
            },
          ],
        }),
        tags: platform.tags,
      },
      this.child,
    );
  }

  /** One subscription per email address and per HTTPS endpoint. */
  private subscribe(topic: aws.sns.Topic, alerts: RegionalOperationsArgs["alerts"]): void {
    // Named by a hash of the address, so reordering the list replaces nothing.
    for (const email of alerts.emails) {
      const id = createHash("sha256").update(email).digest("hex").slice(0, 8);
      new aws.sns.TopicSubscription(
        this.childName(`alerts-email-${id}`),
        { topic: topic.arn, protocol: "email", endpoint: email },
        this.child,
      );
    }
    // By position: the endpoints are secrets, so nothing of them goes into a resource's name.
    alerts.httpsEndpoints.forEach((endpoint, index) => {
      new aws.sns.TopicSubscription(
        this.childName(`alerts-https-${index + 1}`),
        { topic: topic.arn, protocol: "https", endpoint, endpointAutoConfirms: false },
        this.child,
      );
    });
  }

  private createAlarm(spec: AlarmSpec, thresholds: AlarmThresholds): aws.cloudwatch.MetricAlarm {
    const { platform } = this;
    return new aws.cloudwatch.MetricAlarm(
      this.childName(`alarm-${spec.label}`),
      {
        name: platform.name(spec.label, "metricAlarm"),
        alarmDescription: `${spec.description}. Runbook: docs/operations.md#${spec.runbook}`,
        comparisonOperator: "GreaterThanThreshold",
        threshold: spec.threshold,
        evaluationPeriods: thresholds.evaluationPeriods,
        // No data is no work: an idle queue or a quiet worker is not alarming.
        treatMissingData: "notBreaching",
        alarmActions: [this.topic.arn],
        okActions: [this.topic.arn],
        tags: platform.tags,
        ...alarmMetrics(spec.watches, thresholds.periodSeconds),
      },
      this.child,
    );
  }

  /** The dashboard's body, once the flows' ARNs and the alarms' ARNs are known. */
  private dashboardBody(period: number): pulumi.Output<string> {
    const { platform } = this;
    const where = { prefix: platform.prefix, region: platform.region, deployment: platform.deployment, period };
    return pulumi
      .all([platform.flows.flows(), pulumi.all(this.alarms.map((alarm) => alarm.arn))])
      .apply(([flows, alarmArns]) => JSON.stringify({ widgets: dashboardWidgets(platform.flows, flows, alarmArns, where) }));
  }
}

/** What an alarm reads: one metric and its statistic, or the failure rate of two (0 without calls). */
function alarmMetrics(watches: AlarmSpec["watches"], period: number): Partial<aws.cloudwatch.MetricAlarmArgs> {
  if ("metric" in watches) {
    const { metric } = watches;
    const percentile = /^p\d/.test(metric.stat);
    return {
      namespace: metric.namespace,
      metricName: metric.metricName,
      dimensions: { ...metric.dimensions },
      period,
      ...(percentile ? { extendedStatistic: metric.stat } : { statistic: metric.stat }),
    };
  }
  const query = (id: string, metric: AlarmMetric) => ({
    id,
    returnData: false,
    metric: {
      namespace: metric.namespace,
      metricName: metric.metricName,
      dimensions: { ...metric.dimensions },
      period,
      stat: metric.stat,
    },
  });
  return {
    metricQueries: [
      query("failures", watches.rate.numerator),
      query("calls", watches.rate.denominator),
      // No calls is no failure rate: 0, not missing data.
      { id: "rate", expression: "IF(FILL(calls, 0) > 0, FILL(failures, 0) / calls, 0)", label: "failure rate", returnData: true },
    ],
  };
}
