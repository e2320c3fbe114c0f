/**
 * The side effects of a drill's inputs, each counted per what it must happen at most once for
 * (docs/data-model.md): a score per fan and ARAI version, an ARAI write per fan within the freshness
 * window (a burst of activity costs one fetch), an activity message received by lookupArai from a
 * FIFO queue per source record, a rescore record per fan and day, a Persona inquiry per checkLiveness request,
 * a Glue run per export and workflow. Read from the table's change records, the workers' log
 * lines and the stand-ins; pure, the runner passes what it kept.
 */
import type { PersonaInquiry } from "../services/persona";
import type { WorkflowRun } from "../services/glue";
import type { TableChange } from "../table/streamingDestination";
import type { SideEffectCount } from "./types";

/** What the counts are made from: only the drill's own fans and exports count. */
export interface SideEffectInput {
  /** The drill's fans (the generator's and its own). */
  readonly fans: ReadonlySet<string>;
  /** The table's change records since the drill started. */
  readonly changes: readonly TableChange[];
  /** lookupArai's `activity received` lines since the drill started. */
  readonly received: readonly Record<string, unknown>[];
  /** lookupArai's `ARAI stored` lines since the drill started. */
  readonly stored: readonly Record<string, unknown>[];
  /** lookupArai's freshness window (ARAI_FRESHNESS_SECONDS), ms. */
  readonly freshnessMs: number;
  readonly inquiries: readonly PersonaInquiry[];
  /** The session ids checkLiveness answered the drill's requests with, by fan. */
  readonly answeredSessions: ReadonlyMap<string, ReadonlySet<string>>;
  /** The export keys the drill notified, and the Glue runs started. */
  readonly exports: readonly string[];
  readonly runs: readonly WorkflowRun[];
}

type Image = Record<string, { S?: string; N?: string } | undefined>;

const text = (image: Image | undefined, name: string) => image?.[name]?.S;
const number = (image: Image | undefined, name: string) => image?.[name]?.N;

/** Counts `keys`: the total, and the keys seen more than once. */
function tally(effect: string, keys: readonly string[]): SideEffectCount {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return { effect, total: keys.length, repeated: [...counts].filter(([, n]) => n > 1).map(([key]) => key) };
}

/** Scores written (a change whose new image is a score of another ARAI version than the old one), per fan and version. */
function scoresWritten(input: SideEffectInput): SideEffectCount {
  const keys = input.changes.flatMap(({ data }) => {
    const image = data.dynamodb.NewImage as Image | undefined;
    const fan = text(image, "globalUserId");
    if (data.eventName === "REMOVE" || text(image, "type") !== "score" || !fan || !input.fans.has(fan)) return [];
    const version = number(image, "scoredAraiVersion");
    return version === number(data.dynamodb.OldImage as Image | undefined, "scoredAraiVersion") ? [] : [`${fan} v${version}`];
  });
  return tally("score written (per fan and ARAI version)", keys);
}

/**
 * When the lookupArai invocation that stored a fan's ARAI at `stamp` (its `araiUpdatedAt`) had
 * received its messages: the last of its `activity received` lines; undefined when unknown.
 */
function lookupBegan(input: SideEffectInput, fan: string, stamp: string | undefined): number | undefined {
  const stored = input.stored.find((line) => line.globalUserId === fan && line.araiUpdatedAt === stamp);
  const request = stored?.function_request_id;
  if (request === undefined) return undefined;
  const times = input.received
    .filter((line) => line.function_request_id === request)
    .map((line) => Date.parse(String(line.timestamp)))
    .filter((at) => !Number.isNaN(at));
  return times.length > 0 ? Math.max(...times) : undefined;
}

/**
 * ARAI writes (a change that raised araiVersion), per fan. A second write within the freshness
 * window is repeated, unless the lookup that made it had begun before the first write landed
 * (it could not see it: two lookups in flight at once, from the two scoring queues), which is
 * concurrent.
 */
function araiWritten(input: SideEffectInput): SideEffectCount {
  const writes = new Map<string, { at: number; stamp?: string }[]>();
  for (const { data } of input.changes) {
    const image = data.dynamodb.NewImage as Image | undefined;
    const fan = text(image, "globalUserId");
    if (data.eventName === "REMOVE" || !fan || !input.fans.has(fan) || text(image, "userId") !== fan) continue;
    const version = number(image, "araiVersion");
    if (version === undefined || version === number(data.dynamodb.OldImage as Image | undefined, "araiVersion")) continue;
    const write = { at: data.dynamodb.ApproximateCreationDateTime, stamp: text(image, "araiUpdatedAt") };
    writes.set(fan, [...(writes.get(fan) ?? []), write]);
  }
  const repeated = new Set<string>();
  const concurrent = new Set<string>();
  for (const [fan, list] of writes) {
    list.forEach((write, index) => {
      const previous = list[index - 1];
      if (!previous || write.at - previous.at >= input.freshnessMs) return;
      const began = lookupBegan(input, fan, write.stamp);
      if (began !== undefined && began < previous.at) concurrent.add(fan);
      else repeated.add(fan);
    });
  }
  const total = [...writes.values()].reduce((sum, list) => sum + list.length, 0);
  return {
    effect: "ARAI written (per fan within the freshness window)",
    total,
    repeated: [...repeated],
    concurrent: [...concurrent].filter((fan) => !repeated.has(fan)),
  };
}

/**
 * Activity messages lookupArai received from a FIFO queue, per source record (its correlation id):
 * a message delivered again is one message; two messages for one record are repeated. A standard
 * queue (the on-demand queue) has no deduplication, in SQS as here, so a record its producer sends
 * again is a second message there by design; what must not follow from it twice, the ARAI write
 * and the score, is counted on its own.
 */
function messagesReceived(input: SideEffectInput): SideEffectCount {
  const messages = new Map<string, Set<string>>();
  for (const line of input.received) {
    const fan = line.globalUserId;
    if (typeof fan !== "string" || !input.fans.has(fan) || line.source === "rescore") continue;
    if (typeof line.queue !== "string" || !line.queue.endsWith(".fifo")) continue;
    const key = String(line.correlationId);
    messages.set(key, (messages.get(key) ?? new Set()).add(String(line.record)));
  }
  const total = [...messages.values()].reduce((sum, ids) => sum + ids.size, 0);
  const repeated = [...messages].filter(([, ids]) => ids.size > 1).map(([id]) => id);
  return { effect: "activity message received (per source record, FIFO queue)", total, repeated };
}

/** Rescore records put, per fan and day. */
function rescoresScheduled(input: SideEffectInput): SideEffectCount {
  const keys = input.changes.flatMap(({ data }) => {
    const key = (data.dynamodb.Keys as Image).userId?.S ?? "";
    const fan = /^rescore#(.+)#\d{4}-\d{2}-\d{2}$/.exec(key)?.[1];
    return data.eventName === "INSERT" && fan !== undefined && input.fans.has(fan) ? [key] : [];
  });
  return tally("rescore scheduled (per fan and day)", keys);
}

/**
 * Persona inquiries, per checkLiveness request: an inquiry no answer handed to the fan was opened
 * twice for one request (or for none), and is repeated.
 */
function inquiriesCreated(input: SideEffectInput): SideEffectCount {
  const mine = input.inquiries.filter((inquiry) => inquiry.referenceId !== null && input.fans.has(inquiry.referenceId));
  const repeated = mine
    .filter((inquiry) => !input.answeredSessions.get(inquiry.referenceId!)?.has(inquiry.id))
    .map((inquiry) => `${inquiry.referenceId} ${inquiry.id}`);
  return { effect: "Persona inquiry created (per checkLiveness request)", total: mine.length, repeated };
}

/** Glue runs, per export and workflow. */
function runsStarted(input: SideEffectInput): SideEffectCount {
  const exports = new Set(input.exports);
  const keys = input.runs.flatMap((run) => {
    const key = run.runProperties.key;
    return key !== undefined && exports.has(key) ? [`${run.workflow} ${key}`] : [];
  });
  return tally("Glue run started (per export and workflow)", keys);
}

/** Every side effect of the drill's inputs, counted. */
export function countSideEffects(input: SideEffectInput): SideEffectCount[] {
  return [
    scoresWritten(input),
    araiWritten(input),
    messagesReceived(input),
    rescoresScheduled(input),
    inquiriesCreated(input),
    runsStarted(input),
  ];
}
