/**
 * A Lambda container: `node runtime.js <archiveDir>`, forked by the function pool with the
 * function's environment. It loads the archive's `__index.js` once (the cold start), then runs
 * each invocation the pool sends over IPC, one at a time, as the Node.js runtime does, and
 * answers with the handler's result or its error in Lambda's shape. It exits with the pool.
 * Before each answer it writes an end mark on stdout and stderr (INVOCATION_END), so the pool
 * can tell it has read every line the invocation wrote: the two streams and the IPC channel are
 * read apart.
 */
import * as path from "node:path";
import { INVOCATION_END } from "./endMark";

type Handler = (event: unknown, context: unknown) => Promise<unknown>;

export type ContainerRequest = {
  readonly type: "invoke";
  readonly id: number;
  readonly event: unknown;
  readonly deadline: number;
  readonly requestId: string;
};

export type ContainerMessage =
  | { readonly type: "ready"; readonly initMs: number }
  | { readonly type: "initFailed"; readonly error: LambdaError }
  | { readonly type: "result"; readonly id: number; readonly result: unknown }
  | { readonly type: "error"; readonly id: number; readonly error: LambdaError };

/** An error as Lambda reports a handler's failure. */
export interface LambdaError {
  readonly errorType: string;
  readonly errorMessage: string;
  readonly trace?: readonly string[];
}

const send = (message: ContainerMessage) => process.send?.(message);

/** Ends the invocation's output, then answers. Writes to pipes are synchronous on Linux and macOS: the marks are out first. */
function answer(request: ContainerRequest, message: ContainerMessage): void {
  process.stdout.write(`${INVOCATION_END}${request.requestId}\n`);
  process.stderr.write(`${INVOCATION_END}${request.requestId}\n`);
  send(message);
}

function lambdaError(error: unknown): LambdaError {
  if (error instanceof Error) {
    return { errorType: error.name, errorMessage: error.message, trace: error.stack?.split("\n").slice(0, 8) };
  }
  return { errorType: "Error", errorMessage: String(error) };
}

function context(request: ContainerRequest) {
  const env = process.env;
  return {
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: "$LATEST",
    invokedFunctionArn: env.LOCAL_FUNCTION_ARN,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: request.requestId,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, request.deadline - Date.now()),
  };
}

function main(): void {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: runtime.js <archiveDir>");
  const started = performance.now();
  let handler: Handler;
  try {
    handler = (require(path.resolve(dir, "__index.js")) as { handler: Handler }).handler;
    if (typeof handler !== "function") throw new TypeError("__index.js exports no handler function");
  } catch (error) {
    send({ type: "initFailed", error: lambdaError(error) });
    process.exit(1);
  }
  send({ type: "ready", initMs: performance.now() - started });
  process.on("message", (request: ContainerRequest) => {
    Promise.resolve()
      .then(() => handler(request.event, context(request)))
      .then(
        // A result goes back as JSON, as Lambda serializes it.
        (result) =>
          answer(request, {
            type: "result",
            id: request.id,
            result: result === undefined ? null : JSON.parse(JSON.stringify(result)),
          }),
        (error: unknown) => answer(request, { type: "error", id: request.id, error: lambdaError(error) }),
      );
  });
  // The pool gone, the container goes too.
  process.on("disconnect", () => process.exit(0));
}

main();
