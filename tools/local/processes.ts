/**
 * Every process the local system starts is registered here, so that one call ends them all:
 * on Ctrl-C, at the end of a bounded run, or when the system fails to start. Forked children also
 * exit on their own when the IPC channel to their parent closes.
 */
import { type ChildProcess, fork } from "node:child_process";
import * as path from "node:path";
import type { HostedService, HostMessage } from "./host";

const children = new Set<ChildProcess>();

/** Registers a child process so that `stopAll` ends it. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** Processes started and still running. */
export const running = (): readonly ChildProcess[] =>
  [...children].filter((child) => child.exitCode === null && child.signalCode === null);

/** Ends every tracked process (SIGTERM, then SIGKILL after `graceMs`) and waits until they are gone. */
export async function stopAll(graceMs = 2000): Promise<void> {
  await Promise.all(
    running().map(
      (child) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          child.once("exit", () => (clearTimeout(timer), resolve()));
          child.kill("SIGTERM");
        }),
    ),
  );
}

/** Starts a local AWS service in its own process; resolves with its URL. */
export function hostService(service: HostedService): Promise<{ url: string; child: ChildProcess }> {
  const child = track(
    fork(path.join(__dirname, "host.js"), [service], {
      execArgv: [],
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true" },
    }),
  );
  return new Promise((resolve, reject) => {
    child.once("message", (message: HostMessage) => {
      if (message.type === "ready") resolve({ url: message.url, child });
      else reject(new Error(`local ${service} did not start: ${message.error}`));
    });
    child.once("exit", (code) => reject(new Error(`local ${service} exited before it was ready (code ${code})`)));
  });
}
