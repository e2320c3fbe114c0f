/**
 * npm run bench [-- <name> …]
 *
 * Runs the named benchmarks (all by default) and prints their figures. Benchmarks measure;
 * they assert nothing.
 */
import { benchArchives } from "./archives";
import { benchArmScore } from "./armScore";
import { benchBundles } from "./bundles";
import { benchEndToEnd } from "./endToEnd";
import { benchLocalTable } from "./localTable";
import { benchMetrics } from "./metrics";
import { benchScoring } from "./scoring";

const BENCHMARKS: Record<string, () => Promise<void>> = {
  archives: benchArchives,
  armScore: benchArmScore,
  bundles: benchBundles,
  endToEnd: benchEndToEnd,
  localTable: benchLocalTable,
  metrics: benchMetrics,
  scoring: benchScoring,
};

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  process.env.POWERTOOLS_LOG_LEVEL ??= "WARN";
  const names = process.argv.slice(2);
  const unknown = names.filter((name) => !(name in BENCHMARKS));
  if (unknown.length > 0)
    throw new Error(`unknown benchmark ${unknown.join(", ")}; there are: ${Object.keys(BENCHMARKS).join(", ")}`);
  for (const name of names.length > 0 ? names : Object.keys(BENCHMARKS)) {
    await BENCHMARKS[name]!();
    console.log();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
