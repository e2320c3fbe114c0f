/**
 * Asynchronous invocation, as S3 notifications invoke the import workers: Lambda queues the
 * event, invokes the function, retries a failed invocation `maximumRetryAttempts` times (after
 * about one, then two minutes; here after `retryDelayMs` and twice that), then sends Lambda's
 * asynchronous failure record (with the request payload) to the on-failure destination.
 */
import type { InvokeOutcome } from "../lambda/pool";
import type { Report } from "../types";
import type { AsyncInvokeConfig, PlannedFunction } from "../wiring";

export interface AsyncInvokerOptions {
  readonly fn: PlannedFunction;
  /** The function's event invoke config; Lambda's defaults (2 retries, no destination) without one. */
  readonly config?: AsyncInvokeConfig;
  readonly invoke: (event: unknown) => Promise<InvokeOutcome>;
  readonly sendFailure: (destinationArn: string, record: object) => Promise<void>;
  readonly report: Report;
  readonly retryDelayMs: number;
}

export interface AsyncInvoker {
  /** Queues the event, as InvokeFunction with InvocationType Event does; resolves when it is done or given up on. */
  invokeAsync(event: unknown): Promise<void>;
  /** Invocations queued or retrying. */
  pending(): number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The failure record Lambda sends for an asynchronous invocation it gave up on. */
function asyncFailureRecord(fn: PlannedFunction, event: unknown, outcome: InvokeOutcome, attempts: number) {
  return {
    version: "1.0",
    timestamp: new Date().toISOString(),
    requestContext: {
      requestId: outcome.requestId,
      functionArn: `${fn.arn}:$LATEST`,
      condition: "RetriesExhausted",
      approximateInvokeCount: attempts,
    },
    requestPayload: event,
    responseContext: { statusCode: 200, executedVersion: "$LATEST", functionError: "Unhandled" },
    responsePayload: outcome.error
      ? { errorType: outcome.error.errorType, errorMessage: outcome.error.errorMessage }
      : outcome.result,
  };
}

export function createAsyncInvoker(options: AsyncInvokerOptions): AsyncInvoker {
  const retries = options.config?.maximumRetryAttempts ?? 2;
  let pending = 0;
  return {
    pending: () => pending,
    async invokeAsync(event) {
      pending += 1;
      try {
        for (let attempt = 1; ; attempt++) {
          const outcome = await options.invoke(event);
          if (!outcome.error) return;
          if (attempt > retries) {
            const destination = options.config?.onFailureArn;
            if (destination) await options.sendFailure(destination, asyncFailureRecord(options.fn, event, outcome, attempt));
            options.report({
              kind: "parked",
              mapping: `${options.fn.name} (async)`,
              destination: destination ?? "(discarded)",
              count: 1,
            });
            return;
          }
          await sleep(options.retryDelayMs * attempt);
        }
      } finally {
        pending -= 1;
      }
    },
  };
}

/** An S3 `ObjectCreated:Put` notification for one object, as S3 delivers it to Lambda. */
export function s3Notification(bucketArn: string, key: string, region: string, size = 0) {
  const bucket = bucketArn.slice("arn:aws:s3:::".length);
  return {
    Records: [
      {
        eventVersion: "2.1",
        eventSource: "aws:s3",
        awsRegion: region,
        eventTime: new Date().toISOString(),
        eventName: "ObjectCreated:Put",
        userIdentity: { principalId: "AWS:LOCAL:exporter" },
        requestParameters: { sourceIPAddress: "127.0.0.1" },
        responseElements: { "x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL" },
        s3: {
          s3SchemaVersion: "1.0",
          configurationId: "local-export-complete",
          bucket: { name: bucket, ownerIdentity: { principalId: "LOCAL" }, arn: bucketArn },
          // S3 URL-encodes the key in notifications (a space as +).
          object: {
            key: encodeURIComponent(key).replace(/%2F/g, "/").replace(/%20/g, "+"),
            size,
            sequencer: Date.now().toString(16),
          },
        },
      },
    ],
  };
}
