/**
 * Faults a stand-in can be told to have, for the fault drills (tools/local/drills): answer an
 * error status (with `Retry-After`, as a throttling service does), or answer late (past the
 * caller's time bound). A fault holds until it is cleared, or bites only the next `requests`
 * requests (an outage exactly as long as a retry budget allows), or only for `forMs` from the
 * first request it bites (an outage of a set length, however late the first caller comes on a
 * busy machine). Each stand-in owns a
 * switch (`createFaultSwitch`) behind its `setFault`, and counts what the fault changed, so a
 * drill can check that its fault was hit.
 */
import type { Answer } from "../wire";

/** How long a fault lasts, when not until it is cleared. */
export interface FaultLimit {
  /** Only the next this many requests; then the fault is spent. @default until cleared */
  readonly requests?: number;
  /** Only for this long from the first request it bites; then the fault is spent. @default until cleared */
  readonly forMs?: number;
}

/** What a stand-in does to a request while its fault holds. */
export type ServiceFault = FaultLimit &
  (
    | {
        /** Answer this status at once (429, 503…), without doing the work. */
        readonly status: number;
        /** Sent as `Retry-After` (seconds). */
        readonly retryAfterSeconds?: number;
      }
    /** Do the work, and answer this much later. */
    | { readonly delayMs: number }
  );

/** Requests a stand-in's fault switch saw since its fault was set, and how many the fault changed. */
export interface FaultCounts {
  readonly seen: number;
  readonly faulted: number;
}

/** Holds a stand-in's fault: set or cleared by a drill, taken per request by the responder. */
export interface FaultSwitch<F extends FaultLimit> {
  /** Puts `fault` in place (replacing any; the counts start again), or with undefined clears it. */
  set(fault: F | undefined): void;
  /** The fault for this request, counted as faulted; undefined when none holds (or it is spent). */
  take(): F | undefined;
  counts(): FaultCounts;
  /** Resolves once a limited fault is spent (or cleared); at once when none holds. */
  spent(): Promise<void>;
}

export function createFaultSwitch<F extends FaultLimit>(): FaultSwitch<F> {
  let fault: F | undefined;
  let left = Number.POSITIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let seen = 0;
  let faulted = 0;
  let waiting: (() => void)[] = [];
  const end = () => {
    fault = undefined;
    clearTimeout(timer);
    timer = undefined;
    const woken = waiting;
    waiting = [];
    woken.forEach((resolve) => resolve());
  };
  return {
    set(next) {
      if (!next) return end();
      end();
      fault = next;
      left = next.requests ?? Number.POSITIVE_INFINITY;
      [seen, faulted] = [0, 0];
    },
    take() {
      seen += 1;
      if (!fault) return undefined;
      const taken = fault;
      faulted += 1;
      if (faulted === 1 && taken.forMs !== undefined) timer = setTimeout(end, taken.forMs);
      if (--left <= 0) end();
      return taken;
    },
    counts: () => ({ seen, faulted }),
    spent: () => (fault ? new Promise<void>((resolve) => waiting.push(resolve)) : Promise.resolve()),
  };
}

/** The answer a request gets under `fault`: the error status at once, or the real answer late. */
export async function faultedAnswer(
  fault: ServiceFault,
  answer: () => Answer | Promise<Answer>,
  body: (status: number) => unknown = (status) => ({ message: `HTTP ${status} (a drill's fault)` }),
): Promise<Answer> {
  if ("status" in fault) {
    const headers = fault.retryAfterSeconds === undefined ? undefined : { "retry-after": String(fault.retryAfterSeconds) };
    return { status: fault.status, ...(headers ? { headers } : {}), body: body(fault.status) };
  }
  const real = await answer();
  return { ...real, delayMs: (real.delayMs ?? 0) + fault.delayMs };
}
