/**
 * What an enqueue worker sends for the records it read, without I/O: when the fan acted, each
 * activity's message and FIFO deduplication id, the message a queue gets, and the rescores a batch
 * calls for. Sending them is tested at the service (enqueue.spec.ts).
 */
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import type { KinesisRecord } from "../workers/shared/runtime/records";
import { activityMessageSchema } from "../workers/shared/scoring/activity";
import { activityTime, deduplicationId, planActivity, plannedRescores } from "../workers/shared/scoring/enqueuePlan";
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
      const atSchema = activityMessageSchema().shape.at;
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
  });
});
