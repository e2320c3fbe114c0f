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
import { createRescoreRemovalReader } from "../workers/processRescoreEvents";
import type { KinesisRecord } from "../workers/shared/runtime/records";
import { globalUserIdSchema } from "../workers/shared/scoring/activity";
import { activityTime } from "../workers/shared/scoring/enqueuePlan";
import { parseIsoDateTime, type StreamReader } from "../workers/shared/scoring/streamReading";
import { fanChange, payloads, rescoreRemoval, templates, TTL } from "./support/streamFixtures";
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

    it("pass on the event's own time as the event gives it, usable or not, and leave the record's identity to its stream position", function () {
      const streams: [StreamReader, KinesisFixtureRecord, (timestamp: unknown) => unknown][] = [
        [createVfLoginReader(), vf, (timestamp) => ({ ...payloads.vf("gu-1"), timestamp })],
        [createPurchaseReader(), purchase, (timestamp) => ({ ...payloads.purchase("gu-1"), timestamp })],
        [createSQJourneyReader(), sqJourney, (timestamp) => ({ ...payloads.sqJourney("gu-1"), timestamp })],
      ];
      for (const [reader, template, payload] of streams) {
        for (const timestamp of ["2026-11-24T10:15:02.417+01:00", "not a time", 1795511702417, undefined]) {
          const reading = read(reader, template, payload(timestamp));
          const label = `${JSON.stringify(payload(timestamp))} → ${JSON.stringify(reading)}`;
          assert.equal(reading.kind, "activity", label);
          const activity = reading as Extract<typeof reading, { kind: "activity" }>;
          assert.equal(activity.globalUserId, "gu-1", label);
          assert.equal(activity.timestamp, timestamp, label);
          assert.equal(activity.identity, undefined, label);
        }
      }
    });

    it("of a purchase are activity only with status SUCCESS, and skipped naming any other status", function () {
      const reader = createPurchaseReader();
      for (const status of ["FAILED", "PENDING", "success", "REFUNDED"]) {
        const reading = read(reader, purchase, { ...payloads.purchase("gu-1"), status });
        assert.equal(reading.kind, "skip", status);
        assert.match((reading as { reason: string }).reason, new RegExp(`\\b${status}\\b`), status);
      }
      assert.equal(read(reader, purchase, { ...payloads.purchase("gu-1"), status: "SUCCESS" }).kind, "activity");
    });

    it("of a demand change without a creation time leave it to be dated by its arrival", function () {
      const payload = payloadOf(demand) as { dynamodb: Record<string, unknown> };
      const { ApproximateCreationDateTime: _at, ApproximateCreationDateTimePrecision: _precision, ...untimed } = payload.dynamodb;
      const reading = read(createDemandChangeReader(), demand, { ...payload, dynamodb: untimed });
      assert.equal(reading.kind, "activity");
      assert.equal((reading as { timestamp?: unknown }).timestamp, undefined);
    });
  });

  describe("the fan-identity table's stream", function () {
    const reader = createRescoreRemovalReader();
    const readChange = (change: unknown) => read(reader, templates.rescoreRemoval, change);

    it("reads a rescore record TTL deleted as its fan due again, at 00:00 UTC of its date, identified by its key", function () {
      assert.deepEqual(reader(templates.rescoreRemoval as unknown as KinesisRecord), {
        kind: "activity",
        globalUserId: "gu-a04c77e2",
        timestamp: "2026-11-29T00:00:00.000Z",
        identity: "rescore#gu-a04c77e2#2026-11-29",
      });
      const day = fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true });
      fc.assert(
        fc.property(fc.stringMatching(/^gu-[0-9a-z]{1,24}$/), day, (globalUserId, date) => {
          const rescoreDate = date.toISOString().slice(0, 10);
          assert.deepEqual(readChange(rescoreRemoval(globalUserId, rescoreDate)), {
            kind: "activity",
            globalUserId,
            timestamp: `${rescoreDate}T00:00:00.000Z`,
            identity: `rescore#${globalUserId}#${rescoreDate}`,
          });
        }),
      );
    });

    it("skips everything else on the stream: fan records, and a rescore record written or deleted by hand", function () {
      const written = rescoreRemoval("gu-3", "2026-11-29", { eventName: "INSERT", userIdentity: null });
      const cases: [unknown, string][] = [
        [rescoreRemoval("gu-1", "2026-11-29", { userIdentity: null }), "rescore record removed by a user, not by TTL"],
        [
          rescoreRemoval("gu-2", "2026-11-29", { userIdentity: { type: "Service", principalId: "backup.amazonaws.com" } }),
          "rescore record removed by a user, not by TTL",
        ],
        [
          rescoreRemoval("gu-2", "2026-11-29", { userIdentity: { type: "User", principalId: TTL.principalId } }),
          "rescore record removed by a user, not by TTL",
        ],
        [
          { ...written, dynamodb: { Keys: written.dynamodb.Keys, NewImage: written.dynamodb.OldImage } },
          "INSERT is not a removal",
        ],
        [rescoreRemoval("gu-4", "2026-11-29", { eventName: "MODIFY" }), "MODIFY is not a removal"],
        [fanChange("MODIFY", null), "MODIFY is not a removal"],
        [fanChange("REMOVE", null), "removed record is of type score"],
        [fanChange("REMOVE", TTL), "removed record is of type score"],
        [{ ...fanChange("REMOVE", TTL), dynamodb: { Keys: { userId: { S: "gu-5d13f0b8" } } } }, "removal carries no old image"],
      ];
      for (const [change, reason] of cases) {
        assert.deepEqual(readChange(change), { kind: "skip", reason }, JSON.stringify(change));
      }
    });

    it("fails a rescore removal it cannot tell apart (no old image) and one that is malformed, saying what was wrong", function () {
      const removal = rescoreRemoval("gu-6", "2026-11-29");
      const { globalUserId: _globalUserId, ...noFan } = removal.dynamodb.OldImage!;
      const cases: [unknown, RegExp | string][] = [
        [
          { ...removal, dynamodb: { Keys: removal.dynamodb.Keys } },
          "rescore removal carries no old image (the stream must carry old images)",
        ],
        [
          { ...removal, dynamodb: { ...removal.dynamodb, OldImage: noFan } },
          /^rescore record is not as expected: globalUserId: /,
        ],
        [rescoreRemoval("gu 7", "2026-11-29"), /^rescore record is not as expected: globalUserId: /],
        [rescoreRemoval("gu-7", "2026-02-30"), /^rescore record is not as expected: rescoreDate: expected YYYY-MM-DD/],
        [rescoreRemoval("gu-7", "29/11/2026"), /^rescore record is not as expected: rescoreDate: expected YYYY-MM-DD/],
        [{ eventName: "REMOVE", userIdentity: TTL }, /^DynamoDB change record is not as expected: .*dynamodb/],
        [
          { ...removal, dynamodb: { ...removal.dynamodb, OldImage: { type: { Q: "rescore" } } } },
          /^DynamoDB change record has an image that is not DynamoDB JSON/,
        ],
      ];
      for (const [change, expected] of cases) {
        const reading = readChange(change);
        const label = `${JSON.stringify(change)} → ${JSON.stringify(reading)}`;
        assert.equal(reading.kind, "fail", label);
        if (typeof expected === "string") assert.equal((reading as { reason: string }).reason, expected, label);
        else assert.match((reading as { reason: string }).reason, expected, label);
      }
      assert.deepEqual(read(reader, templates.rescoreRemoval, undefined, "not base64 at all"), {
        kind: "fail",
        reason: "data is not base64",
      });
    });
  });

  describe("any record", function () {
    it("is read without throwing, whatever its data: as the activity of a valid fan, or skipped or failed saying why", function () {
      const readers: [string, StreamReader][] = [
        ["vf", createVfLoginReader()],
        ["purchase", createPurchaseReader()],
        ["sqJourney", createSQJourneyReader()],
        ["demand", createDemandChangeReader()],
        ["rescore", createRescoreRemovalReader()],
      ];
      const fan = fc.oneof(fc.stringMatching(/^gu-[0-9a-f]{4}$/), fc.jsonValue());
      const attribute = fc.oneof(
        fc.record({ S: fc.oneof(fc.string(), fan) }),
        fc.record({ N: fc.string() }),
        fc.record({ BOOL: fc.boolean() }),
        fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue(), { maxKeys: 2 }),
      );
      const string = (value: fc.Arbitrary<unknown>) => value.map((S) => ({ S }));
      const image = fc.record(
        {
          userId: fc.oneof(string(fc.constantFrom("rescore#gu-1#2026-11-29", "gu-1")), attribute),
          type: fc.oneof(string(fc.constantFrom("rescore", "score")), attribute),
          globalUserId: fc.oneof(string(fan), attribute),
          rescoreDate: fc.oneof(string(fc.constantFrom("2026-11-29", "2026-02-30")), attribute),
        },
        { requiredKeys: [] },
      );
      const change = fc.record(
        {
          eventID: fc.constant("8f0d3c4e"),
          eventName: fc.constantFrom("INSERT", "MODIFY", "REMOVE", "UPDATE"),
          userIdentity: fc.constantFrom(null, TTL, { type: "Service" }, "dynamodb"),
          dynamodb: fc.record(
            {
              Keys: image,
              NewImage: image,
              OldImage: image,
              // When DynamoDB made the change: epoch milliseconds (or microseconds) of this century.
              ApproximateCreationDateTime: fc.integer({ min: 0, max: 4_102_444_800_000 }),
              ApproximateCreationDateTimePrecision: fc.constantFrom("MILLISECOND", "MICROSECOND"),
            },
            { requiredKeys: ["Keys"] },
          ),
        },
        { requiredKeys: ["eventName", "dynamodb"] },
      );
      const event = fc.record(
        {
          type: fc.constantFrom("vfLogin", "vfLogout", 7),
          status: fc.constantFrom("SUCCESS", "FAILED", null),
          globalUserId: fan,
          customer: fc.oneof(fc.record({ globalUserId: fan }), fc.jsonValue()),
          timestamp: fc.jsonValue(),
        },
        { requiredKeys: [] },
      );
      const base64 = (value: unknown) => Buffer.from(JSON.stringify(value) ?? "null", "utf8").toString("base64");
      const data = fc.oneof(
        { arbitrary: event.map(base64), weight: 3 },
        { arbitrary: change.map(base64), weight: 3 },
        fc.jsonValue().map(base64),
        fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString("base64")),
        fc.string(),
      );
      fc.assert(
        fc.property(fc.constantFrom(...readers), data, ([stream, reader], raw) => {
          const reading = reader(recordLike(vf, 1, undefined, { rawData: raw }) as unknown as KinesisRecord);
          const label = `${stream}: ${raw} → ${JSON.stringify(reading)}`;
          if (reading.kind === "activity") assert.ok(globalUserIdSchema().safeParse(reading.globalUserId).success, label);
          else {
            assert.ok(reading.kind === "skip" || reading.kind === "fail", label);
            assert.ok(typeof reading.reason === "string" && reading.reason.length > 0, label);
          }
        }),
        { numRuns: 3000 },
      );
    });
  });
});
