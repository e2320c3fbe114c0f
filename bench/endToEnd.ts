/**
 * The whole scoring path on this machine: Kafka activity → enqueueFromActivityStream → FIFO queue
 * → lookupArai → table endpoint → change stream → scoreUsers → table.
 *
 * 1. Each local service alone (endToEndServices.ts): calls per second of each operation the path
 *    makes, IN_FLIGHT at a time.
 * 2. Calls one scored activity needs, measured: a short bounded run of the real system (qa1's
 *    plan, Kafka traffic only, every fan new, so every scorable activity takes the whole path)
 *    with a recording proxy in front of every service (endToEndTrace.ts); the calls made while
 *    idle (pollers) are counted apart. The same run follows each fan through the path: where
 *    activity → score time goes.
 * 3. The ceiling: for each service, the activities per second its figures alone allow,
 *    1 / Σ (calls per activity / calls per second alone) over its operations, with what its idle
 *    calls take first; the ceiling is the least of them.
 * 4. End to end, sustained: bounded runs at a few offered rates (scorable Kafka activities per
 *    second, no bad records, no proxies): activities scored per second from the first put to the
 *    last score, activity → score p50/p95, and the share of the ceiling; where activities were
 *    waiting when the traffic stopped; and the CPU each process of the system spent per scored
 *    activity (processCpu.ts), which says how many activities per second the machine's cores allow
 *    when the services share them.
 *
 * BENCH_RATES, BENCH_RUN_MS, BENCH_TRACE_RATE, BENCH_TRACE_MS, BENCH_DRAIN_MS, and the services'
 * BENCH_SERVICE_CALLS and BENCH_SERVICE_ROUNDS change the sizes. The machine is shared: every figure is printed with the load average when it was taken.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT } from "../stacks/config";
import type { RecordedResource } from "../tools/offline/runtime";
import type { LatencyFigures } from "../tools/local/figures";
import { ensureRedisServer } from "../tools/local/prerequisites";
import { type RunningSystem, runLocal } from "../tools/local/run";
import { KIND_SHARES, type SentEvent } from "../tools/local/traffic/generator";
import type { EndpointName, LocalEvent, WrapEndpoint } from "../tools/local/types";
import { benchServicesAlone, fanRecordBytes, IN_FLIGHT, MODEL_RECORDS, type ServiceFigure } from "./endToEndServices";
import { createWireTrace, MARKS, type Mark, type WireTrace } from "./endToEndTrace";
import { startCpuMeter } from "./processCpu";
import { planStack, stackConfig } from "../test/support/program";
import { median, met, type Part, percentile, type Row } from "./report";

/** Offered rates of the sustained runs, scorable activities per second. */
const RATES = (process.env.BENCH_RATES ?? "100,300").split(",").map(Number);
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 10_000);
/** The traced run: slow enough that the system keeps up, proxies and all, so each stage shows its own time. */
const TRACE_RATE = Number(process.env.BENCH_TRACE_RATE ?? 20);
const TRACE_MS = Number(process.env.BENCH_TRACE_MS ?? 8000);
/** Longest wait for a run's backlog after its traffic stopped; a run that does not drain says so. */
const DRAIN_MS = Number(process.env.BENCH_DRAIN_MS ?? 15_000);
const IDLE_MS = 3000;
/** Fans: enough that a fan's ARAI is hardly ever fresh already, so every activity is scored. */
const FANS = 200_000;
const TARGET = { share: 0.8, p95Ms: 1000, rate: 1000 };
/** The functions on the path, warmed before traffic so cold starts stay out of the figures. */
const PATH_WORKERS = ["enqueueFromActivityStream", "lookupArai", "scoreUsers", "stagingScoreUsers", "processRescoreEvents"];
const WARM_CONTAINERS = 4;

const load = () =>
  os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");

interface Setup {
  readonly resources: readonly RecordedResource[];
  readonly accountId: string;
  readonly signingKeyId?: string;
}

/** qa1's plan: the one the archives and bundles benches read, made once per process. */
async function plan(): Promise<Setup> {
  const { resources } = await planStack("qa1");
  const { values } = stackConfig("qa1");
  const idv = JSON.parse(values[`${PROJECT}:idv`] ?? "{}") as { signingKeyId?: string };
  return { resources, accountId: values[`${PROJECT}:accountId`] ?? "000000000000", signingKeyId: idv.signingKeyId };
}

/** An empty event of each source kind: it starts a container without work. */
function emptyEvent(kind: string | undefined) {
  if (kind === "kafka") return { eventSource: "SelfManagedKafka", bootstrapServers: "local:9092", records: {} };
  return { Records: [] };
}

/** Starts the path's containers (up to WARM_CONTAINERS each) with empty events. */
async function warm(running: RunningSystem) {
  const { wiring } = running.system;
  await Promise.all(
    wiring.functions
      .filter((fn) => PATH_WORKERS.includes(fn.worker))
      .flatMap((fn) => {
        const kind = wiring.mappings.find((mapping) => mapping.functionName === fn.name)?.kind;
        return Array.from({ length: WARM_CONTAINERS }, () => running.system.invoke(fn.name, emptyEvent(kind)));
      }),
  );
}

interface RunOutcome {
  readonly offered: number;
  readonly scorable: number;
  readonly scored: number;
  readonly firstPut: number;
  readonly lastScore: number;
  readonly sustained: number;
  readonly latency: LatencyFigures;
  readonly drained: boolean;
  readonly load: string;
  readonly idle?: { readonly from: number; readonly to: number };
  /** CPU per process role: cores used while idle, CPU ms per scored activity beyond that. */
  readonly cpu: readonly { readonly role: string; readonly idleCores: number; readonly msPerActivity: number }[];
  /** Per worker: invocations, mean ms, records delivered per invocation. */
  readonly workers: Readonly<Record<string, { invocations: number; avgMs: number; perBatch: number }>>;
  readonly sent: readonly SentEvent[];
  /** Where activities were waiting when the traffic stopped. */
  readonly backlog?: Backlog;
}

/** Activities put and not yet through each stage, when the traffic stopped. */
interface Backlog {
  /** Kafka records put and not yet delivered to enqueueFromActivityStream. */
  readonly kafka: number;
  /** Messages sent to the FIFO queue and not yet done by lookupArai. */
  readonly queue: number;
  /** Fans whose ARAI lookupArai wrote and scoreUsers has not scored yet (change stream, scoring). */
  readonly scoring: number;
}

/** One bounded run of the system: Kafka traffic at `rate` scorable activities per second. */
async function runSystem(setup: Setup, rate: number, durationMs: number, wrapEndpoint?: WrapEndpoint): Promise<RunOutcome> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-end-to-end-"));
  let lastScore = 0;
  let idle: { from: number; to: number } | undefined;
  let running: RunningSystem | undefined;
  const batches = new Map<string, { delivered: number; invocations: number; ms: number }>();
  const workerOf = (fn: string) => PATH_WORKERS.find((worker) => fn.endsWith(`-${worker}`));
  const flow = { kafkaPut: 0, kafkaDelivered: 0, enqueued: 0, lookedUp: 0, written: 0, scored: 0 };
  let backlog: Backlog | undefined;
  const onEvent = (event: LocalEvent) => {
    const count = (field: string) => (event.kind === "log" ? Number(event.line[field]) || 0 : 0);
    if (event.kind === "log" && event.line.message === "batch scored" && workerOf(event.function) === "scoreUsers") {
      flow.scored += count("scored");
      if (count("scored") > 0) lastScore = Date.now();
    }
    if (event.kind === "log" && event.line.message === "batch enqueued") flow.enqueued += count("sent");
    if (event.kind === "log" && event.line.message === "batch done") {
      flow.lookedUp += count("messages");
      flow.written += count("written");
    }
    if (event.kind === "input" && event.source === running?.system.kafka?.topic) flow.kafkaPut += event.count;
    if (event.kind === "invocation") {
      const worker = workerOf(event.function);
      if (!worker || !running) return;
      const entry = batches.get(worker) ?? batches.set(worker, { delivered: 0, invocations: 0, ms: 0 }).get(worker)!;
      entry.invocations += 1;
      entry.ms += event.ms;
    }
    if (event.kind === "delivered") {
      const mapping = running?.system.wiring.mappings.find((candidate) => candidate.name === event.mapping);
      const worker = mapping && workerOf(mapping.functionName);
      if (!worker) return;
      const entry = batches.get(worker) ?? batches.set(worker, { delivered: 0, invocations: 0, ms: 0 }).get(worker)!;
      entry.delivered += event.count;
      if (mapping.kind === "kafka") flow.kafkaDelivered += event.count;
    }
  };
  const startLoad = load();
  const meter = startCpuMeter();
  try {
    const outcome = await runLocal({
      resources: setup.resources,
      accountId: setup.accountId,
      signingKeyId: setup.signingKeyId,
      dataDir,
      durationMs,
      // Of Kafka's well-formed events, KIND_SHARES.kafka.scorable are scorable activities.
      rate: rate / KIND_SHARES.kafka.scorable,
      badRate: 0,
      mix: { kafka: 1 },
      fans: FANS,
      seed: `end-to-end-${rate}`,
      drainTimeoutMs: DRAIN_MS,
      wrapEndpoint,
      onEvent,
      onStarted: async (system) => {
        await warm(system);
        const from = Date.now();
        await new Promise((resolve) => setTimeout(resolve, IDLE_MS));
        idle = { from, to: Date.now() };
        running = system;
        setTimeout(() => {
          const { kafkaPut, kafkaDelivered, enqueued, lookedUp, written, scored } = flow;
          backlog = { kafka: kafkaPut - kafkaDelivered, queue: enqueued - lookedUp, scoring: written - scored };
        }, durationMs).unref();
      },
    });
    const sent = running!.generator.sent().filter((event) => event.expected.outcome === "scored");
    const firstPut = Math.min(...sent.map((event) => event.at));
    const scored = outcome.ledger?.bySource.kafka?.scored ?? 0;
    const workers = Object.fromEntries(
      [...batches].map(([worker, entry]) => [
        worker,
        {
          invocations: entry.invocations,
          avgMs: entry.invocations ? entry.ms / entry.invocations : 0,
          perBatch: entry.invocations ? entry.delivered / entry.invocations : 0,
        },
      ]),
    );
    meter.stop();
    const idleCpu = meter.between(idle!.from, idle!.to);
    const runCpu = meter.between(firstPut, lastScore);
    const cpu = Object.entries(runCpu.byRole).map(([role, used]) => {
      const idleCores = (idleCpu.byRole[role] ?? 0) / idleCpu.seconds;
      return { role, idleCores, msPerActivity: (Math.max(0, used - idleCores * runCpu.seconds) * 1000) / Math.max(1, scored) };
    });
    return {
      offered: rate,
      scorable: sent.length,
      scored,
      firstPut,
      lastScore,
      sustained: lastScore > firstPut ? scored / ((lastScore - firstPut) / 1000) : 0,
      latency: outcome.figures.latency,
      drained: outcome.drained !== false,
      load: `${startLoad} → ${load()}`,
      ...(idle ? { idle } : {}),
      cpu,
      workers,
      sent,
      ...(backlog ? { backlog } : {}),
    };
  } finally {
    meter.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Calls the system made per scored activity, by service and operation, net of what it makes idle. */
interface CallFigure {
  readonly service: EndpointName;
  readonly operation: string;
  readonly calls: number;
  readonly idlePerSecond: number;
  readonly perActivity: number;
}

/** Operations only the bench's harness makes (runLocal's drain and reconciliation): not the system's. */
const HARNESS = new Set(["GetQueueAttributes"]);

function callsPerActivity(trace: WireTrace, run: RunOutcome): CallFigure[] {
  const window = (run.lastScore - run.firstPut) / 1000;
  const idleSeconds = (run.idle!.to - run.idle!.from) / 1000;
  const tally = new Map<string, { service: EndpointName; operation: string; calls: number; idle: number }>();
  for (const call of trace.calls) {
    if (HARNESS.has(call.operation)) continue;
    const key = `${call.service} ${call.operation}`;
    const entry =
      tally.get(key) ?? tally.set(key, { service: call.service, operation: call.operation, calls: 0, idle: 0 }).get(key)!;
    if (call.at >= run.firstPut && call.at <= run.lastScore) entry.calls += 1;
    if (call.at >= run.idle!.from && call.at <= run.idle!.to) entry.idle += 1;
  }
  return [...tally.values()]
    .filter((entry) => entry.calls > 0)
    .map((entry) => {
      const idlePerSecond = entry.idle / idleSeconds;
      return {
        service: entry.service,
        operation: entry.operation,
        calls: entry.calls,
        idlePerSecond,
        perActivity: Math.max(0, entry.calls - idlePerSecond * window) / Math.max(1, run.scored),
      };
    });
}

/**
 * The figure alone standing for a counted operation: its own, or the one whose call covers it
 * (DeleteMessageBatch is timed with the ReceiveMessage before it); undefined: not timed alone.
 */
function figureFor(figures: readonly ServiceFigure[], call: CallFigure): ServiceFigure | "included" | undefined {
  if (call.service === "sqs" && call.operation === "DeleteMessageBatch") return "included";
  return figures.find((figure) => figure.service === call.service && figure.operation === call.operation);
}

interface Ceiling {
  readonly service: EndpointName;
  /** Activities per second the service allows alone. */
  readonly activitiesPerSecond: number;
  /** Share of its time its idle calls take. */
  readonly idleShare: number;
  /** Operations counted that no figure alone stands for. */
  readonly untimed: readonly string[];
}

function ceilings(figures: readonly ServiceFigure[], calls: readonly CallFigure[]): Ceiling[] {
  const services = [...new Set(calls.map((call) => call.service))];
  return services.map((service) => {
    let perActivity = 0;
    let idleShare = 0;
    const untimed: string[] = [];
    for (const call of calls.filter((candidate) => candidate.service === service)) {
      const figure = figureFor(figures, call);
      if (figure === "included") continue;
      if (!figure) {
        untimed.push(call.operation);
        continue;
      }
      perActivity += call.perActivity / figure.callsPerSecond;
      idleShare += call.idlePerSecond / figure.callsPerSecond;
    }
    const activitiesPerSecond = perActivity > 0 ? Math.max(0, 1 - idleShare) / perActivity : Number.POSITIVE_INFINITY;
    return { service, activitiesPerSecond, idleShare, untimed };
  });
}

const fixed = (value: number, digits = 0) => (Number.isFinite(value) ? value.toFixed(digits) : "-");
const seconds = (ms: number | undefined) => (ms === undefined ? "-" : (ms / 1000).toFixed(2));

/** Per stage of the path: how long fans took from one mark to the next, p50 and p95. */
function stageRows(trace: WireTrace, sent: readonly SentEvent[]): string[][] {
  for (const event of sent) if (event.globalUserId) trace.mark(event.globalUserId, "put", event.at);
  const complete = [...trace.marks.values()].filter((marks) => MARKS.every((mark) => marks[mark] !== undefined));
  const rows: string[][] = [];
  const labels: Record<Mark, string> = {
    put: "put on the Kafka topic",
    enqueued: "→ sent to the FIFO queue (Kafka window, enqueueFromActivityStream)",
    received: "→ received by a lookupArai poller (queue wait)",
    araiFetched: "→ ARAI fetched (batch read, lookupArai)",
    araiWritten: "→ ARAI written, change record on the stream (table endpoint)",
    streamRead: "→ read from the stream (a Kinesis poller; 0 when read before the write was answered)",
    modelCalled: "→ model called (batching window 1 s, scoreUsers)",
    scoreWritten: "→ score written (scoreUsers)",
  };
  for (let index = 1; index < MARKS.length; index++) {
    const from = MARKS[index - 1]!;
    const to = MARKS[index]!;
    const spans = complete.map((marks) => Math.max(0, marks[to]! - marks[from]!));
    rows.push([labels[to], seconds(percentile(spans, 50)), seconds(percentile(spans, 95))]);
  }
  const total = complete.map((marks) => marks.scoreWritten! - marks.put!);
  rows.push([
    `put → score written (${complete.length} fans followed)`,
    seconds(percentile(total, 50)),
    seconds(percentile(total, 95)),
  ]);
  return rows;
}

/** Activities per second the machine's cores allow at a run's CPU cost per activity (after the idle cost). */
function cpuLimit(run: RunOutcome): number {
  const cores = os.cpus().length;
  const idle = run.cpu.reduce((sum, entry) => sum + entry.idleCores, 0);
  const perActivity = run.cpu.reduce((sum, entry) => sum + entry.msPerActivity, 0);
  return perActivity > 0 ? ((cores - idle) * 1000) / perActivity : Number.POSITIVE_INFINITY;
}

function serviceRows(figures: readonly ServiceFigure[]): Row[] {
  return figures.map((figure) => ({
    what: `${figure.service} ${figure.what}: calls/s alone`,
    figure: fixed(figure.callsPerSecond),
  }));
}

function callRows(calls: readonly CallFigure[]): Row[] {
  return [...calls]
    .sort((a, b) => a.service.localeCompare(b.service) || b.perActivity - a.perActivity)
    .map((call) => ({
      what: `${call.service} ${call.operation} per scored activity (${fixed(call.idlePerSecond, 1)}/s idle taken off)`,
      figure: fixed(call.perActivity, 3),
    }));
}

function ceilingRows(limits: readonly Ceiling[]): { rows: Row[]; lowest: Ceiling } {
  const lowest = [...limits].sort((a, b) => a.activitiesPerSecond - b.activitiesPerSecond)[0]!;
  const rows = limits.map((limit) => ({
    what:
      `${limit.service} allows activities/s alone${limit.service === lowest.service ? " (sets the ceiling)" : ""}` +
      `, ${fixed(limit.idleShare * 100)}% idle${limit.untimed.length ? `, ${limit.untimed.join(", ")} not timed` : ""}`,
    figure: fixed(limit.activitiesPerSecond),
  }));
  return { rows, lowest };
}

function sustainedRows(runs: readonly RunOutcome[], ceiling: Ceiling): Row[] {
  return runs.flatMap((run) => {
    const at = `at ${run.offered}/s offered`;
    const share = run.sustained / ceiling.activitiesPerSecond;
    const limit = cpuLimit(run);
    const waiting = run.backlog ? `; waiting at stop ${run.backlog.kafka}/${run.backlog.queue}/${run.backlog.scoring}` : "";
    const rows: Row[] = [
      {
        what: `sustained scored/s ${at} (${run.scored}/${run.scorable} scored${run.drained ? "" : ", not drained"}${waiting})`,
        figure: fixed(run.sustained),
        anchor: `ceiling ${fixed(ceiling.activitiesPerSecond)}/s (${ceiling.service})`,
        against: `${fixed(share * 100)}%`,
        target: `≥ ${TARGET.share * 100}%; ${TARGET.rate.toLocaleString("en-US")}/s where the services allow`,
        // No ceiling (a service's idle calls take all its time): nothing to be a share of.
        met: met(ceiling.activitiesPerSecond > 0 && share >= TARGET.share),
      },
      {
        what: `sustained scored/s ${at}, against the CPU the machine's cores allow`,
        figure: fixed(run.sustained),
        anchor: `CPU limit ${fixed(limit)}/s (${fixed(
          run.cpu.reduce((sum, entry) => sum + entry.msPerActivity, 0),
          1,
        )} ms/activity)`,
        against: `${fixed((run.sustained / limit) * 100)}%`,
      },
      { what: `activity → score p50 ${at}`, figure: `${seconds(run.latency.p50)} s` },
      {
        what: `activity → score p95 ${at}`,
        figure: `${seconds(run.latency.p95)} s`,
        target: `< ${TARGET.p95Ms / 1000} s`,
        met: met(run.latency.p95 !== undefined && run.latency.p95 < TARGET.p95Ms),
      },
    ];
    // Each path worker's own pace: the records of an invocation over its duration.
    for (const worker of PATH_WORKERS.slice(0, 3)) {
      const entry = run.workers[worker];
      if (!entry || entry.avgMs <= 0) continue;
      rows.push({
        what: `${worker} records/s per container ${at} (${entry.invocations} invocations, ${fixed(entry.perBatch, 1)} records, ${fixed(entry.avgMs)} ms each)`,
        figure: fixed((entry.perBatch * 1000) / entry.avgMs),
      });
    }
    return rows;
  });
}

function stageTableRows(trace: WireTrace, sent: readonly SentEvent[]): Row[] {
  return stageRows(trace, sent).map(([stage, p50, p95]) => ({
    what: `traced: ${stage!.replace(/^→ /, "")}`,
    figure: `p50 ${p50} s, p95 ${p95} s`,
  }));
}

export async function benchEndToEnd(): Promise<Part> {
  await ensureRedisServer({ log: (line) => console.error(line) });
  const setup = await plan();
  const loadBefore = load();
  const alone = await benchServicesAlone();

  const trace = createWireTrace();
  let traced: RunOutcome;
  try {
    traced = await runSystem(setup, TRACE_RATE, TRACE_MS, trace.wrap);
  } finally {
    await trace.close();
  }
  const calls = callsPerActivity(trace, traced);
  const { rows: ceilings_, lowest } = ceilingRows(ceilings(alone, calls));

  const runs: RunOutcome[] = [];
  for (const rate of RATES) runs.push(await runSystem(setup, rate, RUN_MS));
  const models = trace.modelRecords;
  return {
    how:
      `the local system (qa1, Kafka only, ${FANS} fans): each service alone (median of ${alone[0]?.rounds.length ?? 0} rounds, ` +
      `${IN_FLIGHT} in flight, fan record ${fanRecordBytes()} bytes); calls counted at the wire in a ${TRACE_MS / 1000} s run at ` +
      `${TRACE_RATE}/s (${traced.scored}/${traced.scorable} scored; ${models.length} model calls of ${fixed(median(models.length ? models : [0]))} ` +
      `records, timed alone with ${MODEL_RECORDS}); sustained: ${RUN_MS / 1000} s runs at ${RATES.join(", ")}/s; ` +
      `waiting at stop: Kafka records/queue messages/fans to score; load ${loadBefore} → ${load()}`,
    rows: [
      ...serviceRows(alone),
      ...callRows(calls),
      ...ceilings_,
      ...sustainedRows(runs, lowest),
      ...stageTableRows(trace, traced.sent),
    ],
  };
}
