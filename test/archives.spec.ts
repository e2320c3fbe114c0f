/**
 * What is serialized is what runs: each worker's archive, as Pulumi would upload it for qa1, is
 * written outside the project and run in a fresh Node process with a real event, the planned
 * environment, and the AWS services it calls faked at the wire.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bundle, keepArchivesIn, workerCode } from "../components/archive";
import { invokeArchive } from "../tools/offline/archive";
import { archiveShelf, resultsOf } from "./support/archives";
import { emfMetrics } from "./support/emittedMetrics";
import { fixture } from "./support/fixtures";
import { awsJsonResponder, WireServer } from "./support/http";
import { createSigningKey, JwksServer, signSotc } from "./support/jwks";
import { type PlannedStack, planStack } from "./support/program";
import { startSecrets } from "./support/secrets";

const API_KEY = "qa1-appsync-api-key-000000000001";

type S3Notification = { Records: { s3: { bucket: { name: string } } }[] };
const appsyncEvent = fixture("appsync-authorizer.json");
const s3ClusterEvent = fixture<S3Notification>("s3-cluster-export-success.json");
const s3Event = fixture<S3Notification>("s3-export-success.json");

describe("Lambda archives, run in a fresh process as Lambda runs them", function () {
  let plan: PlannedStack;
  let glue: WireServer;
  let secrets: WireServer;
  let jwks: JwksServer;
  const shelf = archiveShelf();

  before(async function () {
    plan = await planStack("qa1");
    glue = await WireServer.start(awsJsonResponder({ StartWorkflowRun: () => ({ RunId: "wr_0123456789abcdef" }) }));
    secrets = await startSecrets(() => ({ apiKeys: [API_KEY] }));
    jwks = await JwksServer.start([await createSigningKey("accounts-2026-11")]);
  });

  after(async function () {
    shelf.removeAll();
    await Promise.all([glue.close(), secrets.close(), jwks.close()]);
  });

  const deployed = (component: string, worker: string) => shelf.deployed(plan, component, worker);

  it("name an environment variable the deployment left out in zod's English message, at cold start", async function () {
    // An archive is the factory serialized: the English locale must be set where the factory starts.
    const { archive, lambdaEnv } = await deployed("scoring-east", "getArmScore");
    const env = lambdaEnv({});
    delete env.ARM_REDIS_URL;
    await assert.rejects(invokeArchive(archive, { globalUserId: "gu-1" }, env), (error: Error) => {
      assert.match(error.message, /ARM_REDIS_URL: Invalid input: expected string, received undefined/);
      return true;
    });
  });

  it("validateToken authorises a real AppSync authoriser event, reading its keys and JWKS once per container", async function () {
    const { archive, planned, lambdaEnv } = await deployed("auth", "validateToken");
    const [key] = jwks.published;
    const sotc = await signSotc(
      key!,
      { email: "Fan@Example.COM", given_name: "Ada" },
      {
        issuer: planned.JWT_ISSUER,
        audience: planned.JWT_AUDIENCE,
        subject: "gu-1234",
        expiresAt: Math.floor(Date.now() / 1000) + 3600,
      },
    );
    const event = { ...appsyncEvent, authorizationToken: `${API_KEY}:${sotc}` };
    const fetchesBefore = jwks.fetches;

    const report = await invokeArchive(
      archive,
      event,
      lambdaEnv({ JWKS_URL: jwks.url, AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url }),
      2,
    );

    for (const result of resultsOf(report)) {
      assert.deepEqual(result, {
        isAuthorized: true,
        resolverContext: { isLoggedIn: "true", globalUserId: "gu-1234", email: "fan@example.com", given_name: "Ada" },
        ttlOverride: 300,
      });
    }
    assert.equal(jwks.fetches - fetchesBefore, 1, "one JWKS fetch for two invocations");
    // The serialized wrapper publishes each invocation's metrics; only the first is a cold start.
    const metrics = emfMetrics(report.logs);
    assert.deepEqual(
      metrics.filter((metric) => metric.name === "RecordsProcessed").map((metric) => metric.values),
      [[1], [1]],
    );
    assert.equal(metrics.filter((metric) => metric.name === "ColdStart").length, 1);
    assert.ok(
      metrics.every((metric) => metric.dimensions.service === "validateToken" && metric.dimensions.environment === "qa1"),
    );
    assert.equal(secrets.requests.length, 1, "one secret read for two invocations");
    assert.equal(JSON.parse(secrets.requests[0]!.body).SecretId, planned.API_KEYS_SECRET_ARN);
  });

  for (const [component, worker, event, key] of [
    ["botornot", "startBotOrNotImport", s3Event, "bot-or-not/date=2026-11-24/_SUCCESS"],
    ["clustering", "startClusterImport", s3ClusterEvent, "clustering/date=2026-11-24/_SUCCESS"],
  ] as const) {
    it(`${worker} starts its planned Glue workflow for a real S3 notification`, async function () {
      const { archive, planned, lambdaEnv } = await deployed(component, worker);
      glue.requests.length = 0;
      const report = await invokeArchive(archive, event, lambdaEnv({ AWS_ENDPOINT_URL_GLUE: glue.url }));
      const [result] = resultsOf(report);
      assert.deepEqual(result, {
        started: [{ bucket: event.Records[0]!.s3.bucket.name, key, date: "2026-11-24", runId: "wr_0123456789abcdef" }],
        skipped: [],
      });
      assert.equal(glue.requests.length, 1);
      assert.deepEqual(JSON.parse(glue.requests[0]!.body), {
        Name: planned.GLUE_WORKFLOW_NAME,
        RunProperties: { bucket: event.Records[0]!.s3.bucket.name, key, date: "2026-11-24" },
      });
      assert.ok(report.logs.some((line) => line.message === "import started" && line.service === worker));
      const calls = emfMetrics(report.logs).filter((metric) => metric.name === "ExternalCalls");
      assert.deepEqual(
        calls.map((metric) => [metric.dimensions.service, metric.dimensions.dependency, metric.values]),
        [[worker, "Glue", [1]]],
      );
    });
  }
});

describe("worker bundles", function () {
  it("bundle a module with what it requires into one file that requires no package", async function () {
    const source =
      'const { z } = require("zod"); exports.handler = async (event) => z.object({ n: z.number() }).parse(event).n + 1;';
    const text = await bundle("probe", source);
    assert.doesNotMatch(text, /require\("zod"\)/);
    const module = { exports: {} as { handler?: (event: unknown) => Promise<number> } };
    new Function("module", "exports", "require", text)(module, module.exports, require);
    assert.equal(await module.exports.handler!({ n: 41 }), 42);
  });

  it("fail the plan naming the worker and the package when a package cannot be resolved", async function () {
    await assert.rejects(bundle("probe", 'require("no-such-package-in-this-project");'), (error: Error) => {
      assert.match(error.message, /^probe: its code cannot be bundled: .*no-such-package-in-this-project/);
      return true;
    });
  });

  it("require a package by its name where the serialized module names its entry file", async function () {
    const byFile = await bundle("probe", 'module.exports = require("@aws-sdk/client-sqs/dist-cjs/index.js").SendMessageCommand;');
    const byName = await bundle("probe", 'module.exports = require("@aws-sdk/client-sqs").SendMessageCommand;');
    assert.equal(byFile, byName);
  });
});

describe("archives kept between plans", function () {
  const factory = () => async () => 42;
  let store: string;

  beforeEach(function () {
    store = fs.mkdtempSync(path.join(os.tmpdir(), "archive-store-"));
    keepArchivesIn(store);
  });

  afterEach(function () {
    keepArchivesIn(undefined);
    fs.rmSync(store, { recursive: true, force: true });
  });

  const kept = () => fs.readdirSync(store);

  it("are written once made, used again while their inputs are the same, and replaced when not", async function () {
    const code = await workerCode("probe", factory);
    assert.match(code, /42/);
    assert.equal(kept().length, 1);
    const [file] = kept();
    assert.match(file!, /^probe-[0-9a-f]{16}\.js$/);
    assert.equal(fs.readFileSync(path.join(store, file!), "utf8"), code);

    // A kept archive is what the next plan uses: it is not made again.
    fs.writeFileSync(path.join(store, file!), "exports.handler = async () => 'kept';");
    assert.equal(await workerCode("probe", factory), "exports.handler = async () => 'kept';");

    // One kept for other inputs (earlier code) is not used, and goes once the current one is made.
    fs.renameSync(path.join(store, file!), path.join(store, "probe-0000000000000000.js"));
    assert.equal(await workerCode("probe", factory), code);
    assert.deepEqual(kept(), [file]);
  });

  it("are not kept unless a store is named", async function () {
    keepArchivesIn(undefined);
    assert.match(await workerCode("probe", factory), /42/);
    assert.deepEqual(kept(), []);
  });
});
