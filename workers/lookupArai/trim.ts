/**
 * The ARAI snapshot stored on the fan record (docs/rules.md#arai-response): the answer's `data`
 * with every field the accounts service sent, and the lists that grow without bound (the two
 * history lists and the linked accounts) cut down so the item stays far below DynamoDB's 400 KB
 * limit, and a write never fails (or costs more capacity) because a fan logs in a lot. `counts`
 * are kept as sent: they are the fan's totals, not the length of what is stored.
 */
import { HISTORY_LISTS, type HistoryList, type UserAccountActivity } from "./araiDocument";

/** Entries kept of each history list: the most recent, by `at`. */
export const HISTORY_LIMIT = 100;
/** Linked accounts kept: the first, in the service's order. */
export const LINKED_ACCOUNTS_LIMIT = 100;
/** Bound on the snapshot's JSON (UTF-8 bytes); the snapshot is always below it. */
export const SNAPSHOT_BYTE_LIMIT = 64 * 1024;

/** Entries left out, per list. */
export type Dropped = { readonly [list in HistoryList | "linkedAccounts"]: number };

export type TrimResult =
  | {
      readonly ok: true;
      readonly snapshot: UserAccountActivity;
      /** Size of the snapshot's JSON, in bytes. */
      readonly bytes: number;
      readonly dropped: Dropped;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * When a history entry happened (its `at`), in milliseconds, for ordering: an ISO date string,
 * or epoch seconds or milliseconds. An entry without a readable time sorts as the oldest.
 */
export function entryTime(entry: unknown): number {
  const at = typeof entry === "object" && entry !== null ? (entry as { at?: unknown }).at : undefined;
  if (typeof at === "number" && Number.isFinite(at)) return at < 1e11 ? at * 1000 : at;
  if (typeof at === "string") {
    const parsed = Date.parse(at);
    if (Number.isFinite(parsed)) return parsed;
  }
  return Number.NEGATIVE_INFINITY;
}

const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value), "utf8");

/** A history list's entries at most `kept` at a time: the most recent by `at`, in the order listed. */
function newestFirst(list: readonly unknown[]): (kept: number) => unknown[] {
  // Positions from the most recent entry down; equal times keep the service's order.
  const byRecency = list
    .map((entry, index) => ({ index, time: entryTime(entry) }))
    .sort((a, b) => b.time - a.time || a.index - b.index)
    .map(({ index }) => index);
  return (kept) => {
    const keep = new Set(byRecency.slice(0, kept));
    return list.filter((_, index) => keep.has(index));
  };
}

/**
 * The snapshot to store: all fields of `data` kept, at most HISTORY_LIMIT entries of each
 * history list (the most recent by `at`, in the order the service listed them) and the first
 * LINKED_ACCOUNTS_LIMIT linked accounts; then, while the JSON is not under SNAPSHOT_BYTE_LIMIT,
 * the bound on each history list is halved (so the longer list is cut first, most recent kept),
 * and after the history the linked accounts. Data still too large without any of the lists is
 * refused, with why: storing it could fail the write, and cutting fields the model reads would
 * score wrongly.
 */
export function trimArai(data: UserAccountActivity): TrimResult {
  const history = typeof data.history === "object" && data.history !== null ? data.history : undefined;
  const lists = HISTORY_LISTS.flatMap((name) => {
    const list = history?.[name];
    return Array.isArray(list) ? [{ name, length: list.length, take: newestFirst(list) }] : [];
  });
  const linked = Array.isArray(data.linkedAccounts) ? data.linkedAccounts : undefined;

  const build = (historyKept: number, linkedKept: number): UserAccountActivity => {
    const snapshot: Record<string, unknown> = { ...data };
    if (history && lists.length > 0) {
      const kept: Record<string, unknown> = { ...history };
      for (const list of lists) kept[list.name] = list.take(historyKept);
      snapshot.history = kept;
    }
    if (linked) snapshot.linkedAccounts = linked.slice(0, linkedKept);
    return snapshot as UserAccountActivity;
  };

  const longest = Math.max(0, ...lists.map((list) => list.length));
  let historyKept = Math.min(longest, HISTORY_LIMIT);
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
      reason: `ARAI data is ${bytes} bytes as JSON without its history and linked accounts; the stored snapshot must be under ${SNAPSHOT_BYTE_LIMIT}`,
    };
  }
  const droppedFrom = (name: HistoryList) => {
    const list = lists.find((entry) => entry.name === name);
    return list ? list.length - Math.min(list.length, historyKept) : 0;
  };
  return {
    ok: true,
    snapshot,
    bytes,
    dropped: {
      loginActivity: droppedFrom("loginActivity"),
      failedLoginActivity: droppedFrom("failedLoginActivity"),
      linkedAccounts: (linked?.length ?? 0) - linkedKept,
    },
  };
}
