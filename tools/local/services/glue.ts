/**
 * Glue for the local system, speaking its JSON protocol (`X-Amz-Target: AWSGlue.<Operation>`):
 * the import workers start workflow runs (StartWorkflowRun), which are recorded with their run
 * properties and can be read back (GetWorkflowRun, GetWorkflowRuns). Nothing runs: a run is
 * RUNNING until `runMs` has passed, then COMPLETED.
 */
import { randomBytes } from "node:crypto";
import type { RunningService } from "../types";
import { type AwsOperation, awsJsonResponder, WireServer } from "../wire";

/** A workflow run started through the local Glue. */
export interface WorkflowRun {
  readonly workflow: string;
  /** wr_ and 64 hex digits, as Glue makes them. */
  readonly runId: string;
  /** The RunProperties the caller sent ({} when none). */
  readonly runProperties: Readonly<Record<string, string>>;
  /** Epoch ms. */
  readonly startedAt: number;
}

export interface GlueOptions {
  /** The workflows that exist (the plan's GLUE_WORKFLOW_NAMEs); others are not found. @default any */
  readonly workflows?: readonly string[];
  /** How long a run stays RUNNING before it reads COMPLETED. @default 1000 */
  readonly runMs?: number;
}

export interface LocalGlue extends RunningService {
  readonly server: WireServer;
  /** Every run started, oldest first. */
  readonly runs: readonly WorkflowRun[];
  /** The runs of one workflow, oldest first. */
  runsOf(workflow: string): WorkflowRun[];
}

type Failure = { error: { type: string; message: string } };
const notFound = (message: string): Failure => ({ error: { type: "EntityNotFoundException", message } });

/** A run as GetWorkflowRun answers it. */
function describeRun(run: WorkflowRun, runMs: number) {
  const completedAt = run.startedAt + runMs;
  const completed = Date.now() >= completedAt;
  return {
    Name: run.workflow,
    WorkflowRunId: run.runId,
    WorkflowRunProperties: run.runProperties,
    StartedOn: run.startedAt / 1000,
    ...(completed ? { CompletedOn: completedAt / 1000 } : {}),
    Status: completed ? "COMPLETED" : "RUNNING",
    Statistics: { TotalActions: 0, RunningActions: 0, SucceededActions: 0, FailedActions: 0 },
  };
}

/** Why RunProperties is not a map of strings, or undefined when it is (or is absent). */
function invalidProperties(properties: unknown): string | undefined {
  if (properties === undefined) return undefined;
  if (typeof properties !== "object" || properties === null || Array.isArray(properties)) return "RunProperties is not a map";
  const bad = Object.entries(properties).find(([, value]) => typeof value !== "string");
  return bad ? `RunProperties.${bad[0]} is not a string` : undefined;
}

/** The JSON-protocol operations over the recorded runs. */
function operations(runs: WorkflowRun[], options: GlueOptions): Record<string, AwsOperation> {
  const runMs = options.runMs ?? 1000;
  const exists = (name: string) => options.workflows === undefined || options.workflows.includes(name);
  return {
    StartWorkflowRun: (input) => {
      const workflow = String(input.Name ?? "");
      if (!exists(workflow)) return notFound(`Entity Not Found (workflow ${workflow})`);
      const problem = invalidProperties(input.RunProperties);
      if (problem) return { error: { type: "InvalidInputException", message: problem } };
      const runId = `wr_${randomBytes(32).toString("hex")}`;
      const runProperties = { ...((input.RunProperties as Record<string, string> | undefined) ?? {}) };
      runs.push({ workflow, runId, runProperties, startedAt: Date.now() });
      return { RunId: runId };
    },
    GetWorkflowRun: (input) => {
      const run = runs.find((candidate) => candidate.workflow === input.Name && candidate.runId === input.RunId);
      return run ? { Run: describeRun(run, runMs) } : notFound(`Workflow run ${String(input.RunId)} not found`);
    },
    GetWorkflowRuns: (input) => {
      const workflow = String(input.Name ?? "");
      if (!exists(workflow)) return notFound(`Entity Not Found (workflow ${workflow})`);
      const mine = runs.filter((run) => run.workflow === workflow).reverse();
      return { Runs: mine.map((run) => describeRun(run, runMs)) };
    },
  };
}

/** Starts the local Glue on a free loopback port, with no runs. */
export async function startGlue(options: GlueOptions = {}): Promise<LocalGlue> {
  const runs: WorkflowRun[] = [];
  const server = await WireServer.start(awsJsonResponder(operations(runs, options)), { keep: 1000 });
  return {
    server,
    url: server.url,
    runs,
    runsOf: (workflow) => runs.filter((run) => run.workflow === workflow),
    close: () => server.close(),
  };
}
