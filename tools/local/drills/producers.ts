/**
 * Drills where the fault is in what the producers send (docs/worker-contract.md#data-contracts):
 *
 * - `producer-adds-field`: every payload of every input carries fields no reader knows (a newer
 *   producer deployed first). Everything processes exactly as without them: the ledger balances
 *   as it would, and no record fails or is parked.
 * - `poison-burst`: a burst of records that can never succeed (undecodable, no fan id, an invalid
 *   fan id) mixed into good traffic. Each poison record is parked with its reason (or kept from
 *   the worker by its mapping's filter), each good one scored, and the good records' activity →
 *   score latency grows by no more than the batch a poison record shared with them. That holds
 *   when every poison record is parked on its first delivery: a poison record failed instead sends
 *   its batch back to the stream, and the good records behind it wait for the retry. So the check
 *   is that no poison record was ever reported failed. The latencies are measured beside it and
 *   reported against the rule: the p95 of the good records that shared an input batch with a
 *   poison record, next to the p95 of those of the burst that shared none (the same moments, so
 *   the same load on the machine; those before the burst when there are none) plus the longest of
 *   the batches that held poison. They are figures, not the verdict: on a busy 2-core machine the
 *   p95 of a dozen scores moves by more than one batch's time.
 */
import { WORKER_METRICS } from "../../../workers/shared/runtime/telemetry";
import { formatMs } from "../text";
import { emitted } from "./checks";
import { latencyOf, scoreLatencies } from "./runner";
import type { Drill, DrillContext } from "./types";

/** What a producer that has moved on adds to every payload. */
export const EXTRA_FIELDS = { producerRevision: 7, routing: { lane: "blue", region: "us-east-1" } } as const;

const producerAddsField: Drill = {
  name: "producer-adds-field",
  summary: "every payload of every input carries fields the readers do not know: all processed as without them, nothing parked",
  traffic: { extraFields: EXTRA_FIELDS },
  inject: async () => async () => {},
  hits: (context) => ({ faulted: context.running.generator.sent().length }),
  async verify(context, outcome) {
    // A record failed for a dependency (a timeout on a busy machine) is retried as it would be
    // without the fields; one judged invalid, or parked, is the fields' doing.
    const invalid = emitted(context, WORKER_METRICS.recordsFailed.name, { reason: "invalid" });
    const parked = emitted(context, WORKER_METRICS.recordsParked.name);
    return [
      ...(outcome.ledger.totals.parked > 0 ? [`${outcome.ledger.totals.parked} records parked`] : []),
      ...(invalid > 0 ? [`${invalid} records failed as invalid by their workers`] : []),
      ...(parked > 0 ? [`${parked} records parked by their workers`] : []),
    ];
  },
};

/** The burst: from 1 s into 4 s of traffic, for 1.5 s, a third of the records are poison. */
const BURST = { atMs: 1000, ms: 1500, badRate: 0.35 } as const;

/**
 * The input workers' batches (enqueue invocations) that held a poison record (one they failed or
 * parked): the correlation ids of the good records they enqueued, and how long each took.
 */
function poisonedBatches(context: DrillContext): { shared: Set<string>; batchesMs: number[]; failedPoison: string[] } {
  const byRequest = new Map<string, { poisoned: boolean; enqueued: string[] }>();
  const [parkedRecords, failedRecords] = [new Set<string>(), new Set<string>()];
  for (const { event } of context.reported()) {
    if (event.kind !== "log" || !String(event.line.service ?? "").startsWith("enqueueFrom")) continue;
    const request = String(event.line.function_request_id ?? "");
    const batch = byRequest.get(request) ?? byRequest.set(request, { poisoned: false, enqueued: [] }).get(request)!;
    const record = `${String(event.line.service)} ${JSON.stringify(event.line.record)}`;
    if (event.line.message === "record failed" || event.line.message === "record parked") batch.poisoned = true;
    if (event.line.message === "record parked") parkedRecords.add(record);
    if (event.line.message === "record failed") failedRecords.add(record);
    if (event.line.message === "activity enqueued") batch.enqueued.push(String(event.line.correlationId));
  }
  // A record parked in the end that was failed before: its batch went back to the stream for it.
  const failedPoison = [...failedRecords].filter((record) => parkedRecords.has(record));
  const poisoned = new Set([...byRequest].filter(([, batch]) => batch.poisoned).map(([request]) => request));
  const batchesMs = context
    .reported()
    .flatMap(({ event }) => (event.kind === "invocation" && poisoned.has(event.requestId) ? [event.ms] : []));
  const shared = new Set([...poisoned].flatMap((request) => byRequest.get(request)!.enqueued));
  return { shared, batchesMs, failedPoison };
}

const poisonBurst: Drill = {
  name: "poison-burst",
  summary: "a burst of poison records in good traffic: each parked with its reason, each good record scored, latency held",
  traffic: { durationMs: 4000, rate: 50, badRate: 0, burst: BURST },
  inject: async () => async () => {},
  hits: (context) => ({
    faulted: context.running.generator.sent().filter((event) => event.kind.startsWith("bad ")).length,
  }),
  async verify(context, outcome) {
    const problems: string[] = [];
    const parked = outcome.ledger.entries.filter((entry) => entry.expected === "parked");
    for (const entry of parked) {
      if (entry.outcome !== "parked") problems.push(`poison record #${entry.seq} (${entry.kind}) ${entry.outcome}`);
      else if (!entry.reason) problems.push(`poison record #${entry.seq} (${entry.kind}) parked without a reason`);
    }
    if (parked.length === 0) problems.push("no poison record reached a worker");
    const fans = new Set(context.running.generator.fans);
    const burstFrom = outcome.trafficFrom + BURST.atMs;
    const burstTo = burstFrom + BURST.ms;
    const samples = scoreLatencies(context.changes(), fans);
    const { shared, batchesMs, failedPoison } = poisonedBatches(context);
    for (const record of failedPoison) {
      problems.push(`poison record ${record} failed before it was parked: the good records behind it waited for a retry`);
    }
    const sharing = samples.filter((sample) => sample.correlationId !== undefined && shared.has(sample.correlationId));
    const inBurst = samples.filter(
      (sample) => !sharing.includes(sample) && sample.activityAt >= burstFrom && sample.activityAt < burstTo,
    );
    const baseline = inBurst.length > 0 ? inBurst : samples.filter((sample) => sample.activityAt < burstFrom);
    const [poisoned, clean] = [latencyOf(sharing), latencyOf(baseline)];
    const batchMs = Math.max(0, ...batchesMs);
    const grew = (poisoned.p95 ?? 0) - (clean.p95 ?? 0);
    context.log(
      `activity → score p95 of good records that shared a batch with poison ${formatMs(poisoned.p95)} (${poisoned.samples} scores), ` +
        `of those that did not ${formatMs(clean.p95)} (${clean.samples}, ${inBurst.length > 0 ? "during" : "before"} the burst): ` +
        `grew ${formatMs(Math.max(0, grew))}; rule: at most the longest batch that held poison, ${formatMs(batchMs)}` +
        (clean.samples > 0 && grew > batchMs
          ? " (over it on this run: a figure of a busy machine, not the verdict; the verdict is that no poison record was failed first)"
          : ""),
    );
    if (poisoned.samples > 0 && clean.samples === 0) problems.push("no score of a good record to compare the latency with");
    return problems;
  },
};

export const PRODUCER_DRILLS: readonly Drill[] = [producerAddsField, poisonBurst];
