/**
 * A run of the local system: plan the stack, bring the system up, drive traffic through it,
 * show the figures, and, for a bounded run, wait until everything in flight is done, reconcile
 * every input in a ledger and print the summary. `npm start` and the end-to-end tests both run
 * through here.
 */
import { PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { GetQueueAttributesCommand, type Message, ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createDocumentClient } from "../../workers/shared/runtime/dynamo";
import { INPUT_STREAM_WORKERS } from "../../workers/registry";
import type { RecordedResource } from "../offline/runtime";
import { type Display, createDisplay } from "./display";
import { type Figures, createFigures, type FiguresSnapshot } from "./figures";
import {
  type Ledger,
  type ParkedRecords,
  parkedFromKinesisFailure,
  parkedFromParkedRecord,
  reconcile,
  type StoredScore,
  type WorkerFailure,
} from "./ledger";
import { expectedScore } from "./services/modelServing";
import { type LocalStandIns, startStandIns } from "./standIns";
import { type LocalSystem, startLocalSystem } from "./system";
import type { TableChange } from "./table/streamingDestination";
import { createGenerator, type Generator, type GeneratorOptions } from "./traffic/generator";
import type { KinesisRole } from "./traffic/payloads";
import type { LocalEvent, Report, WrapEndpoint } from "./types";
import { nameOfArn, type Wiring } from "./wiring";

export interface RunOptions {
  readonly resources: readonly RecordedResource[];
  readonly accountId: string;
  readonly dataDir: string;
  /** Stop sending after this long, then drain and reconcile; without it, run until `signal` aborts. */
  readonly durationMs?: number;
  readonly rate: number;
  readonly badRate?: number;
  /** Share of events per input, as the generator takes it (`GeneratorOptions.mix`). @default DEFAULT_MIX */
  readonly mix?: GeneratorOptions["mix"];
  readonly fans?: number;
  readonly seed?: number | string;
  readonly clockSpeed?: number;
  readonly signingKeyId?: string;
  readonly signal?: AbortSignal;
  /** Where the panel goes; none: no panel. */
  readonly output?: NodeJS.WriteStream;
  /** Longest wait for the system to finish what is in flight after a bounded run. @default 300000 */
  readonly drainTimeoutMs?: number;
  /** Sees every event as it happens (tests). */
  readonly onEvent?: Report;
  /** Called once the system is up, before traffic starts (tests drive it from here). */
  readonly onStarted?: (system: RunningSystem) => void | Promise<void>;
  /** Puts something in front of the services (a benchmark's counting proxy; system.ts, standIns.ts). @default none */
  readonly wrapEndpoint?: WrapEndpoint;
  /** Shards per Kinesis stream, partitions of the Kafka topic. */
  readonly shards?: number;
  readonly partitions?: number;
}

export interface RunningSystem {
  readonly system: LocalSystem;
  readonly standIns: LocalStandIns;
  readonly generator: Generator;
  readonly figures: Figures;
}

export interface RunResult {
  readonly figures: FiguresSnapshot;
  readonly ledger?: Ledger;
}

/** The stream each input role's mapping reads, from the registry's triggers and the plan's mappings. */
function inputStreams(wiring: Wiring): Partial<Record<KinesisRole, string>> {
  const streams: Partial<Record<KinesisRole, string>> = {};
  for (const entry of INPUT_STREAM_WORKERS) {
    const fn = wiring.functions.find((candidate) => candidate.worker === entry.name);
    const mapping = wiring.mappings.find((candidate) => candidate.functionName === fn?.name && candidate.kind === "kinesis");
    if (mapping?.kind === "kinesis" && mapping.streamArn) {
      streams[entry.trigger.stream.replace(/Arn$/, "") as KinesisRole] = nameOfArn(mapping.streamArn);
    }
  }
  return streams;
}

/** The queues Lambda or SQS park records in: on-failure destinations and dead-letter queues. */
function parkingQueues(wiring: Wiring): Set<string> {
  return new Set([
    ...wiring.mappings.flatMap((mapping) => (mapping.kind !== "sqs" && mapping.onFailureArn ? [mapping.onFailureArn] : [])),
    ...wiring.queues.flatMap((queue) => (queue.redrive ? [queue.redrive.deadLetterTargetArn] : [])),
    ...wiring.asyncConfigs.flatMap((config) => (config.onFailureArn ? [config.onFailureArn] : [])),
  ]);
}

async function queueDepths(system: LocalSystem, arns: ReadonlySet<string>): Promise<Record<string, number>> {
  const depths: Record<string, number> = {};
  for (const arn of arns) {
    const queue = system.queues.get(arn);
    if (!queue) continue;
    const { Attributes } = await system.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: queue.url,
        AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
      }),
    );
    depths[queue.planned.name] =
      Number(Attributes?.ApproximateNumberOfMessages ?? 0) + Number(Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0);
  }
  return depths;
}

/** Reads every message of a queue without taking it away for good (they come back after ten minutes). */
async function peekAll(sqs: SQSClient, url: string): Promise<Message[]> {
  const messages: Message[] = [];
  for (;;) {
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, VisibilityTimeout: 600, WaitTimeSeconds: 0 }),
    );
    if (!Messages?.length) return messages;
    messages.push(...Messages);
  }
}

/** The records a Kafka mapping's on-failure record names: the offsets given up on, per partition. */
function parkedFromKafkaFailure(message: unknown, destination: string): ParkedRecords[] {
  const info = (message as { KafkaBatchInfo?: { recordsInfo?: Record<string, Record<string, string>> } } | null)?.KafkaBatchInfo;
  return Object.entries(info?.recordsInfo ?? {}).map(([topicPartition, offsets]) => {
    const dash = topicPartition.lastIndexOf("-");
    return {
      source: topicPartition.slice(0, dash),
      destination,
      range: {
        first: Number(offsets.firstRecordOffset),
        last: Number(offsets.lastRecordOffset),
        partition: Number(topicPartition.slice(dash + 1)),
      },
    };
  });
}

/**
 * What the failure destinations and dead-letter queues hold: Lambda's pointers (Kinesis, Kafka),
 * the parked-record documents of the poison records the workers parked, and activity messages.
 */
async function parkedRecords(system: LocalSystem, arns: ReadonlySet<string>): Promise<ParkedRecords[]> {
  const parked: ParkedRecords[] = [];
  for (const arn of arns) {
    const queue = system.queues.get(arn);
    if (!queue) continue;
    for (const message of await peekAll(system.sqs, queue.url)) {
      let body: unknown;
      try {
        body = JSON.parse(message.Body ?? "");
      } catch {
        body = undefined;
      }
      const kinesis = parkedFromKinesisFailure(body, queue.planned.name);
      const document = kinesis ? undefined : parkedFromParkedRecord(body, queue.planned.name);
      if (kinesis) parked.push(kinesis);
      else if (document) parked.push(document);
      else if ((body as { KafkaBatchInfo?: unknown } | undefined)?.KafkaBatchInfo)
        parked.push(...parkedFromKafkaFailure(body, queue.planned.name));
      else if (typeof (body as { globalUserId?: unknown } | undefined)?.globalUserId === "string") {
        parked.push({
          source: queue.planned.name,
          destination: queue.planned.name,
          globalUserIds: [(body as { globalUserId: string }).globalUserId],
        });
      }
    }
  }
  return parked;
}

interface FanItem {
  readonly globalUserId: string;
  readonly type: string;
  readonly score?: number;
  readonly scoredAraiVersion?: number;
  readonly araiVersion?: number;
  readonly arai?: unknown;
}

/** Every scored fan record of the table, by fan. */
async function storedScores(url: string, table: string): Promise<Map<string, FanItem>> {
  const documents = createDocumentClient(
    new DynamoDBClient({ endpoint: url, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }),
  );
  const scores = new Map<string, FanItem>();
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(new ScanCommand({ TableName: table, ExclusiveStartKey: start }));
    for (const item of (page.Items ?? []) as FanItem[]) if (item.type === "score") scores.set(item.globalUserId, item);
    start = page.LastEvaluatedKey;
  } while (start);
  documents.destroy();
  return scores;
}

/** The model-serving endpoint scoreUsers calls (`/serving-endpoints/<name>/invocations`). */
function scoringEndpoint(wiring: Wiring): string {
  const url = wiring.functions.find((fn) => fn.worker === "scoreUsers")?.variables.MODEL_URL ?? "";
  return /\/serving-endpoints\/([^/]+)\//.exec(url)?.[1] ?? "";
}

/** Waits until nothing is in flight for a while (sources, queues, invocations, webhooks); false on timeout. */
async function drain(running: RunningSystem, scoringQueues: readonly string[], timeoutMs: number): Promise<boolean> {
  const { system, standIns, figures } = running;
  const until = Date.now() + timeoutMs;
  let quietSince = Date.now();
  let lastInvocations = -1;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const depths = await queueDepths(system, new Set(scoringQueues));
    const invocations = Object.values(figures.snapshot().workers).reduce((sum, worker) => sum + worker.invocations, 0);
    const busy = system.pending() > 0 || Object.values(depths).some((depth) => depth > 0) || invocations !== lastInvocations;
    lastInvocations = invocations;
    if (busy) quietSince = Date.now();
    else if (Date.now() - quietSince >= 3000) {
      await standIns.persona.idle();
      return true;
    }
  }
  return false;
}

async function reconcileRun(running: RunningSystem, failures: readonly WorkerFailure[], parking: ReadonlySet<string>) {
  const { system, generator } = running;
  const table = system.wiring.tables[0]!;
  const items = await storedScores(system.standIns.dynamodbUrl, table.name);
  const endpoint = scoringEndpoint(system.wiring);
  const scores = new Map<string, StoredScore>(
    [...items].map(([fan, item]) => [fan, { ...item, score: item.score ?? Number.NaN }]),
  );
  const ledger = reconcile({
    sent: generator.sent(),
    scores,
    // The score must be the model's for the ARAI the fan record holds now: its latest.
    expectedScore: (fan) => {
      const item = items.get(fan);
      return item && item.scoredAraiVersion === item.araiVersion ? expectedScore(item.arai, endpoint) : undefined;
    },
    parked: await parkedRecords(system, parking),
    workerFailures: failures,
  });
  const stale = [...items.values()]
    .filter((item) => item.scoredAraiVersion !== item.araiVersion)
    .map((item) => item.globalUserId);
  return { ledger, staleScores: stale };
}

function tapTableChanges(figures: Figures) {
  return (records: readonly TableChange[]) => {
    for (const { data } of records) {
      const image = data.dynamodb.NewImage as
        { type?: { S?: string }; globalUserId?: { S?: string }; lastActivity?: { M?: { at?: { S?: string } } } } | undefined;
      if (data.eventName !== "REMOVE" && image?.type?.S === "score" && image.globalUserId?.S) {
        const activityAt = Date.parse(image.lastActivity?.M?.at?.S ?? "");
        const at = data.dynamodb.ApproximateCreationDateTime;
        figures.scoreWritten(image.globalUserId.S, at, Number.isNaN(activityAt) ? undefined : activityAt);
      }
    }
  };
}

export interface RunOutcome extends RunResult {
  /** Fans whose stored score was computed from an ARAI older than the one they hold. */
  readonly staleScores?: readonly string[];
  /** False when a bounded run's work did not finish within the drain timeout. */
  readonly drained?: boolean;
}

/** Short names for the functions in figures: the worker, and its region when the stack runs it in two. */
function functionLabels(wiring: Wiring): Map<string, string> {
  const regions = new Map<string, Set<string>>();
  for (const fn of wiring.functions) regions.set(fn.worker, (regions.get(fn.worker) ?? new Set()).add(fn.region));
  return new Map(
    wiring.functions.map((fn) => [fn.name, regions.get(fn.worker)!.size > 1 ? `${fn.worker} (${fn.region})` : fn.worker]),
  );
}

/** The stream or topic each function's stream mapping reads, which names the records its failures report. */
function recordSources(wiring: Wiring): Map<string, string> {
  const sources = new Map<string, string>();
  for (const mapping of wiring.mappings) {
    if (mapping.kind === "kinesis" && mapping.streamArn) sources.set(mapping.functionName, nameOfArn(mapping.streamArn));
    if (mapping.kind === "kafka" && mapping.topic) sources.set(mapping.functionName, mapping.topic);
  }
  return sources;
}

/** Runs the system as the options say; resolves with the figures (and, for a bounded run, the ledger) once it is all stopped. */
export async function runLocal(options: RunOptions): Promise<RunOutcome> {
  const failures: WorkerFailure[] = [];
  let figures: Figures | undefined;
  let labels = new Map<string, string>();
  let sources = new Map<string, string>();
  const report: Report = (event: LocalEvent) => {
    options.onEvent?.(event);
    if (event.kind === "log" && event.line.message === "record failed") {
      const source = sources.get(event.function);
      failures.push({
        function: event.function,
        record: event.line.record,
        reason: String(event.line.reason ?? ""),
        ...(source ? { source } : {}),
      });
    }
    if (!figures) return;
    const label = "function" in event ? labels.get(event.function) : undefined;
    figures.report(label ? ({ ...event, function: label } as LocalEvent) : event);
  };
  let standIns: LocalStandIns | undefined;
  const system = await startLocalSystem({
    resources: options.resources,
    accountId: options.accountId,
    dataDir: options.dataDir,
    report,
    shards: options.shards,
    partitions: options.partitions,
    wrapEndpoint: options.wrapEndpoint,
    standIns: async (context) => {
      labels = functionLabels(context.wiring);
      sources = recordSources(context.wiring);
      return (standIns = await startStandIns(context, {
        resources: options.resources,
        clockSpeed: options.clockSpeed,
        signingKeyId: options.signingKeyId,
        onTableChanges: (records) => figures && tapTableChanges(figures)(records),
        wrapEndpoint: options.wrapEndpoint,
      }));
    },
  });
  const labelOfMapping = new Map(system.wiring.mappings.map((mapping) => [mapping.name, labels.get(mapping.functionName)]));
  const parking = parkingQueues(system.wiring);
  figures = createFigures({
    queueDepths: () => queueDepths(system, parking),
    functionOf: (mapping) => labelOfMapping.get(mapping),
  });
  const running = await startTraffic(system, standIns!, figures, options, report);
  let display: Display | undefined;
  try {
    await options.onStarted?.(running);
    display = options.output ? createDisplay({ figures, stream: options.output, durationMs: options.durationMs }) : undefined;
    await running.generator.run({ durationMs: options.durationMs, signal: options.signal });
    if (options.durationMs === undefined || options.signal?.aborted) return { figures: figures.snapshot() };
    const scoringQueues = [...system.queues.keys()].filter((arn) => !parking.has(arn));
    const drained = await drain(running, scoringQueues, options.drainTimeoutMs ?? 300_000);
    await figures.refresh();
    return { figures: figures.snapshot(), ...(await reconcileRun(running, failures, parking)), drained };
  } finally {
    if (display) {
      await figures.refresh().catch(() => {});
      display.stop();
    }
    await system.stop();
  }
}

async function startTraffic(system: LocalSystem, standIns: LocalStandIns, figures: Figures, options: RunOptions, report: Report) {
  const generator = createGenerator({
    rate: options.rate,
    badRate: options.badRate,
    mix: options.mix,
    fans: options.fans,
    seed: options.seed,
    kafkaTopic: system.kafka?.topic,
    streams: inputStreams(system.wiring),
    report,
    putKinesis: async (stream, entries) => {
      const { Records } = await system.kinesis.send(
        new PutRecordsCommand({
          StreamName: stream,
          Records: entries.map((entry) => ({ PartitionKey: entry.partitionKey, Data: entry.data })),
        }),
      );
      return (Records ?? []).map((record) =>
        record.ErrorCode ? { error: record.ErrorCode } : { sequenceNumber: record.SequenceNumber, shardId: record.ShardId },
      );
    },
    produceKafka: async (_topic, entries) => system.kafka!.produce(entries),
    onActivity: (fan, activity) => {
      standIns.accounts.recordActivity(fan, {
        action: activity.action,
        result: activity.result,
        at: new Date(activity.at).toISOString(),
      });
    },
    onSent: (event) => {
      if (event.expected.outcome === "scored" && event.globalUserId) figures.activityPut(event.globalUserId, event.at);
    },
  });
  for (const fan of generator.unknownFans) standIns.accounts.forget(fan);
  await standIns.redis.seedArmGrades(generator.fans);
  return { system, standIns, generator, figures };
}
