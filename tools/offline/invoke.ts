/**
 * node invoke.js <archiveDir> <eventFile> <resultFile> [times]
 *
 * Loads a written Lambda archive in this fresh process, as the Lambda runtime would (require
 * `__index.js`, call `handler`), invokes it with the event (`times` times, default 1) and writes
 * the results and timings as JSON to `resultFile`. Run by tests and benchmarks.
 */
import * as fs from "node:fs";
import * as path from "node:path";

import type { InvokeReport } from "./archive";

async function main(): Promise<void> {
  const [dir, eventFile, resultFile, times = "1"] = process.argv.slice(2);
  if (!dir || !eventFile || !resultFile) throw new Error("usage: invoke.js <archiveDir> <eventFile> <resultFile> [times]");
  const event = JSON.parse(fs.readFileSync(eventFile, "utf8")) as unknown;
  const started = performance.now();
  const { handler } = require(path.resolve(dir, "__index.js")) as {
    handler: (event: unknown, context: unknown) => Promise<unknown>;
  };
  const report: { -readonly [K in keyof Omit<InvokeReport, "logs">]: InvokeReport[K] } = {
    loadMs: performance.now() - started,
    invocations: [],
    firstResultMs: 0,
  };
  const context = {
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME ?? "local",
    awsRequestId: "00000000-0000-4000-8000-000000000000",
    getRemainingTimeInMillis: () => 30_000,
  };
  for (let i = 0; i < Number(times); i++) {
    const at = performance.now();
    try {
      const result = await handler(structuredClone(event), context);
      report.invocations.push({ ms: performance.now() - at, result });
    } catch (error) {
      const { name, message } = error as Error;
      report.invocations.push({ ms: performance.now() - at, error: { name, message } });
    }
    if (i === 0) report.firstResultMs = process.uptime() * 1000;
  }
  fs.writeFileSync(resultFile, JSON.stringify(report));
}

// Lambda answers when the handler's promise settles and freezes the container, whatever it keeps
// open (a Redis connection, say): the runner exits likewise.
main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
