/**
 * What a zod schema found wrong, as lines a reader can act on: `path: message`, the path dotted,
 * `root` standing for the value itself.
 */
import type { z } from "../zod";

export function describeIssues(error: z.core.$ZodError, root: string): string[] {
  return error.issues.map((issue) => `${issue.path.join(".") || root}: ${issue.message}`);
}
