/**
 * The program run offline for one stack, with the stack file's configuration: what `npm run
 * plan`, the local system and `npm run invoke` all start from.
 */
import * as path from "node:path";
import { keepArchivesIn, projectRoot } from "../../components/archive";
import { loadStackConfig, PROJECT } from "../../stacks/config";
import { fanIdentityWorkers } from "../../stacks/program";
import { type OfflineRun, runOffline } from "./runtime";
import { readStackFile, type StackFileConfig } from "./stackFile";

export interface PlannedStackRun {
  readonly stackFile: StackFileConfig;
  readonly run: OfflineRun<unknown>;
}

/**
 * Runs the program for `stack` (configuration from Pulumi.<stack>.yaml, or `stackFilePath`).
 * Throws what the program throws (a configuration error names the key); failures the program
 * raised asynchronously are in `run.errors`. What the program logged goes to stderr, unless the
 * caller `reportsDiagnostics` (from `run.messages`) itself.
 */
export async function planStack(
  stack: string,
  stackFilePath?: string,
  { reportsDiagnostics = false }: { readonly reportsDiagnostics?: boolean } = {},
): Promise<PlannedStackRun> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  // Archives bundled by an earlier plan of the same code are used again (a build starts afresh).
  keepArchivesIn(path.join(projectRoot(), "build", ".archives"));
  const stackFile = readStackFile(stack, projectRoot(), stackFilePath && path.resolve(stackFilePath));
  const run = await runOffline({
    project: PROJECT,
    stack,
    config: stackFile.values,
    secretKeys: stackFile.secretKeys,
    accountId: stackFile.values[`${PROJECT}:accountId`] ?? "000000000000",
    // What index.ts runs, called afresh: a second plan in one process runs the program again.
    program: () => fanIdentityWorkers(loadStackConfig()),
  });
  // The tool's log, not its answer (stdout).
  if (!reportsDiagnostics) for (const message of run.messages) console.error(message);
  return { stackFile, run };
}
