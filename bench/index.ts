/**
 * npm run bench [-- <name> …]
 *
 * Runs the named parts (all by default) and prints their figures in one table: each line its
 * figure, the anchor it is read against (measured in the same run), and its target. Benchmarks
 * measure; they assert nothing.
 */
import * as os from "node:os";
import { benchArchives } from "./archives";
import { benchArmScore } from "./armScore";
import { benchBundles } from "./bundles";
import { benchEndToEnd } from "./endToEnd";
import { benchLocalTable } from "./localTable";
import { benchMetrics } from "./metrics";
import { benchPlan } from "./plan";
import { benchTable, type Part } from "./report";
import { benchScoring } from "./scoring";

/** The parts, in the order they run: the plan spawns first, while this process holds no plan. */
const BENCHMARKS: Record<string, () => Promise<Part>> = {
  plan: benchPlan,
  bundles: benchBundles,
  archives: benchArchives,
  scoring: benchScoring,
  metrics: benchMetrics,
  armScore: benchArmScore,
  localTable: benchLocalTable,
  endToEnd: benchEndToEnd,
};

const load = () =>
  os
    .loadavg()
    .map((value) => value.toFixed(2))
    .join(" ");

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  process.env.POWERTOOLS_LOG_LEVEL ??= "WARN";
  const names = process.argv.slice(2);
  const unknown = names.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0)
    throw new Error(`unknown benchmark ${unknown.join(", ")}; there are: ${Object.keys(BENCHMARKS).join(", ")}`);
  const started = performance.now();
  const loadBefore = load();
  const parts: [string, Part][] = [];
  for (const name of names.length > 0 ? names : Object.keys(BENCHMARKS)) {
    const partStarted = performance.now();
    const part = await BENCHMARKS[name]!();
    parts.push([name, { ...part, how: `${part.how} [${((performance.now() - partStarted) / 1000).toFixed(0)} s]` }]);
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `Bench (Node ${process.version}, ${os.cpus().length} cores, load ${loadBefore} → ${load()}, ${seconds.toFixed(0)} s); how each part measured:`,
  );
  console.log(benchTable(parts));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
