/**
 * Turns recorded resources into what a reader of the plan needs: a tree by parent, each resource
 * with its region and key settings, and a JSON form with secrets and code archives summarised.
 */
import { specialSecretSig, specialSigKey } from "@pulumi/pulumi/runtime/rpc";
import type { RecordedResource } from "./runtime";

export interface PlannedResource {
  readonly type: string;
  readonly name: string;
  readonly urn: string;
  readonly parent?: string;
  readonly region?: string;
  readonly settings: string[];
  readonly inputs: Record<string, unknown>;
}

const REDACTED = "[secret]";

/** A secret input, as the engine receives it: wrapped and marked with Pulumi's secret signature. */
const isSecretValue = (value: unknown) =>
  typeof value === "object" && value !== null && (value as Record<string, unknown>)[specialSigKey] === specialSecretSig;

/** Asset archives (Lambda code) become the list of their entries; secret values are hidden. */
async function sanitize(type: string, inputs: Record<string, unknown>): Promise<Record<string, unknown>> {
  const result: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(inputs)) {
    if (
      isSecretValue(value) ||
      (type === "aws:secretsmanager/secretVersion:SecretVersion" && (key === "secretString" || key === "secretBinary"))
    ) {
      result[key] = REDACTED;
    } else if (isArchive(value)) {
      result[key] = { archive: Object.keys(await value.assets).sort() };
    } else {
      result[key] = value;
    }
  }
  return result;
}

interface ArchiveLike {
  readonly assets: Promise<Record<string, unknown>> | Record<string, unknown>;
}
const isArchive = (value: unknown): value is ArchiveLike =>
  typeof value === "object" && value !== null && "__pulumiArchive" in value && "assets" in value;

const list = (value: unknown) => (Array.isArray(value) ? value.join(", ") : String(value));
const short = (arn: unknown) => String(arn).replace(/^arn:aws:[^:]+:[^:]*:[^:]*:/, "");

/** Key settings of a resource, one short phrase each. */
function settingsOf(resource: RecordedResource, inputs: Record<string, unknown>): string[] {
  const i = inputs as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  switch (resource.type) {
    case "pulumi:providers:aws":
      return [`allowedAccountIds ${list(i.allowedAccountIds)}`];
    case "aws:lambda/function:Function":
      return [
        i.name,
        `${i.runtime} ${list(i.architectures)}`,
        `timeout ${i.timeout}s`,
        `memory ${i.memorySize} MB`,
        `env ${Object.keys(i.environment?.variables ?? {}).join(", ") || "-"}`,
        i.vpcConfig ? `vpc subnets ${list(i.vpcConfig.subnetIds)}` : "no vpc",
        `archive ${(i.code?.archive ?? []).length} entries`,
      ];
    case "aws:iam/role:Role":
      return [i.name];
    case "aws:iam/rolePolicy:RolePolicy": {
      const document = JSON.parse(String(i.policy)) as { Statement: { Action: string[]; Resource: string[] }[] };
      return [i.name, ...document.Statement.map((s) => `${list(s.Action)} on ${s.Resource.map(short).join(", ")}`)];
    }
    case "aws:cloudwatch/logGroup:LogGroup":
      return [i.name, `retention ${i.retentionInDays} days`];
    case "aws:sqs/queue:Queue":
      return [
        i.name,
        i.fifoQueue ? "fifo" : "standard",
        `retention ${Number(i.messageRetentionSeconds) / 86_400} days`,
        ...(i.visibilityTimeoutSeconds ? [`visibility ${i.visibilityTimeoutSeconds}s`] : []),
        i.sqsManagedSseEnabled ? "encrypted" : "NOT ENCRYPTED",
        ...(i.redrivePolicy ? [`dead letters after ${JSON.parse(i.redrivePolicy).maxReceiveCount} receives`] : []),
      ];
    case "aws:lambda/permission:Permission":
      return [
        `${i.action} by ${i.principal}`,
        `source ${i.sourceArn}`,
        ...(i.sourceAccount ? [`account ${i.sourceAccount}`] : []),
      ];
    case "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig":
      return [`${i.maximumRetryAttempts} retries`, `on failure ${short(i.destinationConfig?.onFailure?.destination)}`];
    case "aws:s3/bucketNotification:BucketNotification":
      return [
        `bucket ${i.bucket}`,
        ...(i.lambdaFunctions ?? []).map(
          (f: Record<string, string>) => `${short(f.lambdaFunctionArn)} on ${f.filterPrefix ?? ""}*${f.filterSuffix ?? ""}`,
        ),
      ];
    case "aws:lambda/eventSourceMapping:EventSourceMapping":
      return [
        `${i.eventSourceArn ? short(i.eventSourceArn) : `kafka ${list(i.topics)} at ${i.selfManagedEventSource?.endpoints?.KAFKA_BOOTSTRAP_SERVERS}`} → ${i.functionName}`,
        ...(i.selfManagedKafkaEventSourceConfig ? [`group ${i.selfManagedKafkaEventSourceConfig.consumerGroupId}`] : []),
        ...(i.provisionedPollerConfig
          ? [`${i.provisionedPollerConfig.minimumPollers}-${i.provisionedPollerConfig.maximumPollers} pollers`]
          : []),
        `batch ${i.batchSize}`,
        ...(i.startingPosition ? [`from ${i.startingPosition}`] : []),
        ...(i.filterCriteria ? i.filterCriteria.filters.map((f: { pattern: string }) => `filter ${f.pattern}`) : []),
        ...(i.functionResponseTypes?.includes("ReportBatchItemFailures") ? ["partial batch failures"] : []),
        ...(i.bisectBatchOnFunctionError ? ["bisect on error"] : []),
        ...(i.maximumRetryAttempts !== undefined ? [`${i.maximumRetryAttempts} retries`] : []),
        ...(i.destinationConfig?.onFailure ? [`on failure ${short(i.destinationConfig.onFailure.destinationArn)}`] : []),
      ];
    case "aws:dynamodb/table:Table":
      return [
        i.name,
        `key ${i.hashKey}${i.rangeKey ? ` + ${i.rangeKey}` : ""}`,
        i.billingMode === "PAY_PER_REQUEST" ? "on demand" : String(i.billingMode),
        ...(i.ttl?.enabled ? [`ttl ${i.ttl.attributeName}`] : []),
        ...(i.pointInTimeRecovery?.enabled ? ["point-in-time recovery"] : []),
        i.serverSideEncryption?.enabled ? "encrypted (KMS)" : "encrypted (AWS owned key)",
      ];
    case "aws:kinesis/stream:Stream":
      return [
        i.name,
        String(i.streamModeDetails?.streamMode ?? `${i.shardCount} shards`).toLowerCase(),
        `retention ${i.retentionPeriod} h`,
        `encryption ${i.encryptionType}`,
      ];
    case "aws:dynamodb/kinesisStreamingDestination:KinesisStreamingDestination":
      return [`${i.tableName} → ${short(i.streamArn)}`];
    case "aws:ec2/securityGroup:SecurityGroup":
      return [
        i.name,
        `vpc ${i.vpcId}`,
        ...(i.ingress || i.egress
          ? [`${(i.ingress ?? []).length} inbound rules`, `${(i.egress ?? []).length} outbound rules`]
          : ["rules as separate resources"]),
      ];
    case "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule":
    case "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": {
      const peer = i.referencedSecurityGroupId ?? i.prefixListId ?? i.cidrIpv4;
      const direction = resource.type.includes("Egress") ? `${i.securityGroupId} → ${peer}` : `${peer} → ${i.securityGroupId}`;
      return [
        `${direction} ${i.ipProtocol} ${i.fromPort === i.toPort ? i.fromPort : `${i.fromPort}-${i.toPort}`}`,
        i.description,
      ];
    }
    case "aws:ec2/vpcEndpoint:VpcEndpoint":
      return [i.serviceName, `${i.vpcEndpointType} in ${list(i.subnetIds)}`, `security groups ${list(i.securityGroupIds)}`];
    case "awsx:ec2:Vpc": {
      const specs = (i.subnetSpecs ?? []) as { type: string; name: string; cidrMask?: number }[];
      const endpoints = (i.vpcEndpointSpecs ?? []) as { serviceName: string; vpcEndpointType?: string }[];
      return [
        `${i.cidrBlock} across ${i.numberOfAvailabilityZones} zones`,
        `subnets ${specs.map((spec) => `${spec.name} (${spec.type} /${spec.cidrMask})`).join(", ")}`,
        `NAT ${i.natGateways?.strategy}`,
        `gateway endpoints ${endpoints.map((endpoint) => endpoint.serviceName).join(", ")}`,
      ];
    }
    case "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter":
      return [`${i.logGroup} → ${i.destinationArn}`];
    case "aws:cloudwatch/logDestination:LogDestination":
      return [i.name, `→ ${i.targetArn}`];
    case "aws:cloudwatch/metricAlarm:MetricAlarm": {
      const metrics = i.metricName
        ? `${i.namespace} ${i.metricName} ${Object.values(i.dimensions ?? {}).join(" ")} (${i.extendedStatistic ?? i.statistic})`
        : (i.metricQueries ?? []).find((query: { returnData?: boolean }) => query.returnData)?.expression;
      return [i.name, `${metrics} > ${i.threshold}`, `→ ${list((i.alarmActions ?? []).map(short))}`];
    }
    case "aws:sns/topic:Topic":
      return [i.name, `encrypted with ${short(i.kmsMasterKeyId)}`];
    case "aws:sns/topicSubscription:TopicSubscription":
      return [`${i.protocol} ${isSecretValue(i.endpoint) ? REDACTED : i.endpoint}`];
    case "aws:kms/key:Key":
      return [i.description, i.enableKeyRotation ? "rotated" : "NOT ROTATED"];
    case "aws:cloudwatch/dashboard:Dashboard":
      return [i.dashboardName, `${(JSON.parse(String(i.dashboardBody)) as { widgets: unknown[] }).widgets.length} widgets`];
    case "aws:secretsmanager/secret:Secret":
      return [i.name];
    case "aws:secretsmanager/secretVersion:SecretVersion":
      return ["value " + REDACTED];
    default:
      return typeof i.name === "string" ? [i.name] : [];
  }
}

export async function describeResources(resources: readonly RecordedResource[]): Promise<PlannedResource[]> {
  const regionOf = new Map<string, string>();
  for (const resource of resources) {
    if (resource.type === "pulumi:providers:aws" && resource.urn) regionOf.set(resource.urn, String(resource.inputs.region));
  }
  const planned: PlannedResource[] = [];
  for (const resource of resources) {
    const inputs = await sanitize(resource.type, resource.inputs);
    const region =
      resource.type === "pulumi:providers:aws"
        ? String(resource.inputs.region)
        : resource.providerUrn && regionOf.get(resource.providerUrn);
    planned.push({
      type: resource.type,
      name: resource.name,
      urn: resource.urn ?? "",
      parent: resource.parentUrn,
      region: region || undefined,
      // Components have no settings of their own, but for a remote one (awsx's VPC), whose
      // children run in its provider plugin and so are never seen here.
      settings: resource.custom || resource.type === "awsx:ec2:Vpc" ? settingsOf(resource, inputs) : [],
      inputs,
    });
  }
  return planned;
}

/** The resources as an indented tree, children under their parent in creation order. */
export function renderTree(planned: readonly PlannedResource[]): string {
  const byParent = new Map<string | undefined, PlannedResource[]>();
  const urns = new Set(planned.map((resource) => resource.urn));
  for (const resource of planned) {
    const parent = resource.parent && urns.has(resource.parent) ? resource.parent : undefined;
    byParent.set(parent, [...(byParent.get(parent) ?? []), resource]);
  }
  const lines: string[] = [];
  const walk = (parent: string | undefined, indent: string) => {
    const children = byParent.get(parent) ?? [];
    children.forEach((resource, index) => {
      const last = index === children.length - 1;
      const branch = indent === "" && parent === undefined ? "" : last ? "└─ " : "├─ ";
      const region = resource.region ? ` [${resource.region}]` : "";
      lines.push(`${indent}${branch}${resource.type}  ${resource.name}${region}`);
      const inner = indent === "" && parent === undefined ? "" : indent + (last ? "   " : "│  ");
      const detailIndent = inner + ((byParent.get(resource.urn) ?? []).length > 0 ? "│    " : "     ");
      if (resource.settings.length > 0) lines.push(`${detailIndent}${resource.settings.join(" · ")}`);
      walk(resource.urn, inner);
    });
  };
  walk(undefined, "");
  return lines.join("\n");
}
