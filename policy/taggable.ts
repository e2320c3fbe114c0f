/**
 * Which AWS resource types take tags, read from the provider SDK itself: a resource class that
 * accepts tags copies `args.tags` into its inputs in its constructor. This keeps the tag check
 * honest as new resource types are added, with no hand-kept list.
 */
import * as aws from "@pulumi/aws";

const cache = new Map<string, boolean>();

/** `aws:lambda/function:Function` → the class `aws.lambda.Function`. */
function resourceClass(type: string): { toString(): string } | undefined {
  const match = /^aws:([^/]+)\/[^:]+:(.+)$/.exec(type);
  if (!match) return undefined;
  const [, module, className] = match;
  const namespace = (module === "index" ? aws : (aws as unknown as Record<string, unknown>)[module!]) as
    Record<string, { toString(): string }> | undefined;
  return namespace?.[className!];
}

export function isTaggable(type: string): boolean {
  let taggable = cache.get(type);
  if (taggable === undefined) {
    const cls = resourceClass(type);
    if (!cls) throw new Error(`no @pulumi/aws class for ${type}`);
    taggable = cls.toString().includes('resourceInputs["tags"]');
    cache.set(type, taggable);
  }
  return taggable;
}
