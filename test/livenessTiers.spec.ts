/**
 * checkLiveness's pure rules: what each tier requires at each threshold's edge, what a stored
 * session leads to (reuse, cooldown, a new inquiry), and, with fast-check, that the rules agree
 * with their wording in docs/rules.md#liveness-tiers for any scores, approvals and thresholds.
 */
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import { SESSION_STATUSES, type SessionStatus } from "../workers/shared/idv/session";
import {
  evaluateTier,
  lastApprovalOf,
  nextStep,
  type SessionFacts,
  type TierFacts,
  type TierThresholds,
  TIERS,
} from "../workers/checkLiveness/tiers";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const NOW = Date.parse("2026-11-25T12:00:00.000Z");

/** The default thresholds (docs/rules.md#liveness-tiers), which qa1 configures too. */
const DEFAULTS: TierThresholds = {
  highDays: 30,
  mediumDays: 90,
  lowScoreBelow: 0.5,
  asuArmAbove: 3,
  asuScoreBelow: 0.3,
  asuDays: 90,
};

const approvedDaysAgo = (days: number): TierFacts => ({ lastApprovedAt: NOW - days * DAY });
const decide = (tier: (typeof TIERS)[number], facts: TierFacts = {}, thresholds = DEFAULTS) =>
  evaluateTier(tier, facts, thresholds, NOW);

const required = (reason: string) => ({ requiresVerification: true, reason });
const notRequired = (reason: string) => ({ requiresVerification: false, reason });

describe("checkLiveness tier rules", function () {
  it("always and test-always require verification whatever is known; test-never never does", function () {
    const known: TierFacts[] = [{}, { armScore: 1, accountScore: 0.99 }, approvedDaysAgo(0), { armScore: 5, accountScore: 0 }];
    for (const facts of known) {
      assert.deepEqual(decide("always", facts), required("tier-always"));
      assert.deepEqual(decide("test-always", facts), required("tier-test-always"));
      assert.deepEqual(decide("test-never", facts), notRequired("tier-test-never"));
    }
  });

  it("high: an approval 29 days ago stands, 31 days ago does not, exactly 30 days ago still does", function () {
    assert.deepEqual(decide("high", approvedDaysAgo(29)), notRequired("approved-within-30-days"));
    assert.deepEqual(decide("high", approvedDaysAgo(31)), required("no-approval-within-30-days"));
    assert.deepEqual(decide("high", approvedDaysAgo(30)), notRequired("approved-within-30-days"));
    assert.deepEqual(decide("high", { lastApprovedAt: NOW - 30 * DAY - 1 }), required("no-approval-within-30-days"));
    assert.deepEqual(decide("high"), required("no-approval-within-30-days"));
  });

  it("medium: an approval 89 days ago stands, 91 days ago does not", function () {
    assert.deepEqual(decide("medium", approvedDaysAgo(89)), notRequired("approved-within-90-days"));
    assert.deepEqual(decide("medium", approvedDaysAgo(91)), required("no-approval-within-90-days"));
    assert.deepEqual(decide("medium"), required("no-approval-within-90-days"));
  });

  it("high and medium ignore the scores", function () {
    for (const tier of ["high", "medium"] as const) {
      assert.equal(decide(tier, { ...approvedDaysAgo(1), armScore: 5, accountScore: 0 }).requiresVerification, false);
      assert.equal(decide(tier, { armScore: 1, accountScore: 1 }).requiresVerification, true);
    }
  });

  it("low: an account score of exactly 0.5 passes, just below requires verification, none requires it (fail safe)", function () {
    assert.deepEqual(decide("low", { accountScore: 0.5 }), notRequired("account-score-not-below-0.5"));
    assert.deepEqual(decide("low", { accountScore: 0.49999 }), required("account-score-below-0.5"));
    assert.deepEqual(decide("low", { accountScore: 0 }), required("account-score-below-0.5"));
    assert.deepEqual(decide("low", { accountScore: 0.97 }), notRequired("account-score-not-below-0.5"));
    assert.deepEqual(decide("low"), required("no-account-score"));
    assert.deepEqual(decide("low", { accountScore: null }), required("no-account-score"));
  });

  it("low does not look at approvals: a fan approved yesterday with a low score is asked again", function () {
    assert.deepEqual(decide("low", { ...approvedDaysAgo(1), accountScore: 0.1 }), required("account-score-below-0.5"));
  });

  it("asu: an ARM score above 3 requires verification on its own", function () {
    for (const armScore of [4, 5]) {
      for (const accountScore of [undefined, 0, 0.99]) {
        assert.deepEqual(decide("asu", { armScore, accountScore }), required("arm-score-above-3"));
      }
    }
  });

  it("asu: ARM 3 with an account score below 0.3 requires it, with 0.3 or above does not, with none does (fail safe)", function () {
    assert.deepEqual(decide("asu", { armScore: 3, accountScore: 0.29 }), required("account-score-below-0.3"));
    assert.deepEqual(decide("asu", { armScore: 3, accountScore: 0.3 }), notRequired("account-score-not-below-0.3"));
    assert.deepEqual(decide("asu", { armScore: 3, accountScore: 0.8 }), notRequired("account-score-not-below-0.3"));
    assert.deepEqual(decide("asu", { armScore: 3 }), required("no-account-score"));
  });

  it("asu: no ARM score counts as ARM 3", function () {
    assert.deepEqual(decide("asu", { accountScore: 0.1 }), required("account-score-below-0.3"));
    assert.deepEqual(decide("asu", { armScore: null, accountScore: 0.1 }), required("account-score-below-0.3"));
    assert.deepEqual(decide("asu", { accountScore: 0.3 }), notRequired("account-score-not-below-0.3"));
    assert.deepEqual(decide("asu"), required("no-account-score"));
  });

  it("asu: an ARM score below 3 passes whatever the account score", function () {
    for (const armScore of [1, 2]) {
      for (const accountScore of [undefined, 0, 0.29]) {
        assert.deepEqual(decide("asu", { armScore, accountScore }), notRequired("arm-score-below-3"));
      }
    }
  });

  it("asu: a risky fan approved 89 days ago passes, 91 days ago does not", function () {
    assert.deepEqual(decide("asu", { armScore: 5, ...approvedDaysAgo(89) }), notRequired("approved-within-90-days"));
    assert.deepEqual(decide("asu", { armScore: 5, ...approvedDaysAgo(91) }), required("arm-score-above-3"));
    assert.deepEqual(
      decide("asu", { armScore: 3, accountScore: 0.1, ...approvedDaysAgo(91) }),
      required("account-score-below-0.3"),
    );
  });

  it("takes its thresholds from configuration, and names them in its reasons", function () {
    const strict: TierThresholds = {
      highDays: 7,
      mediumDays: 14,
      lowScoreBelow: 0.8,
      asuArmAbove: 2,
      asuScoreBelow: 0.6,
      asuDays: 3,
    };
    assert.deepEqual(decide("high", approvedDaysAgo(8), strict), required("no-approval-within-7-days"));
    assert.deepEqual(decide("medium", approvedDaysAgo(13), strict), notRequired("approved-within-14-days"));
    assert.deepEqual(decide("low", { accountScore: 0.7 }, strict), required("account-score-below-0.8"));
    assert.deepEqual(decide("asu", { armScore: 3 }, strict), required("arm-score-above-2"));
    assert.deepEqual(decide("asu", { armScore: 2, accountScore: 0.5 }, strict), required("account-score-below-0.6"));
    assert.deepEqual(decide("asu", { armScore: 1, accountScore: 0 }, strict), notRequired("arm-score-below-2"));
    assert.deepEqual(decide("asu", { armScore: 5, ...approvedDaysAgo(4) }, strict), required("arm-score-above-2"));
  });

  describe("properties", function () {
    const thresholds = fc.record({
      highDays: fc.integer({ min: 1, max: 365 }),
      mediumDays: fc.integer({ min: 1, max: 365 }),
      lowScoreBelow: fc.double({ min: 0, max: 1, noNaN: true }),
      asuArmAbove: fc.integer({ min: 1, max: 5 }),
      asuScoreBelow: fc.double({ min: 0, max: 1, noNaN: true }),
      asuDays: fc.integer({ min: 1, max: 365 }),
    });
    const facts = fc.record(
      {
        armScore: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
        accountScore: fc.option(fc.double({ min: -1, max: 2, noNaN: true }), { nil: undefined }),
        lastApprovedAt: fc.option(fc.integer({ min: NOW - 400 * DAY, max: NOW }), { nil: undefined }),
      },
      { requiredKeys: [] },
    );
    const within = (f: TierFacts, days: number) => f.lastApprovedAt !== undefined && NOW - f.lastApprovedAt <= days * DAY;

    it("each tier decides as docs/rules.md words it", function () {
      fc.assert(
        fc.property(fc.constantFrom(...TIERS), facts, thresholds, (tier, f, t) => {
          const outcome = evaluateTier(tier, f, t, NOW);
          const score = f.accountScore;
          const arm = f.armScore;
          const expected = {
            always: true,
            "test-always": true,
            "test-never": false,
            high: !within(f, t.highDays),
            medium: !within(f, t.mediumDays),
            low: score === undefined || score < t.lowScoreBelow,
            asu:
              ((arm !== undefined && arm > t.asuArmAbove) ||
                ((arm === undefined || arm === t.asuArmAbove) && (score === undefined || score < t.asuScoreBelow))) &&
              !within(f, t.asuDays),
          }[tier];
          assert.equal(outcome.requiresVerification, expected);
          assert.match(outcome.reason, /^[a-z0-9.-]+$/);
        }),
        { numRuns: 2000 },
      );
    });

    it("a more recent approval never makes verification more required (high, medium, asu)", function () {
      fc.assert(
        fc.property(
          fc.constantFrom("high", "medium", "asu" as const),
          facts,
          thresholds,
          fc.integer({ min: 0, max: 400 * DAY }),
          (tier, f, t, sooner) => {
            if (f.lastApprovedAt === undefined) return;
            const later = { ...f, lastApprovedAt: Math.min(NOW, f.lastApprovedAt + sooner) };
            if (!evaluateTier(tier, f, t, NOW).requiresVerification) {
              assert.equal(evaluateTier(tier, later, t, NOW).requiresVerification, false);
            }
          },
        ),
      );
    });

    it("a lower account score never makes verification less required (low, asu)", function () {
      fc.assert(
        fc.property(
          fc.constantFrom("low", "asu" as const),
          facts,
          thresholds,
          fc.double({ min: 0, max: 1, noNaN: true }),
          (tier, f, t, drop) => {
            if (f.accountScore === undefined) return;
            const lower = { ...f, accountScore: f.accountScore - drop };
            if (evaluateTier(tier, f, t, NOW).requiresVerification) {
              assert.equal(evaluateTier(tier, lower, t, NOW).requiresVerification, true);
            }
          },
        ),
      );
    });
  });
});

describe("checkLiveness session rules", function () {
  const session = (status: SessionStatus, updatedAgoMs: number, lifetimeMs = DAY): SessionFacts => ({
    status,
    updated: new Date(NOW - updatedAgoMs).toISOString(),
    expiresAt: new Date(NOW - updatedAgoMs + lifetimeMs).toISOString(),
  });

  it("the last approval is the approved session's update time, or the approval a newer session carried over", function () {
    assert.equal(lastApprovalOf(session("approved", 5 * DAY)), NOW - 5 * DAY);
    assert.equal(lastApprovalOf(undefined), undefined);
    const carried = { ...session("pending", HOUR), lastApprovedAt: new Date(NOW - 40 * DAY).toISOString() };
    assert.equal(lastApprovalOf(carried), NOW - 40 * DAY);
    for (const status of SESSION_STATUSES.filter((candidate) => candidate !== "approved")) {
      assert.equal(lastApprovalOf(session(status, DAY)), undefined, status);
    }
    assert.equal(lastApprovalOf({ status: "approved", updated: "not a time", expiresAt: "" }), undefined);
  });

  it("no session: a new inquiry", function () {
    assert.deepEqual(nextStep(undefined, NOW, 3600), { action: "create" });
  });

  it("a live session (created, pending, needs_review, within its lifetime) is reused", function () {
    for (const status of ["created", "pending", "needs_review"] as const) {
      assert.deepEqual(nextStep(session(status, HOUR), NOW, 3600), { action: "reuse" }, status);
      assert.deepEqual(nextStep(session(status, DAY + 1), NOW, 3600), { action: "create" }, `${status} past its lifetime`);
    }
  });

  for (const status of ["failed", "declined"] as const) {
    it(`a ${status} session refuses a new one for the cooldown, and not a moment longer`, function () {
      const recent = session(status, 59 * 60_000, HOUR);
      assert.deepEqual(nextStep(recent, NOW, 3600), {
        action: "cooldown",
        status,
        since: recent.updated,
        until: new Date(NOW + 60_000).toISOString(),
      });
      assert.deepEqual(nextStep(session(status, HOUR, HOUR), NOW, 3600), { action: "create" });
      assert.deepEqual(nextStep(session(status, HOUR - 1, HOUR), NOW, 3600).action, "cooldown");
      assert.deepEqual(nextStep(session(status, 0, HOUR), NOW, 0), { action: "create" }, "no cooldown configured");
    });
  }

  it("a completed session awaiting its decision is reused within its hour, so the decision is not orphaned", function () {
    assert.deepEqual(nextStep(session("completed", 30 * 60_000, HOUR), NOW, 3600), { action: "reuse" });
    assert.deepEqual(nextStep(session("completed", 61 * 60_000, HOUR), NOW, 3600), { action: "create" });
  });

  it("approved and expired sessions lead to a new inquiry", function () {
    for (const status of ["approved", "expired"] as const) {
      assert.deepEqual(nextStep(session(status, 60_000, HOUR), NOW, 3600), { action: "create" }, status);
    }
  });

  it("cooldown holds exactly while fewer than COOLDOWN_SECONDS have passed since a refusal", function () {
    fc.assert(
      fc.property(
        fc.constantFrom(...SESSION_STATUSES),
        fc.integer({ min: 0, max: 3 * DAY }),
        fc.integer({ min: 0, max: 86_400 }),
        (status, ago, cooldown) => {
          const step = nextStep(session(status, ago, 0), NOW, cooldown);
          const refused = status === "failed" || status === "declined";
          assert.equal(step.action === "cooldown", refused && ago < cooldown * 1000);
        },
      ),
    );
  });
});
