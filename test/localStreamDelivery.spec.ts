/**
 * How the local stream mappings deliver a shard's batch (tools/local/sources/streamDelivery.ts),
 * with a scripted function: Lambda's success and failure conditions for partial batch responses,
 * retries from the first record reported, BisectBatchOnFunctionError splitting a failing batch,
 * MaximumRetryAttempts (-1: for ever) and the records handed to the on-failure destination, with
 * the metadata Lambda writes about them.
 */
import * as assert from "node:assert/strict";
import type { InvokeOutcome } from "../tools/local/lambda/pool";
import { deliverBatch, failureContext, type StreamBatchPolicy } from "../tools/local/sources/streamDelivery";

type Rec = string;

const RECORDS = ["r1", "r2", "r3", "r4", "r5", "r6", "r7", "r8"];

const ok = (result: unknown = null): InvokeOutcome => ({ requestId: "req", coldStart: false, ms: 1, result });
const failed = (kind: "error" | "timeout" | "crash" = "error"): InvokeOutcome => ({
  requestId: "req",
  coldStart: false,
  ms: 1,
  error: { kind, errorType: "Error", errorMessage: "boom" },
});
const reporting = (...ids: unknown[]) => ok({ batchItemFailures: ids.map((itemIdentifier) => ({ itemIdentifier })) });

interface Run {
  /** The batches the function was invoked with, in order. */
  readonly calls: Rec[][];
  /** What was handed to the on-failure destination. */
  readonly parked: { records: Rec[]; attempts: number; outcome: InvokeOutcome }[];
}

/** Delivers `records` under the settings, the function answering as `script` says for each call (numbered from 0). */
async function deliver(
  settings: Partial<Pick<StreamBatchPolicy<Rec>, "reportBatchItemFailures" | "bisectOnError" | "maximumRetryAttempts">>,
  script: (batch: readonly Rec[], call: number) => InvokeOutcome,
  records: readonly Rec[] = RECORDS.slice(0, 6),
  maxCalls = 200,
): Promise<Run> {
  const run: Run = { calls: [], parked: [] };
  await deliverBatch<Rec>(
    {
      reportBatchItemFailures: true,
      bisectOnError: false,
      maximumRetryAttempts: 2,
      ...settings,
      idOf: (record) => record,
      keyOfReported: (identifier) => (typeof identifier === "string" && identifier !== "" ? identifier : undefined),
      invoke: async (batch) => {
        if (run.calls.length >= maxCalls) throw new Error(`more than ${maxCalls} invocations`);
        run.calls.push([...batch]);
        return script(batch, run.calls.length - 1);
      },
      park: async (parked, outcome, attempts) => {
        run.parked.push({ records: [...parked], attempts, outcome });
      },
    },
    records,
  );
  return run;
}

describe("local stream batch delivery", function () {
  it("delivers a batch once when the function succeeds", async function () {
    const run = await deliver({}, () => ok({ batchItemFailures: [] }));
    assert.deepEqual(run.calls, [RECORDS.slice(0, 6)]);
    assert.deepEqual(run.parked, []);
  });

  it("takes an empty or null failure list, an empty or a null response as complete success", async function () {
    for (const result of [{ batchItemFailures: [] }, { batchItemFailures: null }, {}, null, undefined]) {
      const run = await deliver({}, () => ok(result));
      assert.equal(run.calls.length, 1, JSON.stringify(result));
      assert.deepEqual(run.parked, []);
    }
  });

  it("ignores a partial batch response when ReportBatchItemFailures is off", async function () {
    const run = await deliver({ reportBatchItemFailures: false }, () => reporting("r2"));
    assert.deepEqual(run.calls, [RECORDS.slice(0, 6)]);
    assert.deepEqual(run.parked, []);
  });

  it("retries a partial failure from the lowest record reported, with every record after it", async function () {
    const run = await deliver({}, (_batch, call) => (call === 0 ? reporting("r5", "r3") : ok()));
    assert.deepEqual(run.calls, [RECORDS.slice(0, 6), ["r3", "r4", "r5", "r6"]]);
    assert.deepEqual(run.parked, []);
  });

  it("retries a partial failure again from where the retry failed", async function () {
    const run = await deliver({}, (_batch, call) => [reporting("r2"), reporting("r4"), ok()][call]!);
    assert.deepEqual(run.calls, [RECORDS.slice(0, 6), ["r2", "r3", "r4", "r5", "r6"], ["r4", "r5", "r6"]]);
    assert.deepEqual(run.parked, []);
  });

  it("with bisect on, retries a partial failure from the record reported rather than splitting the batch", async function () {
    const run = await deliver({ bisectOnError: true }, (_batch, call) => (call === 0 ? reporting("r3") : ok()));
    assert.deepEqual(run.calls, [RECORDS.slice(0, 6), ["r3", "r4", "r5", "r6"]]);
  });

  it("hands the records from the one reported to the on-failure destination once the retries are used up", async function () {
    const run = await deliver({ maximumRetryAttempts: 1 }, () => reporting("r4"));
    assert.deepEqual(run.calls, [RECORDS.slice(0, 6), ["r4", "r5", "r6"]]);
    assert.equal(run.parked.length, 1);
    assert.deepEqual(run.parked[0]!.records, ["r4", "r5", "r6"]);
    assert.equal(run.parked[0]!.attempts, 2, "the first invocation and one retry");
  });

  it("fails the whole batch on an invalid response: an identifier not in the batch, empty, null or under another key, or no list", async function () {
    const invalid: unknown[] = [
      { batchItemFailures: [{ itemIdentifier: "r9" }] },
      { batchItemFailures: [{ itemIdentifier: "r2" }, { itemIdentifier: "elsewhere" }] },
      { batchItemFailures: [{ itemIdentifier: "" }] },
      { batchItemFailures: [{ itemIdentifier: null }] },
      { batchItemFailures: [{ sequenceNumber: "r2" }] },
      { batchItemFailures: [null] },
      { batchItemFailures: "r2" },
      { batchItemFailures: { itemIdentifier: "r2" } },
    ];
    for (const result of invalid) {
      const run = await deliver({ maximumRetryAttempts: 1 }, () => ok(result));
      const whole = RECORDS.slice(0, 6);
      assert.deepEqual(run.calls, [whole, whole], JSON.stringify(result));
      assert.deepEqual(
        run.parked.map((parked) => parked.records),
        [whole],
        JSON.stringify(result),
      );
    }
  });

  it("without bisect, retries a failing batch whole, then parks all of it with the number of invocations", async function () {
    for (const kind of ["error", "timeout", "crash"] as const) {
      const run = await deliver({ maximumRetryAttempts: 2 }, () => failed(kind));
      const whole = RECORDS.slice(0, 6);
      assert.deepEqual(run.calls, [whole, whole, whole], kind);
      assert.equal(run.parked.length, 1);
      assert.deepEqual(run.parked[0]!.records, whole);
      assert.equal(run.parked[0]!.attempts, 3);
      assert.equal(run.parked[0]!.outcome.error?.kind, kind);
    }
  });

  it("with no retries, parks a failing batch after its one invocation", async function () {
    const run = await deliver({ maximumRetryAttempts: 0 }, () => failed());
    assert.equal(run.calls.length, 1);
    assert.deepEqual(run.parked[0]?.records, RECORDS.slice(0, 6));
    assert.equal(run.parked[0]?.attempts, 1);
  });

  it("a batch that succeeds on a retry is not parked", async function () {
    const run = await deliver({ maximumRetryAttempts: 2 }, (_batch, call) => (call < 2 ? failed() : ok()));
    assert.equal(run.calls.length, 3);
    assert.deepEqual(run.parked, []);
  });

  it("with bisect on, splits a failing batch down to the bad record, delivers the others, and parks that one alone", async function () {
    const poison = "r6";
    const run = await deliver(
      { bisectOnError: true, maximumRetryAttempts: 2 },
      (batch) => (batch.includes(poison) ? failed() : ok()),
      RECORDS,
    );
    assert.deepEqual(run.calls, [
      RECORDS,
      ["r1", "r2", "r3", "r4"],
      ["r5", "r6", "r7", "r8"],
      ["r5", "r6"],
      ["r5"],
      ["r6"],
      ["r6"],
      ["r6"],
      ["r7", "r8"],
    ]);
    assert.equal(run.parked.length, 1);
    assert.deepEqual(run.parked[0]!.records, [poison]);
    assert.equal(run.parked[0]!.attempts, 3, "the record alone, invoked once and retried twice");
    // Every other record was delivered in a batch that succeeded, in shard order.
    const succeeded = run.calls.filter((batch) => !batch.includes(poison)).flat();
    assert.deepEqual(succeeded, ["r1", "r2", "r3", "r4", "r5", "r7", "r8"]);
  });

  it("with bisect on and an odd batch, splits it into halves that cover every record once", async function () {
    const run = await deliver(
      { bisectOnError: true, maximumRetryAttempts: 0 },
      (_batch, call) => (call === 0 ? failed() : ok()),
      ["r1", "r2", "r3", "r4", "r5"],
    );
    assert.equal(run.calls.length, 3);
    assert.deepEqual(run.calls.slice(1).flat(), ["r1", "r2", "r3", "r4", "r5"]);
    assert.ok(run.calls.slice(1).every((half) => half.length >= 2));
    assert.deepEqual(run.parked, []);
  });

  it("with maximumRetryAttempts -1, keeps retrying a failing batch until it succeeds", async function () {
    const run = await deliver({ maximumRetryAttempts: -1 }, (_batch, call) => (call < 40 ? failed() : ok()));
    assert.equal(run.calls.length, 41);
    assert.ok(run.calls.every((batch) => batch.length === 6));
    assert.deepEqual(run.parked, []);
  });

  it("with maximumRetryAttempts -1, keeps retrying a partial failure too", async function () {
    const run = await deliver({ maximumRetryAttempts: -1 }, (_batch, call) => (call < 30 ? reporting("r5") : ok()));
    assert.equal(run.calls.length, 31);
    assert.deepEqual(run.calls.at(-1), ["r5", "r6"]);
    assert.deepEqual(run.parked, []);
  });

  describe("the on-failure record's context", function () {
    const arn = "arn:aws:lambda:us-east-1:210987654321:function:vfid-qa1-us-east-1-enqueueFromVfStream";

    it("says the retries were exhausted, how many invocations there were, and that the function failed", function () {
      const context = failureContext(arn, { ...failed(), requestId: "c9b8fa9f-5a7f-4a0e-af9c-0c604cde93a5" }, 3);
      assert.deepEqual(context.requestContext, {
        requestId: "c9b8fa9f-5a7f-4a0e-af9c-0c604cde93a5",
        functionArn: arn,
        condition: "RetryAttemptsExhausted",
        approximateInvokeCount: 3,
      });
      assert.deepEqual(context.responseContext, { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" });
      assert.equal(context.version, "1.0");
      assert.ok(!Number.isNaN(Date.parse(context.timestamp)) && context.timestamp.endsWith("Z"));
    });

    it("names no function error when the function answered with failures", function () {
      const context = failureContext(arn, reporting("r1"), 1);
      assert.deepEqual(context.responseContext, { statusCode: 200, executedVersion: "$LATEST" });
    });
  });
});
