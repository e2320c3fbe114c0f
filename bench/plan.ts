/**
 * How long `npm run plan -- --stack <s>` takes, per stack: `node build/tools/plan.js` spawned
 * fresh (after the build, so without tsc), wall time from spawn to exit, median of the runs,
 * the stacks taken in turn in each round. Anchor: an empty Node process spawned the same way.
 * Target: 5 s for prod1, the stack with the most resources; the others are held to it too.
 */
import { spawn } from "node:child_process";
import * as path from "node:path";
import { projectRoot } from "../components/archive";
import { median, met, type Part, type Row } from "./report";

const STACKS = ["qa1", "dev1", "preprod1", "prod1", "sandbox1"];
const RUNS = Number(process.env.BENCH_PLAN_RUNS ?? 3);
const TARGET_S = 5;

/** Wall seconds from spawning `node <args>` to its exit; rejects with its stderr if it fails. */
function timed(args: readonly string[]): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: projectRoot(), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) resolve((performance.now() - started) / 1000);
      else reject(new Error(`exit ${code}: ${stderr.trim().split("\n").slice(-1)[0] ?? ""}`));
    });
  });
}

export async function benchPlan(): Promise<Part> {
  const planJs = path.join(__dirname, "..", "tools", "plan.js");
  const times = new Map<string, number[] | string>(STACKS.map((stack) => [stack, []]));
  const empty: number[] = [];
  for (let round = 0; round < RUNS; round++) {
    empty.push(await timed(["-e", ""]));
    for (const stack of STACKS) {
      const runs = times.get(stack);
      if (typeof runs !== "object") continue;
      try {
        runs.push(await timed([planJs, "--stack", stack]));
      } catch (error) {
        times.set(stack, (error as Error).message);
      }
    }
  }
  const anchor = `empty node process ${median(empty).toFixed(2)} s`;
  const rows: Row[] = STACKS.map((stack) => {
    const runs = times.get(stack)!;
    const what = `plan ${stack} (spawn → exit)`;
    const target = `≤ ${TARGET_S} s`;
    if (typeof runs !== "object") return { what, figure: `failed: ${runs}`, anchor, target, met: "no" };
    return { what, figure: `${median(runs).toFixed(2)} s`, anchor, target, met: met(median(runs) <= TARGET_S) };
  });
  return { how: `node build/tools/plan.js --stack <s> spawned fresh, wall time, median of ${RUNS} rounds over the stacks`, rows };
}
