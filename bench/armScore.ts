/**
 * getArmScore against a local redis-server.
 *
 * 1. Latency of a warm handler (its connection made), many sequential calls over a few thousand
 *    fans, next to a bare ioredis GET on the same server: what the worker adds to the read.
 * 2. How long an invocation takes to fail when Redis is not there, with the default timeouts
 *    (connect 1000 ms, command 500 ms; the function's timeout is 6 s): connection refused; Redis
 *    stopped after a first call; a server that takes the connection but answers nothing (a
 *    stopped redis-server process); and a host that does not answer at all (a stopped
 *    redis-server whose accept queue is full, so the kernel drops the connection attempt as a
 *    blackholed address would).
 */
import { Logger } from "@aws-lambda-powertools/logger";
import { Redis } from "ioredis";
import { createGetArmScore } from "../workers/getArmScore";
import { getArmScoreContract } from "../workers/getArmScore/contract";
import { type ArmRedisReader, createArmRedisReader } from "../workers/getArmScore/redis";
import { freePort, type RedisServer, startBlackholedRedis, startRedis } from "../test/support/redis";
import { median, met, type Part, percentile, type Row } from "./report";

const FANS = 5000;
const CALLS = Number(process.env.BENCH_REDIS_CALLS ?? 8000);
const WARMUP = 500;
const FAILURE_RUNS = Number(process.env.BENCH_FAILURE_RUNS ?? 3);
/** The function's timeout: a failure must be reported before it. */
const FUNCTION_TIMEOUT_MS = 6000;
const DEFAULTS = { connectTimeoutMs: 1000, commandTimeoutMs: 500 } as const;

const fanOf = (index: number) => `gu-${(0x100000 + index).toString(16)}`;
const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6;
const format = (value: number) => (value < 10 ? `${value.toFixed(3)} ms` : `${value.toFixed(0)} ms`);

function reader(url: string): ArmRedisReader {
  return createArmRedisReader({ url, clusterMode: false, ...DEFAULTS, connectionName: getArmScoreContract.name });
}

function handlerOn(redis: ArmRedisReader) {
  // Silent: the failures below are expected, and their error is printed once per case.
  return createGetArmScore({ redis, logger: new Logger({ serviceName: getArmScoreContract.name, logLevel: "SILENT" }) });
}
type Handler = ReturnType<typeof handlerOn>;

/** Latencies of `count` sequential calls of `call` over the fans, in ms. */
async function latencies(count: number, call: (fan: string) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let index = 0; index < count; index++) {
    const fan = fanOf((index * 7919) % FANS);
    const start = process.hrtime.bigint();
    await call(fan);
    times.push(ms(start));
  }
  return times;
}

async function warmLatency(server: RedisServer): Promise<Row[]> {
  const arm = reader(server.url);
  const getArmScore = handlerOn(arm);
  const bare = new Redis({ host: server.host, port: server.port });
  try {
    await latencies(WARMUP, (fan) => getArmScore({ globalUserId: fan }));
    await latencies(WARMUP, (fan) => bare.get(`user:${fan}`));
    // Interleaved rounds, so both see the same machine.
    const worker: number[] = [];
    const plain: number[] = [];
    for (let round = 0; round < 4; round++) {
      worker.push(...(await latencies(CALLS / 4, (fan) => getArmScore({ arguments: { globalUserId: fan } }))));
      plain.push(...(await latencies(CALLS / 4, (fan) => bare.get(`user:${fan}`))));
    }
    return [50, 99].map((p) => {
      const figure = percentile(worker, p);
      const anchor = percentile(plain, p);
      return {
        what: `getArmScore warm p${p} (${worker.length} calls)`,
        figure: format(figure),
        anchor: `bare ioredis GET ${format(anchor)}`,
        against: `${(figure / anchor).toFixed(1)}×`,
      };
    });
  } finally {
    arm.close();
    bare.disconnect();
  }
}

/** Times `runs` failing invocations; each run builds its state with `setup` and cleans up with the returned function. */
async function failure(
  name: string,
  runs: number,
  setup: () => Promise<{ invoke: () => Promise<unknown>; cleanup: () => Promise<void> }>,
): Promise<Row> {
  const times: number[] = [];
  let failed = false;
  for (let run = 0; run < runs; run++) {
    const { invoke, cleanup } = await setup();
    const start = process.hrtime.bigint();
    try {
      await invoke();
    } catch {
      failed = true;
    }
    times.push(ms(start));
    await cleanup();
  }
  return {
    what: `getArmScore time to fail: ${name}`,
    figure: failed ? format(median(times)) : "did not fail",
    target: `< ${FUNCTION_TIMEOUT_MS / 1000} s (function timeout)`,
    met: met(failed && Math.max(...times) < FUNCTION_TIMEOUT_MS),
  };
}

async function failures(): Promise<Row[]> {
  const fan = { globalUserId: fanOf(1) };
  /**
   * A cold handler reading from `url`; `warm` runs against it before the timed call, and `server`
   * (when given) is stopped with the reader at cleanup.
   */
  const scenario = async (url: string, server?: { stop(): Promise<void> }, warm?: (handler: Handler) => Promise<void>) => {
    const arm = reader(url);
    const handler = handlerOn(arm);
    await warm?.(handler);
    return {
      invoke: () => handler(fan),
      cleanup: async () => {
        arm.close();
        await server?.stop();
      },
    };
  };

  return [
    await failure("connection refused (nothing listens), cold handler", FAILURE_RUNS, async () =>
      scenario(`redis://127.0.0.1:${await freePort()}`),
    ),
    await failure("Redis stopped after a first call (kept connection)", FAILURE_RUNS, async () => {
      const server = await startRedis();
      return scenario(server.url, undefined, async (handler) => {
        await handler(fan);
        await server.stop();
      });
    }),
    await failure("takes the connection, answers nothing, cold handler", FAILURE_RUNS, async () => {
      const server = await startRedis();
      server.pause();
      return scenario(server.url, server);
    }),
    await failure("stops answering on the kept connection", FAILURE_RUNS, async () => {
      const server = await startRedis();
      return scenario(server.url, server, async (handler) => {
        await handler(fan);
        server.pause();
      });
    }),
    await failure("host does not answer (connection attempt dropped)", FAILURE_RUNS, async () => {
      const server = await startBlackholedRedis();
      return scenario(server.url, server);
    }),
  ];
}

export async function benchArmScore(): Promise<Part> {
  const server = await startRedis();
  let version: string | undefined;
  const rows: Row[] = [];
  try {
    const pipeline = server.admin().pipeline();
    for (let index = 0; index < FANS; index++) {
      const fan = fanOf(index);
      pipeline.set(
        `user:${fan}`,
        JSON.stringify({
          global_user_id: fan,
          arm_risk: (index % 5) + 1,
          timestamp: "2026-11-24T06:00:00Z",
          score_date: "2026-11-24",
        }),
      );
    }
    await pipeline.exec();
    version = /^redis_version:(\S+)/m.exec(await server.admin().info("server"))![1];
    rows.push(...(await warmLatency(server)));
  } finally {
    await server.stop();
  }
  rows.push(...(await failures()));
  return {
    how:
      `getArmScore against a local redis-server ${version} (${FANS} fans), ${CALLS} sequential warm calls interleaved with ` +
      `bare GETs; time to fail: median of ${FAILURE_RUNS} (connect ${DEFAULTS.connectTimeoutMs} ms, command ${DEFAULTS.commandTimeoutMs} ms)`,
    rows,
  };
}
