/**
 * Object keys of Data Science exports: where the export date is found, and how keys that arrive
 * form-encoded in S3 notifications are decoded.
 */
import * as assert from "node:assert/strict";
import fc from "fast-check";
import { decodeS3Key, exportDate } from "../workers/shared/glueImport/exportKey";

/** How S3 writes a key into an event notification: form encoding, spaces as '+'. */
const formEncode = (key: string) => encodeURIComponent(key).replace(/%20/g, "+");
/** The same, leaving '/' as it is (S3 sends keys both ways depending on the notification path). */
const formEncodeKeepingSlashes = (key: string) => formEncode(key).replace(/%2F/g, "/");

/** Leap years of the proleptic Gregorian calendar, as the oracle for which days are real. */
const isLeap = (year: number) => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
const daysIn = (year: number, month: number) => [31, isLeap(year) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
const pad = (value: number, width: number) => String(value).padStart(width, "0");
const isoDay = (year: number, month: number, day: number) => `${pad(year, 4)}-${pad(month, 2)}-${pad(day, 2)}`;

/** Any real day with a four-digit year, as YYYY-MM-DD. */
const realDay = fc
  .record({
    year: fc.integer({ min: 0, max: 9999 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 31 }),
  })
  .map(({ year, month, day }) => isoDay(year, month, Math.min(day, daysIn(year, month))));

/** A path segment that is not itself a `date=` segment (any text without '/'). */
const otherSegment = fc
  .string({ unit: "binary", maxLength: 12 })
  .filter((text) => !text.includes("/") && !text.startsWith("date="));
const segments = fc.array(otherSegment, { maxLength: 4 });

describe("exportDate", () => {
  it("finds the date in whichever path segment names it", () => {
    assert.equal(exportDate("date=2026-11-24/_SUCCESS"), "2026-11-24");
    assert.equal(exportDate("bot-or-not/date=2026-11-24/_SUCCESS"), "2026-11-24");
    assert.equal(exportDate("clustering/v2/date=2026-11-24/part=3/_SUCCESS"), "2026-11-24");
    assert.equal(exportDate("bot-or-not/date=2026-11-24"), "2026-11-24");
  });

  it("does not take a date from inside another segment", () => {
    for (const key of [
      "bot-or-not/mydate=2026-01-01/_SUCCESS",
      "bot-or-not/xdate=2026-01-01/_SUCCESS",
      "bot-or-not/date=2026-01-01x/_SUCCESS",
      "bot-or-not/date=2026-01-01.csv",
      "bot-or-not/date=2026-01-01T00:00/_SUCCESS",
      "bot-or-not/run-date=2026-01-01",
    ]) {
      assert.equal(exportDate(key), undefined, key);
    }
  });

  it("finds a date segment that follows a look-alike one", () => {
    assert.equal(exportDate("bot-or-not/mydate=2026-01-01/date=2026-02-02/_SUCCESS"), "2026-02-02");
  });

  it("skips keys with no date, or a date not written YYYY-MM-DD", () => {
    for (const key of [
      "bot-or-not/_SUCCESS",
      "bot-or-not/latest/_SUCCESS",
      "",
      "bot-or-not/date=/_SUCCESS",
      "bot-or-not/date=2026-1-01/_SUCCESS",
      "bot-or-not/date=26-01-01/_SUCCESS",
      "bot-or-not/date=20260101/_SUCCESS",
      "bot-or-not/Date=2026-01-01/_SUCCESS",
      "bot-or-not/date = 2026-01-01/_SUCCESS",
      // Still encoded: decoding is the caller's job (decodeS3Key).
      "bot-or-not/date%3D2026-01-01/_SUCCESS",
    ]) {
      assert.equal(exportDate(key), undefined, JSON.stringify(key));
    }
  });

  it("rejects days that are not on the calendar", () => {
    for (const date of [
      "2026-02-30",
      "2026-13-01",
      "2026-00-10",
      "2026-01-00",
      "2026-01-32",
      "2026-04-31",
      "2027-02-29",
      "2100-02-29",
      "1900-02-29",
    ]) {
      assert.equal(exportDate(`bot-or-not/date=${date}/_SUCCESS`), undefined, date);
    }
  });

  it("accepts leap days of leap years", () => {
    for (const date of ["2028-02-29", "2024-02-29", "2000-02-29", "2400-02-29"]) {
      assert.equal(exportDate(`bot-or-not/date=${date}/_SUCCESS`), date);
    }
  });

  it("takes years 0000-0099 as written, not as 19xx", () => {
    assert.equal(exportDate("bot-or-not/date=0099-12-31/_SUCCESS"), "0099-12-31");
    assert.equal(exportDate("bot-or-not/date=0004-02-29/_SUCCESS"), "0004-02-29");
    assert.equal(exportDate("bot-or-not/date=0001-02-29/_SUCCESS"), undefined);
  });

  it("property: finds any real day in a date= segment, whatever the segments around it", () => {
    fc.assert(
      fc.property(segments, realDay, segments, (before, date, after) => {
        assert.equal(exportDate([...before, `date=${date}`, ...after].join("/")), date);
      }),
    );
  });

  it("property: matches the written form 'prefix/date=d/suffix'", () => {
    fc.assert(
      fc.property(otherSegment, realDay, otherSegment, (prefix, date, suffix) => {
        assert.equal(exportDate(prefix + "/date=" + date + "/" + suffix), date);
      }),
    );
  });

  it("property: accepts exactly the days of the Gregorian calendar", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 9999 }),
        fc.integer({ min: 0, max: 99 }),
        fc.integer({ min: 0, max: 99 }),
        (year, month, day) => {
          const date = isoDay(year, month, day);
          const real = month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month);
          assert.equal(exportDate(`bot-or-not/date=${date}/_SUCCESS`), real ? date : undefined);
        },
      ),
    );
  });

  it("property: a date= that is only part of a segment is never taken", () => {
    const noSlash = fc.string({ unit: "binary", maxLength: 6 }).filter((text) => !text.includes("/"));
    fc.assert(
      fc.property(segments, noSlash, realDay, noSlash, segments, (before, lead, date, tail, after) => {
        fc.pre(lead.length + tail.length > 0);
        const key = [...before, `${lead}date=${date}${tail}`, ...after].join("/");
        assert.equal(exportDate(key), undefined, JSON.stringify(key));
      }),
    );
  });
});

describe("decodeS3Key", () => {
  it("decodes the form encoding of S3 notifications", () => {
    assert.equal(decodeS3Key("Happy+Face.jpg"), "Happy Face.jpg");
    assert.equal(decodeS3Key("Happy%20Face.jpg"), "Happy Face.jpg");
    assert.equal(decodeS3Key("bot-or-not/date%3D2026-11-24/_SUCCESS"), "bot-or-not/date=2026-11-24/_SUCCESS");
    assert.equal(decodeS3Key("bot-or-not%2Fdate%3D2026-11-24%2F_SUCCESS"), "bot-or-not/date=2026-11-24/_SUCCESS");
    assert.equal(decodeS3Key("a%2Bb"), "a+b", "an encoded '+' is a plus sign, not a space");
    assert.equal(decodeS3Key("caf%C3%A9"), "café");
    assert.equal(decodeS3Key("bot-or-not/date=2026-11-24/_SUCCESS"), "bot-or-not/date=2026-11-24/_SUCCESS");
  });

  it("rejects a key S3 could not have sent with an error quoting it", () => {
    for (const key of ["bot-or-not/date=2026-11-24/100%/_SUCCESS", "bot-or-not/%E0%A4%A/_SUCCESS", "bot-or-not/%ED%A0%80"]) {
      assert.throws(
        () => decodeS3Key(key),
        (error: Error) => error.message.includes(`"${key}"`) && /malformed % escape/.test(error.message),
        key,
      );
    }
  });

  it("property: inverts the form encoding S3 applies", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (key) => {
        assert.equal(decodeS3Key(formEncode(key)), key);
        assert.equal(decodeS3Key(formEncodeKeepingSlashes(key)), key);
      }),
    );
  });

  it("property: the date of an encoded export key survives decoding", () => {
    fc.assert(
      fc.property(segments, realDay, segments, (before, date, after) => {
        const key = [...before, `date=${date}`, ...after].join("/");
        assert.equal(exportDate(decodeS3Key(formEncodeKeepingSlashes(key))), date);
      }),
    );
  });
});
