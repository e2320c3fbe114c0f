/**
 * What a batch worker reports: the records it fails back to Lambda, and why, in its log.
 */
import type { BatchResponse } from "../../workers/shared/runtime/batch";
import type { LogLine } from "./logs";

/** The ids of the records a batch response fails, in order. */
export function failuresOf(response: BatchResponse): string[] {
  return response.batchItemFailures.map((failure) => failure.itemIdentifier);
}

/** The reason of each "record failed" line, in order: why each record was failed. */
export function failureReasons(logs: readonly LogLine[]): string[] {
  return logs.filter((line) => line.message === "record failed").map((line) => String(line.reason));
}
