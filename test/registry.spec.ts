/**
 * The worker registry (workers/registry.ts) is the one list of workers: every worker folder is in
 * it under its contract's name, and what reads the topology (the configuration schema, the
 * scoring stack) follows it.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "../components/archive";
import { INPUT_STREAM_WORKERS, REGISTERED, WORKERS } from "../workers/registry";
import { type InputStreams, planStack, stackSection } from "./support/program";

describe("the worker registry", function () {
  it("lists every worker folder, under the name its contract gives it", function () {
    const folders = fs
      .readdirSync(path.join(projectRoot(), "workers"), { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && entry.name !== "shared")
      .filter((entry) => fs.existsSync(path.join(entry.parentPath, entry.name, "index.ts")))
      .map((entry) => entry.name)
      .sort();
    assert.deepEqual(Object.keys(WORKERS).sort(), folders);
    for (const { name, worker } of REGISTERED) assert.equal(worker.contract.name, name);
  });

  it("gives each input stream to one worker, under a configuration key ending in Arn", function () {
    const streams = INPUT_STREAM_WORKERS.map(({ trigger }) => trigger.stream);
    assert.deepEqual(streams, [...new Set(streams)]);
    for (const stream of streams) assert.match(stream, /^[a-z][A-Za-z0-9]*Arn$/);
  });

  it("deploys one mapping per configured input stream, with the worker's filter from the registry", async function () {
    const plan = await planStack("qa1");
    const mappings = plan.ofType("aws:lambda/eventSourceMapping:EventSourceMapping");
    const streams = stackSection<{ east: { inputStreams: InputStreams } }>("qa1", "scoring").east.inputStreams;
    for (const { name, trigger } of INPUT_STREAM_WORKERS) {
      const mapping = mappings.filter((candidate) => candidate.inputs.eventSourceArn === streams[trigger.stream]);
      assert.equal(mapping.length, 1, `one mapping reads ${trigger.stream}`);
      assert.equal(mapping[0]!.inputs.functionName, `vfid-qa1-us-east-1-${name}`);
      const filters = (mapping[0]!.inputs.filterCriteria as { filters: { pattern: string }[] }).filters;
      assert.deepEqual(
        filters.map((filter) => JSON.parse(filter.pattern) as unknown),
        [trigger.filter],
      );
    }
  });

  it("fails the configuration check naming an input stream the registry does not know", async function () {
    const scoring = stackSection<{ east: { inputStreams: InputStreams } }>("qa1", "scoring");
    scoring.east.inputStreams.ticketArn = scoring.east.inputStreams.vfArn!;
    await assert.rejects(planStack("qa1", { scoring }), /scoring\.east\.inputStreams.*ticketArn/);
  });

  it("fails the configuration check when a required input stream is missing", async function () {
    const scoring = stackSection<{ east: { inputStreams: InputStreams } }>("qa1", "scoring");
    delete scoring.east.inputStreams.purchaseArn;
    await assert.rejects(planStack("qa1", { scoring }), /scoring\.east\.inputStreams\.purchaseArn/);
  });
});
