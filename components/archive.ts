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
import { createHash } from "node:crypto";
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

/**
 * zod/mini, narrowed to what the serialized module reads of it. The workers' schemas take `z` from
 * workers/shared/zod.ts, and the serialized module holds it as a whole namespace
 * (`require("zod/mini")`): left so, esbuild would keep and initialise all of zod/mini at cold start
 * (its core, JSON Schema and compiler included: as much CPU as classic zod, ~100 ms). The module
 * gets instead a namespace of only the exports named as a property anywhere in its code, and esbuild
 * leaves the rest out. A property name is an over-approximation of a use, never less.
 */
function zodMiniAsUsed(entry: string, source: string, root: string): Plugin {
  const NAMESPACE = "zod-mini-as-used";
  return {
    name: NAMESPACE,
    setup(build) {
      build.onResolve({ filter: /^zod\/mini$/ }, (args) =>
        args.importer === entry && args.kind === "require-call" ? { path: "zod/mini", namespace: NAMESPACE } : undefined,
      );
      build.onLoad({ filter: /.*/, namespace: NAMESPACE }, () => {
        const exported = Object.keys(require(require.resolve("zod/mini", { paths: [root] })) as object);
        const read = new Set(Array.from(source.matchAll(/\.\s*([A-Za-z_$][\w$]*)/g), (match) => match[1]));
        // `z` is zod/mini's alias of its whole namespace: the module reads `.z` of workers/shared/zod.ts.
        const used = exported.filter((name) => name !== "z" && read.has(name));
        return { contents: `export { ${used.join(", ")} } from "zod/mini";`, resolveDir: root, loader: "js" };
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
  const entry = path.join(root, sourcefile);
  try {
    const result = await esbuild.build({
      ...BUNDLE_OPTIONS,
      metafile: true,
      plugins: [zodMiniAsUsed(entry, source, root), serializedRequiresAsImports(entry)],
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
  return { "__index.js": new pulumi.asset.StringAsset(await workerCode(worker, factory)) };
}

/** The code of a worker's archive (its `__index.js`): kept from an earlier plan, or made now. */
export async function workerCode(worker: string, factory: () => unknown): Promise<string> {
  const kept = keptArchive(worker);
  const cached = kept?.read();
  if (cached !== undefined) return cached;
  const serialized = await pulumi.runtime.serializeFunction(factory, {
    serialize: () => true,
    exportName: "handler",
    isFactoryFunction: true,
    allowSecrets: true,
  });
  if (serialized.containsSecrets) {
    throw new Error(`${worker}: its code captures a Pulumi secret; pass secrets through Secrets Manager instead`);
  }
  const code = await bundle(worker, serialized.text);
  kept?.write(code);
  return code;
}

/**
 * Where the offline plan keeps the archives it bundled, to use again while nothing they are made
 * from has changed; unset (the default, and always under the Pulumi CLI), every archive is made
 * afresh. Serializing and bundling fifteen workers is most of a plan's time, and a plan is run
 * again and again while the code stays the same.
 */
let archiveStore: string | undefined;

export function keepArchivesIn(dir: string | undefined): void {
  archiveStore = dir;
}

/**
 * A kept archive is named by a digest of everything it is made from: the worker, the workers'
 * code as this process loads it (the directory beside this module: compiled JS in a build, or the
 * TypeScript sources under ts-node), the locked package versions, the Node and Pulumi versions
 * that serialize it, and this module with its bundle options. The workers' code captures nothing
 * from the planning process but code (nothing under workers/ reads configuration at load), so the
 * same inputs make the same archive.
 */
function keptArchive(worker: string): { read(): string | undefined; write(code: string): void } | undefined {
  if (!archiveStore) return undefined;
  const store = archiveStore;
  const file = path.join(store, `${worker}-${archiveDigest(worker)}.js`);
  return {
    read: () => (fs.existsSync(file) ? fs.readFileSync(file, "utf8") : undefined),
    write(code) {
      fs.mkdirSync(store, { recursive: true });
      // The worker's archives of earlier code go: only the current one is ever read.
      for (const old of fs.readdirSync(store)) {
        if (old.startsWith(`${worker}-`) && old.endsWith(".js")) fs.rmSync(path.join(store, old), { force: true });
      }
      const partial = `${file}.${process.pid}.partial`;
      fs.writeFileSync(partial, code);
      fs.renameSync(partial, file);
    },
  };
}

let inputsDigest: string | undefined;

function archiveDigest(worker: string): string {
  if (inputsDigest === undefined) {
    const hash = createHash("sha256");
    const root = projectRoot();
    const versionOf = (name: string) =>
      (JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`, { paths: [root] }), "utf8")) as { version: string })
        .version;
    hash.update(JSON.stringify([process.version, versionOf("@pulumi/pulumi"), versionOf("esbuild"), BUNDLE_OPTIONS]));
    hash.update(fs.readFileSync(path.join(root, "package-lock.json")));
    // How an archive is bundled is this module's code, as much as the options are.
    hash.update(fs.readFileSync(__filename));
    const workers = path.resolve(__dirname, "../workers");
    for (const file of filesUnder(workers)) {
      hash.update(path.relative(workers, file));
      hash.update(fs.readFileSync(file));
    }
    inputsDigest = hash.digest("hex");
  }
  return createHash("sha256").update(inputsDigest).update(worker).digest("hex").slice(0, 16);
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      return entry.isDirectory() ? filesUnder(full) : [full];
    });
}
