/**
 * The ARAI snapshot stored on the fan record: every field kept, the login history and linked
 * accounts cut to their limits, and the JSON always under 64 KB.
 */
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import {
  type AraiDocument,
  LINKED_ACCOUNTS_LIMIT,
  LOGIN_HISTORY_LIMIT,
  loginTime,
  SNAPSHOT_BYTE_LIMIT,
  trimArai,
} from "../workers/lookupArai/trim";
import { fixture } from "./support/fixtures";

const ARAI = fixture<AraiDocument & { loginHistory: Record<string, unknown>[] }>("arai/account-activity.json");

const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value), "utf8");

/** A login of the fixture's shape at `time`, its `device` padded to make it large. */
const login = <T>(time: T, padding = "") => ({ ...ARAI.loginHistory[0], time, device: `iPhone16,2${padding}` });

const minutesAfter = (minutes: number) => new Date(Date.UTC(2026, 10, 1) + minutes * 60_000).toISOString();

function trimmed(arai: AraiDocument) {
  const result = trimArai(arai);
  assert.ok(result.ok, result.ok ? "" : result.reason);
  return result;
}

describe("trimArai (the stored ARAI snapshot)", function () {
  it("stores a small document as it came, every field kept", function () {
    const result = trimmed(ARAI);
    assert.deepEqual(result.snapshot, ARAI);
    assert.deepEqual(result.dropped, { loginHistory: 0, linkedAccounts: 0 });
    assert.equal(result.bytes, bytesOf(ARAI));
  });

  it("stores a document without login history or linked accounts as it came", function () {
    const rest: Record<string, unknown> = { ...ARAI };
    delete rest.loginHistory;
    delete rest.linkedAccounts;
    assert.deepEqual(trimmed(rest).snapshot, rest);
  });

  it("keeps the 100 most recent logins by time, in the service's order, and the first 100 linked accounts", function () {
    // 250 logins, listed oldest-first for the first half and shuffled after; times are distinct.
    const minutes = Array.from({ length: 250 }, (_, index) => (index < 125 ? index : 125 + ((index * 37) % 125)));
    const loginHistory = minutes.map((minute) => login(minutesAfter(minute)));
    const linkedAccounts = Array.from({ length: 130 }, (_, index) => ({
      globalUserId: `gu-linked-${index}`,
      linkType: "sharedDevice",
    }));
    const result = trimmed({ ...ARAI, loginHistory, linkedAccounts, riskFlags: ["new-device"] });

    const kept = result.snapshot.loginHistory as { time: string }[];
    assert.equal(kept.length, LOGIN_HISTORY_LIMIT);
    assert.deepEqual(
      kept,
      loginHistory.filter((entry) => entry.time >= minutesAfter(150)),
      "the logins of minutes 150-249, in the order listed",
    );
    assert.deepEqual(result.snapshot.linkedAccounts, linkedAccounts.slice(0, LINKED_ACCOUNTS_LIMIT));
    assert.deepEqual(result.snapshot.riskFlags, ["new-device"]);
    assert.deepEqual(result.snapshot.identity, ARAI.identity);
    assert.deepEqual(result.dropped, { loginHistory: 150, linkedAccounts: 30 });
  });

  it("halves the login history, keeping the most recent, until the snapshot is under 64 KB", function () {
    // 100 logins of about 1.5 KB: 150 KB, then 75 KB at 50, then under 64 KB at 25.
    const loginHistory = Array.from({ length: 100 }, (_, index) => login(minutesAfter(index), "x".repeat(1400)));
    const result = trimmed({ ...ARAI, loginHistory });
    const kept = result.snapshot.loginHistory as { time: string }[];
    assert.equal(kept.length, 25);
    assert.deepEqual(
      kept.map((entry) => entry.time),
      Array.from({ length: 25 }, (_, index) => minutesAfter(75 + index)),
    );
    assert.ok(result.bytes < SNAPSHOT_BYTE_LIMIT);
    assert.equal(result.bytes, bytesOf(result.snapshot));
    assert.deepEqual(result.dropped, { loginHistory: 75, linkedAccounts: 0 });
  });

  it("counts bytes, not characters: multi-byte text halves sooner", function () {
    // 60 logins of 500 three-byte characters: 30 K characters but 90 KB.
    const loginHistory = Array.from({ length: 60 }, (_, index) => login(minutesAfter(index), "€".repeat(500)));
    const result = trimmed({ ...ARAI, loginHistory });
    assert.equal((result.snapshot.loginHistory as unknown[]).length, 30);
    assert.ok(result.bytes < SNAPSHOT_BYTE_LIMIT);
  });

  it("halves the linked accounts once the login history is gone, when they alone are too large", function () {
    const linkedAccounts = Array.from({ length: 100 }, (_, index) => ({ globalUserId: `gu-${index}`, note: "n".repeat(1000) }));
    const result = trimmed({ ...ARAI, linkedAccounts });
    assert.deepEqual(result.snapshot.loginHistory, []);
    assert.deepEqual(result.snapshot.linkedAccounts, linkedAccounts.slice(0, 50));
    assert.ok(result.bytes < SNAPSHOT_BYTE_LIMIT);
  });

  it("refuses, saying why, a document too large even without its lists", function () {
    const result = trimArai({ ...ARAI, notes: "n".repeat(SNAPSHOT_BYTE_LIMIT) });
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.reason, /without its login history and linked accounts.*under 65536/);
  });

  it("does not change the document it is given", function () {
    const loginHistory = Array.from({ length: 150 }, (_, index) => login(minutesAfter(150 - index)));
    const arai = { ...ARAI, loginHistory };
    const before = structuredClone(arai);
    trimArai(arai);
    assert.deepEqual(arai, before);
  });

  describe("loginTime", function () {
    it("reads ISO dates, epoch seconds and epoch milliseconds; anything else is the oldest", function () {
      assert.equal(loginTime({ time: "2026-11-24T18:09:14.902Z" }), Date.parse("2026-11-24T18:09:14.902Z"));
      assert.equal(loginTime({ time: "2026-11-24T19:09:14+01:00" }), Date.parse("2026-11-24T18:09:14Z"));
      assert.equal(loginTime({ time: 1_795_543_754 }), 1_795_543_754_000);
      assert.equal(loginTime({ time: 1_795_543_754_902 }), 1_795_543_754_902);
      for (const entry of [{}, { time: "yesterday" }, { time: null }, { time: Number.NaN }, null, "login", 7]) {
        assert.equal(loginTime(entry), Number.NEGATIVE_INFINITY, JSON.stringify(entry));
      }
    });
  });

  describe("for any document", function () {
    const time = fc.oneof(
      fc
        .date({ min: new Date("2020-01-01"), max: new Date("2030-01-01"), noInvalidDate: true })
        .map((date) => date.toISOString()),
      fc.integer({ min: 1_577_836_800, max: 1_893_456_000 }),
      fc.integer({ min: 1_577_836_800_000, max: 1_893_456_000_000 }),
      fc.constant(undefined),
      fc.constant("not a time"),
    );
    // Text built by repetition: large documents without generating large strings char by char.
    // Sizes are mixed so that about half the documents need trimming and a few cannot fit at all.
    const padding = (max: number) =>
      fc.tuple(fc.nat({ max }), fc.constantFrom("a", "é", "€", "😀", '"', "\\")).map(([length, unit]) => unit.repeat(length));
    const text = fc.oneof({ arbitrary: padding(40), weight: 2 }, { arbitrary: padding(2000), weight: 1 });
    const entry = fc.record({ result: fc.constantFrom("success", "failure"), time, device: text }, { requiredKeys: ["result"] });
    const document = fc.record(
      {
        globalUserId: fc.constant("gu-7f3c2a91"),
        identity: fc.constant(ARAI.identity),
        notes: fc.oneof({ arbitrary: padding(100), weight: 9 }, { arbitrary: padding(70_000), weight: 1 }),
        loginHistory: fc.array(entry, { maxLength: 180, size: "max" }),
        linkedAccounts: fc.array(fc.record({ globalUserId: fc.string({ maxLength: 12 }), note: text }), {
          maxLength: 140,
          size: "max",
        }),
      },
      { requiredKeys: ["globalUserId", "identity"] },
    );

    it("stores a snapshot under 64 KB, with every other field as given, or refuses only what cannot fit", function () {
      fc.assert(
        fc.property(document, (arai) => {
          const result = trimArai(arai);
          const { loginHistory, linkedAccounts, ...rest } = arai;
          if (!result.ok) {
            const bare = {
              ...rest,
              ...(loginHistory ? { loginHistory: [] } : {}),
              ...(linkedAccounts ? { linkedAccounts: [] } : {}),
            };
            assert.ok(bytesOf(bare) >= SNAPSHOT_BYTE_LIMIT, "refused a document that fits without its lists");
            return;
          }
          assert.ok(result.bytes < SNAPSHOT_BYTE_LIMIT, `${result.bytes} bytes`);
          assert.equal(result.bytes, bytesOf(result.snapshot));
          const { loginHistory: keptHistory, linkedAccounts: keptLinked, ...keptRest } = result.snapshot;
          assert.deepEqual(keptRest, rest);
          assert.equal(keptHistory === undefined, loginHistory === undefined);
          assert.equal(keptLinked === undefined, linkedAccounts === undefined);
          if (linkedAccounts) {
            assert.ok(keptLinked!.length <= LINKED_ACCOUNTS_LIMIT);
            assert.deepEqual(keptLinked, linkedAccounts.slice(0, keptLinked!.length));
            // Linked accounts are cut only once no login history is left.
            if (keptLinked!.length < Math.min(linkedAccounts.length, LINKED_ACCOUNTS_LIMIT))
              assert.equal(keptHistory?.length ?? 0, 0);
          }
          assert.equal(result.dropped.loginHistory, (loginHistory?.length ?? 0) - (keptHistory?.length ?? 0));
          assert.equal(result.dropped.linkedAccounts, (linkedAccounts?.length ?? 0) - (keptLinked?.length ?? 0));
        }),
        { numRuns: 150 },
      );
    });

    it("keeps the most recent logins, in the order listed, never more than 100", function () {
      fc.assert(
        fc.property(document, (arai) => {
          const result = trimArai(arai);
          if (!result.ok || !arai.loginHistory) return;
          const history = arai.loginHistory;
          const kept = result.snapshot.loginHistory!;
          assert.ok(kept.length <= LOGIN_HISTORY_LIMIT);
          // The kept entries are the listed ones, in order (a subsequence, by identity).
          let cursor = 0;
          const keptIndexes = kept.map((item) => {
            while (history[cursor] !== item) cursor += 1;
            return cursor++;
          });
          const dropped = history.filter((_, index) => !keptIndexes.includes(index));
          const oldestKept = Math.min(...kept.map(loginTime));
          for (const entry of dropped)
            assert.ok(loginTime(entry) <= oldestKept, "a dropped login is more recent than a kept one");
          // When the whole history is within the limit and fits, all of it is kept.
          const whole = {
            ...arai,
            ...(arai.linkedAccounts ? { linkedAccounts: arai.linkedAccounts.slice(0, LINKED_ACCOUNTS_LIMIT) } : {}),
          };
          if (history.length <= LOGIN_HISTORY_LIMIT && bytesOf(whole) < SNAPSHOT_BYTE_LIMIT)
            assert.equal(kept.length, history.length);
        }),
        { numRuns: 150 },
      );
    });
  });
});
