/**
 * The stream enqueue workers' readers, without I/O: what each stream's record means for scoring
 * (an activity, nothing, or a failure saying what was wrong), and the event's own time as they
 * read it. The batch loop and the queues are tested at the service (enqueue.spec.ts).
 */
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import { createDemandChangeReader } from "../workers/enqueueFromDemandStream";
import { createPurchaseReader } from "../workers/enqueueFromPurchaseStream";
import { createSQJourneyReader } from "../workers/enqueueFromSQJourneyStream";
import { createVfLoginReader } from "../workers/enqueueFromVfStream";
import type { KinesisRecord } from "../workers/shared/runtime/records";
import { activityTime } from "../workers/shared/scoring/enqueuePlan";
import { parseIsoDateTime, type StreamReader } from "../workers/shared/scoring/streamReading";
import { payloads, templates } from "./support/streamFixtures";
import { type KinesisFixtureRecord, payloadOf, recordLike } from "./support/streams";

/** The clock of the activity-time checks: a day after the fixtures' activity. */
const NOW = new Date("2026-11-25T12:00:00.000Z");

const { vf, demand, purchase, sqJourney } = templates;

const read = (reader: StreamReader, template: KinesisFixtureRecord, payload: unknown, rawData?: string) =>
  reader(recordLike(template, 1, payload, { rawData }) as unknown as KinesisRecord);

describe("the stream enqueue workers' readers", function () {
  describe("an event's own time", function () {
    it("takes an ISO 8601 date-time with a zone as the instant it names, whatever the instant", function () {
      // Years that stay four digits in any zone.
      const instant = fc.date({
        min: new Date("0001-01-02T00:00:00Z"),
        max: new Date("9999-12-30T23:59:59Z"),
        noInvalidDate: true,
      });
      fc.assert(
        fc.property(instant, fc.integer({ min: -14 * 60, max: 14 * 60 }), (date, offsetMinutes) => {
          assert.equal(parseIsoDateTime(date.toISOString())?.getTime(), date.getTime());
          // The same instant written in another zone.
          const local = new Date(date.getTime() + offsetMinutes * 60_000).toISOString().slice(0, 23);
          const sign = offsetMinutes < 0 ? "-" : "+";
          const zone = `${sign}${String(Math.floor(Math.abs(offsetMinutes) / 60)).padStart(2, "0")}:${String(Math.abs(offsetMinutes) % 60).padStart(2, "0")}`;
          assert.equal(parseIsoDateTime(`${local}${zone}`)?.getTime(), date.getTime());
        }),
      );
    });

    it("does not take a date-time without a zone, one that names no real day or time, or anything not a string", function () {
      for (const value of [
        "2026-11-24T09:15:02",
        "2026-11-24",
        "2026-02-30T00:00:00Z",
        "2025-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-11-24T24:00:00Z",
        "2026-11-24T09:60:00Z",
        "2026-11-24T09:15:02+25:00",
        "24/11/2026 09:15",
        "",
        1795511702417,
        null,
        undefined,
        { iso: "2026-11-24T09:15:02Z" },
      ]) {
        assert.equal(parseIsoDateTime(value), undefined, String(value));
      }
      assert.equal(parseIsoDateTime("2024-02-29T23:59:59.999999+00:00")?.toISOString(), "2024-02-29T23:59:59.999Z");
    });

    it("agrees with Date.parse on every date-time it takes, and takes exactly those naming a real day and time", function () {
      const two = (value: number) => String(value).padStart(2, "0");
      const parts = fc.record({
        year: fc.integer({ min: 1, max: 9998 }),
        month: fc.integer({ min: 0, max: 13 }),
        day: fc.integer({ min: 0, max: 32 }),
        hour: fc.integer({ min: 0, max: 24 }),
        minute: fc.integer({ min: 0, max: 60 }),
        second: fc.integer({ min: 0, max: 60 }),
        ms: fc.integer({ min: 0, max: 999 }),
        zone: fc.constantFrom("Z", "z", "+00:00", "+05:30", "-08:00", "+14:00", "-12:45"),
      });
      fc.assert(
        fc.property(parts, ({ year, month, day, hour, minute, second, ms, zone }) => {
          const text = `${String(year).padStart(4, "0")}-${two(month)}-${two(day)}T${two(hour)}:${two(minute)}:${two(second)}.${String(ms).padStart(3, "0")}${zone}`;
          const daysInMonth = month >= 1 && month <= 12 ? new Date(Date.UTC(2001, month, 0)).getUTCDate() : 0;
          const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
          const realDay = day >= 1 && (day <= daysInMonth || (month === 2 && day === 29 && leap));
          const valid = realDay && hour <= 23 && minute <= 59 && second <= 59;
          const parsed = parseIsoDateTime(text);
          assert.equal(parsed !== undefined, valid, text);
          if (parsed) assert.equal(parsed.getTime(), Date.parse(text.toUpperCase()), text);
        }),
        { numRuns: 2000 },
      );
      assert.equal(parseIsoDateTime("2026-11-24t09:15:02z")?.toISOString(), "2026-11-24T09:15:02.000Z");
      assert.equal(parseIsoDateTime("2026-11-24T09:15+01:00")?.toISOString(), "2026-11-24T08:15:00.000Z");
      assert.equal(parseIsoDateTime("0000-01-01T00:30:00+01:00"), undefined, "an instant before year 0");
    });
  });

  describe("each stream's events", function () {
    it("reads each stream's events as activity, skips what is not activity, and fails what is malformed, saying what was wrong", function () {
      const vfReader = createVfLoginReader();
      const purchaseReader = createPurchaseReader();
      const sqReader = createSQJourneyReader();
      const demandReader = createDemandChangeReader();
      const cases: [StreamReader, KinesisFixtureRecord, unknown, string | undefined, string, RegExp | string][] = [
        [vfReader, vf, payloadOf(vf), undefined, "activity", "gu-7f3c2a91"],
        [vfReader, vf, { ...(payloadOf(vf) as object), type: "vfLogout" }, undefined, "skip", /vfLogout is not vfLogin/],
        [vfReader, vf, { type: "vfLogin", timestamp: "2026-11-24T09:15:02.417Z" }, undefined, "fail", /globalUserId/],
        [vfReader, vf, { type: "vfLogin", globalUserId: 42 }, undefined, "fail", /globalUserId: .*string/],
        [vfReader, vf, { type: "vfLogin", globalUserId: "gu with space" }, undefined, "fail", /globalUserId/],
        [vfReader, vf, { globalUserId: "gu-1" }, undefined, "fail", /type/],
        [vfReader, vf, ["vfLogin"], undefined, "fail", /VF login event is not as expected/],
        [vfReader, vf, undefined, "not base64!", "fail", "data is not base64"],
        [vfReader, vf, undefined, Buffer.from("{not json").toString("base64"), "fail", /data is not JSON/],
        [purchaseReader, purchase, payloadOf(purchase), undefined, "activity", "gu-a04c77e2"],
        [purchaseReader, purchase, { ...(payloadOf(purchase) as object), status: "FAILED" }, undefined, "skip", /FAILED/],
        [purchaseReader, purchase, { ...(payloadOf(purchase) as object), customer: undefined }, undefined, "fail", /customer/],
        [
          purchaseReader,
          purchase,
          { ...(payloadOf(purchase) as object), customer: {} },
          undefined,
          "fail",
          /customer\.globalUserId/,
        ],
        [purchaseReader, purchase, { ...(payloadOf(purchase) as object), status: 1 }, undefined, "fail", /status/],
        [sqReader, sqJourney, payloadOf(sqJourney), undefined, "activity", "gu-5d13f0b8"],
        [sqReader, sqJourney, { journeyStep: "queue_joined" }, undefined, "fail", /globalUserId/],
        [sqReader, sqJourney, "gu-5d13f0b8", undefined, "fail", /queue-journey event is not as expected/],
        [demandReader, demand, payloadOf(demand), undefined, "activity", "gu-2b91d0e4"],
        [demandReader, demand, payloads.demand("gu-1", "MODIFY"), undefined, "activity", "gu-1"],
        [demandReader, demand, payloads.demand("gu-1", "REMOVE"), undefined, "skip", /removed/],
        [demandReader, demand, { ...(payloadOf(demand) as object), eventName: "UPDATE" }, undefined, "fail", /eventName/],
        [demandReader, demand, { ...(payloadOf(demand) as object), dynamodb: { Keys: {} } }, undefined, "fail", /no new image/],
        [
          demandReader,
          demand,
          { ...(payloadOf(demand) as object), dynamodb: { Keys: {}, NewImage: { globalUserId: { N: "12" } } } },
          undefined,
          "fail",
          /new image is not as expected: globalUserId/,
        ],
        [demandReader, demand, { purchaseId: "ord-1" }, undefined, "fail", /DynamoDB change record is not as expected/],
      ];
      for (const [reader, template, payload, raw, kind, expected] of cases) {
        const reading = read(reader, template, payload, raw);
        const label = `${JSON.stringify(payload) ?? raw} → ${JSON.stringify(reading)}`;
        assert.equal(reading.kind, kind, label);
        if (reading.kind === "activity") assert.equal(reading.globalUserId, expected, label);
        else if (typeof expected === "string") assert.equal(reading.reason, expected, label);
        else assert.match(reading.reason, expected, label);
      }
    });

    it("dates a demand change by when DynamoDB made it, in milliseconds or microseconds", function () {
      const reader = createDemandChangeReader();
      const payload = payloadOf(demand) as { dynamodb: object };
      const micro = {
        ...payload,
        dynamodb: {
          ...payload.dynamodb,
          ApproximateCreationDateTime: Date.parse("2026-11-24T09:15:55.370Z") * 1000 + 123,
          ApproximateCreationDateTimePrecision: "MICROSECOND",
        },
      };
      for (const change of [payload, micro]) {
        const reading = read(reader, demand, change);
        assert.equal(reading.kind, "activity");
        assert.equal(activityTime((reading as { timestamp?: unknown }).timestamp, undefined, NOW), "2026-11-24T09:15:55.370Z");
      }
    });
  });
});
