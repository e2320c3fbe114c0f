/**
 * The ARAI snapshot stored on the fan record (docs/rules.md#arai-response): every field the
 * accounts service sent, with the two lists that grow without bound cut down so the item stays far
 * below DynamoDB's 400 KB limit, and a write never fails (or costs more capacity) because a fan
 * logs in a lot.
 */

/** Login history entries kept: the most recent, by `time`. */
export const LOGIN_HISTORY_LIMIT = 100;
/** Linked accounts kept: the first, in the service's order. */
export const LINKED_ACCOUNTS_LIMIT = 100;
/** Bound on the snapshot's JSON (UTF-8 bytes); the snapshot is always below it. */
export const SNAPSHOT_BYTE_LIMIT = 64 * 1024;

export type AraiDocument = Record<string, unknown> & {
  readonly loginHistory?: readonly unknown[];
  readonly linkedAccounts?: readonly unknown[];
};

export type TrimResult =
  | {
      readonly ok: true;
      readonly snapshot: AraiDocument;
      /** Size of the snapshot's JSON, in bytes. */
      readonly bytes: number;
      /** Entries left out of each list. */
      readonly dropped: { readonly loginHistory: number; readonly linkedAccounts: number };
    }
  | { readonly ok: false; readonly reason: string };

/**
 * When a login happened, in milliseconds, for ordering: an ISO date string, or epoch seconds
 * or milliseconds. An entry without a readable time sorts as the oldest.
 */
export function loginTime(entry: unknown): number {
  const time = typeof entry === "object" && entry !== null ? (entry as { time?: unknown }).time : undefined;
  if (typeof time === "number" && Number.isFinite(time)) return time < 1e11 ? time * 1000 : time;
  if (typeof time === "string") {
    const parsed = Date.parse(time);
    if (Number.isFinite(parsed)) return parsed;
  }
  return Number.NEGATIVE_INFINITY;
}

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), "utf8");

/**
 * The snapshot to store: all fields kept, the most recent LOGIN_HISTORY_LIMIT logins (in the
 * order the service listed them) and the first LINKED_ACCOUNTS_LIMIT linked accounts; then, while
 * the JSON is not under SNAPSHOT_BYTE_LIMIT, the login history is halved (most recent kept), and
 * after it the linked accounts. A document still too large without either list is refused, with
 * why: storing it could fail the write, and cutting fields the model reads would score wrongly.
 */
export function trimArai(arai: AraiDocument): TrimResult {
  const history = Array.isArray(arai.loginHistory) ? arai.loginHistory : undefined;
  const linked = Array.isArray(arai.linkedAccounts) ? arai.linkedAccounts : undefined;

  // Positions in the history from the most recent login down; equal times keep the service's order.
  const byRecency = (history ?? [])
    .map((entry, index) => ({ index, time: loginTime(entry) }))
    .sort((a, b) => b.time - a.time || a.index - b.index)
    .map(({ index }) => index);

  const build = (historyKept: number, linkedKept: number): AraiDocument => {
    const snapshot: Record<string, unknown> = { ...arai };
    if (history) {
      const kept = new Set(byRecency.slice(0, historyKept));
      snapshot.loginHistory = history.filter((_, index) => kept.has(index));
    }
    if (linked) snapshot.linkedAccounts = linked.slice(0, linkedKept);
    return snapshot;
  };

  let historyKept = Math.min(history?.length ?? 0, LOGIN_HISTORY_LIMIT);
  let linkedKept = Math.min(linked?.length ?? 0, LINKED_ACCOUNTS_LIMIT);
  let snapshot = build(historyKept, linkedKept);
  let bytes = jsonBytes(snapshot);
  while (bytes >= SNAPSHOT_BYTE_LIMIT && (historyKept > 0 || linkedKept > 0)) {
    if (historyKept > 0) historyKept = Math.floor(historyKept / 2);
    else linkedKept = Math.floor(linkedKept / 2);
    snapshot = build(historyKept, linkedKept);
    bytes = jsonBytes(snapshot);
  }
  if (bytes >= SNAPSHOT_BYTE_LIMIT) {
    return {
      ok: false,
      reason: `ARAI document is ${bytes} bytes as JSON without its login history and linked accounts; the stored snapshot must be under ${SNAPSHOT_BYTE_LIMIT}`,
    };
  }
  return {
    ok: true,
    snapshot,
    bytes,
    dropped: { loginHistory: (history?.length ?? 0) - historyKept, linkedAccounts: (linked?.length ?? 0) - linkedKept },
  };
}
