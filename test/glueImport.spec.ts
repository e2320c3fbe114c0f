/**
 * The data-science import workers, built by their real factories and talking to a fake Glue at
 * the wire: what S3 notifications start, what they skip, and that nothing is silently lost.
 */
import * as assert from "node:assert/strict";
import type { ImportSummary } from "../workers/shared/glueImport";
import { startBotOrNotImport } from "../workers/startBotOrNotImport";
import { startClusterImport } from "../workers/startClusterImport";
import { AWS_VARIABLES, environmentPerTest, LAMBDA_AWS } from "./support/environment";
import { fixture } from "./support/fixtures";
import { type AwsOperation, awsJsonResponder, operationOf, type RecordedRequest, WireServer } from "./support/http";
import { captureLogs, linesAt, type LogLine } from "./support/logs";

const BUCKET = "ds-exports-dev1";

type S3Notification = { Records: { s3: { bucket: { name: string }; object: { key: string } } }[] };

/** The fixture's single record with another key, as S3 would send it. */
function eventFor(...keys: string[]) {
  const template = fixture<S3Notification>("s3-export-success.json").Records[0]!;
  return { Records: keys.map((key) => ({ ...template, s3: { ...template.s3, object: { ...template.s3.object, key } } })) };
}

const ENVIRONMENT = ["GLUE_WORKFLOW_NAME", ...AWS_VARIABLES, "AWS_ENDPOINT_URL_GLUE"] as const;

const workers = [
  {
    worker: startBotOrNotImport,
    name: "startBotOrNotImport",
    workflow: "fanid-dev1-bot-or-not-import",
    fixture: "s3-export-success.json",
    key: "bot-or-not/date=2026-11-24/_SUCCESS",
  },
  {
    worker: startClusterImport,
    name: "startClusterImport",
    workflow: "fanid-dev1-clustering-import",
    fixture: "s3-cluster-export-success.json",
    key: "clustering/date=2026-11-24/_SUCCESS",
  },
] as const;

type Outcome = { value: ImportSummary; error?: undefined } | { value?: undefined; error: Error };

describe("data-science import workers", () => {
  let server: WireServer;
  /** What the fake Glue answers to StartWorkflowRun; each test may replace it. */
  let startWorkflowRun: AwsOperation;
  const setWorkerEnvironment = environmentPerTest(ENVIRONMENT);

  /** Sets the environment a deployed import worker gets, pointed at the fake Glue. */
  function deploy(workflow: string | undefined) {
    setWorkerEnvironment({
      ...LAMBDA_AWS,
      AWS_ACCESS_KEY_ID: "AKIAIOSFODNN7EXAMPLE",
      AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      AWS_ENDPOINT_URL_GLUE: server.url,
      GLUE_WORKFLOW_NAME: workflow,
    });
  }

  /** Runs one event through a freshly built handler, collecting its log lines whether it resolves or rejects. */
  async function invoke(worker: (typeof workers)[number], event: unknown): Promise<Outcome & { logs: LogLine[] }> {
    deploy(worker.workflow);
    const handler = worker.worker.factory();
    const { result, logs } = await captureLogs(() =>
      handler(event).then(
        (value): Outcome => ({ value }),
        (error: Error): Outcome => ({ error }),
      ),
    );
    return { ...result, logs };
  }

  const bodyOf = (request: RecordedRequest) => JSON.parse(request.body) as unknown;

  beforeEach(async () => {
    startWorkflowRun = (input) => ({ RunId: `wr_${String((input.RunProperties as { date?: string }).date)}` });
    server = await WireServer.start(awsJsonResponder({ StartWorkflowRun: (input) => startWorkflowRun(input) }));
  });

  afterEach(async () => {
    await server.close();
  });

  for (const worker of workers) {
    describe(worker.name, () => {
      it("starts its Glue workflow once for a completed export, with bucket, key and date as run properties", async () => {
        const { value, error, logs } = await invoke(worker, fixture(worker.fixture));

        assert.equal(error, undefined);
        assert.equal(server.requests.length, 1);
        const [request] = server.requests;
        assert.equal(request!.method, "POST");
        assert.equal(request!.headers["x-amz-target"], "AWSGlue.StartWorkflowRun");
        assert.match(String(request!.headers["content-type"]), /^application\/x-amz-json-1\.1/);
        // Signed for Glue in the function's region, with the function's credentials.
        assert.match(
          String(request!.headers.authorization),
          /Credential=AKIAIOSFODNN7EXAMPLE\/\d{8}\/us-east-1\/glue\/aws4_request/,
        );
        assert.deepEqual(bodyOf(request!), {
          Name: worker.workflow,
          RunProperties: { bucket: BUCKET, key: worker.key, date: "2026-11-24" },
        });
        assert.deepEqual(value, {
          started: [{ bucket: BUCKET, key: worker.key, date: "2026-11-24", runId: "wr_2026-11-24" }],
          skipped: [],
        });
        assert.deepEqual(
          logs.filter((line) => line.level === "WARN" || line.level === "ERROR"),
          [],
        );
      });

      it("rejects, naming the worker, the export and the workflow, when Glue refuses to start a run", async () => {
        startWorkflowRun = () => ({
          error: {
            type: "ConcurrentRunsExceededException",
            message: `Concurrent runs exceeded for workflow: ${worker.workflow}`,
          },
        });
        const { error } = await invoke(worker, fixture(worker.fixture));

        assert.ok(error instanceof Error, "the handler rejects");
        assert.ok(error.message.startsWith(`${worker.name}: `), error.message);
        assert.ok(error.message.includes(`s3://${BUCKET}/${worker.key}`), error.message);
        assert.ok(error.message.includes(worker.workflow), error.message);
        assert.ok(error.message.includes("ConcurrentRunsExceededException"), error.message);
      });

      it("fails at cold start, naming GLUE_WORKFLOW_NAME, when the workflow is not configured", () => {
        deploy(undefined);
        assert.throws(
          () => worker.worker.factory(),
          (error: Error) => error.message.startsWith(`${worker.name}: `) && error.message.includes("GLUE_WORKFLOW_NAME"),
        );
        assert.equal(server.requests.length, 0);
      });
    });
  }

  describe("keys", () => {
    const botOrNot = workers[0];

    it("decodes a form-encoded key (date%3D…, '+' for a space) before reading its date and passing it on", async () => {
      const { value, error } = await invoke(botOrNot, fixture("s3-export-encoded-key.json"));

      assert.equal(error, undefined);
      const key = "bot-or-not/date=2026-11-24/run 1/_SUCCESS";
      assert.deepEqual(server.requests.map(bodyOf), [
        { Name: botOrNot.workflow, RunProperties: { bucket: BUCKET, key, date: "2026-11-24" } },
      ]);
      assert.deepEqual(value?.started, [{ bucket: BUCKET, key, date: "2026-11-24", runId: "wr_2026-11-24" }]);
    });

    it("skips a key without a date, with a warning naming the key, and starts nothing", async () => {
      const { value, error, logs } = await invoke(botOrNot, fixture("s3-export-no-date.json"));

      assert.equal(error, undefined, "a key without a date is not a failure");
      assert.equal(server.requests.length, 0);
      assert.equal(value?.started.length, 0);
      assert.equal(value?.skipped.length, 1);
      assert.equal(value?.skipped[0]?.bucket, BUCKET);
      assert.equal(value?.skipped[0]?.key, "bot-or-not/latest/_SUCCESS");
      assert.match(value?.skipped[0]?.reason ?? "", /date=YYYY-MM-DD/);
      const warnings = linesAt(logs, "WARN");
      assert.equal(warnings.length, 1, JSON.stringify(logs));
      assert.equal(warnings[0]!.service, "startBotOrNotImport");
      assert.equal(warnings[0]!.key, "bot-or-not/latest/_SUCCESS");
      assert.equal(warnings[0]!.bucket, BUCKET);
      assert.match(String(warnings[0]!.reason), /date=YYYY-MM-DD/);
    });

    it("skips a key whose date is not a real day (2026-02-30), with a warning", async () => {
      const { value, error, logs } = await invoke(botOrNot, eventFor("bot-or-not/date=2026-02-30/_SUCCESS"));

      assert.equal(error, undefined);
      assert.equal(server.requests.length, 0);
      assert.deepEqual(
        value?.skipped.map((skip) => skip.key),
        ["bot-or-not/date=2026-02-30/_SUCCESS"],
      );
      assert.deepEqual(
        linesAt(logs, "WARN").map((line) => line.key),
        ["bot-or-not/date=2026-02-30/_SUCCESS"],
      );
    });

    it("starts one run per dated record of an event, in order", async () => {
      const event = fixture("s3-export-two-records.json");
      const { value, error } = await invoke(botOrNot, event);

      assert.equal(error, undefined);
      assert.deepEqual(server.requests.map(operationOf), ["StartWorkflowRun", "StartWorkflowRun"]);
      assert.deepEqual(server.requests.map(bodyOf), [
        {
          Name: botOrNot.workflow,
          RunProperties: { bucket: BUCKET, key: "bot-or-not/date=2026-11-24/_SUCCESS", date: "2026-11-24" },
        },
        {
          Name: botOrNot.workflow,
          RunProperties: { bucket: BUCKET, key: "bot-or-not/date=2026-11-25/_SUCCESS", date: "2026-11-25" },
        },
      ]);
      assert.deepEqual(
        value?.started.map((run) => run.runId),
        ["wr_2026-11-24", "wr_2026-11-25"],
      );
    });

    it("in an event mixing dated and undated records, starts exactly the dated ones", async () => {
      const event = eventFor(
        "bot-or-not/date=2026-11-24/_SUCCESS",
        "bot-or-not/manifest/_SUCCESS",
        "bot-or-not/mydate=2026-11-25/_SUCCESS",
        "bot-or-not/date=2026-11-26/_SUCCESS",
      );
      const { value, error, logs } = await invoke(botOrNot, event);

      assert.equal(error, undefined);
      assert.deepEqual(
        server.requests.map((request) => (bodyOf(request) as { RunProperties: { date: string } }).RunProperties.date),
        ["2026-11-24", "2026-11-26"],
      );
      assert.deepEqual(
        value?.skipped.map((skip) => skip.key),
        ["bot-or-not/manifest/_SUCCESS", "bot-or-not/mydate=2026-11-25/_SUCCESS"],
      );
      assert.deepEqual(
        linesAt(logs, "WARN").map((line) => line.key),
        ["bot-or-not/manifest/_SUCCESS", "bot-or-not/mydate=2026-11-25/_SUCCESS"],
      );
    });
  });

  describe("Glue failures", () => {
    const botOrNot = workers[0];
    const key = "bot-or-not/date=2026-11-24/_SUCCESS";

    for (const glueError of [
      { type: "ConcurrentRunsExceededException", message: "Concurrent runs exceeded for workflow: fanid-dev1-bot-or-not-import" },
      { type: "EntityNotFoundException", message: "Workflow with name fanid-dev1-bot-or-not-import not found" },
    ]) {
      it(`rejects on ${glueError.type}, with an error and an error log line that name the export, date, workflow and Glue error`, async () => {
        startWorkflowRun = () => ({ error: glueError });
        const { error, logs } = await invoke(botOrNot, fixture("s3-export-success.json"));

        assert.equal(server.requests.length, 1, "the run was asked for once");
        assert.ok(error instanceof Error, "the handler rejects, so Lambda retries and then keeps the event");
        for (const fact of [
          "startBotOrNotImport",
          `s3://${BUCKET}/${key}`,
          "2026-11-24",
          botOrNot.workflow,
          glueError.type,
          glueError.message,
          "1 of 1",
        ]) {
          assert.ok(error.message.includes(fact), `error message lacks "${fact}": ${error.message}`);
        }
        const errors = linesAt(logs, "ERROR");
        assert.equal(errors.length, 1, JSON.stringify(logs));
        assert.equal(errors[0]!.service, "startBotOrNotImport");
        assert.equal(errors[0]!.workflow, botOrNot.workflow);
        assert.equal(errors[0]!.bucket, BUCKET);
        assert.equal(errors[0]!.key, key);
        assert.equal(errors[0]!.date, "2026-11-24");
        assert.deepEqual(errors[0]!.error, { code: glueError.type, message: glueError.message });
      });
    }

    it("still starts the other record when one of two fails, and rejects saying 1 of 2", async () => {
      startWorkflowRun = (input) => {
        const { date } = input.RunProperties as { date: string };
        return date === "2026-11-24"
          ? { error: { type: "ConcurrentRunsExceededException", message: "Concurrent runs exceeded" } }
          : { RunId: `wr_${date}` };
      };
      const { error, logs } = await invoke(botOrNot, fixture("s3-export-two-records.json"));

      // The failing record came first; the second was still asked for.
      assert.deepEqual(
        server.requests.map((request) => (bodyOf(request) as { RunProperties: { key: string } }).RunProperties.key),
        ["bot-or-not/date=2026-11-24/_SUCCESS", "bot-or-not/date=2026-11-25/_SUCCESS"],
      );
      assert.ok(error instanceof Error);
      assert.match(error.message, /1 of 2/);
      assert.ok(error.message.includes(`s3://${BUCKET}/bot-or-not/date=2026-11-24/_SUCCESS`), error.message);
      assert.ok(!error.message.includes("date=2026-11-25"), `the started export is not reported as failed: ${error.message}`);
      assert.deepEqual(
        linesAt(logs, "ERROR").map((line) => line.key),
        ["bot-or-not/date=2026-11-24/_SUCCESS"],
      );
    });

    it("reports every failed record when all fail", async () => {
      startWorkflowRun = () => ({ error: { type: "EntityNotFoundException", message: "Workflow not found" } });
      const { error } = await invoke(botOrNot, fixture("s3-export-two-records.json"));

      assert.equal(server.requests.length, 2);
      assert.ok(error instanceof Error);
      assert.match(error.message, /2 of 2/);
      assert.ok(error.message.includes("bot-or-not/date=2026-11-24/_SUCCESS"), error.message);
      assert.ok(error.message.includes("bot-or-not/date=2026-11-25/_SUCCESS"), error.message);
    });
  });

  describe("malformed events", () => {
    const botOrNot = workers[0];
    const valid = fixture<S3Notification>("s3-export-success.json").Records[0]!;

    for (const { title, event, path: wrong } of [
      { title: "an empty object", event: {}, path: "Records" },
      { title: "an event with no records", event: { Records: [] }, path: "Records" },
      {
        title: "a record without s3.object.key",
        event: { Records: [{ ...valid, s3: { ...valid.s3, object: { size: 0 } } }] },
        path: "Records.0.s3.object.key",
      },
      {
        title: "a valid record followed by one without s3.object.key",
        event: { Records: [valid, { ...valid, s3: { ...valid.s3, object: { size: 0 } } }] },
        path: "Records.1.s3.object.key",
      },
      {
        title: "a record with an empty bucket name",
        event: { Records: [{ ...valid, s3: { ...valid.s3, bucket: { name: "" } } }] },
        path: "Records.0.s3.bucket.name",
      },
      {
        title: "an SQS record",
        event: { Records: [{ eventSource: "aws:sqs", messageId: "059f36b4-87a3-44ab-83d2-661975830a7d", body: "{}" }] },
        path: "Records.0.s3",
      },
      {
        title: "a key with a malformed % escape",
        event: eventFor("bot-or-not/date=2026-11-24/100%/_SUCCESS"),
        path: "Records.0.s3.object.key",
      },
    ]) {
      it(`rejects ${title}, naming ${wrong}, and starts nothing`, async () => {
        const { error } = await invoke(botOrNot, event);

        assert.ok(error instanceof Error, "the handler rejects");
        assert.ok(error.message.startsWith("startBotOrNotImport: not an S3 event notification: "), error.message);
        assert.ok(error.message.includes(`${wrong}: `), `error message does not name ${wrong}: ${error.message}`);
        assert.equal(server.requests.length, 0);
      });
    }

    it("quotes the key it could not decode", async () => {
      const { error } = await invoke(botOrNot, eventFor("bot-or-not/date=2026-11-24/100%/_SUCCESS"));

      assert.ok(error?.message.includes('"bot-or-not/date=2026-11-24/100%/_SUCCESS"'), error?.message);
    });

    it("rejects a null event", async () => {
      const { error } = await invoke(botOrNot, null);

      assert.match(error?.message ?? "", /^startBotOrNotImport: not an S3 event notification: /);
      assert.equal(server.requests.length, 0);
    });
  });

  it("a malformed GLUE_WORKFLOW_NAME fails at cold start, naming the variable", () => {
    deploy("bot or not; drop");
    assert.throws(() => startBotOrNotImport.factory(), /^Error: startBotOrNotImport: environment .*GLUE_WORKFLOW_NAME/);
  });
});
