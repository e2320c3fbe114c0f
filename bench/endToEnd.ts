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
 * BENCH_CALLS and BENCH_ROUNDS change the sizes. The machine is shared: every figure is printed with the load average when it was taken.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT } from "../stacks/config";
import { planStack } from "../tools/offline/planStack";
import type { RecordedResource } from "../tools/offline/runtime";
import type { LatencyFigures } from "../tools/local/figures";
import { ensureRedisServer } from "../tools/local/prerequisites";
import { type RunningSystem, runLocal } from "../tools/local/run";
import { KIND_SHARES, type SentEvent } from "../tools/local/traffic/generator";
import type { EndpointName, LocalEvent, WrapEndpoint } from "../tools/local/types";
import { benchServicesAlone, fanRecordBytes, IN_FLIGHT, MODEL_RECORDS, type ServiceFigure } from "./endToEndServices";
import { createWireTrace, MARKS, type Mark, type WireTrace } from "./endToEndTrace";
import { startCpuMeter } from "./processCpu";
import { median, percentile, table } from "./report";

/** Offered rates of the sustained runs, scorable activities per second. */
const RATES = (process.env.BENCH_RATES ?? "100,200,400").split(",").map(Number);
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 30_000);
/** The traced run: slow enough that the system keeps up, proxies and all, so each stage shows its own time. */
const TRACE_RATE = Number(process.env.BENCH_TRACE_RATE ?? 20);
const TRACE_MS = Number(process.env.BENCH_TRACE_MS ?? 15_000);
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

async function plan(): Promise<Setup> {
  const { stackFile, run } = await planStack("qa1");
  if (run.errors.length > 0) throw new Error(`qa1: the program failed: ${run.errors.map((e) => e.message).join("; ")}`);
  const idv = JSON.parse(stackFile.values[`${PROJECT}:idv`] ?? "{}") as { signingKeyId?: string };
  return {
    resources: run.resources,
    accountId: stackFile.values[`${PROJECT}:accountId`] ?? "000000000000",
    signingKeyId: idv.signingKeyId,
  };
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

function printServices(figures: readonly ServiceFigure[], loadBefore: string) {
  console.log(
    `1. Each local service alone: calls/s, median of ${figures[0]?.rounds.length ?? 0} rounds, ${IN_FLIGHT} in flight ` +
      `(fan record ${fanRecordBytes()} bytes; load ${loadBefore} → ${load()})`,
  );
  console.log(
    table(
      ["service", "call", "calls/s", "rounds"],
      figures.map((figure) => [
        figure.service,
        figure.what,
        fixed(figure.callsPerSecond),
        figure.rounds.map((round) => fixed(round)).join(" "),
      ]),
    ),
  );
}

function printCalls(calls: readonly CallFigure[], run: RunOutcome, trace: WireTrace) {
  const models = trace.modelRecords;
  console.log(
    `\n2. Calls per scored activity, counted at the wire: ${fixed(TRACE_MS / 1000)} s at ${run.offered} scorable/s, ` +
      `${run.scored} of ${run.scorable} scored (load ${run.load}); idle calls counted over ${IDLE_MS / 1000} s first and taken off`,
  );
  console.log(
    table(
      ["service", "operation", "calls", "idle/s", "per activity"],
      [...calls]
        .sort((a, b) => a.service.localeCompare(b.service) || b.perActivity - a.perActivity)
        .map((call) => [
          call.service,
          call.operation,
          String(call.calls),
          fixed(call.idlePerSecond, 1),
          fixed(call.perActivity, 3),
        ]),
    ),
  );
  console.log(
    `model calls: ${models.length}, ${fixed(median(models.length ? models : [0]), 0)} records each (median); ` +
      `timed alone with ${MODEL_RECORDS}; the Kafka topic is in memory, not counted`,
  );
}

function printCeiling(limits: readonly Ceiling[]): Ceiling {
  const lowest = [...limits].sort((a, b) => a.activitiesPerSecond - b.activitiesPerSecond)[0]!;
  console.log(
    `\n3. Ceiling: activities/s each service allows alone (1 / Σ calls per activity ÷ calls/s alone, after its idle calls)`,
  );
  console.log(
    table(
      ["service", "activities/s", "idle share", "not timed alone"],
      limits.map((limit) => [
        limit.service === lowest.service ? `${limit.service} (sets the ceiling)` : limit.service,
        fixed(limit.activitiesPerSecond),
        `${fixed(limit.idleShare * 100)}%`,
        limit.untimed.join(", ") || "-",
      ]),
    ),
  );
  return lowest;
}

/** Activities per second the machine's cores allow at a run's CPU cost per activity (after the idle cost). */
function cpuLimit(run: RunOutcome): number {
  const cores = os.cpus().length;
  const idle = run.cpu.reduce((sum, entry) => sum + entry.idleCores, 0);
  const perActivity = run.cpu.reduce((sum, entry) => sum + entry.msPerActivity, 0);
  return perActivity > 0 ? ((cores - idle) * 1000) / perActivity : Number.POSITIVE_INFINITY;
}

function printSustained(runs: readonly RunOutcome[], ceiling: Ceiling) {
  console.log(
    `\n4. End to end, sustained: ${RUN_MS / 1000} s runs, Kafka only, no bad records, ${FANS} fans; ` +
      `target ≥ ${TARGET.share * 100}% of the ceiling (${fixed(ceiling.activitiesPerSecond)}/s, ${ceiling.service}), ` +
      `p95 < ${TARGET.p95Ms / 1000} s, ${TARGET.rate}/s where the services allow`,
  );
  console.log(
    table(
      [
        "offered/s",
        "scored",
        "sustained/s",
        "of ceiling",
        "target",
        "of CPU limit",
        "p50 s",
        "p95 s",
        "target",
        "drained",
        "load",
      ],
      runs.map((run) => [
        String(run.offered),
        `${run.scored}/${run.scorable}`,
        fixed(run.sustained),
        `${fixed((run.sustained / ceiling.activitiesPerSecond) * 100)}%`,
        `≥ ${TARGET.share * 100}%`,
        `${fixed((run.sustained / cpuLimit(run)) * 100)}%`,
        seconds(run.latency.p50),
        seconds(run.latency.p95),
        `< ${TARGET.p95Ms / 1000}`,
        run.drained ? "yes" : "no",
        run.load,
      ]),
    ),
  );
  const roles = [...new Set(runs.flatMap((run) => run.cpu.map((entry) => entry.role)))];
  const msOf = (run: RunOutcome, role: string) => run.cpu.find((entry) => entry.role === role)?.msPerActivity ?? 0;
  const idleOf = (role: string) => median(runs.map((run) => run.cpu.find((entry) => entry.role === role)?.idleCores ?? 0));
  const totals = runs.map((run) => roles.reduce((sum, role) => sum + msOf(run, role), 0));
  const cores = os.cpus().length;
  console.log(
    `\nCPU per scored activity, by process (ms, beyond what each uses idle; ${cores} cores: the machine allows (${cores} − idle) × 1000 ÷ the total, ` +
      "if the system had them to itself)",
  );
  console.log(
    table(
      ["process", "idle, cores", ...runs.map((run) => `at ${run.offered}/s`)],
      [
        ...roles
          .sort((a, b) => msOf(runs[0]!, b) - msOf(runs[0]!, a))
          .map((role) => [role, fixed(idleOf(role), 2), ...runs.map((run) => fixed(msOf(run, role), 1))]),
        [
          "total",
          fixed(
            roles.reduce((sum, role) => sum + idleOf(role), 0),
            2,
          ),
          ...totals.map((total) => fixed(total, 1)),
        ],
        ["activities/s the machine allows (CPU limit)", "", ...runs.map((run) => fixed(cpuLimit(run)))],
      ],
    ),
  );
  console.log(
    table(
      [
        "offered/s",
        "waiting when traffic stopped: Kafka records / queue messages / fans to score",
        ...PATH_WORKERS.slice(0, 3).map((worker) => `${worker} calls × ms × records`),
      ],
      runs.map((run) => [
        String(run.offered),
        run.backlog ? `${run.backlog.kafka} / ${run.backlog.queue} / ${run.backlog.scoring}` : "-",
        ...PATH_WORKERS.slice(0, 3).map((worker) => {
          const entry = run.workers[worker];
          return entry ? `${entry.invocations} × ${fixed(entry.avgMs)} × ${fixed(entry.perBatch, 1)}` : "-";
        }),
      ]),
    ),
  );
}

export async function benchEndToEnd(): Promise<void> {
  await ensureRedisServer({ log: (line) => console.error(line) });
  const setup = await plan();
  const loadBefore = load();
  const alone = await benchServicesAlone();
  printServices(alone, loadBefore);

  const trace = createWireTrace();
  let traced: RunOutcome;
  try {
    traced = await runSystem(setup, TRACE_RATE, TRACE_MS, trace.wrap);
  } finally {
    await trace.close();
  }
  const calls = callsPerActivity(trace, traced);
  printCalls(calls, traced, trace);
  const ceiling = printCeiling(ceilings(alone, calls));

  const runs: RunOutcome[] = [];
  for (const rate of RATES) runs.push(await runSystem(setup, rate, RUN_MS));
  printSustained(runs, ceiling);

  console.log(`\nWhere activity → score time goes (the traced run, ${TRACE_RATE} scorable/s, through the proxies)`);
  console.log(table(["stage", "p50 s", "p95 s"], stageRows(trace, traced.sent)));
  console.log(
    table(
      ["worker", "invocations", "mean ms", "records/invocation"],
      Object.entries(traced.workers).map(([worker, entry]) => [
        worker,
        String(entry.invocations),
        fixed(entry.avgMs),
        fixed(entry.perBatch, 1),
      ]),
    ),
  );
}
