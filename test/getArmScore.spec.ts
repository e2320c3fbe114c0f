/**
 * getArmScore against real redis-server processes on loopback: standalone, a primary with a
 * replica, and a Redis Cluster of three masters with a replica each. Most cases go through the
 * real factory with the environment a deployment gives it; the score cases through
 * createGetArmScore with a reader pointed at the local server. Redis unreachable, stopped, or
 * taking connections without answering must end in an error naming the endpoint, never a hang
 * (the suite's timeout would catch one; nothing here asserts on elapsed time).
 */
import * as assert from "node:assert/strict";
import { Cluster } from "ioredis";
import { createGetArmScore, getArmScore, type ArmScoreAnswer } from "../workers/getArmScore";
import { getArmScoreContract } from "../workers/getArmScore/contract";
import { type ArmRedisReader, createArmRedisReader } from "../workers/getArmScore/redis";
import { createLogger } from "../workers/shared/runtime/logging";
import { environmentPerTest } from "./support/environment";
import { fixture } from "./support/fixtures";
import { captureLogs, type LogLine, linesAt } from "./support/logs";
import {
  freePort,
  type RedisClusterNodes,
  type RedisServer,
  type ReplicatedRedis,
  requireRedis,
  startBlackholedRedis,
  startCluster,
  startRedis,
  startReplicated,
} from "./support/redis";

const ENVIRONMENT = [
  "ARM_REDIS_URL",
  "ARM_REDIS_READ_ONLY_URL",
  "ARM_REDIS_CLUSTER_MODE",
  "ARM_REDIS_CONNECT_TIMEOUT_MS",
  "ARM_REDIS_COMMAND_TIMEOUT_MS",
] as const;

const FAN = "gu-7f3c2a91";
const APPSYNC_EVENT = fixture("appsync-resolver-get-arm-score.json");
const appsyncEvent = (globalUserId: string) => ({ ...APPSYNC_EVENT, arguments: { globalUserId } });

/** The record the risk team writes under user:<globalUserId>. */
const armRecord = (globalUserId: string, armRisk: unknown) =>
  JSON.stringify({
    global_user_id: globalUserId,
    arm_risk: armRisk,
    timestamp: "2026-11-24T06:00:00.000Z",
    score_date: "2026-11-24",
  });

type Handler = (event: unknown) => Promise<ArmScoreAnswer>;
type Outcome = { value: ArmScoreAnswer; error?: undefined } | { value?: undefined; error: Error };

/** Runs one event, collecting the log lines whether the handler resolves or rejects. */
async function invoke(handler: Handler, event: unknown): Promise<Outcome & { logs: LogLine[] }> {
  const { result, logs } = await captureLogs(() =>
    handler(event).then(
      (value): Outcome => ({ value }),
      (error: Error): Outcome => ({ error }),
    ),
  );
  return { ...result, logs };
}

/** Drops the connections earlier tests' handlers kept, so each test counts only its own. */
async function disconnectWorkers(servers: readonly RedisServer[]): Promise<void> {
  for (const server of servers.filter((candidate) => !candidate.stopped)) {
    for (const client of await server.clientsNamed(getArmScoreContract.name)) {
      await server.admin().client("KILL", "ID", client.id);
    }
  }
}

const sum = (values: readonly number[]) => values.reduce((total, value) => total + value, 0);
const getCalls = (servers: readonly RedisServer[]) => Promise.all(servers.map((server) => server.commandCalls("get")));

describe("getArmScore", function () {
  const deploy = environmentPerTest(ENVIRONMENT);

  /** A handler built by the real factory, with the environment a deployment gives it. */
  function deployed(vars: Partial<Record<(typeof ENVIRONMENT)[number], string>>): Handler {
    deploy(vars);
    return getArmScore.factory();
  }

  /** Asserts a rejection naming the worker, the fan and the endpoint, and an error log line saying the same. */
  function assertReadFailure(outcome: Outcome & { logs: LogLine[] }, endpoint: string, what: RegExp): Error {
    assert.ok(outcome.error instanceof Error, `expected a rejection, got ${JSON.stringify(outcome.value)}`);
    const { message } = outcome.error;
    assert.ok(message.startsWith(`getArmScore: ARM score of ${FAN} not read: GET user:${FAN} on ${endpoint}`), message);
    assert.match(message, what);
    const errors = linesAt(outcome.logs, "ERROR");
    assert.equal(errors.length, 1, JSON.stringify(outcome.logs));
    assert.equal(errors[0]!.message, "ARM score not read");
    assert.equal(errors[0]!.service, "getArmScore");
    assert.equal(errors[0]!.globalUserId, FAN);
    assert.ok(String(errors[0]!.redis).startsWith(endpoint), String(errors[0]!.redis));
    assert.match(String(errors[0]!.error), what);
    return outcome.error;
  }

  it("fails, saying how to install it, when redis-server is not installed", function () {
    const path = process.env.PATH;
    process.env.PATH = "/nonexistent";
    try {
      assert.throws(() => requireRedis(), /redis-server is not installed .*apt-get install -y redis-server/);
    } finally {
      process.env.PATH = path;
    }
  });

  describe("standalone Redis", function () {
    let redis: RedisServer;
    let reader: ArmRedisReader;
    let handler: Handler;

    before(async function () {
      redis = await startRedis();
      reader = createArmRedisReader({
        url: redis.url,
        clusterMode: false,
        connectTimeoutMs: 1000,
        commandTimeoutMs: 500,
        connectionName: getArmScoreContract.name,
      });
      handler = createGetArmScore({ redis: reader, logger: createLogger(getArmScoreContract) });
    });

    after(async function () {
      reader?.close();
      await redis?.stop();
    });

    afterEach(async function () {
      await disconnectWorkers([redis]);
    });

    it("answers the stored grade for a direct invoke and for an AppSync resolver event, without a warning", async function () {
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 4));
      for (const event of [{ globalUserId: FAN }, APPSYNC_EVENT]) {
        const { value, error, logs } = await invoke(handler, event);
        assert.equal(error, undefined);
        assert.deepEqual(value, { armScore: 4 });
        assert.deepEqual(linesAt(logs, "WARN"), []);
      }
    });

    it("answers every grade 1 to 5 as stored", async function () {
      for (const grade of [1, 2, 3, 4, 5]) {
        const fan = `gu-grade-${grade}`;
        await redis.admin().set(`user:${fan}`, armRecord(fan, grade));
        assert.deepEqual((await invoke(handler, appsyncEvent(fan))).value, { armScore: grade });
      }
    });

    it("answers null, without a warning, for a fan with no ARM record", async function () {
      const { value, logs } = await invoke(handler, { globalUserId: "gu-never-graded" });
      assert.deepEqual(value, { armScore: null });
      assert.deepEqual(linesAt(logs, "WARN"), []);
    });

    for (const { title, stored, reason, value } of [
      { title: "an arm_risk above 5", stored: armRecord(FAN, 6), reason: "arm_risk is not an integer 1 to 5", value: "6" },
      { title: "an arm_risk of 0", stored: armRecord(FAN, 0), reason: "arm_risk is not an integer 1 to 5", value: "0" },
      { title: "a negative arm_risk", stored: armRecord(FAN, -2), reason: "arm_risk is not an integer 1 to 5", value: "-2" },
      { title: "a fractional arm_risk", stored: armRecord(FAN, 2.5), reason: "arm_risk is not an integer 1 to 5", value: "2.5" },
      {
        title: "an arm_risk given as a string",
        stored: armRecord(FAN, "3"),
        reason: "arm_risk is not an integer 1 to 5",
        value: '"3"',
      },
      { title: "a null arm_risk", stored: armRecord(FAN, null), reason: "arm_risk is not an integer 1 to 5", value: "null" },
      {
        title: "a record without arm_risk",
        stored: JSON.stringify({ global_user_id: FAN, timestamp: "2026-11-24T06:00:00.000Z" }),
        reason: "arm_risk is missing",
        value: JSON.stringify({ global_user_id: FAN, timestamp: "2026-11-24T06:00:00.000Z" }),
      },
      { title: "a value that is not JSON", stored: "{arm_risk: 3", reason: "value is not JSON", value: "{arm_risk: 3" },
      { title: "a JSON value that is not an object", stored: "3", reason: "value is JSON number, not an object", value: "3" },
      {
        title: "a record naming another fan",
        stored: armRecord("gu-00000001", 2),
        reason: "global_user_id names another fan than the key",
        value: '"gu-00000001"',
      },
    ]) {
      it(`answers null for ${title}, with a warning naming the fan and the value`, async function () {
        await redis.admin().set(`user:${FAN}`, stored);
        const { value: answer, error, logs } = await invoke(handler, { globalUserId: FAN });
        assert.equal(error, undefined);
        assert.deepEqual(answer, { armScore: null });
        const warnings = linesAt(logs, "WARN");
        assert.equal(warnings.length, 1, JSON.stringify(logs));
        assert.equal(warnings[0]!.message, "invalid ARM score: answering null");
        assert.equal(warnings[0]!.service, "getArmScore");
        assert.equal(warnings[0]!.globalUserId, FAN);
        assert.equal(warnings[0]!.key, `user:${FAN}`);
        assert.equal(warnings[0]!.reason, reason);
        assert.deepEqual(warnings[0]!.value, value);
      });
    }

    it("answers null, with a warning, for a key holding another type than a string, and keeps its connection", async function () {
      await invoke(handler, { globalUserId: FAN }); // connected (again: the last test's connection was dropped)
      await redis.admin().del(`user:${FAN}`);
      await redis.admin().hset(`user:${FAN}`, "arm_risk", "3");
      const connections = await redis.connectionsReceived();
      const { value, error, logs } = await invoke(handler, { globalUserId: FAN });
      assert.equal(error, undefined);
      assert.deepEqual(value, { armScore: null });
      const [warning, ...others] = linesAt(logs, "WARN");
      assert.deepEqual(others, []);
      assert.equal(warning!.globalUserId, FAN);
      assert.equal(warning!.reason, "key does not hold a string");
      assert.match(String(warning!.value), /^WRONGTYPE/);
      await redis.admin().del(`user:${FAN}`);
      assert.deepEqual((await invoke(handler, { globalUserId: FAN })).value, { armScore: null });
      assert.equal(await redis.connectionsReceived(), connections, "the connection was kept");
    });

    for (const { title, event, field } of [
      { title: "an empty payload", event: {}, field: "globalUserId is missing" },
      {
        title: "an AppSync event without the argument",
        event: { ...APPSYNC_EVENT, arguments: {} },
        field: "arguments.globalUserId is missing",
      },
      { title: "a numeric globalUserId", event: { globalUserId: 42 }, field: "globalUserId is number, not a string" },
      { title: "no event at all", event: null, field: "event is null" },
    ]) {
      it(`rejects ${title}, naming the field, without asking Redis`, async function () {
        const gets = await redis.commandCalls("get");
        const { error, logs } = await invoke(handler, event);
        assert.ok(error instanceof Error);
        assert.ok(error.message.startsWith(`getArmScore: ${field}`), error.message);
        assert.equal(linesAt(logs, "ERROR").length, 1);
        assert.equal(await redis.commandCalls("get"), gets);
      });
    }

    it("built by its factory, keeps one connection across invocations and reads with one GET each", async function () {
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 2));
      const [connections, gets] = [await redis.connectionsReceived(), await redis.commandCalls("get")];
      const factoryHandler = deployed({ ARM_REDIS_URL: redis.url });
      assert.equal(await redis.connectionsReceived(), connections, "nothing connects before the first invocation");

      assert.deepEqual((await invoke(factoryHandler, { globalUserId: FAN })).value, { armScore: 2 });
      const [client, ...others] = await redis.clientsNamed("getArmScore");
      assert.ok(client, "the connection is named for the worker");
      assert.deepEqual(others, []);
      for (let call = 0; call < 9; call++) {
        const event = call % 2 ? { globalUserId: FAN } : appsyncEvent(FAN);
        assert.deepEqual((await invoke(factoryHandler, event)).value, { armScore: 2 });
      }

      assert.equal((await redis.connectionsReceived()) - connections, 1, "one connection for ten invocations");
      assert.deepEqual(await redis.clientsNamed("getArmScore"), [{ id: client.id, cmd: "get" }]);
      assert.equal((await redis.commandCalls("get")) - gets, 10);
    });

    it("reconnects in the next invocation when its connection was closed between invocations", async function () {
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 5));
      const factoryHandler = deployed({ ARM_REDIS_URL: redis.url });
      assert.deepEqual((await invoke(factoryHandler, { globalUserId: FAN })).value, { armScore: 5 });
      await disconnectWorkers([redis]);
      const { value, error } = await invoke(factoryHandler, { globalUserId: FAN });
      assert.equal(error, undefined);
      assert.deepEqual(value, { armScore: 5 });
      assert.equal((await redis.clientsNamed("getArmScore")).length, 1);
    });

    it("reads from the database the URL names", async function () {
      await redis.admin().select(3);
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 3));
      await redis.admin().select(0);
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 1));
      assert.deepEqual((await invoke(deployed({ ARM_REDIS_URL: `${redis.url}/3` }), { globalUserId: FAN })).value, {
        armScore: 3,
      });
      assert.deepEqual((await invoke(deployed({ ARM_REDIS_URL: redis.url }), { globalUserId: FAN })).value, { armScore: 1 });
    });

    for (const { title, vars, named } of [
      { title: "without ARM_REDIS_URL", vars: {}, named: "ARM_REDIS_URL" },
      { title: "with an http URL", vars: { ARM_REDIS_URL: "http://127.0.0.1:6379" }, named: "ARM_REDIS_URL" },
      {
        title: "with a read-only URL that is not a Redis URL",
        vars: { ARM_REDIS_URL: "redis://127.0.0.1:6379", ARM_REDIS_READ_ONLY_URL: "replica:6379" },
        named: "ARM_REDIS_READ_ONLY_URL",
      },
      {
        title: "with a cluster mode other than true or false",
        vars: { ARM_REDIS_URL: "redis://127.0.0.1:6379", ARM_REDIS_CLUSTER_MODE: "yes" },
        named: "ARM_REDIS_CLUSTER_MODE",
      },
      {
        title: "with a connect timeout the function's 6 s could not hold",
        vars: { ARM_REDIS_URL: "redis://127.0.0.1:6379", ARM_REDIS_CONNECT_TIMEOUT_MS: "10000" },
        named: "ARM_REDIS_CONNECT_TIMEOUT_MS",
      },
    ]) {
      it(`fails at cold start, naming the variable, ${title}`, function () {
        assert.throws(
          () => deployed(vars),
          (error: Error) => error.message.startsWith("getArmScore: environment does not meet") && error.message.includes(named),
        );
      });
    }

    it("takes an empty ARM_REDIS_READ_ONLY_URL as unset, and the documented defaults", async function () {
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 1));
      const { value } = await invoke(deployed({ ARM_REDIS_URL: redis.url, ARM_REDIS_READ_ONLY_URL: "" }), { globalUserId: FAN });
      assert.deepEqual(value, { armScore: 1 });
      const env = getArmScoreContract.environment().parse({ ARM_REDIS_URL: redis.url });
      assert.deepEqual(
        [
          env.ARM_REDIS_READ_ONLY_URL,
          env.ARM_REDIS_CLUSTER_MODE,
          env.ARM_REDIS_CONNECT_TIMEOUT_MS,
          env.ARM_REDIS_COMMAND_TIMEOUT_MS,
        ],
        [undefined, false, 1000, 500],
      );
    });
  });

  describe("Redis unreachable", function () {
    let redis: RedisServer | undefined;

    afterEach(async function () {
      redis?.resume();
      await redis?.stop();
      redis = undefined;
    });

    it("rejects at once, naming the endpoint and the refused connection, when nothing listens on the port", async function () {
      const port = await freePort();
      const handler = deployed({ ARM_REDIS_URL: `redis://127.0.0.1:${port}` });
      for (const event of [{ globalUserId: FAN }, appsyncEvent(FAN)]) {
        const outcome = await invoke(handler, event);
        assertReadFailure(
          outcome,
          `redis://127.0.0.1:${port} (primary)`,
          /could not connect: connect ECONNREFUSED 127\.0\.0\.1:\d+/,
        );
      }
    });

    it("never names the password of the URL", async function () {
      const port = await freePort();
      const outcome = await invoke(deployed({ ARM_REDIS_URL: `redis://svc-arm:s3cr3t-pw@127.0.0.1:${port}/2` }), {
        globalUserId: FAN,
      });
      assertReadFailure(outcome, `redis://127.0.0.1:${port}/2 (primary)`, /ECONNREFUSED/);
      assert.ok(!JSON.stringify(outcome.logs).includes("s3cr3t"));
      assert.ok(!outcome.error!.message.includes("s3cr3t"));
    });

    it("rejects, naming the endpoint, when Redis stops after a first successful call, and answers again once it is back", async function () {
      redis = await startRedis();
      const { port } = redis;
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 3));
      const handler = deployed({ ARM_REDIS_URL: redis.url });
      assert.deepEqual((await invoke(handler, { globalUserId: FAN })).value, { armScore: 3 });

      await redis.stop();
      for (let call = 0; call < 2; call++) {
        assertReadFailure(await invoke(handler, { globalUserId: FAN }), `redis://127.0.0.1:${port} (primary)`, /ECONNREFUSED/);
      }

      redis = await startRedis([], { port });
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 4));
      assert.deepEqual((await invoke(handler, { globalUserId: FAN })).value, { armScore: 4 });
    });

    it("rejects, naming the endpoint, when Redis takes the connection but does not answer", async function () {
      redis = await startRedis();
      redis.pause();
      const handler = deployed({
        ARM_REDIS_URL: redis.url,
        ARM_REDIS_CONNECT_TIMEOUT_MS: "300",
        ARM_REDIS_COMMAND_TIMEOUT_MS: "100",
      });
      assertReadFailure(
        await invoke(handler, { globalUserId: FAN }),
        `${redis.url} (primary)`,
        /no connection within 400 ms \(connect timeout 300 ms \+ command timeout 100 ms\)|did not answer/,
      );
    });

    it("rejects, naming the endpoint, when the host does not answer the connection attempt", async function () {
      redis = await startBlackholedRedis();
      const handler = deployed({
        ARM_REDIS_URL: redis.url,
        ARM_REDIS_CONNECT_TIMEOUT_MS: "300",
        ARM_REDIS_COMMAND_TIMEOUT_MS: "100",
      });
      // Linux drops the attempt (the connect timeout fires); a kernel that took it anyway leaves it unanswered.
      assertReadFailure(
        await invoke(handler, { globalUserId: FAN }),
        `${redis.url} (primary)`,
        /could not connect: connect ETIMEDOUT: no answer to the connection attempt within the connect timeout of 300 ms|did not answer/,
      );
    });

    it("rejects, naming the endpoint, when Redis stops answering on the connection kept from a first call; answers once it resumes", async function () {
      redis = await startRedis();
      await redis.admin().set(`user:${FAN}`, armRecord(FAN, 2));
      const handler = deployed({
        ARM_REDIS_URL: redis.url,
        ARM_REDIS_CONNECT_TIMEOUT_MS: "300",
        ARM_REDIS_COMMAND_TIMEOUT_MS: "100",
      });
      assert.deepEqual((await invoke(handler, { globalUserId: FAN })).value, { armScore: 2 });

      redis.pause();
      const error = assertReadFailure(await invoke(handler, { globalUserId: FAN }), `${redis.url} (primary)`, /./);
      // The kept connection was given up and one new connection tried, both said.
      assert.match(error.message, /before that, on the connection kept from an earlier invocation: no (answer|reply) within/);

      redis.resume();
      assert.deepEqual((await invoke(handler, { globalUserId: FAN })).value, { armScore: 2 });
    });

    it("names the replica, not the primary, when the replica reads go to is unreachable", async function () {
      redis = await startRedis();
      const replicaPort = await freePort();
      const outcome = await invoke(
        deployed({ ARM_REDIS_URL: redis.url, ARM_REDIS_READ_ONLY_URL: `redis://127.0.0.1:${replicaPort}` }),
        { globalUserId: FAN },
      );
      assertReadFailure(outcome, `redis://127.0.0.1:${replicaPort} (replica)`, /ECONNREFUSED 127\.0\.0\.1:\d+/);
      assert.deepEqual(await redis.clientsNamed("getArmScore"), [], "the primary is not read from");
    });

    it("in cluster mode, rejects naming the configuration endpoint and the refused connection", async function () {
      const port = await freePort();
      const outcome = await invoke(deployed({ ARM_REDIS_URL: `redis://127.0.0.1:${port}`, ARM_REDIS_CLUSTER_MODE: "true" }), {
        globalUserId: FAN,
      });
      assertReadFailure(outcome, `redis://127.0.0.1:${port} (cluster, reading from primaries)`, /ECONNREFUSED 127\.0\.0\.1:\d+/);
    });
  });

  describe("primary with a replica", function () {
    let pair: ReplicatedRedis;
    const fans = Array.from({ length: 10 }, (_, index) => `gu-replicated-${index}`);

    before(async function () {
      pair = await startReplicated();
      for (const [index, fan] of fans.entries()) await pair.primary.admin().set(`user:${fan}`, armRecord(fan, (index % 5) + 1));
      await pair.synced();
    });

    after(async function () {
      await pair?.stop();
    });

    afterEach(async function () {
      await disconnectWorkers([pair.primary, pair.replica]);
    });

    it("reads from the replica when ARM_REDIS_READ_ONLY_URL is set, over one connection, never from the primary", async function () {
      const before = await getCalls([pair.primary, pair.replica]);
      const handler = deployed({ ARM_REDIS_URL: pair.primary.url, ARM_REDIS_READ_ONLY_URL: pair.replica.url });
      for (const [index, fan] of fans.entries()) {
        assert.deepEqual((await invoke(handler, appsyncEvent(fan))).value, { armScore: (index % 5) + 1 });
      }
      const after = await getCalls([pair.primary, pair.replica]);
      assert.deepEqual([after[0]! - before[0]!, after[1]! - before[1]!], [0, fans.length]);
      assert.deepEqual(await pair.primary.clientsNamed("getArmScore"), []);
      assert.equal((await pair.replica.clientsNamed("getArmScore")).length, 1);
    });

    it("answers what the replica holds, even a value only the replica has", async function () {
      const fan = "gu-replica-only";
      await pair.replica.admin().config("SET", "replica-read-only", "no");
      try {
        await pair.replica.admin().set(`user:${fan}`, armRecord(fan, 5));
        const handler = deployed({ ARM_REDIS_URL: pair.primary.url, ARM_REDIS_READ_ONLY_URL: pair.replica.url });
        assert.deepEqual((await invoke(handler, { globalUserId: fan })).value, { armScore: 5 });
        assert.equal(await pair.primary.admin().exists(`user:${fan}`), 0);
      } finally {
        await pair.replica.admin().del(`user:${fan}`);
        await pair.replica.admin().config("SET", "replica-read-only", "yes");
      }
    });

    it("reads from the primary when no replica is configured", async function () {
      const before = await getCalls([pair.primary, pair.replica]);
      const handler = deployed({ ARM_REDIS_URL: pair.primary.url });
      assert.deepEqual((await invoke(handler, { globalUserId: fans[0] })).value, { armScore: 1 });
      const after = await getCalls([pair.primary, pair.replica]);
      assert.deepEqual([after[0]! - before[0]!, after[1]! - before[1]!], [1, 0]);
    });
  });

  describe("Redis Cluster (3 masters, 3 replicas)", function () {
    let cluster: RedisClusterNodes;
    let writer: Cluster;
    const fans = Array.from({ length: 30 }, (_, index) => `gu-cluster-${index.toString(16).padStart(4, "0")}`);
    const gradeOf = (index: number) => (index % 5) + 1;

    before(async function () {
      cluster = await startCluster(3);
      writer = new Cluster(cluster.masters.map((node) => ({ host: node.host, port: node.port })));
      for (const [index, fan] of fans.entries()) await writer.set(`user:${fan}`, armRecord(fan, gradeOf(index)));
      await writer.set("user:gu-cluster-invalid", armRecord("gu-cluster-invalid", 7));
      await cluster.synced();
    });

    after(async function () {
      writer?.disconnect();
      await cluster?.stop();
    });

    afterEach(async function () {
      await disconnectWorkers(cluster.nodes);
    });

    it("spreads the fans over every master (the test reads across slots)", async function () {
      const keysPerMaster = await Promise.all(cluster.masters.map((node) => node.admin().dbsize()));
      assert.ok(
        keysPerMaster.every((keys) => keys > 0),
        JSON.stringify(keysPerMaster),
      );
    });

    it("reads every fan's grade from the masters when no read-only URL is set", async function () {
      const [masters, replicas] = [await getCalls(cluster.masters), await getCalls(cluster.replicas)];
      const handler = deployed({ ARM_REDIS_URL: cluster.masters[0]!.url, ARM_REDIS_CLUSTER_MODE: "true" });
      for (const [index, fan] of fans.entries()) {
        assert.deepEqual((await invoke(handler, { globalUserId: fan })).value, { armScore: gradeOf(index) });
      }
      assert.equal(sum(await getCalls(cluster.masters)) - sum(masters), fans.length);
      assert.equal(sum(await getCalls(cluster.replicas)) - sum(replicas), 0);
    });

    it("reads from the replicas (scaleReads) when ARM_REDIS_READ_ONLY_URL is set, keeping its connections", async function () {
      const [masters, replicas] = [await getCalls(cluster.masters), await getCalls(cluster.replicas)];
      const handler = deployed({
        ARM_REDIS_URL: cluster.masters[0]!.url,
        ARM_REDIS_READ_ONLY_URL: cluster.replicas[0]!.url,
        ARM_REDIS_CLUSTER_MODE: "true",
      });
      for (const [index, fan] of fans.entries()) {
        assert.deepEqual((await invoke(handler, appsyncEvent(fan))).value, { armScore: gradeOf(index) });
      }
      assert.equal(sum(await getCalls(cluster.masters)) - sum(masters), 0, "no read reached a master");
      const perReplica = (await getCalls(cluster.replicas)).map((calls, index) => calls - replicas[index]!);
      assert.equal(sum(perReplica), fans.length);
      assert.ok(
        perReplica.every((calls) => calls > 0),
        `every replica served reads: ${JSON.stringify(perReplica)}`,
      );

      // A second round opens no connection: they are kept across invocations.
      const connections = sum(await Promise.all(cluster.nodes.map((node) => node.connectionsReceived())));
      for (const fan of fans) await invoke(handler, { globalUserId: fan });
      assert.equal(sum(await Promise.all(cluster.nodes.map((node) => node.connectionsReceived()))), connections);
      for (const node of cluster.nodes) assert.ok((await node.clientsNamed("getArmScore")).length <= 1, node.url);
    });

    it("answers null for an absent fan, and null with a warning for an invalid grade", async function () {
      const handler = deployed({ ARM_REDIS_URL: cluster.masters[1]!.url, ARM_REDIS_CLUSTER_MODE: "true" });
      assert.deepEqual((await invoke(handler, { globalUserId: "gu-cluster-absent" })).value, { armScore: null });
      const { value, logs } = await invoke(handler, { globalUserId: "gu-cluster-invalid" });
      assert.deepEqual(value, { armScore: null });
      assert.deepEqual(
        linesAt(logs, "WARN").map((line) => [line.globalUserId, line.value]),
        [["gu-cluster-invalid", "7"]],
      );
    });

    // Last: it stops the cluster.
    it("rejects, naming the configuration endpoint, when the cluster stops after a first successful call", async function () {
      const seed = cluster.masters[0]!;
      const handler = deployed({
        ARM_REDIS_URL: seed.url,
        ARM_REDIS_READ_ONLY_URL: cluster.replicas[0]!.url,
        ARM_REDIS_CLUSTER_MODE: "true",
      });
      assert.deepEqual((await invoke(handler, { globalUserId: fans[0] })).value, { armScore: gradeOf(0) });
      writer.disconnect();
      await cluster.stop();
      const outcome = await invoke(handler, { globalUserId: FAN });
      assertReadFailure(outcome, `${seed.url} (cluster, reading from replicas)`, /ECONNREFUSED/);
    });
  });
});
