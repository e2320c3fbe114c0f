/**
 * Activities: what a fan did, as the scoring queues carry it
 * (docs/data-model.md#activity-messages), and which are worth scoring
 * (docs/rules.md#scorable-activities).
 */
import { z } from "zod";

/**
 * Where an activity came from: the sources of today. The message schema accepts any source name
 * of this shape, so a new stream worker can send activities before every reader is redeployed.
 */
export const ACTIVITY_SOURCES = ["kafka", "vf", "demand", "purchase", "sqJourney", "rescore"] as const;
export type ActivitySource = (typeof ACTIVITY_SOURCES)[number] | (string & {});

/** A source name: camelCase letters and digits, as a worker's source label is written. */
export const activitySourceSchema = () =>
  z.string().regex(/^[a-z][A-Za-z0-9]{0,31}$/, "expected a source name such as sqJourney");

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
    .min(1)
    .max(MAX_GLOBAL_USER_ID_LENGTH)
    .regex(/^[^\s#]+$/, "expected a globalUserId (no whitespace or #)");

/** The body of a message on the account-activity and on-demand queues. */
export const activityMessageSchema = () =>
  z
    .object({
      globalUserId: globalUserIdSchema(),
      source: activitySourceSchema(),
      action: z.string().min(1).max(64),
      /** When the fan acted (or the rescore fell due), ISO 8601. */
      at: z.iso.datetime({ offset: true }),
    })
    .strict();

export type ActivityMessage = z.infer<ReturnType<typeof activityMessageSchema>>;
