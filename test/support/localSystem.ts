/**
 * The local system (tools/local) brought up from a plan in a spec: every event it reports is kept,
 * every change record its table writes is kept, and `until` waits for a condition with a limit
 * generous enough for a loaded machine.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { RecordedResource } from "../../tools/offline/runtime";
import { type LocalStandIns, startStandIns } from "../../tools/local/standIns";
import { type LocalSystem, startLocalSystem } from "../../tools/local/system";
import type { TableChange } from "../../tools/local/table/streamingDestination";
import type { LocalEvent } from "../../tools/local/types";
import { waitUntil } from "./local";

export interface BootedSystem {
  readonly system: LocalSystem;
  readonly standIns: LocalStandIns;
  readonly events: LocalEvent[];
  readonly changes: TableChange[];
  /** Events of one kind. */
  of<K extends LocalEvent["kind"]>(kind: K): Extract<LocalEvent, { kind: K }>[];
  /** The log lines of a worker (by its `service`) with this message. */
  logs(worker: string, message?: string): Record<string, unknown>[];
  stop(): Promise<void>;
}

export interface BootOptions {
  readonly workers?: readonly string[];
  readonly clockSpeed?: number;
  readonly ttlIntervalMs?: number;
  readonly shards?: number;
  readonly partitions?: number;
  /** Start the event source mappings. @default true */
  readonly mappings?: boolean;
}

/** Starts the local system for planned `resources`. */
export async function bootLocal(resources: readonly RecordedResource[], options: BootOptions = {}): Promise<BootedSystem> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "local-spec-"));
  const events: LocalEvent[] = [];
  const changes: TableChange[] = [];
  let standIns: LocalStandIns | undefined;
  const system = await startLocalSystem({
    resources,
    accountId: "210987654321",
    dataDir,
    report: (event) => events.push(event),
    workers: options.workers,
    mappings: options.mappings,
    shards: options.shards,
    partitions: options.partitions,
    standIns: async (context) =>
      (standIns = await startStandIns(context, {
        resources,
        clockSpeed: options.clockSpeed,
        ttlIntervalMs: options.ttlIntervalMs,
        webhookDelayMs: 200,
        onTableChanges: (records) => changes.push(...records),
      })),
  });
  return {
    system,
    standIns: standIns!,
    events,
    changes,
    of: <K extends LocalEvent["kind"]>(kind: K) =>
      events.filter((event): event is Extract<LocalEvent, { kind: K }> => event.kind === kind),
    logs: (worker, message) =>
      events.flatMap((event) =>
        event.kind === "log" && event.line.service === worker && (message === undefined || event.line.message === message)
          ? [event.line]
          : [],
      ),
    async stop() {
      await system.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Waits until `condition` holds; fails, with `what`, after `limitMs`. */
export async function until(what: string, condition: () => boolean | Promise<boolean>, limitMs = 120_000): Promise<void> {
  await waitUntil(condition, what, limitMs);
}
