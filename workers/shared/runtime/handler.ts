/**
 * The wrapper every factory returns its handler in: Lambda's context on every log line, the
 * cold-start metric, and the invocation's metrics published when it ends, also when it throws.
 */
import { describeError, type Logger } from "./logging";
import { failureReasonOf, type WorkerMetrics } from "./metrics";

/**
 * The part of Lambda's context the logger reads (`aws-lambda`'s `Context`, which this package
 * does not depend on). Lambda passes it; tests and tools may call a handler without one.
 */
export interface LambdaContext {
  readonly awsRequestId: string;
  readonly functionName: string;
  readonly functionVersion?: string;
  readonly invokedFunctionArn?: string;
  readonly memoryLimitInMB?: string | number;
}

export interface InstrumentOptions {
  readonly logger: Logger;
  readonly metrics: WorkerMetrics;
  /**
   * A worker answering one request per invocation (an authoriser, a resolver, a webhook): the
   * request is counted received, and, unless the handler counted its outcome itself, processed
   * when it returns or failed (by `failureReasonOf`) when it throws. Batch workers count their
   * records themselves.
   * @default false
   */
  readonly request?: boolean;
}

export type LambdaHandler<Event, Result> = (event: Event, context?: LambdaContext) => Promise<Result>;

/** `handler`, with the logger's Lambda context, the cold-start metric and the metrics published in `finally`. */
export function instrumentHandler<Event, Result>(
  options: InstrumentOptions,
  handler: (event: Event) => Promise<Result>,
): LambdaHandler<Event, Result> {
  const { logger, metrics } = options;
  return async function instrumented(event: Event, context?: LambdaContext): Promise<Result> {
    // Request id, function name, ARN, memory and cold start, on every line of this invocation.
    if (context) logger.addContext(context as Parameters<Logger["addContext"]>[0]);
    metrics.started();
    if (options.request) metrics.received(1);
    try {
      const result = await handler(event);
      if (options.request && metrics.recorded().outcomes === 0) metrics.processed(1);
      return result;
    } catch (error) {
      if (options.request && metrics.recorded().outcomes === 0) metrics.failed(failureReasonOf(error));
      throw error;
    } finally {
      try {
        metrics.publish();
      } catch (error) {
        // Metrics never change what the invocation answers.
        logger.error("metrics not published", { error: describeError(error) });
      }
    }
  };
}
