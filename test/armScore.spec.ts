/**
 * The rules of getArmScore (workers/shared/scoring/armScore.ts): which fan an event asks for, and
 * what a value stored in Redis answers.
 */
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import { armKey, readArmScore, requestedFan } from "../workers/shared/scoring/armScore";
import { fixture } from "./support/fixtures";

const FAN = "gu-7f3c2a91";
const record = (fields: Record<string, unknown>) =>
  JSON.stringify({ global_user_id: FAN, timestamp: "2026-11-24T06:00:00.000Z", score_date: "2026-11-24", ...fields });

/** A globalUserId as the platform issues them. */
const globalUserId = fc.stringMatching(/^[^\s]{1,128}$/);

describe("getArmScore rules", function () {
  describe("armKey", function () {
    it("is user:<globalUserId>", function () {
      assert.equal(armKey(FAN), "user:gu-7f3c2a91");
    });
  });

  describe("requestedFan", function () {
    it("takes globalUserId from a direct invoke payload", function () {
      assert.deepEqual(requestedFan({ globalUserId: FAN }), { ok: true, globalUserId: FAN, via: "invoke" });
    });

    it("takes arguments.globalUserId from an AppSync direct resolver event", function () {
      assert.deepEqual(requestedFan(fixture("appsync-resolver-get-arm-score.json")), {
        ok: true,
        globalUserId: FAN,
        via: "appsync",
      });
    });

    it("names the missing field: globalUserId for a payload, arguments.globalUserId for an AppSync event", function () {
      for (const [event, field] of [
        [{}, "globalUserId"],
        [{ userId: FAN }, "globalUserId"],
        [{ arguments: {} }, "arguments.globalUserId"],
        [{ arguments: null }, "arguments.globalUserId"],
        [{ ...fixture("appsync-resolver-get-arm-score.json"), arguments: { userId: FAN } }, "arguments.globalUserId"],
        // An AppSync event is read by its arguments, never by a top-level field.
        [{ arguments: {}, globalUserId: FAN }, "arguments.globalUserId"],
      ] as const) {
        const requested = requestedFan(event);
        assert.equal(requested.ok, false, JSON.stringify(event));
        assert.ok(!requested.ok && requested.reason.startsWith(`${field} is missing`), JSON.stringify(requested));
      }
    });

    it("refuses a globalUserId that is not a string, or not one the platform issues", function () {
      for (const [event, expected] of [
        [{ globalUserId: 42 }, /^globalUserId is number, not a string$/],
        [{ globalUserId: null }, /^globalUserId is null, not a string$/],
        [{ arguments: { globalUserId: ["gu-1"] } }, /^arguments\.globalUserId is array, not a string$/],
        [{ globalUserId: "" }, /^globalUserId "" is not a globalUserId/],
        [{ globalUserId: "gu 1" }, /^globalUserId "gu 1" is not a globalUserId/],
        [{ globalUserId: "x".repeat(129) }, /is not a globalUserId \(1 to 128 characters/],
      ] as const) {
        const requested = requestedFan(event);
        assert.ok(!requested.ok, JSON.stringify(event));
        assert.match(requested.reason, expected);
      }
    });

    it("refuses an event that is not an object", function () {
      for (const [event, kind] of [
        [null, "null"],
        [undefined, "undefined"],
        ["gu-1", "string"],
        [[{ globalUserId: FAN }], "array"],
      ] as const) {
        const requested = requestedFan(event);
        assert.ok(!requested.ok);
        assert.equal(requested.reason, `event is ${kind}, not an object carrying globalUserId`);
      }
    });

    it("for any globalUserId, reads it the same from both shapes", function () {
      fc.assert(
        fc.property(globalUserId, (id) => {
          assert.deepEqual(requestedFan({ globalUserId: id }), { ok: true, globalUserId: id, via: "invoke" });
          assert.deepEqual(requestedFan({ arguments: { globalUserId: id }, source: null, stash: {} }), {
            ok: true,
            globalUserId: id,
            via: "appsync",
          });
        }),
      );
    });
  });

  describe("readArmScore", function () {
    it("answers null, with nothing wrong, when the key is absent", function () {
      assert.deepEqual(readArmScore(FAN, null), { armScore: null });
    });

    it("answers arm_risk when it is an integer 1 to 5", function () {
      for (const grade of [1, 2, 3, 4, 5]) assert.deepEqual(readArmScore(FAN, record({ arm_risk: grade })), { armScore: grade });
      // 3.0 is the integer 3 in JSON.
      assert.deepEqual(readArmScore(FAN, '{"arm_risk":3.0}'), { armScore: 3 });
    });

    it("takes a record without global_user_id on its key", function () {
      assert.deepEqual(readArmScore(FAN, JSON.stringify({ arm_risk: 2 })), { armScore: 2 });
    });

    it("answers null for an arm_risk out of range or not an integer, naming the value", function () {
      for (const risk of [0, 6, -1, 10, 2.5, 4.999, "3", null, true, [3], { grade: 3 }]) {
        const reading = readArmScore(FAN, record({ arm_risk: risk }));
        assert.equal(reading.armScore, null, JSON.stringify(risk));
        assert.equal(reading.invalid?.reason, "arm_risk is not an integer 1 to 5");
        // As it reads in the record: the string "3" apart from the number 3.
        assert.equal(reading.invalid?.value, JSON.stringify(risk));
      }
    });

    it("answers null for a record without arm_risk, quoting the record", function () {
      const stored = record({ risk: 3 });
      assert.deepEqual(readArmScore(FAN, stored), { armScore: null, invalid: { reason: "arm_risk is missing", value: stored } });
    });

    it("answers null for a value that is not JSON, or not a JSON object, quoting it", function () {
      for (const [stored, reason] of [
        ["3", "value is JSON number, not an object"],
        ['"{\\"arm_risk\\":3}"', "value is JSON string, not an object"],
        ["[3]", "value is JSON array, not an object"],
        ["null", "value is JSON null, not an object"],
        ["{arm_risk: 3}", "value is not JSON"],
        ['{"arm_risk":3', "value is not JSON"],
        ["", "value is not JSON"],
        ["arm_risk=3", "value is not JSON"],
      ] as const) {
        assert.deepEqual(readArmScore(FAN, stored), { armScore: null, invalid: { reason, value: stored } });
      }
    });

    it("answers null for a record naming another fan, naming that fan", function () {
      assert.deepEqual(readArmScore(FAN, record({ arm_risk: 2, global_user_id: "gu-00000001" })), {
        armScore: null,
        invalid: { reason: "global_user_id names another fan than the key", value: '"gu-00000001"' },
      });
      assert.equal(readArmScore(FAN, record({ arm_risk: 2, global_user_id: null })).armScore, null);
      assert.equal(readArmScore(FAN, record({ arm_risk: 2, global_user_id: FAN.toUpperCase() })).armScore, null);
    });

    it("quotes at most 256 characters of a value in its reason", function () {
      const stored = `not json ${"x".repeat(10_000)}`;
      const reading = readArmScore(FAN, stored);
      assert.equal(reading.invalid?.value, `${stored.slice(0, 256)}…`);
    });

    it("for any stored text: null or an integer 1 to 5, and null exactly when something is wrong", function () {
      const storedText = fc.oneof(
        fc.string(),
        fc.json(),
        fc
          .record(
            {
              global_user_id: fc.oneof(fc.constant(FAN), fc.string()),
              arm_risk: fc.oneof(fc.integer({ min: -3, max: 8 }), fc.double(), fc.string(), fc.constant(null)),
              timestamp: fc.string(),
            },
            { requiredKeys: [] },
          )
          .map((fields) => JSON.stringify(fields)),
      );
      fc.assert(
        fc.property(storedText, (stored) => {
          const reading = readArmScore(FAN, stored);
          if (reading.armScore === null) {
            assert.ok(reading.invalid, `null without a reason for ${stored}`);
            assert.ok(reading.invalid.reason.length > 0);
          } else {
            assert.ok(Number.isInteger(reading.armScore) && reading.armScore >= 1 && reading.armScore <= 5);
            assert.equal(reading.invalid, undefined);
            const document = JSON.parse(stored) as { arm_risk: unknown; global_user_id?: unknown };
            assert.equal(document.arm_risk, reading.armScore);
            assert.ok(!("global_user_id" in document) || document.global_user_id === FAN);
          }
        }),
      );
    });

    it("for any grade and any other fields of the record, answers the grade", function () {
      fc.assert(
        fc.property(
          fc.integer({ min: 1, max: 5 }),
          fc.dictionary(
            fc.string().filter((key) => key !== "arm_risk" && key !== "global_user_id" && key !== "__proto__"),
            fc.jsonValue(),
          ),
          (grade, others) => {
            assert.deepEqual(readArmScore(FAN, JSON.stringify({ ...others, global_user_id: FAN, arm_risk: grade })), {
              armScore: grade,
            });
          },
        ),
      );
    });
  });
});
