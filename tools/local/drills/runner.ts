/**
 * The fault drills' runner: brings the local system up once (run.ts's session) and runs drills on
 * it one after another. Per drill: its own fans (ids named after it, so no other drill's scores
 * count for its inputs), its fault put in place, its traffic sent (the generator's, its own
 * requests, and one data-science export), the fault cleared, then a wait until every input is
 * accounted for (scored, skipped or parked, the export's Glue runs started) and the system is
 * quiet. Then the ledger of the drill's inputs alone, the side effects of its fans counted per
 * what they must happen once for (sideEffects.ts), how hard the fault bit, and the time from the
 * fault's clearing to the last input accounted for.
 *
 * Before the first drill the system is warmed up: a little traffic through every input and a
 * request to each synchronous trigger, so that no drill's fault holds while a dozen containers
 * cold-start at once (on a busy machine that alone makes calls time out).
 *
 * The scoring queues' visibility timeout is shortened for the drills (`redeliveryAfterSeconds`):
 * a message lookupArai failed comes back after it, as in SQS, but within a drill rather than six
 * minutes later.
 */
import { lookupAraiContract } from "../../../workers/lookupArai/contract";
import type { RecordedResource } from "../../offline/runtime";
import { createFaultProxies, type FaultProxies } from "../faults/proxy";
import { percentile } from "../figures";
import type { ParkedRecords } from "../ledger";
import {
  drain,
  type ParkedMessage,
  readParked,
  reconcileEvents,
  type RunningSystem,
  type RunSession,
  startSession,
} from "../run";
import type { TableChange } from "../table/streamingDestination";
import type { Generator } from "../traffic/generator";
import type { LocalEvent } from "../types";
import { plannedEnvironment } from "./checks";
import { createDrillRequests } from "./requests";
import { countSideEffects } from "./sideEffects";
import type { Drill, DrillContext, DrillReport, DrillTraffic, FaultHits, RequestTally } from "./types";

export interface DrillRunnerOptions {
  readonly resources: readonly RecordedResource[];
  readonly accountId: string;
  readonly dataDir: string;
  readonly signingKeyId?: string;
  /** Events per second of a drill's traffic, unless the drill says. @default 40 */
  readonly rate?: number;
  /** How long a drill's traffic (and so its fault) lasts, unless the drill says. @default 2500 */
  readonly durationMs?: number;
  /** Fans of each drill's traffic. @default 60 */
  readonly fans?: number;
  /** Seed of the traffic; each drill's is drawn from it and the drill's name. @default "drills" */
  readonly seed?: string;
  /** The scoring queues' visibility timeout while the drills run, seconds. @default 10 */
  readonly redeliveryAfterSeconds?: number;
  /** How long the system must be quiet before a drill's inputs are reconciled. @default 1000 */
  readonly quietMs?: number;
  /** Longest wait, once a fault cleared, for the drill's inputs to be accounted for. @default 180000 */
  readonly settleTimeoutMs?: number;
  /**
   * The faults at the wire (given to the system as its `wrapEndpoint`). @default proxies in front
   * of the table endpoint and SQS, the services the AWS drills fault: each proxy is one more hop
   * served by this process, so only what is faulted is proxied.
   */
  readonly faults?: FaultProxies;
  /** Lines saying what the runner does (to stderr, say). */
  readonly progress?: (line: string) => void;
}

export interface DrillRunner {
  readonly session: RunSession;
  readonly faults: FaultProxies;
  /** Runs one drill on the running system; resolves with its report (it never throws for a drill's failure). */
  run(drill: Drill): Promise<DrillReport>;
  /** Ends the system and the faults' proxies. */
  stop(): Promise<void>;
}

interface Reported {
  readonly at: number;
  readonly event: LocalEvent;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** What the runner keeps of the session: every report, change record and parked message. */
function createRecorder() {
  const reported: Reported[] = [];
  const changes: TableChange[] = [];
  /** Parked messages by id, with the drill in which each was first read. */
  const parked = new Map<string, ParkedMessage & { readonly drill: string }>();
  return { reported, changes, parked };
}

/** Starts the local system for drills; `run` each, then `stop`. */
export async function startDrillRunner(options: DrillRunnerOptions): Promise<DrillRunner> {
  const faults = options.faults ?? createFaultProxies({ services: ["table", "sqs"] });
  const recorder = createRecorder();
  const session = await startSession({
    resources: options.resources,
    accountId: options.accountId,
    dataDir: options.dataDir,
    signingKeyId: options.signingKeyId,
    wrapEndpoint: faults.wrapEndpoint,
    webhookDelayMs: 200,
    redeliveryAfterSeconds: options.redeliveryAfterSeconds ?? 10,
    onEvent: (event) => recorder.reported.push({ at: Date.now(), event }),
    onTableChanges: (records) => recorder.changes.push(...records),
  });
  try {
    await warmUp(session, options);
  } catch (error) {
    await session.stop();
    throw error;
  }
  return {
    session,
    faults,
    run: (drill) => runDrill(drill, session, faults, recorder, options),
    async stop() {
      await session.stop();
      await faults.close();
    },
  };
}

/**
 * Starts the containers every drill uses: traffic through every input for a moment, a request to
 * each synchronous trigger and an export; then waits until the system is quiet.
 */
async function warmUp(session: RunSession, options: DrillRunnerOptions): Promise<void> {
  const started = Date.now();
  const { system, standIns } = session;
  const generator = await session.createTraffic({
    rate: 20,
    badRate: 0,
    fans: 20,
    seed: `${options.seed ?? "drills"}:warm-up`,
    fanPrefix: "drill-warm-up-",
  });
  const requests = createDrillRequests(system, standIns, options.accountId);
  const fan = generator.fans.at(-1)!;
  const day = new Date().toISOString().slice(0, 10);
  await Promise.all([
    generator.run({ durationMs: 1500 }),
    requests.getArmScore(fan),
    requests.authorize(fan),
    // A tier that never needs verification: no Persona inquiry.
    requests.checkLiveness(fan, "test-never"),
    ...[...exportBuckets(session).keys()].map((bucket) => system.notifyS3(bucket, `drills/date=${day}/warm-up/_SUCCESS`)),
  ]);
  await drain(session, session.scoringQueues, options.settleTimeoutMs ?? 180_000, options.quietMs ?? 1000);
  options.progress?.(`warmed up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

/** The traffic the drill sends through the generator; undefined when it sends only its own inputs. */
function trafficOf(drill: Drill, options: DrillRunnerOptions): (DrillTraffic & { durationMs: number }) | undefined {
  if (!drill.traffic && drill.during) return undefined;
  return {
    ...drill.traffic,
    rate: drill.traffic?.rate ?? options.rate ?? 40,
    durationMs: drill.traffic?.durationMs ?? options.durationMs ?? 2500,
  };
}

/** Sends the traffic, with its burst of bad records when it has one. */
async function sendTraffic(generator: Generator, traffic: DrillTraffic & { durationMs: number }): Promise<void> {
  const timers: NodeJS.Timeout[] = [];
  const { burst } = traffic;
  if (burst) {
    timers.push(setTimeout(() => generator.setBadRate(burst.badRate), burst.atMs));
    timers.push(setTimeout(() => generator.setBadRate(traffic.badRate ?? 0), burst.atMs + burst.ms));
  }
  try {
    await generator.run({ durationMs: traffic.durationMs });
  } finally {
    timers.forEach(clearTimeout);
  }
}

/** The buckets that notify the import workers, with how many functions each notifies. */
function exportBuckets(session: RunSession): Map<string, number> {
  const buckets = new Map<string, number>();
  for (const grant of session.system.wiring.grants) {
    if (grant.principal === "s3.amazonaws.com" && grant.sourceArn)
      buckets.set(grant.sourceArn, (buckets.get(grant.sourceArn) ?? 0) + 1);
  }
  return buckets;
}

/** What one drill keeps while it runs. */
interface DrillState {
  readonly name: string;
  readonly started: number;
  readonly from: { readonly reported: number; readonly changes: number };
  readonly lines: string[];
  readonly accounted: { what: string; asRequired: boolean; problem?: string; at: number }[];
  readonly ownFans: Set<string>;
  /** Session ids checkLiveness answered the drill's requests with, by fan. */
  readonly sessions: Map<string, Set<string>>;
}

function createContext(
  state: DrillState,
  running: RunningSystem,
  faults: FaultProxies,
  recorder: ReturnType<typeof createRecorder>,
  accountId: string,
): DrillContext {
  const { system, standIns } = running;
  const requests = createDrillRequests(system, standIns, accountId);
  const reported = () => recorder.reported.slice(state.from.reported);
  let fanCount = 0;
  return {
    running,
    faults,
    log: (line) => state.lines.push(line),
    async fans(count) {
      const fans = Array.from({ length: count }, () => `drill-${state.name}-own-${fanCount++}`);
      fans.forEach((fan) => state.ownFans.add(fan));
      await standIns.redis.seedArmGrades(fans);
      return fans;
    },
    requests: {
      ...requests,
      async checkLiveness(globalUserId, tier) {
        const outcome = await requests.checkLiveness(globalUserId, tier);
        const session = outcome.answer?.session?.vendorSessionId;
        if (session) state.sessions.set(globalUserId, (state.sessions.get(globalUserId) ?? new Set()).add(session));
        return outcome;
      },
    },
    account: (what, asRequired, problem) => state.accounted.push({ what, asRequired, problem, at: Date.now() }),
    logs: (worker, message) =>
      reported().flatMap(({ event }) =>
        event.kind === "log" && event.line.service === worker && (message === undefined || event.line.message === message)
          ? [event.line]
          : [],
      ),
    reported,
    changes: () => recorder.changes.slice(state.from.changes),
  };
}

/** Reads the parking queues, keeping every message (a message read is hidden for ten minutes). */
async function collectParked(session: RunSession, recorder: ReturnType<typeof createRecorder>, drill: string) {
  for (const message of await readParked(session.system, session.parking)) {
    if (!recorder.parked.has(message.messageId)) recorder.parked.set(message.messageId, { ...message, drill });
  }
}

/** The time each expected-scored fan's last score was written, from the drill's change records. */
function lastScoreWrites(changes: readonly TableChange[]): Map<string, number> {
  const writes = new Map<string, number>();
  for (const { data } of changes) {
    const image = data.dynamodb.NewImage as Record<string, { S?: string }> | undefined;
    const fan = image?.globalUserId?.S;
    if (data.eventName === "REMOVE" || image?.type?.S !== "score" || !fan || image.userId?.S !== fan) continue;
    writes.set(fan, Math.max(writes.get(fan) ?? 0, data.dynamodb.ApproximateCreationDateTime));
  }
  return writes;
}

async function runDrill(
  drill: Drill,
  session: RunSession,
  faults: FaultProxies,
  recorder: ReturnType<typeof createRecorder>,
  options: DrillRunnerOptions,
): Promise<DrillReport> {
  const { system, standIns, figures } = session;
  const progress = options.progress ?? (() => {});
  const state: DrillState = {
    name: drill.name,
    started: Date.now(),
    from: { reported: recorder.reported.length, changes: recorder.changes.length },
    lines: [],
    accounted: [],
    ownFans: new Set(),
    sessions: new Map(),
  };
  const traffic = trafficOf(drill, options);
  const generator = await session.createTraffic({
    rate: traffic?.rate ?? 1,
    badRate: traffic?.badRate ?? 0,
    mix: traffic?.mix,
    fans: traffic ? (options.fans ?? 60) : 1,
    seed: `${options.seed ?? "drills"}:${drill.name}`,
    fanPrefix: `drill-${drill.name}-`,
    extraFields: traffic?.extraFields,
  });
  const running: RunningSystem = { system, standIns, figures, generator };
  const context = createContext(state, running, faults, recorder, options.accountId);
  const problems: string[] = [];
  const day = new Date().toISOString().slice(0, 10);
  const buckets = exportBuckets(session);
  const exports = buckets.size > 0 ? [`drills/date=${day}/${drill.name}/_SUCCESS`] : [];

  progress(`${drill.name}: ${drill.summary}`);
  let clear: (() => Promise<void>) | undefined;
  let faultFrom = Date.now();
  try {
    clear = await drill.inject(context);
    faultFrom = Date.now();
    await Promise.all([
      traffic ? sendTraffic(generator, traffic) : undefined,
      drill.during?.(context),
      ...exports.flatMap((key) => [...buckets.keys()].map((bucket) => system.notifyS3(bucket, key))),
    ]);
  } catch (error) {
    problems.push(`the drill failed while its fault held: ${messageOf(error)}`);
  }
  try {
    await clear?.();
  } catch (error) {
    problems.push(`the fault could not be cleared: ${messageOf(error)}`);
  }
  const clearedAt = Date.now();
  try {
    await drill.after?.(context);
  } catch (error) {
    problems.push(`the drill failed after its fault cleared: ${messageOf(error)}`);
  }

  const settled = await settle(drill, session, recorder, generator, exports, buckets, options, progress);
  problems.push(...settled.problems);

  const sent = generator.sent();
  const fans = new Set([...sent.flatMap((event) => event.globalUserId ?? []), ...state.ownFans]);
  const changes = context.changes();
  const freshnessMs = plannedEnvironment(system, lookupAraiContract).ARAI_FRESHNESS_SECONDS * 1000;
  const sideEffects = countSideEffects({
    fans,
    changes,
    received: context.logs("lookupArai", "activity received"),
    stored: context.logs("lookupArai", "ARAI stored"),
    freshnessMs,
    inquiries: standIns.persona.inquiries,
    answeredSessions: state.sessions,
    exports,
    runs: standIns.glue.runs,
  });

  let hits: FaultHits | undefined;
  try {
    hits = await drill.hits?.(context);
  } catch (error) {
    problems.push(`the drill could not count its fault's hits: ${messageOf(error)}`);
  }
  try {
    const outcome = { ledger: settled.ledger, sideEffects, trafficFrom: faultFrom, clearedAt };
    problems.push(...((await drill.verify?.(context, outcome)) ?? []));
  } catch (error) {
    problems.push(`the drill's checks failed: ${messageOf(error)}`);
  }
  if (hits && hits.faulted === 0) problems.push("the fault was never hit: the drill proves nothing");
  if (hits?.retries === 0) problems.push("no retry in the workers' logs: the fault did not make the system retry");
  problems.push(
    ...state.accounted.flatMap((input) => (input.asRequired ? [] : [`${input.what}: ${input.problem ?? "not as required"}`])),
  );

  // When each input was accounted for: its fan's last score, its parking, its export's runs, the drill's own.
  const scoreWrites = lastScoreWrites(changes);
  const accountedAt = [
    ...settled.ledger.entries.flatMap((entry) =>
      entry.outcome === "scored" && entry.globalUserId ? (scoreWrites.get(entry.globalUserId) ?? []) : [],
    ),
    ...[...recorder.parked.values()].flatMap((message) => (message.drill === drill.name ? (message.sentAt ?? []) : [])),
    ...standIns.glue.runs.flatMap((run) => (exports.includes(run.runProperties.key ?? "") ? [run.startedAt] : [])),
    ...state.accounted.map((input) => input.at),
  ];
  const recoveryMs = Math.max(0, Math.max(clearedAt, ...accountedAt) - clearedAt);
  const repeated = sideEffects.some((count) => count.repeated.length > 0);
  const requests = tallies(state.accounted);
  const report: DrillReport = {
    drill: drill.name,
    summary: drill.summary,
    ledger: settled.ledger,
    sideEffects,
    recoveryMs,
    problems,
    ok: settled.ledger.ok && !repeated && problems.length === 0,
    ...(hits ? { hits } : {}),
    ...(requests.length > 0 ? { requests } : {}),
    ...(exports.length > 0 ? { exports } : {}),
    timings: { faultMs: clearedAt - faultFrom, totalMs: Date.now() - state.started },
    log: state.lines,
  };
  progress(`${drill.name}: ${report.ok ? "passed" : "FAILED"} in ${((Date.now() - state.started) / 1000).toFixed(1)} s`);
  return report;
}

/** The drill's own inputs, by kind. */
function tallies(accounted: DrillState["accounted"]): RequestTally[] {
  const byWhat = new Map<string, { sent: number; asRequired: number }>();
  for (const input of accounted) {
    const tally = byWhat.get(input.what) ?? byWhat.set(input.what, { sent: 0, asRequired: 0 }).get(input.what)!;
    tally.sent += 1;
    if (input.asRequired) tally.asRequired += 1;
  }
  return [...byWhat].map(([what, tally]) => ({ what, ...tally }));
}

/**
 * Waits until the system is quiet and every input of the drill is accounted for: nothing lost
 * in its ledger, every scored fan scored from the ARAI it holds and after its first input, every
 * export's runs started; or until the settle timeout. Answers the ledger and what is still wrong.
 */
async function settle(
  drill: Drill,
  session: RunSession,
  recorder: ReturnType<typeof createRecorder>,
  generator: Generator,
  exports: readonly string[],
  buckets: ReadonlyMap<string, number>,
  options: DrillRunnerOptions,
  progress: (line: string) => void,
) {
  const deadline = Date.now() + (options.settleTimeoutMs ?? 180_000);
  const sent = generator.sent();
  const firstInput = new Map<string, number>();
  for (const event of sent) {
    if (event.expected.outcome === "scored" && event.globalUserId && !firstInput.has(event.globalUserId))
      firstInput.set(event.globalUserId, event.at);
  }
  const runsPerExport = [...buckets.values()].reduce((sum, count) => sum + count, 0);
  for (let round = 0; ; round++) {
    const drained = await drain(session, session.scoringQueues, Math.max(1000, deadline - Date.now()), options.quietMs ?? 1000);
    await collectParked(session, recorder, drill.name);
    const parked: ParkedRecords[] = [...recorder.parked.values()].flatMap((message) => message.parked);
    const { ledger, staleScores } = await reconcileEvents(session.system, sent, parked, session.failures);
    const writes = lastScoreWrites(recorder.changes);
    const scored = new Set(ledger.entries.flatMap((entry) => (entry.outcome === "scored" ? (entry.globalUserId ?? []) : [])));
    // A fan scored only before its first input would be an earlier run's score.
    const late = [...firstInput].filter(([fan, at]) => scored.has(fan) && !((writes.get(fan) ?? 0) >= at));
    const runs = session.standIns.glue.runs.filter((run) => exports.includes(run.runProperties.key ?? "")).length;
    const problems = [
      ...(drained
        ? []
        : [`the system was still busy ${formatSeconds(options.settleTimeoutMs ?? 180_000)} after the fault cleared`]),
      ...(staleScores.length > 0 ? [`scored from an older ARAI than the one they hold: ${staleScores.join(", ")}`] : []),
      ...(late.length > 0 ? [`no score written after the drill's first input: ${late.map(([fan]) => fan).join(", ")}`] : []),
      ...(runs < exports.length * runsPerExport
        ? [
            `${exports.length * runsPerExport - runs} of ${exports.length * runsPerExport} import runs not started for the drill's export`,
          ]
        : []),
    ];
    const outstanding =
      ledger.lost.length + staleScores.length + late.length + Math.max(0, exports.length * runsPerExport - runs);
    if (outstanding === 0 || !drained || Date.now() >= deadline) return { ledger, problems };
    if (round === 0) progress(`${drill.name}: ${outstanding} inputs not yet accounted for; waiting`);
    await sleep(500);
  }
}

const formatSeconds = (ms: number) => `${Math.round(ms / 1000)} s`;

/** One activity → score latency: a score's write time minus the activity its ARAI was fetched for. */
export interface ScoreLatency {
  readonly ms: number;
  /** When the activity happened (the fan record's `lastActivity.at`), epoch ms. */
  readonly activityAt: number;
  /** The activity's correlation id, when the fan record holds one. */
  readonly correlationId?: string;
}

/** The activity → score latencies of the scores written for `fans`, from the table's change records. */
export function scoreLatencies(changes: readonly TableChange[], fans: ReadonlySet<string>): ScoreLatency[] {
  const samples: ScoreLatency[] = [];
  for (const { data } of changes) {
    const image = data.dynamodb.NewImage as
      | {
          type?: { S?: string };
          globalUserId?: { S?: string };
          lastActivity?: { M?: { at?: { S?: string }; correlationId?: { S?: string } } };
        }
      | undefined;
    const fan = image?.globalUserId?.S;
    if (data.eventName === "REMOVE" || image?.type?.S !== "score" || !fan || !fans.has(fan)) continue;
    const activityAt = Date.parse(image.lastActivity?.M?.at?.S ?? "");
    if (Number.isNaN(activityAt)) continue;
    const correlationId = image.lastActivity?.M?.correlationId?.S;
    samples.push({
      ms: data.dynamodb.ApproximateCreationDateTime - activityAt,
      activityAt,
      ...(correlationId === undefined ? {} : { correlationId }),
    });
  }
  return samples;
}

/** p50, p95 and max of the samples' latencies. */
export function latencyOf(samples: readonly ScoreLatency[]) {
  const sorted = samples.map((sample) => sample.ms).sort((a, b) => a - b);
  return { samples: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), max: sorted.at(-1) };
}
