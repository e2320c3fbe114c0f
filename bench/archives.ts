/**
 * Archive size and cold-start cost of each worker, as deployed for qa1: the archive Pulumi would
 * upload is written out, then started in fresh Node processes (as a cold Lambda container) and
 * invoked with a real event against local stand-ins of the services it calls.
 *
 * Prints, per worker: files, size on disk, zipped size, time to load the handler module, and
 * time from process start to the first result (median of the runs), and that time against an
 * empty handler's started the same way (targets: 2× on the request path, 3× for the rest).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { invokeArchive } from "../tools/offline/archive";
import appsyncEvent from "../test/fixtures/events/appsync-authorizer.json";
import s3Event from "../test/fixtures/events/s3-export-success.json";
import { archiveShelf } from "../test/support/archives";
import { awsJsonResponder, WireServer } from "../test/support/http";
import { startSecrets } from "../test/support/secrets";
import { createSigningKey, JwksServer, signSotc } from "../test/support/jwks";
import { planStack } from "../test/support/program";
import { median, table } from "./report";

const RUNS = Number(process.env.BENCH_RUNS ?? 7);

/** Spawn → first result against an empty handler's: the request-path workers 2×, the others 3×. */
const COLD_START_TARGETS: Record<string, number> = { validateToken: 2, getArmScore: 2 };
const API_KEY = "bench-appsync-api-key-0000000001";

export async function benchArchives(): Promise<void> {
  const stack = "qa1";
  const plan = await planStack(stack);
  const shelf = archiveShelf();

  const glue = await WireServer.start(awsJsonResponder({ StartWorkflowRun: () => ({ RunId: "wr_bench" }) }));
  const secrets = await startSecrets(() => ({ apiKeys: [API_KEY] }));
  const key = await createSigningKey("bench");
  const jwks = await JwksServer.start([key]);

  const { planned: variables } = await shelf.deployed(plan, "auth", "validateToken");
  const sotc = await signSotc(
    key,
    { email: "fan@example.com" },
    {
      issuer: variables.JWT_ISSUER,
      audience: variables.JWT_AUDIENCE,
      subject: "gu-1",
      expiresAt: Math.floor(Date.now() / 1000) + 3600,
    },
  );

  const cases: { component: string; worker: string; event: unknown; overrides: Record<string, string> }[] = [
    {
      component: "auth",
      worker: "validateToken",
      event: { ...appsyncEvent, authorizationToken: `${API_KEY}:${sotc}` },
      overrides: { JWKS_URL: jwks.url, AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url },
    },
    { component: "botornot", worker: "startBotOrNotImport", event: s3Event, overrides: { AWS_ENDPOINT_URL_GLUE: glue.url } },
    { component: "clustering", worker: "startClusterImport", event: s3Event, overrides: { AWS_ENDPOINT_URL_GLUE: glue.url } },
  ];

  // The floor: an empty handler, started the same way.
  const emptyDir = fs.mkdtempSync(path.join(os.tmpdir(), "archive-empty-"));
  const emptySource = "exports.handler = async () => ({});\n";
  fs.writeFileSync(path.join(emptyDir, "__index.js"), emptySource);
  const empty = { dir: emptyDir, files: 1, bytes: emptySource.length, zippedBytes: 0, handlerSource: emptySource };
  const emptyFirsts: number[] = [];
  for (let i = 0; i < RUNS; i++) emptyFirsts.push((await invokeArchive(empty, {}, {}, 1)).firstResultMs);
  const floor = median(emptyFirsts);

  const rows: string[][] = [];
  try {
    for (const { component, worker, event, overrides } of cases) {
      const { archive, lambdaEnv } = await shelf.deployed(plan, component, worker);
      const loads: number[] = [];
      const firsts: number[] = [];
      const warm: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const report = await invokeArchive(archive, event, lambdaEnv(overrides), 2);
        if (report.invocations.some((invocation) => invocation.error)) {
          throw new Error(`${worker} failed: ${JSON.stringify(report.invocations)}`);
        }
        loads.push(report.loadMs);
        firsts.push(report.firstResultMs);
        warm.push(report.invocations[1]!.ms);
      }
      rows.push([
        worker,
        String(archive.files),
        `${(archive.bytes / 1e6).toFixed(2)} MB`,
        `${(archive.zippedBytes / 1e6).toFixed(2)} MB`,
        `${median(loads).toFixed(0)} ms`,
        `${median(firsts).toFixed(0)} ms`,
        `${(median(firsts) / floor).toFixed(1)}× (target ≤ ${COLD_START_TARGETS[worker] ?? 3}×)`,
        `${median(warm).toFixed(2)} ms`,
      ]);
    }
  } finally {
    shelf.removeAll();
    fs.rmSync(emptyDir, { recursive: true, force: true });
    await Promise.all([glue.close(), secrets.close(), jwks.close()]);
  }
  console.log(`Lambda archives (stack ${stack}; median of ${RUNS} fresh processes, Node ${process.version})\n`);
  console.log(`empty handler: first result ${floor.toFixed(0)} ms (the floor the ratios are against)\n`);
  console.log(
    table(["worker", "files", "on disk", "zipped", "load handler", "first result", "against empty", "warm call"], rows),
  );
}
