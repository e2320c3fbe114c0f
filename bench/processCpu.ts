/**
 * CPU time of this process and every process it started (the local services, the containers),
 * read from /proc, grouped by what each process is: on a machine of two cores, what each part of
 * the local system costs per activity says how far it can go.
 */
import * as fs from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

interface ProcessCpu {
  readonly ppid: number;
  /** User and system CPU seconds so far. */
  readonly cpu: number;
  readonly role: string;
}

/** What a process of the local system is: this one, a local service, a function's containers. */
function roleOf(pid: number, command: string): string {
  if (pid === process.pid) return "main (table endpoint, pollers, stand-ins, traffic)";
  const hosted = /host\.js (\w+)/.exec(command)?.[1];
  if (hosted) return { dynamodb: "dynalite", kinesis: "kinesalite", sqs: "local SQS" }[hosted] ?? hosted;
  const worker = /archives\/(\w+)/.exec(command)?.[1];
  if (worker) return `${worker} containers`;
  return command.includes("redis-server") ? "redis" : command.split(" ")[0] || "other";
}

function readProcesses(known: Map<number, string>): Map<number, ProcessCpu> {
  const processes = new Map<number, ProcessCpu>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      // A process's command is read once: an exiting one has none.
      if (!known.has(pid)) known.set(pid, fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim());
      processes.set(pid, {
        ppid: Number(fields[1]),
        cpu: (Number(fields[11]) + Number(fields[12])) / TICKS,
        role: roleOf(pid, known.get(pid)!),
      });
    } catch {
      // gone meanwhile
    }
  }
  return processes;
}

/** CPU seconds by process of this process's tree. */
function sample(known: Map<number, string>): Map<number, ProcessCpu> {
  const all = readProcesses(known);
  const tree = new Set([process.pid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, entry] of all) {
      if (!tree.has(pid) && tree.has(entry.ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  return new Map([...all].filter(([pid]) => tree.has(pid)));
}

export interface CpuMeter {
  /** CPU seconds per role between two times (epoch ms), from the samples nearest before each. */
  between(from: number, to: number): { readonly seconds: number; readonly byRole: Readonly<Record<string, number>> };
  stop(): void;
}

/** Samples the tree now and every `intervalMs` until stopped. */
export function startCpuMeter(intervalMs = 500): CpuMeter {
  const known = new Map<number, string>();
  const samples: { readonly at: number; readonly cpu: Map<number, ProcessCpu> }[] = [];
  const take = () => samples.push({ at: Date.now(), cpu: sample(known) });
  take();
  const timer = setInterval(take, intervalMs);
  timer.unref();
  const before = (at: number) => [...samples].reverse().find((entry) => entry.at <= at) ?? samples[0]!;
  return {
    between(from, to) {
      const [start, end] = [before(from), before(to)];
      const byRole: Record<string, number> = {};
      for (const [pid, entry] of end.cpu) {
        byRole[entry.role] = (byRole[entry.role] ?? 0) + entry.cpu - (start.cpu.get(pid)?.cpu ?? 0);
      }
      return { seconds: (end.at - start.at) / 1000, byRole };
    },
    stop: () => clearInterval(timer),
  };
}
