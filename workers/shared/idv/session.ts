/**
 * Identity-verification sessions (docs/data-model.md#idv-session, docs/rules.md#session-lifetimes):
 * one per fan and verification type, stored in the fan-identity table under
 * `idv#<globalUserId>#<verificationType>`, following the vendor's (Persona's) inquiry through its
 * statuses.
 */
import { z } from "../zod";
import { splitList } from "../runtime/environment";
import { RECORD_TYPES } from "../scoring/table";

export const SESSION_STATUSES = [
  "created",
  "pending",
  "completed",
  "approved",
  "failed",
  "declined",
  "expired",
  "needs_review",
] as const;
export type SessionStatus = (typeof SESSION_STATUSES)[number];

/** Persona webhook events and the session status each one means. */
export const STATUS_OF_EVENT: Readonly<Record<string, SessionStatus>> = {
  "inquiry.created": "created",
  "inquiry.started": "pending",
  "inquiry.completed": "completed",
  "inquiry.approved": "approved",
  "inquiry.failed": "failed",
  "inquiry.declined": "declined",
  "inquiry.expired": "expired",
  "inquiry.marked-for-review": "needs_review",
};

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** How long a session in each status can be resumed or stands as the fan's state. */
export const SESSION_LIFETIME_MS: Readonly<Record<SessionStatus, number>> = {
  created: DAY,
  pending: DAY,
  needs_review: DAY,
  completed: HOUR,
  approved: HOUR,
  failed: HOUR,
  declined: HOUR,
  expired: 0,
};

/** Sessions are kept this long after their last update, then removed by TTL. */
export const SESSION_RETENTION_MS = 30 * DAY;

/**
 * A fan's last approval is kept at least this long (by default: the longest window a tier looks
 * back over, 90 days), whatever happens to the session meanwhile.
 */
export const DEFAULT_APPROVAL_RETENTION_DAYS = 90;

/** How long a fan's last approval is kept, in days, as a variable (at least the longest tier window). */
export const approvalRetentionDaysVariable = () =>
  z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(365)), DEFAULT_APPROVAL_RETENTION_DAYS);

/** The default verification type, when a request names none. */
export const DEFAULT_VERIFICATION_TYPE = "liveness";

export const sessionKey = (globalUserId: string, verificationType: string) => `idv#${globalUserId}#${verificationType}`;

/** A verification type as it appears in a session key: no `#`, which separates the key's parts. */
export const VERIFICATION_TYPE = /^[a-z][A-Za-z0-9_-]{0,63}$/;

/** The verification types a stack allows, as a comma-separated variable. */
export const verificationTypesSchema = () =>
  z._default(
    z.pipe(z.string(), z.transform(splitList)).check(
      z.refine((types) => types.length > 0 && types.length <= 100 && types.every((type) => VERIFICATION_TYPE.test(type)), {
        message: "expected a comma-separated list of 1 to 100 verification types (letters, digits, _ and -)",
      }),
    ),
    [DEFAULT_VERIFICATION_TYPE],
  );

/** A decision checkLiveness took for the fan, kept on the session and carried in the decision token. */
export interface Decision {
  readonly at: string;
  readonly tier: string;
  readonly appId: string;
  readonly subjectId: string;
  readonly requiresVerification: boolean;
  readonly reason: string;
}

export interface StatusChange {
  readonly status: SessionStatus;
  /** When the vendor says it happened (ISO 8601). */
  readonly at: string;
  /** The webhook event that reported it, if one did. */
  readonly eventId?: string;
}

export interface SessionItem {
  readonly userId: string;
  readonly type: typeof RECORD_TYPES.idvSession;
  readonly globalUserId: string;
  readonly verificationType: string;
  /** The vendor's inquiry id. */
  readonly vendorSessionId: string;
  readonly status: SessionStatus;
  readonly statusHistory: readonly StatusChange[];
  readonly decisions: readonly Decision[];
  readonly ipAddress?: string;
  readonly created: string;
  /** When the latest status happened, by the vendor's clock: later events win, earlier ones are ignored. */
  readonly updated: string;
  /** Until when the session can be resumed or stands (ISO 8601). */
  readonly expiresAt: string;
  /**
   * When the fan was last approved for this verification type, by this session or an earlier one
   * it replaced: the tiers look back over it, so a new inquiry does not erase it.
   */
  readonly lastApprovedAt?: string;
  /** TTL (epoch seconds): 30 days after the last update, and not before the approval retention ends. */
  readonly expiresOn: number;
}

/** Every attribute of a session this code writes (the type makes the list whole). */
const SESSION_ITEM_ATTRIBUTES: Readonly<Record<keyof SessionItem, true>> = {
  userId: true,
  type: true,
  globalUserId: true,
  verificationType: true,
  vendorSessionId: true,
  status: true,
  statusHistory: true,
  decisions: true,
  ipAddress: true,
  created: true,
  updated: true,
  expiresAt: true,
  lastApprovedAt: true,
  expiresOn: true,
};

/**
 * The attributes of a stored session that this code does not write: a newer writer's. A writer
 * that replaces the whole item writes them back, so what it does not know survives it; the ones
 * it knows it writes itself or, when the new session has none, leaves out.
 */
export function unknownSessionAttributes(item: Readonly<Record<string, unknown>> | undefined): Record<string, unknown> {
  if (item === undefined) return {};
  return Object.fromEntries(Object.entries(item).filter(([name]) => !Object.hasOwn(SESSION_ITEM_ATTRIBUTES, name)));
}

/**
 * `expiresAt` and `expiresOn` of a session whose status changed at `updated`: removed 30 days
 * after its last update, but not before `approvalRetentionDays` after the fan's last approval.
 */
export function sessionExpiry(
  status: SessionStatus,
  updated: string,
  lastApprovedAt?: string,
  approvalRetentionDays = DEFAULT_APPROVAL_RETENTION_DAYS,
): { expiresAt: string; expiresOn: number } {
  const at = Date.parse(updated);
  const approvalKeptUntil = lastApprovedAt === undefined ? 0 : Date.parse(lastApprovedAt) + approvalRetentionDays * DAY;
  return {
    expiresAt: new Date(at + SESSION_LIFETIME_MS[status]).toISOString(),
    expiresOn: Math.floor(Math.max(at + SESSION_RETENTION_MS, approvalKeptUntil) / 1000),
  };
}

/** When the fan was last approved, as a session records it. */
export function lastApprovalOf(
  session: Pick<SessionItem, "status" | "updated" | "lastApprovedAt"> | undefined,
): string | undefined {
  if (!session) return undefined;
  return session.lastApprovedAt ?? (session.status === "approved" ? session.updated : undefined);
}

/**
 * A session that stands for the fan's verification in progress: one they can resume, or one
 * they finished (`completed`) whose decision Persona has not sent yet. A new inquiry in its place
 * would orphan the decision.
 */
export function isLive(session: Pick<SessionItem, "status" | "expiresAt">, now: number): boolean {
  const inProgress = ["created", "pending", "needs_review", "completed"].includes(session.status);
  return inProgress && Date.parse(session.expiresAt) > now;
}
