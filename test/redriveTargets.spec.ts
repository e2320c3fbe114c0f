/**
 * Which queue `npm run redrive --from` names (tools/redrive/targets.ts), on prod1's plan, whose
 * scoring stack runs in two regions with queues of the same short names: the dead-letter queues
 * of the planned redrive policies and the failure destinations of the stream mappings and of the
 * import workers' asynchronous invocations can be redriven,
 * a short name in two regions needs `--region`, and a physical name needs none.
 */
import { strict as assert } from "node:assert";
import { readWiring, type Wiring } from "../tools/local/wiring";
import { findTarget, redriveTargets, type RedriveTarget, UnknownQueueError } from "../tools/redrive/targets";
import { planStack } from "./support/program";

describe("the queue npm run redrive empties", function () {
  let targets: RedriveTarget[];
  let wiring: Wiring;
  /** The region's Kinesis and Kafka mappings: each has the failure destination. */
  const streamMappings = (region: string) =>
    wiring.mappings.filter((mapping) => mapping.kind !== "sqs" && mapping.functionName.startsWith(`vfid-prod1-${region}-`))
      .length;

  before(async function () {
    wiring = readWiring((await planStack("prod1")).resources);
    targets = redriveTargets(wiring);
  });

  it("is a dead-letter queue of a redrive policy, or a stream mapping's or an asynchronous invocation's failure destination", function () {
    const described = targets.map((target) => [
      target.queue.name,
      target.kind === "deadLetter"
        ? target.source.name
        : target.kind === "streamFailures"
          ? `${target.mappings.length} stream mappings`
          : target.configs.map((config) => config.functionName).join(),
    ]);
    const expected = (region: string) => [
      [`vfid-prod1-${region}-on-demand-scoring-sqs-dlq`, `vfid-prod1-${region}-on-demand-scoring-sqs`],
      [`vfid-prod1-${region}-acct-activity-sqs-dlq.fifo`, `vfid-prod1-${region}-acct-activity-sqs.fifo`],
      [`vfid-prod1-${region}-scoring-stream-failures-sqs`, `${streamMappings(region)} stream mappings`],
    ];
    // The import workers (us-east-1 only) send the S3 events they give up on to a queue each.
    const imports = ["startBotOrNotImport", "startClusterImport"].map((worker) => [
      `vfid-prod1-us-east-1-${worker}-failures`,
      `vfid-prod1-us-east-1-${worker}`,
    ]);
    assert.deepEqual(described.sort(), [...expected("us-east-1"), ...expected("us-west-2"), ...imports].sort());
  });

  it("needs --region for a short name two regions have, and finds it in the region given", function () {
    assert.throws(
      () => findTarget(targets, "acct-activity-sqs-dlq"),
      (error: Error) =>
        error instanceof UnknownQueueError && /names a queue in us-east-1 and us-west-2: add --region/.test(error.message),
    );
    const west = findTarget(targets, "acct-activity-sqs-dlq", "us-west-2");
    assert.equal(west.queue.name, "vfid-prod1-us-west-2-acct-activity-sqs-dlq.fifo");
    assert.equal(west.kind === "deadLetter" && west.source.name, "vfid-prod1-us-west-2-acct-activity-sqs.fifo");
  });

  it("finds a physical name in any region, and refuses a source queue, listing what can be redriven", function () {
    assert.equal(
      findTarget(targets, "vfid-prod1-us-west-2-scoring-stream-failures-sqs").queue.name,
      "vfid-prod1-us-west-2-scoring-stream-failures-sqs",
    );
    assert.throws(
      () => findTarget(targets, "acct-activity-sqs.fifo", "us-east-1"),
      (error: Error) =>
        error instanceof UnknownQueueError &&
        error.message.includes("--from acct-activity-sqs.fifo: no queue of this name in us-east-1 can be redriven") &&
        error.message.includes(
          "  vfid-prod1-us-west-2-on-demand-scoring-sqs-dlq (on-demand-scoring-sqs-dlq, us-west-2): dead-letter queue of",
        ),
    );
  });
});
