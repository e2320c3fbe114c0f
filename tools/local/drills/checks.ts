/**
 * What the dependency drills share: asking again until an answer is right (how a caller sees a
 * service come back), the attempts an error says were made, the retries the workers' log lines
 * show, and the planned variables a drill sizes its fault by.
 */
import type { z } from "zod";
import type { WorkerContract } from "../../../workers/shared/runtime/contract";
import { loadEnvironment } from "../../../workers/shared/runtime/environment";
import type { LocalSystem } from "../system";
import { functionOf } from "./requests";
import type { DrillContext } from "./types";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends `request` until `right` holds, or `limitMs` passes; the last outcome, the tries, and whether it came right. */
export async function untilRight<T>(
  request: () => Promise<T>,
  right: (outcome: T) => boolean,
  limitMs = 15_000,
  pauseMs = 200,
): Promise<{ outcome: T; tries: number; right: boolean }> {
  const until = Date.now() + limitMs;
  for (let tries = 1; ; tries++) {
    const outcome = await request();
    if (right(outcome)) return { outcome, tries, right: true };
    if (Date.now() >= until) return { outcome, tries, right: false };
    await sleep(pauseMs);
  }
}

/**
 * What clears a limited fault: waits until it is spent (its requests made, its time over), for at
 * most `limitMs` once the traffic is done, then clears it.
 */
export function clearWhenSpent(spent: () => Promise<void>, clear: () => void, limitMs = 60_000): () => Promise<void> {
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([spent(), new Promise((resolve) => (timer = setTimeout(resolve, limitMs)))]);
    clearTimeout(timer);
    clear();
  };
}

/** The attempts an HttpServiceError's message names (`… failed after 3 attempts: …`); 1 when it names none. */
export function attemptsOf(message: unknown): number {
  const match = typeof message === "string" ? /after (\d+) attempts/.exec(message) : null;
  return match ? Number(match[1]) : 1;
}

/** The message of a log line's `error` (`{message}` or text). */
export const errorMessageOf = (line: Record<string, unknown>): string => {
  const error = line.error as { message?: unknown } | string | undefined;
  return typeof error === "string" ? error : String(error?.message ?? "");
};

/** A worker's log lines since the drill started whose message starts with `prefix`. */
export function linesStarting(context: DrillContext, worker: string, prefix: string): Record<string, unknown>[] {
  return context.logs(worker).filter((line) => typeof line.message === "string" && line.message.startsWith(prefix));
}

/**
 * Messages lookupArai received again (the same SQS message delivered more than once) since the
 * drill started, from its `activity received` lines.
 */
export function redeliveries(context: DrillContext): number {
  const lines = context.logs("lookupArai", "activity received");
  return lines.length - new Set(lines.map((line) => String(line.record))).size;
}

/** A worker's environment as the plan sets it, its contract's defaults filled in. */
export function plannedEnvironment<Env extends z.core.$ZodObject>(
  system: LocalSystem,
  contract: WorkerContract<Env>,
): z.infer<Env> {
  return loadEnvironment(contract, functionOf(system, contract.name).variables);
}

/**
 * The sum of a metric the workers emitted since the drill started (their EMF documents), over
 * the documents whose dimensions match `where`.
 */
export function emitted(context: DrillContext, metric: string, where: Readonly<Record<string, string>> = {}): number {
  return context.reported().reduce((sum, { event }) => {
    if (event.kind !== "log" || event.line._aws === undefined) return sum;
    const line = event.line;
    const matches = Object.entries(where).every(([name, value]) => line[name] === value);
    return matches && typeof line[metric] === "number" ? sum + (line[metric] as number) : sum;
  }, 0);
}

/** A short JSON of what came back, for a problem line. */
export function shown(outcome: { readonly answer?: unknown; readonly error?: string }): string {
  const text = outcome.error ?? JSON.stringify(outcome.answer);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
