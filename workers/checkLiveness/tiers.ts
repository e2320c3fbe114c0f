/**
 * The rules of checkLiveness (docs/rules.md#liveness-tiers, docs/flows.md#identity-verification),
 * free of I/O: whether a tier requires the fan to verify, and, when it does, whether their stored
 * session is reused, refused for a cooldown or replaced.
 */
import { isLive, lastApprovalOf as lastApprovalRecorded, type SessionStatus } from "../shared/idv/session";

export const TIERS = ["always", "high", "medium", "low", "asu", "test-always", "test-never"] as const;
export type Tier = (typeof TIERS)[number];

/** Tiers whose rule looks at the fan's last approval, so the session is read before deciding. */
export const TIERS_READING_APPROVAL: readonly Tier[] = ["high", "medium", "asu"];

export interface TierThresholds {
  /** high: verify unless approved within this many days. */
  readonly highDays: number;
  /** medium: likewise. */
  readonly mediumDays: number;
  /** low: verify when the account score is below this. */
  readonly lowScoreBelow: number;
  /** asu: an ARM score above this is risky on its own; equal to it (or absent), with a low account score. */
  readonly asuArmAbove: number;
  readonly asuScoreBelow: number;
  /** asu: a risky fan approved within this many days is not asked again. */
  readonly asuDays: number;
}

/** What the tier rules know of the fan. */
export interface TierFacts {
  readonly armScore?: number | null;
  readonly accountScore?: number | null;
  /** When the fan's session was last approved (epoch ms), if it is. */
  readonly lastApprovedAt?: number;
}

export interface TierOutcome {
  readonly requiresVerification: boolean;
  /** Short and machine-readable, e.g. `approved-within-30-days`, `arm-score-above-3`, `tier-always`. */
  readonly reason: string;
}

const DAY_MS = 86_400_000;

const required = (reason: string): TierOutcome => ({ requiresVerification: true, reason });
const notRequired = (reason: string): TierOutcome => ({ requiresVerification: false, reason });

/** Approved within `days` of `now`, the day count's end included. */
function approvedWithin(lastApprovedAt: number | undefined, days: number, now: number): boolean {
  return lastApprovedAt !== undefined && now - lastApprovedAt <= days * DAY_MS;
}

/** Whether the tier requires the fan to verify now, and why. */
export function evaluateTier(tier: Tier, facts: TierFacts, thresholds: TierThresholds, now: number): TierOutcome {
  const { armScore, accountScore, lastApprovedAt } = facts;
  switch (tier) {
    case "always":
    case "test-always":
      return required(`tier-${tier}`);
    case "test-never":
      return notRequired("tier-test-never");
    case "high":
    case "medium": {
      const days = tier === "high" ? thresholds.highDays : thresholds.mediumDays;
      return approvedWithin(lastApprovedAt, days, now)
        ? notRequired(`approved-within-${days}-days`)
        : required(`no-approval-within-${days}-days`);
    }
    case "low": {
      const below = thresholds.lowScoreBelow;
      // Fail safe: a fan whose account score is unknown is treated as a low-scoring one.
      if (accountScore === undefined || accountScore === null) return required("no-account-score");
      return accountScore < below ? required(`account-score-below-${below}`) : notRequired(`account-score-not-below-${below}`);
    }
    case "asu": {
      const risk = asuRisk(armScore, accountScore, thresholds);
      if (!risk.risky) return notRequired(risk.reason);
      return approvedWithin(lastApprovedAt, thresholds.asuDays, now)
        ? notRequired(`approved-within-${thresholds.asuDays}-days`)
        : required(risk.reason);
    }
  }
}

/**
 * The asu tier's risk: an ARM score above the bar, or at the bar (or unknown) with an account
 * score below its bar. An unknown account score counts as below, as in the low tier (fail safe).
 */
function asuRisk(
  armScore: number | null | undefined,
  accountScore: number | null | undefined,
  thresholds: TierThresholds,
): { risky: boolean; reason: string } {
  const { asuArmAbove: armBar, asuScoreBelow: scoreBar } = thresholds;
  const arm = armScore ?? undefined;
  if (arm !== undefined && arm > armBar) return { risky: true, reason: `arm-score-above-${armBar}` };
  if (arm !== undefined && arm < armBar) return { risky: false, reason: `arm-score-below-${armBar}` };
  if (accountScore === undefined || accountScore === null) return { risky: true, reason: "no-account-score" };
  return accountScore < scoreBar
    ? { risky: true, reason: `account-score-below-${scoreBar}` }
    : { risky: false, reason: `account-score-not-below-${scoreBar}` };
}

/** The part of a stored session the rules read. */
export interface SessionFacts {
  readonly status: SessionStatus;
  /** When its latest status happened (ISO 8601). */
  readonly updated: string;
  readonly expiresAt: string;
  /** The fan's last approval, carried over from sessions this one replaced. */
  readonly lastApprovedAt?: string;
}

/** When the fan was last approved (epoch ms): this session's approval, or one it carried over. */
export function lastApprovalOf(session: SessionFacts | undefined): number | undefined {
  const approved = lastApprovalRecorded(session);
  if (approved === undefined) return undefined;
  const at = Date.parse(approved);
  return Number.isNaN(at) ? undefined : at;
}

export type NextStep =
  | { readonly action: "reuse" }
  /** A failed or declined session is too recent: no new one before `until` (ISO 8601). */
  | { readonly action: "cooldown"; readonly until: string; readonly status: "failed" | "declined"; readonly since: string }
  | { readonly action: "create" };

/**
 * What verification needs, given the fan's stored session: resume it while it is live; after a
 * failed or declined one, wait out the cooldown (so a fan cannot retry a refused verification at
 * will, each retry costing an inquiry); otherwise start a new inquiry.
 */
export function nextStep(session: SessionFacts | undefined, now: number, cooldownSeconds: number): NextStep {
  if (session === undefined) return { action: "create" };
  if (isLive(session, now)) return { action: "reuse" };
  if (session.status === "failed" || session.status === "declined") {
    const until = Date.parse(session.updated) + cooldownSeconds * 1000;
    if (now < until) {
      return { action: "cooldown", until: new Date(until).toISOString(), status: session.status, since: session.updated };
    }
  }
  return { action: "create" };
}
