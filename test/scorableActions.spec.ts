/**
 * The scorable activities, checked against the product's list held here literally (not read
 * from the code under test): the actions enqueueFromActivityStream keeps (`SCORABLE_ACTIONS`,
 * `isScorable`) and the traffic generator's own list must both be exactly these, so renaming,
 * adding or dropping one fails here.
 */
import * as assert from "node:assert/strict";
import { NOT_SCORABLE_ACTIONS, SCORABLE_ACTIONS as TRAFFIC_SCORABLE_ACTIONS } from "../tools/local/traffic/payloads";
import { isScorable, SCORABLE_ACTIONS } from "../workers/shared/scoring/activity";

/** A scorable activity: `result == "success"` and `action` one of these (the product's vocabulary). */
const SPECIFIED = [
  "add_phone",
  "create_account",
  "login",
  "reset_password",
  "update_account",
  "update_email",
  "update_phone",
  "verify_otp",
  "verify_otp_mfa",
] as const;

describe("scorable activities, against the specified list", function () {
  it("SCORABLE_ACTIONS is exactly the specified list", function () {
    assert.deepEqual([...SCORABLE_ACTIONS].sort(), [...SPECIFIED]);
    assert.equal(new Set(SCORABLE_ACTIONS).size, SCORABLE_ACTIONS.length, "no action listed twice");
  });

  it("every specified action with result success is scorable", function () {
    for (const action of SPECIFIED) assert.equal(isScorable({ action, result: "success" }), true, action);
  });

  it("a specified action whose result is not success is not scorable", function () {
    for (const action of SPECIFIED) {
      for (const result of ["failure", "error", "blocked", "Success", "success ", "", undefined, true]) {
        assert.equal(isScorable({ action, result }), false, `${action} / ${JSON.stringify(result)}`);
      }
      assert.equal(isScorable({ action }), false, `${action} without a result`);
    }
  });

  it("a near-miss or unlisted action is not scorable, even with result success", function () {
    const nearMisses = [
      "Login",
      "LOGIN",
      "login ",
      " login",
      "log_in",
      "logins",
      "verify-otp",
      "verify_otp_mfa ",
      "verifyOtp",
      "update-email",
      "add_phone\n",
      "",
    ];
    const unlisted = ["logout", "refresh_token", "view_account", "purchase", "rescore", "vfLogin", "delete_account"];
    for (const action of [...nearMisses, ...unlisted]) {
      assert.equal(isScorable({ action, result: "success" }), false, JSON.stringify(action));
    }
    for (const action of [undefined, null, 7, ["login"], { toString: () => "login" }]) {
      assert.equal(isScorable({ action, result: "success" }), false, String(action));
    }
  });

  it("the traffic generator's scorable actions are the specified list, and its other actions none of it", function () {
    assert.deepEqual([...TRAFFIC_SCORABLE_ACTIONS].sort(), [...SPECIFIED]);
    assert.ok(NOT_SCORABLE_ACTIONS.length > 0);
    for (const action of NOT_SCORABLE_ACTIONS) {
      assert.ok(!(SPECIFIED as readonly string[]).includes(action), `${action} is specified as scorable`);
      assert.equal(isScorable({ action, result: "success" }), false, action);
    }
  });
});
