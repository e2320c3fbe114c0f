/**
 * Real redis-server processes for tests and benchmarks: standalone, a primary with a replica,
 * and a cluster, each on loopback, on free ports, in its own temporary directory, and stopped
 * (its directory removed) by `stop()`. Nothing is skipped when Redis is not installed: starting
 * one fails saying how to install it. The processes are started as the local system starts its
 * Redis (tools/local/services/redis.ts).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { Redis } from "ioredis";
import {
  freePort,
  REDIS_HOST as HOST,
  type RedisProcess,
  spawnRedisOnFreePort,
  spawnRedisServer,
} from "../../tools/local/services/redis";

export { freePort };

const START_TIMEOUT_MS = 10_000;

/** Fails, saying how to install them, when redis-server or redis-cli is not on the PATH. */
export function requireRedis(): void {
  for (const binary of ["redis-server", "redis-cli"]) {
    const probe = spawnSync(binary, ["--version"], { encoding: "utf8" });
    if (probe.error || probe.status !== 0) {
      throw new Error(
        `${binary} is not installed (${probe.error?.message ?? `exit ${probe.status}`}): these tests run real Redis servers; ` +
          "install them with `apt-get install -y redis-server` (Debian/Ubuntu) and run again",
      );
    }
  }
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  /** redis://127.0.0.1:<port> */
  readonly url: string;
  readonly dir: string;
  readonly pid: number;
  /** Whether stop() was called. */
  readonly stopped: boolean;
  /** An admin connection (opened on first use, closed by stop()). */
  admin(): Redis;
  /** Calls of `command` (e.g. "get") the server has answered since it started or its stats were reset. */
  commandCalls(command: string): Promise<number>;
  /** Connections the server has accepted since it started. */
  connectionsReceived(): Promise<number>;
  /** Clients connected now with the given connection name (CLIENT SETNAME). */
  clientsNamed(name: string): Promise<{ id: string; cmd: string }[]>;
  /** SIGSTOP: the kernel still accepts connections, the server answers nothing. */
  pause(): void;
  resume(): void;
  /** Kills the server (it answers nothing more) and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

/** Starts a redis-server with `args` appended to the defaults (no persistence, loopback only). */
export async function startRedis(args: readonly string[] = [], options: { port?: number } = {}): Promise<RedisServer> {
  requireRedis();
  let child: RedisProcess;
  if (options.port === undefined) {
    child = await spawnRedisOnFreePort({ prefix: "redis-", args });
  } else {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `redis-${options.port}-`));
    try {
      child = await spawnRedisServer({ port: options.port, dir, args });
    } catch (error) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }
  const { port, dir } = child;

  let admin: Redis | undefined;
  let paused = false;
  let stopped = false;
  const server: RedisServer = {
    host: HOST,
    port,
    url: `redis://${HOST}:${port}`,
    dir,
    pid: child.pid,
    get stopped() {
      return stopped;
    },
    admin() {
      if (!admin) {
        admin = new Redis({ host: HOST, port, retryStrategy: () => null, maxRetriesPerRequest: 0 });
        admin.on("error", () => undefined);
      }
      return admin;
    },
    async commandCalls(command) {
      const stats = await server.admin().info("commandstats");
      const match = new RegExp(`^cmdstat_${command.toLowerCase()}:calls=(\\d+)`, "m").exec(stats);
      return match ? Number(match[1]) : 0;
    },
    async connectionsReceived() {
      const stats = await server.admin().info("stats");
      return Number(/^total_connections_received:(\d+)/m.exec(stats)![1]);
    },
    async clientsNamed(name) {
      const list = (await server.admin().client("LIST")) as string;
      return list
        .split("\n")
        .filter((line) => new RegExp(`(^| )name=${name}( |$)`).test(line))
        .map((line) => ({ id: /(?:^| )id=(\d+)/.exec(line)![1]!, cmd: /(?:^| )cmd=(\S+)/.exec(line)![1]! }));
    },
    pause() {
      paused = true;
      child.signal("SIGSTOP");
    },
    resume() {
      paused = false;
      child.signal("SIGCONT");
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      admin?.disconnect();
      // A paused server does not act on SIGTERM until resumed; neither matters once it is gone.
      await child.stop(paused ? "SIGKILL" : "SIGTERM");
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * A host that does not answer, as a blackholed address: a stopped redis-server whose accept
 * queue is full, so the kernel drops further connection attempts without a word. stop() frees
 * the queue and kills the server.
 */
export async function startBlackholedRedis(): Promise<RedisServer> {
  const server = await startRedis(["--tcp-backlog", "1"]);
  server.pause();
  // Linux admits backlog + 1 connections to the queue; a few more make sure it is full.
  const fillers = Array.from({ length: 4 }, () => net.connect(server.port, server.host).on("error", () => undefined));
  await new Promise((resolve) => setTimeout(resolve, 200));
  const stop = server.stop;
  return Object.assign(server, {
    stop: async () => {
      fillers.forEach((socket) => socket.destroy());
      await stop();
    },
  });
}

/** Polls `check` until it is true. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const replicationField = async (server: RedisServer, field: string) =>
  Number(new RegExp(`^${field}:(\\d+)`, "m").exec(await server.admin().info("replication"))?.[1] ?? -1);

/** Waits until `replica` has applied every write `primary` had taken when this was called. */
async function caughtUp(primary: RedisServer, replica: RedisServer): Promise<void> {
  const offset = await replicationField(primary, "master_repl_offset");
  await until(
    `${replica.url} to catch up with ${primary.url}`,
    async () => (await replicationField(replica, "slave_repl_offset")) >= offset,
  );
}

export interface ReplicatedRedis {
  readonly primary: RedisServer;
  readonly replica: RedisServer;
  /** Waits until the replica has every write the primary has taken. */
  synced(): Promise<void>;
  stop(): Promise<void>;
}

/** A primary and a replica of it (`--replicaof`), the replica in sync when this resolves. */
export async function startReplicated(): Promise<ReplicatedRedis> {
  const primary = await startRedis(["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]);
  let replica: RedisServer;
  try {
    replica = await startRedis(["--replicaof", primary.host, String(primary.port)]);
  } catch (error) {
    await primary.stop();
    throw error;
  }
  const synced = () => caughtUp(primary, replica);
  await until("the replica to sync with its primary", async () =>
    /master_link_status:up/.test(await replica.admin().info("replication")),
  );
  await synced();
  return { primary, replica, synced, stop: async () => void (await Promise.all([replica.stop(), primary.stop()])) };
}

export interface RedisClusterNodes {
  readonly masters: readonly RedisServer[];
  readonly replicas: readonly RedisServer[];
  readonly nodes: readonly RedisServer[];
  /** Waits until every replica has every write its master has taken. */
  synced(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * A Redis Cluster of `masters` masters with one replica each (created with
 * `redis-cli --cluster create`), every slot served and every replica in sync when this resolves.
 */
export async function startCluster(masters = 3): Promise<RedisClusterNodes> {
  requireRedis();
  const nodes: RedisServer[] = [];
  const stop = async () => void (await Promise.all(nodes.map((node) => node.stop())));
  try {
    for (let index = 0; index < masters * 2; index++) {
      nodes.push(
        await startRedis(
          [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "2000",
            // The master pings its replica every second (default 10), so the replica's offset
            // moves and the nodes list it in CLUSTER SLOTS within seconds of the cluster forming.
            "--repl-ping-replica-period",
            "1",
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
          ],
          { port: await freePort(true) },
        ),
      );
    }
    const create = spawnSync(
      "redis-cli",
      ["--cluster", "create", ...nodes.map((node) => `${node.host}:${node.port}`), "--cluster-replicas", "1", "--cluster-yes"],
      { encoding: "utf8", timeout: 30_000 },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);

    // Every node agrees the cluster is up and lists a replica for every slot range (the
    // client reads the topology from any of them), and every replica has synced.
    await until("every node of the cluster to report it ready, replicas included", async () => {
      for (const node of nodes) {
        if (!/cluster_state:ok/.test((await node.admin().cluster("INFO")) as string)) return false;
        const ranges = (await node.admin().cluster("SLOTS")) as unknown[][];
        if (ranges.length !== masters || ranges.some((range) => range.length < 4)) return false;
        const role = await node.admin().info("replication");
        if (/role:slave/.test(role) && !/master_link_status:up/.test(role)) return false;
      }
      return true;
    });
    const roles = await Promise.all(nodes.map(async (node) => /role:master/.test(await node.admin().info("replication"))));
    const masterNodes = nodes.filter((_, index) => roles[index]);
    const replicaNodes = nodes.filter((_, index) => !roles[index]);
    const synced = async () => {
      for (const replica of replicaNodes) {
        const master = /^master_port:(\d+)/m.exec(await replica.admin().info("replication"))![1];
        await caughtUp(
          masterNodes.find((node) => node.port === Number(master))!,
          replica,
        );
      }
    };
    return { masters: masterNodes, replicas: replicaNodes, nodes, synced, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
