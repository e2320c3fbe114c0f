/**
 * Drills on the accounts ARAI API lookupArai calls (docs/flows.md): throttling (`arai-429`, with
 * Retry-After), unavailable (`arai-503`) and slower than lookupArai's time bound (`arai-slow`),
 * for a time from the first call it bites (not from when it is set: on a busy machine the first
 * call may come late). lookupArai's client tries each fan's call three times; a message whose fan
 * could not be looked up fails and is delivered again by its queue once its visibility timeout
 * (10 s in the drills) passes, after the outage, and the fan is scored then. A fan's ARAI is
 * written once. The outage is long enough for a call's three attempts to fail in it (three
 * seconds of error answers; of late answers, three of lookupArai's time bounds and a second) and
 * shorter than the redelivery, so a message fails once.
 */
import { lookupAraiContract } from "../../../workers/lookupArai/contract";
import type { ServiceFault } from "../services/fault";
import { attemptsOf, clearWhenSpent, errorMessageOf, linesStarting, plannedEnvironment, redeliveries } from "./checks";
import type { Drill, DrillContext } from "./types";

/** How long the ARAI API answers errors: longer than a call's three attempts take, shorter than the redelivery. */
const ERROR_OUTAGE_MS = 3000;

/** Calls lookupArai's client made again after a failed attempt, from its `ARAI lookup failed` lines. */
const retriedCalls = (context: DrillContext) =>
  linesStarting(context, "lookupArai", "ARAI lookup failed").reduce((sum, line) => sum + attemptsOf(errorMessageOf(line)) - 1, 0);

function araiDrill(name: string, summary: string, faultOf: (timeoutMs: number) => ServiceFault & { forMs: number }): Drill {
  return {
    name,
    summary,
    async inject(context) {
      const { system, standIns } = context.running;
      const fault = faultOf(plannedEnvironment(system, lookupAraiContract).ARAI_TIMEOUT_MS);
      context.log(`fault on the ARAI API: ${JSON.stringify(fault)}`);
      standIns.accounts.setFault(fault, "arai");
      return clearWhenSpent(
        () => standIns.accounts.faultSpent("arai"),
        () => standIns.accounts.setFault(undefined, "arai"),
      );
    },
    hits: (context) => ({
      faulted: context.running.standIns.accounts.faultCounts("arai").faulted,
      retries: retriedCalls(context) + redeliveries(context),
    }),
    async verify(context) {
      const again = redeliveries(context);
      context.log(
        `${retriedCalls(context)} calls retried by lookupArai's client; ${again} messages delivered again by their queue`,
      );
      return again > 0 ? [] : ["no message was delivered again: the fault did not outlast lookupArai's own retries"];
    },
  };
}

export const ARAI_DRILLS: readonly Drill[] = [
  araiDrill(
    "arai-429",
    "the ARAI API throttling (429, Retry-After): lookupArai retries, messages come back, every fan scored after, ARAI written once",
    () => ({ status: 429, retryAfterSeconds: 1, forMs: ERROR_OUTAGE_MS }),
  ),
  araiDrill(
    "arai-503",
    "the ARAI API unavailable (503): lookupArai retries, messages come back, every fan scored after, ARAI written once",
    () => ({ status: 503, forMs: ERROR_OUTAGE_MS }),
  ),
  araiDrill(
    "arai-slow",
    "the ARAI API slower than lookupArai's bound: calls time out and are retried, messages come back, every fan scored after",
    (timeoutMs) => ({ delayMs: timeoutMs + 500, forMs: 3 * timeoutMs + 1000 }),
  ),
];
