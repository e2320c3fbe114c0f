/**
 * The local system's commands: `npm run invoke` runs every worker's archive against the local
 * services, answering as the worker would in Lambda; `npm start` for a bounded run ends with its
 * figures and ledger, prints the endpoints an AWS SDK reaches it at (Lambda's Invoke API among
 * them), and on Ctrl-C stops every process it started.
 */
import { strict as assert } from "node:assert";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { projectRoot } from "../components/archive";
import { armGradeOf } from "../tools/local/services/redis";
import { REGISTERED } from "../workers/registry";
import { fixture } from "./support/fixtures";
import { type BootedSystem, bootLocal, until } from "./support/localSystem";
import { planStack } from "./support/program";

type Answer = Record<string, unknown>;

/** What each worker's fixture must answer, against the local services. */
const INVOCATIONS: Record<string, { fixture: string; check: (answer: Answer, booted: BootedSystem) => void }> = {
  validateToken: { fixture: "appsync-authorizer.json", check: (answer) => assert.deepEqual(answer, { isAuthorized: false }) },
  startBotOrNotImport: {
    fixture: "s3-export-success.json",
    check: (answer, booted) => {
      assert.equal((answer.started as unknown[]).length, 1);
      assert.equal(booted.standIns.glue.runs.length >= 1, true);
    },
  },
  startClusterImport: {
    fixture: "s3-cluster-export-success.json",
    check: (answer) => assert.equal((answer.started as unknown[]).length, 1),
  },
  enqueueFromVfStream: {
    fixture: "kinesis-vf-login.json",
    check: (answer) => assert.deepEqual(answer, { batchItemFailures: [] }),
  },
  enqueueFromDemandStream: {
    fixture: "kinesis-demand-insert.json",
    check: (answer) => assert.deepEqual(answer, { batchItemFailures: [] }),
  },
  enqueueFromPurchaseStream: {
    fixture: "kinesis-purchase-success.json",
    check: (answer) => assert.deepEqual(answer, { batchItemFailures: [] }),
  },
  enqueueFromSQJourneyStream: {
    fixture: "kinesis-sq-journey.json",
    check: (answer) => assert.deepEqual(answer, { batchItemFailures: [] }),
  },
  processRescoreEvents: {
    fixture: "kinesis-rescore-ttl-removal.json",
    check: (answer) => assert.deepEqual(answer, { batchItemFailures: [] }),
  },
  lookupArai: {
    fixture: "sqs-account-activity-fifo.json",
    check: (answer, booted) => {
      assert.deepEqual(answer, { batchItemFailures: [] });
      assert.ok(
        booted.changes.some((change) => (change.data.dynamodb.NewImage as { type?: { S?: string } })?.type?.S === "activityData"),
      );
    },
  },
  scoreUsers: {
    fixture: "kinesis-fan-table-activity-data.json",
    check: (answer) => assert.deepEqual(answer, { batchItemFailures: [] }),
  },
  stagingScoreUsers: {
    fixture: "kinesis-fan-table-activity-data.json",
    check: (answer) => assert.deepEqual(answer, { batchItemFailures: [] }),
  },
  enqueueFromActivityStream: {
    fixture: "kafka-user-activity.json",
    check: (answer) => assert.deepEqual(answer, { batchItemFailures: [] }),
  },
  getArmScore: {
    fixture: "appsync-resolver-get-arm-score.json",
    check: (answer) => assert.deepEqual(answer, { armScore: armGradeOf("gu-7f3c2a91") }),
  },
  checkLiveness: {
    fixture: "appsync-check-liveness.json",
    check: (answer) => {
      assert.equal(answer.requiresVerification, true);
      assert.match(String((answer.session as Answer).vendorSessionId), /^inq_/);
      assert.match(String(answer.token), /^[\w-]+\.[\w-]+\.[\w-]+$/);
    },
  },
  handleEvent: {
    // Signed by Persona with a secret this system does not hold: refused, as in Lambda.
    fixture: "apigateway-persona-webhook.json",
    check: (answer) => assert.equal(answer.statusCode, 401),
  },
};

/** The pids of `root`'s descendants, from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // gone meanwhile
    }
  }
  const found: number[] = [];
  const visit = (pid: number) => (children.get(pid) ?? []).forEach((child) => (found.push(child), visit(child)));
  visit(root);
  return found;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, "utf8").includes(") Z ");
  } catch {
    return false;
  }
};

function startCommand(args: readonly string[]): { child: ChildProcess; stderr: () => string; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(projectRoot(), "build/tools/local/start.js"), ...args], {
    cwd: projectRoot(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdout!.resume();
  return { child, stderr: () => stderr, exit: new Promise((resolve) => child.on("exit", (code) => resolve(code))) };
}

describe("the local system's commands", function () {
  describe("npm run invoke", function () {
    let booted: BootedSystem;
    before(async function () {
      // As npm run invoke runs them: no event source mapping invokes anything meanwhile.
      booted = await bootLocal((await planStack("qa1")).resources, { mappings: false });
      await booted.standIns.redis.seedArmGrades(["gu-7f3c2a91"]);
    });
    after(async () => booted?.stop());

    it("has a fixture for every registered worker", function () {
      assert.deepEqual(Object.keys(INVOCATIONS).sort(), REGISTERED.map((entry) => entry.name).sort());
    });

    for (const [worker, { fixture: file, check }] of Object.entries(INVOCATIONS)) {
      it(`runs ${worker}'s archive on ${file}`, async function () {
        const fn = booted.system.wiring.functions.find((candidate) => candidate.worker === worker)!;
        const outcome = await booted.system.invoke(fn.name, fixture(file));
        assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
        check(outcome.result as Answer, booted);
        // This invocation, once: others may run meanwhile (Persona's webhook after checkLiveness calls handleEvent).
        const invocations = booted.of("invocation").filter((event) => event.requestId === outcome.requestId);
        assert.deepEqual(
          invocations.map((event) => [event.function, event.outcome]),
          [[fn.name, "ok"]],
        );
      });
    }

    it("prints the answer on stdout and the logs on stderr", async function () {
      const event = path.join(projectRoot(), "test/fixtures/events/kinesis-vf-login.json");
      const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) =>
        execFile(
          process.execPath,
          [path.join(projectRoot(), "build/tools/local/invoke.js"), "enqueueFromVfStream", event],
          { cwd: projectRoot() },
          (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolve({ stdout: out, stderr: err })),
        ),
      );
      assert.deepEqual(JSON.parse(stdout), { batchItemFailures: [] });
      assert.ok(
        stderr.split("\n").some((line) => line.startsWith("{") && (JSON.parse(line) as Answer).message === "batch enqueued"),
      );
    });
  });

  describe("npm start", function () {
    it("ends a bounded run with its figures and ledger, and leaves nothing running", async function () {
      const json = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "start-")), "figures.json");
      const run = startCommand(["--duration", "3", "--rate", "30", "--json", json]);
      let seen: number[] = [];
      const watch = setInterval(() => (seen = [...new Set([...seen, ...descendants(run.child.pid!)])]), 200);
      const code = await run.exit;
      clearInterval(watch);
      assert.equal(code, 0, run.stderr());
      const written = JSON.parse(fs.readFileSync(json, "utf8")) as { ledger: { totals: { balanced: boolean; in: number } } };
      assert.equal(written.ledger.totals.balanced, true);
      assert.ok(written.ledger.totals.in > 0);
      assert.ok(seen.length >= 4, `saw only ${seen.length} child processes`);
      await until("every child gone", () => seen.every((pid) => !alive(pid)), 30_000);
    });

    it("prints the endpoints for an AWS SDK, answers Lambda's Invoke API there, and stops every process it started on Ctrl-C", async function () {
      const run = startCommand(["--rate", "20"]);
      await until("the system up", () => run.stderr().includes("For the AWS SDK:"), 180_000);
      const exported =
        /For the AWS SDK: export AWS_ENDPOINT_URL_SQS=(http:\S+) AWS_ENDPOINT_URL_KINESIS=(http:\S+) AWS_ENDPOINT_URL_LAMBDA=(http:\S+)\n/.exec(
          run.stderr(),
        );
      assert.ok(exported, run.stderr());
      assert.ok(run.stderr().includes(`Lambda Invoke API: ${exported[3]}/2015-03-31/functions/<name or ARN>/invocations`));
      const lambda = new LambdaClient({
        endpoint: exported[3],
        region: "us-east-1",
        credentials: { accessKeyId: "a", secretAccessKey: "b" },
      });
      try {
        // A fan Redis holds no grade for: getArmScore answers null (docs/flows.md#arm-score).
        const answer = await lambda.send(
          new InvokeCommand({
            FunctionName: "vfid-qa1-us-east-1-getArmScore",
            Payload: Buffer.from(JSON.stringify({ globalUserId: "fan-with-no-grade" })),
          }),
        );
        assert.equal(answer.FunctionError, undefined);
        assert.deepEqual(JSON.parse(Buffer.from(answer.Payload!).toString("utf8")), { armScore: null });
      } finally {
        lambda.destroy();
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
      const started = descendants(run.child.pid!);
      assert.ok(started.length >= 4, `only ${started.length} child processes`);
      run.child.kill("SIGINT");
      assert.equal(await run.exit, 0, run.stderr());
      await until("every child gone", () => started.every((pid) => !alive(pid)), 30_000);
    });
  });
});
