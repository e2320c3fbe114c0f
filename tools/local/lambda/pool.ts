/**
 * A function's containers: real processes running its archive (lambda/runtime.ts), created on
 * demand up to the function's concurrency, reused while warm, one invocation at a time each, as
 * Lambda runs them. The function's timeout is enforced by ending the container, as Lambda does;
 * a container that dies takes its invocation with it. Every line a container writes is reported.
 */
import { type ChildProcess, fork } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as readline from "node:readline";
import type { Report } from "../types";
import type { PlannedFunction } from "../wiring";
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
   * Ends the containers not running an invocation, as Lambda recycles idle containers: the next
   * invocation starts a new one, with nothing cached (a drill that needs a cold cache). Resolves
   * with how many were ended, once they are gone.
   */
  recycle(): Promise<number>;
  close(): Promise<void>;
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
}

const RUNTIME = path.join(__dirname, "runtime.js");

function startContainer(options: PoolOptions, log: (line: string) => void): Container {
  const child = fork(RUNTIME, [options.dir], {
    cwd: options.dir,
    env: options.env,
    execArgv: [],
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  for (const stream of [child.stdout!, child.stderr!]) readline.createInterface({ input: stream }).on("line", log);
  let resolveReady!: () => void;
  let rejectReady!: (error: Error) => void;
  const container: Container = {
    child,
    ready: new Promise<void>((resolve, reject) => ((resolveReady = resolve), (rejectReady = reject))),
    used: false,
    busy: false,
    dead: false,
  };
  container.ready.catch(() => {});
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

  const log = (text: string) => {
    logStream?.write(`${text}\n`);
    if (text.startsWith("{")) {
      try {
        report({ kind: "log", function: fn.name, line: JSON.parse(text) as Record<string, unknown> });
        return;
      } catch {
        // not JSON after all: reported as output
      }
    }
    if (text.trim()) report({ kind: "output", function: fn.name, text });
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
