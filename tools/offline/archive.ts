/**
 * The Lambda archive exactly as `CallbackFunction` hands it to Pulumi, written to a directory so
 * it can be run in a fresh Node process and measured. Written outside the project, so that a
 * package missing from the archive cannot be found in the project's own node_modules.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";

interface AssetLike {
  readonly text?: Promise<string> | string;
  readonly path?: Promise<string> | string;
  readonly assets?: Promise<Record<string, AssetLike>> | Record<string, AssetLike>;
}

export interface WrittenArchive {
  readonly dir: string;
  readonly files: number;
  /** Bytes on disk, uncompressed. */
  readonly bytes: number;
  /** Size of the zip Pulumi would upload: deflated entries plus zip headers. */
  readonly zippedBytes: number;
  /** The serialized handler (`__index.js`). */
  readonly handlerSource: string;
}

/**
 * Writes the function's `code` archive (as recorded under mocks) into `dir`, as Lambda unpacks
 * it; returns the directory.
 */
export async function extractArchive(
  code: unknown,
  label: string,
  dir: string,
  options: { link?: boolean } = {},
): Promise<string> {
  const assets = await (code as AssetLike).assets;
  if (!assets) throw new Error(`${label}: the function has no code archive (did serialization fail?)`);
  fs.mkdirSync(dir, { recursive: true });
  for (const [entry, asset] of Object.entries(assets)) {
    const target = path.join(dir, entry);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    if (asset.text !== undefined) {
      fs.writeFileSync(target, await asset.text);
    } else if (asset.path !== undefined) {
      const source = path.resolve(await asset.path);
      if (options.link) linkTree(source, target);
      else fs.cpSync(source, target, { recursive: true, dereference: true });
    } else {
      throw new Error(`${label}: archive entry ${entry} is neither text nor a path`);
    }
  }
  return dir;
}

/**
 * Copies a file or directory as hard links (the bytes are not copied; a file on another device
 * is). The archive's files are never written to, so sharing them with the project is safe.
 */
function linkTree(source: string, target: string): void {
  const stat = fs.statSync(source);
  if (stat.isDirectory()) {
    fs.mkdirSync(target, { recursive: true });
    for (const entry of fs.readdirSync(source)) linkTree(path.join(source, entry), path.join(target, entry));
    return;
  }
  try {
    fs.linkSync(source, target);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV" && (error as NodeJS.ErrnoException).code !== "EPERM") throw error;
    fs.copyFileSync(source, target);
  }
}

/** Writes the function's `code` archive to a new temporary directory, and measures it. */
export async function writeArchive(code: unknown, label: string): Promise<WrittenArchive> {
  const dir = await extractArchive(code, label, fs.mkdtempSync(path.join(os.tmpdir(), `archive-${label}-`)));
  const measured = measure(dir);
  return { dir, ...measured, handlerSource: fs.readFileSync(path.join(dir, "__index.js"), "utf8") };
}

/** The bytes one file adds to a zip: local header (30) and central directory entry (46), each with the name, plus the data. */
export function zippedEntryBytes(name: string, content: Buffer | string): number {
  const data = typeof content === "string" ? Buffer.from(content) : content;
  return 76 + 2 * Buffer.byteLength(name) + Math.min(data.length, zlib.deflateRawSync(data).length);
}

/** The end of a zip's central directory. */
export const ZIP_END_BYTES = 22;

function measure(dir: string): { files: number; bytes: number; zippedBytes: number } {
  let files = 0;
  let bytes = 0;
  let zippedBytes = ZIP_END_BYTES;
  const walk = (current: string) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) {
        walk(full);
        continue;
      }
      const content = fs.readFileSync(full);
      files += 1;
      bytes += content.length;
      zippedBytes += zippedEntryBytes(path.relative(dir, full), content);
    }
  };
  walk(dir);
  return { files, bytes, zippedBytes };
}

export function removeArchive(archive: WrittenArchive): void {
  fs.rmSync(archive.dir, { recursive: true, force: true });
}

export interface InvokeReport {
  /** Time to require `__index.js` (the serialized handler and the packages it loads at cold start). */
  readonly loadMs: number;
  /** From the process's start to its first result, as a cold start would see it. */
  readonly firstResultMs: number;
  readonly invocations: { ms: number; result?: unknown; error?: { name: string; message: string } }[];
  /** The JSON log lines the worker wrote (stdout, then stderr), parsed. */
  readonly logs: Record<string, unknown>[];
}

/**
 * Runs a written archive in a fresh Node process with `event`, `times` times, and reports results
 * and timings. `env` is the whole environment of the process, as Lambda would set it.
 */
export async function invokeArchive(
  archive: WrittenArchive,
  event: unknown,
  env: Record<string, string>,
  times = 1,
): Promise<InvokeReport> {
  const { execFile } = await import("node:child_process");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "invoke-"));
  const eventFile = path.join(work, "event.json");
  const resultFile = path.join(work, "result.json");
  fs.writeFileSync(eventFile, JSON.stringify(event));
  const runner = path.join(__dirname, "invoke.js");
  let output = "";
  try {
    await new Promise<void>((resolve, reject) => {
      execFile(
        process.execPath,
        [runner, archive.dir, eventFile, resultFile, String(times)],
        { cwd: archive.dir, env: { PATH: process.env.PATH ?? "", ...env }, timeout: 60_000 },
        (error, out, stderr) => {
          // Powertools writes DEBUG and INFO to stdout, WARN and ERROR to stderr.
          output = `${out}\n${stderr}`;
          if (error) reject(new Error(`archive run failed: ${error.message}\n${stderr}`));
          else resolve();
        },
      );
    });
    const logs = output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    return { ...(JSON.parse(fs.readFileSync(resultFile, "utf8")) as Omit<InvokeReport, "logs">), logs };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/**
 * The environment Lambda gives a function: its own variables, its region and name, and (here)
 * test credentials; `overrides` points service endpoints at local stand-ins.
 */
export function lambdaEnvironment(
  fn: { inputs: Record<string, unknown> },
  overrides: Record<string, string> = {},
): Record<string, string> {
  const variables = (fn.inputs.environment as { variables?: Record<string, string> } | undefined)?.variables ?? {};
  return {
    ...variables,
    AWS_REGION: "us-east-1",
    AWS_ACCESS_KEY_ID: "test",
    AWS_SECRET_ACCESS_KEY: "test",
    AWS_LAMBDA_FUNCTION_NAME: String(fn.inputs.name),
    AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    ...overrides,
  };
}
