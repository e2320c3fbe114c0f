/**
 * What an enqueue worker sends for the records it read, without I/O: when the fan acted, each
 * activity's message and FIFO deduplication id, the message a queue gets, and the rescores a batch
 * calls for. Sending them is tested at the service (enqueue.spec.ts).
 */
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import type { KinesisRecord } from "../workers/shared/runtime/records";
import { activityMessageSchema, activityTimeSchema } from "../workers/shared/scoring/activity";
import {
  activityTime,
  deduplicationId,
  outgoingMessage,
  planActivity,
  type PlannedActivity,
  plannedRescores,
} from "../workers/shared/scoring/enqueuePlan";
import { payloads, templates } from "./support/streamFixtures";
import { recordLike, sequenceNumber, seqs, sha256 } from "./support/streams";

/** The clock: a day after the fixtures' activity. */
const NOW = new Date("2026-11-25T12:00:00.000Z");

const { vf, purchase } = templates;

describe("enqueue planning", function () {
  describe("when the fan acted", function () {
    it("dates an activity by the event's own time, else by its arrival in Kinesis, else now; always as the queues expect", function () {
      assert.equal(activityTime("2026-11-24T10:15:02.417+01:00", 1795511703.102, NOW), "2026-11-24T09:15:02.417Z");
      assert.equal(activityTime("yesterday", 1795511703.102, NOW), "2026-11-24T09:15:03.102Z");
      assert.equal(activityTime(undefined, 1795511703.102, NOW), "2026-11-24T09:15:03.102Z");
      assert.equal(activityTime(undefined, undefined, NOW), NOW.toISOString());
      assert.equal(activityTime("2026-02-30T00:00:00Z", Number.NaN, NOW), NOW.toISOString());
      const atSchema = activityTimeSchema();
      fc.assert(
        fc.property(fc.anything(), fc.option(fc.double({ min: 0, max: 253402300799 })), (timestamp, arrival) => {
          assert.ok(atSchema.safeParse(activityTime(timestamp, arrival ?? undefined, NOW)).success);
        }),
      );
    });
  });

  describe("an activity's message", function () {
    it("identifies a FIFO message by the sha256 of the source, the stream and the record's position in it", function () {
      const record = vf as unknown as KinesisRecord;
      const planned = planActivity("purchase", "purchase", record, { kind: "activity", globalUserId: "gu-1" }, NOW);
      assert.equal(planned.deduplicationId, sha256(`purchase\n${vf.eventSourceARN}\n${vf.kinesis.sequenceNumber}`));
      assert.match(planned.deduplicationId, /^[0-9a-f]{64}$/);
      const ids = new Set([
        planned.deduplicationId,
        planActivity("demand", "demand", record, { kind: "activity", globalUserId: "gu-1" }, NOW).deduplicationId,
        planActivity(
          "purchase",
          "purchase",
          { ...record, eventSourceARN: "arn:other" },
          { kind: "activity", globalUserId: "gu-1" },
          NOW,
        ).deduplicationId,
        planActivity(
          "purchase",
          "purchase",
          { ...record, kinesis: { ...record.kinesis, sequenceNumber: sequenceNumber(1) } },
          { kind: "activity", globalUserId: "gu-1" },
          NOW,
        ).deduplicationId,
      ]);
      assert.equal(ids.size, 4);
      assert.equal(deduplicationId("rescore#gu-1#2026-11-29"), sha256("rescore#gu-1#2026-11-29"));
    });

    it("carries the reading's fan, the worker's source and action, and when the fan acted, under the record's sequence number", function () {
      const arrival = Date.parse("2026-11-24T09:15:03.102Z") / 1000;
      const record = recordLike(vf, 7, payloads.vf("gu-7f3c2a91"), { arrival }) as unknown as KinesisRecord;
      const plan = (timestamp: unknown) =>
        planActivity("vf", "vfLogin", record, { kind: "activity", globalUserId: "gu-7f3c2a91", timestamp }, NOW);

      const planned = plan("2026-11-24T10:15:02.417+01:00");

      assert.equal(planned.id, sequenceNumber(7));
      assert.deepEqual(planned.message, {
        v: 1,
        globalUserId: "gu-7f3c2a91",
        source: "vf",
        action: "vfLogin",
        at: "2026-11-24T09:15:02.417Z",
      });
      assert.ok(activityMessageSchema().safeParse(planned.message).success);
      assert.equal(plan("not a time").message.at, "2026-11-24T09:15:03.102Z", "an unusable time: the arrival in Kinesis");
      assert.equal(plan(undefined).message.at, "2026-11-24T09:15:03.102Z", "no time: the arrival in Kinesis");
    });

    it("is deduplicated by the identity its reading names, wherever and however often the stream delivers the record", function () {
      const reading = {
        kind: "activity",
        globalUserId: "gu-a04c77e2",
        timestamp: "2026-11-29T00:00:00.000Z",
        identity: "rescore#gu-a04c77e2#2026-11-29",
      } as const;
      const delivered = (index: number, eventSourceARN: string) =>
        planActivity(
          "rescore",
          "rescore",
          { ...recordLike(templates.rescoreRemoval, index, {}), eventSourceARN } as unknown as KinesisRecord,
          reading,
          NOW,
        );

      const first = delivered(1, "arn:aws:kinesis:us-east-1:210987654321:stream/fan-identity");
      const again = delivered(2, "arn:aws:kinesis:us-west-2:210987654321:stream/fan-identity");

      assert.equal(first.deduplicationId, sha256("rescore#gu-a04c77e2#2026-11-29"));
      assert.equal(again.deduplicationId, first.deduplicationId);
      assert.deepEqual([first.id, again.id], seqs([1, 2]), "each delivery stays its own record of the batch");
      assert.equal(first.message.at, "2026-11-29T00:00:00.000Z");
    });

    it("goes to a FIFO queue grouped by fan and deduplicated by record, and to a standard queue with neither", function () {
      const planned: PlannedActivity = {
        id: sequenceNumber(3),
        message: { v: 1, globalUserId: "gu-a04c77e2", source: "purchase", action: "purchase", at: "2026-11-24T09:20:11.004Z" },
        deduplicationId: sha256("purchase\narn:aws:kinesis:us-east-1:210987654321:stream/purchase-stream\n3"),
        correlation: { id: "0b6f3a1c-purchase-7e41", origin: "carried" },
      };

      const { body: fifoBody, ...fifo } = outgoingMessage(planned, true);
      const { body: standardBody, ...standard } = outgoingMessage(planned, false);

      // Both carry the correlation id as the String message attribute correlationId.
      const attributes = { correlationId: "0b6f3a1c-purchase-7e41" };
      assert.deepEqual(fifo, {
        id: sequenceNumber(3),
        groupId: "gu-a04c77e2",
        deduplicationId: planned.deduplicationId,
        attributes,
      });
      assert.deepEqual(standard, { id: sequenceNumber(3), attributes });
      for (const body of [fifoBody, standardBody]) assert.deepEqual(JSON.parse(body), planned.message);
    });
  });

  describe("rescores", function () {
    it("plans one rescore per fan and date, naming every record that depends on it", function () {
      const plan = (index: number, globalUserId: string, at: string) =>
        planActivity(
          "purchase",
          "purchase",
          recordLike(purchase, index, payloads.purchase(globalUserId, at)) as unknown as KinesisRecord,
          { kind: "activity", globalUserId, timestamp: at },
          NOW,
        );
      const rescores = plannedRescores(
        [
          plan(1, "gu-1", "2026-11-24T01:00:00Z"),
          plan(2, "gu-2", "2026-11-24T02:00:00Z"),
          plan(3, "gu-1", "2026-11-24T23:59:59Z"),
          plan(4, "gu-1", "2026-11-25T00:00:00Z"),
        ],
        NOW,
        5,
      );
      assert.deepEqual(
        rescores.map(({ item, records }) => [item.userId, item.expiresOn, records]),
        [
          ["rescore#gu-1#2026-11-29", Date.UTC(2026, 10, 29) / 1000, seqs([1, 3])],
          ["rescore#gu-2#2026-11-29", Date.UTC(2026, 10, 29) / 1000, seqs([2])],
          ["rescore#gu-1#2026-11-30", Date.UTC(2026, 10, 30) / 1000, seqs([4])],
        ],
      );
    });

    it("fall the delay's days after the activity, on that day in UTC, due at its midnight, for the fan and the activity's source", function () {
      const plan = (globalUserId: string, timestamp: string) =>
        planActivity(
          "purchase",
          "purchase",
          recordLike(purchase, 1, payloads.purchase(globalUserId, timestamp)) as unknown as KinesisRecord,
          { kind: "activity", globalUserId, timestamp },
          NOW,
        );

      assert.deepEqual(plannedRescores([plan("gu-a04c77e2", "2026-11-24T09:20:11.004Z")], NOW, 12), [
        {
          item: {
            userId: "rescore#gu-a04c77e2#2026-12-06",
            type: "rescore",
            globalUserId: "gu-a04c77e2",
            rescoreDate: "2026-12-06",
            source: "purchase",
            expiresOn: Date.UTC(2026, 11, 6) / 1000,
            dateCreated: NOW.toISOString(),
            // The record carries no id: the one made from its source, stream and sequence number.
            correlationId: sha256(`purchase\n${purchase.eventSourceARN}\n${sequenceNumber(1)}`).slice(0, 32),
          },
          records: seqs([1]),
        },
      ]);
      // 23:30 in New York on the 24th is already the 25th in UTC.
      const [late] = plannedRescores([plan("gu-1", "2026-11-24T23:30:00-05:00")], NOW, 5);
      assert.equal(late!.item.rescoreDate, "2026-11-30");
      assert.deepEqual(plannedRescores([], NOW, 5), []);
    });

    it("for any batch, are one per fan and due day, each naming in batch order every record that calls for it", function () {
      const activity = fc.record({
        globalUserId: fc.constantFrom("gu-1", "gu-2", "gu-3"),
        at: fc.date({ min: new Date("2026-01-01T00:00:00Z"), max: new Date("2026-12-31T23:59:59Z"), noInvalidDate: true }),
      });
      fc.assert(
        fc.property(fc.array(activity, { maxLength: 40 }), fc.integer({ min: 1, max: 30 }), (activities, delayDays) => {
          const planned = activities.map(({ globalUserId, at }, index): PlannedActivity => ({
            id: sequenceNumber(index),
            message: { v: 1, globalUserId, source: "demand", action: "demand", at: at.toISOString() },
            deduplicationId: sha256(String(index)),
            correlation: { id: `c-${index}`, origin: "carried" },
          }));
          const dueDay = (at: Date) => new Date(at.getTime() + delayDays * 86_400_000).toISOString().slice(0, 10);
          const expected = new Map<string, string[]>();
          activities.forEach(({ globalUserId, at }, index) => {
            const key = `rescore#${globalUserId}#${dueDay(at)}`;
            expected.set(key, [...(expected.get(key) ?? []), sequenceNumber(index)]);
          });

          const rescores = plannedRescores(planned, NOW, delayDays);

          assert.equal(rescores.length, expected.size);
          assert.deepEqual(new Map(rescores.map(({ item, records }) => [item.userId, records])), expected);
          for (const { item, records } of rescores) {
            assert.equal(item.userId, `rescore#${item.globalUserId}#${item.rescoreDate}`);
            // The rescore carries the id of the first activity that called for it.
            assert.equal(item.correlationId, planned.find((activity) => activity.id === records[0])!.correlation.id);
          }
        }),
      );
    });
  });
});
