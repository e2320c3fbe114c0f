/**
 * What goes into a worker's Lambda archive: one minified file holding exactly the code the worker
 * executes. The worker's factory is serialized by Pulumi (the design's inline callbacks, closure
 * serialization and all), and the serialized module is bundled by esbuild with every package it
 * requires. Left alone, `CallbackFunction` would pack every package in `dependencies`,
 * transitively: 1.2k–4.9k files and 2–5 MB zipped per worker, where the bundle is a few hundred KB.
 *
 * The AWS SDK v3 ships inside the bundle rather than coming from the Lambda runtime: the archive
 * then runs the SDK version the tests ran, not whichever the runtime carries that day. Function and
 * class names are kept (`keepNames`), so a stack trace still names `createScoreUsers` or
 * `ModelServingError`; the code is minified otherwise.
 */
import * as fs from "node:fs";
import { builtinModules } from "node:module";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

/** The project root, found the way Pulumi finds it: the nearest package.json above the working directory. */
export function projectRoot(from = process.cwd()): string {
  let dir = path.resolve(from);
  while (!fs.existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  return dir;
}

/** The Node major version the bundles target: the functions' runtime, `nodejs24.x`. */
export const BUNDLE_TARGET = "node24";

/** esbuild's options for a worker bundle; the benchmarks bundle their anchors with the same. */
export const BUNDLE_OPTIONS = {
  bundle: true,
  platform: "node",
  target: BUNDLE_TARGET,
  format: "cjs",
  minify: true,
  keepNames: true,
  legalComments: "none",
  write: false,
  logLevel: "silent",
} as const;

const BUILTINS: ReadonlySet<string> = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/**
 * Bundles `source` (a CommonJS module) with what it requires, resolved from the project root, into
 * one file. A package that cannot be resolved, or that the bundle would still require at run time,
 * fails the plan, naming the worker and the package.
 */
export async function bundle(worker: string, source: string, root = projectRoot()): Promise<string> {
  const esbuild = await import("esbuild");
  try {
    const result = await esbuild.build({
      ...BUNDLE_OPTIONS,
      metafile: true,
      stdin: { contents: source, resolveDir: root, sourcefile: `${worker}/__index.js`, loader: "js" },
    });
    const left = Object.values(result.metafile.outputs)
      .flatMap((output) => output.imports)
      .filter((imported) => imported.external && !BUILTINS.has(imported.path))
      .map((imported) => imported.path);
    if (left.length > 0) throw new Error(`${worker}: its bundle would still require ${[...new Set(left)].join(", ")}`);
    return result.outputFiles[0]!.text;
  } catch (error) {
    const failures = (error as { errors?: { text: string }[] }).errors?.map((failure) => failure.text) ?? [String(error)];
    throw new Error(
      `${worker}: its code cannot be bundled: ${failures.join("; ")} (is the package in dependencies? run npm ci)`,
      {
        cause: error,
      },
    );
  }
}

/**
 * A worker's Lambda archive: the factory serialized as `CallbackFunction` would (`__index.js`,
 * exporting `handler`), bundled into that one file. A Pulumi secret captured in the code fails the
 * plan.
 */
export function workerArchive(worker: string, factory: () => unknown): pulumi.asset.AssetArchive {
  // A worker deployed in two regions is serialized and bundled once.
  let assets = archives.get(factory);
  if (!assets) archives.set(factory, (assets = bundleWorker(worker, factory)));
  return new pulumi.asset.AssetArchive(assets);
}

const archives = new WeakMap<() => unknown, Promise<pulumi.asset.AssetMap>>();

async function bundleWorker(worker: string, factory: () => unknown): Promise<pulumi.asset.AssetMap> {
  const serialized = await pulumi.runtime.serializeFunction(factory, {
    serialize: () => true,
    exportName: "handler",
    isFactoryFunction: true,
    allowSecrets: true,
  });
  if (serialized.containsSecrets) {
    throw new Error(`${worker}: its code captures a Pulumi secret; pass secrets through Secrets Manager instead`);
  }
  return { "__index.js": new pulumi.asset.StringAsset(await bundle(worker, serialized.text)) };
}
