/**
 * The AWS drills (tools/local/drills/aws.ts) on the whole local system, booted once with the fault
 * proxies in front of its services. Each drill, on fans of its own: the fault put in place, a few
 * seconds of generator traffic, the fault cleared, the system drained, then its ledger (nothing
 * lost), its side effects counted from the table's change records and lookupArai's log lines
 * (none repeated), its own checks that the fault bit, and the time from the clear to the last of
 * its scores. The drill runner (drills/runner.ts) runs the same sequence for `npm start -- --drill`.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { GetRecordsCommand, GetShardIteratorCommand, ListShardsCommand } from "@aws-sdk/client-kinesis";
import { AWS_DRILLS } from "../tools/local/drills/aws";
import type { Drill, DrillReport, SideEffectCount } from "../tools/local/drills/types";
import { createFaultProxies, type FaultProxies } from "../tools/local/faults/proxy";
import type { WorkerFailure } from "../tools/local/ledger";
import {
  drain,
  parkingQueues,
  reconcileRun,
  type RunningSystem,
  runLocal,
  type RunOptions,
  startTraffic,
} from "../tools/local/run";
import type { LocalEvent, TableChangeRecord } from "../tools/local/types";
import { nameOfArn } from "../tools/local/wiring";
import { planStack } from "./support/program";

/** Traffic per drill: short, on fans no other drill uses. */
const RATE = 30;
const DURATION_MS = 4_000;
const FANS = 80;
/**
 * Longest wait for a drill's work to finish: longer than the scoring queues' visibility timeout
 * (360 s), so a message a loaded machine made fail once (an ARAI lookup timed out) comes back.
 */
const DRAIN_MS = 480_000;

type Image = Record<string, { S?: string; N?: string }>;

/** Every change record the table has put on its stream so far, with when it was made. */
async function tableChanges(running: RunningSystem): Promise<TableChangeRecord[]> {
  const { kinesis, wiring } = running.system;
  const stream = nameOfArn(wiring.tables[0]!.streamArn!);
  const records: TableChangeRecord[] = [];
  const { Shards } = await kinesis.send(new ListShardsCommand({ StreamName: stream }));
  for (const shard of Shards ?? []) {
    let { ShardIterator: iterator } = await kinesis.send(
      new GetShardIteratorCommand({ StreamName: stream, ShardId: shard.ShardId, ShardIteratorType: "TRIM_HORIZON" }),
    );
    while (iterator) {
      const answer = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      for (const record of answer.Records ?? []) {
        records.push(JSON.parse(Buffer.from(record.Data!).toString("utf8")) as TableChangeRecord);
      }
      if (!answer.Records?.length) break;
      iterator = answer.NextShardIterator;
    }
  }
  return records;
}

/** What happened more than once, among `keys`. */
function repeated(effect: string, keys: readonly string[]): SideEffectCount {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return { effect, repeated: [...counts].filter(([, count]) => count > 1).map(([key]) => key), total: keys.length };
}

/**
 * The side effects of a drill's fans since it started: scores written per (fan, ARAI version),
 * ARAI written per fan (every write of a drill falls inside the freshness window), rescore records
 * per fan and day, and activity messages of the FIFO queue received per source record (distinct
 * messages per correlation id; the on-demand standard queue has no deduplication to promise that).
 */
function sideEffects(
  changes: readonly TableChangeRecord[],
  received: readonly Record<string, unknown>[],
  fans: ReadonlySet<string>,
) {
  const images = changes.map((change) => ({
    change,
    image: change.dynamodb.NewImage as Image | undefined,
    old: change.dynamodb.OldImage as Image | undefined,
  }));
  const fanOf = (image: Image | undefined) => image?.globalUserId?.S ?? "";
  const scores = images
    .filter(({ image }) => image?.type?.S === "score" && fans.has(fanOf(image)))
    .map(({ image }) => `${fanOf(image)}@${image!.scoredAraiVersion?.N}`);
  const arai = images
    .filter(
      ({ image, old }) =>
        image?.araiVersion?.N !== undefined && image.araiVersion.N !== old?.araiVersion?.N && fans.has(fanOf(image)),
    )
    .map(({ image }) => fanOf(image));
  const rescores = images
    .filter(({ change, image }) => change.eventName === "INSERT" && image?.type?.S === "rescore" && fans.has(fanOf(image)))
    .map(({ image }) => image!.userId!.S!);
  const messages = new Map<string, Set<string>>();
  for (const line of received) {
    if (line.source === "vf" || !fans.has(String(line.globalUserId))) continue;
    const records =
      messages.get(String(line.correlationId)) ??
      messages.set(String(line.correlationId), new Set()).get(String(line.correlationId))!;
    records.add(String(line.record));
  }
  const perRecord = [...messages].flatMap(([correlationId, records]) => [...records].map(() => correlationId));
  return [
    repeated("score written", scores),
    repeated("ARAI written", arai),
    repeated("rescore scheduled", rescores),
    repeated("activity message received (FIFO)", perRecord),
  ];
}

describe("AWS fault drills", function () {
  let running: RunningSystem;
  let faults: FaultProxies;
  let options: RunOptions;
  let release: () => void;
  let finished: Promise<unknown>;
  const events: LocalEvent[] = [];
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "aws-drills-"));
  /** Drills not passed (yet): the data directory, with the workers' logs, is kept if any failed. */
  let unfinished = 0;

  before(async function () {
    const plan = await planStack("qa1");
    // The drills fault the table endpoint and SQS; the other services are reached directly.
    faults = createFaultProxies({ services: ["table", "sqs"] });
    const held = new Promise<void>((resolve) => (release = resolve));
    let booted!: (running: RunningSystem) => void;
    const up = new Promise<RunningSystem>((resolve) => (booted = resolve));
    options = {
      resources: plan.resources,
      accountId: "210987654321",
      dataDir,
      // The run's own traffic: none; each drill sends its own.
      durationMs: 0,
      rate: RATE,
      badRate: 0,
      fans: 1,
      seed: "aws-drills",
      wrapEndpoint: faults.wrapEndpoint,
      onEvent: (event) => void events.push(event),
      onStarted: async (system) => {
        booted(system);
        await held;
      },
    };
    finished = runLocal(options);
    running = await Promise.race([up, finished.then(() => Promise.reject(new Error("the local system ended before it was up")))]);
    // Every container's cold start before the first drill: a fault's drill is not also the system's first minute.
    const warm = await startTraffic(
      running.system,
      running.standIns,
      running.figures,
      { ...options, fans: FANS, seed: "warm-up" },
      running.figures.report,
    );
    await warm.generator.run({ durationMs: 2_000 });
    const parking = parkingQueues(running.system.wiring);
    await drain(
      warm,
      [...running.system.queues.keys()].filter((arn) => !parking.has(arn)),
      DRAIN_MS,
    );
  });

  after(async function () {
    release?.();
    await finished;
    await faults?.close();
    if (unfinished > 0) console.log(`      the workers' logs are kept in ${dataDir}/logs`);
    else fs.rmSync(dataDir, { recursive: true, force: true });
  });

  /** Runs one drill as the runner does: fault, traffic, clear, drain, reconcile. */
  async function runDrill(drill: Drill, index: number): Promise<DrillReport> {
    const lines: string[] = [];
    const traffic = await startTraffic(
      running.system,
      running.standIns,
      running.figures,
      {
        ...options,
        rate: drill.traffic?.rate ?? RATE,
        mix: drill.traffic?.mix,
        badRate: drill.traffic?.badRate ?? 0,
        fans: FANS,
        seed: `aws-drill-${index}-${drill.name}`,
      },
      running.figures.report,
    );
    const context = { running: traffic, faults, log: (line: string) => void lines.push(line) };
    const firstEvent = events.length;
    const clear = await drill.inject(context);
    await traffic.generator.run({ durationMs: drill.traffic?.durationMs ?? DURATION_MS });
    await clear();
    const clearedAt = Date.now();
    const parking = parkingQueues(running.system.wiring);
    const scoringQueues = [...running.system.queues.keys()].filter((arn) => !parking.has(arn));
    if (!(await drain(traffic, scoringQueues, DRAIN_MS))) {
      const busy = Object.entries(running.figures.snapshot().workers).filter(([, worker]) => worker.inFlight > 0);
      assert.fail(
        `${drill.name}: the system did not finish its work (${running.system.pending()} records pending; ` +
          `busy: ${JSON.stringify(busy)})`,
      );
    }

    const drillEvents = events.slice(firstEvent);
    const logs = (message: string) =>
      drillEvents.flatMap((event) => (event.kind === "log" && event.line.message === message ? [event.line] : []));
    const failures: WorkerFailure[] = logs("record failed").map((line) => ({
      record: line.record,
      reason: String(line.reason ?? ""),
    }));
    const { ledger, staleScores } = await reconcileRun(traffic, failures, parking);
    const fans = new Set(traffic.generator.sent().flatMap((event) => (event.globalUserId ? [event.globalUserId] : [])));
    // The drill's fans are its own: every change of theirs is the drill's.
    const changes = await tableChanges(running);
    const effects = sideEffects(changes, logs("activity received"), fans);
    const lastScore = Math.max(
      clearedAt,
      ...changes
        .filter((change) => (change.dynamodb.NewImage as Image | undefined)?.type?.S === "score")
        .filter((change) => fans.has(String((change.dynamodb.NewImage as Image).globalUserId?.S)))
        .map((change) => change.dynamodb.ApproximateCreationDateTime),
    );
    const problems = [
      ...((await drill.verify?.(context)) ?? []),
      ...staleScores.filter((fan) => fans.has(fan)).map((fan) => `${fan}'s score is older than the ARAI it holds`),
    ];
    const ok = ledger.totals.lost === 0 && effects.every((effect) => effect.repeated.length === 0) && problems.length === 0;
    for (const line of lines) console.log(`      ${drill.name}: ${line}`);
    return {
      drill: drill.name,
      summary: drill.summary,
      ledger,
      sideEffects: effects,
      recoveryMs: lastScore - clearedAt,
      problems,
      ok,
    };
  }

  AWS_DRILLS.forEach((drill, index) => {
    it(`${drill.name}: ${drill.summary}`, async function () {
      unfinished += 1;
      const report = await runDrill(drill, index);
      const { totals } = report.ledger;
      console.log(
        `      ${drill.name}: ${totals.in} in, ${totals.scored} scored, ${totals.skipped} skipped, ${totals.parked} parked, ` +
          `${totals.lost} lost; ${report.sideEffects.map((effect) => `${effect.effect} ${effect.total}`).join(", ")}; ` +
          `recovered ${report.recoveryMs} ms after the fault cleared`,
      );
      assert.deepEqual(report.problems, []);
      assert.ok(totals.scored > 0, "nothing was scored");
      assert.deepEqual(report.ledger.lost, []);
      assert.deepEqual(report.ledger.unexpected, []);
      assert.deepEqual(report.ledger.wrongScores, []);
      for (const effect of report.sideEffects) assert.deepEqual(effect.repeated, [], `${effect.effect} repeated`);
      assert.ok(report.ok);
      unfinished -= 1;
    });
  });
});
