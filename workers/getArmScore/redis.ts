/**
 * The Redis reads of getArmScore: one connection per Lambda container, kept across invocations,
 * and every read bounded so that with Redis slow, unreachable or down an invocation fails well
 * inside the function's 6 s timeout with an error saying where and what, instead of hanging.
 *
 * - No offline queue and no background reconnects: a command is sent on a ready connection or
 *   fails; a lost connection is made again by the next read, under that read's bound.
 * - Each read (connecting included) is bounded by connect timeout + command timeout.
 * - A read on a connection kept from an earlier invocation that fails for the connection's sake
 *   (a frozen container's socket may have died meanwhile) is tried once more on a new connection.
 */
import * as net from "node:net";
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from "ioredis";
import { namedError } from "../shared/runtime/errors";

export interface ArmRedisSettings {
  /** The primary, or in cluster mode the configuration endpoint. */
  readonly url: string;
  /** Standalone: the replica reads go to. Cluster mode: reads go to the shards' replicas (and it seeds discovery too). */
  readonly readOnlyUrl?: string;
  readonly clusterMode: boolean;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  /** Shown by CLIENT LIST, so the team running Redis can tell whose connections these are. */
  readonly connectionName: string;
}

export interface RedisEndpoint {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
}

/** The parts of a redis:// or rediss:// URL. */
export function redisEndpoint(url: string): RedisEndpoint {
  const parsed = new URL(url);
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new Error(`${parsed.protocol}//${parsed.host} is not a redis:// or rediss:// URL`);
  }
  const db = parsed.pathname.replace(/^\//, "");
  return {
    host: parsed.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    tls: parsed.protocol === "rediss:",
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    db: db === "" ? 0 : Number(db),
  };
}

/** An endpoint as errors and logs name it: scheme, host, port and db, never the credentials. */
export function describeEndpoint(endpoint: RedisEndpoint): string {
  const host = endpoint.host.includes(":") ? `[${endpoint.host}]` : endpoint.host;
  return `${endpoint.tls ? "rediss" : "redis"}://${host}:${endpoint.port}${endpoint.db ? `/${endpoint.db}` : ""}`;
}

/** A read that failed: where (`target`), which key, and what went wrong (a named error: see runtime/errors.ts). */
export interface RedisReadError extends Error {
  readonly name: "RedisReadError";
  readonly target: string;
  readonly key: string;
  readonly detail: string;
  /** Redis' own error reply (e.g. "WRONGTYPE …"), when Redis answered with one. */
  readonly reply?: string;
}

export function redisReadError(target: string, key: string, detail: string, reply?: string, cause?: unknown): RedisReadError {
  return namedError(
    "RedisReadError",
    `GET ${key} on ${target} failed: ${detail}`,
    { target, key, detail, ...(reply === undefined ? {} : { reply }) },
    { cause },
  );
}

export function isRedisReadError(error: unknown): error is RedisReadError {
  return error instanceof Error && error.name === "RedisReadError";
}

export interface ArmRedisReader {
  /** Where reads go, as errors name it, e.g. "redis://reader.example:6379 (replica)". */
  readonly target: string;
  /** The string at `key`, or null when there is none; rejects with a RedisReadError. */
  get(key: string): Promise<string | null>;
  /** Drops the connection (tests and benchmarks; a Lambda container simply ends). */
  close(): void;
}

type Client = Redis | Cluster;

/** Bounds common to every connection: fail rather than wait, reconnect only when asked to. */
function boundedOptions(settings: ArmRedisSettings, endpoint: RedisEndpoint) {
  return {
    ...(endpoint.username ? { username: endpoint.username } : {}),
    ...(endpoint.password ? { password: endpoint.password } : {}),
    ...(endpoint.tls ? { tls: {} } : {}),
    connectTimeout: settings.connectTimeoutMs,
    commandTimeout: settings.commandTimeoutMs,
    // A command lost with its connection fails at once; the read decides whether to try again.
    maxRetriesPerRequest: 0,
    connectionName: settings.connectionName,
  } satisfies RedisOptions;
}

function standaloneClient(settings: ArmRedisSettings, endpoint: RedisEndpoint): Redis {
  return new Redis({
    ...boundedOptions(settings, endpoint),
    host: endpoint.host,
    port: endpoint.port,
    db: endpoint.db,
    lazyConnect: true,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
}

function clusterClient(settings: ArmRedisSettings, seeds: readonly RedisEndpoint[]): Cluster {
  const [first] = seeds;
  const options: ClusterOptions = {
    lazyConnect: true,
    enableOfflineQueue: false,
    clusterRetryStrategy: () => null,
    scaleReads: settings.readOnlyUrl === undefined ? "master" : "slave",
    slotsRefreshTimeout: settings.connectTimeoutMs,
    // Redirections (MOVED, ASK, a node gone during failover) are followed a few times, each
    // well inside the read's bound.
    maxRedirections: 4,
    redisOptions: boundedOptions(settings, first!),
    // TLS certificates of managed clusters name the hosts, not their addresses.
    ...(first!.tls
      ? { dnsLookup: (address: string, callback: (error: null, address: string) => void) => callback(null, address) }
      : {}),
  };
  return new Cluster(
    seeds.map((seed) => ({ host: seed.host, port: seed.port })),
    options,
  );
}

/** The reader for the given settings; nothing connects until the first read. */
export function createArmRedisReader(settings: ArmRedisSettings): ArmRedisReader {
  const primary = redisEndpoint(settings.url);
  const replica = settings.readOnlyUrl === undefined ? undefined : redisEndpoint(settings.readOnlyUrl);
  const target = settings.clusterMode
    ? `${describeEndpoint(primary)} (cluster, reading from ${replica ? "replicas" : "primaries"})`
    : replica
      ? `${describeEndpoint(replica)} (replica)`
      : `${describeEndpoint(primary)} (primary)`;
  let client: Client | undefined;
  /** The connect under way, shared by reads that need it meanwhile. */
  let connecting: { readonly client: Client; readonly ready: Promise<Client> } | undefined;
  /** The last error the current client reported (why a connection failed or was lost). */
  let lastError: Error | undefined;

  const build = (): Client => {
    const fresh = settings.clusterMode
      ? clusterClient(settings, replica ? [primary, replica] : [primary])
      : standaloneClient(settings, replica ?? primary);
    lastError = undefined;
    // Kept to say what went wrong. A system error (ECONNREFUSED, ETIMEDOUT…) says it best and
    // is not overwritten by the generic errors that follow it ("Connection is closed.").
    const record = (error: Error) => {
      if (client === fresh && (hasCode(error) || !(lastError && hasCode(lastError)))) lastError = error;
    };
    fresh.on("error", record);
    fresh.on("node error", record);
    // A cluster's node connections report their own connect failures only to themselves.
    fresh.on("+node", (node: Redis) => node.on("error", record));
    return fresh;
  };

  const drop = (stale: Client) => {
    if (client === stale) client = undefined;
    if (connecting?.client === stale) connecting = undefined;
    stale.disconnect();
  };

  const connect = (): Promise<Client> => {
    if (client) drop(client);
    const fresh = build();
    client = fresh;
    const ready = (async () => {
      try {
        await fresh.connect();
        return fresh;
      } catch (error) {
        // A cluster client connects through helper connections whose errors it keeps to
        // itself, and says only "None of startup nodes is available": a plain TCP connect to
        // the first seed tells refused from unreachable.
        if (client === fresh && settings.clusterMode && !(lastError && hasCode(lastError))) {
          lastError = (await tcpProbe(primary, settings.connectTimeoutMs)) ?? lastError;
        }
        drop(fresh);
        throw error;
      } finally {
        if (connecting?.client === fresh) connecting = undefined;
      }
    })();
    connecting = { client: fresh, ready };
    return ready;
  };

  /**
   * One read, connecting first when needed: bounded by the command timeout on a kept connection,
   * by connect + command timeout otherwise.
   */
  const attempt = async (key: string): Promise<{ value: string | null } | { error: RedisReadError; kept: boolean }> => {
    const kept = client?.status === "ready";
    if (kept) lastError = undefined; // what went wrong earlier on this connection says nothing of this read
    let phase: "connect" | "GET" = kept ? "GET" : "connect";
    let used: Client | undefined;
    let timer: NodeJS.Timeout | undefined;
    const work = (async () => {
      used = kept ? client! : await (connecting?.ready ?? connect());
      phase = "GET";
      return used.get(key);
    })();
    // The read's deadline: past it, the connection is dropped and the read fails with this.
    const exceeded = new Error("deadline exceeded");
    const boundMs = kept ? settings.commandTimeoutMs : settings.connectTimeoutMs + settings.commandTimeoutMs;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(exceeded), boundMs);
    });
    work.catch(() => undefined); // settles after the deadline when that came first
    try {
      return { value: await Promise.race([work, deadline]) };
    } catch (error) {
      const reply = (error as Error).name === "ReplyError" ? (error as Error).message : undefined;
      // Redis answered: the connection is fine. Anything else leaves it in doubt: dropped.
      if (reply === undefined) {
        const stale = used ?? client;
        if (stale) drop(stale);
      }
      const detail = describeFailure(error === exceeded ? { deadlineMs: boundMs } : error, phase, lastError, settings);
      return { error: redisReadError(target, key, detail, reply, error), kept: kept && reply === undefined };
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    target,
    async get(key) {
      const first = await attempt(key);
      if ("value" in first) return first.value;
      if (!first.kept) throw first.error;
      const second = await attempt(key);
      if ("value" in second) return second.value;
      const detail = `${second.error.detail}; before that, on the connection kept from an earlier invocation: ${first.error.detail}`;
      throw redisReadError(target, key, detail, second.error.reply, second.error.cause);
    },
    close() {
      if (client) drop(client);
    },
  };
}

/** Why a TCP connection to `endpoint` fails, or undefined when it does not. */
function tcpProbe(endpoint: RedisEndpoint, timeoutMs: number): Promise<Error | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    const done = (outcome: Error | undefined) => {
      socket.destroy();
      resolve(outcome);
    };
    socket.setTimeout(timeoutMs, () =>
      done(Object.assign(new Error(`connect ETIMEDOUT ${endpoint.host}:${endpoint.port}`), { code: "ETIMEDOUT" })),
    );
    socket.once("connect", () => done(undefined));
    socket.once("error", done);
  });
}

const isDeadline = (error: unknown): error is { deadlineMs: number } =>
  typeof error === "object" && error !== null && "deadlineMs" in error;

const hasCode = (error: Error) => typeof (error as { code?: unknown }).code === "string";

/** What went wrong, in words: the underlying cause rather than ioredis' "Connection is closed.". */
function describeFailure(error: unknown, phase: "connect" | "GET", cause: Error | undefined, settings: ArmRedisSettings): string {
  const timedOut = (failure: Error) => failure.message === "Command timed out";
  const explain = (failure: Error): string => {
    // A cluster that could not be reached says so in general; the node's own error says why.
    const nodeError = (failure as { lastNodeError?: Error }).lastNodeError;
    if (nodeError) return explain(nodeError);
    if (timedOut(failure)) return `no answer within the command timeout of ${settings.commandTimeoutMs} ms`;
    // What ioredis says of a command sent on a connection it knows to be closed.
    if (failure.message.startsWith("Stream isn't writeable")) return "the connection was closed";
    const code = (failure as { code?: unknown }).code;
    if (code === "ETIMEDOUT" && (failure as { syscall?: unknown }).syscall === "connect") {
      return `${failure.message}: no answer to the connection attempt within the connect timeout of ${settings.connectTimeoutMs} ms`;
    }
    return typeof code === "string" && !failure.message.includes(code) ? `${failure.message} [${code}]` : failure.message;
  };
  if (isDeadline(error)) {
    if (phase === "GET") return `no reply within ${error.deadlineMs} ms (command timeout)`;
    const bound = `${error.deadlineMs} ms (connect timeout ${settings.connectTimeoutMs} ms + command timeout ${settings.commandTimeoutMs} ms)`;
    if (cause && timedOut(cause)) return `no connection within ${bound}: the server took the connection but did not answer`;
    return `no connection within ${bound}${cause ? `; last error: ${explain(cause)}` : ""}`;
  }
  const failure = error as Error;
  if (phase === "connect") {
    if (cause && timedOut(cause)) {
      return `could not connect: the server took the connection but did not answer within the command timeout of ${settings.commandTimeoutMs} ms`;
    }
    // ioredis rejects a failed connect with a generic message and reports the reason as an event.
    return `could not connect: ${explain(cause ?? failure)}`;
  }
  const detail = explain(failure);
  return cause && explain(cause) !== detail ? `${detail} (${explain(cause)})` : detail;
}
