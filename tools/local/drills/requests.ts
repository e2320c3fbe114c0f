/**
 * The requests a drill sends itself, as the platform's callers send them: getArmScore invoked
 * directly (an SDK invoke), validateToken invoked with AppSync's authoriser event, checkLiveness
 * through the gateway's GraphQL route (the authoriser first, then the resolver). The token is an
 * accepted API key and a SOTC the local accounts service signs for the fan, as
 * `credentials.json` holds one. Each answers what came back and how long it took.
 */
import { randomUUID } from "node:crypto";
import { authorizerEvent } from "../gateway";
import type { LocalStandIns } from "../standIns";
import type { LocalSystem } from "../system";
import type { AuthorizerAnswer, DrillRequests, LivenessAnswer, RequestOutcome } from "./types";

/** The planned function of a worker; throws, naming it, when the stack plans none. */
export function functionOf(system: LocalSystem, worker: string) {
  const fn = system.wiring.functions.find((candidate) => candidate.worker === worker);
  if (!fn) throw new Error(`the stack plans no ${worker} function: the drill cannot run`);
  return fn;
}

/** `Authorization` for the fan: an accepted API key, a colon, and a SOTC signed for the fan now. */
async function authorization(standIns: LocalStandIns, globalUserId: string): Promise<string> {
  return `${standIns.secrets.apiKeys[0]}:${await standIns.accounts.issueSotc({ globalUserId })}`;
}

/**
 * Times `request` (an invocation answers its own time, without the wait for a container); its
 * error, if it fails, becomes the outcome's.
 */
async function timed<T>(request: () => Promise<{ answer?: T; error?: string; ms?: number }>): Promise<RequestOutcome<T>> {
  const started = performance.now();
  let outcome: { answer?: T; error?: string; ms?: number };
  try {
    outcome = await request();
  } catch (error) {
    outcome = { error: (error as Error).message };
  }
  return { ...outcome, at: Date.now(), ms: outcome.ms ?? performance.now() - started };
}

export function createDrillRequests(system: LocalSystem, standIns: LocalStandIns, accountId: string): DrillRequests {
  const invoke = async <T>(worker: string, event: unknown) => {
    const outcome = await system.invoke(functionOf(system, worker).name, event);
    return outcome.error
      ? { error: `${outcome.error.errorType}: ${outcome.error.errorMessage}`, ms: outcome.ms }
      : { answer: outcome.result as T, ms: outcome.ms };
  };
  return {
    getArmScore: (globalUserId) => timed(() => invoke<{ armScore: number | null }>("getArmScore", { globalUserId })),
    authorize: (globalUserId) =>
      timed(async () => {
        const headers = { authorization: await authorization(standIns, globalUserId) };
        return invoke<AuthorizerAnswer>(
          "validateToken",
          authorizerEvent(system.wiring, accountId, "checkLiveness", headers, randomUUID()),
        );
      }),
    checkLiveness: (globalUserId, tier = "high") =>
      timed(async () => {
        const response = await fetch(`${system.gateway.url}/graphql/checkLiveness`, {
          method: "POST",
          headers: { authorization: await authorization(standIns, globalUserId), "content-type": "application/json" },
          body: JSON.stringify({
            arguments: { options: { tier, appId: "fault-drill", subjectId: "drill", verificationType: "liveness" } },
          }),
        });
        const body = (await response.json()) as {
          data?: { checkLiveness?: LivenessAnswer | null };
          errors?: { errorType?: string; message?: string }[];
        };
        const answer = body.data?.checkLiveness ?? undefined;
        if (answer) return { answer };
        const error = body.errors?.map((entry) => `${entry.errorType ?? "Error"}: ${entry.message ?? ""}`).join("; ");
        return { error: `HTTP ${response.status}: ${error || "no answer"}` };
      }),
  };
}
