/**
 * Activities: what a fan did, as the scoring queues carry it
 * (docs/data-model.md#activity-messages), and which are worth scoring
 * (docs/rules.md#scorable-activities).
 */
import { z } from "../zod";

/**
 * Where an activity came from: the sources of today. The message schema accepts any source name
 * of this shape, so a new stream worker can send activities before every reader is redeployed.
 */
export const ACTIVITY_SOURCES = ["kafka", "vf", "demand", "purchase", "sqJourney", "rescore"] as const;
export type ActivitySource = (typeof ACTIVITY_SOURCES)[number] | (string & {});

/** A source name: camelCase letters and digits, as a worker's source label is written. */
export const activitySourceSchema = () =>
  z.string().check(z.regex(/^[a-z][A-Za-z0-9]{0,31}$/, "expected a source name such as sqJourney"));

/** Actions whose successful result makes an activity worth scoring. */
export const SCORABLE_ACTIONS: readonly string[] = [
  "add_phone",
  "create_account",
  "login",
  "reset_password",
  "update_account",
  "update_email",
  "update_phone",
  "verify_otp",
  "verify_otp_mfa",
];

/** `result == "success"` and a scorable action. */
export function isScorable(activity: { readonly action?: unknown; readonly result?: unknown }): boolean {
  return activity.result === "success" && typeof activity.action === "string" && SCORABLE_ACTIONS.includes(activity.action);
}

/** Longest globalUserId the platform issues. */
export const MAX_GLOBAL_USER_ID_LENGTH = 128;

/** A globalUserId as the platform issues them: non-empty, no whitespace, short enough for a key. */
export const globalUserIdSchema = () =>
  z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(MAX_GLOBAL_USER_ID_LENGTH),
      z.regex(/^[^\s#]+$/, "expected a globalUserId (no whitespace or #)"),
    );

/**
 * The version of the activity message format this code writes, and the newest it reads
 * (docs/data-model.md#activity-messages). Bump it only for a change older readers would misread
 * (a field renamed, removed or given another meaning); an added field keeps the version.
 */
export const ACTIVITY_MESSAGE_VERSION = 1;

const POSITIVE_VERSION = "expected the message version, a positive integer";

/**
 * The `v` of a versioned message: a positive integer no higher than `known`. A higher one is a
 * message from a newer producer, refused saying so, so it is parked and redriven once this reader
 * is deployed in its newer version.
 */
export const messageVersionSchema = (known: number) =>
  z.int({ error: POSITIVE_VERSION, abort: true }).check(
    z.gte(1, { error: POSITIVE_VERSION, abort: true }),
    z.refine((version) => version <= known, {
      error: (issue) => `message version ${String(issue.input)} is newer than this reader knows (${known})`,
    }),
  );

/** When the fan acted (or the rescore fell due), as an activity message carries it: ISO 8601 with a zone. */
export const activityTimeSchema = () => z.iso.datetime({ offset: true });

/**
 * The body of a message on the account-activity and on-demand queues. Read tolerantly: fields
 * this reader does not know are ignored (producers deploy before or after it), the ones it reads
 * are required. Its version `v` is read first, so a message of a newer version is refused for
 * that alone, however its other fields changed; a message without `v` is of version 1 (it comes
 * from a producer older than the field).
 */
export const activityMessageSchema = () =>
  z.pipe(
    z.looseObject({ v: z.optional(messageVersionSchema(ACTIVITY_MESSAGE_VERSION)) }),
    z.object({
      v: z._default(z.literal(ACTIVITY_MESSAGE_VERSION), ACTIVITY_MESSAGE_VERSION),
      globalUserId: globalUserIdSchema(),
      source: activitySourceSchema(),
      action: z.string().check(z.minLength(1), z.maxLength(64)),
      at: activityTimeSchema(),
    }),
  );

export type ActivityMessage = z.infer<ReturnType<typeof activityMessageSchema>>;
