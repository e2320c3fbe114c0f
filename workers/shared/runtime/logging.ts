import { Logger } from "@aws-lambda-powertools/logger";
import type { WorkerContract } from "./contract";

export type { Logger };

/**
 * One structured JSON logger per worker, built at cold start. The level follows the function's
 * logging configuration (`AWS_LAMBDA_LOG_LEVEL`) or `POWERTOOLS_LOG_LEVEL`; every line carries the
 * deployment (`prod1`, `prod1w`), so lines shipped from both regions to one place stay apart.
 */
export function createLogger(contract: WorkerContract): Logger {
  const deployment = process.env.DEPLOYMENT;
  return new Logger({ serviceName: contract.name, ...(deployment ? { persistentKeys: { deployment } } : {}) });
}

/** The message and, where there is one, the error code of anything thrown. */
export function describeError(error: unknown): { message: string; code?: string } {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code ?? (error.name !== "Error" ? error.name : undefined);
    return typeof code === "string" ? { message: error.message, code } : { message: error.message };
  }
  return { message: String(error) };
}
