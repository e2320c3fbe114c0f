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
import { METRICS_NAMESPACE, WORKER_METRICS } from "../workers/shared/runtime/telemetry";
import { type AlarmMetric, type AlarmSpec, alarmSpecs, type AlarmThresholds, workerMetric } from "./alarms";
import { Component } from "./component";
import { type Flow, flowKey, type FlowRecord } from "./flows";
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

/** The console address of a dashboard. */
export const dashboardUrl = (region: string, name: string): string =>
  `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${name}`;

/** The markdown table row of a flow in the dashboard's flow widget; tools read flows back from it. */
export const flowRow = (flow: Flow): string =>
  `| ${flow.from.shape} \`${flow.from.name}\` | ${flow.kind} | ${flow.to.shape} \`${flow.to.name}\` |`;

/** Reads the flows back from a dashboard body's flow widget (the inverse of `flowRow`). */
export function dashboardFlows(body: string): Flow[] {
  const widgets = (JSON.parse(body) as { widgets: { type: string; properties: { markdown?: string } }[] }).widgets;
  const markdown = widgets.flatMap((widget) => (widget.type === "text" ? [widget.properties.markdown ?? ""] : [])).join("\n");
  return [...markdown.matchAll(/^\| (\w+) `([^`]+)` \| (\w+) \| (\w+) `([^`]+)` \|$/gm)].map(
    ([, fromShape, from, kind, toShape, to]) =>
      ({ from: { shape: fromShape, name: from }, kind, to: { shape: toShape, name: to } }) as Flow,
  );
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

  /** The encrypted alert topic, its key, its policy and its subscriptions. */
  private createTopic(alerts: RegionalOperationsArgs["alerts"]) {
    const { platform } = this;
    const { accountId } = platform.settings;
    const key = new aws.kms.Key(
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
              Principal: { AWS: `arn:aws:iam::${accountId}:root` },
              Action: "kms:*",
              Resource: "*",
            },
            {
              // What an alarm needs to publish to the encrypted topic (the SNS encryption guide).
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
                StringEquals: { "aws:SourceAccount": accountId },
              },
            },
          ],
        }),
      },
      this.child,
    );
    // Named by a hash of the address, so reordering the list replaces nothing.
    for (const email of alerts.emails) {
      const id = createHash("sha256").update(email).digest("hex").slice(0, 8);
      new aws.sns.TopicSubscription(
        this.childName(`alerts-email-${id}`),
        { topic: topic.arn, protocol: "email", endpoint: email },
        this.child,
      );
    }
    alerts.httpsEndpoints.forEach((endpoint, index) => {
      new aws.sns.TopicSubscription(
        this.childName(`alerts-https-${index + 1}`),
        { topic: topic.arn, protocol: "https", endpoint, endpointAutoConfirms: false },
        this.child,
      );
    });
    return { key, topic };
  }

  private createAlarm(spec: AlarmSpec, thresholds: AlarmThresholds): aws.cloudwatch.MetricAlarm {
    const { platform } = this;
    const period = thresholds.periodSeconds;
    const common = {
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
    };
    if ("metric" in spec.watches) {
      const { metric } = spec.watches;
      const percentile = /^p\d/.test(metric.stat);
      return new aws.cloudwatch.MetricAlarm(
        this.childName(`alarm-${spec.label}`),
        {
          ...common,
          namespace: metric.namespace,
          metricName: metric.metricName,
          dimensions: { ...metric.dimensions },
          period,
          ...(percentile ? { extendedStatistic: metric.stat } : { statistic: metric.stat }),
        },
        this.child,
      );
    }
    const { numerator, denominator } = spec.watches.rate;
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
    return new aws.cloudwatch.MetricAlarm(
      this.childName(`alarm-${spec.label}`),
      {
        ...common,
        metricQueries: [
          query("failures", numerator),
          query("calls", denominator),
          // No calls is no failure rate: 0, not missing data.
          {
            id: "rate",
            expression: "IF(FILL(calls, 0) > 0, FILL(failures, 0) / calls, 0)",
            label: "failure rate",
            returnData: true,
          },
        ],
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

/** An alarm widget shows at most this many alarms. */
const ALARMS_PER_WIDGET = 100;

/**
 * The dashboard's widgets, top to bottom: the region's flows, the state of its alarms, then a row
 * per worker (Lambda's metrics, its records, its dependencies), the queues, and the API.
 */
export function dashboardWidgets(
  record: FlowRecord,
  flows: readonly Flow[],
  alarmArns: readonly string[],
  where: { readonly prefix: string; readonly region: string; readonly deployment: string; readonly period: number },
): object[] {
  const { region, deployment, period } = where;
  const widgets: object[] = [];
  let y = 0;
  const row = (height: number, ...items: { width: number; widget: object }[]) => {
    let x = 0;
    for (const { width, widget } of items) {
      widgets.push({ ...widget, x, y, width, height });
      x += width;
    }
    y += height;
  };
  const graph = (title: string, metrics: unknown[][], stat = "Sum") => ({
    type: "metric",
    properties: { title, region, view: "timeSeries", stacked: false, period, stat, metrics },
  });
  const line = (metric: AlarmMetric, label?: string): unknown[] => [
    metric.namespace,
    metric.metricName,
    ...Object.entries(metric.dimensions).flat(),
    { stat: metric.stat, ...(label ? { label } : {}) },
  ];
  const lambda = (metricName: string, functionName: string, stat: string): AlarmMetric => ({
    namespace: "AWS/Lambda",
    metricName,
    dimensions: { FunctionName: functionName },
    stat,
  });
  const sqs = (metricName: string, queueName: string): AlarmMetric => ({
    namespace: "AWS/SQS",
    metricName,
    dimensions: { QueueName: queueName },
    stat: "Maximum",
  });
  const local = (name: string) => (name.startsWith(`${where.prefix}-`) ? name.slice(where.prefix.length + 1) : name);

  const markdown = [
    `# ${where.prefix}: event flows`,
    "The region's wiring as the program built it (the README's event flow). Runbook: docs/operations.md.",
    "",
    "| from | flow | to |",
    "|---|---|---|",
    ...[...flows].sort((a, b) => flowKey(a).localeCompare(flowKey(b))).map(flowRow),
  ].join("\n");
  row(4 + Math.ceil(flows.length / 2), { width: 24, widget: { type: "text", properties: { markdown } } });
  for (let index = 0; index < alarmArns.length; index += ALARMS_PER_WIDGET) {
    const alarms = alarmArns.slice(index, index + ALARMS_PER_WIDGET);
    row(Math.max(3, Math.ceil(alarms.length / 6)), {
      width: 24,
      widget: { type: "alarm", properties: { title: "Alarms", alarms } },
    });
  }

  const streamKind = new Map(
    record.mappings.flatMap((mapping) => (mapping.kind === "sqs" ? [] : [[mapping.functionName, mapping.kind] as const])),
  );
  for (const worker of record.workers) {
    const { workerName, functionName } = worker;
    const dimensions = { service: workerName, environment: deployment, region };
    // Failures carry a `reason` dimension: a search finds every reason's series.
    const failedByReason = `SEARCH('{${METRICS_NAMESPACE},service,environment,region,reason} MetricName="${WORKER_METRICS.recordsFailed.name}" service="${workerName}" environment="${deployment}"', 'Sum', ${period})`;
    const behind = streamKind.get(functionName);
    row(
      6,
      {
        width: 8,
        widget: graph(`${workerName}: invocations`, [
          line(lambda("Invocations", functionName, "Sum")),
          line(lambda("Errors", functionName, "Sum")),
          line(lambda("Throttles", functionName, "Sum")),
          ...(behind === "kinesis" ? [line(lambda("IteratorAge", functionName, "Maximum"))] : []),
          ...(behind === "kafka" ? [line(lambda("OffsetLag", functionName, "Maximum"))] : []),
        ]),
      },
      {
        width: 8,
        widget: graph(`${workerName}: records`, [
          line(workerMetric(WORKER_METRICS.recordsReceived, dimensions)),
          line(workerMetric(WORKER_METRICS.recordsProcessed, dimensions)),
          line(workerMetric(WORKER_METRICS.recordsSkipped, dimensions)),
          [{ expression: failedByReason, id: "failed", label: "failed, by reason" }],
        ]),
      },
      {
        width: 8,
        widget: graph(`${workerName}: duration and dependencies`, [
          line(lambda("Duration", functionName, "p99"), "duration p99"),
          ...worker.dependencies.flatMap((dependency) => [
            line(workerMetric(WORKER_METRICS.externalCalls, dimensions, dependency), `${dependency} calls`),
            line(workerMetric(WORKER_METRICS.externalCallFailures, dimensions, dependency), `${dependency} failures`),
          ]),
        ]),
      },
    );
  }
  const queues = record.queues.map((queue) => ({
    width: 8,
    widget: graph(
      `${local(queue.queueName)} (${queue.role})`,
      [
        line(sqs("ApproximateNumberOfMessagesVisible", queue.queueName)),
        line(sqs("ApproximateAgeOfOldestMessage", queue.queueName)),
      ],
      "Maximum",
    ),
  }));
  for (let index = 0; index < queues.length; index += 3) row(6, ...queues.slice(index, index + 3));
  for (const api of record.apis) {
    const apiMetric = (metricName: string, stat: string): AlarmMetric => ({
      namespace: "AWS/ApiGateway",
      metricName,
      dimensions: { ApiName: api.apiName, Stage: api.stage },
      stat,
    });
    row(
      6,
      {
        width: 12,
        widget: graph(`${local(api.apiName)}: requests`, [
          line(apiMetric("Count", "Sum")),
          line(apiMetric("4XXError", "Sum")),
          line(apiMetric("5XXError", "Sum")),
        ]),
      },
      {
        width: 12,
        widget: graph(
          `${local(api.apiName)}: latency`,
          [line(apiMetric("Latency", "p99"), "p99"), line(apiMetric("IntegrationLatency", "p99"), "integration p99")],
          "p99",
        ),
      },
    );
  }
  return widgets;
}
