/**
 * Live figures of the local system, computed from what it reports (`LocalEvent`): the workers' own
 * log lines (their per-batch summaries, each `record failed` line and each `record parked` line of
 * a poison record a worker parked itself), the sources' deliveries, filtering and parking, the
 * Lambda emulation's invocations, and the scores the table's change stream shows written.
 * `snapshot()` is plain JSON (for `--json FILE`).
 */
import { WORKERS } from "../../workers/registry";
import { reasonGroup } from "./text";
import type { LocalEvent, Report } from "./types";

export interface FiguresOptions {
  /** Depths of the failure queue and the dead-letter queues, polled by `refresh()`. */
  readonly queueDepths?: () => Promise<Readonly<Record<string, number>>>;
  /**
   * The function a mapping feeds. By default, the registered worker whose name the mapping's
   * name contains (the longest, so `stagingScoreUsers` is not taken for `scoreUsers`).
   */
  readonly functionOf?: (mapping: string) => string | undefined;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Activity → score latency, milliseconds (nearest-rank percentiles). */
export interface LatencyFigures {
  readonly samples: number;
  readonly p50?: number;
  readonly p95?: number;
  readonly p99?: number;
  readonly max?: number;
}

export interface WorkerFigures {
  /** Records handed to it by its mappings (every delivery, retries included). */
  readonly delivered: number;
  /** Records its batch summaries account for. */
  readonly records: number;
  readonly ok: number;
  readonly skipped: number;
  readonly failed: number;
  /** Records it parked in its failure queue itself (poison records). */
  readonly parked: number;
  /** Delivered, not yet accounted for by a summary nor given back by a failed invocation. */
  readonly inFlight: number;
  readonly invocations: number;
  readonly coldStarts: number;
  /** Invocations that threw, timed out, or whose process crashed. */
  readonly errors: number;
  readonly timeouts: number;
  readonly crashes: number;
  readonly avgMs?: number;
  readonly maxMs?: number;
  /** Lines it logged at ERROR. */
  readonly loggedErrors: number;
  /** Lines on its output that were not JSON (a crash, a stack trace). */
  readonly otherOutput: number;
  /** What its summaries say besides (scored fans, fresh/fetched/written/unknown fans of lookupArai…). */
  readonly details: Readonly<Record<string, number>>;
}

export interface FiguresSnapshot {
  /** Since the figures were created. */
  readonly elapsedMs: number;
  /** Records put on each input. */
  readonly sources: Readonly<Record<string, number>>;
  readonly mappings: Readonly<
    Record<string, { readonly function?: string; readonly delivered: number; readonly filtered: number; readonly parked: number }>
  >;
  readonly workers: Readonly<Record<string, WorkerFigures>>;
  readonly scores: { readonly written: number; readonly withoutActivity: number };
  /** `record failed` lines by normalised reason, most frequent first. */
  readonly failures: readonly ReasonCount[];
  /** `record parked` lines (poison records the workers parked themselves) by normalised reason, most frequent first. */
  readonly parkedByWorkers: readonly ReasonCount[];
  /** Records the mappings parked (Lambda's pointers to what they gave up on), by destination. */
  readonly parked: Readonly<Record<string, number>>;
  /** Last polled queue depths, and the poll's error when it failed. */
  readonly queues: Readonly<Record<string, number>>;
  readonly queuesError?: string;
  readonly latency: LatencyFigures;
}

/** Lines of one kind counted by normalised reason, and by the functions that wrote them. */
export interface ReasonCount {
  readonly reason: string;
  readonly count: number;
  readonly functions: Readonly<Record<string, number>>;
}

/** The figures: fed by `report`, `activityPut` and `scoreWritten`; read by `snapshot`. */
export interface Figures {
  readonly report: Report;
  /** An activity expected to be scored was put for the fan at `atMs`. */
  activityPut(globalUserId: string, atMs: number): void;
  /** The table shows the fan's score written at `atMs` (a change whose new image has type = score). */
  scoreWritten(globalUserId: string, atMs: number, activityAtMs?: number): void;
  /** Polls the queue depths. */
  refresh(): Promise<void>;
  snapshot(): FiguresSnapshot;
}

/** The value at percentile `p` (0..100) of ascending `sorted`, by nearest rank; undefined when empty. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** A worker's per-batch summary lines: the records they account for, of which skipped, parked and failed. */
const SUMMARIES: Readonly<
  Record<string, { records: string; skipped?: string; parked?: string; failed: string; details: readonly string[] }>
> = {
  "batch enqueued": {
    records: "records",
    skipped: "skipped",
    parked: "parked",
    failed: "failed",
    details: ["activities", "sent"],
  },
  "batch scored": {
    records: "records",
    skipped: "skipped",
    parked: "parked",
    failed: "failedRecords",
    details: ["fans", "scored"],
  },
  "batch done": {
    records: "messages",
    failed: "failedMessages",
    details: ["fans", "fresh", "fetched", "written", "unknownFans"],
  },
};

const count = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) ? value : 0);

interface WorkerTally {
  delivered: number;
  records: number;
  skipped: number;
  parked: number;
  failed: number;
  /** Records of invocations that did not finish (given back to the source for a retry). */
  abandoned: number;
  /** Records delivered to invocations not yet reported, oldest first. */
  pending: number[];
  invocations: number;
  coldStarts: number;
  errors: number;
  timeouts: number;
  crashes: number;
  totalMs: number;
  maxMs: number;
  loggedErrors: number;
  otherOutput: number;
  details: Record<string, number>;
}

const newTally = (): WorkerTally => ({
  delivered: 0,
  records: 0,
  skipped: 0,
  parked: 0,
  failed: 0,
  abandoned: 0,
  pending: [],
  invocations: 0,
  coldStarts: 0,
  errors: 0,
  timeouts: 0,
  crashes: 0,
  totalMs: 0,
  maxMs: 0,
  loggedErrors: 0,
  otherOutput: 0,
  details: {},
});

/** The registered worker a mapping's name names (the longest name it contains). */
export function registeredFunctionOf(mapping: string): string | undefined {
  const names = Object.keys(WORKERS).filter((name) => mapping.includes(name));
  return names.sort((a, b) => b.length - a.length)[0];
}

/** What the figures have counted so far. */
interface Tallies {
  readonly functionOf: (mapping: string) => string | undefined;
  readonly sources: Map<string, number>;
  readonly mappings: Map<string, { function?: string; delivered: number; filtered: number; parked: number }>;
  readonly workers: Map<string, WorkerTally>;
  readonly failures: ReasonTally;
  readonly parkedByWorkers: ReasonTally;
  readonly parked: Map<string, number>;
}

type ReasonTally = Map<string, { count: number; functions: Record<string, number> }>;

/** Counts a line's reason, by its group, for `name`. */
function countReason(tally: ReasonTally, name: string, line: Readonly<Record<string, unknown>>) {
  const group = reasonGroup(typeof line.reason === "string" ? line.reason : "");
  const entry = tally.get(group) ?? tally.set(group, { count: 0, functions: {} }).get(group)!;
  entry.count += 1;
  entry.functions[name] = (entry.functions[name] ?? 0) + 1;
}

/** A tally's reasons, most frequent first. */
const byReason = (tally: ReasonTally): ReasonCount[] =>
  [...tally]
    .map(([reason, entry]) => ({ reason, count: entry.count, functions: { ...entry.functions } }))
    .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason));

const workerOf = (tallies: Tallies, name: string) =>
  tallies.workers.get(name) ?? tallies.workers.set(name, newTally()).get(name)!;

function mappingOf(tallies: Tallies, name: string) {
  if (!tallies.mappings.has(name)) {
    const fn = tallies.functionOf(name);
    tallies.mappings.set(name, { ...(fn === undefined ? {} : { function: fn }), delivered: 0, filtered: 0, parked: 0 });
  }
  return tallies.mappings.get(name)!;
}

const add = (map: Map<string, number>, key: string, by: number) => map.set(key, (map.get(key) ?? 0) + by);

/** A worker's log line: a failed or parked record, a batch summary, an error. */
function readLine(tallies: Tallies, name: string, line: Readonly<Record<string, unknown>>) {
  const tally = workerOf(tallies, name);
  if (line.level === "ERROR") tally.loggedErrors += 1;
  if (line.message === "record failed") return countReason(tallies.failures, name, line);
  if (line.message === "record parked") return countReason(tallies.parkedByWorkers, name, line);
  const summary = SUMMARIES[String(line.message)];
  if (!summary) return;
  tally.records += count(line[summary.records]);
  tally.skipped += summary.skipped ? count(line[summary.skipped]) : 0;
  tally.parked += summary.parked ? count(line[summary.parked]) : 0;
  tally.failed += count(line[summary.failed]);
  for (const key of summary.details) tally.details[key] = (tally.details[key] ?? 0) + count(line[key]);
}

function readInvocation(tallies: Tallies, event: Extract<LocalEvent, { kind: "invocation" }>) {
  const tally = workerOf(tallies, event.function);
  tally.invocations += 1;
  if (event.coldStart) tally.coldStarts += 1;
  tally.totalMs += event.ms;
  tally.maxMs = Math.max(tally.maxMs, event.ms);
  const records = tally.pending.shift() ?? 0;
  if (event.outcome === "ok") return;
  // No summary will account for these records: the source delivers them again.
  tally.abandoned += records;
  tally.errors += 1;
  if (event.outcome === "timeout") tally.timeouts += 1;
  if (event.outcome === "crash") tally.crashes += 1;
}

function readEvent(tallies: Tallies, event: LocalEvent) {
  switch (event.kind) {
    case "log":
      return readLine(tallies, event.function, event.line);
    case "output":
      workerOf(tallies, event.function).otherOutput += 1;
      return;
    case "invocation":
      return readInvocation(tallies, event);
    case "filtered":
      mappingOf(tallies, event.mapping).filtered += event.count;
      return;
    case "delivered": {
      const entry = mappingOf(tallies, event.mapping);
      entry.delivered += event.count;
      if (entry.function === undefined) return;
      const tally = workerOf(tallies, entry.function);
      tally.delivered += event.count;
      tally.pending.push(event.count);
      return;
    }
    case "parked":
      mappingOf(tallies, event.mapping).parked += event.count;
      add(tallies.parked, event.destination, event.count);
      return;
    case "input":
      add(tallies.sources, event.source, event.count);
      return;
  }
}

/** Builds the figures; see `Figures`. */
export function createFigures(options: FiguresOptions = {}): Figures {
  const now = options.now ?? Date.now;
  const startedAt = now();
  const tallies: Tallies = {
    functionOf: options.functionOf ?? registeredFunctionOf,
    sources: new Map(),
    mappings: new Map(),
    workers: new Map(),
    failures: new Map(),
    parkedByWorkers: new Map(),
    parked: new Map(),
  };
  const latency = createLatency();
  let queues: Record<string, number> = {};
  let queuesError: string | undefined;

  async function refresh() {
    if (!options.queueDepths) return;
    try {
      queues = { ...(await options.queueDepths()) };
      queuesError = undefined;
    } catch (error) {
      queuesError = (error as Error).message;
    }
  }

  const snapshot = (): FiguresSnapshot => ({
    elapsedMs: now() - startedAt,
    sources: Object.fromEntries(tallies.sources),
    mappings: Object.fromEntries([...tallies.mappings].map(([name, entry]) => [name, { ...entry }])),
    workers: Object.fromEntries([...tallies.workers].map(([name, tally]) => [name, workerFigures(tally)])),
    scores: { written: latency.written(), withoutActivity: latency.withoutActivity() },
    failures: byReason(tallies.failures),
    parkedByWorkers: byReason(tallies.parkedByWorkers),
    parked: Object.fromEntries(tallies.parked),
    queues: { ...queues },
    ...(queuesError === undefined ? {} : { queuesError }),
    latency: latency.figures(),
  });

  return {
    report: (event) => readEvent(tallies, event),
    activityPut: latency.activityPut,
    scoreWritten: latency.scoreWritten,
    refresh,
    snapshot,
  };
}

function workerFigures(tally: WorkerTally): WorkerFigures {
  return {
    delivered: tally.delivered,
    records: tally.records,
    ok: tally.records - tally.skipped - tally.parked - tally.failed,
    skipped: tally.skipped,
    failed: tally.failed,
    parked: tally.parked,
    inFlight: Math.max(0, tally.delivered - tally.records - tally.abandoned),
    invocations: tally.invocations,
    coldStarts: tally.coldStarts,
    errors: tally.errors,
    timeouts: tally.timeouts,
    crashes: tally.crashes,
    ...(tally.invocations > 0 ? { avgMs: Math.round(tally.totalMs / tally.invocations), maxMs: Math.round(tally.maxMs) } : {}),
    loggedErrors: tally.loggedErrors,
    otherOutput: tally.otherOutput,
    details: { ...tally.details },
  };
}

/**
 * Activity → score latency: a score's time minus the time of the activity its ARAI was fetched
 * for, when the fan record names it (`lastActivity.at`); otherwise minus the earliest activity put
 * for its fan that no earlier score covered (a score covers every activity put up to its time).
 * An activity inside the ARAI freshness window leads to no new score, and is no sample.
 */
function createLatency() {
  const uncovered = new Map<string, number[]>();
  const samples: number[] = [];
  let sorted = true;
  let written = 0;
  let withoutActivity = 0;

  return {
    activityPut(globalUserId: string, atMs: number) {
      const times = uncovered.get(globalUserId) ?? uncovered.set(globalUserId, []).get(globalUserId)!;
      let index = times.length;
      while (index > 0 && times[index - 1]! > atMs) index--;
      times.splice(index, 0, atMs);
    },
    scoreWritten(globalUserId: string, atMs: number, activityAtMs?: number) {
      written += 1;
      if (activityAtMs !== undefined) {
        // The activity the scored ARAI was fetched for, as the fan record names it.
        samples.push(atMs - activityAtMs);
        sorted = false;
        uncovered.delete(globalUserId);
        return;
      }
      const times = uncovered.get(globalUserId);
      if (!times || times.length === 0 || times[0]! > atMs) {
        withoutActivity += 1;
        return;
      }
      samples.push(atMs - times[0]!);
      sorted = false;
      const later = times.filter((time) => time > atMs);
      if (later.length === 0) uncovered.delete(globalUserId);
      else uncovered.set(globalUserId, later);
    },
    written: () => written,
    withoutActivity: () => withoutActivity,
    figures(): LatencyFigures {
      if (!sorted) {
        samples.sort((a, b) => a - b);
        sorted = true;
      }
      if (samples.length === 0) return { samples: 0 };
      return {
        samples: samples.length,
        p50: percentile(samples, 50),
        p95: percentile(samples, 95),
        p99: percentile(samples, 99),
        max: samples[samples.length - 1],
      };
    },
  };
}
