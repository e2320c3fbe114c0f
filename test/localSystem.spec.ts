/**
 * The whole system running locally, wired from the program's plan (tools/local): a bounded run
 * that reconciles every input, the plan's settings changing what runs, a rescore that TTL sets
 * off on a sped-up clock, a worker killed in the middle of a batch, and nothing left running.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PutRecordsCommand } from "@aws-sdk/client-kinesis";
import { running } from "../tools/local/processes";
import { runLocal } from "../tools/local/run";
import { nameOfArn, readWiring } from "../tools/local/wiring";
import { WORKERS } from "../workers/registry";
import { type BootedSystem, bootLocal, until } from "./support/localSystem";
import { planStack, stackSection, planAfresh } from "./support/program";

const kafkaValue = (globalUserId: string, action = "login", result = "success") =>
  Buffer.from(
    JSON.stringify({ globalUserId, action, result, timestamp: new Date().toISOString(), metadata: { clientId: "fan-portal" } }),
  );

/** Puts JSON records on a planned input stream, all on one shard (in order). */
async function putJson(booted: BootedSystem, streamArn: string, payloads: readonly object[]): Promise<void> {
  await booted.system.kinesis.send(
    new PutRecordsCommand({
      StreamName: nameOfArn(streamArn),
      Records: payloads.map((payload) => ({ PartitionKey: "one-shard", Data: Buffer.from(JSON.stringify(payload)) })),
    }),
  );
}

const streamOf = (booted: BootedSystem, worker: string) => {
  const fn = booted.system.wiring.functions.find((candidate) => candidate.worker === worker)!;
  const mapping = booted.system.wiring.mappings.find((candidate) => candidate.functionName === fn.name)!;
  return mapping.kind === "kinesis" ? mapping.streamArn! : "";
};

const deliveredTo = (booted: BootedSystem, worker: string) => {
  const fn = booted.system.wiring.functions.find((candidate) => candidate.worker === worker)!;
  const names = new Set(booted.system.wiring.mappings.filter((m) => m.functionName === fn.name).map((m) => m.name));
  return booted.of("delivered").filter((event) => names.has(event.mapping));
};

describe("the local system", function () {
  describe("a bounded run of mixed traffic", function () {
    it("scores every scorable fan from its latest ARAI and accounts for every event, leaving nothing running", async function () {
      const plan = await planStack("qa1");
      const wiring = readWiring(plan.resources);
      // A message a loaded machine made fail once is received again after the scoring queues'
      // visibility timeout, and reconciled, as in Lambda. The plan's is six times lookupArai's
      // timeout (six minutes); the run's is the longest timeout of a function reading a queue,
      // the least Lambda accepts, so no message comes back while its invocation may still run.
      const redeliveryAfterSeconds = Math.max(
        ...wiring.mappings
          .filter((mapping) => mapping.kind === "sqs")
          .map((mapping) => wiring.functions.find((fn) => fn.name === mapping.functionName)!.timeoutSeconds),
      );
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "local-run-"));
      try {
        const outcome = await runLocal({
          resources: plan.resources,
          accountId: "210987654321",
          dataDir,
          durationMs: 20_000,
          rate: 120,
          redeliveryAfterSeconds,
          // Longer than that visibility timeout, a few times over: a limit, not a wait.
          drainTimeoutMs: 480_000,
          badRate: 0.05,
          fans: 400,
          seed: "bounded-run",
        });
        const ledger = outcome.ledger!;
        const busy = Object.entries(outcome.figures.workers).filter(([, worker]) => worker.inFlight > 0);
        assert.equal(
          outcome.drained,
          true,
          `the system did not finish its work: ${JSON.stringify({ busy, queues: outcome.figures.queues })}`,
        );
        assert.ok(ledger.totals.in >= 2_000, `only ${ledger.totals.in} events went in`);
        // What was lost first: it names the events, where the totals below only count them.
        assert.deepEqual(ledger.lost, []);
        assert.equal(ledger.totals.in, ledger.totals.scored + ledger.totals.skipped + ledger.totals.parked);
        assert.deepEqual(ledger.unexpected, []);
        assert.deepEqual(ledger.wrongScores, []);
        assert.deepEqual(ledger.unexpectedScores, []);
        assert.equal(ledger.uncheckedScores, 0);
        assert.deepEqual(outcome.staleScores, []);
        for (const reason of ["filtered", "notScorable", "failedResult", "fanUnknown"]) {
          assert.ok((ledger.skipped[reason] ?? 0) > 0, `no event skipped as ${reason}`);
        }
        const parked = ledger.entries.filter((entry) => entry.outcome === "parked");
        assert.ok(parked.length > 0);
        for (const entry of parked) assert.ok(entry.reason, `event #${entry.seq} parked without a reason`);
        assert.deepEqual(running(), [], "processes left running");
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });

  describe("settings changed in the program", function () {
    let booted: BootedSystem | undefined;
    afterEach(async function () {
      await booted?.stop();
      booted = undefined;
    });

    async function kafkaBatches(batchSize?: number): Promise<number[]> {
      const scoring = stackSection<{ kafka: Record<string, unknown> }>("qa1", "scoring");
      const changes = batchSize ? { scoring: { ...scoring, kafka: { ...scoring.kafka, batchSize } } } : {};
      booted = await bootLocal((await planStack("qa1", changes)).resources, {
        workers: ["enqueueFromActivityStream"],
        partitions: 1,
      });
      booted.system.kafka!.produce(
        Array.from({ length: 12 }, (_, index) => ({ key: "fan-batch", value: kafkaValue(`fan-batch-${index}`) })),
      );
      await until(
        "12 records enqueued",
        () => booted!.logs("enqueueFromActivityStream", "batch enqueued").reduce((n, l) => n + Number(l.sent), 0) === 12,
      );
      const batches = deliveredTo(booted, "enqueueFromActivityStream").map((event) => event.count);
      await booted.stop();
      booted = undefined;
      return batches;
    }

    it("delivers Kafka batches of the size the stack configures", async function () {
      assert.deepEqual(await kafkaBatches(), [12]);
      assert.deepEqual(await kafkaBatches(5), [5, 5, 2]);
    });

    it("filters a stream's records by the pattern the registry gives its mapping", async function () {
      const trigger = WORKERS.enqueueFromVfStream.trigger as { filter: object };
      const original = trigger.filter;
      const records = [
        { type: "vfLogin", globalUserId: "fan-filter-1", timestamp: new Date().toISOString() },
        { type: "vfSignup", globalUserId: "fan-filter-2", timestamp: new Date().toISOString() },
      ];
      const run = async () => {
        // Planned afresh: the filter comes from the registry, which this test changes.
        booted = await bootLocal((await planAfresh("qa1")).resources, { workers: ["enqueueFromVfStream"] });
        await putJson(booted, streamOf(booted, "enqueueFromVfStream"), records);
        await until("the batch", () => booted!.logs("enqueueFromVfStream", "batch enqueued").length > 0);
        const [summary] = booted.logs("enqueueFromVfStream", "batch enqueued");
        const filtered = booted.of("filtered").reduce((n, event) => n + event.count, 0);
        await booted.stop();
        booted = undefined;
        return { records: summary!.records, skipped: summary!.skipped, filtered };
      };
      assert.deepEqual(await run(), { records: 1, skipped: 0, filtered: 1 });
      try {
        trigger.filter = { data: { type: ["vfLogin", "vfSignup"] } };
        // The wider pattern lets the signup through; the worker skips it itself.
        assert.deepEqual(await run(), { records: 2, skipped: 1, filtered: 0 });
      } finally {
        trigger.filter = original;
      }
    });
  });

  describe("a rescore on a sped-up clock", function () {
    it("scores the fan again once TTL removes the rescore record, under the purchase's correlation id", async function () {
      const scoring = stackSection<{ arai: Record<string, unknown> }>("qa1", "scoring");
      // No freshness window: the rescore, seconds later in real time, fetches the ARAI again.
      const plan = await planStack("qa1", { scoring: { ...scoring, arai: { ...scoring.arai, freshnessSeconds: 0 } } });
      // Five days in about six seconds.
      const booted = await bootLocal(plan.resources, {
        workers: ["enqueueFromPurchaseStream", "lookupArai", "scoreUsers", "processRescoreEvents"],
        clockSpeed: 72_000,
        ttlIntervalMs: 200,
      });
      try {
        const fan = "fan-rescore-1";
        const correlationId = "ord-1-7d2e1c90";
        booted.standIns.accounts.recordActivity(fan, { action: "purchase", at: new Date().toISOString() });
        await putJson(booted, streamOf(booted, "enqueueFromPurchaseStream"), [
          {
            purchaseId: "ord-1",
            status: "SUCCESS",
            customer: { globalUserId: fan },
            timestamp: new Date().toISOString(),
            correlationId,
          },
        ]);
        const scores = () =>
          booted.changes.filter((change) => {
            const image = change.data.dynamodb.NewImage as { type?: { S?: string }; userId?: { S?: string } } | undefined;
            return image?.type?.S === "score" && image.userId?.S === fan;
          });
        await until("the first score", () => scores().length >= 1);
        await until("TTL's removal of the rescore record", () =>
          booted.changes.some(
            (change) =>
              change.data.eventName === "REMOVE" &&
              change.data.userIdentity?.principalId === "dynamodb.amazonaws.com" &&
              String((change.data.dynamodb.Keys as { userId: { S: string } }).userId.S).startsWith(`rescore#${fan}#`),
          ),
        );
        const scoredVersion = (change: (typeof booted.changes)[number]) =>
          Number((change.data.dynamodb.NewImage as { scoredAraiVersion: { N: string } }).scoredAraiVersion.N);
        // The rescore's ARAI write is araiVersion 2. On a loaded machine it can reach scoreUsers in
        // the same batch as the first write, which is then scored once, from the newer ARAI.
        await until("a score of the rescore's ARAI", () => scores().some((change) => scoredVersion(change) >= 2));
        const versions = scores().map(scoredVersion);
        assert.deepEqual(
          versions,
          [...new Set(versions)].sort((a, b) => a - b),
          `score versions ${versions.join(", ")}`,
        );
        assert.equal(versions.at(-1), 2);
        const [enqueued] = booted.logs("processRescoreEvents", "batch enqueued");
        assert.equal(enqueued?.sent, 1);

        // The id went through the local queue as a message attribute, on the purchase and on its rescore.
        // The table shows a write before the worker's log lines arrive: wait for them.
        await until(
          "the log lines of every score",
          () =>
            booted.logs("lookupArai", "activity received").length >= 2 &&
            booted.logs("scoreUsers", "score stored").length >= scores().length,
        );
        for (const change of scores()) {
          const image = change.data.dynamodb.NewImage as { lastActivity?: { M?: { correlationId?: { S?: string } } } };
          assert.equal(image.lastActivity?.M?.correlationId?.S, correlationId);
        }
        const idsIn = (worker: string, message: string) => booted.logs(worker, message).map((line) => line.correlationId);
        assert.deepEqual(idsIn("enqueueFromPurchaseStream", "activity enqueued"), [correlationId]);
        assert.deepEqual(idsIn("processRescoreEvents", "activity enqueued"), [correlationId]);
        // The purchase's message and the rescore's (and any redelivery): all under the attribute's id.
        for (const line of booted.logs("lookupArai", "activity received")) {
          assert.deepEqual([line.correlationId, line.correlationOrigin], [correlationId, "attribute"]);
        }
        for (const id of idsIn("scoreUsers", "score stored")) assert.equal(id, correlationId);
      } finally {
        await booted.stop();
      }
    });
  });

  describe("a worker killed in the middle of a batch", function () {
    it("loses nothing and repeats no side effect", async function () {
      const booted = await bootLocal((await planStack("qa1")).resources, {
        workers: ["enqueueFromActivityStream", "lookupArai", "scoreUsers"],
      });
      try {
        // Each function's first invocation has its container killed once it holds the batch.
        const killOnFirstDelivery = (worker: string) =>
          [...booted.system.pools.values()].find((candidate) => candidate.fn.worker === worker)!.killDuringInvocation().killed;
        const fans = Array.from({ length: 30 }, (_, index) => `fan-kill-${index}`);
        for (const fan of fans) booted.standIns.accounts.recordActivity(fan, { action: "login", at: new Date().toISOString() });
        const killed = Promise.all([killOnFirstDelivery("enqueueFromActivityStream"), killOnFirstDelivery("scoreUsers")]);
        booted.system.kafka!.produce(fans.map((fan) => ({ key: fan, value: kafkaValue(fan) })));
        await killed;
        const scoreWrites = (fan: string) =>
          booted.changes.filter((change) => {
            const image = change.data.dynamodb.NewImage as { type?: { S?: string }; userId?: { S?: string } } | undefined;
            return image?.type?.S === "score" && image.userId?.S === fan;
          }).length;
        await until("every fan scored", () => fans.every((fan) => scoreWrites(fan) > 0));
        const crashed = booted
          .of("invocation")
          .filter((event) => event.outcome === "crash")
          .map((event) => event.function);
        assert.ok(
          crashed.some((name) => name.endsWith("-enqueueFromActivityStream")),
          "enqueueFromActivityStream was not killed mid-batch",
        );
        assert.ok(
          crashed.some((name) => name.endsWith("-scoreUsers")),
          "scoreUsers was not killed mid-batch",
        );
        // Give retries time to show a duplicate, if any.
        await new Promise((resolve) => setTimeout(resolve, 3000));
        for (const fan of fans) assert.equal(scoreWrites(fan), 1, `${fan} was scored ${scoreWrites(fan)} times`);
        const looked = booted.logs("lookupArai", "batch done").reduce((n, line) => n + Number(line.messages), 0);
        assert.equal(looked, fans.length, "the queue delivered a duplicate activity message");
        const araiCalls = booted.standIns.accounts.server.requests.filter((request) => request.url.includes("/arai/")).length;
        assert.equal(araiCalls, fans.length);
      } finally {
        await booted.stop();
      }
    });
  });
});
