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
import type { BuildOptions, Plugin } from "esbuild";

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
export const BUNDLE_OPTIONS: BuildOptions & { write: false } = {
  bundle: true,
  platform: "node",
  target: BUNDLE_TARGET,
  format: "cjs",
  // ES module builds first, so esbuild can drop what a worker never calls: the AWS SDK's packages
  // ship both, and their CommonJS builds put every command of a service in one module.
  mainFields: ["module", "main"],
  minify: true,
  keepNames: true,
  legalComments: "none",
  write: false,
  logLevel: "silent",
};

/**
 * The serialized module reaches its packages through `require()`, where a handler's own code would
 * `import` them; esbuild would then take each package's CommonJS build, whole. This resolves the
 * serialized module's own requires as imports instead, so a package's ES module build is bundled
 * (and what the worker never reaches can be left out), as in a plain bundle of the handler. Pulumi
 * also names a module by its file when that is the package's entry point
 * (`@aws-sdk/client-sqs/dist-cjs/index.js`); such a require is resolved by the package's name.
 */
function serializedRequiresAsImports(entry: string): Plugin {
  return {
    name: "serialized-requires-as-imports",
    setup(build) {
      build.onResolve({ filter: /^[^./]/ }, async (args) => {
        if (args.importer !== entry || args.kind !== "require-call") return undefined;
        const resolved = await build.resolve(packageEntryName(args.path, args.resolveDir), {
          kind: "import-statement",
          resolveDir: args.resolveDir,
        });
        return resolved.errors.length > 0 ? undefined : resolved;
      });
    },
  };
}

/** `pkg` for `pkg/some/file.js` when that file is the package's entry point; else the path as given. */
function packageEntryName(id: string, from: string): string {
  const name = /^(@[^/]+\/)?[^/]+/.exec(id)?.[0];
  if (!name || name === id) return id;
  try {
    const resolve = (request: string) => require.resolve(request, { paths: [from] });
    return resolve(id) === resolve(name) ? name : id;
  } catch {
    return id;
  }
}

const BUILTINS: ReadonlySet<string> = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/**
 * Bundles `source` (a CommonJS module) with what it requires, resolved from the project root, into
 * one file. A package that cannot be resolved, or that the bundle would still require at run time,
 * fails the plan, naming the worker and the package.
 */
export async function bundle(worker: string, source: string, root = projectRoot()): Promise<string> {
  const esbuild = await import("esbuild");
  const sourcefile = `${worker}/__index.js`;
  try {
    const result = await esbuild.build({
      ...BUNDLE_OPTIONS,
      metafile: true,
      plugins: [serializedRequiresAsImports(path.join(root, sourcefile))],
      stdin: { contents: source, resolveDir: root, sourcefile, loader: "js" },
    });
    const left = Object.values(result.metafile!.outputs)
      .flatMap((output) => output.imports)
      .filter((imported) => imported.external && !BUILTINS.has(imported.path))
      .map((imported) => imported.path);
    if (left.length > 0) throw new Error(`${worker}: its bundle would still require ${[...new Set(left)].join(", ")}`);
    return result.outputFiles![0]!.text;
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
