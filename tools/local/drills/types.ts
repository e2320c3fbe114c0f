/**
 * Fault drills on the running local system (`npm start -- --drill NAME`): each drill puts one
 * fault in place, sends traffic while it holds, clears it, waits until the system is done, and
 * reconciles what it sent in a ledger: every input scored, skipped (with reason) or parked (with
 * reason), none lost, no side effect repeated, and the time the system took to recover once the
 * fault cleared. The runner (runner.ts) does the sequence; a drill says only what its fault is
 * and, where the traffic generator is not its input, what it sends and how it reconciles.
 */
import type { Ledger } from "../ledger";
import type { RunningSystem } from "../run";
import type { GeneratorOptions } from "../traffic/generator";
import type { FaultProxies } from "../faults/proxy";

/** What a drill works with. */
export interface DrillContext {
  /** The system, its stand-ins, the traffic generator and the figures. */
  readonly running: RunningSystem;
  /** Faults at the wire in front of the AWS services (DynamoDB, the table endpoint, SQS, Kinesis). */
  readonly faults: FaultProxies;
  /** A line for the drill's report. */
  readonly log: (line: string) => void;
}

/** The traffic the generator sends while the fault holds. */
export interface DrillTraffic {
  /** Share of events per input. @default every input */
  readonly mix?: GeneratorOptions["mix"];
  /** @default the runner's */
  readonly rate?: number;
  /** @default the runner's */
  readonly durationMs?: number;
  /** Share of bad records. @default 0 */
  readonly badRate?: number;
}

/** A side effect counted per input, to show none was repeated. */
export interface SideEffectCount {
  /** What it is: `score written`, `activity enqueued`, `Persona inquiry created`… */
  readonly effect: string;
  /** Inputs (or fans, or ARAI versions) it happened for more than once, by id. */
  readonly repeated: readonly string[];
  /** How many times it happened in all. */
  readonly total: number;
}

/** What a drill ends with. */
export interface DrillReport {
  readonly drill: string;
  readonly summary: string;
  /** The ledger of the inputs the drill sent (the generator's, or the drill's own). */
  readonly ledger: Ledger;
  readonly sideEffects: readonly SideEffectCount[];
  /** From the moment the fault cleared until the last of the drill's inputs was accounted for. */
  readonly recoveryMs: number;
  /** Problems found by the drill's own checks; empty when it passed. */
  readonly problems: readonly string[];
  /** Zero lost, zero repeated, no problems. */
  readonly ok: boolean;
}

export interface Drill {
  /** The `--drill` value: kebab-case, e.g. `redis-down`. */
  readonly name: string;
  /** One line: the fault, and what the system must do about it. */
  readonly summary: string;
  /** The generator's traffic while the fault holds; a drill with its own `run` sends its own. */
  readonly traffic?: DrillTraffic;
  /** Puts the fault in place; answers what clears it. */
  inject(context: DrillContext): Promise<() => Promise<void>>;
  /**
   * Further checks once the system is done (a fail-safe answer given during the fault, say):
   * the problems found, none when it passed.
   */
  verify?(context: DrillContext): Promise<string[]>;
}
