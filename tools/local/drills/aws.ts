/**
 * Drills of the AWS services' own faults, put in place at the wire (faults/proxy.ts) and in the
 * local Lambda and SQS emulation: DynamoDB throttling and unprocessed batch items, SQS refusing
 * batch entries, a worker's container killed while it holds a batch, and sources delivering
 * records again. In each the system must lose nothing and repeat no side effect: the SDK's and
 * the batch helpers' retries, the sources' redelivery, FIFO deduplication ids, conditional writes,
 * ARAI freshness and the score's araiVersion condition are what it has for that.
 *
 * Each drill checks that its fault bit (calls faulted and what the callers did about it, retries
 * and redeliveries seen in the workers' logs), so none passes by missing its fault. Clearing a
 * wire fault stops it and leaves its rule passing everything and tallying the callers' retries
 * until the drill's `verify`, which removes it. A fault is held past its traffic until it has
 * bitten where the drill needs it (at most a minute): the later stages of the path get the
 * traffic seconds after it was sent.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SEND_ATTEMPTS } from "../../../workers/shared/runtime/sqs";
import { throttling, type ThrottlingStats, unprocessedItems, type UnprocessedStats } from "../faults/dynamodb";
import { failedEntries, type FailedEntriesStats, type SendEntry } from "../faults/sqs";
import type { TrackedRule } from "../faults/share";
import type { PendingKill } from "../lambda/pool";
import type { RunningSystem } from "../run";
import type { Drill, DrillContext, FaultHits } from "./types";

type LogLine = Record<string, unknown>;

/** A worker's JSON log lines so far (`logs/<worker>.log` of the run), with `message` when given. */
export function workerLog(running: RunningSystem, worker: string, message?: string): LogLine[] {
  const file = path.join(running.system.dataDir, "logs", `${worker}.log`);
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .flatMap((text) => {
      if (!text.startsWith("{")) return [];
      try {
        const line = JSON.parse(text) as LogLine;
        return message === undefined || line.message === message ? [line] : [];
      } catch {
        return [];
      }
    });
}

/** A worker's log lines with `message` written from now on (the ones before are passed over). */
function linesFromNow(running: RunningSystem, worker: string, message: string): () => LogLine[] {
  const before = workerLog(running, worker, message).length;
  return () => workerLog(running, worker, message).slice(before);
}

/** Longest a fault is held after its traffic, waiting to bite where its drill needs it. */
const HOLD_LIMIT_MS = 60_000;

/**
 * Resolves once `bit` holds, or after HOLD_LIMIT_MS (the drill's checks then say where it did not
 * bite). A fault on a later stage of the path (the scores, the ARAI lookups) must outlast the
 * traffic by the time the path takes to get there.
 */
async function holdUntil(bit: () => boolean): Promise<void> {
  const until = Date.now() + HOLD_LIMIT_MS;
  while (!bit() && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 100));
}

/** Names of the queues activity is sent to (those with a dead-letter queue), not the failure queues. */
function scoringQueueNames(running: RunningSystem): Set<string> {
  return new Set([...running.system.queues.values()].flatMap((queue) => (queue.planned.redrive ? [queue.planned.name] : [])));
}

const queueName = (url: string) => url.slice(url.lastIndexOf("/") + 1);

/** The activity source a SendMessageBatch entry's body names, if it is an activity message. */
function sourceOf(entry: SendEntry): string | undefined {
  try {
    const source = (JSON.parse(entry.body) as { source?: unknown }).source;
    return typeof source === "string" ? source : undefined;
  } catch {
    return undefined;
  }
}

/** How many times each value of `field` occurs in `lines`. */
function tally(lines: readonly LogLine[], field: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines) {
    const value = line[field];
    if (value === undefined) continue;
    const key = typeof value === "string" ? value : JSON.stringify(value);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

const byOperation = (counts: Readonly<Record<string, number>>) =>
  Object.entries(counts)
    .map(([operation, count]) => `${operation} ${count}`)
    .join(", ") || "none";

/** A drill whose state lives from its `inject` to its `verify`. */
function drill<State>(
  definition: Omit<Drill, "inject" | "verify" | "hits"> & {
    inject(context: DrillContext): Promise<{ state: State; clear: () => Promise<void> }>;
    verify(context: DrillContext, state: State): Promise<string[]>;
    /** How hard the fault bit, from the drill's own tallies. */
    hits(state: State): FaultHits;
  },
): Drill {
  let state: State | undefined;
  return {
    name: definition.name,
    summary: definition.summary,
    ...(definition.traffic ? { traffic: definition.traffic } : {}),
    async inject(context) {
      const injected = await definition.inject(context);
      state = injected.state;
      return injected.clear;
    },
    async hits() {
      return state === undefined ? { faulted: 0 } : definition.hits(state);
    },
    async verify(context) {
      if (state === undefined) return [`${definition.name}: verified before its fault was put in place`];
      return definition.verify(context, state);
    },
  };
}

/** The calls the throttling must reach: fan-record reads, ARAI and score writes, rescore puts. */
const THROTTLED_OPERATIONS = ["BatchGetItem", "UpdateItem", "PutItem"];

const dynamodbThrottling = drill<TrackedRule<ThrottlingStats>>({
  name: "dynamodb-throttling",
  summary:
    "A quarter of the workers' DynamoDB item calls (fan-record reads and writes, rescore puts, score writes) answered ProvisionedThroughputExceededException: the SDK retries them; nothing lost, nothing repeated.",
  async inject({ faults }) {
    const throttle = throttling({ share: 0.25 });
    faults.set("table", throttle.rule);
    const bit = () => THROTTLED_OPERATIONS.every((operation) => (throttle.stats().byOperation[operation] ?? 0) > 0);
    return {
      state: throttle,
      clear: async () => {
        await holdUntil(bit);
        throttle.stop();
      },
    };
  },
  hits(throttle) {
    const { throttled, retried } = throttle.stats();
    return { faulted: throttled, retries: retried };
  },
  async verify({ log, faults }, throttle) {
    faults.set("table", undefined);
    const { throttled, retried, byOperation: operations } = throttle.stats();
    log(`throttled ${throttled} DynamoDB calls (${byOperation(operations)}); the SDK retried ${retried} of them`);
    const problems: string[] = [];
    if (throttled === 0) problems.push("no DynamoDB call was throttled: the fault did not bite");
    if (retried < throttled) problems.push(`${throttled - retried} throttled calls were never attempted again by the SDK`);
    for (const operation of ["BatchGetItem", "UpdateItem"]) {
      if (!operations[operation])
        problems.push(`no ${operation} was throttled: the fan-record reads and writes were not faulted`);
    }
    return problems;
  },
});

const dynamodbUnprocessed = drill<TrackedRule<UnprocessedStats>>({
  name: "dynamodb-unprocessed",
  summary:
    "BatchGetItem and BatchWriteItem answered with a third of their keys and items unprocessed (really not read or written): the workers send them again; nothing lost, nothing repeated.",
  async inject({ faults }) {
    const unprocessed = unprocessedItems({ share: 1 / 3 });
    faults.set("table", unprocessed.rule);
    const bit = () =>
      ["BatchGetItem", "BatchWriteItem"].every((operation) => (unprocessed.stats().byOperation[operation] ?? 0) > 0);
    return {
      state: unprocessed,
      clear: async () => {
        await holdUntil(bit);
        unprocessed.stop();
      },
    };
  },
  hits(unprocessed) {
    const { moved, sentAgain } = unprocessed.stats();
    return { faulted: moved, retries: sentAgain };
  },
  async verify({ log, faults }, unprocessed) {
    faults.set("table", undefined);
    const { moved, sentAgain, byOperation: operations } = unprocessed.stats();
    log(`left ${moved} keys and items unprocessed (${byOperation(operations)}); ${sentAgain} of them were sent again`);
    const problems: string[] = [];
    if (moved === 0) problems.push("no key or item was left unprocessed: the fault did not bite");
    if (sentAgain < moved) problems.push(`${moved - sentAgain} keys or items left unprocessed were never sent again`);
    if (!operations.BatchGetItem) problems.push("no BatchGetItem key was left unprocessed (lookupArai's fan-record reads)");
    if (!operations.BatchWriteItem) problems.push("no BatchWriteItem item was left unprocessed (stagingScoreUsers' writes)");
    return problems;
  },
});

interface FailedEntriesState {
  readonly once: TrackedRule<FailedEntriesStats>;
  /** Entries refused on every attempt of one send: their records fail and come back from their source. */
  readonly untilRedelivered: TrackedRule<FailedEntriesStats>;
  phase: 1 | 2;
  /** The enqueue workers' `record failed` lines of the drill. */
  readonly failed: readonly (() => LogLine[])[];
}

/** The enqueue workers: the ones sending activity with SendMessageBatch. */
const ENQUEUE_WORKERS = [
  "enqueueFromActivityStream",
  "enqueueFromVfStream",
  "enqueueFromDemandStream",
  "enqueueFromPurchaseStream",
  "enqueueFromSQJourneyStream",
];

const sqsBatchFailedEntries = drill<FailedEntriesState>({
  name: "sqs-batch-failed-entries",
  summary: `SendMessageBatch answered with a fifth of its entries in Failed (SenderFault false, not sent): first each once, which the enqueue workers send again; then a few on each of a send's ${SEND_ATTEMPTS} attempts, so their records fail and their stream delivers them again. Nothing lost, no message sent twice.`,
  async inject({ faults, running }) {
    const scoring = scoringQueueNames(running);
    const accepts = (entry: SendEntry) => scoring.has(queueName(entry.queueUrl));
    const once = failedEntries({ share: 0.2, accepts });
    const state: FailedEntriesState = {
      once,
      untilRedelivered: failedEntries({
        share: 0.2,
        limit: 4,
        times: SEND_ATTEMPTS,
        // Not an entry the first phase refused: its tallies would take it for sent.
        accepts: (entry) => accepts(entry) && !once.stats().pickedBodies.includes(entry.body),
      }),
      phase: 1,
      failed: ENQUEUE_WORKERS.map((worker) => linesFromNow(running, worker, "record failed")),
    };
    // One rule for both phases: the first, once stopped, still sees its entries sent again.
    faults.set("sqs", (request) => {
      const second = state.phase === 2 ? state.untilRedelivered.rule(request) : undefined;
      const first = state.once.rule(request);
      return second ?? first;
    });
    // The second phase starts once the first has shown its retries.
    const watch = setInterval(() => {
      if (state.phase === 1 && state.once.stats().takenAfter >= 3) {
        state.phase = 2;
        state.once.stop();
      }
    }, 100);
    return {
      state,
      clear: async () => {
        await holdUntil(() => state.untilRedelivered.stats().picked > 0);
        clearInterval(watch);
        state.once.stop();
        state.untilRedelivered.stop();
      },
    };
  },
  hits(state) {
    const once = state.once.stats();
    const again = state.untilRedelivered.stats();
    return { faulted: once.picked + again.picked, retries: once.takenAfter + again.takenAfter };
  },
  async verify({ log, faults }, state) {
    faults.set("sqs", undefined);
    const once = state.once.stats();
    const again = state.untilRedelivered.stats();
    const failedRecords = state.failed
      .flatMap((lines) => lines())
      .filter((line) => /SQS refused the message/.test(String(line.reason))).length;
    log(
      `refused ${once.picked} entries once (${once.takenAfter} sent again and taken); ` +
        `${again.picked} on every attempt of a send (${again.takenAfter} taken once their records came back; ` +
        `${failedRecords} records failed for it)`,
    );
    const problems: string[] = [];
    if (once.picked === 0) problems.push("no SendMessageBatch entry was refused: the fault did not bite");
    if (once.takenAfter < once.picked) problems.push(`${once.picked - once.takenAfter} refused entries were never sent again`);
    if (state.phase === 1 || again.picked === 0) problems.push("the second phase (entries refused until redelivered) never bit");
    if (again.takenAfter < again.picked) {
      problems.push(`${again.picked - again.takenAfter} entries refused on every attempt never came back from their source`);
    }
    if (again.picked > 0 && failedRecords === 0) problems.push("no worker reported a record failed for a refused message");
    return problems;
  },
});

/** Where each worker's container is killed: once the line reporting its side effect is written. */
const KILLS: readonly { readonly worker: string; readonly after: string }[] = [
  // Kafka → the FIFO queue: the redelivered batch is sent again, and deduplicated by SQS.
  { worker: "enqueueFromActivityStream", after: "activity enqueued" },
  // Kinesis → the FIFO queue and rescore records: sent again and deduplicated; rescores conditional.
  { worker: "enqueueFromSQJourneyStream", after: "activity enqueued" },
  // The table stream → scores: written again only for a newer araiVersion.
  { worker: "scoreUsers", after: "score stored" },
];

interface KilledState {
  readonly kills: readonly { readonly worker: string; readonly pending: PendingKill; requestId?: string }[];
}

const workerKilledMidBatch = drill<KilledState>({
  name: "worker-killed-mid-batch",
  summary:
    "A container of enqueueFromActivityStream, of enqueueFromSQJourneyStream and of scoreUsers each killed while it holds a batch, right after its first side effect: the stream delivers the batch again; nothing lost, no side effect repeated. (lookupArai is not killed: its queue would give the batch back only after its visibility timeout, six minutes.)",
  traffic: { mix: { kafka: 0.5, sqJourney: 0.5 } },
  async inject({ running }) {
    const kills = KILLS.map(({ worker, after }) => {
      const pool = [...running.system.pools.values()].find((candidate) => candidate.fn.worker === worker);
      if (!pool) throw new Error(`worker-killed-mid-batch: the stack plans no ${worker}`);
      const entry: { worker: string; pending: PendingKill; requestId?: string } = {
        worker,
        pending: pool.killDuringInvocation((line) => line.message === after),
      };
      void entry.pending.killed.then((requestId) => (entry.requestId = requestId));
      return entry;
    });
    return {
      state: { kills },
      clear: async () => {
        await holdUntil(() => kills.every((kill) => kill.requestId !== undefined));
        for (const kill of kills) kill.pending.cancel();
      },
    };
  },
  hits({ kills }) {
    return { faulted: kills.filter((kill) => kill.requestId !== undefined).length };
  },
  async verify({ log }, { kills }) {
    const done = kills.filter((kill) => kill.requestId !== undefined);
    log(`killed ${done.map((kill) => `${kill.worker} (request ${kill.requestId})`).join(", ") || "nothing"}`);
    return kills
      .filter((kill) => kill.requestId === undefined)
      .map((kill) => `no ${kill.worker} container was killed: it never wrote its side effect's line during the drill`);
  },
});

interface DuplicatesState {
  readonly partial: TrackedRule<FailedEntriesStats>;
  /** lookupArai's `activity received` lines of the drill. */
  readonly received: () => LogLine[];
  /** The Kinesis enqueue workers' `activity enqueued` lines of the drill. */
  readonly enqueued: readonly (() => LogLine[])[];
}

const duplicateDeliveries = drill<DuplicatesState>({
  name: "duplicate-deliveries",
  summary: `The on-demand queue delivers a third of its messages twice (SQS's at-least-once delivery), and a few records of the Kinesis input streams fail once in the middle of a batch (their message refused on all ${SEND_ATTEMPTS} attempts), so the stream delivers again from them with every record after them: no side effect repeated (FIFO deduplication ids, conditional writes, ARAI freshness, the score's araiVersion condition).`,
  traffic: { mix: { vf: 0.4, sqJourney: 0.2, demand: 0.2, purchase: 0.2 } },
  async inject({ faults, running }) {
    const scoring = scoringQueueNames(running);
    const partial = failedEntries({
      share: 0.1,
      limit: 3,
      times: SEND_ATTEMPTS,
      // A record of a Kinesis input with records after it in its batch.
      accepts: (entry) =>
        scoring.has(queueName(entry.queueUrl)) &&
        entry.index < entry.of - 1 &&
        ![undefined, "kafka", "rescore"].includes(sourceOf(entry)),
    });
    faults.set("sqs", partial.rule);
    const state: DuplicatesState = {
      partial,
      received: linesFromNow(running, "lookupArai", "activity received"),
      enqueued: ENQUEUE_WORKERS.slice(1).map((worker) => linesFromNow(running, worker, "activity enqueued")),
    };
    running.system.duplicateDeliveries.share = 1 / 3;
    return {
      state,
      clear: async () => {
        await holdUntil(() => running.system.duplicateDeliveries.duplicated.size > 0 && partial.stats().picked > 0);
        running.system.duplicateDeliveries.share = 0;
        partial.stop();
      },
    };
  },
  hits({ partial }) {
    const stats = partial.stats();
    return { faulted: stats.picked, retries: stats.takenAfter };
  },
  async verify({ log, running, faults }, { partial, received: receivedLines, enqueued }) {
    faults.set("sqs", undefined);
    const duplicated = [...running.system.duplicateDeliveries.duplicated];
    const received = tally(receivedLines(), "record");
    const receivedTwice = duplicated.filter((id) => (received.get(id) ?? 0) >= 2).length;
    const stats = partial.stats();
    const enqueuedAgain = enqueued.reduce(
      (sum, lines) => sum + [...tally(lines(), "record").values()].filter((count) => count > 1).length,
      0,
    );
    log(
      `the on-demand queue delivered ${duplicated.length} messages twice (${receivedTwice} seen twice by lookupArai); ` +
        `${stats.picked} Kinesis records failed once mid-batch (${stats.takenAfter} delivered again and sent), ` +
        `${enqueuedAgain} records behind them delivered and sent again`,
    );
    const problems: string[] = [];
    if (duplicated.length === 0) problems.push("the on-demand queue delivered no message twice: the fault did not bite");
    if (receivedTwice < duplicated.length) {
      problems.push(`${duplicated.length - receivedTwice} messages delivered twice were not received twice by lookupArai`);
    }
    if (stats.picked === 0) problems.push("no Kinesis record failed mid-batch: the fault did not bite");
    if (stats.takenAfter < stats.picked)
      problems.push(`${stats.picked - stats.takenAfter} failed records never came back from their stream`);
    if (stats.picked > 0 && enqueuedAgain === 0) problems.push("no record behind a failed one was delivered again");
    return problems;
  },
});

/** The AWS drills, in the order they run. */
export const AWS_DRILLS: readonly Drill[] = [
  dynamodbThrottling,
  dynamodbUnprocessed,
  sqsBatchFailedEntries,
  workerKilledMidBatch,
  duplicateDeliveries,
];
