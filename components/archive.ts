/**
 * What goes into a worker's Lambda archive. Left alone, `CallbackFunction` packs every package in
 * `dependencies`, transitively (the Pulumi SDK and AWS clients the worker never loads included).
 * The packages a worker needs are read from its serialized code; this computes the rest of the
 * project's dependencies so they can be excluded, following what each needed package depends on,
 * its peers and its installed optional dependencies (Pulumi's own walk does not follow peers).
 */
import * as fs from "node:fs";
import { builtinModules } from "node:module";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

interface PackageJson {
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

const readJson = (file: string): PackageJson => JSON.parse(fs.readFileSync(file, "utf8")) as PackageJson;

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

/** Directory of the installed package `name` as Node resolves it from `fromDir`. */
function packageDir(name: string, fromDir: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, "node_modules", name);
    if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

export interface RuntimeClosure {
  /** Every package the named packages need at run time, by name. */
  readonly needed: ReadonlySet<string>;
  /** Those reached only as someone's peer dependency. */
  readonly peers: ReadonlySet<string>;
}

export function runtimeClosure(packages: readonly string[], root = projectRoot()): RuntimeClosure {
  const needed = new Set<string>();
  const viaDependency = new Set<string>();
  const peers = new Set<string>();
  const seenDirs = new Set<string>();
  const visit = (name: string, fromDir: string, required: boolean, asPeer: boolean): void => {
    const dir = packageDir(name, fromDir);
    if (!dir) {
      if (required) throw new Error(`package "${name}" is needed at run time but is not installed (run npm ci)`);
      return;
    }
    needed.add(name);
    (asPeer ? peers : viaDependency).add(name);
    if (seenDirs.has(dir)) return;
    seenDirs.add(dir);
    const manifest = readJson(path.join(dir, "package.json"));
    for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dep, dir, true, false);
    for (const dep of Object.keys(manifest.optionalDependencies ?? {})) visit(dep, dir, false, false);
    for (const dep of Object.keys(manifest.peerDependencies ?? {})) {
      visit(dep, dir, !manifest.peerDependenciesMeta?.[dep]?.optional, true);
    }
  };
  for (const name of packages) visit(name, root, true, false);
  for (const name of viaDependency) peers.delete(name);
  return { needed, peers };
}

export interface ArchivePackages {
  /** Packages of `dependencies` the worker does not need. */
  readonly extraExcludePackages: string[];
  /** Needed peers that are not themselves in `dependencies`, which Pulumi's walk would miss. */
  readonly extraIncludePackages: string[];
}

const cache = new Map<string, ArchivePackages>();

/** The `codePathOptions` that keep a worker's archive to the packages its code requires. */
export function archivePackages(worker: string, packages: readonly string[], root = projectRoot()): ArchivePackages {
  const key = `${root}\0${[...packages].sort().join(",")}`;
  const known = cache.get(key);
  if (known) return known;
  const dependencies = Object.keys(readJson(path.join(root, "package.json")).dependencies ?? {});
  const undeclared = packages.filter((name) => !dependencies.includes(name));
  if (undeclared.length > 0) {
    throw new Error(
      `${worker} requires ${undeclared.join(", ")} at run time, which package.json does not list in dependencies: ` +
        `add it there (npm install ${undeclared.join(" ")}), not to devDependencies`,
    );
  }
  const { needed, peers } = runtimeClosure(packages, root);
  const result: ArchivePackages = {
    extraExcludePackages: dependencies.filter((name) => !needed.has(name)).sort(),
    extraIncludePackages: [...peers].filter((name) => !dependencies.includes(name)).sort(),
  };
  cache.set(key, result);
  return result;
}

const BUILTINS: ReadonlySet<string> = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]));

/** The npm packages serialized code requires, by package name (`@scope/name` or `name`), sorted. */
export function requiredPackages(source: string): string[] {
  const names = [...source.matchAll(/require\("([^"]+)"\)/g)]
    .map((match) => match[1]!)
    .filter((name) => !BUILTINS.has(name) && !name.startsWith("."))
    .map((name) =>
      name
        .split("/")
        .slice(0, name.startsWith("@") ? 2 : 1)
        .join("/"),
    );
  return [...new Set(names)].sort();
}

/**
 * A worker's Lambda archive, as `aws.lambda.CallbackFunction` would build it (the factory
 * serialized to `__index.js`, exporting `handler`), but with its packages derived from what the
 * serialized code requires rather than listed by hand: the archive holds those packages and what
 * they need at run time, and nothing else from `node_modules`. A package the code requires that
 * package.json does not list, or a Pulumi secret captured in the code, fails the plan.
 */
export function workerArchive(worker: string, factory: () => unknown): pulumi.asset.AssetArchive {
  // A worker deployed in two regions is serialized once.
  let assets = archives.get(factory);
  if (!assets) archives.set(factory, (assets = serializeWorker(worker, factory)));
  return new pulumi.asset.AssetArchive(assets);
}

const archives = new WeakMap<() => unknown, Promise<pulumi.asset.AssetMap>>();

function serializeWorker(worker: string, factory: () => unknown): Promise<pulumi.asset.AssetMap> {
  return pulumi.runtime
    .serializeFunction(factory, { serialize: () => true, exportName: "handler", isFactoryFunction: true, allowSecrets: true })
    .then(async (serialized) => {
      if (serialized.containsSecrets) {
        throw new Error(`${worker}: its code captures a Pulumi secret; pass secrets through Secrets Manager instead`);
      }
      const packages = archivePackages(worker, requiredPackages(serialized.text));
      // Lambda's Node.js runtimes have no v2 SDK to provide, but CallbackFunction excludes it; so do we.
      const modules = await pulumi.runtime.computeCodePaths({
        extraIncludePackages: packages.extraIncludePackages,
        extraExcludePackages: [...packages.extraExcludePackages, "aws-sdk"],
      });
      return { "__index.js": new pulumi.asset.StringAsset(serialized.text), ...Object.fromEntries(modules) };
    });
}
