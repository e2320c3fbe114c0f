/**
 * Runs the policy pack's policies on an offline plan, handing each policy what the Pulumi policy
 * runtime would: a resource policy gets a resource's inputs, a stack policy every resource with
 * its outputs (the mocks' state). Only the parts of @pulumi/policy's arguments the specs need are
 * real; the rest are the values an ordinary resource has (no options, no stack tags, no config).
 */
import type {
  Policies,
  PolicyResource,
  PolicyResourceOptions,
  ResourceValidationArgs,
  StackValidationArgs,
} from "@pulumi/policy";
import type { RecordedResource } from "../../tools/offline/runtime";

export interface Violation {
  readonly policy: string;
  readonly message: string;
  readonly urn: string;
}

/** What `notApplicable` throws: the runtime records the policy as not applying, which is no violation. */
class NotApplicable extends Error {}

const urnOf = (resource: RecordedResource) => resource.urn ?? `urn:pulumi:offline::offline::${resource.type}::${resource.name}`;

/** A Pulumi resource class's type token (`aws:sqs/queue:Queue`), as the SDK records it on the class. */
const typeOfClass = (resourceClass: unknown) => (resourceClass as { __pulumiType?: string }).__pulumiType;

function options(resource: RecordedResource): PolicyResourceOptions {
  return {
    protect: false,
    ignoreChanges: [],
    aliases: [],
    customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
    additionalSecretOutputs: [],
    parent: resource.parentUrn,
  };
}

const notApplicable = (reason?: string): never => {
  throw new NotApplicable(reason);
};

/** The arguments a resource policy receives for `resource`: its type, name, URN and inputs. */
export function resourceArgs(resource: RecordedResource): ResourceValidationArgs {
  const props = resource.inputs as Record<string, unknown>;
  return {
    type: resource.type,
    name: resource.name,
    urn: urnOf(resource),
    props,
    opts: options(resource),
    stackTags: new Map(),
    isType: (resourceClass) => typeOfClass(resourceClass) === resource.type,
    asType: ((resourceClass: unknown) =>
      typeOfClass(resourceClass) === resource.type ? props : undefined) as ResourceValidationArgs["asType"],
    getConfig: <T extends object>() => ({}) as T,
    notApplicable,
  };
}

/** The stack as a stack policy sees it: every resource with its outputs, parents linked. */
export function stackArgs(resources: readonly RecordedResource[]): StackValidationArgs {
  const byUrn = new Map<string, PolicyResource>();
  const policyResources = resources.map((resource): PolicyResource => {
    const props = resource.state as Record<string, unknown>;
    const converted: PolicyResource = {
      type: resource.type,
      name: resource.name,
      urn: urnOf(resource),
      props,
      opts: options(resource),
      dependencies: [],
      propertyDependencies: {},
      isType: (resourceClass) => typeOfClass(resourceClass) === resource.type,
      asType: ((resourceClass: unknown) =>
        typeOfClass(resourceClass) === resource.type ? props : undefined) as PolicyResource["asType"],
    };
    byUrn.set(converted.urn, converted);
    return converted;
  });
  for (const [index, resource] of resources.entries()) {
    if (resource.parentUrn) policyResources[index]!.parent = byUrn.get(resource.parentUrn);
  }
  return { resources: policyResources, stackTags: new Map(), getConfig: <T extends object>() => ({}) as T, notApplicable };
}

/** Runs one validation; one that declares itself not applicable reports nothing. */
async function attempt(validation: () => Promise<void> | void): Promise<void> {
  try {
    await validation();
  } catch (error) {
    if (!(error instanceof NotApplicable)) throw error;
  }
}

/** Every violation the policies report on `resources`: each resource policy on each resource, each stack policy once. */
export async function runPolicies(policies: Policies, resources: readonly RecordedResource[]): Promise<Violation[]> {
  const violations: Violation[] = [];
  const stack = stackArgs(resources);
  for (const policy of policies) {
    const collect = (fallbackUrn: string) => (message: string, urn?: string) =>
      violations.push({ policy: policy.name, message, urn: urn ?? fallbackUrn });
    if ("validateStack" in policy) {
      await attempt(() => policy.validateStack(stack, collect("stack")));
      continue;
    }
    const validations = [policy.validateResource ?? []].flat();
    for (const resource of resources) {
      const args = resourceArgs(resource);
      for (const validate of validations) await attempt(() => validate(args, collect(args.urn)));
    }
  }
  return violations;
}

/**
 * A deep copy of the plain objects and arrays in `value`, anything else shared: structuredClone
 * refuses a function's code archive, which holds promises.
 */
function copyPlain<T>(value: T): T {
  if (Array.isArray(value)) return value.map(copyPlain) as T;
  if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([key, field]) => [key, copyPlain(field)])) as T;
  }
  return value;
}

/**
 * `resources` with the one named `name` of `type` changed: `change` edits a copy of its inputs,
 * and the same edit is made to its outputs, as a changed input would show in both.
 */
export function withChange(
  resources: readonly RecordedResource[],
  type: string,
  name: string,
  change: (props: Record<string, unknown>) => void,
): RecordedResource[] {
  let found = 0;
  const changed = resources.map((resource) => {
    if (resource.type !== type || resource.name !== name) return resource;
    found++;
    const inputs = copyPlain(resource.inputs);
    const state = copyPlain(resource.state);
    change(inputs);
    change(state);
    return { ...resource, inputs, state };
  });
  if (found !== 1) throw new Error(`expected one ${type} named ${name}, found ${found}`);
  return changed;
}
