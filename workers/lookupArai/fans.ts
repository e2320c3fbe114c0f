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
  /** The message's correlation id (its `correlationId` attribute, or one made from its messageId). */
  readonly correlationId: string;
}

/** One fan of the batch: its messages (in batch order) and its latest activity. */
export interface FanLookup {
  readonly globalUserId: string;
  readonly messageIds: string[];
  readonly latest: ActivityMessage;
  /** The correlation ids of its messages, in batch order. */
  readonly correlationIds: string[];
  /** The latest activity's correlation id: the one stored with `lastActivity`. */
  readonly latestCorrelationId: string;
}

/** When an activity happened, in milliseconds. */
const activityTime = (message: ActivityMessage) => Date.parse(message.at);

/**
 * The fans of the batch, in the order first seen, each with its messages and the latest of them
 * by `at` (on a tie, the later in the batch: the queue delivered it after).
 */
export function fansOf(records: readonly ActivityRecord[]): FanLookup[] {
  const fans = new Map<
    string,
    { globalUserId: string; messageIds: string[]; latest: ActivityMessage; correlationIds: string[]; latestCorrelationId: string }
  >();
  for (const { id, message, correlationId } of records) {
    const fan = fans.get(message.globalUserId);
    if (!fan) {
      fans.set(message.globalUserId, {
        globalUserId: message.globalUserId,
        messageIds: [id],
        latest: message,
        correlationIds: [correlationId],
        latestCorrelationId: correlationId,
      });
      continue;
    }
    fan.messageIds.push(id);
    fan.correlationIds.push(correlationId);
    if (activityTime(message) >= activityTime(fan.latest)) {
      fan.latest = message;
      fan.latestCorrelationId = correlationId;
    }
  }
  return [...fans.values()];
}

/** The fan record's `lastActivity`: what the fan did, and the correlation id of that activity. */
export function lastActivityOf(
  message: ActivityMessage,
  correlationId?: string,
): { action: string; source: string; at: string; correlationId?: string } {
  return {
    action: message.action,
    source: message.source,
    at: message.at,
    ...(correlationId === undefined ? {} : { correlationId }),
  };
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
