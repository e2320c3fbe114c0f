/**
 * Each worker's archive against its anchor: the zipped archive the program deploys (the serialized
 * factory, bundled), next to a plain esbuild bundle of the same handler with the same options
 * (`workers/<name>/index.ts`, its `factory()` exported as `handler`; the AWS SDK inside on both
 * sides). Target: the archive at most 1.1× the plain bundle.
 */
import * as path from "node:path";
import { BUNDLE_OPTIONS, projectRoot } from "../components/archive";
import { ZIP_END_BYTES, zippedEntryBytes } from "../tools/offline/archive";
import { planStack } from "../test/support/program";
import { WORKERS } from "../workers/registry";
import { met, type Part, type Row } from "./report";

/** What an archive may weigh against the plain bundle of its handler. */
export const ARCHIVE_TARGET_RATIO = 1.1;

const zipped = (content: string) => ZIP_END_BYTES + zippedEntryBytes("__index.js", content);

async function plainBundle(worker: string, root: string): Promise<string> {
  const esbuild = await import("esbuild");
  const entry = path.join(root, "workers", worker, "index.ts");
  const contents = `exports.handler = require(${JSON.stringify(entry)}).${worker}.factory();`;
  const result = await esbuild.build({ ...BUNDLE_OPTIONS, stdin: { contents, resolveDir: root, loader: "js" } });
  return result.outputFiles![0]!.text;
}

export async function benchBundles(): Promise<Part> {
  // qa1 deploys every worker, the Kafka consumer included; the archives bench runs the same plan.
  const stack = "qa1";
  const plan = await planStack(stack);
  const root = projectRoot();
  const rows: Row[] = [];
  for (const name of Object.keys(WORKERS)) {
    const what = `${name} archive, zipped`;
    const fn = plan
      .ofType("aws:lambda/function:Function")
      .find((candidate) => String(candidate.inputs.name).endsWith(`-${name}`));
    if (!fn) {
      rows.push({ what, figure: `not deployed in ${stack}`, target: `≤ ${ARCHIVE_TARGET_RATIO}×` });
      continue;
    }
    const assets = await (fn.inputs.code as { assets: Promise<Record<string, { text?: Promise<string> }>> }).assets;
    const archive = zipped(await assets["__index.js"]!.text!);
    const plain = zipped(await plainBundle(name, root));
    const ratio = archive / plain;
    rows.push({
      what: Object.keys(assets).length === 1 ? what : `${what} (${Object.keys(assets).length} files)`,
      figure: `${(archive / 1e3).toFixed(0)} KB`,
      anchor: `plain esbuild bundle ${(plain / 1e3).toFixed(0)} KB`,
      against: `${ratio.toFixed(3)}×`,
      target: `≤ ${ARCHIVE_TARGET_RATIO}×`,
      met: met(ratio <= ARCHIVE_TARGET_RATIO),
    });
  }
  return {
    how: `each ${stack} archive's __index.js zipped, against the handler bundled plainly (same options, SDK inside both)`,
    rows,
  };
}
