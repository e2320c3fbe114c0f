/**
 * The fan-identity table (docs/data-model.md#table): one table per scoring region, partition key
 * `userId`, record kinds side by side through key prefixes.
 */

/** The partition key's name. */
export const KEY = "userId";
/** The TTL attribute (epoch seconds). */
export const TTL_ATTRIBUTE = "expiresOn";

/** Record kinds, in the `type` attribute. */
export const RECORD_TYPES = {
  /** A fan whose fresh ARAI awaits scoring. */
  activityData: "activityData",
  /** A scored fan. */
  score: "score",
  stagingScore: "stagingScore",
  rescore: "rescore",
  idvSession: "idvSession",
} as const;

export const fanKey = (globalUserId: string) => globalUserId;
export const stagingKey = (globalUserId: string) => `staging#${globalUserId}`;
export const rescoreKey = (globalUserId: string, date: string) => `rescore#${globalUserId}#${date}`;

/** The principal DynamoDB's TTL deletions carry in a change record's `userIdentity`. */
export const TTL_PRINCIPAL = "dynamodb.amazonaws.com";
