/**
 * npm start -- [--stack qa1] [--duration <s>] [--rate <events/s>] [--bad-rate <0..1>] [--fans <n>]
 *              [--clock-speed <x>] [--seed <s>] [--data-dir <dir>] [--keep] [--json <file>]
 * npm start -- --drill <name> | all | list  [--stack qa1] [--seed <s>] [--data-dir <dir>] [--keep] [--json <file>]
 *
 * The whole system, locally, wired from the stack's offline plan: every worker's real archive
 * against local services, traffic through every input, and the figures live. Runs until Ctrl-C,
 * or for `--duration` seconds, then waits for what is in flight, reconciles every input and
 * prints the summary. With `--drill`, runs fault drills on it instead (tools/local/drills) and
 * prints each one's report; exits 1 if one failed. Everything it started is stopped when it ends.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { PROJECT } from "../../stacks/config";
import { planStack } from "../offline/planStack";
import { DRILLS, drillsNamed } from "./drills/catalogue";
import { drillReportsJson, drillSummaryLine, renderDrillReport } from "./drills/report";
import { startDrillRunner } from "./drills/runner";
import type { DrillReport } from "./drills/types";
import { ledgerJson, renderLedger } from "./ledger";
import { ensureRedisServer } from "./prerequisites";
import { stopAll } from "./processes";
import { runLocal } from "./run";
import type { LocalStandIns } from "./standIns";

const USAGE = `usage: npm start -- [options]
  --stack <name>        the stack whose plan is run (default qa1)
  --duration <seconds>  send traffic this long, then drain, reconcile and stop (default: until Ctrl-C)
  --rate <events/s>     events per second over every input (default 100)
  --bad-rate <0..1>     share of bad records (default 0.02)
  --fans <n>            fans in the population (default 1000)
  --clock-speed <x>     TTL's clock runs this many times faster (default 1; 86400 makes a day a second)
  --seed <s>            seed of the traffic (default 1)
  --data-dir <dir>      where archives, logs and state go (default: a new temporary directory)
  --keep                keep the data directory
  --json <file>         write the final figures (and the ledger) to this file; with --drill, the reports
  --drill <name>        run a fault drill instead of free traffic (all: every drill; list: their names);
                        prints each drill's report, exits 1 if one failed (see docs/local-system.md#fault-drills)`;

function number(values: Record<string, unknown>, key: string, fallback: number, check: (n: number) => boolean): number {
  const text = values[key];
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || !check(value)) throw new UsageError(`--${key}: ${String(text)} is not a valid value`);
  return value;
}

class UsageError extends Error {}

function parse() {
  const { values } = parseArgs({
    options: {
      stack: { type: "string", default: "qa1" },
      duration: { type: "string" },
      rate: { type: "string" },
      "bad-rate": { type: "string" },
      fans: { type: "string" },
      "clock-speed": { type: "string" },
      seed: { type: "string" },
      "data-dir": { type: "string" },
      keep: { type: "boolean", default: false },
      json: { type: "string" },
      drill: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.drill !== undefined) {
    // The drills size their own traffic; a run's traffic options have no meaning for them.
    const ignored = ["duration", "rate", "bad-rate", "fans", "clock-speed"].filter(
      (key) => values[key as keyof typeof values] !== undefined,
    );
    if (ignored.length > 0)
      throw new UsageError(`--drill sets its own traffic: --${ignored.join(", --")} cannot be given with it`);
  }
  return {
    help: values.help === true,
    stack: values.stack!,
    durationMs: values.duration === undefined ? undefined : number(values, "duration", 0, (n) => n > 0) * 1000,
    rate: number(values, "rate", 100, (n) => n > 0),
    badRate: number(values, "bad-rate", 0.02, (n) => n >= 0 && n <= 1),
    fans: number(values, "fans", 1000, (n) => Number.isInteger(n) && n > 0),
    clockSpeed: number(values, "clock-speed", 1, (n) => n >= 1),
    seed: values.seed ?? "1",
    dataDir: values["data-dir"],
    keep: values.keep === true,
    json: values.json,
    drill: values.drill,
  };
}

/**
 * Writes what a curl to the gateway needs (an accepted API key with a fan's SOTC) to a file only
 * the user can read, rather than to the terminal; answers its path.
 */
async function writeCredentials(
  dataDir: string,
  gateway: string,
  standIns: LocalStandIns,
  globalUserId: string,
): Promise<string> {
  const file = path.join(dataDir, "credentials.json");
  const sotc = await standIns.accounts.issueSotc({ globalUserId });
  const document = { gateway, globalUserId, authorization: `${standIns.secrets.apiKeys[0]}:${sotc}` };
  fs.writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
  return file;
}

/** `--drill NAME` (or `all`): the drills on the system booted once; 1 if one failed. */
async function runDrills(
  args: ReturnType<typeof parse>,
  plan: { resources: Parameters<typeof startDrillRunner>[0]["resources"]; accountId: string; signingKeyId?: string },
  dataDir: string,
): Promise<number> {
  const drills = drillsNamed(args.drill!);
  const runner = await startDrillRunner({
    resources: plan.resources,
    accountId: plan.accountId,
    dataDir,
    signingKeyId: plan.signingKeyId,
    seed: args.seed,
    progress: (line) => console.error(line),
  });
  const reports: DrillReport[] = [];
  try {
    for (const drill of drills) {
      const report = await runner.run(drill);
      reports.push(report);
      console.log(renderDrillReport(report));
    }
  } finally {
    await runner.stop();
  }
  if (reports.length > 1) console.log(reports.map(drillSummaryLine).join("\n"));
  if (args.json) fs.writeFileSync(args.json, `${drillReportsJson(reports)}\n`);
  return reports.every((report) => report.ok) ? 0 : 1;
}

async function main(): Promise<number> {
  const args = parse();
  if (args.help) return (console.log(USAGE), 0);
  if (args.drill === "list") {
    for (const drill of DRILLS) console.log(`${drill.name.padEnd(22)} ${drill.summary}`);
    return 0;
  }
  if (args.drill !== undefined) {
    try {
      drillsNamed(args.drill);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  await ensureRedisServer({ log: (line) => console.error(line) });
  console.error(`Planning ${args.stack} offline…`);
  const { stackFile, run } = await planStack(args.stack);
  if (run.errors.length > 0)
    throw new Error(`stack ${args.stack}: the program failed: ${run.errors.map((e) => e.message).join("; ")}`);
  const dataDir = args.dataDir
    ? path.resolve(args.dataDir)
    : fs.mkdtempSync(path.join(os.tmpdir(), `fan-identity-${args.stack}-`));
  const idv = JSON.parse(stackFile.values[`${PROJECT}:idv`] ?? "{}") as { signingKeyId?: string };
  const accountId = stackFile.values[`${PROJECT}:accountId`] ?? "000000000000";
  if (args.drill !== undefined) {
    console.error(`Starting the local system for drills (data in ${dataDir})…`);
    // A drill is not interrupted half-way with its fault left in place: Ctrl-C ends everything.
    const onDrillSignal = () => void stopAll().finally(() => process.exit(130));
    process.once("SIGINT", onDrillSignal).once("SIGTERM", onDrillSignal);
    try {
      return await runDrills(args, { resources: run.resources, accountId, signingKeyId: idv.signingKeyId }, dataDir);
    } finally {
      await stopAll();
      if (!args.keep) fs.rmSync(dataDir, { recursive: true, force: true });
      else console.error(`Kept ${dataDir}`);
    }
  }
  const abort = new AbortController();
  const onSignal = () => (abort.signal.aborted ? process.exit(130) : abort.abort());
  process.on("SIGINT", onSignal).on("SIGTERM", onSignal);
  console.error(`Starting the local system (data in ${dataDir})…`);
  try {
    const outcome = await runLocal({
      resources: run.resources,
      accountId,
      dataDir,
      durationMs: args.durationMs,
      rate: args.rate,
      badRate: args.badRate,
      fans: args.fans,
      seed: args.seed,
      clockSpeed: args.clockSpeed,
      signingKeyId: idv.signingKeyId,
      signal: abort.signal,
      output: process.stdout,
      onStarted: async ({ system, standIns, generator }) => {
        const routes = system.wiring.routes.map((route) => `${route.method} ${route.path}`).join(", ");
        console.error(`Gateway: ${system.gateway.url} (POST /graphql/<field>, ${routes})`);
        console.error(`Lambda Invoke API: ${system.endpoints.lambda}/2015-03-31/functions/<name or ARN>/invocations`);
        const { sqs, kinesis, lambda } = system.endpoints;
        // What an AWS SDK or CLI (npm run redrive) needs to reach the local services; they check no credentials.
        console.error(
          `For the AWS SDK: export AWS_ENDPOINT_URL_SQS=${sqs} AWS_ENDPOINT_URL_KINESIS=${kinesis} AWS_ENDPOINT_URL_LAMBDA=${lambda}`,
        );
        console.error(
          `Credentials for curl: ${await writeCredentials(dataDir, system.gateway.url, standIns, generator.fans[0]!)}`,
        );
      },
    });
    if (outcome.ledger) console.log(`\n${renderLedger(outcome.ledger)}`);
    if (args.json) {
      const ledger = outcome.ledger ? JSON.parse(ledgerJson(outcome.ledger)) : undefined;
      fs.writeFileSync(
        args.json,
        `${JSON.stringify({ figures: outcome.figures, ledger, staleScores: outcome.staleScores }, null, 2)}\n`,
      );
    }
    return outcome.ledger && !outcome.ledger.ok ? 1 : 0;
  } finally {
    await stopAll();
    if (!args.keep) fs.rmSync(dataDir, { recursive: true, force: true });
    else console.error(`Kept ${dataDir}`);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(
      error instanceof UsageError ? `${error.message}\n${USAGE}` : error instanceof Error ? error.message : String(error),
    );
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
