/**
 * The scoring stack of one region (SPEC §3–§6): the fan-identity table and its change stream,
 * the account-activity FIFO queue and the on-demand queue, and the workers between them.
 *
 *   input streams ─▶ enqueue workers ─▶ account-activity FIFO / on-demand queue ─▶ lookupArai
 *   lookupArai ─▶ fan-identity table ─▶ table stream ─▶ scoreUsers, stagingScoreUsers
 *   rescore TTL deletions ─▶ table stream ─▶ processRescoreEvents ─▶ account-activity FIFO
 *   Kafka user-activity topic ─▶ enqueueFromActivityStream ─▶ account-activity FIFO (when enabled)
 *   getArmScore: the ARM team's Redis, for direct invocations and AppSync
 *
 * Instantiated once per region, each with its own regional platform.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  kafkaConsumerStatements,
  kafkaEventSource,
  kinesisConsumerStatements,
  kinesisEventSource,
  sqsConsumerStatements,
  sqsEventSource,
} from "../components/eventSources";
import type { Statement } from "../components/iam";
import { Component } from "../components/component";
import type { RegionalPlatform } from "../components/platform";
import { Queue } from "../components/queue";
import { SecretDocument } from "../components/secretDocument";
import { type LogShippingTarget, WorkerFunction, type WorkerFunctionArgs } from "../components/workerFunction";
import { enqueueFromActivityStream } from "../workers/enqueueFromActivityStream";
import { enqueueFromDemandStream } from "../workers/enqueueFromDemandStream";
import { enqueueFromPurchaseStream } from "../workers/enqueueFromPurchaseStream";
import { enqueueFromSQJourneyStream } from "../workers/enqueueFromSQJourneyStream";
import { enqueueFromVfStream } from "../workers/enqueueFromVfStream";
import { getArmScore } from "../workers/getArmScore";
import { lookupArai } from "../workers/lookupArai";
import { processRescoreEvents } from "../workers/processRescoreEvents";
import { scoreUsers } from "../workers/scoreUsers";
import { KEY, TTL_ATTRIBUTE } from "../workers/shared/scoring/table";
import { stagingScoreUsers } from "../workers/stagingScoreUsers";
import type { StackConfig } from "./config";

type ScoringConfig = StackConfig["scoring"];
type RegionConfig = ScoringConfig["east"];

export interface ScoringStackArgs {
  readonly platform: RegionalPlatform;
  readonly scoring: ScoringConfig;
  /** This region's own settings (its input streams). */
  readonly region: RegionConfig;
  readonly araiCredentials: pulumi.Input<Record<string, string>>;
  readonly modelServingToken: pulumi.Input<string>;
  /** The AppSync API allowed to invoke getArmScore. */
  readonly appsyncApiArn?: string;
  readonly logShipping?: LogShippingTarget;
}

/** Event filter patterns (SPEC §6), matched by Lambda against each record with `data` parsed as JSON. */
export const FILTERS = {
  /** Fresh ARAI awaiting a score; a written score (type=score) never matches, so scoring cannot loop. */
  activityData: { data: { eventName: ["INSERT", "MODIFY"], dynamodb: { NewImage: { type: { S: ["activityData"] } } } } },
  /** A rescore record deleted by DynamoDB's TTL, not by anyone else. */
  rescoreExpired: {
    data: {
      eventName: ["REMOVE"],
      userIdentity: { type: ["Service"], principalId: ["dynamodb.amazonaws.com"] },
      dynamodb: { OldImage: { type: { S: ["rescore"] } } },
    },
  },
  vfLogin: { data: { type: ["vfLogin"] } },
  /** Demand-table changes that carry a fan. */
  demand: { data: { eventName: ["INSERT", "MODIFY"], dynamodb: { NewImage: { globalUserId: { S: [{ exists: true }] } } } } },
  successfulPurchase: { data: { status: ["SUCCESS"], customer: { globalUserId: [{ exists: true }] } } },
  sqJourney: { data: { globalUserId: [{ exists: true }] } },
} as const;

export class ScoringStack extends Component {
  readonly table: aws.dynamodb.Table;
  readonly tableStream: aws.kinesis.Stream;
  readonly activityQueue: Queue;
  readonly onDemandQueue: Queue;
  readonly streamFailures: Queue;
  /** The stack's workers, by name. */
  readonly workers: Readonly<Record<string, WorkerFunction>>;

  constructor(name: string, args: ScoringStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:stacks:ScoringStack", name, args.platform, opts);
    const { platform, scoring, region } = args;
    const child = { parent: this };
    const tags = platform.tags;

    // The table and its change stream (SPEC §3).
    this.tableStream = new aws.kinesis.Stream(
      `${name}-table-stream`,
      {
        name: platform.name("fan-identity-table-stream", "kinesisStream"),
        streamModeDetails: { streamMode: "ON_DEMAND" },
        encryptionType: "KMS",
        kmsKeyId: "alias/aws/kinesis",
        retentionPeriod: 24,
        tags,
      },
      child,
    );
    this.table = new aws.dynamodb.Table(
      `${name}-table`,
      {
        name: platform.name("fan-identity-table", "dynamodbTable"),
        billingMode: "PAY_PER_REQUEST",
        hashKey: KEY,
        attributes: [{ name: KEY, type: "S" }],
        ttl: { attributeName: TTL_ATTRIBUTE, enabled: true },
        pointInTimeRecovery: { enabled: true },
        serverSideEncryption: { enabled: true },
        deletionProtectionEnabled: true,
        tags,
      },
      child,
    );
    new aws.dynamodb.KinesisStreamingDestination(
      `${name}-table-streaming`,
      { tableName: this.table.name, streamArn: this.tableStream.arn, approximateCreationDateTimePrecision: "MILLISECOND" },
      child,
    );

    const lookupTimeout = 60;
    this.activityQueue = new Queue(
      `${name}-activity`,
      { platform, name: "acct-activity-sqs", fifo: true, consumerTimeoutSeconds: lookupTimeout },
      child,
    );
    this.onDemandQueue = new Queue(
      `${name}-on-demand`,
      { platform, name: "on-demand-scoring-sqs", consumerTimeoutSeconds: lookupTimeout },
      child,
    );
    // Kinesis mappings send the records whose retries are spent here (SPEC §6).
    this.streamFailures = new Queue(
      `${name}-stream-failures`,
      { platform, name: "scoring-stream-failures-sqs", retentionDays: 14, deadLetter: false },
      child,
    );

    const secrets = {
      arai: new SecretDocument(
        `${name}-arai-credentials`,
        {
          platform,
          name: "arai-credentials",
          description: "Basic credentials and client id of the accounts ARAI API",
          document: args.araiCredentials,
        },
        child,
      ),
      model: new SecretDocument(
        `${name}-model-token`,
        {
          platform,
          name: "model-serving-token",
          description: "Bearer token of the Databricks model-serving endpoints",
          document: { token: args.modelServingToken },
        },
        child,
      ),
    };

    // The workers run in the app tier: they reach the accounts APIs and the model endpoints.
    const securityGroup = new aws.ec2.SecurityGroup(
      `${name}-workers-sg`,
      {
        name: platform.name("scoring-workers", "securityGroup"),
        description: "Scoring workers: outbound only",
        vpcId: platform.network.vpcId(),
        egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
        tags,
      },
      child,
    );
    const vpc = (policyName: string) => ({
      subnetIds: platform.network.subnetIds("app"),
      securityGroupIds: [securityGroup.id],
      policyName,
    });

    const tableArn = this.table.arn;
    const queueUrl = { activity: this.activityQueue.url, onDemand: this.onDemandQueue.url };
    const kinesisConsumer = (streamArn: pulumi.Input<string>): Record<string, Statement[]> => ({
      fan_identity_kinesis_consumer_policy: kinesisConsumerStatements([streamArn], this.streamFailures.arn),
    });
    const workers: Record<string, WorkerFunction> = {};
    this.workers = workers;
    const worker = (workerArgs: Omit<WorkerFunctionArgs, "platform">) => {
      const workerName = workerArgs.worker.contract.name;
      workers[workerName] = new WorkerFunction(
        `${name}-${workerName}`,
        { platform, logShipping: args.logShipping, ...workerArgs },
        child,
      );
      return workers[workerName];
    };

    // Stream → queue (SPEC §4.2–4.4).
    const enqueueToActivity = (definition: WorkerFunctionArgs["worker"], streamArn: string) =>
      worker({
        worker: definition,
        timeoutSeconds: scoring.enqueueTimeoutSeconds,
        environment: {
          ACTIVITY_QUEUE_URL: queueUrl.activity,
          TABLE_NAME: this.table.name,
          RESCORE_DELAY_DAYS: String(scoring.rescoreDelayDays),
        },
        grants: { lambda_sqs_producer: [this.activityQueue.arn], dynamodb_enqueue_from_streams: [tableArn] },
        policies: kinesisConsumer(streamArn),
        vpc: vpc("enqueue_from_streams_network"),
      });
    const enqueue = {
      vf: worker({
        worker: enqueueFromVfStream,
        timeoutSeconds: scoring.enqueueTimeoutSeconds,
        environment: { ON_DEMAND_QUEUE_URL: queueUrl.onDemand },
        grants: { lambda_sqs_producer: [this.onDemandQueue.arn] },
        policies: kinesisConsumer(region.inputStreams.vfArn),
        vpc: vpc("enqueue_from_streams_network"),
      }),
      demand: enqueueToActivity(enqueueFromDemandStream, region.inputStreams.demandArn),
      purchase: enqueueToActivity(enqueueFromPurchaseStream, region.inputStreams.purchaseArn),
      sqJourney: enqueueToActivity(enqueueFromSQJourneyStream, region.inputStreams.sqJourneyArn),
    };

    const rescore = worker({
      worker: processRescoreEvents,
      timeoutSeconds: scoring.enqueueTimeoutSeconds,
      environment: { ACTIVITY_QUEUE_URL: queueUrl.activity },
      grants: { lambda_sqs_producer: [this.activityQueue.arn] },
      policies: kinesisConsumer(this.tableStream.arn),
      vpc: vpc("enqueue_from_streams_network"),
    });

    // Queue → ARAI → table (SPEC §4.1).
    const lookup = worker({
      worker: lookupArai,
      timeoutSeconds: lookupTimeout,
      memoryMb: 512,
      environment: {
        TABLE_NAME: this.table.name,
        ARAI_URL_TEMPLATE: scoring.arai.urlTemplate,
        ARAI_CREDENTIALS_SECRET_ARN: secrets.arai.arn,
        ARAI_TIMEOUT_MS: String(scoring.arai.timeoutMs),
        ARAI_FRESHNESS_SECONDS: String(scoring.arai.freshnessSeconds),
        ARAI_CONCURRENCY: String(scoring.arai.concurrency),
      },
      grants: { dynamodb_fan_records: [tableArn], arai_credentials: [secrets.arai.arn] },
      policies: { lambda_sqs_consumer: sqsConsumerStatements([this.activityQueue.arn, this.onDemandQueue.arn]) },
      vpc: vpc("network"),
    });

    // Table stream → model → score (SPEC §4.1).
    const scorer = (definition: WorkerFunctionArgs["worker"], model: ScoringConfig["model"]) =>
      worker({
        worker: definition,
        timeoutSeconds: 60,
        memoryMb: 512,
        environment: {
          TABLE_NAME: this.table.name,
          MODEL_URL: model.url,
          MODEL_VERSION: model.version,
          MODEL_TOKEN_SECRET_ARN: secrets.model.arn,
          MODEL_TIMEOUT_MS: String(model.timeoutMs),
          MODEL_BATCH_SIZE: String(scoring.modelBatchSize),
        },
        grants: { dynamodb_write_scores: [tableArn], model_token: [secrets.model.arn] },
        policies: kinesisConsumer(this.tableStream.arn),
        vpc: vpc("network"),
      });
    const scorers = { score: scorer(scoreUsers, scoring.model), staging: scorer(stagingScoreUsers, scoring.stagingModel) };

    // Kafka user activity → queue (SPEC §4.1), when the stack enables Kafka.
    let activity: WorkerFunction | undefined;
    const kafka = scoring.kafka.enabled ? region.kafka : undefined;
    if (kafka) {
      activity = worker({
        worker: enqueueFromActivityStream,
        timeoutSeconds: scoring.enqueueTimeoutSeconds,
        environment: { ACTIVITY_QUEUE_URL: queueUrl.activity },
        grants: { lambda_sqs_producer: [this.activityQueue.arn] },
        policies: { kafka_consumer_policy: kafkaConsumerStatements(kafka.authSecretArn, this.streamFailures.arn) },
      });
      kafkaEventSource(
        `${name}-kafka-to-enqueue`,
        {
          functionName: activity.function.name,
          bootstrapServers: kafka.bootstrapServers,
          topic: kafka.topic,
          consumerGroupId: scoring.kafka.consumerGroupId,
          authType: scoring.kafka.authType,
          authSecretArn: kafka.authSecretArn,
          subnetIds: platform.network.subnetIds("app"),
          securityGroupId: securityGroup.id,
          batchSize: scoring.kafka.batchSize,
          pollers: { minimum: scoring.kafka.minimumPollers, maximum: scoring.kafka.maximumPollers },
          failureQueueArn: this.streamFailures.arn,
          tags,
        },
        { parent: this, dependsOn: activity.policies },
      );
    }

    // The ARM score (SPEC §4.5): answers well inside its 6 s timeout, also with Redis down.
    const arm = worker({
      worker: getArmScore,
      timeoutSeconds: 6,
      environment: {
        ARM_REDIS_URL: region.armRedis.url,
        ...(region.armRedis.readOnlyUrl ? { ARM_REDIS_READ_ONLY_URL: region.armRedis.readOnlyUrl } : {}),
        ARM_REDIS_CLUSTER_MODE: String(region.armRedis.clusterMode),
      },
      vpc: vpc("network"),
    });
    if (args.appsyncApiArn) arm.allowAppSync(`${name}-getArmScore-appsync-invoke`, args.appsyncApiArn, child);

    // Event sources (SPEC §6).
    const fromStream = (mapping: string, fn: WorkerFunction, streamArn: pulumi.Input<string>, filter: object) =>
      kinesisEventSource(
        `${name}-${mapping}`,
        {
          functionName: fn.function.name,
          streamArn,
          batchSize: scoring.streamBatchSize,
          filters: [filter],
          failureQueueArn: this.streamFailures.arn,
          tags,
        },
        { parent: this, dependsOn: fn.policies },
      );
    fromStream("table-to-scoreUsers", scorers.score, this.tableStream.arn, FILTERS.activityData);
    fromStream("table-to-stagingScoreUsers", scorers.staging, this.tableStream.arn, FILTERS.activityData);
    fromStream("table-to-processRescoreEvents", rescore, this.tableStream.arn, FILTERS.rescoreExpired);
    fromStream("vf-to-enqueue", enqueue.vf, region.inputStreams.vfArn, FILTERS.vfLogin);
    fromStream("demand-to-enqueue", enqueue.demand, region.inputStreams.demandArn, FILTERS.demand);
    fromStream("purchase-to-enqueue", enqueue.purchase, region.inputStreams.purchaseArn, FILTERS.successfulPurchase);
    fromStream("sq-journey-to-enqueue", enqueue.sqJourney, region.inputStreams.sqJourneyArn, FILTERS.sqJourney);
    const fromQueue = (mapping: string, queue: Queue) =>
      sqsEventSource(
        `${name}-${mapping}`,
        { functionName: lookup.function.name, queueArn: queue.arn, batchSize: scoring.queueBatchSize, fifo: queue.fifo, tags },
        { parent: this, dependsOn: lookup.policies },
      );
    fromQueue("activity-to-lookupArai", this.activityQueue);
    fromQueue("on-demand-to-lookupArai", this.onDemandQueue);

    this.registerOutputs({
      tableName: this.table.name,
      tableStreamArn: this.tableStream.arn,
      activityQueueUrl: this.activityQueue.url,
      onDemandQueueUrl: this.onDemandQueue.url,
    });
  }
}
