/**
 * What the local system needs on the machine before it starts: Debian's redis-server (the ARM
 * grades' store), installed with apt-get when it is not on the PATH, as .ci/run does for the tests.
 */
import { spawn, spawnSync } from "node:child_process";

export interface PrerequisiteOptions {
  /** Where progress is told. @default console.log */
  readonly log?: (line: string) => void;
  /** The user id deciding whether commands need sudo. @default process.getuid() */
  readonly uid?: number;
  /** Whether a command is on the PATH. @default runs it with --version */
  readonly has?: (command: string) => boolean;
  /** Runs a command (output shown), resolving with its exit status. @default spawns it */
  readonly run?: (argv: readonly string[]) => Promise<number>;
}

/** Whether `command --version` runs and succeeds. */
export function hasCommand(command: string): boolean {
  const probe = spawnSync(command, ["--version"], { stdio: "ignore" });
  return !probe.error && probe.status === 0;
}

/** Runs a command with its output on this terminal; resolves with its exit status (127 when it cannot start). */
export function runCommand(argv: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
    child.once("error", () => resolve(127));
    child.once("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/** The commands installing Debian's redis-server: apt-get update, then install, with sudo unless root. */
export function redisInstallCommands(uid: number): string[][] {
  const sudo = uid === 0 ? [] : ["sudo"];
  return [
    [...sudo, "apt-get", "update"],
    [...sudo, "apt-get", "install", "-y", "redis-server"],
  ];
}

/** Installs redis-server with apt-get when it is not on the PATH; fails naming the command that did. */
export async function ensureRedisServer(options: PrerequisiteOptions = {}): Promise<void> {
  const log = options.log ?? ((line: string) => console.log(line));
  const has = options.has ?? hasCommand;
  const run = options.run ?? runCommand;
  if (has("redis-server")) return;
  log("redis-server is not installed: installing Debian's redis-server with apt-get");
  for (const argv of redisInstallCommands(options.uid ?? process.getuid?.() ?? 0)) {
    const command = argv.join(" ");
    log(`$ ${command}`);
    const status = await run(argv);
    if (status !== 0) {
      throw new Error(
        `\`${command}\` failed (exit ${status}): install redis-server yourself (apt-get install -y redis-server) and start again`,
      );
    }
  }
  if (!has("redis-server")) throw new Error("redis-server is still not on the PATH after `apt-get install -y redis-server`");
}
