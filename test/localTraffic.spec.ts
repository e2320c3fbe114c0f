/**
 * The local system's traffic generator and live figures, without I/O: the generator's records
 * held against the real readers and the mappings' filters, its expected outcomes against the
 * documented rules, its pacing counted per tick on a fake clock, its determinism by seed; the
 * figures and the panel from scripted LocalEvents.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "../components/archive";
import { createDisplay, renderPanel, summaryLine } from "../tools/local/display";
import { createFigures, registeredFunctionOf } from "../tools/local/figures";
import { reasonGroup } from "../tools/local/text";
import {
  createGenerator,
  type Clock,
  eventsDue,
  fanPopulation,
  type GeneratorOptions,
  type KafkaEntry,
  type KinesisEntry,
  recordKeyOf,
  type SentEvent,
} from "../tools/local/traffic/generator";
import {
  type Draft,
  encodeKafka,
  expectedOutcome,
  NOT_SCORABLE_ACTIONS,
  SCORABLE_ACTIONS,
} from "../tools/local/traffic/payloads";
import type { LocalEvent } from "../tools/local/types";
import { createDemandChangeReader } from "../workers/enqueueFromDemandStream";
import { createUserActivityReader } from "../workers/enqueueFromActivityStream";
import { createPurchaseReader } from "../workers/enqueueFromPurchaseStream";
import { createSQJourneyReader } from "../workers/enqueueFromSQJourneyStream";
import { createVfLoginReader } from "../workers/enqueueFromVfStream";
import { WORKERS } from "../workers/registry";
import type { KinesisRecord } from "../workers/shared/runtime/records";
import { activityMessageSchema } from "../workers/shared/scoring/activity";
import { activityTime, planActivity } from "../workers/shared/scoring/enqueuePlan";
import { kafkaActivityTime, type KafkaRecord } from "../workers/shared/scoring/kafka";
import type { StreamReader } from "../workers/shared/scoring/streamReading";
import { deliversKinesisRecord } from "./support/eventFilter";
import { fixture } from "./support/fixtures";
import { type KinesisFixtureEvent, payloadOf, sequenceNumber } from "./support/streams";

const START = Date.parse("2026-12-01T10:00:00.000Z");
/** The readers' clock, far from any put time: a time taken from it would show. */
const NOW = new Date("2027-01-01T00:00:00.000Z");
const TOPIC = "user-activity-local";
const STREAMS = {
  vf: "vf-input-stream",
  demand: "dmnd-table-stream",
  purchase: "purchase-stream",
  sqJourney: "sq-journey-stream",
};

/** A clock whose sleep moves time on by exactly the time asked (yielding to the event loop, as a timer would). */
function fakeClock(): Clock {
  let now = START;
  return {
    now: () => now,
    sleep: (ms) => new Promise((resolve) => setImmediate(() => resolve(void (now += ms)))),
  };
}

interface Call {
  readonly target: string;
  readonly records: number;
  readonly at: number;
}

/** Sinks that keep every record by where it went, and answer with positions like the real ones. */
function capturingSinks(clock: Clock) {
  const kinesis = new Map<string, KinesisEntry>();
  const kafka = new Map<string, KafkaEntry>();
  const calls: Call[] = [];
  let position = 0;
  return {
    kinesis,
    kafka,
    calls,
    putKinesis: async (stream: string, records: readonly KinesisEntry[]) => {
      calls.push({ target: stream, records: records.length, at: clock.now() });
      return records.map((record) => {
        const seq = sequenceNumber(position++);
        kinesis.set(`${stream}/${seq}`, record);
        return { sequenceNumber: seq, shardId: "shardId-000000000000" };
      });
    },
    produceKafka: async (topic: string, records: readonly KafkaEntry[]) => {
      calls.push({ target: topic, records: records.length, at: clock.now() });
      return records.map((record) => {
        const offset = position++;
        kafka.set(`${topic}-${offset % 3}@${offset}`, record);
        return { partition: offset % 3, offset };
      });
    },
  };
}

function generatorWith(options: Partial<GeneratorOptions> = {}) {
  const clock = fakeClock();
  const sinks = capturingSinks(clock);
  const generator = createGenerator({
    rate: 2000,
    seed: "spec",
    fans: 200,
    kafkaTopic: TOPIC,
    streams: STREAMS,
    putKinesis: sinks.putKinesis,
    produceKafka: sinks.produceKafka,
    clock,
    ...options,
  });
  return { generator, sinks, clock };
}

const READERS: Record<Exclude<SentEvent["source"], "kafka">, { worker: keyof typeof WORKERS; read: StreamReader }> = {
  vf: { worker: "enqueueFromVfStream", read: createVfLoginReader() },
  demand: { worker: "enqueueFromDemandStream", read: createDemandChangeReader() },
  purchase: { worker: "enqueueFromPurchaseStream", read: createPurchaseReader() },
  sqJourney: { worker: "enqueueFromSQJourneyStream", read: createSQJourneyReader() },
};

/** The record Lambda hands the worker for a put record; it arrived half a second after its put. */
function kinesisRecordOf(event: SentEvent, entry: KinesisEntry): KinesisRecord {
  return {
    kinesis: {
      data: entry.data.toString("base64"),
      sequenceNumber: event.id.sequenceNumber!,
      partitionKey: entry.partitionKey,
      approximateArrivalTimestamp: event.at / 1000 + 0.5,
    },
    eventSourceARN: `arn:aws:kinesis:us-east-1:000000000000:stream/${event.id.target}`,
  };
}

function kafkaRecordOf(event: SentEvent, entry: KafkaEntry): KafkaRecord {
  return {
    topic: event.id.target,
    partition: event.id.partition!,
    offset: event.id.offset!,
    timestamp: entry.timestamp + 500,
    timestampType: "CREATE_TIME",
    key: Buffer.from(entry.key, "utf8").toString("base64"),
    value: entry.value === null ? null : entry.value.toString("base64"),
  };
}

/** What the worker's reader should make of a record that reaches it, by the event's expected outcome. */
function readingKindOf(event: SentEvent): "activity" | "skip" | "fail" {
  const { expected } = event;
  if (expected.outcome === "parked") return "fail";
  if (expected.outcome === "scored" || expected.reason === "fanUnknown") return "activity";
  return "skip";
}

/** Holds one Kinesis event against its mapping's filter and its worker's reader. */
function checkKinesis(event: SentEvent, entry: KinesisEntry) {
  const { worker, read } = READERS[event.source as keyof typeof READERS];
  const trigger = WORKERS[worker].trigger as { filter: object };
  const record = kinesisRecordOf(event, entry);
  const label = `#${event.seq} ${event.source} ${event.kind}`;
  const delivered = deliversKinesisRecord(trigger.filter, record);
  const filtered = event.expected.outcome === "skipped" && event.expected.reason === "filtered";
  assert.equal(delivered, !filtered, `${label}: delivered by the ${worker} filter`);
  if (!delivered) return;
  const reading = read(record);
  assert.equal(reading.kind, readingKindOf(event), `${label}: ${JSON.stringify(reading)}`);
  if (reading.kind !== "activity") return;
  assert.equal(reading.globalUserId, event.globalUserId, label);
  // The event's own time is when it was put, as the activity's message carries it.
  const planned = planActivity(event.source, event.source, record, reading, NOW);
  assert.equal(
    activityTime(reading.timestamp, record.kinesis.approximateArrivalTimestamp, NOW),
    new Date(event.at).toISOString(),
  );
  assert.ok(activityMessage.safeParse(planned.message).success, label);
}

const readUserActivity = createUserActivityReader();
const activityMessage = activityMessageSchema();

function checkKafka(event: SentEvent, entry: KafkaEntry) {
  const record = kafkaRecordOf(event, entry);
  const reading = readUserActivity(record);
  const label = `#${event.seq} kafka ${event.kind}`;
  assert.equal(reading.kind, readingKindOf(event), `${label}: ${JSON.stringify(reading)}`);
  if (reading.kind !== "activity") return;
  assert.equal(reading.globalUserId, event.globalUserId, label);
  assert.equal(kafkaActivityTime(reading.timestamp, record.timestamp, NOW), new Date(event.at).toISOString(), label);
}

/** `source outcome[:reason]` of each event, counted. */
function outcomesOf(events: readonly SentEvent[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const event of events) {
    const { expected } = event;
    const key = `${event.source} ${expected.outcome}${expected.outcome === "skipped" ? `:${expected.reason}` : ""}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

describe("the local system's traffic", function () {
  describe("records", function () {
    it("are accepted by the worker's reader where they reach it, and filtered or failed as classified otherwise", async function () {
      const { generator, sinks } = generatorWith({ badRate: 0.2, unknownFanShare: 0.05, seed: "readers" });
      await generator.tick(4000);
      await generator.flush();
      const sent = generator.sent();
      assert.equal(sent.length, 8000);
      for (const event of sent) {
        if (event.source === "kafka") checkKafka(event, sinks.kafka.get(recordKeyOf(event.id)!)!);
        else checkKinesis(event, sinks.kinesis.get(`${event.id.target}/${event.id.sequenceNumber}`)!);
      }
      const outcomes = outcomesOf(sent);
      // Every case of the documented rules is among them.
      for (const expected of [
        "kafka scored",
        "kafka skipped:notScorable",
        "kafka skipped:failedResult",
        "kafka skipped:fanUnknown",
        "kafka parked",
        ...["vf", "demand", "purchase", "sqJourney"].flatMap((source) => [
          `${source} scored`,
          `${source} skipped:filtered`,
          `${source} skipped:fanUnknown`,
          `${source} parked`,
        ]),
      ]) {
        assert.ok((outcomes.get(expected) ?? 0) > 0, `no ${expected} among ${[...outcomes.keys()].join(", ")}`);
      }
      const kinds = new Set(sent.map((event) => event.kind));
      for (const kind of ["demand INSERT", "demand MODIFY", "demand REMOVE", "purchase SUCCESS", "vfLogin"])
        assert.ok(kinds.has(kind), kind);
      for (const bad of ["undecodable/truncatedJson", "undecodable/plainText", "undecodable/notUtf8", "undecodable/tombstone"]) {
        assert.ok(kinds.has(`bad ${bad}`), bad);
      }
      for (const bad of ["noFanId/missing", "invalidFanId/whitespace", "invalidFanId/hash", "invalidFanId/tooLong"]) {
        assert.ok(kinds.has(`bad ${bad}`), bad);
      }
    });

    it("carry the fixtures' fields, for another fan and time", async function () {
      const { generator, sinks } = generatorWith({ badRate: 0, seed: "fields" });
      await generator.tick(1000);
      await generator.flush();
      const fieldsOf = (value: unknown) => Object.keys(value as object).sort();
      const fixtures: Record<string, string> = {
        vf: "kinesis-vf-login.json",
        demand: "kinesis-demand-insert.json",
        purchase: "kinesis-purchase-success.json",
        sqJourney: "kinesis-sq-journey.json",
      };
      for (const [source, file] of Object.entries(fixtures)) {
        const template = payloadOf(fixture<KinesisFixtureEvent>(file).Records[0]!) as Record<string, unknown>;
        const event = generator.sent().find((sent) => sent.source === source && sent.expected.outcome === "scored")!;
        const payload = JSON.parse(sinks.kinesis.get(`${event.id.target}/${event.id.sequenceNumber}`)!.data.toString("utf8"));
        assert.deepEqual(fieldsOf(payload), fieldsOf(template), source);
        if (source === "demand")
          assert.deepEqual(fieldsOf(payload.dynamodb.NewImage), fieldsOf((template.dynamodb as { NewImage: object }).NewImage));
        if (source === "purchase") assert.deepEqual(fieldsOf(payload.customer), fieldsOf(template.customer));
      }
      const kafkaTemplate = fixture<{ records: Record<string, { value: string }[]> }>("kafka-user-activity.json").records[
        `user-activity-qa1-0`
      ]![0]!;
      const activity = generator.sent().find((sent) => sent.source === "kafka")!;
      const value = JSON.parse(sinks.kafka.get(recordKeyOf(activity.id)!)!.value!.toString("utf8"));
      assert.deepEqual(fieldsOf(value), fieldsOf(JSON.parse(Buffer.from(kafkaTemplate.value, "base64").toString("utf8"))));
    });

    it("score a Kafka activity exactly when its result is success and its action one docs/rules.md lists", function () {
      const rules = fs.readFileSync(path.join(projectRoot(), "docs", "rules.md"), "utf8");
      const section = rules.slice(rules.indexOf("## Scorable activities"), rules.indexOf("## ARAI response"));
      const documented = [...section.matchAll(/`([a-z_]+)`/g)]
        .map((match) => match[1])
        .filter((name) => name !== "result" && name !== "action");
      assert.deepEqual([...SCORABLE_ACTIONS].sort(), documented.sort());
      const read = createUserActivityReader();
      let seq = 0;
      for (const action of [...SCORABLE_ACTIONS, ...NOT_SCORABLE_ACTIONS]) {
        for (const result of ["success", "failure"]) {
          const draft: Draft = {
            seq: seq++,
            salt: seq,
            role: "kafka",
            kind: "activity",
            globalUserId: "gu-0badc0de",
            action,
            result,
          };
          const expected = expectedOutcome(draft, new Set());
          const entry = encodeKafka(draft, START);
          const reading = read({
            topic: TOPIC,
            partition: 0,
            offset: seq,
            timestamp: START,
            value: entry.value!.toString("base64"),
          });
          const documentedScorable = result === "success" && documented.includes(action);
          assert.equal(expected.outcome, documentedScorable ? "scored" : "skipped", `${action}/${result}`);
          assert.equal(reading.kind, documentedScorable ? "activity" : "skip", `${action}/${result}: ${JSON.stringify(reading)}`);
        }
      }
    });

    it("name no fan when a bad record's id breaks the documented rule (1–128 characters, no whitespace or #)", async function () {
      const { generator, sinks } = generatorWith({ badRate: 1, mix: { sqJourney: 1 }, seed: "bad ids" });
      await generator.tick(500);
      await generator.flush();
      const invalid = generator.sent().filter((event) => event.kind.startsWith("bad invalidFanId"));
      assert.ok(invalid.length > 50);
      for (const event of invalid) {
        const id = JSON.parse(sinks.kinesis.get(`${event.id.target}/${event.id.sequenceNumber}`)!.data.toString("utf8"))
          .globalUserId as string;
        const valid = id.length >= 1 && id.length <= 128 && !/[\s#]/.test(id);
        assert.equal(valid, false, id);
        assert.equal(event.globalUserId, undefined);
        assert.equal(event.expected.outcome, "parked");
      }
    });
  });

  describe("a drill's traffic", function () {
    it("comes from fans of its own prefix, and puts a producer's extra fields in every payload", async function () {
      const extraFields = { producerRevision: 7, routing: { lane: "blue" } };
      const { generator, sinks } = generatorWith({ fanPrefix: "drill-x-", extraFields, badRate: 0 });
      assert.ok(generator.fans.every((fan) => /^drill-x-[0-9a-f]{8}$/.test(fan)));
      await generator.tick(500);
      await generator.flush();
      const sent = generator.sent();
      assert.ok(sent.length > 500);
      for (const event of sent) {
        assert.ok(event.globalUserId?.startsWith("drill-x-"), event.kind);
        const entry =
          event.source === "kafka"
            ? sinks.kafka.get(`${event.id.target}-${event.id.partition}@${event.id.offset}`)!.value!
            : sinks.kinesis.get(`${event.id.target}/${event.id.sequenceNumber}`)!.data;
        const payload = JSON.parse(entry.toString("utf8")) as Record<string, unknown>;
        assert.deepEqual([payload.producerRevision, payload.routing], [7, { lane: "blue" }], event.kind);
      }
    });

    it("turns bad from the next event drawn when the bad rate changes, and good again", async function () {
      const { generator } = generatorWith({ badRate: 0 });
      await generator.tick(200);
      generator.setBadRate(1);
      await generator.tick(400);
      generator.setBadRate(0);
      await generator.tick(600);
      await generator.flush();
      const bad = (from: number, to: number) =>
        generator
          .sent()
          .filter((event) => event.seq >= from && event.seq < to)
          .map((event) => event.kind.startsWith("bad "));
      assert.ok(bad(0, 400).every((isBad) => !isBad));
      assert.ok(bad(400, 800).every((isBad) => isBad));
      assert.ok(bad(800, 1200).every((isBad) => !isBad));
    });
  });

  describe("fans", function () {
    it("are a seed's population, a share of them unknown to the accounts service and never expected scored", async function () {
      const population = fanPopulation("spec", 1000, 0.05);
      assert.equal(new Set(population.fans).size, 1000);
      assert.equal(population.unknownFans.length, 50);
      assert.ok(population.unknownFans.every((fan) => population.fans.includes(fan) && /^gu-[0-9a-f]{8}$/.test(fan)));
      assert.deepEqual(fanPopulation("spec", 1000, 0.05), population);

      const { generator } = generatorWith({ fans: 1000, unknownFanShare: 0.05 });
      assert.deepEqual(generator.unknownFans, population.unknownFans);
      await generator.tick(5000);
      await generator.flush();
      const unknown = new Set(generator.unknownFans);
      const ofUnknown = generator.sent().filter((event) => event.globalUserId !== undefined && unknown.has(event.globalUserId));
      assert.ok(ofUnknown.length > 0);
      assert.ok(ofUnknown.every((event) => event.expected.outcome === "skipped"));
      assert.ok(ofUnknown.some((event) => event.expected.outcome === "skipped" && event.expected.reason === "fanUnknown"));
    });

    it("act in bursts: some fan acts many times within a few dozen events", async function () {
      const { generator } = generatorWith({ fans: 5000, bursts: { chance: 0.05, minEvents: 6, maxEvents: 10 } });
      await generator.tick(1000);
      await generator.flush();
      const sent = generator.sent();
      const window = 30;
      let most = 0;
      for (let start = 0; start + window <= sent.length; start++) {
        const counts = new Map<string, number>();
        for (const event of sent.slice(start, start + window)) {
          if (event.globalUserId) counts.set(event.globalUserId, (counts.get(event.globalUserId) ?? 0) + 1);
        }
        most = Math.max(most, ...counts.values());
      }
      // Among 5,000 fans picked at random, four events of one fan in 30 would be rare.
      assert.ok(most >= 4, `at most ${most} events of a fan in ${window}`);
    });

    it("tell the accounts service, before the put, what each fan expected to be scored did", async function () {
      const clock = fakeClock();
      const announced: { fan: string; at: number; action: string }[] = [];
      const putSoFar: number[] = [];
      const sinks = capturingSinks(clock);
      const generator = createGenerator({
        rate: 2000,
        seed: "activity",
        fans: 100,
        kafkaTopic: TOPIC,
        streams: STREAMS,
        clock,
        onActivity: (fan, activity) => void announced.push({ fan, at: activity.at, action: activity.action }),
        putKinesis: async (stream, records) => {
          putSoFar.push(announced.length);
          return sinks.putKinesis(stream, records);
        },
        produceKafka: async (topic, records) => {
          putSoFar.push(announced.length);
          return sinks.produceKafka(topic, records);
        },
      });
      await generator.tick(500);
      await generator.flush();
      const scored = generator.sent().filter((event) => event.expected.outcome === "scored");
      assert.deepEqual(
        announced.map(({ fan, at }) => `${fan}@${at}`).sort(),
        scored.map((event) => `${event.globalUserId}@${event.at}`).sort(),
      );
      assert.ok(
        announced.some((entry) => entry.action === "vfLogin") &&
          announced.some((entry) => SCORABLE_ACTIONS.includes(entry.action)),
      );
      // Each put came after its own announcements.
      assert.ok(putSoFar.every((count) => count > 0));
    });
  });

  describe("pacing", function () {
    it("sends the events due at the rate each tick, in batches of at most 500 records per PutRecords", async function () {
      assert.deepEqual(
        [0, 50, 100, 150, 1000].map((ms) => eventsDue(30, ms)),
        [0, 1, 3, 4, 30],
      );
      const { generator, sinks } = generatorWith({ rate: 2000 });
      const stats = await generator.run({ durationMs: 1000 });
      assert.deepEqual(stats, { drawn: 2000, sent: 2000, refused: 0, puts: sinks.calls.length });
      const perTick = new Map<number, number>();
      for (const call of sinks.calls) perTick.set(call.at, (perTick.get(call.at) ?? 0) + call.records);
      assert.deepEqual(
        [...perTick.keys()],
        Array.from({ length: 20 }, (_, index) => START + (index + 1) * 50),
      );
      assert.deepEqual([...perTick.values()], Array(20).fill(100));
      // Each event is timed by its put.
      assert.ok(generator.sent().every((event) => perTick.has(event.at)));

      const heavy = generatorWith({ rate: 40_000, mix: { vf: 1 } });
      await heavy.generator.run({ durationMs: 100 });
      assert.deepEqual(
        heavy.sinks.calls.map((call) => call.records),
        [500, 500, 500, 500, 500, 500, 500, 500],
      );
    });

    it("stops on stop() or the signal, once what was queued is put", async function () {
      const { generator, sinks, clock } = generatorWith({ rate: 1000 });
      const running = generator.run();
      while (sinks.calls.length < 10) await new Promise((resolve) => setImmediate(resolve));
      generator.stop();
      const stats = await running;
      assert.equal(stats.sent, generator.sent().length);
      assert.equal(stats.drawn, stats.sent);

      const controller = new AbortController();
      const other = generatorWith({ rate: 1000, clock });
      const aborted = other.generator.run({ signal: controller.signal });
      controller.abort();
      await aborted;
    });

    it("leaves out what an input refused or a put that threw, and reports what each input took", async function () {
      const clock = fakeClock();
      const reported: LocalEvent[] = [];
      const errors: string[] = [];
      let calls = 0;
      const generator = createGenerator({
        rate: 1000,
        mix: { vf: 1 },
        streams: { vf: STREAMS.vf },
        clock,
        report: (event) => reported.push(event),
        onError: (error, target, records) => errors.push(`${target} ${records} ${(error as Error).message}`),
        putKinesis: async (_stream, records) => {
          if (++calls === 2) throw new Error("stream is down");
          return records.map((_, index) =>
            index === 0 ? { error: "ProvisionedThroughputExceededException" } : { sequenceNumber: `${calls}-${index}` },
          );
        },
      });
      const stats = await generator.run({ durationMs: 150 });
      assert.deepEqual(stats, { drawn: 150, sent: 98, refused: 52, puts: 3 });
      assert.deepEqual(errors, ["vf-input-stream 50 stream is down"]);
      assert.deepEqual(reported, [
        { kind: "input", source: "vf-input-stream", count: 49 },
        { kind: "input", source: "vf-input-stream", count: 49 },
      ]);
    });

    it("sends nothing to an input left out, and refuses a run with no input", async function () {
      const { generator } = generatorWith({
        streams: { vf: STREAMS.vf, purchase: STREAMS.purchase },
        mix: { kafka: 2, vf: 1, purchase: 0, demand: 1 },
      });
      await generator.tick(1000);
      await generator.flush();
      assert.deepEqual([...new Set(generator.sent().map((event) => event.source))].sort(), ["kafka", "vf"]);
      assert.throws(() => createGenerator({ rate: 10, streams: {} }), /no input/);
      assert.throws(() => createGenerator({ rate: 10, kafkaTopic: TOPIC }), /without produceKafka/);
    });
  });

  describe("determinism", function () {
    const shape = (event: SentEvent) => ({
      seq: event.seq,
      source: event.source,
      kind: event.kind,
      globalUserId: event.globalUserId,
      key: event.id.key,
      expected: event.expected,
    });

    it("draws the same events from the same seed, however the ticks fall, and others from another seed", async function () {
      const once = generatorWith({ seed: 42, badRate: 0.1 });
      await once.generator.tick(1000);
      await once.generator.flush();
      const inTicks = generatorWith({ seed: 42, badRate: 0.1 });
      await inTicks.generator.run({ durationMs: 1000 });
      assert.deepEqual(inTicks.generator.sent().map(shape), once.generator.sent().map(shape));
      // At the same times, the same bytes.
      const again = generatorWith({ seed: 42, badRate: 0.1 });
      await again.generator.tick(1000);
      await again.generator.flush();
      assert.deepEqual([...again.sinks.kinesis.values()], [...once.sinks.kinesis.values()]);
      assert.deepEqual([...again.sinks.kafka.values()], [...once.sinks.kafka.values()]);

      const other = generatorWith({ seed: 43, badRate: 0.1 });
      await other.generator.tick(1000);
      await other.generator.flush();
      assert.notDeepEqual(other.generator.sent().map(shape), once.generator.sent().map(shape));
    });
  });
});

describe("the local system's figures", function () {
  /** A Powertools line as a worker writes it. */
  const log = (fn: string, level: string, message: string, fields: Record<string, unknown> = {}): LocalEvent => ({
    kind: "log",
    function: fn,
    line: { level, message, service: fn, timestamp: "2026-12-01T10:00:00.000Z", ...fields },
  });
  const failed = (fn: string, record: unknown, reason: string) => log(fn, "WARN", "record failed", { record, reason });
  const VF_MAPPING = "enqueueFromVfStream:vf-input-stream";

  function scripted() {
    let now = START;
    const figures = createFigures({
      now: () => now,
      queueDepths: async () => ({ "scoring-stream-failures-sqs": 3, "acct-activity-dlq": 0 }),
    });
    const events: LocalEvent[] = [
      { kind: "input", source: "vf-input-stream", count: 120 },
      { kind: "input", source: "user-activity-local", count: 40 },
      { kind: "filtered", mapping: VF_MAPPING, count: 20 },
      { kind: "delivered", mapping: VF_MAPPING, count: 60 },
      { kind: "invocation", function: "enqueueFromVfStream", requestId: "req-1", coldStart: true, ms: 900, outcome: "ok" },
      log("enqueueFromVfStream", "INFO", "batch enqueued", {
        records: 60,
        activities: 54,
        sent: 54,
        skipped: 2,
        failed: 4,
        sendCalls: 6,
      }),
      failed(
        "enqueueFromVfStream",
        "4965001",
        "VF login event is not as expected: globalUserId: expected a globalUserId (no whitespace or #)",
      ),
      failed("enqueueFromVfStream", "4965002", "VF login event is not as expected: globalUserId: Invalid input"),
      failed("enqueueFromVfStream", "4965003", "data is not JSON (Unexpected token o in JSON at position 1)"),
      failed(
        "enqueueFromActivityStream",
        { partition: "user-activity-local-0", offset: 7 },
        "value is null (a tombstone), not an activity",
      ),
      // A batch whose invocation fails gives its records back; one not yet invoked is in flight.
      { kind: "delivered", mapping: VF_MAPPING, count: 30 },
      {
        kind: "invocation",
        function: "enqueueFromVfStream",
        requestId: "req-2",
        coldStart: false,
        ms: 100,
        outcome: "error",
        error: "boom",
      },
      { kind: "delivered", mapping: VF_MAPPING, count: 10 },
      { kind: "parked", mapping: VF_MAPPING, destination: "scoring-stream-failures-sqs", count: 4 },
      { kind: "delivered", mapping: "lookupArai:on-demand-scoring-sqs", count: 10 },
      { kind: "invocation", function: "lookupArai", requestId: "req-3", coldStart: true, ms: 300, outcome: "timeout" },
      { kind: "delivered", mapping: "lookupArai:on-demand-scoring-sqs", count: 10 },
      { kind: "invocation", function: "lookupArai", requestId: "req-4", coldStart: true, ms: 200, outcome: "ok" },
      log("lookupArai", "WARN", "fan unknown to the accounts service; messages let go", { globalUserId: "gu-1", messages: 1 }),
      log("lookupArai", "INFO", "batch done", {
        messages: 10,
        fans: 8,
        fresh: 2,
        fetched: 6,
        written: 5,
        unknownFans: 1,
        failedMessages: 0,
      }),
      { kind: "delivered", mapping: "scoreUsers:fan-identity-table-stream", count: 5 },
      { kind: "delivered", mapping: "stagingScoreUsers:fan-identity-table-stream", count: 5 },
      { kind: "invocation", function: "scoreUsers", requestId: "req-5", coldStart: true, ms: 120, outcome: "ok" },
      log("scoreUsers", "ERROR", "model call failed; its fans' records fail", { status: 503 }),
      log("scoreUsers", "INFO", "batch scored", { records: 5, skipped: 0, fans: 5, scored: 4, modelCalls: 1, failedRecords: 1 }),
      failed("scoreUsers", "4966001", "not scored: scoring model answered 503"),
      { kind: "output", function: "scoreUsers", text: "Error: something went wrong\n    at main" },
    ];
    events.forEach(figures.report);
    now += 61_000;
    return figures;
  }

  it("count inputs, records per worker, in flight, invocations and failures by reason from what the workers report", function () {
    const snapshot = scripted().snapshot();
    assert.equal(snapshot.elapsedMs, 61_000);
    assert.deepEqual(snapshot.sources, { "vf-input-stream": 120, "user-activity-local": 40 });
    assert.deepEqual(snapshot.mappings[VF_MAPPING], { function: "enqueueFromVfStream", delivered: 100, filtered: 20, parked: 4 });
    assert.deepEqual(snapshot.workers.enqueueFromVfStream, {
      delivered: 100,
      records: 60,
      ok: 54,
      skipped: 2,
      failed: 4,
      parked: 0,
      inFlight: 10,
      invocations: 2,
      coldStarts: 1,
      errors: 1,
      timeouts: 0,
      crashes: 0,
      avgMs: 500,
      maxMs: 900,
      loggedErrors: 0,
      otherOutput: 0,
      details: { activities: 54, sent: 54 },
    });
    const lookup = snapshot.workers.lookupArai!;
    assert.deepEqual(
      [
        lookup.delivered,
        lookup.records,
        lookup.ok,
        lookup.failed,
        lookup.inFlight,
        lookup.errors,
        lookup.timeouts,
        lookup.coldStarts,
      ],
      [20, 10, 10, 0, 0, 1, 1, 2],
    );
    assert.deepEqual(lookup.details, { fans: 8, fresh: 2, fetched: 6, written: 5, unknownFans: 1 });
    const scorer = snapshot.workers.scoreUsers!;
    assert.deepEqual([scorer.records, scorer.ok, scorer.failed, scorer.loggedErrors, scorer.otherOutput], [5, 4, 1, 1, 1]);
    assert.deepEqual(scorer.details, { fans: 5, scored: 4 });
    // Delivered, never invoked yet.
    assert.equal(snapshot.workers.stagingScoreUsers!.inFlight, 5);
    assert.deepEqual(snapshot.failures, [
      { reason: "VF login event is not as expected", count: 2, functions: { enqueueFromVfStream: 2 } },
      { reason: "data is not JSON", count: 1, functions: { enqueueFromVfStream: 1 } },
      { reason: "not scored", count: 1, functions: { scoreUsers: 1 } },
      { reason: "value is null", count: 1, functions: { enqueueFromActivityStream: 1 } },
    ]);
    assert.deepEqual(snapshot.parked, { "scoring-stream-failures-sqs": 4 });
    assert.deepEqual(snapshot.parkedByWorkers, []);
    assert.deepEqual(JSON.parse(JSON.stringify(snapshot)), snapshot);
  });

  it("count the poison records the workers park, by reason, apart from failures, and not as ok", function () {
    const figures = createFigures();
    const parked = (fn: string, record: unknown, reason: string) => log(fn, "WARN", "record parked", { record, reason });
    for (const event of [
      { kind: "delivered", mapping: VF_MAPPING, count: 10 } as LocalEvent,
      log("enqueueFromVfStream", "INFO", "batch enqueued", {
        records: 10,
        activities: 7,
        sent: 7,
        skipped: 1,
        parked: 2,
        failed: 0,
      }),
      parked("enqueueFromVfStream", "4965001", "VF login event is not as expected: globalUserId: Invalid input"),
      parked("enqueueFromVfStream", "4965002", "VF login event is not as expected: globalUserId: expected a globalUserId"),
      parked(
        "enqueueFromActivityStream",
        { partition: "user-activity-local-0", offset: 7 },
        "value is not JSON (Unexpected token)",
      ),
      log("scoreUsers", "INFO", "batch scored", { records: 4, skipped: 0, parked: 1, fans: 3, scored: 3, failedRecords: 0 }),
    ])
      figures.report(event);
    const snapshot = figures.snapshot();
    assert.deepEqual([snapshot.workers.enqueueFromVfStream!.ok, snapshot.workers.enqueueFromVfStream!.parked], [7, 2]);
    assert.deepEqual([snapshot.workers.scoreUsers!.ok, snapshot.workers.scoreUsers!.parked], [3, 1]);
    assert.deepEqual(snapshot.parkedByWorkers, [
      { reason: "VF login event is not as expected", count: 2, functions: { enqueueFromVfStream: 2 } },
      { reason: "value is not JSON", count: 1, functions: { enqueueFromActivityStream: 1 } },
    ]);
    assert.deepEqual(snapshot.failures, []);
    // Neither a mapping's parking nor a failure: the mappings parked nothing.
    assert.deepEqual(snapshot.parked, {});
    const panel = renderPanel(snapshot);
    assert.ok(panel.some((line) => /^poison\s+by reason/.test(line)));
    assert.ok(panel.some((line) => /^\s+2\s+VF login event is not as expected\s+enqueueFromVfStream 2$/.test(line)));
    assert.match(summaryLine(snapshot), / · parked 3$/);
  });

  it("poll the queue depths, and say so when they cannot be read", async function () {
    const figures = scripted();
    assert.deepEqual(figures.snapshot().queues, {});
    await figures.refresh();
    assert.deepEqual(figures.snapshot().queues, { "scoring-stream-failures-sqs": 3, "acct-activity-dlq": 0 });
    const failing = createFigures({
      queueDepths: async () => {
        throw new Error("connection refused");
      },
    });
    await failing.refresh();
    assert.equal(failing.snapshot().queuesError, "connection refused");
  });

  it("time a score from the earliest activity of its fan no earlier score covered", function () {
    const figures = createFigures();
    figures.activityPut("gu-a", 1000);
    figures.activityPut("gu-a", 1500);
    figures.scoreWritten("gu-a", 1800); // 800, covering both
    figures.activityPut("gu-a", 2000);
    figures.activityPut("gu-a", 2600);
    figures.scoreWritten("gu-a", 2100); // 100; 2600 still uncovered
    figures.scoreWritten("gu-a", 2650); // 50
    figures.scoreWritten("gu-a", 2700); // nothing left to cover
    figures.scoreWritten("gu-b", 3000); // no activity of gu-b
    figures.activityPut("gu-c", 5000);
    figures.scoreWritten("gu-c", 4000); // older than the activity: not its score
    const { latency, scores } = figures.snapshot();
    assert.deepEqual(scores, { written: 6, withoutActivity: 3 });
    assert.deepEqual(latency, { samples: 3, p50: 100, p95: 800, p99: 800, max: 800 });

    const many = createFigures();
    for (let index = 1; index <= 200; index++) {
      many.activityPut(`gu-${index}`, 0);
      many.scoreWritten(`gu-${index}`, index * 10);
    }
    // Nearest rank: the p-th percentile of 200 samples is the (2p)-th smallest.
    assert.deepEqual(many.snapshot().latency, { samples: 200, p50: 1000, p95: 1900, p99: 1980, max: 2000 });
  });

  it("group failure reasons by their text before the details, ids left out", function () {
    assert.equal(reasonGroup("activity is not as expected: globalUserId: Invalid input"), "activity is not as expected");
    assert.equal(reasonGroup("value is not UTF-8"), "value is not UTF-8");
    assert.equal(
      reasonGroup("follows failed message 3f1c9a2e-77aa-4c1e-9b7e-0c4d2f5b8e11 in message group gu-7f3c2a91"),
      "follows failed message … in message group …",
    );
    assert.equal(reasonGroup(""), "(no reason)");
    assert.ok(reasonGroup("a ".repeat(80)).length <= 60);
  });

  it("take a mapping's function from the registry, the longest name it contains", function () {
    assert.equal(registeredFunctionOf("scoreUsers:fan-identity-table-stream"), "scoreUsers");
    assert.equal(registeredFunctionOf("stagingScoreUsers:fan-identity-table-stream"), "stagingScoreUsers");
    assert.equal(registeredFunctionOf("something-else"), undefined);
  });

  describe("on the panel", function () {
    const sink = (isTTY: boolean) => {
      const writes: string[] = [];
      return { writes, stream: { isTTY, columns: 200, write: (text: string) => writes.push(text) } };
    };

    it("redraw in place on a terminal, and end with the summary in the panel's place", function () {
      const { writes, stream } = sink(true);
      const figures = scripted();
      const display = createDisplay({ figures, stream, intervalMs: 60_000, durationMs: 122_000 });
      display.draw();
      display.draw();
      const panel = renderPanel(figures.snapshot(), 122_000);
      assert.ok(writes[0]!.startsWith("\x1b[2K"));
      assert.ok(writes[1]!.startsWith(`\x1b[${panel.length}A`), JSON.stringify(writes[1]!.slice(0, 10)));
      assert.match(panel[0]!, /50% 1:01\/2:02/);
      assert.ok(panel.some((line) => /^enqueueFromVfStream\s+100\s+60\s+54\s+2\s+4\s+0\s+10\s+2\s+1\s+1\s+0$/.test(line)));
      assert.ok(panel.some((line) => line.includes("VF login event is not as expected")));
      const summary = display.stop();
      assert.equal(writes.at(-2), `\x1b[${panel.length}A\x1b[J`);
      assert.equal(writes.at(-1), summary);
      assert.match(summary, /Local run: 1:01/);
      assert.match(summary, /enqueueFromVfStream:vf-input-stream\s+enqueueFromVfStream\s+100\s+20\s+4/);
    });

    it("print one plain line at a time elsewhere", function () {
      const { writes, stream } = sink(false);
      const figures = scripted();
      const display = createDisplay({ figures, stream, intervalMs: 60_000 });
      display.draw();
      display.draw();
      assert.deepEqual(writes, [`${summaryLine(figures.snapshot())}\n`]);
      assert.match(writes[0]!, /^\[1:01\] in 160 · records 75 · failed 5 · in flight 15 · errors 2 · scores 0/);
      assert.ok(!writes[0]!.includes("\x1b"));
      display.stop();
    });
  });
});
