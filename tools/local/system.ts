/**
 * The whole system, locally, built from a stack's offline plan: the local AWS services (each in
 * its own process) with the planned queues, streams and table; the outside services' stand-ins;
 * every planned function as a pool of containers running its real archive; every event source
 * mapping polling its source; asynchronous invocation for the S3 notifications; the gateway for
 * AppSync and the REST API. `startLocalSystem` brings it up, `stop` ends everything it started.
 */
import { KinesisClient, PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { SendMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import * as fs from "node:fs";
import * as path from "node:path";
import { REGISTERED } from "../../workers/registry";
import { extractArchive } from "../offline/archive";
import type { RecordedResource } from "../offline/runtime";
import { type ExternalService, functionEnvironment, type LocalEndpoints } from "./environment";
import { type Gateway, openGateway } from "./gateway";
import { createFunctionPool, type FunctionPool, type InvokeOutcome } from "./lambda/pool";
import type { HostedService } from "./host";
import { hostService, stopAll } from "./processes";
import { createQueues, createStreams, type LocalQueue, streamNames } from "./resources";
import { type AsyncInvoker, createAsyncInvoker, s3Notification } from "./sources/asyncInvoke";
import { createKafkaLog, type KafkaLog, startKafkaMapping } from "./sources/kafka";
import { type RunningMapping, startKinesisMapping } from "./sources/kinesis";
import { createDuplicateDeliveries, type DuplicateDeliveries, startSqsMapping } from "./sources/sqs";
import type { Report, WrapEndpoint } from "./types";
import { type Mapping, nameOfArn, type PlannedFunction, readWiring, type StreamMapping, type Wiring } from "./wiring";

const credentials = { accessKeyId: "local", secretAccessKey: "local" };

export interface LocalSystemOptions {
  /** The planned resources (an offline run's). */
  readonly resources: readonly RecordedResource[];
  readonly accountId: string;
  /** Where archives, logs and service state go. */
  readonly dataDir: string;
  readonly report: Report;
  /** Shards of each Kinesis stream. @default 2 */
  readonly shards?: number;
  /** Partitions of the Kafka topic. @default 4 */
  readonly partitions?: number;
  /** Containers per function at most. @default 4 */
  readonly concurrency?: number;
  /** Pollers per SQS mapping. @default 2 */
  readonly sqsPollers?: number;
  /** Delay before the first retry of an asynchronous invocation. @default 1000 */
  readonly asyncRetryDelayMs?: number;
  /** Run only these workers' functions (and their mappings). @default every planned function */
  readonly workers?: readonly string[];
  /** Start the event source mappings. @default true */
  readonly mappings?: boolean;
  /** Starts the outside services' stand-ins once the AWS services run. */
  readonly standIns: (context: StandInContext) => Promise<StandIns>;
  /**
   * Puts something in front of dynalite, kinesalite and the local SQS (a benchmark's counting
   * proxy): every client of theirs, the workers, the mappings and the table endpoint, uses the URL
   * it answers. @default none
   */
  readonly wrapEndpoint?: WrapEndpoint;
}

export interface StandInContext {
  readonly wiring: Wiring;
  readonly dataDir: string;
  readonly report: Report;
  readonly sqs: SQSClient;
  readonly dynamoUrl: string;
  /** Gateway's port, chosen before the stand-ins start (Persona sends webhooks to it). */
  readonly gatewayPort: number;
  /** Puts records on a local Kinesis stream (PutRecords, at most 500 a call). */
  readonly putRecords: (streamName: string, entries: { PartitionKey: string; Data: Uint8Array }[]) => Promise<void>;
}

export interface StandIns {
  /** The endpoint the workers use for DynamoDB (the table with its change stream). */
  readonly dynamodbUrl: string;
  readonly secretsManagerUrl: string;
  readonly glueUrl: string;
  readonly origins: Readonly<Record<ExternalService, string>>;
  close(): Promise<void>;
}

export interface LocalSystem {
  readonly wiring: Wiring;
  readonly dataDir: string;
  readonly sqs: SQSClient;
  readonly kinesis: KinesisClient;
  readonly dynamoUrl: string;
  /**
   * Where an AWS SDK client reaches the local services, as `AWS_ENDPOINT_URL_<SERVICE>` takes it:
   * SQS, Kinesis, and Lambda's Invoke API (on the gateway).
   */
  readonly endpoints: { readonly sqs: string; readonly kinesis: string; readonly lambda: string };
  readonly standIns: StandIns;
  readonly gateway: Gateway;
  readonly queues: ReadonlyMap<string, LocalQueue>;
  readonly pools: ReadonlyMap<string, FunctionPool>;
  readonly kafka?: KafkaLog;
  invoke(functionName: string, event: unknown): Promise<InvokeOutcome>;
  /** Delivers an S3 notification for `key` in `bucketArn` to every function the bucket may invoke. */
  notifyS3(bucketArn: string, key: string): Promise<void>;
  /** Records read from sources and not yet done, plus asynchronous invocations in progress. */
  pending(): number;
  /** The SQS mappings' switch for delivering a share of standard queues' messages twice (off). */
  readonly duplicateDeliveries: DuplicateDeliveries;
  stop(): Promise<void>;
}

async function startAws(dataDir: string, wrap: WrapEndpoint = async (_name, url) => url) {
  const hosted = async (name: HostedService) => wrap(name, (await hostService(name)).url);
  const [dynamoUrl, kinesisUrl, sqsUrl] = await Promise.all([hosted("dynamodb"), hosted("kinesis"), hosted("sqs")]);
  const kinesis = new KinesisClient({
    endpoint: kinesisUrl,
    region: "us-east-1",
    credentials,
    // kinesalite speaks HTTP/1.1 only.
    requestHandler: new NodeHttpHandler(),
  });
  const sqs = new SQSClient({ endpoint: sqsUrl, region: "us-east-1", credentials });
  fs.mkdirSync(dataDir, { recursive: true });
  return { dynamoUrl: dynamoUrl, kinesis, sqs, sqsUrl: sqsUrl, kinesisUrl };
}

/** Writes every function's archive under `dataDir/archives/<worker>`; answers the directories by function name. */
async function writeArchives(wiring: Wiring, dataDir: string): Promise<Map<string, string>> {
  const archives = new Map<string, string>();
  for (const fn of wiring.functions) {
    archives.set(fn.name, await extractArchive(fn.code, fn.worker, path.join(dataDir, "archives", fn.worker), { link: true }));
  }
  return archives;
}

function mappingConcurrency(mapping: Mapping, options: LocalSystemOptions): number {
  if (mapping.kind === "kinesis") return options.shards ?? 2;
  if (mapping.kind === "kafka") return options.partitions ?? 4;
  return options.sqsPollers ?? 2;
}

function startPools(
  wiring: Wiring,
  archives: Map<string, string>,
  endpoints: LocalEndpoints,
  options: LocalSystemOptions,
): Map<string, FunctionPool> {
  const logs = path.join(options.dataDir, "logs");
  fs.mkdirSync(logs, { recursive: true });
  const pools = new Map<string, FunctionPool>();
  for (const fn of wiring.functions) {
    const dir = archives.get(fn.name)!;
    const demand = wiring.mappings
      .filter((mapping) => mapping.functionName === fn.name)
      .reduce((sum, mapping) => sum + mappingConcurrency(mapping, options), 0);
    pools.set(
      fn.name,
      createFunctionPool({
        fn,
        dir,
        env: functionEnvironment(fn, endpoints, dir),
        maxContainers: Math.max(1, Math.min(options.concurrency ?? 4, demand || 2)),
        report: options.report,
        logFile: path.join(logs, `${fn.worker}.log`),
      }),
    );
  }
  return pools;
}

interface MappingContext {
  readonly wiring: Wiring;
  readonly pools: Map<string, FunctionPool>;
  readonly queues: Map<string, LocalQueue>;
  readonly kinesis: KinesisClient;
  readonly sqs: SQSClient;
  readonly kafka?: KafkaLog;
  readonly sendFailure: (destinationArn: string, record: object) => Promise<void>;
  readonly duplicates: DuplicateDeliveries;
}

async function startMapping(mapping: Mapping, context: MappingContext, options: LocalSystemOptions): Promise<RunningMapping> {
  const pool = context.pools.get(mapping.functionName);
  if (!pool) throw new Error(`mapping ${mapping.name}: function ${mapping.functionName} is not planned`);
  const common = { fn: pool.fn, invoke: (event: unknown) => pool.invoke(event), report: options.report };
  if (mapping.kind === "sqs") {
    const queue = context.queues.get(mapping.queueArn);
    if (!queue) throw new Error(`mapping ${mapping.name}: queue ${mapping.queueArn} is not planned`);
    return startSqsMapping({
      ...common,
      mapping,
      sqs: context.sqs,
      queueUrl: queue.url,
      pollers: options.sqsPollers ?? 2,
      duplicates: context.duplicates,
    });
  }
  if (mapping.kind === "kafka") {
    return startKafkaMapping({ ...common, mapping, log: context.kafka!, sendFailure: context.sendFailure });
  }
  return startKinesisMapping({
    ...common,
    mapping,
    kinesis: context.kinesis,
    streamName: nameOfArn(mapping.streamArn!),
    sendFailure: context.sendFailure,
  });
}

/** The wiring with only `workers`' functions and mappings (all of them when not given). */
function selectWorkers(wiring: Wiring, workers?: readonly string[]): Wiring {
  if (!workers) return wiring;
  const unknown = workers.filter((worker) => !wiring.functions.some((fn) => fn.worker === worker));
  if (unknown.length > 0) {
    const planned = wiring.functions.map((fn) => fn.worker).join(", ");
    throw new Error(`no planned function for ${unknown.join(", ")}; the stack plans ${planned}`);
  }
  const functions = wiring.functions.filter((fn) => workers.includes(fn.worker));
  const names = new Set(functions.map((fn) => fn.name));
  return { ...wiring, functions, mappings: wiring.mappings.filter((mapping) => names.has(mapping.functionName)) };
}

/** Brings the whole system up; on failure, ends what it had started and throws. */
export async function startLocalSystem(options: LocalSystemOptions): Promise<LocalSystem> {
  const wiring = selectWorkers(readWiring(options.resources), options.workers);
  /** What runs in this process and must be closed if the system fails to start. */
  const opens: { close(): Promise<void> }[] = [];
  try {
    return await assemble(wiring, options, opens);
  } catch (error) {
    await Promise.all(opens.map((open) => open.close()));
    await stopAll();
    throw error;
  }
}

async function assemble(wiring: Wiring, options: LocalSystemOptions, opens: { close(): Promise<void> }[]): Promise<LocalSystem> {
  const { report, dataDir } = options;
  const aws = await startAws(dataDir, options.wrapEndpoint);
  const queues = await createQueues(aws.sqs, wiring.queues);
  await createStreams(aws.kinesis, streamNames(wiring), options.shards ?? 2);
  const putRecords = async (streamName: string, entries: { PartitionKey: string; Data: Uint8Array }[]) => {
    for (let at = 0; at < entries.length; at += 500) {
      const answer = await aws.kinesis.send(
        new PutRecordsCommand({ StreamName: streamName, Records: entries.slice(at, at + 500) }),
      );
      if (answer.FailedRecordCount) throw new Error(`${streamName}: ${answer.FailedRecordCount} records not put`);
    }
  };
  // Listening before the stand-ins start, which need its port: a port only chosen here could be
  // taken by another listener (or an outgoing connection) by the time the gateway listened.
  const opened = await openGateway();
  opens.push(opened);
  const standIns = await options.standIns({
    wiring,
    dataDir,
    report,
    sqs: aws.sqs,
    dynamoUrl: aws.dynamoUrl,
    gatewayPort: opened.port,
    putRecords,
  });
  const endpoints: LocalEndpoints = {
    dynamodb: standIns.dynamodbUrl,
    sqs: aws.sqsUrl,
    secretsManager: standIns.secretsManagerUrl,
    glue: standIns.glueUrl,
    queueUrls: new Map([...queues.values()].map((queue) => [queue.planned.url, queue.url])),
    origins: standIns.origins,
  };
  const archives = await writeArchives(wiring, dataDir);
  const pools = startPools(wiring, archives, endpoints, options);
  const sendFailure = async (destinationArn: string, record: object) => {
    const queue = queues.get(destinationArn);
    if (!queue) throw new Error(`on-failure destination ${destinationArn} is not a planned queue`);
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify(record) }));
  };
  const kafkaMapping = wiring.mappings.find((mapping): mapping is StreamMapping => mapping.kind === "kafka");
  const kafka = kafkaMapping?.topic ? createKafkaLog(kafkaMapping.topic, options.partitions ?? 4) : undefined;
  const duplicates = createDuplicateDeliveries();
  const context: MappingContext = { wiring, pools, queues, kinesis: aws.kinesis, sqs: aws.sqs, kafka, sendFailure, duplicates };
  const mappings: RunningMapping[] = [];
  if (options.mappings !== false) {
    for (const mapping of wiring.mappings) mappings.push(await startMapping(mapping, context, options));
  }

  const invoke = (functionName: string, event: unknown) => {
    const pool = pools.get(functionName);
    if (!pool) return Promise.reject(new Error(`no planned function ${functionName}`));
    return pool.invoke(event);
  };
  const asyncInvokers = new Map<string, AsyncInvoker>(
    wiring.functions.map((fn: PlannedFunction) => [
      fn.name,
      createAsyncInvoker({
        fn,
        config: wiring.asyncConfigs.find((config) => config.functionName === fn.name),
        invoke: (event) => invoke(fn.name, event),
        sendFailure,
        report,
        retryDelayMs: options.asyncRetryDelayMs ?? 1000,
      }),
    ]),
  );
  const authorizer = wiring.functions.find(
    (fn) => REGISTERED.find((entry) => entry.name === fn.worker)?.trigger.kind === "appsyncAuthorizer",
  );
  const gateway = opened.serve({
    wiring,
    invoke,
    invokeAsync: (functionName, event) => asyncInvokers.get(functionName)!.invokeAsync(event),
    authorizer: authorizer?.name,
    accountId: options.accountId,
  });

  let stopped: Promise<void> | undefined;
  return {
    wiring,
    dataDir,
    sqs: aws.sqs,
    kinesis: aws.kinesis,
    dynamoUrl: aws.dynamoUrl,
    endpoints: { sqs: aws.sqsUrl, kinesis: aws.kinesisUrl, lambda: gateway.url },
    standIns,
    gateway,
    queues,
    pools,
    kafka,
    invoke,
    async notifyS3(bucketArn, key) {
      const targets = wiring.grants.filter((grant) => grant.principal === "s3.amazonaws.com" && grant.sourceArn === bucketArn);
      await Promise.all(
        targets.map((grant) => {
          const fn = pools.get(grant.functionName)!.fn;
          return asyncInvokers.get(fn.name)!.invokeAsync(s3Notification(bucketArn, key, fn.region));
        }),
      );
    },
    duplicateDeliveries: duplicates,
    pending: () =>
      mappings.reduce((sum, mapping) => sum + mapping.pending(), 0) +
      [...asyncInvokers.values()].reduce((sum, invoker) => sum + invoker.pending(), 0),
    stop() {
      stopped ??= (async () => {
        const mappingsStopped = Promise.all(mappings.map((mapping) => mapping.stop()));
        await Promise.all([...pools.values()].map((pool) => pool.close()));
        await mappingsStopped;
        await gateway.close();
        await standIns.close();
        aws.sqs.destroy();
        aws.kinesis.destroy();
        await stopAll();
      })();
      return stopped;
    },
  };
}
