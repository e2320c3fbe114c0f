import { z } from "../zod";
import type { WorkerContract } from "./contract";
import { describeIssues } from "./issues";

/**
 * Parses the process environment against a worker's contract, once per cold start.
 * A missing or malformed variable stops the container with a message naming each one.
 */
export function loadEnvironment<Env extends z.core.$ZodObject>(
  contract: WorkerContract<Env>,
  source: Record<string, string | undefined> = process.env,
): z.infer<Env> {
  const result = z.safeParse(contract.environment(), source);
  if (result.success) return result.data;
  const problems = describeIssues(result.error, "");
  throw new Error(`${contract.name}: environment does not meet the worker's contract: ${problems.join("; ")}`);
}

/** Splits a comma-separated variable into trimmed, non-empty items. */
export function splitList(value: string): string[] {
  return value
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** A DynamoDB table's name, as a variable. */
export const tableNameVariable = () => z.string().check(z.regex(/^[A-Za-z0-9_.-]{3,255}$/, "expected a DynamoDB table name"));

const LOOPBACK_HOSTS: readonly string[] = ["127.0.0.1", "localhost", "[::1]"];

/**
 * Whether `value` is an https URL, or a plain http one to a loopback host (a local stand-in for
 * the service; the stack's configuration requires https).
 */
export function isHttpsUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK_HOSTS.includes(url.hostname));
  } catch {
    return false;
  }
}
