/**
 * The ARAI snapshot stored on the fan record, built from the answer's `data`: every field kept,
 * `counts` as sent, each history list cut to its most recent entries by `at`, the linked accounts
 * to the first ones, and the JSON always under 64 KB.
 */
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import type { UserAccountActivity } from "../workers/lookupArai/araiDocument";
import { entryTime, HISTORY_LIMIT, LINKED_ACCOUNTS_LIMIT, SNAPSHOT_BYTE_LIMIT, trimArai } from "../workers/lookupArai/trim";
import { recordedAraiAnswer } from "./support/arai";

const DATA = recordedAraiAnswer().data;
const [LOGIN] = DATA.history!.loginActivity! as Record<string, unknown>[];
const [FAILED_LOGIN] = DATA.history!.failedLoginActivity! as Record<string, unknown>[];

const bytesOf = (value: unknown) => Buffer.byteLength(JSON.stringify(value), "utf8");

type Entry = Record<string, unknown> & { at: string };
/** A history entry of the recorded shape at `at`, its `device` padded to make it large. */
const entry = (template: Record<string, unknown>, at: string, padding = ""): Entry => ({
  ...template,
  at,
  device: `iPhone16,2${padding}`,
});
const login = (at: string, padding = "") => entry(LOGIN!, at, padding);
const failedLogin = (at: string, padding = "") => entry(FAILED_LOGIN!, at, padding);

const minutesAfter = (minutes: number) => new Date(Date.UTC(2026, 10, 1) + minutes * 60_000).toISOString();
/** `count` distinct minutes, not in time order: index i holds minute (i · step) mod count (step prime to count). */
const shuffledMinutes = (count: number, step: number) => Array.from({ length: count }, (_, index) => (index * step) % count);

/**
 * The rule, written out here and not taken from the code: the `count` entries with the latest
 * `at`, listed in the order of `list`.
 */
function newest<T extends { at: string }>(list: readonly T[], count: number): T[] {
  const kept = new Set([...list].sort((a, b) => Date.parse(b.at) - Date.parse(a.at)).slice(0, count));
  return list.filter((item) => kept.has(item));
}

const withHistory = (history: Record<string, unknown>, fields: Record<string, unknown> = {}): UserAccountActivity => ({
  ...DATA,
  ...fields,
  history,
});

function trimmed(data: UserAccountActivity) {
  const result = trimArai(data);
  assert.ok(result.ok, result.ok ? "" : result.reason);
  return result;
}

describe("trimArai (the stored ARAI snapshot)", function () {
  it("stores small data as it came, every field kept", function () {
    const result = trimmed(DATA);
    assert.deepEqual(result.snapshot, DATA);
    assert.deepEqual(result.dropped, { loginActivity: 0, failedLoginActivity: 0, linkedAccounts: 0 });
    assert.equal(result.bytes, bytesOf(DATA));
  });

  it("stores data without history or linked accounts, or with one history list, as it came", function () {
    const { history, linkedAccounts: _linked, ...bare } = DATA;
    assert.deepEqual(trimmed(bare as UserAccountActivity).snapshot, bare);
    const loginsOnly = { ...bare, history: { loginActivity: history!.loginActivity } };
    assert.deepEqual(trimmed(loginsOnly).snapshot, loginsOnly);
    assert.deepEqual(trimmed({ ...bare, history: {} }).snapshot, { ...bare, history: {} });
  });

  it("keeps the 100 newest entries by `at` of each history list given out of time order, and the first 100 linked accounts", function () {
    // Neither list is sorted by time: each is a permutation of distinct minutes.
    const loginActivity = shuffledMinutes(250, 37).map((minute) => login(minutesAfter(minute)));
    const failedLoginActivity = shuffledMinutes(130, 51).map((minute) => failedLogin(minutesAfter(minute * 2 + 1)));
    const linkedAccounts = Array.from({ length: 130 }, (_, index) => ({
      providerId: `google-oauth2|${1000 + index}`,
      providerType: "google",
      linkedAt: minutesAfter(index),
    }));
    const counts = { loginActivity: 4210, failedLoginActivity: 377 };
    const result = trimmed(
      withHistory(
        { loginActivity, failedLoginActivity, mfaActivity: [login(minutesAfter(1))] },
        { counts, linkedAccounts, riskFlags: ["new-device"] },
      ),
    );

    const history = result.snapshot.history!;
    assert.equal(history.loginActivity!.length, HISTORY_LIMIT);
    assert.deepEqual(history.loginActivity, newest(loginActivity, 100), "logins of minutes 150-249, in the order listed");
    assert.deepEqual(
      (history.loginActivity as Entry[]).map((kept) => kept.at).sort(),
      Array.from({ length: 100 }, (_, index) => minutesAfter(150 + index)),
    );
    assert.deepEqual(history.failedLoginActivity, newest(failedLoginActivity, 100));
    assert.deepEqual(history.mfaActivity, [login(minutesAfter(1))], "a list it does not know is kept as sent");
    assert.deepEqual(result.snapshot.linkedAccounts, linkedAccounts.slice(0, LINKED_ACCOUNTS_LIMIT));
    assert.deepEqual(result.snapshot.counts, counts, "counts are the fan's totals, kept as sent");
    assert.deepEqual(result.snapshot.riskFlags, ["new-device"]);
    assert.equal(result.snapshot.emailAddress, DATA.emailAddress);
    assert.deepEqual(result.dropped, { loginActivity: 150, failedLoginActivity: 30, linkedAccounts: 30 });
  });

  it("orders by `at` given as ISO dates with offsets, epoch seconds or milliseconds", function () {
    const base = Date.UTC(2026, 10, 1);
    // 120 entries, time going backwards through the list, in three notations.
    const loginActivity = Array.from({ length: 120 }, (_, index) => {
      const ms = base - index * 60_000;
      const at = [new Date(ms).toISOString(), Math.floor(ms / 1000), ms][index % 3]!;
      return { ...LOGIN, at };
    });
    const result = trimmed(withHistory({ loginActivity }));
    assert.deepEqual(result.snapshot.history!.loginActivity, loginActivity.slice(0, 100), "the first 100 are the newest");
  });

  it("halves the bound on each history list, keeping the newest, until the snapshot is under 64 KB", function () {
    // 100 logins of about 1.5 KB (out of time order): 150 KB, then 75 KB at 50, then under 64 KB at 25.
    // The 10 small failed logins are within every bound tried, so all stay.
    const loginActivity = shuffledMinutes(100, 29).map((minute) => login(minutesAfter(minute), "x".repeat(1400)));
    const failedLoginActivity = shuffledMinutes(10, 3).map((minute) => failedLogin(minutesAfter(minute)));
    const result = trimmed(withHistory({ loginActivity, failedLoginActivity }));
    assert.deepEqual(result.snapshot.history!.loginActivity, newest(loginActivity, 25));
    assert.deepEqual(result.snapshot.history!.failedLoginActivity, failedLoginActivity);
    assert.ok(result.bytes < SNAPSHOT_BYTE_LIMIT);
    assert.equal(result.bytes, bytesOf(result.snapshot));
    assert.deepEqual(result.dropped, { loginActivity: 75, failedLoginActivity: 0, linkedAccounts: 0 });
  });

  it("cuts both history lists once the bound falls below the shorter", function () {
    // 60 large logins and 60 large failed logins: 180 KB, 90 KB at 30 each, 45 KB at 15 each.
    const loginActivity = shuffledMinutes(60, 7).map((minute) => login(minutesAfter(minute), "x".repeat(1400)));
    const failedLoginActivity = shuffledMinutes(60, 11).map((minute) => failedLogin(minutesAfter(minute), "y".repeat(1400)));
    const result = trimmed(withHistory({ loginActivity, failedLoginActivity }));
    assert.deepEqual(result.snapshot.history!.loginActivity, newest(loginActivity, 15));
    assert.deepEqual(result.snapshot.history!.failedLoginActivity, newest(failedLoginActivity, 15));
    assert.deepEqual(result.dropped, { loginActivity: 45, failedLoginActivity: 45, linkedAccounts: 0 });
  });

  it("counts bytes, not characters: multi-byte text halves sooner", function () {
    // 60 logins of 500 three-byte characters: 30 K characters but 90 KB.
    const loginActivity = Array.from({ length: 60 }, (_, index) => login(minutesAfter(index), "€".repeat(500)));
    const result = trimmed(withHistory({ loginActivity }));
    assert.equal(result.snapshot.history!.loginActivity!.length, 30);
    assert.ok(result.bytes < SNAPSHOT_BYTE_LIMIT);
  });

  it("halves the linked accounts once the history is gone, when they alone are too large", function () {
    const linkedAccounts = Array.from({ length: 100 }, (_, index) => ({ providerId: `p-${index}`, note: "n".repeat(1000) }));
    const result = trimmed({ ...DATA, linkedAccounts });
    assert.deepEqual(result.snapshot.history, { loginActivity: [], failedLoginActivity: [] });
    assert.deepEqual(result.snapshot.linkedAccounts, linkedAccounts.slice(0, 50));
    assert.ok(result.bytes < SNAPSHOT_BYTE_LIMIT);
  });

  it("refuses, saying why, data too large even without its lists", function () {
    const result = trimArai({ ...DATA, notes: "n".repeat(SNAPSHOT_BYTE_LIMIT) });
    assert.equal(result.ok, false);
    assert.match(result.ok ? "" : result.reason, /without its history and linked accounts.*under 65536/);
  });

  it("does not change the data it is given", function () {
    const loginActivity = shuffledMinutes(150, 7).map((minute) => login(minutesAfter(minute)));
    const data = withHistory({ loginActivity, failedLoginActivity: [failedLogin(minutesAfter(3))] });
    const before = structuredClone(data);
    trimArai(data);
    assert.deepEqual(data, before);
  });

  describe("entryTime", function () {
    it("reads `at` as an ISO date, epoch seconds or epoch milliseconds; anything else is the oldest", function () {
      assert.equal(entryTime({ at: "2026-11-24T18:09:14.902Z" }), Date.parse("2026-11-24T18:09:14.902Z"));
      assert.equal(entryTime({ at: "2026-11-24T19:09:14+01:00" }), Date.parse("2026-11-24T18:09:14Z"));
      assert.equal(entryTime({ at: 1_795_543_754 }), 1_795_543_754_000);
      assert.equal(entryTime({ at: 1_795_543_754_902 }), 1_795_543_754_902);
      const unreadable = [
        {},
        { at: "yesterday" },
        { at: null },
        { at: Number.NaN },
        { time: "2026-11-24T18:09:14Z" },
        null,
        "login",
        7,
      ];
      for (const value of unreadable) assert.equal(entryTime(value), Number.NEGATIVE_INFINITY, JSON.stringify(value));
    });
  });

  describe("for any data", function () {
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
    const historyEntry = fc.record(
      { result: fc.constantFrom("success", "failure"), at: time, device: text },
      { requiredKeys: ["result"] },
    );
    const list = fc.array(historyEntry, { maxLength: 180, size: "max" });
    const document = fc.record(
      {
        globalUserId: fc.constant("gu-7f3c2a91"),
        emailAddress: fc.constant(DATA.emailAddress),
        counts: fc.constant(DATA.counts),
        notes: fc.oneof({ arbitrary: padding(100), weight: 9 }, { arbitrary: padding(70_000), weight: 1 }),
        history: fc.record({ loginActivity: list, failedLoginActivity: list }, { requiredKeys: [] }),
        linkedAccounts: fc.array(fc.record({ providerId: fc.string({ maxLength: 12 }), note: text }), {
          maxLength: 140,
          size: "max",
        }),
      },
      { requiredKeys: ["globalUserId", "emailAddress"] },
    ) as fc.Arbitrary<UserAccountActivity>;
    const LISTS = ["loginActivity", "failedLoginActivity"] as const;

    it("stores a snapshot under 64 KB, with every other field as given, or refuses only what cannot fit", function () {
      fc.assert(
        fc.property(document, (data) => {
          const result = trimArai(data);
          const { history, linkedAccounts, ...rest } = data;
          if (!result.ok) {
            const emptied = history && Object.fromEntries(Object.keys(history).map((name) => [name, []]));
            const bare = { ...rest, ...(history ? { history: emptied } : {}), ...(linkedAccounts ? { linkedAccounts: [] } : {}) };
            assert.ok(bytesOf(bare) >= SNAPSHOT_BYTE_LIMIT, "refused data that fits without its lists");
            return;
          }
          assert.ok(result.bytes < SNAPSHOT_BYTE_LIMIT, `${result.bytes} bytes`);
          assert.equal(result.bytes, bytesOf(result.snapshot));
          const { history: keptHistory, linkedAccounts: keptLinked, ...keptRest } = result.snapshot;
          assert.deepEqual(keptRest, rest);
          assert.equal(keptHistory === undefined, history === undefined);
          assert.deepEqual(Object.keys(keptHistory ?? {}), Object.keys(history ?? {}));
          assert.equal(keptLinked === undefined, linkedAccounts === undefined);
          const historyLeft = LISTS.some((name) => (keptHistory?.[name]?.length ?? 0) > 0);
          if (linkedAccounts) {
            assert.ok(keptLinked!.length <= LINKED_ACCOUNTS_LIMIT);
            assert.deepEqual(keptLinked, linkedAccounts.slice(0, keptLinked!.length));
            // Linked accounts are cut only once no history is left.
            if (keptLinked!.length < Math.min(linkedAccounts.length, LINKED_ACCOUNTS_LIMIT)) assert.ok(!historyLeft);
          }
          for (const name of LISTS) {
            assert.equal(result.dropped[name], (history?.[name]?.length ?? 0) - (keptHistory?.[name]?.length ?? 0), name);
          }
          assert.equal(result.dropped.linkedAccounts, (linkedAccounts?.length ?? 0) - (keptLinked?.length ?? 0));
        }),
        { numRuns: 150 },
      );
    });

    it("keeps the newest entries of each history list, in the order listed, never more than 100", function () {
      fc.assert(
        fc.property(document, (data) => {
          const result = trimArai(data);
          const history = data.history;
          if (!result.ok || !history) return;
          for (const name of LISTS) {
            const listed: readonly unknown[] | undefined = history[name];
            if (!listed) continue;
            const kept: readonly unknown[] = result.snapshot.history![name]!;
            assert.ok(kept.length <= HISTORY_LIMIT);
            // The kept entries are the listed ones, in order (a subsequence, by identity).
            let cursor = 0;
            const keptIndexes = kept.map((item) => {
              while (listed[cursor] !== item) cursor += 1;
              return cursor++;
            });
            const dropped = listed.filter((_, index) => !keptIndexes.includes(index));
            const oldestKept = Math.min(...kept.map(entryTime));
            for (const item of dropped)
              assert.ok(entryTime(item) <= oldestKept, `${name}: a dropped entry is newer than a kept one`);
            // When every list is within the limit and the whole fits, all of it is kept.
            const whole = {
              ...data,
              ...(data.linkedAccounts ? { linkedAccounts: data.linkedAccounts.slice(0, LINKED_ACCOUNTS_LIMIT) } : {}),
            };
            const withinLimit = LISTS.every((other) => (history[other]?.length ?? 0) <= HISTORY_LIMIT);
            if (withinLimit && bytesOf(whole) < SNAPSHOT_BYTE_LIMIT) assert.equal(kept.length, listed.length);
          }
        }),
        { numRuns: 150 },
      );
    });
  });
});
