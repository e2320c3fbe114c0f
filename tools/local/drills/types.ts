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
import type { TableChange } from "../table/streamingDestination";
import type { LocalEvent } from "../types";

/** What a drill works with. */
export interface DrillContext {
  /** The system, its stand-ins, the traffic generator and the figures. */
  readonly running: RunningSystem;
  /** Faults at the wire in front of the AWS services (DynamoDB, the table endpoint, SQS, Kinesis). */
  readonly faults: FaultProxies;
  /** A line for the drill's report. */
  readonly log: (line: string) => void;
  /**
   * Fans of the drill's own (ids only this drill uses, named after it), known to the accounts
   * service, their ARM grades seeded: call it before the fault is in place.
   */
  readonly fans: (count: number) => Promise<string[]>;
  /** The drill's own requests to the synchronous triggers (requests.ts). */
  readonly requests: DrillRequests;
  /**
   * Accounts for one of the drill's own inputs under `what` (its line in the report): answered
   * as required or not (then `problem` says how). The moment it is called is when the input was
   * accounted for, which the recovery time reads.
   */
  readonly account: (what: string, asRequired: boolean, problem?: string) => void;
  /** The log lines a worker (by its `service`) wrote since the drill started, with `message` when given. */
  readonly logs: (worker: string, message?: string) => readonly Record<string, unknown>[];
  /** Everything the system reported since the drill started, each when it was reported (epoch ms). */
  readonly reported: () => readonly { readonly at: number; readonly event: LocalEvent }[];
  /** The table's change records since the drill started. */
  readonly changes: () => readonly TableChange[];
}

/** What one of the drill's own requests came to: its answer or its error, and how long it took. */
export interface RequestOutcome<T> {
  /** Epoch ms, when it was answered. */
  readonly at: number;
  readonly ms: number;
  readonly answer?: T;
  /** Why it failed: the function's error, or GraphQL's. */
  readonly error?: string;
}

/** A validateToken answer, as AppSync reads it. */
export interface AuthorizerAnswer {
  readonly isAuthorized: boolean;
  readonly resolverContext?: Readonly<Record<string, string>>;
  readonly ttlOverride?: number;
}

/** A checkLiveness answer (workers/checkLiveness). */
export interface LivenessAnswer {
  readonly requiresVerification: boolean;
  readonly reason: string;
  readonly session: { readonly vendorSessionId: string; readonly status: string; readonly expiresAt: string } | null;
  readonly token: string;
}

/** Requests a drill sends itself, as the platform's callers would. */
export interface DrillRequests {
  /** getArmScore invoked directly (as an SDK invoke does), for the fan. */
  getArmScore(globalUserId: string): Promise<RequestOutcome<{ readonly armScore: number | null }>>;
  /** validateToken invoked with AppSync's authoriser event: an accepted API key and a SOTC signed for the fan. */
  authorize(globalUserId: string): Promise<RequestOutcome<AuthorizerAnswer>>;
  /** checkLiveness through the gateway's GraphQL route, authorised as the fan (tier high unless given). */
  checkLiveness(globalUserId: string, tier?: string): Promise<RequestOutcome<LivenessAnswer>>;
}

/** What the runner found once the system was done, for a drill's own checks. */
export interface DrillOutcome {
  readonly ledger: Ledger;
  readonly sideEffects: readonly SideEffectCount[];
  /** When the traffic started and the fault was cleared, epoch ms. */
  readonly trafficFrom: number;
  readonly clearedAt: number;
}

/** How hard a drill's fault bit. */
export interface FaultHits {
  /** Requests (or records) the fault changed; none means the drill proved nothing. */
  readonly faulted: number;
  /**
   * Retries the workers' logs show (calls tried again, messages or batches delivered again),
   * where the drill's fault calls for them; absent where it does not.
   */
  readonly retries?: number;
}

/** The drill's own inputs of one kind, for the report. */
export interface RequestTally {
  readonly what: string;
  readonly sent: number;
  readonly asRequired: number;
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
  /** Fields added to every payload, as a newer producer adds them (GeneratorOptions.extraFields). @default none */
  readonly extraFields?: GeneratorOptions["extraFields"];
  /**
   * A burst of bad records: for `ms` from `atMs` into the traffic, this share of the events is
   * bad; outside it, `badRate`. @default none
   */
  readonly burst?: { readonly atMs: number; readonly ms: number; readonly badRate: number };
}

/** A side effect counted per input, to show none was repeated. */
export interface SideEffectCount {
  /** What it is: `score written`, `activity enqueued`, `Persona inquiry created`… */
  readonly effect: string;
  /** Inputs (or fans, or ARAI versions) it happened for more than once, by id. */
  readonly repeated: readonly string[];
  /** How many times it happened in all. */
  readonly total: number;
  /**
   * Inputs it happened for more than once only because two workers were at it at once, neither
   * able to see the other's (two lookups of one fan from the two scoring queues): not repeated by
   * a retry or a redelivery, and not counted in `repeated`; reported apart.
   */
  readonly concurrent?: readonly string[];
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
  /** How hard the fault bit, when the drill says. */
  readonly hits?: FaultHits;
  /** The drill's own inputs (requests it sent itself), by kind. */
  readonly requests?: readonly RequestTally[];
  /** Exports the drill notified, each expected to start one run of every import workflow. */
  readonly exports?: readonly string[];
  /** How long the fault held, and the whole drill. */
  readonly timings?: { readonly faultMs: number; readonly totalMs: number };
  /** The drill's own lines (`DrillContext.log`). */
  readonly log?: readonly string[];
}

export interface Drill {
  /** The `--drill` value: kebab-case, e.g. `redis-down`. */
  readonly name: string;
  /** One line: the fault, and what the system must do about it. */
  readonly summary: string;
  /**
   * The generator's traffic while the fault holds; the runner's when not given, none when the
   * drill sends its own (`during`) and gives none.
   */
  readonly traffic?: DrillTraffic;
  /** Puts the fault in place; answers what clears it. */
  inject(context: DrillContext): Promise<() => Promise<void>>;
  /** Sends the drill's own inputs while the fault holds (beside the generator's traffic, if any). */
  during?(context: DrillContext): Promise<void>;
  /** Sends the drill's own inputs once the fault is cleared (those that show it recovered). */
  after?(context: DrillContext): Promise<void>;
  /**
   * Further checks once the system is done (a fail-safe answer given during the fault, say):
   * the problems found, none when it passed.
   */
  verify?(context: DrillContext, outcome: DrillOutcome): Promise<string[]>;
  /** How hard the fault bit, counted since it was put in place; read once the system is done. */
  hits?(context: DrillContext): FaultHits | Promise<FaultHits>;
}
