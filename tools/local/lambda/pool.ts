/**
 * A function's containers: real processes running its archive (lambda/runtime.ts), created on
 * demand up to the function's concurrency, reused while warm, one invocation at a time each, as
 * Lambda runs them. The function's timeout is enforced by ending the container, as Lambda does;
 * a container that dies takes its invocation with it. Every line a container writes is reported.
 * A drill (or a spec) can have a container killed while it holds a batch (`killDuringInvocation`).
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import type { Report } from "../types";
import type { PlannedFunction } from "../wiring";
import { INVOCATION_END } from "./endMark";
import type { ContainerMessage, ContainerRequest, LambdaError } from "./runtime";

export interface InvokeOutcome {
  readonly requestId: string;
  readonly coldStart: boolean;
  readonly ms: number;
  readonly result?: unknown;
  /** Set when the invocation failed: the handler threw, timed out, or its container died. */
  readonly error?: LambdaError & { readonly kind: "error" | "timeout" | "crash" };
}

export interface FunctionPool {
  readonly fn: PlannedFunction;
  invoke(event: unknown): Promise<InvokeOutcome>;
  /** The container processes alive now (for drills that kill one). */
  processes(): ChildProcess[];
  /**
   * Kills (SIGKILL) the container of the next invocation while it runs: once the event is handed
   * to it, or, with `when`, at the first JSON log line of that invocation `when` accepts (after a
   * side effect the line reports, say). An invocation that ends without such a line leaves the
   * kill to the next one. The killed invocation fails as a crash, which its source handles like any
   * other error. Resolves with its request id once killed; `cancel` withdraws a kill not yet done.
   */
  killDuringInvocation(when?: (line: Record<string, unknown>) => boolean): PendingKill;
  /**
   * Ends the containers not running an invocation, as Lambda recycles idle containers: the next
   * invocation starts a new one, with nothing cached (a drill that needs a cold cache). Resolves
   * with how many were ended, once they are gone.
   */
  recycle(): Promise<number>;
  close(): Promise<void>;
}

/** A kill asked for (`killDuringInvocation`). */
export interface PendingKill {
  /** The killed invocation's request id. */
  readonly killed: Promise<string>;
  /** Withdraws the kill if it has not happened; true if it had not. */
  cancel(): boolean;
}

interface KillRequest {
  readonly when?: (line: Record<string, unknown>) => boolean;
  readonly resolve: (requestId: string) => void;
  done: boolean;
}

export interface PoolOptions {
  readonly fn: PlannedFunction;
  /** The archive, written out. */
  readonly dir: string;
  /** The whole environment of a container. */
  readonly env: Record<string, string>;
  /** At most this many containers at once (Lambda's concurrency for the function, here). */
  readonly maxContainers: number;
  readonly report: Report;
  /** Where the containers' output is appended, one line each. */
  readonly logFile?: string;
}

interface Container {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  used: boolean;
  busy: boolean;
  dead: boolean;
  settle?: (message: ContainerMessage | { type: "exit"; code: number | null; signal: string | null }) => void;
  /** Sees each JSON log line of the invocation in progress (a kill waiting for its line). */
  watch?: (line: Record<string, unknown>) => void;
  /** The request id of the last end mark read on stdout and on stderr. */
  readonly ended: [string, string];
  /** Called when an end mark is read. */
  onEnd?: () => void;
}

const RUNTIME = path.join(__dirname, "runtime.js");

function startContainer(options: PoolOptions, log: (line: string, container: Container) => void): Container {
  const child = fork(RUNTIME, [options.dir], {
    cwd: options.dir,
    env: options.env,
    execArgv: [],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let resolveReady!: () => void;
  let rejectReady!: (error: Error) => void;
  const container: Container = {
    child,
    ready: new Promise<void>((resolve, reject) => ((resolveReady = resolve), (rejectReady = reject))),
    used: false,
    busy: false,
    dead: false,
    ended: ["", ""],
  };
  container.ready.catch(() => {});
  [child.stdout!, child.stderr!].forEach((stream, index) => {
    readline.createInterface({ input: stream }).on("line", (line) => {
      if (!line.startsWith(INVOCATION_END)) return log(line, container);
      container.ended[index] = line.slice(INVOCATION_END.length);
      container.onEnd?.();
    });
  });
  child.on("message", (message: ContainerMessage) => {
    if (message.type === "ready") resolveReady();
    else if (message.type === "initFailed") rejectReady(new Error(`${message.error.errorType}: ${message.error.errorMessage}`));
    else container.settle?.(message);
  });
  // A send to a container that has just died (killed, or ended with the pool) fails with EPIPE;
  // its exit settles the invocation, so the error itself needs no more.
  child.on("error", () => {});
  child.on("exit", (code, signal) => {
    container.dead = true;
    rejectReady(new Error(`the container exited during init (code ${code}, signal ${signal})`));
    container.settle?.({ type: "exit", code, signal });
  });
  return container;
}

/** Starts a function's pool; no container runs until the first invocation. */
export function createFunctionPool(options: PoolOptions): FunctionPool {
  const { fn, report } = options;
  const containers = new Set<Container>();
  const waiting: (() => void)[] = [];
  const logStream = options.logFile ? fs.createWriteStream(options.logFile, { flags: "a" }) : undefined;
  let closed = false;

  const kills: KillRequest[] = [];

  const log = (text: string, container?: Container) => {
    logStream?.write(`${text}\n`);
    if (text.startsWith("{")) {
      let line: Record<string, unknown> | undefined;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        // not JSON after all: reported as output
      }
      if (line) {
        report({ kind: "log", function: fn.name, line });
        container?.watch?.(line);
        return;
      }
    }
    if (text.trim()) report({ kind: "output", function: fn.name, text });
  };

  /**
   * Arms the first kill waiting, for this container's invocation: on its line, or (no line to wait
   * for) `atOnce`, called once the event is handed over. `disarm` puts a kill not done back first
   * in the queue.
   */
  const armKill = (container: Container, requestId: string) => {
    const kill = kills.find((candidate) => !candidate.done);
    if (!kill) return undefined;
    kills.splice(kills.indexOf(kill), 1);
    const now = () => {
      if (kill.done) return;
      kill.done = true;
      container.watch = undefined;
      container.dead = true;
      container.child.kill("SIGKILL");
      kill.resolve(requestId);
    };
    if (kill.when) container.watch = (line) => void (kill.when!(line) && now());
    return {
      atOnce: kill.when ? undefined : now,
      disarm() {
        container.watch = undefined;
        if (!kill.done) kills.unshift(kill);
      },
    };
  };

  const release = (container: Container) => {
    container.busy = false;
    waiting.shift()?.();
  };

  async function acquire(): Promise<Container> {
    for (;;) {
      if (closed) throw new Error(`${fn.name}: the pool is closed`);
      const idle = [...containers].find((container) => !container.busy && !container.dead);
      if (idle) return ((idle.busy = true), idle);
      if ([...containers].filter((container) => !container.dead).length < options.maxContainers) {
        const container = startContainer(options, log);
        container.busy = true;
        // A container ended (timed out, killed) is kept until its process is gone, for close() to wait on.
        containers.add(container);
        container.child.once("exit", () => containers.delete(container));
        return container;
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
  }

  async function run(container: Container, event: unknown, requestId: string): Promise<Omit<InvokeOutcome, "ms" | "coldStart">> {
    const kill = armKill(container, requestId);
    try {
      return await runArmed(container, event, requestId, kill?.atOnce);
    } finally {
      kill?.disarm();
    }
  }

  async function runArmed(
    container: Container,
    event: unknown,
    requestId: string,
    killAtOnce?: () => void,
  ): Promise<Omit<InvokeOutcome, "ms" | "coldStart">> {
    try {
      await container.ready;
    } catch (error) {
      container.dead = true;
      container.child.kill("SIGKILL");
      return { requestId, error: { kind: "crash", errorType: "Runtime.InitError", errorMessage: (error as Error).message } };
    }
    const timeoutMs = fn.timeoutSeconds * 1000;
    const request: ContainerRequest = { type: "invoke", id: 1, event, deadline: Date.now() + timeoutMs, requestId };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        container.settle = undefined;
        container.dead = true;
        container.child.kill("SIGKILL");
        const errorMessage = `Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`;
        resolve({ requestId, error: { kind: "timeout", errorType: "Sandbox.Timedout", errorMessage } });
      }, timeoutMs);
      container.settle = (message) => {
        // Killed holding the invocation (killDuringInvocation): an answer that got out first does not count, its exit does.
        if (message.type !== "exit" && container.dead) return;
        if (message.type !== "exit" && container.watch && !container.ended.every((id) => id === requestId)) {
          // The lines the invocation wrote before its answer may not all be read yet (the streams and
          // the IPC channel are read apart): a kill waiting for one of them sees them first, once
          // both end marks are in, and a container it kills dies with its invocation, as if killed
          // when it wrote the line.
          container.onEnd = () => {
            if (!container.ended.every((id) => id === requestId)) return;
            container.onEnd = undefined;
            if (!container.dead) container.settle?.(message);
          };
          return;
        }
        clearTimeout(timer);
        container.settle = undefined;
        if (message.type === "result") resolve({ requestId, result: message.result });
        else if (message.type === "error") resolve({ requestId, error: { kind: "error", ...message.error } });
        else if (message.type === "exit") {
          const errorMessage = `RequestId: ${requestId} Error: Runtime exited (code ${message.code}, signal ${message.signal})`;
          resolve({ requestId, error: { kind: "crash", errorType: "Runtime.ExitError", errorMessage } });
        }
      };
      container.child.send(request);
      // A kill with no line to wait for: the container dies holding the event.
      killAtOnce?.();
    });
  }

  return {
    fn,
    async invoke(event) {
      const container = await acquire();
      const coldStart = !container.used;
      container.used = true;
      const started = performance.now();
      const requestId = randomUUID();
      const outcome = await run(container, event, requestId);
      const ms = performance.now() - started;
      release(container);
      const kind = outcome.error?.kind;
      report({
        kind: "invocation",
        function: fn.name,
        requestId,
        coldStart,
        ms,
        outcome: kind === undefined ? "ok" : kind,
        error: outcome.error ? `${outcome.error.errorType}: ${outcome.error.errorMessage}` : undefined,
      });
      return { ...outcome, coldStart, ms };
    },
    processes: () => [...containers].filter((container) => !container.dead).map((container) => container.child),
    killDuringInvocation(when) {
      let resolve!: (requestId: string) => void;
      const killed = new Promise<string>((settle) => (resolve = settle));
      const kill: KillRequest = { when, resolve, done: false };
      kills.push(kill);
      return {
        killed,
        cancel() {
          if (kill.done) return false;
          kill.done = true;
          const queued = kills.indexOf(kill);
          if (queued >= 0) kills.splice(queued, 1);
          return true;
        },
      };
    },
    async recycle() {
      const idle = [...containers].filter((container) => !container.busy && !container.dead);
      await Promise.all(
        idle.map(
          (container) =>
            new Promise<void>((resolve) => {
              container.dead = true;
              container.child.once("exit", () => resolve());
              container.child.kill("SIGKILL");
            }),
        ),
      );
      return idle.length;
    },
    async close() {
      closed = true;
      const exits = [...containers].map(
        (container) =>
          new Promise<void>((resolve) => {
            if (container.child.exitCode !== null || container.child.signalCode !== null) return resolve();
            container.child.once("exit", () => resolve());
            container.child.kill("SIGKILL");
          }),
      );
      await Promise.all(exits);
      waiting.splice(0).forEach((wake) => wake());
      await new Promise<void>((resolve) => (logStream ? logStream.end(resolve) : resolve()));
    },
  };
}
