/**
 * The reconciliation at the end of a bounded run: every event the traffic generator sent is
 * accounted for as scored, skipped (why), parked (why), or LOST; the stored scores are checked
 * against what the model should have given, and no fan is scored for activity that is not scored.
 * Pure: the caller reads the table, the failure queue and the dead-letter queues, and passes them in.
 * The failure queue holds both Lambda's pointers to what a mapping gave up on and the parked-record
 * documents of the poison records the workers parked themselves (workers/shared/runtime/parking.ts).
 */
import { PARKED_REASON_ATTRIBUTE } from "../../workers/shared/runtime/deadLetters";
import { readParkedRecord } from "../../workers/shared/runtime/parking";
import type { ExpectedOutcome, SentEvent, SourceRole } from "./traffic/generator";
import { formatCount, formatTable, reasonGroup } from "./text";
import type { LocalEvent } from "./types";

/** A fan's stored score (its fan record, `type = score`). */
export interface StoredScore {
  readonly score: number;
  readonly scoredAraiVersion?: number;
  readonly [field: string]: unknown;
}

/**
 * How a parked or failed record is named: a Kinesis sequence number, a Kafka record as its worker
 * reports it (`{partition: "<topic>-<n>", offset}`), or `<topic>-<n>@<offset>` / `<n>@<offset>`.
 */
export type RecordRef = string | { readonly partition: string | number; readonly offset: number | string };

/** Records a failure destination holds (the mappings' on-failure queue, a dead-letter queue). */
export interface ParkedRecords {
  /** The input they came from: the stream or topic, as the generator's ids name it. */
  readonly source: string;
  /** Where they are parked, for the tables. */
  readonly destination?: string;
  readonly records?: readonly RecordRef[];
  /**
   * A batch named by its first and last position, both included: sequence numbers (of `shardId`,
   * when given), as Kinesis' on-failure records give them, or offsets (of `partition`).
   */
  readonly range?: {
    readonly first: string | number;
    readonly last: string | number;
    readonly shardId?: string;
    readonly partition?: number;
  };
  /** Fans whose activity messages were parked (a scoring queue's dead-letter queue). */
  readonly globalUserIds?: readonly string[];
  readonly reason?: string;
}

/** A worker's `record failed` line. */
export interface WorkerFailure {
  /** The input the record came from; Kafka records name their topic themselves. */
  readonly source?: string;
  readonly function?: string;
  readonly record: unknown;
  readonly reason: string;
}

export interface LedgerInput {
  readonly sent: readonly SentEvent[];
  /** Stored scores by globalUserId. */
  readonly scores: ReadonlyMap<string, StoredScore>;
  /** The score the model should have given the fan, when known. */
  readonly expectedScore?: (globalUserId: string) => number | undefined;
  readonly parked: readonly ParkedRecords[];
  readonly workerFailures?: readonly WorkerFailure[];
  /** Largest difference between a stored and an expected score that is not wrong. @default 1e-9 */
  readonly tolerance?: number;
}

export type LedgerOutcome = "scored" | "skipped" | "parked" | "lost";

/** What became of one event. */
export interface LedgerEntry {
  readonly seq: number;
  readonly source: SourceRole;
  /** The stream or topic. */
  readonly target: string;
  /** Its sequence number, or `<topic>-<partition>@<offset>`, when the sink returned it. */
  readonly record?: string;
  readonly globalUserId?: string;
  readonly kind: string;
  readonly expected: ExpectedOutcome["outcome"];
  readonly outcome: LedgerOutcome;
  readonly reason?: string;
}

interface Tally {
  in: number;
  scored: number;
  skipped: number;
  parked: number;
  lost: number;
}

export interface Ledger {
  /** `in = scored + skipped + parked + lost`; `balanced` when nothing is lost. */
  readonly totals: Readonly<Tally> & { readonly unexpected: number; readonly balanced: boolean };
  readonly bySource: Readonly<Record<string, Readonly<Tally>>>;
  /** Skipped events by reason (filtered, notScorable, failedResult, fanUnknown). */
  readonly skipped: Readonly<Record<string, number>>;
  /** Parked events by normalised reason. */
  readonly parked: Readonly<Record<string, number>>;
  readonly lost: readonly LedgerEntry[];
  /** Events accounted for, but not as expected (a scorable activity parked, a skipped one failed). */
  readonly unexpected: readonly LedgerEntry[];
  /** Fans whose stored score is not the one expected. */
  readonly wrongScores: readonly { readonly globalUserId: string; readonly score: number; readonly expected: number }[];
  /** Fans scored though none of their events is scored (what they did is not scored, or they are unknown). */
  readonly unexpectedScores: readonly {
    readonly globalUserId: string;
    readonly score: number;
    readonly reasons: readonly string[];
  }[];
  /** Fans scored as expected whose expected score was not known, so not checked. */
  readonly uncheckedScores: number;
  /** Every event, in generated order. */
  readonly entries: readonly LedgerEntry[];
  /** Nothing lost, nothing unexpected, no wrong or unexpected score. */
  readonly ok: boolean;
}

const KAFKA_AT = /^(?:(.*)-)?(\d+)@(\d+)$/;

/** A record's key within its input: the sequence number, or `<partition>@<offset>`; and the topic a Kafka ref names. */
function refKey(ref: unknown): { key: string; topic?: string } | undefined {
  if (typeof ref === "string") {
    const match = KAFKA_AT.exec(ref);
    if (!match) return { key: ref };
    return { key: `${match[2]}@${match[3]}`, ...(match[1] ? { topic: match[1] } : {}) };
  }
  if (typeof ref !== "object" || ref === null) return undefined;
  const { partition, offset } = ref as { partition?: unknown; offset?: unknown };
  if (offset === undefined) return undefined;
  if (typeof partition === "number") return { key: `${partition}@${offset}` };
  const match = typeof partition === "string" ? /^(?:(.*)-)?(\d+)$/.exec(partition) : null;
  if (!match) return undefined;
  return { key: `${match[2]}@${offset}`, ...(match[1] ? { topic: match[1] } : {}) };
}

/** An event's key within its input, when the sink returned its position. */
function eventKey(event: SentEvent): string | undefined {
  const { sequenceNumber, partition, offset } = event.id;
  if (sequenceNumber !== undefined) return sequenceNumber;
  return partition !== undefined && offset !== undefined ? `${partition}@${offset}` : undefined;
}

const DIGITS = /^\d+$/;

/** Whether the event lies in a parked batch's range. */
function inRange(event: SentEvent, range: NonNullable<ParkedRecords["range"]>): boolean {
  const { sequenceNumber, shardId, partition, offset } = event.id;
  const [first, last] = [String(range.first), String(range.last)];
  if (!DIGITS.test(first) || !DIGITS.test(last)) return false;
  const position = sequenceNumber ?? (offset === undefined ? undefined : String(offset));
  if (position === undefined || !DIGITS.test(position)) return false;
  if (sequenceNumber !== undefined && range.shardId !== undefined && shardId !== undefined && range.shardId !== shardId)
    return false;
  if (sequenceNumber === undefined && range.partition !== undefined && partition !== range.partition) return false;
  return BigInt(first) <= BigInt(position) && BigInt(position) <= BigInt(last);
}

/** Where each parked and failed record can be looked up by the event it came from. */
function createIndex(parked: readonly ParkedRecords[], failures: readonly WorkerFailure[]) {
  const records = new Map<string, Map<string, ParkedRecords>>();
  const ranges = new Map<string, ParkedRecords[]>();
  const fans = new Map<string, ParkedRecords>();
  const failed = new Map<string, Map<string, string>>();
  const inner = <T>(map: Map<string, Map<string, T>>, key: string) => map.get(key) ?? map.set(key, new Map()).get(key)!;

  for (const entry of parked) {
    for (const ref of entry.records ?? []) {
      const key = refKey(ref);
      if (key) inner(records, entry.source).set(key.key, entry);
    }
    if (entry.range) (ranges.get(entry.source) ?? ranges.set(entry.source, []).get(entry.source)!).push(entry);
    for (const fan of entry.globalUserIds ?? []) fans.set(fan, entry);
  }
  for (const failure of failures) {
    const key = refKey(failure.record);
    // Without its input, a sequence number is looked up in every stream.
    if (key) inner(failed, failure.source ?? key.topic ?? "*").set(key.key, failure.reason);
  }

  return {
    parkedOf(event: SentEvent): ParkedRecords | undefined {
      const key = eventKey(event);
      const named = key === undefined ? undefined : records.get(event.id.target)?.get(key);
      return named ?? ranges.get(event.id.target)?.find((entry) => inRange(event, entry.range!));
    },
    fanParked: (globalUserId: string | undefined) => (globalUserId === undefined ? undefined : fans.get(globalUserId)),
    failureOf(event: SentEvent): string | undefined {
      const key = eventKey(event);
      if (key === undefined) return undefined;
      return failed.get(event.id.target)?.get(key) ?? (event.source === "kafka" ? undefined : failed.get("*")?.get(key));
    },
  };
}

type Index = ReturnType<typeof createIndex>;

/** What became of one event, by what the run left: stored scores, parked records, failure lines. */
function settle(event: SentEvent, index: Index, scores: LedgerInput["scores"]): { outcome: LedgerOutcome; reason?: string } {
  const parked = index.parkedOf(event);
  const failure = index.failureOf(event);
  const neverParked = (what: string) => ({
    outcome: "lost" as const,
    reason: failure ? `failed (${failure}), never parked` : what,
  });
  const { expected } = event;
  switch (expected.outcome) {
    case "scored": {
      if (event.globalUserId !== undefined && scores.has(event.globalUserId)) return { outcome: "scored" };
      const byFan = index.fanParked(event.globalUserId);
      const where = parked ?? byFan;
      if (where)
        return { outcome: "parked", reason: failure ?? where.reason ?? `parked in ${where.destination ?? where.source}` };
      return neverParked("fan not scored, record not parked");
    }
    case "skipped":
      // A skipped record may lie in a parked batch after a failed one; only a failure of its own is unexpected.
      if (failure === undefined) return { outcome: "skipped", reason: `${expected.reason}: ${expected.detail}` };
      return parked ? { outcome: "parked", reason: failure } : neverParked("");
    case "parked":
      if (parked) return { outcome: "parked", reason: failure ?? parked.reason ?? expected.reason };
      return neverParked(`not parked (${expected.reason})`);
  }
}

/** The fans' scores against the events: wrong scores, and fans scored that should not be. */
function checkScores(input: LedgerInput) {
  const tolerance = input.tolerance ?? 1e-9;
  const fans = new Map<string, { scored: boolean; reasons: Set<string> }>();
  for (const event of input.sent) {
    if (event.globalUserId === undefined) continue;
    const fan =
      fans.get(event.globalUserId) ??
      fans.set(event.globalUserId, { scored: false, reasons: new Set() }).get(event.globalUserId)!;
    if (event.expected.outcome === "scored") fan.scored = true;
    else if (event.expected.outcome === "skipped") fan.reasons.add(event.expected.reason);
  }
  const wrongScores: { globalUserId: string; score: number; expected: number }[] = [];
  const unexpectedScores: { globalUserId: string; score: number; reasons: string[] }[] = [];
  let uncheckedScores = 0;
  for (const [globalUserId, fan] of fans) {
    const stored = input.scores.get(globalUserId);
    if (!stored) continue;
    if (!fan.scored) {
      unexpectedScores.push({ globalUserId, score: stored.score, reasons: [...fan.reasons].sort() });
      continue;
    }
    const expected = input.expectedScore?.(globalUserId);
    if (expected === undefined) uncheckedScores += 1;
    else if (!(Math.abs(stored.score - expected) <= tolerance)) wrongScores.push({ globalUserId, score: stored.score, expected });
  }
  return { wrongScores, unexpectedScores, uncheckedScores };
}

/**
 * Reconciles a bounded run. Each event is settled by its expected outcome:
 * - expected scored: scored when its fan has a stored score; else parked when its record (or, in a
 *   dead-letter queue, its fan's activity) is parked; else LOST;
 * - expected skipped: skipped, unless a worker failed its record (then parked or LOST);
 * - expected parked: parked when its record is among the parked ones; else LOST.
 * A fan-level check: a fan is scored when any of its events is, so one event of a scored fan lost
 * on the way is not seen; activity of the fan's that is not scored never makes a score.
 */
export function reconcile(input: LedgerInput): Ledger {
  const index = createIndex(input.parked, input.workerFailures ?? []);
  const zero = (): Tally => ({ in: 0, scored: 0, skipped: 0, parked: 0, lost: 0 });
  const totals = zero();
  const bySource: Record<string, Tally> = {};
  const skipped: Record<string, number> = {};
  const parked: Record<string, number> = {};
  const entries = [...input.sent]
    .sort((a, b) => a.seq - b.seq)
    .map((event) => {
      const { outcome, reason } = settle(event, index, input.scores);
      for (const tally of [totals, (bySource[event.source] ??= zero())]) {
        tally.in += 1;
        tally[outcome] += 1;
      }
      if (outcome === "skipped" && event.expected.outcome === "skipped") {
        skipped[event.expected.reason] = (skipped[event.expected.reason] ?? 0) + 1;
      }
      const group = reasonGroup(reason ?? "");
      if (outcome === "parked") parked[group] = (parked[group] ?? 0) + 1;
      return entryOf(event, outcome, reason);
    });
  const lost = entries.filter((entry) => entry.outcome === "lost");
  const unexpected = entries.filter((entry) => entry.outcome !== "lost" && entry.outcome !== entry.expected);
  const scores = checkScores(input);
  const ok =
    lost.length === 0 && unexpected.length === 0 && scores.wrongScores.length === 0 && scores.unexpectedScores.length === 0;
  return {
    totals: { ...totals, unexpected: unexpected.length, balanced: totals.lost === 0 },
    bySource,
    skipped,
    parked,
    lost,
    unexpected,
    ...scores,
    entries,
    ok,
  };
}

function entryOf(event: SentEvent, outcome: LedgerOutcome, reason: string | undefined): LedgerEntry {
  const record = eventKey(event);
  return {
    seq: event.seq,
    source: event.source,
    target: event.id.target,
    ...(record === undefined ? {} : { record: event.source === "kafka" ? `${event.id.target}-${record}` : record }),
    ...(event.globalUserId === undefined ? {} : { globalUserId: event.globalUserId }),
    kind: event.kind,
    expected: event.expected.outcome,
    outcome,
    ...(reason ? { reason } : {}),
  };
}

/** The ledger as text: totals by input, reasons, then what is wrong (up to `limit` lines each). */
export function renderLedger(ledger: Ledger, limit = 20): string {
  const row = (name: string, tally: Readonly<Tally>) => [name, tally.in, tally.scored, tally.skipped, tally.parked, tally.lost];
  const sources = Object.entries(ledger.bySource).sort(([a], [b]) => a.localeCompare(b));
  const list = (title: string, lines: readonly string[]) =>
    lines.length === 0
      ? []
      : ["", `${title} (${formatCount(lines.length)})`, ...lines.slice(0, limit).map((line) => `  ${line}`)];
  const describe = (entry: LedgerEntry) =>
    `#${entry.seq} ${entry.source} ${entry.record ?? "(no position)"} ${entry.globalUserId ?? "-"} ${entry.kind}: ${entry.reason ?? entry.outcome}`;
  const counts = (title: string, record: Readonly<Record<string, number>>) =>
    Object.keys(record).length === 0
      ? []
      : [
          "",
          ...formatTable(
            [title, "events"],
            Object.entries(record).sort((a, b) => b[1] - a[1]),
          ),
        ];
  return [
    ...formatTable(
      ["input", "in", "scored", "skipped", "parked", "LOST"],
      [...sources.map(([name, t]) => row(name, t)), row("total", ledger.totals)],
    ),
    ...counts("skipped because", ledger.skipped),
    ...counts("parked because", ledger.parked),
    ...list("LOST", ledger.lost.map(describe)),
    ...list(
      "not as expected",
      ledger.unexpected.map((entry) => `${describe(entry)} (expected ${entry.expected})`),
    ),
    ...list(
      "wrong scores",
      ledger.wrongScores.map((wrong) => `${wrong.globalUserId}: ${wrong.score}, expected ${wrong.expected}`),
    ),
    ...list(
      "scored, should not be",
      ledger.unexpectedScores.map((fan) => `${fan.globalUserId}: ${fan.score} (only ${fan.reasons.join(", ")})`),
    ),
    "",
    `${ledger.ok ? "OK" : "NOT OK"}: ${formatCount(ledger.totals.in)} in = ${formatCount(ledger.totals.scored)} scored + ${formatCount(ledger.totals.skipped)} skipped + ${formatCount(ledger.totals.parked)} parked + ${formatCount(ledger.totals.lost)} lost` +
      (ledger.uncheckedScores > 0 ? `; ${formatCount(ledger.uncheckedScores)} scores not checked (no expected score)` : ""),
    "",
  ].join("\n");
}

/** The ledger as JSON text, every entry included unless `entries` is false. */
export function ledgerJson(ledger: Ledger, options: { readonly entries?: boolean } = {}): string {
  const { entries, ...rest } = ledger;
  return JSON.stringify(options.entries === false ? rest : { ...rest, entries }, null, 2);
}

/**
 * The failures no later delivery overcame. A stream or queue delivers a failed record again; a
 * record failed on one delivery and processed on a later one is not a failure of the run. So a
 * record whose deliveries to the function (`deliveries`, by `deliveryKey`) outnumber its failures
 * was processed by one of them, and its failures are dropped; a record whose deliveries are not
 * known keeps them.
 */
export function outstandingFailures(
  failures: readonly WorkerFailure[],
  deliveries: ReadonlyMap<string, number>,
): WorkerFailure[] {
  const failed = new Map<string, number>();
  for (const failure of failures) {
    const key = deliveryKey(failure.function, failure.record);
    if (key !== undefined) failed.set(key, (failed.get(key) ?? 0) + 1);
  }
  return failures.filter((failure) => {
    const key = deliveryKey(failure.function, failure.record);
    const delivered = key === undefined ? undefined : deliveries.get(key);
    return delivered === undefined || failed.get(key!)! >= delivered;
  });
}

/** A record's key among a function's deliveries: its sequence number, message id or Kafka key. */
export function deliveryKey(fn: string | undefined, record: unknown): string | undefined {
  return fn === undefined || typeof record !== "string" ? undefined : `${fn}\u0000${record}`;
}

/**
 * The `record failed` lines among the local system's events, each with the input its function
 * reads (`sourceOf`; Kafka records name their topic themselves).
 */
export function workerFailuresFrom(
  events: readonly LocalEvent[],
  sourceOf?: (fn: string) => string | undefined,
): WorkerFailure[] {
  return events.flatMap((event) => {
    if (event.kind !== "log" || event.line.message !== "record failed") return [];
    const source = sourceOf?.(event.function);
    const reason = typeof event.line.reason === "string" ? event.line.reason : "";
    return [{ function: event.function, record: event.line.record, reason, ...(source === undefined ? {} : { source }) }];
  });
}

/**
 * The record a parked-record document holds (a poison record its worker parked itself): its input
 * (the stream named by its ARN, or its topic), its position (sequence number, or partition and
 * offset) and the document's reason; undefined when the message is not one.
 */
export function parkedFromParkedRecord(message: unknown, destination?: string): ParkedRecords | undefined {
  const reading = readParkedRecord(message);
  if (!reading.ok) return undefined;
  const { source, reason } = reading.value;
  const where = destination === undefined ? {} : { destination };
  if (source.kind === "kafka") {
    return { source: source.topic, ...where, records: [{ partition: source.partition, offset: source.offset }], reason };
  }
  const stream = source.eventSourceARN ?? "";
  return { source: stream.slice(stream.lastIndexOf("/") + 1), ...where, records: [source.sequenceNumber], reason };
}

/**
 * The records a Kinesis mapping's on-failure record names (its `KinesisBatchInfo`: stream ARN,
 * shard, first and last sequence number), or undefined when the message is not one. The reason of
 * each record is its worker's `record failed` line.
 */
export function parkedFromKinesisFailure(message: unknown, destination?: string): ParkedRecords | undefined {
  const info = (message as { KinesisBatchInfo?: Record<string, unknown> } | null)?.KinesisBatchInfo;
  if (!info || typeof info.streamArn !== "string") return undefined;
  const { startSequenceNumber: first, endSequenceNumber: last, shardId } = info;
  if (typeof first !== "string" || typeof last !== "string") return undefined;
  return {
    source: info.streamArn.slice(info.streamArn.lastIndexOf("/") + 1),
    ...(destination === undefined ? {} : { destination }),
    range: { first, last, ...(typeof shardId === "string" ? { shardId } : {}) },
  };
}

/** A dead-letter queue's message as the ledger reads it: its body and its String message attributes. */
export interface DeadLetterMessage {
  readonly body?: string;
  readonly attributes?: Readonly<Record<string, { readonly StringValue?: string } | undefined>>;
}

/**
 * The fan a scoring queue's dead-letter message is about, and why it is there: the `parkedReason`
 * its worker gave when it parked the message itself (workers/shared/runtime/deadLetters.ts), else
 * `moved after N receives` (SQS moved it, N being the source queue's maxReceiveCount). Undefined
 * when the body names no fan.
 */
export function parkedFromDeadLetter(
  message: DeadLetterMessage,
  destination: string,
  maxReceiveCount: number | undefined,
): ParkedRecords | undefined {
  let body: unknown;
  try {
    body = JSON.parse(message.body ?? "");
  } catch {
    return undefined;
  }
  const globalUserId = (body as { globalUserId?: unknown } | null)?.globalUserId;
  if (typeof globalUserId !== "string") return undefined;
  const parkedReason = message.attributes?.[PARKED_REASON_ATTRIBUTE]?.StringValue;
  const reason = parkedReason ?? (maxReceiveCount === undefined ? "moved by SQS" : `moved after ${maxReceiveCount} receives`);
  return { source: destination, destination, globalUserIds: [globalUserId], reason };
}
