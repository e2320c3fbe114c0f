/**
 * The rules of lookupArai, free of I/O: one lookup per fan per batch, the fan's latest activity,
 * and when stored ARAI is fresh enough not to fetch again (docs/flows.md#arai-lookup).
 */
import type { ActivityMessage } from "../shared/scoring/activity";

/** A decoded message of the batch. */
export interface ActivityRecord {
  /** The SQS messageId. */
  readonly id: string;
  readonly message: ActivityMessage;
}

/** One fan of the batch: its messages (in batch order) and its latest activity. */
export interface FanLookup {
  readonly globalUserId: string;
  readonly messageIds: string[];
  readonly latest: ActivityMessage;
}

/** When an activity happened, in milliseconds. */
const activityTime = (message: ActivityMessage) => Date.parse(message.at);

/**
 * The fans of the batch, in the order first seen, each with its messages and the latest of them
 * by `at` (on a tie, the later in the batch: the queue delivered it after).
 */
export function fansOf(records: readonly ActivityRecord[]): FanLookup[] {
  const fans = new Map<string, { globalUserId: string; messageIds: string[]; latest: ActivityMessage }>();
  for (const { id, message } of records) {
    const fan = fans.get(message.globalUserId);
    if (!fan) {
      fans.set(message.globalUserId, { globalUserId: message.globalUserId, messageIds: [id], latest: message });
      continue;
    }
    fan.messageIds.push(id);
    if (activityTime(message) >= activityTime(fan.latest)) fan.latest = message;
  }
  return [...fans.values()];
}

/** The fan record's `lastActivity`. */
export function lastActivityOf(message: ActivityMessage): { action: string; source: string; at: string } {
  return { action: message.action, source: message.source, at: message.at };
}

/**
 * True when ARAI stored at `araiUpdatedAt` (ISO 8601) is younger than the window at `nowMs`.
 * A stamp slightly ahead of this container's clock (another container wrote it) counts as
 * fresh; one a whole window or more ahead, or unreadable, does not, so it is replaced.
 */
export function isFresh(araiUpdatedAt: unknown, nowMs: number, freshnessMs: number): boolean {
  if (typeof araiUpdatedAt !== "string") return false;
  const updatedAt = Date.parse(araiUpdatedAt);
  return Number.isFinite(updatedAt) && Math.abs(nowMs - updatedAt) < freshnessMs;
}
