/**
 * The scoring stack of one region (docs/flows.md): the fan-identity table and its change stream,
 * the account-activity FIFO queue and the on-demand queue, and the workers between them.
 *
 *   input streams ─▶ enqueue workers ─▶ account-activity FIFO / on-demand queue ─▶ lookupArai
 *   lookupArai ─▶ fan-identity table ─▶ table stream ─▶ scoreUsers, stagingScoreUsers
 *   rescore TTL deletions ─▶ table stream ─▶ processRescoreEvents ─▶ account-activity FIFO
 *   Kafka user-activity topic ─▶ enqueueFromActivityStream ─▶ account-activity FIFO (when enabled)
 *   getArmScore: the ARM team's Redis, for direct invocations and AppSync
 *
 * Which worker reads which stream, with which filter, comes from the worker registry
 * (workers/registry.ts); this stack binds each kind of trigger to the region's resources.
 * Instantiated once per region, each with its own regional platform.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Component } from "../components/component";
import {
  kafkaConsumerStatements,
  kafkaEventSource,
  kinesisConsumerStatements,
  kinesisEventSource,
  sqsConsumerStatements,
  sqsEventSource,
} from "../components/eventSources";
import type { Statement } from "../components/iam";
import { type Destination, destinationsOf } from "../components/network";
import type { RegionalPlatform } from "../components/platform";
import { Queue } from "../components/queue";
import { SecretDocument } from "../components/secretDocument";
import { type LogShippingTarget, WorkerFunction, type WorkerFunctionArgs } from "../components/workerFunction";
import { type EventFilter, INPUT_STREAM_WORKERS, type InputStreamTrigger, WORKERS } from "../workers/registry";
import { KEY, TTL_ATTRIBUTE } from "../workers/shared/scoring/table";
import type { StackConfig } from "./config";

type ScoringConfig = StackConfig["scoring"];
type RegionConfig = ScoringConfig["east"];

export interface ScoringStackArgs {
  /** The region the stack deploys to: its provider, naming, tags and network tiers. */
  readonly platform: RegionalPlatform;
  /** The scoring settings every region shares (batch sizes, timeouts, the ARAI API, the models, Kafka). */
  readonly scoring: ScoringConfig;
  /** This region's own settings: its input streams, its Kafka topic, its ARM Redis. */
  readonly region: RegionConfig;
  /** The accounts ARAI API's `{username, password, clientId}` (a Pulumi secret). */
  readonly araiCredentials: pulumi.Input<Record<string, string>>;
  /** The model-serving bearer token (a Pulumi secret). */
  readonly modelServingToken: pulumi.Input<string>;
  /**
   * The AppSync API allowed to invoke getArmScore.
   * @default none: only direct invocations
   */
  readonly appsyncApiArn?: string;
  /**
   * Where every worker's log group is subscribed.
   * @default none: the logs stay in CloudWatch
   */
  readonly logShipping?: LogShippingTarget;
}

/** The ARM Redis at `url`, reached inside the VPC on its port (Redis's 6379 unless the URL says). */
function redisDestination(url: string): Destination {
  return { kind: "vpc", what: "Redis", port: Number(new URL(url).port || 6379) };
}

/** lookupArai's timeout; the queues it consumes keep messages invisible six times as long. */
const LOOKUP_TIMEOUT_SECONDS = 60;

/** The kebab-case stream name in a mapping's logical name: `sqJourneyArn` → `sq-journey`. */
const streamLabel = (stream: InputStreamTrigger["stream"]) =>
  stream.replace(/Arn$/, "").replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);

export class ScoringStack extends Component {
  readonly table: aws.dynamodb.Table;
  readonly tableStream: aws.kinesis.Stream;
  readonly activityQueue: Queue;
  readonly onDemandQueue: Queue;
  readonly streamFailures: Queue;
  private readonly deployed: Record<string, WorkerFunction> = {};
  private readonly args: ScoringStackArgs;
  private readonly secrets: { readonly arai: SecretDocument; readonly model: SecretDocument };
  private readonly securityGroup: aws.ec2.SecurityGroup;

  constructor(name: string, args: ScoringStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:stacks:ScoringStack", name, args.platform, opts);
    this.args = args;
    ({ table: this.table, tableStream: this.tableStream } = this.createTable());
    ({
      activityQueue: this.activityQueue,
      onDemandQueue: this.onDemandQueue,
      streamFailures: this.streamFailures,
    } = this.createQueues());
    this.secrets = this.createSecrets();
    this.securityGroup = this.createSecurityGroup();
    this.createInputStreamWorkers();
    this.createTableStreamWorkers();
    this.createLookup();
    this.createKafkaConsumer();
    this.createArmScore();

    this.registerOutputs({
      tableName: this.table.name,
      tableStreamArn: this.tableStream.arn,
      activityQueueUrl: this.activityQueue.url,
      onDemandQueueUrl: this.onDemandQueue.url,
    });
  }

  /** The stack's workers, by name. */
  get workers(): Readonly<Record<string, WorkerFunction>> {
    return this.deployed;
  }

  /** The table and its change stream (docs/data-model.md). */
  private createTable() {
    const { platform } = this;
    const tableName = platform.name("fan-identity-table", "dynamodbTable");
    const tableStream = new aws.kinesis.Stream(
      this.childName("table-stream"),
      {
        name: platform.name("fan-identity-table-stream", "kinesisStream"),
        streamModeDetails: { streamMode: "ON_DEMAND" },
        encryptionType: "KMS",
        kmsKeyId: "alias/aws/kinesis",
        retentionPeriod: 24,
        tags: platform.tags,
      },
      this.child,
    );
    const table = new aws.dynamodb.Table(
      this.childName("table"),
      {
        name: tableName,
        billingMode: "PAY_PER_REQUEST",
        hashKey: KEY,
        attributes: [{ name: KEY, type: "S" }],
        ttl: { attributeName: TTL_ATTRIBUTE, enabled: true },
        pointInTimeRecovery: { enabled: true },
        serverSideEncryption: { enabled: true },
        deletionProtectionEnabled: true,
        tags: platform.tags,
      },
      this.child,
    );
    new aws.dynamodb.KinesisStreamingDestination(
      this.childName("table-streaming"),
      { tableName: table.name, streamArn: tableStream.arn, approximateCreationDateTimePrecision: "MILLISECOND" },
      this.child,
    );
    platform.flows.tableStreams.push({ tableName, streamArn: tableStream.arn });
    return { table, tableStream };
  }

  private createQueues() {
    const { platform } = this;
    const queue = (role: string, args: Omit<ConstructorParameters<typeof Queue>[1], "platform">) =>
      new Queue(this.childName(role), { platform, ...args }, this.child);
    return {
      activityQueue: queue("activity", { name: "acct-activity-sqs", fifo: true, consumerTimeoutSeconds: LOOKUP_TIMEOUT_SECONDS }),
      onDemandQueue: queue("on-demand", { name: "on-demand-scoring-sqs", consumerTimeoutSeconds: LOOKUP_TIMEOUT_SECONDS }),
      // Kinesis and Kafka mappings send the records whose retries are spent here, and their consumers
      // the poison records they park themselves (docs/flows.md#event-sources).
      streamFailures: queue("stream-failures", { name: "scoring-stream-failures-sqs", retentionDays: 14, deadLetter: false }),
    };
  }

  private createSecrets() {
    const { platform } = this;
    const document = (role: string, name: string, description: string, value: pulumi.Input<Record<string, unknown>>) =>
      new SecretDocument(this.childName(role), { platform, name, description, document: value }, this.child);
    return {
      arai: document(
        "arai-credentials",
        "arai-credentials",
        "Basic credentials and client id of the accounts ARAI API",
        this.args.araiCredentials,
      ),
      model: document("model-token", "model-serving-token", "Bearer token of the Databricks model-serving endpoints", {
        token: this.args.modelServingToken,
      }),
    };
  }

  /** The workers run in the app tier: they reach the accounts APIs, the model endpoints, Redis and Kafka. */
  private createSecurityGroup(): aws.ec2.SecurityGroup {
    return this.platform.network.securityGroup(
      this.childName("workers-sg"),
      {
        name: this.platform.name("scoring-workers", "securityGroup"),
        description: "Scoring workers: outbound only",
        tags: this.platform.tags,
      },
      this.child,
    );
  }

  /** Every input-stream worker of the registry whose stream the region configures, and its mapping. */
  private createInputStreamWorkers(): void {
    const { scoring, region } = this.args;
    for (const { worker, trigger } of INPUT_STREAM_WORKERS) {
      const streamArn = region.inputStreams[trigger.stream];
      if (!streamArn) {
        pulumi.log.info(`${this.logicalName}: no ${trigger.stream} configured, so ${worker.contract.name} is not deployed`, this);
        continue;
      }
      const binding = this.queueBinding(trigger.queue);
      const fn = this.deploy({
        worker,
        timeoutSeconds: scoring.enqueueTimeoutSeconds,
        environment: { ...binding.environment, ...this.parkingBinding().environment },
        grants: { ...binding.grants, ...this.parkingBinding().grants },
        policies: this.kinesisConsumer(streamArn),
        vpc: this.vpc("enqueue_from_streams_network"),
      });
      this.fromStream(`${streamLabel(trigger.stream)}-to-enqueue`, fn, streamArn, trigger.filter);
    }
  }

  /**
   * What a stream consumer parking its poison records reads and may do: the failure queue its
   * mapping's onFailure names (workers/shared/runtime/parking.ts).
   */
  private parkingBinding() {
    return {
      environment: { FAILURE_QUEUE_URL: this.streamFailures.url },
      grants: { parked_records_producer: [this.streamFailures.arn] },
    };
  }

  /** What a worker sending fans to `queue` reads and may do. */
  private queueBinding(queue: InputStreamTrigger["queue"]): Required<Pick<WorkerFunctionArgs, "environment" | "grants">> {
    if (queue === "onDemand") {
      return {
        environment: { ON_DEMAND_QUEUE_URL: this.onDemandQueue.url },
        grants: { lambda_sqs_producer: [this.onDemandQueue.arn] },
      };
    }
    return {
      environment: {
        ACTIVITY_QUEUE_URL: this.activityQueue.url,
        TABLE_NAME: this.table.name,
        RESCORE_DELAY_DAYS: String(this.args.scoring.rescoreDelayDays),
      },
      grants: { lambda_sqs_producer: [this.activityQueue.arn], dynamodb_enqueue_from_streams: [this.table.arn] },
    };
  }

  /** The table stream's consumers: the rescores TTL expires, and the two scorers (docs/flows.md#scoring). */
  private createTableStreamWorkers(): void {
    const { scoring } = this.args;
    const rescore = this.deploy({
      worker: WORKERS.processRescoreEvents.worker,
      timeoutSeconds: scoring.enqueueTimeoutSeconds,
      environment: { ACTIVITY_QUEUE_URL: this.activityQueue.url, ...this.parkingBinding().environment },
      grants: { lambda_sqs_producer: [this.activityQueue.arn], ...this.parkingBinding().grants },
      policies: this.kinesisConsumer(this.tableStream.arn),
      vpc: this.vpc("enqueue_from_streams_network"),
    });
    const scorer = (entry: (typeof WORKERS)["scoreUsers" | "stagingScoreUsers"], model: ScoringConfig["model"]) =>
      this.deploy({
        worker: entry.worker,
        timeoutSeconds: 60,
        memoryMb: 512,
        environment: {
          TABLE_NAME: this.table.name,
          MODEL_URL: model.url,
          MODEL_VERSION: model.version,
          MODEL_TOKEN_SECRET_ARN: this.secrets.model.arn,
          MODEL_TIMEOUT_MS: String(model.timeoutMs),
          MODEL_BATCH_SIZE: String(scoring.modelBatchSize),
          ...this.parkingBinding().environment,
        },
        grants: {
          dynamodb_write_scores: [this.table.arn],
          model_token: [this.secrets.model.arn],
          ...this.parkingBinding().grants,
        },
        policies: this.kinesisConsumer(this.tableStream.arn),
        vpc: this.vpc("network"),
      });
    const stream = (mapping: string, fn: WorkerFunction, filter: EventFilter) =>
      this.fromStream(mapping, fn, this.tableStream.arn, filter);
    stream("table-to-scoreUsers", scorer(WORKERS.scoreUsers, scoring.model), WORKERS.scoreUsers.trigger.filter);
    stream(
      "table-to-stagingScoreUsers",
      scorer(WORKERS.stagingScoreUsers, scoring.stagingModel),
      WORKERS.stagingScoreUsers.trigger.filter,
    );
    stream("table-to-processRescoreEvents", rescore, WORKERS.processRescoreEvents.trigger.filter);
  }

  /**
   * Both queues → ARAI → the fan record (docs/flows.md#arai-lookup). lookupArai parks the messages
   * it gives up on in their queue's dead-letter queue itself, so it may send there, and only there.
   */
  private createLookup(): void {
    const { scoring } = this.args;
    const queues = [this.activityQueue, this.onDemandQueue];
    const deadLetterQueues = queues.map((queue) => {
      if (!queue.deadLetterQueue)
        throw new Error(`${this.logicalName}: ${queue.queueName} has no dead-letter queue for lookupArai to park in`);
      return { source: queue.arn, arn: queue.deadLetterQueue.arn, url: queue.deadLetterQueue.url };
    });
    const lookup = this.deploy({
      worker: WORKERS.lookupArai.worker,
      timeoutSeconds: LOOKUP_TIMEOUT_SECONDS,
      memoryMb: 512,
      environment: {
        TABLE_NAME: this.table.name,
        ARAI_URL_TEMPLATE: scoring.arai.urlTemplate,
        ARAI_CREDENTIALS_SECRET_ARN: this.secrets.arai.arn,
        ARAI_TIMEOUT_MS: String(scoring.arai.timeoutMs),
        ARAI_FRESHNESS_SECONDS: String(scoring.arai.freshnessSeconds),
        ARAI_CONCURRENCY: String(scoring.arai.concurrency),
        DEAD_LETTER_QUEUE_URLS: pulumi
          .all(deadLetterQueues.map(({ source, url }) => pulumi.all([source, url])))
          .apply((pairs) => JSON.stringify(Object.fromEntries(pairs))),
      },
      grants: {
        dynamodb_fan_records: [this.table.arn],
        arai_credentials: [this.secrets.arai.arn],
        dead_letter_queues: deadLetterQueues.map((queue) => queue.arn),
      },
      policies: { lambda_sqs_consumer: sqsConsumerStatements(queues.map((queue) => queue.arn)) },
      vpc: this.vpc("network"),
    });
    for (const [mapping, queue] of [
      ["activity-to-lookupArai", this.activityQueue],
      ["on-demand-to-lookupArai", this.onDemandQueue],
    ] as const) {
      sqsEventSource(
        this.childName(mapping),
        {
          consumer: lookup,
          queueArn: queue.arn,
          batchSize: scoring.queueBatchSize,
          fifo: queue.fifo,
          tags: this.platform.tags,
        },
        { parent: this, dependsOn: lookup.policies },
      );
    }
  }

  /** Kafka user activity → the account-activity queue, when the stack enables Kafka. */
  private createKafkaConsumer(): void {
    const { scoring, region } = this.args;
    const kafka = scoring.kafka.enabled ? region.kafka : undefined;
    if (!kafka) return;
    const consumer = this.deploy({
      worker: WORKERS.enqueueFromActivityStream.worker,
      timeoutSeconds: scoring.enqueueTimeoutSeconds,
      environment: { ACTIVITY_QUEUE_URL: this.activityQueue.url, ...this.parkingBinding().environment },
      grants: { lambda_sqs_producer: [this.activityQueue.arn], ...this.parkingBinding().grants },
      policies: { kafka_consumer_policy: kafkaConsumerStatements(kafka.authSecretArn, this.streamFailures.arn) },
    });
    kafkaEventSource(
      this.childName("kafka-to-enqueue"),
      {
        consumer,
        bootstrapServers: kafka.bootstrapServers,
        topic: kafka.topic,
        consumerGroupId: scoring.kafka.consumerGroupId,
        authType: scoring.kafka.authType,
        authSecretArn: kafka.authSecretArn,
        subnetIds: this.platform.network.subnetIds("app"),
        securityGroupId: this.securityGroup.id,
        batchSize: scoring.kafka.batchSize,
        pollers: { minimum: scoring.kafka.minimumPollers, maximum: scoring.kafka.maximumPollers },
        failureQueueArn: this.streamFailures.arn,
        tags: this.platform.tags,
      },
      { parent: this, dependsOn: consumer.policies },
    );
  }

  /** The ARM score (docs/flows.md#arm-score): answers well inside its 6 s timeout, also with Redis down. */
  private createArmScore(): void {
    const { region, appsyncApiArn } = this.args;
    const arm = this.deploy(
      {
        worker: WORKERS.getArmScore.worker,
        timeoutSeconds: 6,
        environment: {
          ARM_REDIS_URL: region.armRedis.url,
          ...(region.armRedis.readOnlyUrl ? { ARM_REDIS_READ_ONLY_URL: region.armRedis.readOnlyUrl } : {}),
          ARM_REDIS_CLUSTER_MODE: String(region.armRedis.clusterMode),
        },
        vpc: this.vpc("network"),
      },
      [region.armRedis.url, region.armRedis.readOnlyUrl].filter((url) => url !== undefined).map(redisDestination),
    );
    if (appsyncApiArn) arm.allowAppSync(this.childName("getArmScore-appsync-invoke"), appsyncApiArn, this.child);
  }

  /**
   * One worker of the stack, named after it, its logs shipped where the region's go. A worker in
   * the app tier is placed with the network, with what its contract calls and `inVpc`, the
   * services inside the VPC it reaches.
   */
  private deploy(workerArgs: Omit<WorkerFunctionArgs, "platform">, inVpc: readonly Destination[] = []): WorkerFunction {
    const { contract } = workerArgs.worker;
    const fn = new WorkerFunction(
      this.childName(contract.name),
      { platform: this.platform, logShipping: this.args.logShipping, ...workerArgs },
      this.child,
    );
    this.deployed[contract.name] = fn;
    if (workerArgs.vpc) {
      this.platform.network.place({
        workerName: contract.name,
        securityGroup: this.securityGroup,
        destinations: [...destinationsOf(contract), ...inVpc],
      });
    }
    return fn;
  }

  /** A worker placed in the app tier, with the inline policy letting Lambda manage its network interfaces. */
  private vpc(policyName: string): NonNullable<WorkerFunctionArgs["vpc"]> {
    return { subnetIds: this.platform.network.subnetIds("app"), securityGroupIds: [this.securityGroup.id], policyName };
  }

  /** What a consumer of `streamArn` needs, including sending what it gave up on to the failure queue. */
  private kinesisConsumer(streamArn: pulumi.Input<string>): Record<string, Statement[]> {
    return { fan_identity_kinesis_consumer_policy: kinesisConsumerStatements([streamArn], this.streamFailures.arn) };
  }

  /** A Kinesis mapping with the error handling every stream source gets (components/eventSources.ts). */
  private fromStream(mapping: string, fn: WorkerFunction, streamArn: pulumi.Input<string>, filter: EventFilter): void {
    kinesisEventSource(
      this.childName(mapping),
      {
        consumer: fn,
        streamArn,
        batchSize: this.args.scoring.streamBatchSize,
        filters: [filter],
        failureQueueArn: this.streamFailures.arn,
        tags: this.platform.tags,
      },
      { parent: this, dependsOn: fn.policies },
    );
  }
}
