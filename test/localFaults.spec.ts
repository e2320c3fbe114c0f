/**
 * The faults the drills give the stand-ins (tools/local/services/fault.ts and each stand-in's
 * `setFault`), seen through the workers' own clients: an error status for a number of requests or
 * for a time, a late answer past the client's bound, too few predictions for one model endpoint,
 * Redis stopped or paused and back with its grades. And the drills' side-effect counts
 * (tools/local/drills/sideEffects.ts) from hand-built change records and log lines.
 */
import * as assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { countSideEffects, type SideEffectInput } from "../tools/local/drills/sideEffects";
import { type LocalAccounts, startAccounts } from "../tools/local/services/accounts";
import { type LocalModelServing, startModelServing } from "../tools/local/services/modelServing";
import { type LocalPersona, startPersona } from "../tools/local/services/persona";
import { answersPing, armGradeOf, startArmRedis } from "../tools/local/services/redis";
import type { TableChange } from "../tools/local/table/streamingDestination";
import { createAraiClient } from "../workers/lookupArai/araiClient";
import { createPersonaClient } from "../workers/checkLiveness/persona";
import { createModelClient } from "../workers/shared/scoring/modelServing";
import { rejectionOf } from "./support/assertions";

const CREDENTIALS = { username: "drill", password: "drill-password", clientId: "drill-client" };
const MODEL_URL = (endpoint: string) => `https://dbc.example.com/serving-endpoints/${endpoint}/invocations`;

describe("the stand-ins' faults", function () {
  describe("accounts", function () {
    let accounts: LocalAccounts;
    before(async function () {
      accounts = await startAccounts({ credentials: CREDENTIALS, issuer: "https://accounts.local", audience: "verified-fan" });
    });
    after(() => accounts?.close());
    afterEach(() => {
      accounts.setFault(undefined, "arai");
      accounts.setFault(undefined, "jwks");
    });

    const arai = (retries = 2) =>
      createAraiClient({
        urlTemplate: accounts.araiUrlTemplate,
        timeoutMs: 200,
        retries,
        baseDelayMs: 5,
        readCredentials: async () => CREDENTIALS,
      });

    it("throttles the ARAI API for the next N requests, with Retry-After, then answers", async function () {
      accounts.setFault({ status: 429, retryAfterSeconds: 1, requests: 2 }, "arai");
      const answer = await fetch(accounts.araiUrlTemplate.replace("{globalUserId}", "gu-1"));
      assert.equal(answer.status, 429);
      assert.equal(answer.headers.get("retry-after"), "1");
      // One throttled answer left: the client's first attempt gets it, its retry the ARAI.
      const lookup = await arai().fetchArai("gu-1");
      assert.equal(lookup.status, "found");
      assert.deepEqual(accounts.faultCounts("arai"), { seen: 3, faulted: 2 });
      await accounts.faultSpent("arai");
    });

    it("answers past the client's bound while a delay holds, and keeps the JWKS apart", async function () {
      accounts.setFault({ delayMs: 400 }, "arai");
      const error = await rejectionOf(arai(0).fetchArai("gu-2"));
      assert.match(error.message, /no answer within 200 ms/);
      const jwks = await fetch(accounts.jwksUrl);
      assert.equal(jwks.status, 200, "the JWKS has no fault of its own");
      accounts.setFault({ status: 503 }, "jwks");
      assert.equal((await fetch(accounts.jwksUrl)).status, 503);
      accounts.setFault(undefined, "jwks");
      assert.equal((await fetch(accounts.jwksUrl)).status, 200);
    });

    it("holds a fault for a time from its first hit, however late that comes", async function () {
      accounts.setFault({ status: 503, forMs: 300 }, "arai");
      await sleep(400);
      assert.equal(
        (await fetch(accounts.araiUrlTemplate.replace("{globalUserId}", "gu-3"))).status,
        503,
        "not spent before a hit",
      );
      await accounts.faultSpent("arai");
      assert.equal((await arai(0).fetchArai("gu-3")).status, "found");
    });
  });

  describe("model serving", function () {
    let model: LocalModelServing;
    before(async function () {
      model = await startModelServing({ token: "model-token" });
    });
    after(() => model?.close());
    afterEach(() => model.setFault(undefined));

    const client = (endpoint: string, timeoutMs = 500, retries = 0) =>
      createModelClient({
        url: model.localUrl(MODEL_URL(endpoint)),
        timeoutMs,
        retries,
        baseDelayMs: 5,
        service: "scoring model",
        readToken: async () => "model-token",
      });
    const records = [{ globalUserId: "gu-1", rawJson: "{}" }];

    it("answers one prediction too few on its endpoint only, which the client refuses", async function () {
      model.setFault({ wrongCount: true, endpoint: "fan-risk-qa1", requests: 1 });
      assert.deepEqual(await client("fan-risk-qa1-staging").predict(records), [0.377541], "another endpoint is unaffected");
      const error = await rejectionOf(client("fan-risk-qa1").predict(records));
      assert.match(error.message, /answer has 0 predictions for 1 records/);
      assert.deepEqual(await client("fan-risk-qa1").predict(records), [0.268941], "the fault is spent");
      assert.deepEqual(model.faultCounts(), { seen: 2, faulted: 1 });
    });

    it("answers 503 or late for its calls, each retried by the client", async function () {
      model.setFault({ status: 503, requests: 2 });
      assert.deepEqual(await client("fan-risk-qa1", 500, 2).predict(records), [0.268941]);
      model.setFault({ delayMs: 300, requests: 1 });
      assert.match((await rejectionOf(client("fan-risk-qa1", 100).predict(records))).message, /no answer within 100 ms/);
    });
  });

  describe("Persona", function () {
    let persona: LocalPersona;
    before(async function () {
      persona = await startPersona({
        apiKey: "persona-api-key",
        webhookSecrets: ["secret"],
        webhookUrl: "http://127.0.0.1:9/webhooks/persona",
        webhookAttempts: 1,
        webhookDelayMs: 10,
      });
    });
    after(() => persona?.close());

    it("refuses every inquiry while down, and opens none; opens one once back", async function () {
      const client = createPersonaClient({
        apiUrl: persona.url,
        timeoutMs: 500,
        baseDelayMs: 5,
        readApiKey: async () => "persona-api-key",
      });
      persona.setFault({ status: 503 });
      const error = await rejectionOf(client.createInquiry("itmpl_drill", "gu-1"));
      assert.match(error.message, /after 3 attempts: HTTP 503/);
      assert.equal(persona.inquiries.length, 0);
      assert.deepEqual(persona.faultCounts(), { seen: 3, faulted: 3 });
      persona.setFault(undefined);
      const inquiry = await client.createInquiry("itmpl_drill", "gu-1");
      assert.deepEqual(
        persona.inquiries.map((created) => [created.id, created.referenceId]),
        [[inquiry.id, "gu-1"]],
      );
    });
  });

  describe("Redis", function () {
    it("stops and comes back on its port with its grades; pauses and resumes", async function () {
      const redis = await startArmRedis();
      try {
        await redis.seedArmGrades(["gu-1"]);
        await redis.setFault("down");
        assert.equal(await answersPing(redis.port), false);
        await assert.rejects(redis.seedArmGrades(["gu-2"]), /is down/);
        await redis.setFault(undefined);
        assert.equal(await answersPing(redis.port), true);
        const { Redis } = await import("ioredis");
        const client = new Redis({ port: redis.port, host: "127.0.0.1" });
        try {
          assert.equal(JSON.parse((await client.get("user:gu-1"))!).arm_risk, armGradeOf("gu-1"), "seeded again");
        } finally {
          client.disconnect();
        }
        await redis.setFault("paused");
        assert.equal(await answersPing(redis.port, 300), false);
        await redis.setFault(undefined);
        assert.equal(await answersPing(redis.port), true);
      } finally {
        await redis.close();
      }
    });
  });
});

describe("the drills' side-effect counts", function () {
  const FAN = "drill-spec-0000000a";
  const at = (second: number) => Date.parse("2026-12-02T10:00:00Z") + second * 1000;
  const iso = (second: number) => new Date(at(second)).toISOString();

  /** A change record of the fan record: an ARAI write (version `arai`), or a score of `scored`. */
  function change(second: number, next: Record<string, string | number>, old?: Record<string, string | number>): TableChange {
    const image = (values: Record<string, string | number>) =>
      Object.fromEntries(
        Object.entries({ userId: FAN, globalUserId: FAN, ...values }).map(([name, value]) => [
          name,
          typeof value === "number" ? { N: String(value) } : { S: value },
        ]),
      );
    return {
      partitionKey: FAN,
      data: {
        awsRegion: "us-east-1",
        eventID: `e${second}`,
        eventName: old ? "MODIFY" : "INSERT",
        recordFormat: "application/json",
        tableName: "fan-identity",
        eventSource: "aws:dynamodb",
        dynamodb: {
          ApproximateCreationDateTime: at(second),
          Keys: { userId: { S: String(next.key ?? FAN) } },
          NewImage: image(next),
          ...(old ? { OldImage: image(old) } : {}),
          SizeBytes: 100,
        },
      },
    };
  }
  const input = (changes: TableChange[], more: Partial<SideEffectInput> = {}): SideEffectInput => ({
    fans: new Set([FAN]),
    changes,
    received: [],
    stored: [],
    freshnessMs: 300_000,
    inquiries: [],
    answeredSessions: new Map(),
    exports: [],
    runs: [],
    ...more,
  });
  const count = (effects: ReturnType<typeof countSideEffects>, prefix: string) =>
    effects.find((effect) => effect.effect.startsWith(prefix))!;

  it("counts a second ARAI write in the window as repeated when its lookup began after the first landed", function () {
    const writes = [
      change(1, { type: "activityData", araiVersion: 1, araiUpdatedAt: iso(1) }),
      change(9, { type: "activityData", araiVersion: 2, araiUpdatedAt: iso(9) }, { type: "score", araiVersion: 1 }),
    ];
    const lines = (began: number) => ({
      received: [{ function_request_id: "r2", timestamp: iso(began), globalUserId: FAN }],
      stored: [{ function_request_id: "r2", globalUserId: FAN, araiUpdatedAt: iso(9) }],
    });
    const late = count(countSideEffects(input(writes, lines(5))), "ARAI written");
    assert.deepEqual([late.total, late.repeated, late.concurrent], [2, [FAN], []]);
    const atOnce = count(countSideEffects(input(writes, lines(0.5))), "ARAI written");
    assert.deepEqual([atOnce.total, atOnce.repeated, atOnce.concurrent], [2, [], [FAN]]);
    const unknown = count(countSideEffects(input(writes)), "ARAI written");
    assert.deepEqual(unknown.repeated, [FAN], "a write no log line explains is repeated");
    const apart = count(countSideEffects(input(writes, { freshnessMs: 5000 })), "ARAI written");
    assert.deepEqual(apart.repeated, [], "a write after the window is a new burst's");
  });

  it("counts scores per ARAI version, FIFO messages per source record, rescores per day, inquiries and runs", function () {
    const effects = countSideEffects(
      input(
        [
          change(2, { type: "score", scoredAraiVersion: 1 }, { type: "activityData", araiVersion: 1 }),
          change(3, { type: "score", scoredAraiVersion: 1 }, { type: "score", scoredAraiVersion: 1 }),
          change(4, { type: "rescore", key: `rescore#${FAN}#2026-12-07` }),
          change(5, { type: "rescore", key: `rescore#${FAN}#2026-12-07` }),
        ],
        {
          received: [
            { globalUserId: FAN, correlationId: "c1", record: "m1", queue: "acct-activity-sqs.fifo" },
            { globalUserId: FAN, correlationId: "c1", record: "m1", queue: "acct-activity-sqs.fifo" },
            { globalUserId: FAN, correlationId: "c2", record: "m2", queue: "acct-activity-sqs.fifo" },
            { globalUserId: FAN, correlationId: "c2", record: "m3", queue: "acct-activity-sqs.fifo" },
            // A standard queue does not deduplicate: a record sent again is a second message there.
            { globalUserId: FAN, correlationId: "c3", record: "m4", queue: "on-demand-sqs" },
            { globalUserId: FAN, correlationId: "c3", record: "m5", queue: "on-demand-sqs" },
          ],
          inquiries: [
            { id: "inq_1", referenceId: FAN, templateId: "itmpl_x", status: "created", createdAt: iso(1) },
            { id: "inq_2", referenceId: FAN, templateId: "itmpl_x", status: "created", createdAt: iso(2) },
          ],
          answeredSessions: new Map([[FAN, new Set(["inq_1"])]]),
          exports: ["drills/date=2026-12-02/x/_SUCCESS"],
          runs: [1, 2].map((n) => ({
            workflow: "wf",
            runId: `wr_${n}`,
            runProperties: { key: "drills/date=2026-12-02/x/_SUCCESS" },
            startedAt: at(n),
          })),
        },
      ),
    );
    assert.deepEqual(count(effects, "score written").repeated, [], "a change that kept the version is no new score");
    assert.deepEqual(count(effects, "activity message").repeated, ["c2"], "a message delivered again is one message");
    assert.equal(count(effects, "activity message").total, 3);
    assert.deepEqual(count(effects, "rescore").repeated, [`rescore#${FAN}#2026-12-07`]);
    assert.deepEqual(count(effects, "Persona inquiry").repeated, [`${FAN} inq_2`]);
    assert.deepEqual(count(effects, "Glue run").repeated, ["wf drills/date=2026-12-02/x/_SUCCESS"]);
  });
});
