/**
 * Planned functions' archives, written once per worker for a spec and removed after it, with
 * the environment Lambda would give each.
 */
import { strict as assert } from "node:assert";
import {
  type InvokeReport,
  lambdaEnvironment,
  removeArchive,
  type WrittenArchive,
  writeArchive,
} from "../../tools/offline/archive";
import type { PlannedStack } from "./program";

export interface DeployedWorker {
  readonly archive: WrittenArchive;
  /** The environment variables the program sets. */
  readonly planned: Record<string, string>;
  /** The whole environment of a Lambda container, with `overrides` pointing services at local stand-ins. */
  lambdaEnv(overrides: Record<string, string>): Record<string, string>;
}

export function archiveShelf() {
  const archives = new Map<string, WrittenArchive>();
  return {
    /** The planned function `<component>-<worker>-function`, its archive written out. */
    async deployed(plan: PlannedStack, component: string, worker: string): Promise<DeployedWorker> {
      const fn = plan.find("aws:lambda/function:Function", `${component}-${worker}-function`);
      const archive = archives.get(worker) ?? (await writeArchive(fn.inputs.code, worker));
      archives.set(worker, archive);
      const planned = (fn.inputs.environment as { variables: Record<string, string> }).variables;
      return { archive, planned, lambdaEnv: (overrides) => lambdaEnvironment(fn, overrides) };
    },
    removeAll(): void {
      archives.forEach(removeArchive);
      archives.clear();
    },
  };
}

/** The results of the run's invocations; fails the test if the handler threw. */
export function resultsOf(report: InvokeReport): unknown[] {
  return report.invocations.map((invocation) => {
    assert.equal(invocation.error, undefined, `the handler threw: ${JSON.stringify(invocation.error)}`);
    return invocation.result;
  });
}
