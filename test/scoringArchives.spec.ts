/**
 * The scoring workers' archives, as Pulumi would upload them for qa1, run in fresh Node
 * processes with real events against local DynamoDB and SQS and the HTTP services at the wire.
 */
import { strict as assert } from "node:assert";
import { invokeArchive } from "../tools/offline/archive";
import { araiAnswerFor, araiDataFor } from "./support/arai";
import { archiveShelf, resultsOf } from "./support/archives";
import { activityDataImage, ModelServer } from "./support/fanTableStream";
import { fixture } from "./support/fixtures";
import { WireServer } from "./support/http";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { type PlannedStack, planStack } from "./support/program";
import { requireRedis, startRedis } from "./support/redis";
import { startSecrets } from "./support/secrets";

describe("scoring archives, run in a fresh process as Lambda runs them", function () {
  let plan: PlannedStack;
  let dynamo: LocalDynamo;
  let sqs: LocalSqs;
  let secrets: WireServer;
  let arai: WireServer;
  let model: ModelServer;
  let table: string;
  let activityQueue: string;
  let onDemandQueue: string;
  const shelf = archiveShelf();

  before(async function () {
    plan = await planStack("qa1");
    [dynamo, sqs] = await Promise.all([startDynamo(), startSqs()]);
    table = await dynamo.createFanTable();
    activityQueue = await sqs.createQueue("acct-activity-sqs.fifo");
    onDemandQueue = await sqs.createQueue("on-demand-scoring-sqs");
    secrets = await startSecrets((secretId) =>
      secretId.includes("arai")
        ? { username: "svc-scoring", password: "pw", clientId: "fan-identity" }
        : { token: "dapi-archive-test" },
    );
    arai = await WireServer.start((request) => ({ body: araiAnswerFor(decodeURIComponent(request.url.split("/")[4]!)) }));
    model = await ModelServer.start();
  });

  after(async function () {
    shelf.removeAll();
    await Promise.all([dynamo.close(), sqs.close(), secrets.close(), arai.close(), model.close()]);
  });

  const services = () => ({
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    TABLE_NAME: table,
  });

  async function run(worker: string, event: unknown, overrides: Record<string, string> = {}) {
    const { archive, lambdaEnv } = await shelf.deployed(plan, "scoring-east", worker);
    const report = await invokeArchive(archive, event, lambdaEnv({ ...services(), ...overrides }));
    const [result] = resultsOf(report);
    return result;
  }

  for (const [worker, event, queue] of [
    ["enqueueFromVfStream", "kinesis-vf-login.json", "onDemand"],
    ["enqueueFromDemandStream", "kinesis-demand-insert.json", "activity"],
    ["enqueueFromPurchaseStream", "kinesis-purchase-success.json", "activity"],
    ["enqueueFromSQJourneyStream", "kinesis-sq-journey.json", "activity"],
    ["processRescoreEvents", "kinesis-rescore-ttl-removal.json", "activity"],
  ] as const) {
    it(`${worker} enqueues the fan of a real Kinesis record`, async function () {
      const url = queue === "activity" ? activityQueue : onDemandQueue;
      const result = await run(worker, fixture(event), { ACTIVITY_QUEUE_URL: activityQueue, ON_DEMAND_QUEUE_URL: onDemandQueue });
      assert.deepEqual(result, { batchItemFailures: [] });
      const messages = await sqs.drain(url);
      assert.equal(messages.length, 1);
      const body = JSON.parse(messages[0]!.Body!) as { globalUserId: string; source: string };
      assert.match(body.globalUserId, /^gu-/);
    });
  }

  it("lookupArai fetches the fan's ARAI over HTTP and writes the fan record", async function () {
    const event = fixture<{ Records: { body: string }[] }>("sqs-account-activity-fifo.json");
    const { globalUserId } = JSON.parse(event.Records[0]!.body) as { globalUserId: string };
    const result = await run("lookupArai", event, { ARAI_URL_TEMPLATE: `${arai.url}/arai/v1/accounts/{globalUserId}/activity` });
    assert.deepEqual(result, { batchItemFailures: [] });
    assert.equal(arai.requests.length, 1);
    assert.equal(arai.requests[0]!.headers["x-client-id"], "fan-identity");
    const Item = await dynamo.item(table, globalUserId);
    assert.equal(Item?.type, "activityData");
    assert.equal(Item?.araiVersion, 1);
    assert.deepEqual(Item?.arai, araiDataFor(globalUserId), "the answer's data is the snapshot");
  });

  it("lookupArai, the ARAI API down, fails the message and says which service, operation and status", async function () {
    const down = await WireServer.start(() => ({ status: 503, body: { message: "maintenance" } }));
    try {
      const event = fixture<{ Records: { messageId: string }[] }>("sqs-account-activity-fifo.json");
      const { archive, lambdaEnv } = await shelf.deployed(plan, "scoring-east", "lookupArai");
      // A table with no record of the fan: its ARAI is not fresh, so it is fetched.
      const report = await invokeArchive(
        archive,
        event,
        lambdaEnv({
          ...services(),
          TABLE_NAME: await dynamo.createFanTable(),
          ARAI_URL_TEMPLATE: `${down.url}/{globalUserId}`,
          ARAI_TIMEOUT_MS: "500",
        }),
      );
      const [result] = resultsOf(report);
      assert.deepEqual(result, { batchItemFailures: [{ itemIdentifier: event.Records[0]!.messageId }] });
      const reasons = report.logs.filter((line) => line.message === "record failed").map((line) => String(line.reason));
      assert.equal(reasons.length, 1);
      // The error built inside the archive keeps its message (a serialized Error subclass would not).
      assert.match(reasons[0]!, /accounts ARAI API GET account activity failed after 3 attempts: HTTP 503: .*maintenance/);
    } finally {
      await down.close();
    }
  });

  it("enqueueFromActivityStream enqueues the scorable activity of a real Kafka event and skips the rest", async function () {
    const result = await run("enqueueFromActivityStream", fixture("kafka-user-activity.json"), {
      ACTIVITY_QUEUE_URL: activityQueue,
    });
    assert.deepEqual(result, { batchItemFailures: [] });
    const messages = (await sqs.drain(activityQueue)).map(
      (message) => JSON.parse(message.Body!) as { globalUserId: string; action: string },
    );
    assert.deepEqual(messages.map(({ globalUserId, action }) => [globalUserId, action]).sort(), [
      ["gu-7f3c2a91", "login"],
      ["gu-a04c77e2", "update_phone"],
    ]);
  });

  it("getArmScore reads the fan's ARM grade from a real Redis, for a direct invocation and an AppSync resolver", async function () {
    requireRedis();
    const redis = await startRedis();
    try {
      const record = { global_user_id: "gu-7f3c2a91", arm_risk: 4, timestamp: "2026-11-24T06:00:00Z", score_date: "2026-11-24" };
      await redis.admin().set("user:gu-7f3c2a91", JSON.stringify(record));
      const { archive, lambdaEnv } = await shelf.deployed(plan, "scoring-east", "getArmScore");
      const env = lambdaEnv({ ARM_REDIS_URL: redis.url, ARM_REDIS_READ_ONLY_URL: "", ARM_REDIS_CLUSTER_MODE: "false" });
      const direct = await invokeArchive(archive, { globalUserId: "gu-7f3c2a91" }, env, 2);
      assert.deepEqual(resultsOf(direct), [{ armScore: 4 }, { armScore: 4 }]);
      const appsync = await invokeArchive(archive, fixture("appsync-resolver-get-arm-score.json"), env);
      assert.equal(resultsOf(appsync).length, 1);
      assert.deepEqual(await invokeArchive(archive, { globalUserId: "gu-nobody" }, env).then(resultsOf), [{ armScore: null }]);
    } finally {
      await redis.stop();
    }
  });

  for (const [worker, key] of [
    ["scoreUsers", (id: string) => id],
    ["stagingScoreUsers", (id: string) => `staging#${id}`],
  ] as const) {
    it(`${worker} scores a real table change through the model and stores the score`, async function () {
      const event = fixture("kinesis-fan-table-activity-data.json");
      // The fan record the change came from, as lookupArai wrote it.
      await dynamo.seed(table, [activityDataImage()]);
      const result = await run(worker, event, { MODEL_URL: model.url() });
      assert.deepEqual(result, { batchItemFailures: [] });
      const stored = (await dynamo.scan(table)).find((item) => item.userId === key("gu-3b9e51d7"));
      assert.ok(stored, `no ${key("gu-3b9e51d7")} item`);
      assert.equal(typeof stored.score, "number");
      assert.equal(
        stored[worker === "scoreUsers" ? "scoreVersion" : "version"],
        worker === "scoreUsers" ? "fan-risk-7" : "fan-risk-8-rc1",
      );
    });
  }
});
