/**
 * Runs the program for a stack under runtime mocks, as the offline plan does, and offers
 * look-ups that make assertions read like the documents in docs/.
 */
import { projectRoot } from "../../components/archive";
import { loadStackConfig, PROJECT } from "../../stacks/config";
import { fanIdentityWorkers } from "../../stacks/program";
import { type RecordedCall, type RecordedResource, runOffline } from "../../tools/offline/runtime";
import { readStackFile } from "../../tools/offline/stackFile";

export type ConfigValues = Record<string, string>;

export interface PlannedStack {
  readonly resources: RecordedResource[];
  readonly calls: RecordedCall[];
  readonly outputs: Record<string, unknown>;
  /** What the program logged (`info: …`, `warning: …`), as the plan prints it. */
  readonly messages: readonly string[];
  /** Custom resources other than providers: what would be created in AWS. */
  readonly awsResources: RecordedResource[];
  /** The one resource of `type` named `name`; throws, listing what there is, if absent. */
  find(type: string, name: string): RecordedResource;
  ofType(type: string): RecordedResource[];
  /** Resources whose logical name starts with a component's name. */
  under(prefix: string): RecordedResource[];
}

/** A stack file's configuration, with top-level keys replaced or (for objects) merged. */
export function stackConfig(
  stack: string,
  changes: Record<string, unknown> = {},
): { values: ConfigValues; secretKeys: string[] } {
  const file = readStackFile(stack, projectRoot());
  const values = { ...file.values };
  for (const [key, change] of Object.entries(changes)) {
    const fullKey = key.includes(":") ? key : `${PROJECT}:${key}`;
    if (change === undefined) {
      delete values[fullKey];
    } else if (typeof change === "object" && change !== null && !Array.isArray(change) && values[fullKey]?.startsWith("{")) {
      const merged = { ...(JSON.parse(values[fullKey]) as object), ...change };
      for (const [field, value] of Object.entries(merged))
        if (value === undefined) delete (merged as Record<string, unknown>)[field];
      values[fullKey] = JSON.stringify(merged);
    } else {
      values[fullKey] = typeof change === "string" ? change : JSON.stringify(change);
    }
  }
  return { values, secretKeys: file.secretKeys };
}

/** One section of a stack file's configuration (`scoring`, `auth`…), parsed; each call gives a fresh copy to change. */
export function stackSection<T = Record<string, unknown>>(stack: string, key: string): T {
  const text = stackConfig(stack).values[`${PROJECT}:${key}`];
  if (text === undefined) throw new Error(`Pulumi.${stack}.yaml has no ${PROJECT}:${key}`);
  return JSON.parse(text) as T;
}

/** A scoring region's input streams, as a stack file configures them. */
export type InputStreams = Record<string, string | undefined>;

/**
 * Plans `stack` with its stack file's configuration, top-level keys changed as `stackConfig`
 * does, and `secrets` set as Pulumi secrets (by key, the values as the CLI would hold them).
 */
/** Plans of the stack files as they are, made once for the whole suite: a plan takes seconds, and specs only read it. */
const filePlans = new Map<string, Promise<PlannedStack>>();

/**
 * The plan of `stack`, with `changes` to its configuration and further `secrets`. The plan of a
 * stack file as it is (no changes, no secrets) is shared by every spec that asks for it: read it,
 * never change it.
 */
export function planStack(
  stack: string,
  changes: Record<string, unknown> = {},
  secrets: Record<string, unknown> = {},
): Promise<PlannedStack> {
  if (Object.keys(changes).length > 0 || Object.keys(secrets).length > 0) return planAfresh(stack, changes, secrets);
  let plan = filePlans.get(stack);
  if (!plan) {
    plan = planAfresh(stack, changes, secrets);
    filePlans.set(stack, plan);
    // A failed plan is not kept: the next spec asking gets its own error.
    plan.catch(() => filePlans.delete(stack));
  }
  return plan;
}

/** The plans of the stack files as they are, by stack. */
export async function planStacks(stacks: readonly string[]): Promise<Map<string, PlannedStack>> {
  const plans = new Map<string, PlannedStack>();
  for (const stack of stacks) plans.set(stack, await planStack(stack));
  return plans;
}

/** A plan made now, never shared: for a spec that changes the program itself (the registry) between plans. */
export async function planAfresh(
  stack: string,
  changes: Record<string, unknown> = {},
  secrets: Record<string, unknown> = {},
): Promise<PlannedStack> {
  const config = stackConfig(stack, changes);
  const values = { ...config.values };
  const secretKeys = [...config.secretKeys];
  for (const [key, value] of Object.entries(secrets)) {
    values[`${PROJECT}:${key}`] = typeof value === "string" ? value : JSON.stringify(value);
    secretKeys.push(`${PROJECT}:${key}`);
  }
  const run = await runOffline({
    project: PROJECT,
    stack,
    config: values,
    secretKeys,
    accountId: values[`${PROJECT}:accountId`] ?? "000000000000",
    program: () => fanIdentityWorkers(loadStackConfig()),
  });
  if (run.errors.length > 0) throw new Error(`the program failed: ${run.errors.map((error) => error.message).join("; ")}`);
  const resources = run.resources;
  return {
    resources,
    calls: run.calls,
    outputs: run.outputs as Record<string, unknown>,
    messages: run.messages,
    awsResources: resources.filter((resource) => resource.custom && !resource.type.startsWith("pulumi:providers:")),
    find(type, name) {
      const found = resources.filter((resource) => resource.type === type && resource.name === name);
      if (found.length !== 1) {
        const names = resources.filter((resource) => resource.type === type).map((resource) => resource.name);
        throw new Error(`expected one ${type} named ${name}, found ${found.length}; there are: ${names.join(", ") || "none"}`);
      }
      return found[0]!;
    },
    ofType: (type) => resources.filter((resource) => resource.type === type),
    under: (prefix) => resources.filter((resource) => resource.name.startsWith(prefix)),
  };
}

/** The statements of an inline role policy, parsed. */
export function statementsOf(policy: RecordedResource): { Effect: string; Action: string[]; Resource: string[] }[] {
  return (JSON.parse(String(policy.inputs.policy)) as { Statement: { Effect: string; Action: string[]; Resource: string[] }[] })
    .Statement;
}
