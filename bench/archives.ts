/**
 * Cold start of every worker, as deployed for qa1: the archive Pulumi would upload is written
 * out, then started in fresh Node processes (as a cold Lambda container) and invoked with a real
 * event against local stand-ins of the services it calls (the events and stand-ins of
 * test/archives.spec.ts, test/scoringArchives.spec.ts and test/idvArchives.spec.ts).
 *
 * Per worker: the time from process start to the first result (median of the runs) against an
 * empty handler's started the same way in the same run (targets: 2× on the request path, 3× for
 * the rest). Then validateToken warm: many calls in one process after its first, p50 and p99,
 * next to the empty handler's warm calls.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { exportPKCS8, generateKeyPair } from "jose";
import { invokeArchive, type InvokeReport, type WrittenArchive } from "../tools/offline/archive";
import { WORKERS } from "../workers/registry";
import { araiAnswerFor } from "../test/support/arai";
import { archiveShelf } from "../test/support/archives";
import { activityDataImage, ModelServer } from "../test/support/fanTableStream";
import { fixture } from "../test/support/fixtures";
import { awsJsonResponder, WireServer } from "../test/support/http";
import { createSigningKey, JwksServer, signSotc } from "../test/support/jwks";
import { startDynamo, startSqs } from "../test/support/localAws";
import { personaWebhookEvent, sessionAwaitingWebhook, startPersona } from "../test/support/idv";
import { planStack } from "../test/support/program";
import { startRedis } from "../test/support/redis";
import { startSecrets } from "../test/support/secrets";
import { median, met, type Part, percentile, type Row } from "./report";

/** Fresh processes per worker. */
const RUNS = Number(process.env.BENCH_COLD_RUNS ?? 3);
/** Fresh processes of the empty handler: the floor, taken before and after the workers. */
const EMPTY_RUNS = Number(process.env.BENCH_EMPTY_RUNS ?? 6);
/** Warm validateToken calls in one process, after its first. */
const WARM_CALLS = Number(process.env.BENCH_WARM_CALLS ?? 300);

/** Spawn → first result against an empty handler's: the request-path workers 2×, the others 3×. */
const COLD_START_TARGETS: Record<string, number> = { validateToken: 2, getArmScore: 2 };
const API_KEY = "bench-appsync-api-key-0000000001";
const WEBHOOK_SECRET = "wbhsec_bench_0001";
const FAN = "gu-7f3c2a91";

interface Case {
  readonly component: string;
  readonly worker: string;
  /** The event of each run, and the environment overrides pointing at the stand-ins; run before each process. */
  readonly prepare: () => Promise<{ event: unknown; overrides: Record<string, string> }>;
}

/** Why a run's result is not the work done: an error thrown, failed records, an HTTP error answer. */
function failure(report: InvokeReport): string | undefined {
  for (const invocation of report.invocations) {
    if (invocation.error) return `${invocation.error.name}: ${invocation.error.message}`;
    const result = invocation.result as { batchItemFailures?: unknown[]; statusCode?: number } | undefined;
    if (result?.batchItemFailures?.length) return `${result.batchItemFailures.length} records failed`;
    if (result?.statusCode !== undefined && result.statusCode >= 400) return `answered HTTP ${result.statusCode}`;
  }
  return undefined;
}

async function standIns() {
  const [dynamo, sqs, redis, model] = await Promise.all([startDynamo(), startSqs(), startRedis(), ModelServer.start()]);
  const glue = await WireServer.start(awsJsonResponder({ StartWorkflowRun: () => ({ RunId: "wr_bench" }) }));
  const key = await createSigningKey("bench");
  const jwks = await JwksServer.start([key]);
  const { privateKey } = await generateKeyPair("RS256", { extractable: true });
  const signingKey = { privateKey: await exportPKCS8(privateKey), keyId: "fan-identity-qa1-bench" };
  // One Secrets Manager per group of workers, answering as their specs' do.
  const authSecrets = await startSecrets(() => ({ apiKeys: [API_KEY] }));
  const scoringSecrets = await startSecrets((secretId) =>
    secretId.includes("arai") ? { username: "svc-scoring", password: "pw", clientId: "fan-identity" } : { token: "dapi-bench" },
  );
  const idvSecrets = await startSecrets((secretId) =>
    secretId.includes("webhook")
      ? { secrets: [WEBHOOK_SECRET] }
      : secretId.includes("signing")
        ? signingKey
        : { apiKey: "persona_sandbox_key" },
  );
  const arai = await WireServer.start((request) => ({ body: araiAnswerFor(decodeURIComponent(request.url.split("/")[4]!)) }));
  let inquiries = 0;
  const persona = await startPersona(() => `inq_Bench${String((inquiries += 1)).padStart(18, "0")}`, "st_bench");
  await redis
    .admin()
    .set(
      `user:${FAN}`,
      JSON.stringify({ global_user_id: FAN, arm_risk: 4, timestamp: "2026-11-24T06:00:00Z", score_date: "2026-11-24" }),
    );
  return {
    dynamo,
    sqs,
    redis,
    model,
    glue,
    key,
    jwks,
    authSecrets,
    scoringSecrets,
    idvSecrets,
    arai,
    persona,
    close: async () => {
      await Promise.all([
        dynamo.close(),
        sqs.close(),
        redis.stop(),
        model.close(),
        glue.close(),
        jwks.close(),
        authSecrets.close(),
        scoringSecrets.close(),
        idvSecrets.close(),
        arai.close(),
        persona.close(),
      ]);
    },
  };
}
type StandIns = Awaited<ReturnType<typeof standIns>>;

async function cases(s: StandIns, sotc: string): Promise<Case[]> {
  const table = await s.dynamo.createFanTable();
  const activityQueue = await s.sqs.createQueue("acct-activity-sqs.fifo");
  const onDemandQueue = await s.sqs.createQueue("on-demand-scoring-sqs");
  const scoring = {
    AWS_ENDPOINT_URL_DYNAMODB: s.dynamo.endpoint,
    AWS_ENDPOINT_URL_SQS: s.sqs.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: s.scoringSecrets.url,
    TABLE_NAME: table,
    ACTIVITY_QUEUE_URL: activityQueue,
    ON_DEMAND_QUEUE_URL: onDemandQueue,
  };
  const idv = {
    AWS_ENDPOINT_URL_DYNAMODB: s.dynamo.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: s.idvSecrets.url,
    TABLE_NAME: table,
  };
  const fixed = (event: unknown, overrides: Record<string, string>) => async () => ({ event, overrides });
  const s3 = fixed(fixture("s3-export-success.json"), { AWS_ENDPOINT_URL_GLUE: s.glue.url });
  const streamCases = (
    [
      ["enqueueFromVfStream", "kinesis-vf-login.json"],
      ["enqueueFromDemandStream", "kinesis-demand-insert.json"],
      ["enqueueFromPurchaseStream", "kinesis-purchase-success.json"],
      ["enqueueFromSQJourneyStream", "kinesis-sq-journey.json"],
      ["processRescoreEvents", "kinesis-rescore-ttl-removal.json"],
      ["enqueueFromActivityStream", "kafka-user-activity.json"],
    ] as const
  ).map(([worker, event]) => ({ component: "scoring-east", worker, prepare: fixed(fixture(event), scoring) }));
  const scorer = (worker: string) => ({
    component: "scoring-east",
    worker,
    prepare: async () => {
      // The fan record the change came from, as lookupArai wrote it, not scored yet.
      await s.dynamo.seed(table, [activityDataImage()]);
      return { event: fixture("kinesis-fan-table-activity-data.json"), overrides: { ...scoring, MODEL_URL: s.model.url() } };
    },
  });
  return [
    {
      component: "auth",
      worker: "validateToken",
      prepare: fixed(
        { ...fixture<Record<string, unknown>>("appsync-authorizer.json"), authorizationToken: `${API_KEY}:${sotc}` },
        { JWKS_URL: s.jwks.url, AWS_ENDPOINT_URL_SECRETS_MANAGER: s.authSecrets.url },
      ),
    },
    { component: "botornot", worker: "startBotOrNotImport", prepare: s3 },
    {
      component: "clustering",
      worker: "startClusterImport",
      prepare: fixed(fixture("s3-cluster-export-success.json"), { AWS_ENDPOINT_URL_GLUE: s.glue.url }),
    },
    ...streamCases,
    {
      component: "scoring-east",
      worker: "lookupArai",
      // A table without the fan: its ARAI is not fresh, so each run fetches and writes it.
      prepare: async () => ({
        event: fixture("sqs-account-activity-fifo.json"),
        overrides: {
          ...scoring,
          TABLE_NAME: await s.dynamo.createFanTable(),
          ARAI_URL_TEMPLATE: `${s.arai.url}/arai/v1/accounts/{globalUserId}/activity`,
        },
      }),
    },
    scorer("scoreUsers"),
    scorer("stagingScoreUsers"),
    {
      component: "scoring-east",
      worker: "getArmScore",
      prepare: fixed(
        { globalUserId: FAN },
        { ARM_REDIS_URL: s.redis.url, ARM_REDIS_READ_ONLY_URL: "", ARM_REDIS_CLUSTER_MODE: "false" },
      ),
    },
    {
      component: "idv",
      worker: "checkLiveness",
      prepare: async () => {
        const event = fixture<{ arguments: Record<string, unknown> }>("appsync-check-liveness.json");
        event.arguments = { ...event.arguments, options: { tier: "always", appId: "presale-web", subjectId: "evt-0042" } };
        return { event, overrides: { ...idv, PERSONA_API_URL: s.persona.url } };
      },
    },
    {
      component: "idv",
      worker: "handleEvent",
      prepare: async () => {
        // A session awaiting its webhook, written afresh for each run.
        const inquiry = "inq_Bench000000000000000001";
        const session = sessionAwaitingWebhook(FAN, inquiry);
        await s.dynamo.seed(table, [session as unknown as Record<string, unknown>]);
        return { event: personaWebhookEvent(inquiry, WEBHOOK_SECRET), overrides: idv };
      },
    },
  ];
}

const ms = (value: number) => `${value.toFixed(value < 1 ? 3 : value < 10 ? 2 : 0)} ms`;

export async function benchArchives(): Promise<Part> {
  const stack = "qa1";
  const plan = await planStack(stack);
  const shelf = archiveShelf();
  const s = await standIns();

  // The floor: an empty handler, started the same way.
  const emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), "archive-empty-"));
  const emptySource = "exports.handler = async () => ({});\n";
  fs.writeFileSync(path.join(emptyDir, "__index.js"), emptySource);
  const empty: WrittenArchive = {
    dir: emptyDir,
    files: 1,
    bytes: emptySource.length,
    zippedBytes: 0,
    handlerSource: emptySource,
  };
  const emptyFirsts: number[] = [];
  const emptyRuns = async (runs: number) => {
    for (let i = 0; i < runs; i++) emptyFirsts.push((await invokeArchive(empty, {}, {}, 1)).firstResultMs);
  };

  const rows: Row[] = [];
  try {
    const { planned } = await shelf.deployed(plan, "auth", "validateToken");
    const sotc = await signSotc(
      s.key,
      { email: "fan@example.com" },
      {
        issuer: planned.JWT_ISSUER,
        audience: planned.JWT_AUDIENCE,
        subject: "gu-1",
        expiresAt: Math.floor(Date.now() / 1000) + 3600,
      },
    );
    const all = await cases(s, sotc);
    await emptyRuns(Math.ceil(EMPTY_RUNS / 2));
    const firsts = new Map<string, number[] | string>();
    for (const { component, worker, prepare } of all) {
      const times: number[] = [];
      try {
        const { archive, lambdaEnv } = await shelf.deployed(plan, component, worker);
        for (let i = 0; i < RUNS; i++) {
          const { event, overrides } = await prepare();
          const report = await invokeArchive(archive, event, lambdaEnv(overrides), 1);
          const failed = failure(report);
          if (failed) throw new Error(failed);
          times.push(report.firstResultMs);
        }
        firsts.set(worker, times);
      } catch (error) {
        firsts.set(worker, (error as Error).message.split("\n")[0]!);
      }
    }
    await emptyRuns(Math.floor(EMPTY_RUNS / 2));
    const floor = median(emptyFirsts);
    for (const worker of Object.keys(WORKERS)) {
      const target = COLD_START_TARGETS[worker] ?? 3;
      const times = firsts.get(worker);
      const what = `${worker} cold start (spawn → first result)`;
      if (typeof times !== "object") {
        const why = times ?? "no real event against local stand-ins for it here";
        rows.push({ what, figure: `not run: ${why}`, anchor: `empty handler ${ms(floor)}`, target: `≤ ${target}×` });
        continue;
      }
      const ratio = median(times) / floor;
      rows.push({
        what,
        figure: ms(median(times)),
        anchor: `empty handler ${ms(floor)}`,
        against: `${ratio.toFixed(1)}×`,
        target: `≤ ${target}×`,
        met: met(ratio <= target),
      });
    }

    // validateToken warm: one process, its first call apart, against the empty handler's warm calls.
    const { archive, lambdaEnv } = await shelf.deployed(plan, "auth", "validateToken");
    const { event, overrides } = await all[0]!.prepare();
    const warm = await invokeArchive(archive, event, lambdaEnv(overrides), WARM_CALLS + 1);
    const emptyWarm = await invokeArchive(empty, {}, {}, WARM_CALLS + 1);
    const calls = (report: InvokeReport) => report.invocations.slice(1).map((invocation) => invocation.ms);
    const failed = failure(warm);
    for (const p of [50, 99]) {
      const figure = percentile(calls(warm), p);
      const anchor = percentile(calls(emptyWarm), p);
      rows.push({
        what: `validateToken warm p${p} (${WARM_CALLS} calls in one process)`,
        figure: failed ? `not run: ${failed}` : ms(figure),
        anchor: `empty handler ${ms(anchor)}`,
        against: failed ? "-" : `+${ms(figure - anchor)}`,
      });
    }
  } finally {
    shelf.removeAll();
    fs.rmSync(emptyDir, { recursive: true, force: true });
    await s.close();
  }
  return {
    how:
      `cold start of each ${stack} archive: median of ${RUNS} fresh processes with a real event against local stand-ins, ` +
      `against an empty handler's median of ${EMPTY_RUNS} (half before, half after); validateToken warm: ${WARM_CALLS} calls after the first`,
    rows,
  };
}
