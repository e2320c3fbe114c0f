/**
 * Drills on the scoring model (docs/flows.md): its endpoint answering 503 (`model-5xx`), answering past
 * scoreUsers' time bound (`model-timeout`), or answering one prediction fewer than the records it
 * was sent (`model-wrong-count`). The fans' change records are retried by the table stream's
 * mapping and scored once the fault is over, none with a wrong score.
 *
 * The outage is as long as a number of model calls, not seconds: a stream mapping retries a batch
 * twice and then parks it, so an outage longer than three deliveries of a batch parks its fans
 * (redriven later) rather than scoring them. Six failed calls are within that budget (a batch is
 * parked after nine: three deliveries of three attempts each), and with at most two batches in
 * flight (one per shard) they make at least one batch fail and be delivered again. A wrong count
 * is not retried by the client, so two such answers fail a batch at most twice.
 */
import { scoreUsersContract } from "../../../workers/scoreUsers/contract";
import { scoringEndpoint } from "../run";
import type { ModelFault } from "../services/modelServing";
import { clearWhenSpent, linesStarting, plannedEnvironment } from "./checks";
import type { Drill, DrillContext } from "./types";

/** Longest wait, once the traffic stopped, for the fault's calls to have been made. */
const SPENT_WITHIN_MS = 60_000;

/** Batches scoreUsers failed because the model call failed: each is delivered again by the stream. */
const failedBatches = (context: DrillContext) => linesStarting(context, "scoreUsers", "model call failed").length;

function modelDrill(name: string, summary: string, faultOf: (timeoutMs: number) => ModelFault): Drill {
  let requests = 0;
  return {
    name,
    summary,
    async inject(context) {
      const { system, standIns } = context.running;
      const fault = {
        ...faultOf(plannedEnvironment(system, scoreUsersContract).MODEL_TIMEOUT_MS),
        endpoint: scoringEndpoint(system.wiring),
      };
      requests = fault.requests ?? 0;
      context.log(`fault on ${fault.endpoint}: ${JSON.stringify(fault)}`);
      standIns.model.setFault(fault);
      // The outage lasts until its calls were made: it clears then, or after the wait.
      return clearWhenSpent(
        () => standIns.model.faultSpent(),
        () => standIns.model.setFault(undefined),
        SPENT_WITHIN_MS,
      );
    },
    hits: (context) => ({ faulted: context.running.standIns.model.faultCounts().faulted, retries: failedBatches(context) }),
    async verify(context) {
      const { faulted } = context.running.standIns.model.faultCounts();
      return faulted < requests ? [`the fault bit ${faulted} of the ${requests} model calls it was set for`] : [];
    },
  };
}

export const MODEL_DRILLS: readonly Drill[] = [
  modelDrill(
    "model-5xx",
    "the scoring model answering 503: batches retried by the stream, every fan scored once it is back, none wrong",
    () => ({ status: 503, requests: 6 }),
  ),
  modelDrill(
    "model-timeout",
    "the scoring model answering past scoreUsers' bound: batches retried by the stream, every fan scored after, none wrong",
    (timeoutMs) => ({ delayMs: timeoutMs + 1000, requests: 6 }),
  ),
  modelDrill(
    "model-wrong-count",
    "the scoring model answering one prediction too few: the answer refused, the batch retried, no score written wrong",
    () => ({ wrongCount: true, requests: 2 }),
  ),
];
