/**
 * What the local system's specs share: waiting for a condition with a generous limit (CI
 * machines are loaded, so nothing is asserted on how long it took), a planned function to hand
 * the Lambda emulation and the sources, and the reports they make, collected.
 */
import type { LocalEvent } from "../../tools/local/types";
import type { PlannedFunction } from "../../tools/local/wiring";

/** Resolves with the condition's value once it is truthy; fails after `limitMs`, saying what was awaited. */
export async function waitUntil<T>(condition: () => T | Promise<T>, what: string, limitMs = 60_000): Promise<NonNullable<T>> {
  const until = Date.now() + limitMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > until) throw new Error(`gave up waiting for ${what} after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A planned function as the wiring reads one, for a worker's name. */
export function plannedFunction(changes: Partial<PlannedFunction> = {}): PlannedFunction {
  const name = changes.name ?? "vfid-qa1-us-east-1-enqueueFromVfStream";
  return {
    name,
    worker: "enqueueFromVfStream",
    code: undefined,
    variables: {},
    timeoutSeconds: 30,
    memoryMb: 256,
    region: "us-east-1",
    arn: `arn:aws:lambda:us-east-1:210987654321:function:${name}`,
    roleArn: `arn:aws:iam::210987654321:role/${name}-role`,
    ...changes,
  };
}

/** Collects what a part of the local system reports. */
export function reports() {
  const events: LocalEvent[] = [];
  const of = <K extends LocalEvent["kind"]>(kind: K): Extract<LocalEvent, { kind: K }>[] =>
    events.filter((event): event is Extract<LocalEvent, { kind: K }> => event.kind === kind);
  return {
    events,
    report: (event: LocalEvent) => void events.push(event),
    of,
    /** The sum of `count` over the events of `kind` (filtered, delivered, parked, input). */
    count: (kind: "filtered" | "delivered" | "parked" | "input"): number => of(kind).reduce((sum, event) => sum + event.count, 0),
  };
}
