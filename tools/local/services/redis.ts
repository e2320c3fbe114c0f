/**
 * Redis for the local system: Debian's redis-server on a free loopback port, without persistence,
 * holding the ARM grades getArmScore reads (`user:<globalUserId>` →
 * `{"global_user_id": "…", "arm_risk": 1..5}`, docs/flows.md#arm-score). The process helpers here
 * start the redis-server processes of the tests too. For the fault drills the server can be taken
 * down (stopped, then started again on its port with every grade seeded again, as a replica
 * coming back with its data would be) or paused (SIGSTOP: connections open, nothing answered).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Redis } from "ioredis";
import type { RunningService } from "../types";

export const REDIS_HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3000;

/** Every redis-server started here, killed if this process exits without stopping them. */
const running = new Set<ChildProcess>();
process.once("exit", () => running.forEach((child) => child.kill("SIGKILL")));

/** A port nothing listens on now (nor, for a cluster node, on its bus port, port + 10000). */
export async function freePort(withBusPort = false): Promise<number> {
  for (;;) {
    const port = await listenOnce(0);
    if (!withBusPort) return port;
    if (port + 10_000 > 65_535) continue;
    try {
      await listenOnce(port + 10_000);
      return port;
    } catch {
      // bus port taken: try another
    }
  }
}

function listenOnce(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(port, REDIS_HOST, () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

/** The process id of the Redis server answering at the port (INFO server), or undefined if none answers within `timeoutMs`. */
export function serverPid(port: number, timeoutMs = 2000): Promise<number | undefined> {
  return ask(port, "INFO server", timeoutMs, undefined, (reply) => {
    const pid = /\r\nprocess_id:(\d+)\r\n/.exec(reply)?.[1];
    return pid === undefined ? NOT_YET : Number(pid);
  });
}

/** Whether a Redis server at the port answers PING with PONG, within `timeoutMs`. */
export function answersPing(port: number, timeoutMs = 500): Promise<boolean> {
  return ask(port, "PING", timeoutMs, false, (reply) => (reply.includes("\r\n") ? reply.startsWith("+PONG") : NOT_YET));
}

const NOT_YET = Symbol("the reply is not whole yet");

/**
 * Sends one inline command to the Redis server at the port and answers what `read` makes of the
 * reply so far, once it makes something of it; `otherwise` when nothing answers in `timeoutMs`.
 */
function ask<T>(
  port: number,
  command: string,
  timeoutMs: number,
  otherwise: T,
  read: (reply: string) => T | typeof NOT_YET,
): Promise<T> {
  return new Promise((resolve) => {
    const socket = net.connect(port, REDIS_HOST);
    let reply = "";
    const done = (answer: T) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(timeoutMs, () => done(otherwise));
    socket.once("connect", () => socket.write(`${command}\r\n`));
    socket.on("data", (chunk: Buffer) => {
      reply += chunk.toString("utf8");
      const answer = read(reply);
      if (answer !== NOT_YET) done(answer);
    });
    socket.once("error", () => done(otherwise));
  });
}

/** A redis-server process started by spawnRedisServer. */
export interface RedisProcess {
  readonly port: number;
  readonly dir: string;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** What the server wrote to stdout and stderr so far. */
  output(): string;
  /** Sends a signal (SIGSTOP pauses it, SIGCONT resumes it). */
  signal(signal: NodeJS.Signals): void;
  /** Ends the process with `signal` (SIGKILL after a grace period) and waits for it to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface RedisProcessOptions {
  readonly port: number;
  /** Its working directory (nothing is persisted there unless `args` ask for it). */
  readonly dir: string;
  /** Appended to the defaults: loopback only, no RDB snapshots, no AOF, logs to stdout. */
  readonly args?: readonly string[];
}

/** Starts redis-server and resolves once it answers PING; fails with its output if it exits or takes too long. */
export async function spawnRedisServer(options: RedisProcessOptions): Promise<RedisProcess> {
  const { port, dir } = options;
  const defaults = ["--port", String(port), "--bind", REDIS_HOST, "--dir", dir, "--save", "", "--appendonly", "no"];
  const child = spawn("redis-server", [...defaults, "--logfile", "", "--daemonize", "no", ...(options.args ?? [])], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  running.add(child);
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
  let spawnError: Error | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", (error) => {
      spawnError = error;
      resolve();
    });
  });
  void exited.then(() => running.delete(child));
  const gone = () => child.exitCode !== null || child.signalCode !== null || spawnError !== undefined;

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await answersPing(port))) {
    if (spawnError) throw new Error(`redis-server could not be started (${spawnError.message}); is it installed?`);
    if (gone())
      throw new Error(
        `redis-server on port ${port} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output}`,
      );
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  // A server answering on the port may be another one, there first: this one then exits, unable to
  // listen. Only its own process id says the answer was its.
  const pid = await serverPid(port);
  if (pid !== child.pid) {
    child.kill("SIGKILL");
    await exited;
    throw new Error(`redis-server on port ${port}: another server answers there (process ${pid}):\n${output}`);
  }
  return {
    port,
    dir,
    pid: child.pid!,
    exited,
    output: () => output,
    signal: (signal) => void child.kill(signal),
    async stop(signal = "SIGTERM") {
      if (gone()) return exited;
      child.kill(signal);
      const killer = setTimeout(() => child.kill("SIGKILL"), STOP_GRACE_MS);
      await exited;
      clearTimeout(killer);
    },
  };
}

/** The ARM grade the local Redis holds for a fan: 1 to 5, from the first byte of the SHA-256 of the id. */
export function armGradeOf(globalUserId: string): number {
  return 1 + (createHash("sha256").update(globalUserId, "utf8").digest()[0]! % 5);
}

export interface ArmRedisOptions {
  /** Its working directory, kept; by default a temporary one, removed by close(). */
  readonly dir?: string;
  /** @default a free port */
  readonly port?: number;
}

/**
 * A fault of the ARM Redis: `down`, the server stopped (connections refused); `paused`, the
 * process stopped by SIGSTOP (connections accepted by the kernel, nothing answered).
 */
export type RedisFault = "down" | "paused";

export interface LocalRedis extends RunningService {
  /** redis://127.0.0.1:<port>, for ARM_REDIS_URL (and ARM_REDIS_READ_ONLY_URL). */
  readonly url: string;
  readonly port: number;
  /** The server's process (a new one after a `down` fault is cleared). */
  readonly pid: number;
  /** Stores each fan's ARM grade (armGradeOf) as getArmScore reads it; returns the grades. */
  seedArmGrades(fans: readonly string[]): Promise<Map<string, number>>;
  /**
   * Puts a fault in place, or with undefined clears it: a stopped server is started again on its
   * port and every grade seeded so far stored again; a paused one is resumed (SIGCONT). Resolves
   * once the server is as asked.
   */
  setFault(fault: RedisFault | undefined): Promise<void>;
}

/**
 * Starts redis-server on a free port: one chosen now, and another if a server took it before this
 * one listened (a port is chosen by listening and closing again, so another process can take it
 * meanwhile). Its directory is `dir`, kept, or else a temporary one named after `prefix` and the
 * port, removed if that attempt fails.
 */
export async function spawnRedisOnFreePort(options: {
  readonly prefix: string;
  readonly dir?: string;
  readonly args?: readonly string[];
}): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const dir = options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), `${options.prefix}${port}-`));
    try {
      return await spawnRedisServer({ port, dir, args: options.args });
    } catch (error) {
      if (options.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
      const taken = /another server answers there|Address already in use/.test((error as Error).message);
      if (!taken || attempt >= 5) throw error;
    }
  }
}

/** Starts redis-server for the ARM grades, resolving once it answers PING. */
export async function startArmRedis(options: ArmRedisOptions = {}): Promise<LocalRedis> {
  let server =
    options.port === undefined
      ? await spawnRedisOnFreePort({ prefix: "local-redis-", dir: options.dir })
      : await spawnRedisServer({
          port: options.port,
          dir: options.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), `local-redis-${options.port}-`)),
        });
  const { port, dir } = server;
  const url = `redis://${REDIS_HOST}:${port}`;
  let client: Redis | undefined;
  let fault: RedisFault | undefined;
  /** Every fan seeded so far, to seed again when a stopped server starts afresh. */
  const seeded = new Set<string>();
  async function seed(fans: Iterable<string>): Promise<Map<string, number>> {
    if (!client) {
      client = new Redis({ host: REDIS_HOST, port, lazyConnect: true, maxRetriesPerRequest: 1 });
      // While the server is down the client reconnects on its own; its errors say only that.
      client.on("error", () => {});
    }
    const grades = new Map([...fans].map((fan) => [fan, armGradeOf(fan)]));
    const pipeline = client.pipeline();
    for (const [fan, grade] of grades) pipeline.set(`user:${fan}`, JSON.stringify({ global_user_id: fan, arm_risk: grade }));
    for (const [error] of (await pipeline.exec()) ?? []) if (error) throw error;
    return grades;
  }
  return {
    url,
    port,
    get pid() {
      return server.pid;
    },
    async seedArmGrades(fans) {
      if (fault) throw new Error(`the ARM Redis on port ${port} is ${fault}: grades cannot be seeded now`);
      fans.forEach((fan) => seeded.add(fan));
      return seed(fans);
    },
    async setFault(next) {
      if (next === fault) return;
      if (fault === "paused") server.signal("SIGCONT");
      if (fault === "down") {
        server = await spawnRedisServer({ port, dir });
        await seed(seeded);
      }
      fault = next;
      if (next === "paused") server.signal("SIGSTOP");
      if (next === "down") await server.stop();
    },
    async close() {
      if (fault === "paused") server.signal("SIGCONT");
      client?.disconnect();
      await server.stop();
      if (options.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
