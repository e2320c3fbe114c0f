/**
 * Rescore scheduling: a fan active on the demand, purchase or queue-journey streams is scored now
 * and again some days later, when a rescore record's TTL deletes it
 * (docs/flows.md#activity-streams, docs/flows.md#delayed-rescore).
 */
import { PutCommand, type DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { mapConcurrently } from "../runtime/retry";
import type { ActivitySource } from "./activity";
import { KEY, RECORD_TYPES, rescoreKey } from "./table";

const DAY_MS = 86_400_000;

export interface RescoreItem {
  readonly userId: string;
  readonly type: typeof RECORD_TYPES.rescore;
  readonly globalUserId: string;
  /** YYYY-MM-DD */
  readonly rescoreDate: string;
  readonly source: ActivitySource;
  /** The rescore date, 00:00 UTC, in epoch seconds: when TTL may delete the record. */
  readonly expiresOn: number;
  readonly dateCreated: string;
  /** The correlation id of the activity that scheduled it: the rescore's own activity carries it on. */
  readonly correlationId?: string;
}

/** The rescore record for a fan active at `activeAt`, due `delayDays` later. */
export function rescoreItem(
  globalUserId: string,
  source: ActivitySource,
  activeAt: Date,
  now: Date,
  delayDays: number,
  correlationId?: string,
): RescoreItem {
  const due = new Date(activeAt.getTime() + delayDays * DAY_MS);
  const midnight = Date.UTC(due.getUTCFullYear(), due.getUTCMonth(), due.getUTCDate());
  const rescoreDate = new Date(midnight).toISOString().slice(0, 10);
  return {
    userId: rescoreKey(globalUserId, rescoreDate),
    type: RECORD_TYPES.rescore,
    globalUserId,
    rescoreDate,
    source,
    expiresOn: midnight / 1000,
    dateCreated: now.toISOString(),
    ...(correlationId === undefined ? {} : { correlationId }),
  };
}

export interface ScheduleResult {
  /** Records written now. */
  readonly scheduled: number;
  /** Records that were already there (the fan is already due that day). */
  readonly existing: number;
  /** The keys of those records. */
  readonly existingKeys: readonly string[];
  /** Records that could not be written, by key, with why. */
  readonly failed: { readonly key: string; readonly reason: string }[];
}

/**
 * Writes each rescore record unless one exists for that fan and date (a conditional put on the
 * key), so a burst of activity schedules one rescore per fan and day.
 */
export async function scheduleRescores(
  client: DynamoDBDocumentClient,
  table: string,
  items: readonly RescoreItem[],
): Promise<ScheduleResult> {
  const unique = [...new Map(items.map((item) => [item.userId, item])).values()];
  let scheduled = 0;
  let existing = 0;
  const existingKeys: string[] = [];
  const failed: { key: string; reason: string }[] = [];
  await mapConcurrently(unique, 8, async (item) => {
    try {
      await client.send(
        new PutCommand({
          TableName: table,
          Item: item,
          ConditionExpression: "attribute_not_exists(#key)",
          ExpressionAttributeNames: { "#key": KEY },
        }),
      );
      scheduled += 1;
    } catch (error) {
      if ((error as Error).name === "ConditionalCheckFailedException") {
        existing += 1;
        existingKeys.push(item.userId);
      } else
        failed.push({
          key: item.userId,
          reason: `PutItem on ${table} failed: ${(error as Error).name}: ${(error as Error).message}`,
        });
    }
  });
  return { scheduled, existing, existingKeys, failed };
}
