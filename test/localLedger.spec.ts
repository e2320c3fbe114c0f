/**
 * The reconciliation of a bounded local run, from hand-built inputs: every event sent is scored,
 * skipped, parked or LOST by what the run left (stored scores, parked records, failure lines);
 * wrong scores and fans scored for activity that is not scored are caught.
 */
import * as assert from "node:assert/strict";
import {
  deliveryKey,
  type LedgerInput,
  ledgerJson,
  outstandingFailures,
  type ParkedRecords,
  parkedFromDeadLetter,
  parkedFromKinesisFailure,
  parkedFromParkedRecord,
  reconcile,
  renderLedger,
  type StoredScore,
  workerFailuresFrom,
} from "../tools/local/ledger";
import { createGenerator, type ExpectedOutcome, type SentEvent } from "../tools/local/traffic/generator";
import type { LocalEvent } from "../tools/local/types";
import { parkedRecordDocument } from "../workers/shared/runtime/parking";
import { sequenceNumber } from "./support/streams";

const VF = "vf-input-stream";
const SQ = "sq-journey-stream";
const PURCHASE = "purchase-stream";
const TOPIC = "user-activity-local";
const SHARD = "shardId-000000000000";
const START = Date.parse("2026-12-01T10:00:00.000Z");

const SCORED: ExpectedOutcome = { outcome: "scored" };
const skipped = (reason: "filtered" | "notScorable" | "failedResult" | "fanUnknown", detail = "as drawn"): ExpectedOutcome => ({
  outcome: "skipped",
  reason,
  detail,
});
const parkedAs = (reason: string): ExpectedOutcome => ({ outcome: "parked", reason });

/** A VF-stream event at shard position `n`. */
function kinesisEvent(n: number, expected: ExpectedOutcome, globalUserId?: string, target = VF): SentEvent {
  return {
    seq: n,
    source: target === VF ? "vf" : "purchase",
    id: { target, key: globalUserId ?? `key-${n}`, sequenceNumber: sequenceNumber(n), shardId: SHARD },
    ...(globalUserId === undefined ? {} : { globalUserId }),
    at: START + n,
    kind: expected.outcome === "parked" ? "bad invalidFanId/hash" : "vfLogin",
    expected,
  };
}

/** A user-activity event at `partition` and `offset`. */
function kafkaEvent(seq: number, partition: number, offset: number, expected: ExpectedOutcome, globalUserId?: string): SentEvent {
  return {
    seq,
    source: "kafka",
    id: { target: TOPIC, key: globalUserId ?? `key-${seq}`, partition, offset },
    ...(globalUserId === undefined ? {} : { globalUserId }),
    at: START + seq,
    kind: expected.outcome === "parked" ? "bad undecodable/tombstone" : "login/success",
    expected,
  };
}

const score = (value: number, scoredAraiVersion = 1): StoredScore => ({
  score: value,
  scoredAraiVersion,
  scoreVersion: "local-1",
});

function ledgerOf(input: Partial<LedgerInput> & Pick<LedgerInput, "sent">) {
  return reconcile({ scores: new Map(), parked: [], ...input });
}

const outcomes = (input: Partial<LedgerInput> & Pick<LedgerInput, "sent">) =>
  ledgerOf(input).entries.map((entry) => `${entry.outcome}${entry.reason ? `: ${entry.reason}` : ""}`);

describe("the local run's ledger", function () {
  describe("an event expected to be scored", function () {
    it("is scored when its fan has a stored score", function () {
      const ledger = ledgerOf({ sent: [kinesisEvent(1, SCORED, "gu-a")], scores: new Map([["gu-a", score(0.2)]]) });
      assert.deepEqual(
        ledger.entries.map((entry) => entry.outcome),
        ["scored"],
      );
      assert.equal(ledger.ok, true);
      assert.deepEqual(ledger.totals, { in: 1, scored: 1, skipped: 0, parked: 0, lost: 0, unexpected: 0, balanced: true });
    });

    it("is LOST when its fan has no score and nothing of it is parked, saying so", function () {
      const ledger = ledgerOf({
        sent: [kinesisEvent(1, SCORED, "gu-a"), kinesisEvent(2, SCORED, "gu-b")],
        scores: new Map([["gu-b", score(0.5)]]),
      });
      assert.deepEqual(ledger.totals, { in: 2, scored: 1, skipped: 0, parked: 0, lost: 1, unexpected: 0, balanced: false });
      assert.deepEqual(ledger.lost, [
        {
          seq: 1,
          source: "vf",
          target: VF,
          record: sequenceNumber(1),
          globalUserId: "gu-a",
          kind: "vfLogin",
          expected: "scored",
          outcome: "lost",
          reason: "fan not scored, record not parked",
        },
      ]);
      assert.equal(ledger.ok, false);
    });

    it("is parked, not as expected, when its record or its fan's activity message is parked", function () {
      const sent = [kinesisEvent(1, SCORED, "gu-a"), kinesisEvent(2, SCORED, "gu-b"), kafkaEvent(3, 0, 7, SCORED, "gu-c")];
      const parked: ParkedRecords[] = [
        { source: VF, destination: "scoring-stream-failures-sqs", records: [sequenceNumber(1)] },
        {
          source: "acct-activity-sqs.fifo",
          destination: "acct-activity-dlq.fifo",
          globalUserIds: ["gu-c"],
          reason: "ARAI lookup failed",
        },
      ];
      const failures = [{ source: VF, record: sequenceNumber(1), reason: "activity messages not sent: throttled" }];
      const ledger = ledgerOf({ sent, parked, workerFailures: failures });
      assert.deepEqual(
        ledger.entries.map((entry) => [entry.outcome, entry.reason]),
        [
          ["parked", "activity messages not sent: throttled"],
          ["lost", "fan not scored, record not parked"],
          ["parked", "ARAI lookup failed"],
        ],
      );
      assert.equal(ledger.totals.unexpected, 2);
      assert.deepEqual(
        ledger.unexpected.map((entry) => entry.seq),
        [1, 3],
      );
      assert.deepEqual(ledger.parked, { "activity messages not sent": 1, "ARAI lookup failed": 1 });
    });

    it("is parked with the worker's reason when the worker parked its activity message, else as moved by SQS", function () {
      const DLQ = "acct-activity-sqs-dlq.fifo";
      const body = (globalUserId: string) =>
        JSON.stringify({ globalUserId, source: "vf", action: "login", at: "2026-12-01T10:00:00.000Z" });
      const reason =
        "gave up after 3 deliveries: ARAI lookup failed: accounts ARAI API GET account activity failed after 3 attempts: HTTP 503";
      const byWorker = parkedFromDeadLetter(
        {
          body: body("gu-a"),
          attributes: {
            correlationId: { StringValue: "c-1" },
            parkedBy: { StringValue: "lookupArai" },
            parkedReason: { StringValue: reason },
          },
        },
        DLQ,
        3,
      );
      const bySqs = parkedFromDeadLetter({ body: body("gu-b"), attributes: { correlationId: { StringValue: "c-2" } } }, DLQ, 3);
      assert.deepEqual(byWorker, { source: DLQ, destination: DLQ, globalUserIds: ["gu-a"], reason });
      assert.deepEqual(bySqs, { source: DLQ, destination: DLQ, globalUserIds: ["gu-b"], reason: "moved after 3 receives" });
      // A message that names no fan (not JSON, or no globalUserId) accounts for no event.
      assert.equal(
        parkedFromDeadLetter({ body: "not json", attributes: { parkedReason: { StringValue: "x" } } }, DLQ, 3),
        undefined,
      );
      assert.equal(parkedFromDeadLetter({ body: "{}" }, DLQ, 3), undefined);

      const ledger = ledgerOf({
        sent: [kinesisEvent(1, SCORED, "gu-a"), kinesisEvent(2, SCORED, "gu-b")],
        parked: [byWorker!, bySqs!],
      });
      assert.deepEqual(
        ledger.entries.map((entry) => [entry.outcome, entry.reason]),
        [
          ["parked", reason],
          ["parked", "moved after 3 receives"],
        ],
      );
      assert.equal(ledger.totals.lost, 0);
    });

    it("is LOST when its worker failed it and it never reached a failure destination", function () {
      assert.deepEqual(
        outcomes({
          sent: [kinesisEvent(1, SCORED, "gu-a")],
          workerFailures: [{ source: VF, record: sequenceNumber(1), reason: "rescore not scheduled: throttled" }],
        }),
        ["lost: failed (rescore not scheduled: throttled), never parked"],
      );
    });
  });

  describe("an event expected to be skipped", function () {
    it("is skipped with its reason, even in a parked batch behind a failed record", function () {
      const sent = [
        kinesisEvent(1, parkedAs("globalUserId with #")),
        kinesisEvent(2, skipped("filtered", "type vfLogout, not vfLogin"), "gu-a"),
      ];
      const parked = [{ source: VF, range: { first: sequenceNumber(1), last: sequenceNumber(2), shardId: SHARD } }];
      const failures = [{ source: VF, record: sequenceNumber(1), reason: "VF login event is not as expected: globalUserId" }];
      const ledger = ledgerOf({ sent, parked, workerFailures: failures });
      assert.deepEqual(
        ledger.entries.map((entry) => [entry.outcome, entry.reason]),
        [
          ["parked", "VF login event is not as expected: globalUserId"],
          ["skipped", "filtered: type vfLogout, not vfLogin"],
        ],
      );
      assert.deepEqual(ledger.skipped, { filtered: 1 });
      assert.equal(ledger.ok, true);
    });

    it("is parked, or LOST, when its worker failed it", function () {
      const sent = [kafkaEvent(1, 0, 10, skipped("notScorable"), "gu-a"), kafkaEvent(2, 0, 11, skipped("failedResult"), "gu-b")];
      const ledger = ledgerOf({
        sent,
        parked: [{ source: TOPIC, records: [`${TOPIC}-0@10`] }],
        workerFailures: [
          { record: { partition: `${TOPIC}-0`, offset: 10 }, reason: "activity is not as expected" },
          { record: { partition: `${TOPIC}-0`, offset: 11 }, reason: "activity is not as expected" },
        ],
      });
      assert.deepEqual(
        ledger.entries.map((entry) => [entry.outcome, entry.reason]),
        [
          ["parked", "activity is not as expected"],
          ["lost", "failed (activity is not as expected), never parked"],
        ],
      );
      assert.equal(ledger.totals.unexpected, 1);
    });
  });

  describe("failures a later delivery overcame", function () {
    const fn = "enqueueFromSQJourneyStream";
    const failure = (record: string) => ({
      function: fn,
      source: SQ,
      record,
      reason: "rescore not scheduled: PutItem timed out",
    });
    const delivered = (record: string, times: number) => [deliveryKey(fn, record)!, times] as const;

    it("drop a record's failures once it was delivered more often than it failed", function () {
      const [once, twice, always] = [sequenceNumber(1), sequenceNumber(2), sequenceNumber(3)];
      const failures = [failure(once), failure(twice), failure(twice), failure(always), failure(always)];
      const deliveries = new Map([delivered(once, 2), delivered(twice, 3), delivered(always, 2)]);
      assert.deepEqual(
        outstandingFailures(failures, deliveries).map((kept) => kept.record),
        [always, always],
        "failed on every delivery: still a failure",
      );
    });

    it("keep a failure whose deliveries are not known, or whose record is not named by a string", function () {
      const kafka = { function: fn, record: { partition: "t-0", offset: 4 }, reason: "timed out" };
      assert.equal(outstandingFailures([failure(sequenceNumber(1)), kafka], new Map()).length, 2);
    });

    it("leave a skipped record that failed once and was processed on its next delivery skipped, not LOST", function () {
      const sent = [kinesisEvent(1, skipped("notScorable", "checkout_started"), "gu-a", SQ)];
      const failures = [failure(sequenceNumber(1))];
      const deliveries = new Map([delivered(sequenceNumber(1), 2)]);
      assert.deepEqual(outcomes({ sent, workerFailures: failures }), [
        "lost: failed (rescore not scheduled: PutItem timed out), never parked",
      ]);
      assert.deepEqual(outcomes({ sent, workerFailures: outstandingFailures(failures, deliveries) }), [
        "skipped: notScorable: checkout_started",
      ]);
    });
  });

  describe("an event expected to be parked", function () {
    it("is parked when its record is named, with its worker's reason", function () {
      const sent = [
        kinesisEvent(1, parkedAs("globalUserId with #")),
        kafkaEvent(2, 3, 17, parkedAs("value is null (a tombstone)")),
        kafkaEvent(3, 3, 18, parkedAs("value is not JSON")),
        kafkaEvent(4, 1, 5, parkedAs("value is not UTF-8")),
      ];
      const parked: ParkedRecords[] = [
        { source: VF, records: [sequenceNumber(1)] },
        { source: TOPIC, records: [{ partition: `${TOPIC}-3`, offset: 17 }, "3@18"] },
        { source: TOPIC, records: [{ partition: 1, offset: 5 }], reason: "parked by the Kafka mapping" },
      ];
      const failures = workerFailuresFrom(
        [
          {
            kind: "log",
            function: "enqueueFromVfStream",
            line: {
              level: "WARN",
              message: "record failed",
              record: sequenceNumber(1),
              reason: "VF login event is not as expected",
            },
          },
          {
            kind: "log",
            function: "enqueueFromActivityStream",
            line: {
              level: "WARN",
              message: "record failed",
              record: { partition: `${TOPIC}-3`, offset: 17 },
              reason: "value is null (a tombstone), not an activity",
            },
          },
          { kind: "log", function: "enqueueFromVfStream", line: { level: "INFO", message: "batch enqueued", records: 1 } },
        ],
        (fn) => (fn === "enqueueFromVfStream" ? VF : undefined),
      );
      assert.equal(failures.length, 2);
      assert.deepEqual(outcomes({ sent, parked, workerFailures: failures }), [
        "parked: VF login event is not as expected",
        "parked: value is null (a tombstone), not an activity",
        "parked: value is not JSON",
        "parked: parked by the Kafka mapping",
      ]);
    });

    it("is parked when its worker parked it, with the document's reason, Kinesis by stream and Kafka by topic", function () {
      const sent = [
        kinesisEvent(1, parkedAs("VF login without globalUserId")),
        kinesisEvent(2, parkedAs("globalUserId with #"), undefined, PURCHASE),
        kafkaEvent(3, 2, 40, parkedAs("value is null (a tombstone)")),
        // Parked by a worker of another stream at the same position, and at another offset: not these.
        kinesisEvent(4, parkedAs("globalUserId with #")),
        kafkaEvent(5, 2, 41, parkedAs("value is not JSON")),
      ];
      // The documents as the workers write them and as they come off the failure queue (JSON text).
      const document = (
        worker: string,
        reason: string,
        source: Parameters<typeof parkedRecordDocument>[0]["source"],
        record: object,
      ) =>
        JSON.parse(
          JSON.stringify(
            parkedRecordDocument({ worker, reason, failureReason: "invalid", parkedAt: new Date(START), source, record }),
          ),
        ) as unknown;
      const kinesis = (stream: string, n: number) => ({
        kind: "kinesis" as const,
        eventSourceARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${stream}`,
        sequenceNumber: sequenceNumber(n),
      });
      const messages = [
        document("enqueueFromVfStream", "VF login event is not as expected: globalUserId: Invalid input", kinesis(VF, 1), {
          kinesis: { sequenceNumber: sequenceNumber(1), data: "e30=" },
        }),
        document("enqueueFromPurchaseStream", "purchase event is not as expected: customer", kinesis(PURCHASE, 2), {
          kinesis: { sequenceNumber: sequenceNumber(2), data: "e30=" },
        }),
        document(
          "enqueueFromActivityStream",
          "value is null (a tombstone), not an activity",
          { kind: "kafka", topic: TOPIC, partition: 2, offset: 40 },
          { topic: TOPIC, partition: 2, offset: 40, value: null },
        ),
        document("enqueueFromPurchaseStream", "purchase event is not as expected: customer", kinesis(PURCHASE, 4), {}),
      ];
      const parked = messages.map((message) => parkedFromParkedRecord(message, "scoring-stream-failures-sqs")!);
      assert.deepEqual(parked[0], {
        source: VF,
        destination: "scoring-stream-failures-sqs",
        records: [sequenceNumber(1)],
        reason: "VF login event is not as expected: globalUserId: Invalid input",
      });
      assert.deepEqual(parked[2], {
        source: TOPIC,
        destination: "scoring-stream-failures-sqs",
        records: [{ partition: 2, offset: 40 }],
        reason: "value is null (a tombstone), not an activity",
      });
      const ledger = ledgerOf({ sent, parked });
      assert.deepEqual(
        ledger.entries.map((entry) => `${entry.outcome}: ${entry.reason}`),
        [
          "parked: VF login event is not as expected: globalUserId: Invalid input",
          "parked: purchase event is not as expected: customer",
          "parked: value is null (a tombstone), not an activity",
          "lost: not parked (globalUserId with #)",
          "lost: not parked (value is not JSON)",
        ],
      );
      assert.deepEqual(ledger.parked, {
        "VF login event is not as expected": 1,
        "purchase event is not as expected": 1,
        "value is null": 1,
      });
      // Lambda's pointers and anything else are not parked-record documents.
      assert.equal(parkedFromParkedRecord({ KinesisBatchInfo: {} }), undefined);
      assert.equal(parkedFromParkedRecord({ ...(messages[0] as object), parkedRecord: 2 }), undefined);
      assert.equal(parkedFromParkedRecord("not json"), undefined);
    });

    it("is parked when it lies in a parked batch's range, of its own shard or partition", function () {
      const sent = [
        kinesisEvent(5, parkedAs("globalUserId with #")),
        {
          ...kinesisEvent(6, parkedAs("globalUserId with #")),
          id: { target: VF, key: "k", sequenceNumber: sequenceNumber(6), shardId: "shardId-000000000001" },
        },
        kinesisEvent(9, parkedAs("globalUserId with #")),
        kafkaEvent(10, 2, 40, parkedAs("value is not JSON")),
        kafkaEvent(11, 1, 40, parkedAs("value is not JSON")),
      ];
      const parked: ParkedRecords[] = [
        parkedFromKinesisFailure(
          {
            requestContext: {
              requestId: "r-1",
              functionArn: "arn:aws:lambda:us-east-1:000000000000:function:enqueueFromVfStream",
              condition: "RetryAttemptsExhausted",
            },
            KinesisBatchInfo: {
              shardId: SHARD,
              startSequenceNumber: sequenceNumber(4),
              endSequenceNumber: sequenceNumber(8),
              batchSize: 5,
              streamArn: `arn:aws:kinesis:us-east-1:000000000000:stream/${VF}`,
            },
          },
          "scoring-stream-failures-sqs",
        )!,
        { source: TOPIC, range: { partition: 2, first: 39, last: 41 } },
      ];
      assert.deepEqual(parked[0], {
        source: VF,
        destination: "scoring-stream-failures-sqs",
        range: { first: sequenceNumber(4), last: sequenceNumber(8), shardId: SHARD },
      });
      assert.deepEqual(
        ledgerOf({ sent, parked }).entries.map((entry) => entry.outcome),
        ["parked", "lost", "lost", "parked", "lost"],
      );
      assert.equal(parkedFromKinesisFailure({ Records: [] }), undefined);
    });

    it("is not taken for a record of another stream at the same position", function () {
      // Two streams created together number their records alike.
      const sent = [kinesisEvent(1, parkedAs("globalUserId with #"), undefined, PURCHASE)];
      const parked = [{ source: VF, records: [sequenceNumber(1)] }];
      assert.deepEqual(outcomes({ sent, parked }), ["lost: not parked (globalUserId with #)"]);
    });

    it("is LOST when the failure destination never received it, or its position is not known", function () {
      const unplaced: SentEvent = { ...kinesisEvent(2, parkedAs("VF login without globalUserId")), id: { target: VF, key: "k" } };
      const ledger = ledgerOf({
        sent: [kinesisEvent(1, parkedAs("globalUserId with whitespace")), unplaced],
        parked: [{ source: VF, records: [sequenceNumber(2)] }],
      });
      assert.deepEqual(
        ledger.entries.map((entry) => [entry.outcome, entry.reason, entry.record]),
        [
          ["lost", "not parked (globalUserId with whitespace)", sequenceNumber(1)],
          ["lost", "not parked (VF login without globalUserId)", undefined],
        ],
      );
    });
  });

  describe("fans", function () {
    it("scored with another score than expected are listed; within the tolerance, or not known, they are not", function () {
      const sent = [
        kinesisEvent(1, SCORED, "gu-a"),
        kinesisEvent(2, SCORED, "gu-b"),
        kinesisEvent(3, SCORED, "gu-c"),
        kinesisEvent(4, SCORED, "gu-d"),
      ];
      const scores = new Map([
        ["gu-a", score(0.25)],
        ["gu-b", score(0.5)],
        ["gu-c", score(0.7500001)],
        ["gu-d", score(0.1)],
      ]);
      const expected: Record<string, number> = { "gu-a": 0.25, "gu-b": 0.55, "gu-c": 0.75 };
      const ledger = ledgerOf({ sent, scores, expectedScore: (fan) => expected[fan], tolerance: 1e-6 });
      assert.deepEqual(ledger.wrongScores, [{ globalUserId: "gu-b", score: 0.5, expected: 0.55 }]);
      assert.equal(ledger.uncheckedScores, 1);
      assert.equal(ledger.ok, false);
      assert.deepEqual(ledgerOf({ sent, scores, expectedScore: (fan) => expected[fan] }).wrongScores.length, 2);
    });

    it("scored though nothing they did is scored (not scorable, failed, unknown to the accounts service) are listed", function () {
      const sent = [
        kafkaEvent(1, 0, 1, skipped("notScorable"), "gu-logout"),
        kafkaEvent(2, 0, 2, skipped("failedResult"), "gu-logout"),
        kinesisEvent(3, skipped("fanUnknown"), "gu-unknown"),
        kinesisEvent(4, skipped("filtered"), "gu-both"),
        kinesisEvent(5, SCORED, "gu-both"),
      ];
      const scores = new Map([
        ["gu-logout", score(0.9)],
        ["gu-unknown", score(0.3)],
        ["gu-both", score(0.4)],
        ["gu-earlier-run", score(0.6)],
      ]);
      const ledger = ledgerOf({ sent, scores });
      assert.deepEqual(ledger.unexpectedScores, [
        { globalUserId: "gu-logout", score: 0.9, reasons: ["failedResult", "notScorable"] },
        { globalUserId: "gu-unknown", score: 0.3, reasons: ["fanUnknown"] },
      ]);
      assert.equal(ledger.ok, false);
    });
  });

  describe("totals", function () {
    it("add up, by input and over all: events in = scored + skipped + parked + lost", function () {
      const sent = [
        kinesisEvent(1, SCORED, "gu-a"),
        kinesisEvent(2, skipped("filtered"), "gu-a"),
        kinesisEvent(3, parkedAs("globalUserId with #")),
        kafkaEvent(4, 0, 1, SCORED, "gu-b"),
        kafkaEvent(5, 0, 2, skipped("notScorable"), "gu-b"),
        kafkaEvent(6, 0, 3, parkedAs("value is not JSON")),
        kafkaEvent(7, 0, 4, SCORED, "gu-lost"),
      ];
      const ledger = ledgerOf({
        sent: [...sent].reverse(),
        scores: new Map([
          ["gu-a", score(0.1)],
          ["gu-b", score(0.2)],
        ]),
        parked: [
          { source: VF, records: [sequenceNumber(3)] },
          { source: TOPIC, records: ["0@3"] },
        ],
      });
      assert.deepEqual(
        ledger.entries.map((entry) => entry.seq),
        [1, 2, 3, 4, 5, 6, 7],
      );
      assert.deepEqual(ledger.bySource, {
        vf: { in: 3, scored: 1, skipped: 1, parked: 1, lost: 0 },
        kafka: { in: 4, scored: 1, skipped: 1, parked: 1, lost: 1 },
      });
      assert.deepEqual(ledger.totals, { in: 7, scored: 2, skipped: 2, parked: 2, lost: 1, unexpected: 0, balanced: false });
      assert.deepEqual(ledger.skipped, { filtered: 1, notScorable: 1 });

      const text = renderLedger(ledger);
      assert.match(text, /^input\s+in\s+scored\s+skipped\s+parked\s+LOST$/m);
      assert.match(text, /^kafka\s+4\s+1\s+1\s+1\s+1$/m);
      assert.match(text, /^total\s+7\s+2\s+2\s+2\s+1$/m);
      assert.match(text, /^LOST \(1\)$/m);
      assert.match(text, new RegExp(`#7 kafka ${TOPIC}-0@4 gu-lost login/success: fan not scored, record not parked`));
      assert.match(text, /NOT OK: 7 in = 2 scored \+ 2 skipped \+ 2 parked \+ 1 lost/);

      const json = JSON.parse(ledgerJson(ledger));
      assert.deepEqual(json.totals, ledger.totals);
      assert.equal(json.entries.length, 7);
      assert.equal("entries" in JSON.parse(ledgerJson(ledger, { entries: false })), false);
    });

    it("balance for a generated run whose system did what the rules say, and show the one record taken away", async function () {
      let position = 0;
      const generator = createGenerator({
        rate: 2000,
        seed: "ledger",
        fans: 300,
        badRate: 0.1,
        unknownFanShare: 0.05,
        kafkaTopic: TOPIC,
        streams: { vf: VF, purchase: PURCHASE },
        putKinesis: async (_stream, records) =>
          records.map(() => ({ sequenceNumber: sequenceNumber(position++), shardId: SHARD })),
        produceKafka: async (_topic, records) => records.map(() => ({ partition: 0, offset: position++ })),
      });
      await generator.tick(2000);
      await generator.flush();
      const sent = generator.sent();
      // What a faithful system leaves: a score for every fan with scorable activity, every bad record parked.
      const scored = new Set(sent.filter((event) => event.expected.outcome === "scored").map((event) => event.globalUserId!));
      const scores = new Map([...scored].map((fan) => [fan, score(0.5)]));
      const bad = sent.filter((event) => event.expected.outcome === "parked");
      const parkedOf = (events: readonly SentEvent[]): ParkedRecords[] =>
        [VF, PURCHASE, TOPIC].map((source) => ({
          source,
          records: events
            .filter((event) => event.id.target === source)
            .map((event) => (source === TOPIC ? `${event.id.partition}@${event.id.offset}` : event.id.sequenceNumber!)),
        }));
      const ledger = reconcile({ sent, scores, parked: parkedOf(bad), expectedScore: () => 0.5 });
      assert.equal(ledger.ok, true, renderLedger(ledger));
      assert.deepEqual(
        [ledger.totals.in, ledger.totals.scored + ledger.totals.skipped + ledger.totals.parked, ledger.totals.lost],
        [4000, 4000, 0],
      );
      assert.equal(ledger.totals.parked, bad.length);

      const taken = bad[Math.floor(bad.length / 2)]!;
      const short = reconcile({ sent, scores, parked: parkedOf(bad.filter((event) => event !== taken)) });
      assert.deepEqual(
        short.lost.map((entry) => entry.seq),
        [taken.seq],
      );
      assert.equal(short.totals.balanced, false);
    });
  });

  it("reads the failure lines of the run's events, each with the input its function reads", function () {
    const events: LocalEvent[] = [
      {
        kind: "log",
        function: "enqueueFromPurchaseStream",
        line: { level: "WARN", message: "record failed", record: "49", reason: "purchase event is not as expected" },
      },
      {
        kind: "log",
        function: "lookupArai",
        line: { level: "WARN", message: "record failed", record: "m-1", reason: "ARAI lookup failed" },
      },
      { kind: "output", function: "lookupArai", text: "record failed" },
    ];
    assert.deepEqual(
      workerFailuresFrom(events, (fn) => ({ enqueueFromPurchaseStream: PURCHASE })[fn]),
      [
        { function: "enqueueFromPurchaseStream", record: "49", reason: "purchase event is not as expected", source: PURCHASE },
        { function: "lookupArai", record: "m-1", reason: "ARAI lookup failed" },
      ],
    );
  });
});
