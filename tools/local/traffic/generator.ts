/**
 * The local system's traffic: fans acting on every input the workers read (the Kafka
 * user-activity topic and the Kinesis input streams), evenly paced at a rate, with bad records
 * among them, each put through the caller's sinks. Every event sent is kept with where it went
 * and what must become of it (payloads.ts), for the figures and the ledger.
 *
 * Deterministic: the same seed and options draw the same events in the same order, whatever the
 * pacing; only the times (when each was put) and the positions the sinks return differ.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Report } from "../types";
import {
  actionOf,
  BAD_VARIANTS,
  type BadKind,
  type Draft,
  encodeKafka,
  encodeKinesis,
  expectedOutcome,
  type ExpectedOutcome,
  FAILED_RESULTS,
  fanOf,
  type KinesisRole,
  NOT_SCORABLE_ACTIONS,
  OTHER_PURCHASE_STATUSES,
  OTHER_VF_TYPES,
  JOURNEY_STEPS,
  SCORABLE_ACTIONS,
  type SourceRole,
} from "./payloads";
import { createRandom, type Random } from "./random";

export type { ExpectedOutcome, SkipReason, SourceRole, KinesisRole } from "./payloads";

/** A record for PutRecords. */
export interface KinesisEntry {
  readonly partitionKey: string;
  readonly data: Buffer;
}

/** What the stream took of one record: its position, or why it refused it. */
export interface KinesisPutResult {
  readonly sequenceNumber?: string;
  readonly shardId?: string;
  /** The record was refused (PutRecords' ErrorCode): it is not sent. */
  readonly error?: string;
}

/** A record for a Kafka produce call; a null value is a tombstone. */
export interface KafkaEntry {
  readonly key: string;
  readonly value: Buffer | null;
  /** Epoch milliseconds (CREATE_TIME). */
  readonly timestamp: number;
}

/** Where the log put one record, or why it refused it. */
export interface KafkaProduceResult {
  readonly partition?: number;
  readonly offset?: number;
  readonly error?: string;
}

/**
 * Puts records on a stream. It may answer, per record and in order, where each went (or why it
 * was refused); throwing refuses them all.
 */
export type PutKinesis = (
  streamName: string,
  records: readonly KinesisEntry[],
) => Promise<void | readonly (KinesisPutResult | undefined)[]>;

/** Produces records to a topic; answers like `PutKinesis`. */
export type ProduceKafka = (
  topic: string,
  records: readonly KafkaEntry[],
) => Promise<void | readonly (KafkaProduceResult | undefined)[]>;

/** What a fan did, for the local accounts service's ARAI. */
export interface FanActivity {
  readonly source: SourceRole;
  /** The Kafka action, vfLogin, or the stream's source name (demand, purchase, sqJourney). */
  readonly action: string;
  /** The Kafka activity's result. */
  readonly result?: string;
  /** When it was put, epoch milliseconds. */
  readonly at: number;
}

/** Where an event's record went. */
export interface SentId {
  /** The stream or topic. */
  readonly target: string;
  /** The record's partition key (Kinesis) or key (Kafka). */
  readonly key: string;
  readonly sequenceNumber?: string;
  readonly shardId?: string;
  readonly partition?: number;
  readonly offset?: number;
}

/** An event the generator sent. */
export interface SentEvent {
  /** Its place in the generated sequence. */
  readonly seq: number;
  readonly source: SourceRole;
  readonly id: SentId;
  /** The fan it validly names; bad records name none. */
  readonly globalUserId?: string;
  /** When it was put, epoch milliseconds (its payload's own time too). */
  readonly at: number;
  /** What it is, for tables: `login/success`, `vfLogin`, `demand REMOVE`, `bad invalidFanId/hash`… */
  readonly kind: string;
  readonly expected: ExpectedOutcome;
}

/** Time, for the pacing; tests pass their own. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export interface BurstOptions {
  /** Chance that an event starts a burst of its fan. @default 0.02 */
  readonly chance?: number;
  /** Events in a burst, first included. @default 3 */
  readonly minEvents?: number;
  /** @default 12 */
  readonly maxEvents?: number;
}

export interface GeneratorOptions {
  /** Events per second, over every input. */
  readonly rate: number;
  /** Share of bad records, 0..1, spread over the inputs by the mix. @default 0.02 */
  readonly badRate?: number;
  /** Fans in the population. @default 1000 */
  readonly fans?: number;
  /**
   * What every fan id of the population starts with (a drill's own fans carry its name, so no
   * other run's scores can count for them). @default "gu-"
   */
  readonly fanPrefix?: string;
  /**
   * Fields added to every payload put on every input, as a producer that has started sending a
   * field the readers do not know yet. @default none
   */
  readonly extraFields?: Readonly<Record<string, unknown>>;
  /** Share of the population the accounts service does not know (its ARAI answers 404). @default 0.02 */
  readonly unknownFanShare?: number;
  /** @default 1 */
  readonly seed?: number | string;
  /**
   * Share of events per input (relative weights); an input it leaves out gets none, and so does an
   * input not configured. @default DEFAULT_MIX
   */
  readonly mix?: Readonly<Partial<Record<SourceRole, number>>>;
  readonly bursts?: BurstOptions;
  /** The Kafka user-activity topic; without it, no Kafka traffic. */
  readonly kafkaTopic?: string;
  /** The Kinesis input streams by role; a role left out gets no traffic. */
  readonly streams?: Readonly<Partial<Record<KinesisRole, string>>>;
  /** The demand table its change records name. @default "dmnd-demand-local" */
  readonly demandTableName?: string;
  readonly putKinesis?: PutKinesis;
  readonly produceKafka?: ProduceKafka;
  /**
   * Called, and awaited, before the put of each event expected to be scored, so the ARAI the
   * scorer fetches reflects it. Not called for other events: they lead to no ARAI fetch, and an
   * ARAI they changed would no longer be the one the fan's score was computed from.
   */
  readonly onActivity?: (globalUserId: string, activity: FanActivity) => void | Promise<void>;
  /** Each event once its input took it (feed `figures.activityPut` from it). */
  readonly onSent?: (event: SentEvent) => void;
  /** A put (or an `onActivity` call before it) that threw: its records are not sent. */
  readonly onError?: (error: unknown, target: string, records: number) => void;
  /** Receives an `input` event per put. */
  readonly report?: Report;
  /** @default 50 */
  readonly tickMs?: number;
  readonly clock?: Clock;
  /** Puts queued per input before the pacing waits for them. @default 4 */
  readonly maxQueuedPuts?: number;
}

/** Share of events per input, when the caller gives none: most activity is Kafka's. */
export const DEFAULT_MIX: Readonly<Record<SourceRole, number>> = {
  kafka: 0.5,
  vf: 0.15,
  sqJourney: 0.15,
  demand: 0.1,
  purchase: 0.1,
};

/** Shares of kinds within each input, for well-formed events. */
export const KIND_SHARES = {
  kafka: { scorable: 0.6, notScorable: 0.25, failedResult: 0.15 },
  vf: { vfLogin: 0.9, otherType: 0.1 },
  demand: { INSERT: 0.6, MODIFY: 0.3, REMOVE: 0.1 },
  purchase: { SUCCESS: 0.8, other: 0.2 },
} as const;

const BAD_KINDS: readonly BadKind[] = ["undecodable", "noFanId", "invalidFanId"];

/** PutRecords takes at most 500 records and 5 MiB. */
export const KINESIS_BATCH = { records: 500, bytes: 4.5 * 1024 * 1024 };
/** Records per produce call. */
export const KAFKA_BATCH = 1000;

/** Events due `elapsedMs` into a run at `rate` per second: the pacing's running total. */
export function eventsDue(rate: number, elapsedMs: number): number {
  return Math.floor((rate * Math.max(0, elapsedMs)) / 1000 + 1e-9);
}

/**
 * The fan population of a seed: `size` distinct ids like the platform's (`prefix`, by default
 * `gu-`, and 8 hex digits), and the share of them the accounts service must answer 404 for.
 */
export function fanPopulation(seed: number | string, size: number, unknownShare: number, prefix = "gu-") {
  const random = createRandom(`${seed}:fans`);
  const ids = new Set<string>();
  while (ids.size < size) ids.add(`${prefix}${random.hex(8)}`);
  const fans = [...ids];
  const unknownFans = fans.slice(0, Math.round(size * Math.min(1, Math.max(0, unknownShare))));
  return { fans, unknownFans };
}

/** Picks the fan of each event: mostly any fan, sometimes the next event of a fan's burst. */
function createFanPicker(random: Random, fans: readonly string[], options: BurstOptions = {}): () => string {
  const chance = options.chance ?? 0.02;
  const min = options.minEvents ?? 3;
  const max = Math.max(min, options.maxEvents ?? 12);
  const bursts: { fan: string; left: number }[] = [];
  return () => {
    if (bursts.length > 0 && random.chance(0.5)) {
      const index = random.int(0, bursts.length - 1);
      const burst = bursts[index]!;
      if (--burst.left <= 0) bursts.splice(index, 1);
      return burst.fan;
    }
    const fan = random.pick(fans);
    if (random.chance(chance)) bursts.push({ fan, left: random.int(min, max) - 1 });
    return fan;
  };
}

/** Draws the next event: its input by the mix, bad at `badRate()`, else a kind by KIND_SHARES. */
function createDrafter(random: Random, mix: Partial<Record<SourceRole, number>>, badRate: () => number, pickFan: () => string) {
  return (seq: number): Draft => {
    const role = random.weighted(mix);
    const salt = random.uint32();
    if (random.chance(badRate())) {
      const bad = random.pick(BAD_KINDS);
      const variant = random.pick<string>(BAD_VARIANTS[bad][role === "kafka" ? "kafka" : "kinesis"]);
      return { seq, salt, role, kind: "bad", bad, variant, aboutFan: pickFan() };
    }
    const globalUserId = pickFan();
    switch (role) {
      case "kafka": {
        const kind = random.weighted(KIND_SHARES.kafka);
        const action = random.pick(kind === "notScorable" ? NOT_SCORABLE_ACTIONS : SCORABLE_ACTIONS);
        const result = kind === "failedResult" ? random.pick(FAILED_RESULTS) : "success";
        return { seq, salt, role, kind: "activity", globalUserId, action, result };
      }
      case "vf": {
        const type = random.weighted(KIND_SHARES.vf) === "vfLogin" ? "vfLogin" : random.pick(OTHER_VF_TYPES);
        return { seq, salt, role, kind: "vfEvent", globalUserId, type };
      }
      case "demand":
        return { seq, salt, role, kind: "change", globalUserId, eventName: random.weighted(KIND_SHARES.demand) };
      case "purchase": {
        const status = random.weighted(KIND_SHARES.purchase) === "SUCCESS" ? "SUCCESS" : random.pick(OTHER_PURCHASE_STATUSES);
        return { seq, salt, role, kind: "purchase", globalUserId, status };
      }
      case "sqJourney":
        return { seq, salt, role, kind: "journeyStep", globalUserId, step: random.pick(JOURNEY_STEPS) };
    }
  };
}

/** What a draft is, for tables. */
function kindOf(draft: Draft): string {
  switch (draft.kind) {
    case "bad":
      return `bad ${draft.bad}/${draft.variant}`;
    case "activity":
      return `${draft.action}/${draft.result}`;
    case "vfEvent":
      return draft.type;
    case "change":
      return `demand ${draft.eventName}`;
    case "purchase":
      return `purchase ${draft.status}`;
    case "journeyStep":
      return `sqJourney ${draft.step}`;
  }
}

/** The inputs that get traffic, with their names, and the mix over them. */
function resolveInputs(options: GeneratorOptions) {
  const targets: Partial<Record<SourceRole, string>> = {};
  if (options.kafkaTopic) {
    if (!options.produceKafka) throw new Error("traffic: kafkaTopic is given without produceKafka");
    targets.kafka = options.kafkaTopic;
  }
  for (const [role, stream] of Object.entries(options.streams ?? {}) as [KinesisRole, string | undefined][]) {
    if (!stream) continue;
    if (!options.putKinesis) throw new Error(`traffic: the ${role} stream is given without putKinesis`);
    targets[role] = stream;
  }
  const weights: Partial<Record<SourceRole, number>> = options.mix ?? DEFAULT_MIX;
  const mix: Partial<Record<SourceRole, number>> = {};
  for (const role of Object.keys(targets) as SourceRole[]) if ((weights[role] ?? 0) > 0) mix[role] = weights[role];
  if (Object.keys(mix).length === 0) throw new Error("traffic: no input to send to (give kafkaTopic or streams, and a mix > 0)");
  return { targets, mix };
}

/** A generator of traffic; see `createGenerator`. */
export interface Generator {
  /** Every fan of the population. */
  readonly fans: readonly string[];
  /** The fans the accounts service must not know: have its ARAI answer 404 for these. */
  readonly unknownFans: readonly string[];
  /** Sends at the rate until `durationMs` has passed, the signal aborts or `stop()`; resolves once every put settled. */
  run(options?: { readonly durationMs?: number; readonly signal?: AbortSignal }): Promise<GeneratorStats>;
  stop(): void;
  /** Changes the share of bad records from the next event drawn on (a burst of them, say). */
  setBadRate(rate: number): void;
  /**
   * Draws and queues the events due `elapsedMs` into the run (the pacing's step; `run` calls it
   * every tick). Resolves once the queues are short enough again; returns the events drawn.
   */
  tick(elapsedMs: number): Promise<number>;
  /** Resolves once every queued put settled. */
  flush(): Promise<void>;
  /** Every event sent (taken by its input), in generated order. */
  sent(): SentEvent[];
  stats(): GeneratorStats;
}

export interface GeneratorStats {
  /** Events drawn. */
  readonly drawn: number;
  /** Events their input took. */
  readonly sent: number;
  /** Events refused by their input, or whose put threw. */
  readonly refused: number;
  /** Sink calls made. */
  readonly puts: number;
}

/**
 * Builds a traffic generator. Events are drawn in sequence from the seed; each tick (`tickMs`)
 * draws those due at `rate` and hands them to the sinks grouped by input, in batches (PutRecords
 * of up to 500 records, Kafka batches of up to 1000). Puts to one input run one after another, so
 * a fan's records keep their order; inputs are put in parallel.
 */
export function createGenerator(options: GeneratorOptions): Generator {
  const { targets, mix } = resolveInputs(options);
  const seed = options.seed ?? 1;
  const { fans, unknownFans } = fanPopulation(seed, options.fans ?? 1000, options.unknownFanShare ?? 0.02, options.fanPrefix);
  const unknown = new Set(unknownFans);
  const random = createRandom(`${seed}:traffic`);
  let badRate = options.badRate ?? 0.02;
  const draw = createDrafter(random, mix, () => badRate, createFanPicker(random, fans, options.bursts));
  const clock: Clock = options.clock ?? { now: Date.now, sleep: (ms, signal) => sleep(ms, undefined, { signal }) };
  const tickMs = options.tickMs ?? 50;
  const put = createPutter(options, clock, targets, unknown);
  let drawn = 0;
  let stopped = false;

  async function tick(elapsedMs: number): Promise<number> {
    const due = eventsDue(options.rate, elapsedMs) - drawn;
    const byRole = new Map<SourceRole, Draft[]>();
    for (let i = 0; i < due; i++) {
      const draft = draw(drawn++);
      const drafts = byRole.get(draft.role);
      if (drafts) drafts.push(draft);
      else byRole.set(draft.role, [draft]);
    }
    for (const [role, drafts] of byRole) put.queue(role, drafts);
    await put.backpressure();
    return Math.max(0, due);
  }

  async function run(runOptions: { durationMs?: number; signal?: AbortSignal } = {}): Promise<GeneratorStats> {
    const { durationMs, signal } = runOptions;
    stopped = false;
    const start = clock.now();
    let elapsed = 0;
    while (!stopped && !signal?.aborted) {
      // The next tick after now: a run that fell behind catches up in one tick, not in a burst of them.
      const next = (Math.floor(elapsed / tickMs) + 1) * tickMs;
      const wait = start + (durationMs === undefined ? next : Math.min(next, durationMs)) - clock.now();
      if (wait > 0) await clock.sleep(wait, signal).catch(() => undefined);
      if (stopped || signal?.aborted) break;
      elapsed = clock.now() - start;
      await tick(durationMs === undefined ? elapsed : Math.min(elapsed, durationMs));
      if (durationMs !== undefined && elapsed >= durationMs) break;
    }
    await put.flush();
    return stats();
  }

  const stats = (): GeneratorStats => ({ drawn, ...put.counts() });
  return {
    fans,
    unknownFans,
    run,
    stop: () => void (stopped = true),
    setBadRate: (rate) => void (badRate = rate),
    tick,
    flush: put.flush,
    sent: put.sent,
    stats,
  };
}

/** One input's queue of puts: they run one after another. */
interface Lane {
  tail: Promise<void>;
  queued: number;
}

/** What the puts share: the options, the clock, the unknown fans, what was sent and counted. */
interface PutContext {
  readonly options: GeneratorOptions;
  readonly clock: Clock;
  readonly unknown: ReadonlySet<string>;
  readonly sent: SentEvent[];
  readonly counts: { sent: number; refused: number; puts: number };
}

type SinkAnswer = void | readonly ((KinesisPutResult & KafkaProduceResult) | undefined)[];

/** Tells the accounts service what the fans about to be scored did, before their records are put. */
async function announce(context: PutContext, drafts: readonly Draft[], at: number) {
  const { onActivity } = context.options;
  if (!onActivity) return;
  const calls: (void | Promise<void>)[] = [];
  for (const draft of drafts) {
    const fan = fanOf(draft);
    if (fan === undefined || expectedOutcome(draft, context.unknown).outcome !== "scored") continue;
    const result = draft.kind === "activity" ? { result: draft.result } : {};
    calls.push(onActivity(fan, { source: draft.role, action: actionOf(draft), ...result, at }));
  }
  await Promise.all(calls);
}

/** Keeps what the input took; counts what it refused. */
function record(
  context: PutContext,
  target: string,
  drafts: readonly Draft[],
  at: number,
  ids: readonly (Omit<SentId, "target"> | undefined)[],
) {
  let taken = 0;
  drafts.forEach((draft, index) => {
    const id = ids[index];
    if (!id) return void (context.counts.refused += 1);
    const globalUserId = fanOf(draft);
    const event: SentEvent = {
      seq: draft.seq,
      source: draft.role,
      id: { target, ...id },
      ...(globalUserId === undefined ? {} : { globalUserId }),
      at,
      kind: kindOf(draft),
      expected: expectedOutcome(draft, context.unknown),
    };
    context.sent.push(event);
    taken += 1;
    context.options.onSent?.(event);
  });
  context.counts.sent += taken;
  if (taken > 0) context.options.report?.({ kind: "input", source: target, count: taken });
}

/**
 * The next sink call for `drafts` from `start`, encoded at `at`: up to 500 records (and 4.5 MiB)
 * for PutRecords, up to 1000 for Kafka.
 */
function nextBatch(context: PutContext, role: SourceRole, target: string, drafts: readonly Draft[], start: number, at: number) {
  const { options } = context;
  if (role === "kafka") {
    const chunk = drafts.slice(start, start + KAFKA_BATCH);
    const entries = chunk.map((draft) => encodeKafka(draft, at, { extraFields: options.extraFields }));
    const send = (): Promise<SinkAnswer> => options.produceKafka!(target, entries);
    return { chunk, keys: entries.map((entry) => entry.key), send, next: start + chunk.length };
  }
  const encodeOptions = {
    demandTableName: options.demandTableName ?? "dmnd-demand-local",
    extraFields: options.extraFields,
  };
  const chunk: Draft[] = [];
  const entries: KinesisEntry[] = [];
  let bytes = 0;
  for (
    let index = start;
    index < drafts.length && entries.length < KINESIS_BATCH.records && bytes < KINESIS_BATCH.bytes;
    index++
  ) {
    const entry = encodeKinesis(drafts[index]!, at, encodeOptions);
    chunk.push(drafts[index]!);
    entries.push(entry);
    bytes += entry.data.length + Buffer.byteLength(entry.partitionKey);
  }
  const send = (): Promise<SinkAnswer> => options.putKinesis!(target, entries);
  return { chunk, keys: entries.map((entry) => entry.partitionKey), send, next: start + chunk.length };
}

/**
 * Puts the drafts on their input, batch after batch, each timed by its put; a sink (or
 * `onActivity`) that throws refuses its batch.
 */
async function putDrafts(context: PutContext, role: SourceRole, target: string, drafts: readonly Draft[]) {
  for (let start = 0; start < drafts.length;) {
    const at = context.clock.now();
    const batch = nextBatch(context, role, target, drafts, start, at);
    start = batch.next;
    let answer: SinkAnswer;
    try {
      // An activity the accounts service could not take would leave the fan's ARAI behind: not put either.
      await announce(context, batch.chunk, at);
      context.counts.puts += 1;
      answer = await batch.send();
    } catch (error) {
      context.counts.refused += batch.chunk.length;
      context.options.onError?.(error, target, batch.chunk.length);
      continue;
    }
    const results = answer || [];
    record(
      context,
      target,
      batch.chunk,
      at,
      batch.keys.map((key, index) => positionOf(key, results[index])),
    );
  }
}

/** The puts: per input, one after another; the events each input took. */
function createPutter(
  options: GeneratorOptions,
  clock: Clock,
  targets: Partial<Record<SourceRole, string>>,
  unknown: ReadonlySet<string>,
) {
  const lanes = new Map<SourceRole, Lane>();
  const context: PutContext = { options, clock, unknown, sent: [], counts: { sent: 0, refused: 0, puts: 0 } };
  const maxQueued = options.maxQueuedPuts ?? 4;

  function queue(role: SourceRole, drafts: readonly Draft[]) {
    const lane = lanes.get(role) ?? { tail: Promise.resolve(), queued: 0 };
    lanes.set(role, lane);
    lane.queued += 1;
    lane.tail = lane.tail.then(() => putDrafts(context, role, targets[role]!, drafts)).finally(() => void (lane.queued -= 1));
  }

  return {
    queue,
    backpressure: async () => {
      for (const lane of lanes.values()) if (lane.queued > maxQueued) await lane.tail;
    },
    flush: async () => {
      await Promise.all([...lanes.values()].map((lane) => lane.tail));
    },
    sent: () => [...context.sent].sort((a, b) => a.seq - b.seq),
    counts: () => ({ ...context.counts }),
  };
}

/** Where a record went, from the sink's answer for it (undefined when it was refused). */
function positionOf(
  key: string,
  result: (KinesisPutResult & KafkaProduceResult) | undefined,
): Omit<SentId, "target"> | undefined {
  if (result?.error !== undefined) return undefined;
  const { sequenceNumber, shardId, partition, offset } = result ?? {};
  return {
    key,
    ...(sequenceNumber === undefined ? {} : { sequenceNumber }),
    ...(shardId === undefined ? {} : { shardId }),
    ...(partition === undefined ? {} : { partition }),
    ...(offset === undefined ? {} : { offset }),
  };
}

/**
 * A sent record's identifier as its worker reports it in a batch response and in `record failed`
 * lines: the Kinesis sequence number, or the Kafka `<topic>-<partition>@<offset>` (itemKey's
 * form); undefined when the sink returned no position.
 */
export function recordKeyOf(id: SentId): string | undefined {
  if (id.sequenceNumber !== undefined) return id.sequenceNumber;
  if (id.partition !== undefined && id.offset !== undefined) return `${id.target}-${id.partition}@${id.offset}`;
  return undefined;
}
