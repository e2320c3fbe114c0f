/**
 * The Lambda emulation's function pool (tools/local/lambda/pool.ts) with tiny hand-written
 * archives: results as JSON, errors in Lambda's shape, a cold start only on a container's first
 * invocation, concurrency capped, the timeout ending the container, a container killed
 * mid-invocation (by hand, or asked of the pool: at once, or at a log line), the containers'
 * output reported line by line, and no process left after close.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { createFunctionPool, type FunctionPool, type PoolOptions } from "../tools/local/lambda/pool";
import { plannedFunction, reports, waitUntil } from "./support/local";

/** An archive whose `__index.js` is `source`. */
function archive(source: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-pool-"));
  fs.writeFileSync(path.join(dir, "__index.js"), source);
  return dir;
}

const HANDLERS = {
  echo: `exports.handler = async (event, context) => ({
    event,
    functionName: context.functionName,
    requestId: context.awsRequestId,
    remainingPositive: context.getRemainingTimeInMillis() > 0,
    when: new Date(0),
    pid: process.pid,
    missing: undefined,
    variable: process.env.GREETING ?? null,
    home: process.env.HOME ?? null,
  });`,
  fail: `exports.handler = async (event) => {
    class NotFound extends Error {}
    NotFound.prototype.name = "NotFound";
    if (event.plain) throw "just a string";
    throw new NotFound("no fan " + event.fan);
  };`,
  nothing: `exports.handler = async () => undefined;`,
  hang: `exports.handler = (event) => event.hang ? new Promise(() => {}) : Promise.resolve(process.pid);`,
  /** Marks its start with a file, then waits until the release file exists. */
  gate: `const fs = require("node:fs"); const path = require("node:path");
  exports.handler = async (event) => {
    fs.writeFileSync(path.join(event.dir, "started-" + event.n), String(process.pid));
    while (!fs.existsSync(path.join(event.dir, "release"))) await new Promise((r) => setTimeout(r, 10));
    return process.pid;
  };`,
  logs: `exports.handler = async (event) => {
    console.log(JSON.stringify({ level: "INFO", message: "scored", fan: event.fan }));
    console.log("plain text on stdout");
    console.error(JSON.stringify({ level: "ERROR", message: "on stderr" }));
    console.error("{ not json after all");
    console.log("");
    return "logged";
  };`,
  exits: `exports.handler = async () => { process.exit(3); };`,
  /** Its last act before answering is a log line. */
  lastLine: `exports.handler = async (event) => {
    console.log(JSON.stringify({ level: "INFO", message: "side effect done", fan: event.fan }));
    return "answered";
  };`,
  noHandler: `exports.other = async () => 1;`,
};

type Handler = keyof typeof HANDLERS;

describe("the local function pool", function () {
  const pools: FunctionPool[] = [];
  const dirs: string[] = [];

  function pool(handler: Handler, options: Partial<Omit<PoolOptions, "fn">> & { timeoutSeconds?: number } = {}) {
    const dir = archive(HANDLERS[handler]);
    dirs.push(dir);
    const collected = reports();
    const created = createFunctionPool({
      fn: plannedFunction({ timeoutSeconds: options.timeoutSeconds ?? 30 }),
      dir,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", AWS_LAMBDA_FUNCTION_NAME: "vfid-qa1-us-east-1-enqueueFromVfStream" },
      maxContainers: 1,
      report: collected.report,
      ...options,
    });
    pools.push(created);
    return { pool: created, ...collected };
  }

  afterEach(async function () {
    await Promise.all(pools.splice(0).map((created) => created.close()));
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });

  it("answers with the handler's result as JSON, and with the context Lambda gives", async function () {
    const { pool: echo } = pool("echo", { env: { PATH: process.env.PATH ?? "", GREETING: "hello" } });
    const outcome = await echo.invoke({ fan: "gu-1", nested: { list: [1, 2] } });
    assert.equal(outcome.error, undefined);
    const result = outcome.result as Record<string, unknown>;
    assert.deepEqual(result.event, { fan: "gu-1", nested: { list: [1, 2] } });
    assert.equal(result.when, "1970-01-01T00:00:00.000Z", "a Date goes back as its JSON");
    assert.ok(!("missing" in result), "undefined fields are left out, as JSON leaves them");
    assert.equal(result.requestId, outcome.requestId);
    assert.equal(result.remainingPositive, true);
    assert.equal(result.variable, "hello");
    assert.equal(result.home, null, "the container's environment is the one given, and only that");
  });

  it("answers a handler that returns nothing with null", async function () {
    const { pool: nothing } = pool("nothing");
    const outcome = await nothing.invoke({});
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.result, null);
  });

  it("reports a thrown error with its type and message, and keeps the container", async function () {
    const { pool: failing, of } = pool("fail");
    const outcome = await failing.invoke({ fan: "gu-2" });
    assert.equal(outcome.error?.kind, "error");
    assert.equal(outcome.error?.errorType, "NotFound");
    assert.equal(outcome.error?.errorMessage, "no fan gu-2");
    const thrownString = await failing.invoke({ plain: true });
    assert.equal(thrownString.error?.errorMessage, "just a string");
    assert.equal(thrownString.coldStart, false, "a handler's error does not end its container");
    assert.deepEqual(
      of("invocation").map((event) => event.outcome),
      ["error", "error"],
    );
  });

  it("starts a container cold on its first invocation only, and reuses it", async function () {
    const { pool: echo, of } = pool("echo");
    const first = await echo.invoke({ n: 1 });
    const second = await echo.invoke({ n: 2 });
    const third = await echo.invoke({ n: 3 });
    assert.deepEqual(
      [first, second, third].map((outcome) => outcome.coldStart),
      [true, false, false],
    );
    const pids = [first, second, third].map((outcome) => (outcome.result as { pid: number }).pid);
    assert.equal(new Set(pids).size, 1, "one container served the three");
    assert.notEqual(pids[0], process.pid);
    assert.deepEqual(
      of("invocation").map((event) => [event.coldStart, event.outcome]),
      [
        [true, "ok"],
        [false, "ok"],
        [false, "ok"],
      ],
    );
  });

  it("runs no more containers than its concurrency, one invocation at a time each", async function () {
    const { pool: gated } = pool("gate", { maxContainers: 2 });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-pool-gate-"));
    dirs.push(dir);
    let most = 0;
    const sampler = setInterval(() => (most = Math.max(most, gated.processes().length)), 5);
    try {
      const invocations = Array.from({ length: 5 }, (_, n) => gated.invoke({ dir, n }));
      const started = () => fs.readdirSync(dir).filter((name) => name.startsWith("started-"));
      await waitUntil(() => started().length >= 2, "two invocations to start");
      assert.equal(gated.processes().length, 2);
      // The others wait for a container: none has started, whatever the wait.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.equal(started().length, 2);
      fs.writeFileSync(path.join(dir, "release"), "");
      const outcomes = await Promise.all(invocations);
      assert.ok(outcomes.every((outcome) => outcome.error === undefined));
      assert.equal(new Set(outcomes.map((outcome) => outcome.result)).size, 2, "two containers served the five");
      assert.equal(outcomes.filter((outcome) => outcome.coldStart).length, 2);
      assert.equal(started().length, 5);
    } finally {
      clearInterval(sampler);
    }
    assert.ok(most <= 2, `at most two containers at once, saw ${most}`);
  });

  it("ends a container at the function's timeout; the next invocation gets a new one, cold", async function () {
    const { pool: hanging, of } = pool("hang", { timeoutSeconds: 1 });
    const warm = await hanging.invoke({ hang: false });
    const oldPid = warm.result as number;
    const timedOut = await hanging.invoke({ hang: true });
    assert.equal(timedOut.error?.kind, "timeout");
    assert.equal(timedOut.error?.errorMessage, "Task timed out after 1.00 seconds");
    await waitUntil(() => !alive(oldPid), "the timed-out container to be gone");
    const next = await hanging.invoke({ hang: false });
    assert.equal(next.error, undefined);
    assert.equal(next.coldStart, true);
    assert.notEqual(next.result, oldPid);
    assert.deepEqual(
      of("invocation").map((event) => [event.coldStart, event.outcome]),
      [
        [true, "ok"],
        [false, "timeout"],
        [true, "ok"],
      ],
    );
  });

  it("reports a container killed mid-invocation as a crash, and replaces it", async function () {
    const { pool: gated } = pool("gate");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-pool-kill-"));
    dirs.push(dir);
    const invocation = gated.invoke({ dir, n: 1 });
    await waitUntil(() => fs.existsSync(path.join(dir, "started-1")), "the invocation to start");
    const [container] = gated.processes();
    assert.ok(container?.pid);
    container.kill("SIGKILL");
    const outcome = await invocation;
    assert.equal(outcome.error?.kind, "crash");
    assert.match(outcome.error?.errorMessage ?? "", /SIGKILL/);
    fs.writeFileSync(path.join(dir, "release"), "");
    const next = await gated.invoke({ dir, n: 2 });
    assert.equal(next.error, undefined);
    assert.equal(next.coldStart, true);
  });

  it("kills the container of the next invocation once it holds the event, when asked to", async function () {
    const { pool: echo } = pool("echo");
    const kill = echo.killDuringInvocation();
    const outcome = await echo.invoke({ n: 1 });
    assert.equal(outcome.error?.kind, "crash");
    assert.equal(await kill.killed, outcome.requestId);
    assert.equal(kill.cancel(), false, "a kill done cannot be withdrawn");
    const next = await echo.invoke({ n: 2 });
    assert.equal(next.error, undefined);
    assert.equal(next.coldStart, true);
  });

  it("kills at the first log line the kill waits for, even one written just before the answer; an invocation without it is left alone", async function () {
    const { pool: logging, of } = pool("lastLine");
    const kill = logging.killDuringInvocation((line) => line.message === "side effect done" && line.fan === "gu-b");
    const first = await logging.invoke({ fan: "gu-a" });
    assert.deepEqual([first.error, first.result], [undefined, "answered"]);
    const second = await logging.invoke({ fan: "gu-b" });
    assert.equal(second.error?.kind, "crash", "the invocation that wrote the line died with its container");
    assert.equal(await kill.killed, second.requestId);
    assert.ok(
      of("log").some((event) => event.line.fan === "gu-b"),
      "the line was reported",
    );
    const withdrawn = logging.killDuringInvocation(() => true);
    assert.equal(withdrawn.cancel(), true);
    const third = await logging.invoke({ fan: "gu-c" });
    assert.deepEqual([third.error, third.result], [undefined, "answered"]);
  });

  it("reports a handler that exits the process as a crash", async function () {
    const { pool: exiting } = pool("exits");
    const outcome = await exiting.invoke({});
    assert.equal(outcome.error?.kind, "crash");
    assert.match(outcome.error?.errorMessage ?? "", /code 3/);
  });

  it("reports an archive without a handler as an init failure", async function () {
    const { pool: broken } = pool("noHandler");
    const outcome = await broken.invoke({});
    assert.equal(outcome.error?.kind, "crash");
    assert.match(outcome.error?.errorMessage ?? "", /handler/);
  });

  it("reports each JSON line a container writes as a log, every other line as output, and appends them all to the log file", async function () {
    const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "local-pool-log-")), "worker.log");
    dirs.push(path.dirname(logFile));
    const { pool: logging, of } = pool("logs", { logFile });
    const outcome = await logging.invoke({ fan: "gu-3" });
    assert.equal(outcome.result, "logged");
    await waitUntil(() => of("log").length >= 2 && of("output").length >= 2, "the container's four lines");
    assert.deepEqual(
      of("log")
        .map((event) => event.line)
        .sort((a, b) => String(a.level).localeCompare(String(b.level))),
      [
        { level: "ERROR", message: "on stderr" },
        { level: "INFO", message: "scored", fan: "gu-3" },
      ],
    );
    assert.deepEqual(
      of("output")
        .map((event) => event.text)
        .sort(),
      ["plain text on stdout", "{ not json after all"],
    );
    assert.ok(of("log").every((event) => event.function === "vfid-qa1-us-east-1-enqueueFromVfStream"));
    await Promise.all(pools.splice(0).map((created) => created.close()));
    const written = fs.readFileSync(logFile, "utf8");
    for (const line of ["plain text on stdout", "{ not json after all", '"message":"scored"', '"message":"on stderr"']) {
      assert.ok(written.includes(line), line);
    }
  });

  it("leaves no process behind once closed, and refuses invocations after", async function () {
    const { pool: idle } = pool("hang", { maxContainers: 3 });
    await Promise.all([idle.invoke({}), idle.invoke({}), idle.invoke({})]);
    const pids = idle.processes().map((child) => child.pid!);
    assert.ok(pids.length >= 1);
    await idle.close();
    for (const pid of pids) assert.ok(!alive(pid), `container ${pid} is still running`);
    await assert.rejects(idle.invoke({}), /closed/);
  });

  it("leaves no process behind once closed right after a timeout ended a container", async function () {
    const { pool: hanging } = pool("hang", { timeoutSeconds: 1 });
    const pid = (await hanging.invoke({})).result as number;
    const timedOut = await hanging.invoke({ hang: true });
    assert.equal(timedOut.error?.kind, "timeout");
    await hanging.close();
    assert.ok(!alive(pid), `the timed-out container ${pid} is still running`);
  });
});

/** Whether a process runs (a zombie not yet reaped counts as running). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}
