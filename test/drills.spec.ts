/**
 * Every fault drill (tools/local/drills) on the local system of qa1's plan, booted once: each
 * drill's fault put in place and cleared, and its report holding what the drill promises: its
 * fault hit, nothing lost, no side effect repeated, no problem, and the time it took the system
 * to recover measured. Each drill's summary line is printed, to be quoted.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DRILLS } from "../tools/local/drills/catalogue";
import { drillSummaryLine, renderDrillReport } from "../tools/local/drills/report";
import { type DrillRunner, startDrillRunner } from "../tools/local/drills/runner";
import { running } from "../tools/local/processes";
import { planStack } from "./support/program";

describe("fault drills on the local system", function () {
  let runner: DrillRunner | undefined;
  let dataDir: string | undefined;

  before(async function () {
    const plan = await planStack("qa1");
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "drills-spec-"));
    runner = await startDrillRunner({ resources: plan.resources, accountId: "210987654321", dataDir });
  });

  after(async function () {
    await runner?.stop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    assert.deepEqual(running(), [], "processes left running");
  });

  for (const drill of DRILLS) {
    it(`${drill.name}: ${drill.summary}`, async function () {
      const report = await runner!.run(drill);
      console.log(`      ${drillSummaryLine(report)}`);
      const detail = `\n${renderDrillReport(report)}`;
      assert.ok(report.hits && report.hits.faulted > 0, `the fault was not hit${detail}`);
      assert.deepEqual(report.ledger.lost, [], `inputs lost${detail}`);
      assert.deepEqual(report.ledger.unexpected, [], `inputs not accounted for as expected${detail}`);
      assert.deepEqual(report.ledger.wrongScores, [], `scores written wrong${detail}`);
      const repeated = report.sideEffects.filter((count) => count.repeated.length > 0).map((count) => count.effect);
      assert.deepEqual(repeated, [], `side effects repeated${detail}`);
      assert.deepEqual(report.problems, [], `problems${detail}`);
      assert.ok(Number.isFinite(report.recoveryMs) && report.recoveryMs >= 0, `no recovery time${detail}`);
      assert.ok(report.ok, detail);
    });
  }
});
