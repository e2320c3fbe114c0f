/**
 * Lambda's Invoke API, `POST /2015-03-31/functions/<name or ARN>/invocations`, over the local
 * gateway, so that a tool using the AWS SDK's Lambda client (`npm run redrive`) reaches the local
 * functions with `AWS_ENDPOINT_URL_LAMBDA` pointed at the gateway. It answers as Lambda does:
 *
 * - `X-Amz-Invocation-Type` `RequestResponse` (the default): 200 with the function's result as
 *   JSON; when the function failed (threw, timed out, its container died), still 200, with
 *   `X-Amz-Function-Error: Unhandled` and the error (`errorType`, `errorMessage`, `trace`) as the body;
 * - `Event`: 202 at once, the event handed to the function's asynchronous invocation (its retries
 *   and on-failure destination); `DryRun`: 204;
 * - a function the stack does not plan: 404 `ResourceNotFoundException`; a payload that is not
 *   JSON: 400 `InvalidRequestContentException`; another invocation type: 400 `InvalidParameterValueException`.
 *
 * A qualifier (`?Qualifier=`, or `:<version>` after an ARN or name) is accepted and ignored:
 * the local system runs `$LATEST` only.
 */
import type { InvokeOutcome } from "./lambda/pool";
import type { PlannedFunction } from "./wiring";

export const INVOKE_PATH = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

export interface InvokeApiOptions {
  readonly functions: readonly PlannedFunction[];
  readonly invoke: (functionName: string, event: unknown) => Promise<InvokeOutcome>;
  /** Asynchronous invocation (InvocationType Event); without it, Event is refused. */
  readonly invokeAsync?: (functionName: string, event: unknown) => Promise<void>;
}

export interface InvokeAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const answer = (status: number, body: unknown, headers: Record<string, string> = {}): InvokeAnswer => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: body === undefined ? "" : JSON.stringify(body),
});

/** Lambda's error answer: the type in `x-amzn-ErrorType` (what the SDK reads) and in the body. */
const failure = (status: number, type: string, message: string): InvokeAnswer =>
  answer(status, { Type: "User", message }, { "x-amzn-errortype": type });

/**
 * The function name in a reference as Invoke takes one: a name, a partial ARN
 * (`<account>:function:<name>`) or a full ARN, each with an optional `:<qualifier>`.
 */
export function functionNameOf(reference: string): string {
  const parts = reference.split(":");
  const at = parts.indexOf("function");
  return (at >= 0 ? parts[at + 1] : parts[0]) ?? reference;
}

/** The planned function a reference names. */
export function findFunction(functions: readonly PlannedFunction[], reference: string): PlannedFunction | undefined {
  const name = functionNameOf(reference);
  return functions.find((fn) => fn.name === name);
}

/** Answers one Invoke request; `reference` is the path segment, URL-decoded. */
export async function answerInvoke(
  options: InvokeApiOptions,
  reference: string,
  invocationType: string | undefined,
  text: string,
): Promise<InvokeAnswer> {
  const fn = findFunction(options.functions, reference);
  if (!fn) return failure(404, "ResourceNotFoundException", `Function not found: ${reference}`);
  let event: unknown = {};
  if (text.trim() !== "") {
    try {
      event = JSON.parse(text);
    } catch (error) {
      return failure(
        400,
        "InvalidRequestContentException",
        `Could not parse request body into json: ${(error as Error).message}`,
      );
    }
  }
  const type = invocationType ?? "RequestResponse";
  const executed = { "x-amz-executed-version": "$LATEST" };
  if (type === "DryRun") return answer(204, undefined, executed);
  if (type === "Event") {
    if (!options.invokeAsync) return failure(400, "InvalidParameterValueException", "Event invocations are not served here");
    // Lambda answers as soon as the event is queued; what becomes of it is the async invoker's.
    options.invokeAsync(fn.name, event).catch(() => {});
    return answer(202, undefined);
  }
  if (type !== "RequestResponse") {
    return failure(
      400,
      "InvalidParameterValueException",
      `X-Amz-Invocation-Type ${type} is not one of RequestResponse, Event, DryRun`,
    );
  }
  const outcome = await options.invoke(fn.name, event);
  if (outcome.error) {
    const { errorType, errorMessage, trace } = outcome.error;
    return answer(
      200,
      { errorType, errorMessage, ...(trace ? { trace } : {}) },
      { ...executed, "x-amz-function-error": "Unhandled" },
    );
  }
  // A handler that returns nothing answers `null`, as Lambda does.
  return answer(200, outcome.result ?? null, executed);
}
