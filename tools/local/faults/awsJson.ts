/**
 * The AWS JSON protocol as the fault proxy needs it (faults/proxy.ts): which operation a request
 * calls, its JSON input, and answers shaped as DynamoDB, SQS (its JSON protocol) and Kinesis give
 * them, errors included, so the SDK in a worker reads them as it reads the real service's: the
 * error's name from `__type`, retryable or not by that name and the status.
 */
import type { ProxiedRequest, ProxiedResponse, ProxiedService } from "./proxy";

/** The operation of a JSON-protocol request (`X-Amz-Target: DynamoDB_20120810.BatchWriteItem` → `BatchWriteItem`). */
export function awsOperation(request: Pick<ProxiedRequest, "target">): string | undefined {
  const target = request.target ?? "";
  const dot = target.lastIndexOf(".");
  return dot < 0 ? undefined : target.slice(dot + 1);
}

/** A request's JSON input; undefined when its body is not a JSON object. */
export function jsonInput(request: Pick<ProxiedRequest, "body">): Record<string, unknown> | undefined {
  return jsonOf(request.body);
}

/** An answer's JSON output; undefined when its body is not a JSON object. */
export function jsonOutput(answer: Pick<ProxiedResponse, "body">): Record<string, unknown> | undefined {
  return jsonOf(answer.body);
}

function jsonOf(body: Buffer | string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(body.toString());
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The content type each service answers with: DynamoDB and SQS JSON 1.0, Kinesis 1.1. */
function contentType(service: ProxiedService): string {
  return service === "kinesis" ? "application/x-amz-json-1.1" : "application/x-amz-json-1.0";
}

/**
 * A successful answer with `output` as its JSON body (the proxy adds DynamoDB's `x-amz-crc32` of
 * the body as it writes the answer).
 */
export function jsonAnswer(service: ProxiedService, output: object): ProxiedResponse {
  return { status: 200, headers: { "content-type": contentType(service) }, body: JSON.stringify(output) };
}

/** How each service names an error in `__type`: DynamoDB and SQS with their namespace, Kinesis bare. */
function errorType(service: ProxiedService, name: string): string {
  if (service === "dynamodb" || service === "table") return `com.amazonaws.dynamodb.v20120810#${name}`;
  if (service === "sqs") return `com.amazonaws.sqs#${name}`;
  return name;
}

/**
 * An error answer `{__type, message}` as the service gives it: 400 for what the caller may retry
 * or must fix (throttling among them: DynamoDB's ProvisionedThroughputExceededException,
 * SQS's RequestThrottled), 500 for the service's own failure (InternalServerError,
 * InternalError).
 */
export function awsError(service: ProxiedService, name: string, message: string, status = 400): ProxiedResponse {
  return {
    status,
    headers: {
      "content-type": contentType(service),
      // SQS's JSON protocol also names the error the way its query protocol did; the SDK reads either.
      ...(service === "sqs" ? { "x-amzn-query-error": `${name};${status < 500 ? "Sender" : "Receiver"}` } : {}),
    },
    body: JSON.stringify({ __type: errorType(service, name), message }),
  };
}

/** One entry of SendMessageBatch's `Failed` list, as SQS's JSON protocol gives it. */
export interface SqsBatchFailure {
  readonly Id: string;
  /** False: SQS's own fault, the sender may send the entry again; true: the entry itself is wrong. */
  readonly SenderFault: boolean;
  readonly Code: string;
  readonly Message?: string;
}

/** The entries of a SendMessageBatch, DeleteMessageBatch or ChangeMessageVisibilityBatch input. */
export function sqsEntries(input: Record<string, unknown> | undefined): Record<string, unknown>[] {
  const entries = input?.Entries;
  return Array.isArray(entries) ? (entries as Record<string, unknown>[]) : [];
}
