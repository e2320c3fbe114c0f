/**
 * What the fault rules share: picking a share of what passes, the same way every run, and naming
 * a JSON value by its content, whatever the order of its keys, so a key or item sent again (a
 * retry of the unprocessed ones) is known for the one sent before.
 */
import type { FaultRule } from "./proxy";

/** A rule with the tallies a drill checks its fault by (that it bit, and what the callers did about it). */
export interface TrackedRule<Stats> {
  readonly rule: FaultRule;
  stats(): Stats;
  /**
   * Ends the fault: from now on every request passes, while the rule, left in place, goes on
   * tallying what the callers do about the faults already made (a retry sent just after the fault
   * ended is still seen).
   */
  stop(): void;
}

/**
 * Picks `share` (0..1) of the calls made to it, evenly spread: the n-th call (from 0) is picked
 * when ⌊(n+1)·share⌋ > ⌊n·share⌋, so a share of a half picks every second call, a third every third.
 */
export function evenShare(share: number): () => boolean {
  if (!(share >= 0 && share <= 1)) throw new Error(`a fault's share must be between 0 and 1, not ${share}`);
  let calls = 0;
  return () => {
    const picked = Math.floor((calls + 1) * share + 1e-9) > Math.floor(calls * share + 1e-9);
    calls += 1;
    return picked;
  };
}

/** JSON with every object's keys sorted: the same text for the same value. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([key, inner]) => `${JSON.stringify(key)}:${canonicalJson(inner)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
