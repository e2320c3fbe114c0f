/**
 * Drills on the ARM Redis getArmScore reads (docs/flows.md): the server stopped (`redis-down`,
 * connections refused) and the server paused (`redis-slow`, SIGSTOP: connections accepted,
 * nothing answered, as a server stuck in a long command). While the fault holds, every
 * getArmScore request must answer `{armScore: null}` or a clear error, within its reader's bound
 * (the command timeout on the kept connection, then connect + command timeout on a new one, and a
 * second for the emulation), well inside the function's timeout; once it clears, the fans' real
 * grades again.
 */
import { getArmScoreContract } from "../../../workers/getArmScore/contract";
import { armGradeOf, type RedisFault } from "../services/redis";
import { plannedEnvironment, shown, untilRight } from "./checks";
import { functionOf } from "./requests";
import type { Drill, DrillContext } from "./types";

/** Fans asked for their grade before, during and after the fault. */
const FANS = 4;
/** What the Lambda emulation adds to an invocation (IPC, a busy machine). */
const SLACK_MS = 1000;

function redisDrill(name: string, fault: RedisFault, summary: string): Drill {
  let fans: string[] = [];
  let boundMs = 0;
  let faulted = 0;
  return {
    name,
    summary,
    async inject(context) {
      const { system, standIns } = context.running;
      faulted = 0;
      fans = await context.fans(FANS);
      const env = plannedEnvironment(system, getArmScoreContract);
      boundMs = 2 * env.ARM_REDIS_COMMAND_TIMEOUT_MS + env.ARM_REDIS_CONNECT_TIMEOUT_MS + SLACK_MS;
      const timeoutMs = functionOf(system, "getArmScore").timeoutSeconds * 1000;
      context.log(`bound on an answer during the fault: ${boundMs} ms (the function's timeout: ${timeoutMs} ms)`);
      // Before the fault: real grades, from warm containers whose connection the fault will break.
      for (const fan of fans) {
        const outcome = await context.requests.getArmScore(fan);
        const right = outcome.answer?.armScore === armGradeOf(fan);
        context.account("getArmScore before the fault", right, `${fan}: answered ${shown(outcome)}`);
      }
      await standIns.redis.setFault(fault);
      return () => standIns.redis.setFault(undefined);
    },
    async during(context: DrillContext) {
      for (const fan of fans) {
        const outcome = await context.requests.getArmScore(fan);
        const failSafe = outcome.answer?.armScore === null || (outcome.error?.includes(`ARM score of ${fan} not read`) ?? false);
        if (failSafe) faulted += 1;
        const inTime = outcome.ms <= boundMs;
        context.account(
          "getArmScore during the fault",
          failSafe && inTime,
          failSafe
            ? `${fan}: answered in ${Math.round(outcome.ms)} ms, over the ${boundMs} ms bound`
            : `${fan}: answered ${shown(outcome)}, neither {armScore: null} nor a clear error`,
        );
      }
    },
    async after(context) {
      for (const fan of fans) {
        const { outcome, tries, right } = await untilRight(
          () => context.requests.getArmScore(fan),
          (candidate) => candidate.answer?.armScore === armGradeOf(fan),
        );
        context.account(
          "getArmScore after the fault",
          right,
          `${fan}: still answered ${shown(outcome)} after ${tries} requests, not grade ${armGradeOf(fan)}`,
        );
      }
    },
    hits: () => ({ faulted }),
  };
}

export const REDIS_DRILLS: readonly Drill[] = [
  redisDrill(
    "redis-down",
    "down",
    "the ARM Redis stopped: getArmScore answers null or a clear error within its bound, then real grades",
  ),
  redisDrill(
    "redis-slow",
    "paused",
    "the ARM Redis answering nothing (paused): getArmScore answers within its bound, then real grades",
  ),
];
