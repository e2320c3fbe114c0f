/**
 * npm run invoke -- <worker> <event.json> [--stack qa1]
 *
 * Runs one worker's real archive, as the stack plans it, once, against the local services (the
 * table, queues, secrets and stand-ins the plan wires it to), as `sam local invoke` does: the
 * answer goes to stdout as JSON, the worker's log lines to stderr. Exits 1 when the handler
 * failed (threw, timed out, or its process died).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { PROJECT } from "../../stacks/config";
import { planStack } from "../offline/planStack";
import { ensureRedisServer } from "./prerequisites";
import { stopAll } from "./processes";
import { startStandIns } from "./standIns";
import { startLocalSystem } from "./system";
import type { LocalEvent } from "./types";

const USAGE = "usage: npm run invoke -- <worker> <event.json> [--stack <name>]";

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { stack: { type: "string", default: "qa1" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return (console.log(USAGE), 0);
  const [worker, eventFile] = positionals;
  if (!worker || !eventFile || positionals.length > 2) return (console.error(USAGE), 2);
  let event: unknown;
  try {
    event = JSON.parse(fs.readFileSync(eventFile, "utf8"));
  } catch (error) {
    console.error(`${eventFile}: ${(error as Error).message}`);
    return 2;
  }
  await ensureRedisServer({ log: (line) => console.error(line) });
  const { stackFile, run } = await planStack(values.stack!);
  if (run.errors.length > 0)
    throw new Error(`stack ${values.stack}: the program failed: ${run.errors.map((e) => e.message).join("; ")}`);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `fan-identity-invoke-${worker}-`));
  const report = (entry: LocalEvent) => {
    if (entry.kind === "log") console.error(JSON.stringify(entry.line));
    else if (entry.kind === "output") console.error(entry.text);
  };
  const idv = JSON.parse(stackFile.values[`${PROJECT}:idv`] ?? "{}") as { signingKeyId?: string };
  try {
    const system = await startLocalSystem({
      resources: run.resources,
      accountId: stackFile.values[`${PROJECT}:accountId`] ?? "000000000000",
      dataDir,
      report,
      workers: [worker],
      mappings: false,
      standIns: (context) => startStandIns(context, { resources: run.resources, signingKeyId: idv.signingKeyId }),
    });
    try {
      const fn = system.wiring.functions[0]!;
      const outcome = await system.invoke(fn.name, event);
      const summary = `${fn.name}: ${outcome.coldStart ? "cold start, " : ""}${outcome.ms.toFixed(1)} ms`;
      console.error(outcome.error ? `${summary}, failed` : summary);
      console.log(JSON.stringify(outcome.error ?? outcome.result, null, 2));
      return outcome.error ? 1 : 0;
    } finally {
      await system.stop();
    }
  } finally {
    await stopAll();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exit(1);
  },
);
