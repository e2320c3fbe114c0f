/**
 * A run of the local system: plan the stack, bring the system up, drive traffic through it,
 * show the figures, and, for a bounded run, wait until everything in flight is done, reconcile
 * every input in a ledger and print the summary. `npm start` and the end-to-end tests both run
 * through here. The parts are exported for runs of another shape (the fault drills,
 * tools/local/drills): `startSession` brings the system up once, `createTraffic` makes a
 * generator on its inputs, `drain` waits for what is in flight, `readParked` and
 * `reconcileEvents` account for what a generator sent.
 */
import { PutRecordsCommand } from "@aws-sdk/client-kinesis";
import {
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { ScanCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { createDocumentClient } from "../../workers/shared/runtime/dynamo";
import { INPUT_STREAM_WORKERS } from "../../workers/registry";
import type { RecordedResource } from "../offline/runtime";
import { type Display, createDisplay } from "./display";
import { type Figures, createFigures, type FiguresSnapshot } from "./figures";
import {
  deliveryKey,
  type Ledger,
  outstandingFailures,
  type ParkedRecords,
  parkedFromDeadLetter,
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
import { createGenerator, type Generator, type GeneratorOptions, type SentEvent } from "./traffic/generator";
import type { KinesisRole } from "./traffic/payloads";
import type { LocalEvent, Report, WrapEndpoint } from "./types";
import { nameOfArn, type Wiring } from "./wiring";

/** What a session of the local system is brought up with (every run's). */
export interface SessionOptions {
  readonly resources: readonly RecordedResource[];
  readonly accountId: string;
  readonly dataDir: string;
  readonly clockSpeed?: number;
  readonly signingKeyId?: string;
  /** Sees every event as it happens (tests). */
  readonly onEvent?: Report;
  /** Sees every change record the table writes to its stream. */
  readonly onTableChanges?: (records: readonly TableChange[]) => void;
  /** Puts something in front of the services (a benchmark's counting proxy; system.ts, standIns.ts). @default none */
  readonly wrapEndpoint?: WrapEndpoint;
  /** Shards per Kinesis stream, partitions of the Kafka topic. */
  readonly shards?: number;
  readonly partitions?: number;
  /** Wait before each Persona webhook. @default 1000 */
  readonly webhookDelayMs?: number;
  /**
   * The scoring queues' visibility timeout for the session, seconds: how soon a message a worker
   * failed is received again. A run that must see such a message back (a bounded run on a busy
   * machine, the drills) sets it shorter than the plan's six times the consumer's timeout.
   * @default the plan's
   */
  readonly redeliveryAfterSeconds?: number;
}

/** What a generator on the session's inputs sends (see `GeneratorOptions`). */
export type TrafficOptions = Pick<
  GeneratorOptions,
  "rate" | "badRate" | "mix" | "fans" | "seed" | "fanPrefix" | "extraFields" | "unknownFanShare" | "bursts"
>;

export interface RunOptions extends SessionOptions {
  /** Stop sending after this long, then drain and reconcile; without it, run until `signal` aborts. */
  readonly durationMs?: number;
  readonly rate: number;
  readonly badRate?: number;
  /** Share of events per input, as the generator takes it (`GeneratorOptions.mix`). @default DEFAULT_MIX */
  readonly mix?: GeneratorOptions["mix"];
  readonly fans?: number;
  readonly seed?: number | string;
  readonly signal?: AbortSignal;
  /** Where the panel goes; none: no panel. */
  readonly output?: NodeJS.WriteStream;
  /** Longest wait for the system to finish what is in flight after a bounded run. @default 300000 */
  readonly drainTimeoutMs?: number;
  /** Called once the system is up, before traffic starts (tests drive it from here). */
  readonly onStarted?: (system: RunningSystem) => void | Promise<void>;
}

export interface RunningSystem {
  readonly system: LocalSystem;
  readonly standIns: LocalStandIns;
  readonly generator: Generator;
  readonly figures: Figures;
}

/** The local system brought up once, for one run or a sequence of them (the drills). */
export interface RunSession {
  readonly system: LocalSystem;
  readonly standIns: LocalStandIns;
  readonly figures: Figures;
  /** The queues records are parked in: mappings' on-failure destinations and dead-letter queues, by ARN. */
  readonly parking: ReadonlySet<string>;
  /** The other queues (the scoring queues), by ARN. */
  readonly scoringQueues: readonly string[];
  /** The `record failed` lines the workers have written so far, less those a later delivery overcame. */
  readonly failures: readonly WorkerFailure[];
  /** A traffic generator on the system's inputs; its unknown fans forgotten by the accounts service, its fans' ARM grades seeded. */
  createTraffic(options: TrafficOptions): Promise<Generator>;
  /** Ends everything the session started. */
  stop(): Promise<void>;
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
export function parkingQueues(wiring: Wiring): Set<string> {
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
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: 10,
        VisibilityTimeout: 600,
        WaitTimeSeconds: 0,
        MessageAttributeNames: ["All"],
        MessageSystemAttributeNames: ["SentTimestamp"],
      }),
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

/** A message a failure destination or dead-letter queue holds: what it names, and when it was sent there. */
export interface ParkedMessage {
  readonly messageId: string;
  /** Epoch ms (SQS's SentTimestamp). */
  readonly sentAt?: number;
  readonly parked: readonly ParkedRecords[];
}

/**
 * What the failure destinations and dead-letter queues hold: Lambda's pointers (Kinesis, Kafka),
 * the parked-record documents of the poison records the workers parked, and activity messages.
 */
async function parkedRecords(system: LocalSystem, arns: ReadonlySet<string>): Promise<ParkedRecords[]> {
  return (await readParked(system, arns)).flatMap((message) => message.parked);
}

/**
 * Reads every message of the queues (`arns`), each with what it names. A message read is not
 * seen again for ten minutes: a caller reading more than once keeps what it read.
 */
export async function readParked(system: LocalSystem, arns: ReadonlySet<string>): Promise<ParkedMessage[]> {
  const messages: ParkedMessage[] = [];
  for (const arn of arns) {
    const queue = system.queues.get(arn);
    if (!queue) continue;
    // A scoring queue's dead-letter queue: the source queue's redrive policy names it.
    const source = system.wiring.queues.find((candidate) => candidate.redrive?.deadLetterTargetArn === arn);
    for (const message of await peekAll(system.sqs, queue.url)) {
      const parked: ParkedRecords[] = [];
      const sentAt = Number(message.Attributes?.SentTimestamp);
      messages.push({ messageId: message.MessageId ?? "", ...(Number.isFinite(sentAt) ? { sentAt } : {}), parked });
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
      else {
        const letter = { body: message.Body, attributes: message.MessageAttributes };
        const dead = parkedFromDeadLetter(letter, queue.planned.name, source?.redrive?.maxReceiveCount);
        if (dead) parked.push(dead);
      }
    }
  }
  return messages;
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
export function scoringEndpoint(wiring: Wiring): string {
  const url = wiring.functions.find((fn) => fn.worker === "scoreUsers")?.variables.MODEL_URL ?? "";
  return /\/serving-endpoints\/([^/]+)\//.exec(url)?.[1] ?? "";
}

/**
 * Waits until nothing is in flight for `quietMs` (sources, queues, invocations), then for the
 * webhooks Persona has scheduled; false on timeout.
 */
export async function drain(
  running: Pick<RunningSystem, "system" | "standIns" | "figures">,
  scoringQueues: readonly string[],
  timeoutMs: number,
  quietMs = 3000,
): Promise<boolean> {
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
    else if (Date.now() - quietSince >= quietMs) {
      await standIns.persona.idle();
      return true;
    }
  }
  return false;
}

/**
 * The ledger of the events `sent`, from what the table holds now, the records `parked` and the
 * workers' `failures`; and the fans among them whose stored score is older than their ARAI.
 */
export async function reconcileEvents(
  system: LocalSystem,
  sent: readonly SentEvent[],
  parked: readonly ParkedRecords[],
  failures: readonly WorkerFailure[],
): Promise<{ ledger: Ledger; staleScores: string[] }> {
  const table = system.wiring.tables[0]!;
  const items = await storedScores(system.standIns.dynamodbUrl, table.name);
  const endpoint = scoringEndpoint(system.wiring);
  const scores = new Map<string, StoredScore>(
    [...items].map(([fan, item]) => [fan, { ...item, score: item.score ?? Number.NaN }]),
  );
  const fans = new Set(sent.flatMap((event) => (event.globalUserId === undefined ? [] : [event.globalUserId])));
  const ledger = reconcile({
    sent,
    scores,
    // The score must be the model's for the ARAI the fan record holds now: its latest.
    expectedScore: (fan) => {
      const item = items.get(fan);
      return item && item.scoredAraiVersion === item.araiVersion ? expectedScore(item.arai, endpoint) : undefined;
    },
    parked,
    workerFailures: failures,
  });
  const stale = [...items.values()]
    .filter((item) => fans.has(item.globalUserId) && item.scoredAraiVersion !== item.araiVersion)
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

/**
 * Brings the local system up for a run (or a sequence of runs): the AWS services, the stand-ins,
 * every function and mapping, and the figures fed by what it reports. Nothing is sent yet.
 */
export async function startSession(options: SessionOptions): Promise<RunSession> {
  const failures: WorkerFailure[] = [];
  // Deliveries per function and record, so a failure a later delivery overcame is not counted.
  const deliveries = new Map<string, number>();
  let functionOfMapping = new Map<string, string>();
  let figures: Figures | undefined;
  let labels = new Map<string, string>();
  let sources = new Map<string, string>();
  const report: Report = (event: LocalEvent) => {
    options.onEvent?.(event);
    if (event.kind === "delivered") {
      for (const record of event.records ?? []) {
        const key = deliveryKey(functionOfMapping.get(event.mapping), record);
        if (key !== undefined) deliveries.set(key, (deliveries.get(key) ?? 0) + 1);
      }
    }
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
      functionOfMapping = new Map(context.wiring.mappings.map((mapping) => [mapping.name, mapping.functionName]));
      return (standIns = await startStandIns(context, {
        resources: options.resources,
        clockSpeed: options.clockSpeed,
        signingKeyId: options.signingKeyId,
        webhookDelayMs: options.webhookDelayMs,
        onTableChanges: (records) => {
          options.onTableChanges?.(records);
          if (figures) tapTableChanges(figures)(records);
        },
        wrapEndpoint: options.wrapEndpoint,
      }));
    },
  });
  const labelOfMapping = new Map(system.wiring.mappings.map((mapping) => [mapping.name, labels.get(mapping.functionName)]));
  const parking = parkingQueues(system.wiring);
  const scoringQueues = [...system.queues.keys()].filter((arn) => !parking.has(arn));
  if (options.redeliveryAfterSeconds !== undefined) {
    try {
      for (const arn of scoringQueues) {
        await system.sqs.send(
          new SetQueueAttributesCommand({
            QueueUrl: system.queues.get(arn)!.url,
            Attributes: { VisibilityTimeout: String(options.redeliveryAfterSeconds) },
          }),
        );
      }
    } catch (error) {
      await system.stop();
      throw error;
    }
  }
  figures = createFigures({
    queueDepths: () => queueDepths(system, parking),
    functionOf: (mapping) => labelOfMapping.get(mapping),
  });
  const session: RunSession = {
    system,
    standIns: standIns!,
    figures,
    parking,
    scoringQueues,
    get failures() {
      return outstandingFailures(failures, deliveries);
    },
    createTraffic: (traffic) => createTraffic(session, traffic, report),
    stop: () => system.stop(),
  };
  return session;
}

/** Runs the system as the options say; resolves with the figures (and, for a bounded run, the ledger) once it is all stopped. */
export async function runLocal(options: RunOptions): Promise<RunOutcome> {
  const session = await startSession(options);
  const { system, figures } = session;
  let display: Display | undefined;
  try {
    const running: RunningSystem = { ...session, generator: await session.createTraffic(options) };
    await options.onStarted?.(running);
    display = options.output ? createDisplay({ figures, stream: options.output, durationMs: options.durationMs }) : undefined;
    await running.generator.run({ durationMs: options.durationMs, signal: options.signal });
    if (options.durationMs === undefined || options.signal?.aborted) return { figures: figures.snapshot() };
    const drained = await drain(running, session.scoringQueues, options.drainTimeoutMs ?? 300_000);
    await figures.refresh();
    const parked = await parkedRecords(system, session.parking);
    const reconciled = await reconcileEvents(system, running.generator.sent(), parked, session.failures);
    return { figures: figures.snapshot(), ...reconciled, drained };
  } finally {
    if (display) {
      await figures.refresh().catch(() => {});
      display.stop();
    }
    await system.stop();
  }
}

/** A generator on the session's inputs, its fans known (or not) to the accounts service and their ARM grades seeded. */
async function createTraffic(session: RunSession, options: TrafficOptions, report: Report): Promise<Generator> {
  const { system, standIns, figures } = session;
  const generator = createGenerator({
    rate: options.rate,
    badRate: options.badRate,
    mix: options.mix,
    fans: options.fans,
    seed: options.seed,
    fanPrefix: options.fanPrefix,
    extraFields: options.extraFields,
    unknownFanShare: options.unknownFanShare,
    bursts: options.bursts,
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
  return generator;
}
