/**
 * How long an AWS SDK client a worker builds may take, per use: the time to connect, the time to
 * an answer, and the attempts: no client without a bound on its time. Workers build
 * their clients with `awsClientConfig(AWS_CLIENT_BOUNDS.<use>.<service>)`; this module holds plain
 * data and builds nothing, so it adds no package to an archive.
 *
 * The SDK's own features carry the bounds: `maxAttempts` (the standard retry mode: exponential
 * backoff with jitter from 50 ms, and a retry quota that stops retries during a long outage), and
 * `requestHandler` as NodeHttpHandler options, from which every v3 client builds its handler
 * (`NodeHttpHandler.create`), so no worker imports @smithy/node-http-handler itself.
 * docs/rules.md#timeouts lists the figures (a spec keeps the two alike).
 */

/** The bounds of one client. */
export interface AwsClientBounds {
  /** Longest wait for the TCP connection; past it the attempt fails with a TimeoutError. */
  readonly connectionTimeoutMs: number;
  /**
   * Longest wait for the answer's headers, the connection included, and for each pause while its
   * body arrives; past it the attempt fails with a TimeoutError.
   */
  readonly requestTimeoutMs: number;
  /** Attempts in all, the first included (REQ-007: at most two retries, so at most 3). */
  readonly maxAttempts: number;
}

/** The services workers call through the SDK. */
export type AwsService = "secretsManager" | "dynamoDb" | "sqs" | "glue";

/**
 * The bounds of each use's clients. A call's worst case is about `maxAttempts × requestTimeoutMs`
 * plus the backoff (under 0.2 s for three attempts); the figures below keep that inside the
 * function's timeout with room for its other calls, and far above the services' normal latency
 * (in-region calls answer in tens of milliseconds, a TCP connection takes a few), so a bound is
 * met only when something is broken.
 */
export const AWS_CLIENT_BOUNDS = {
  /**
   * validateToken, the AppSync authoriser (15 s timeout, but a p99 well under 200 ms is its target,
   * docs/flows.md#authorisation).
   * The API keys are read at cold start and then once per API_KEYS_MAX_AGE_SECONDS, and the read
   * waits at most AUTHORISER_SECRET_WAIT_MS (validateToken/index.ts) whatever the client does, so
   * these bound how long a fetch nobody waits for keeps going: 2 × 500 ms, after which the failure
   * is remembered and the next answers do not wait at all. 500 ms still lets a slow but working
   * Secrets Manager fill the cache for the next request.
   */
  authoriser: {
    secretsManager: { connectionTimeoutMs: 200, requestTimeoutMs: 500, maxAttempts: 2 },
  },
  /**
   * checkLiveness, an AppSync resolver a fan waits on (timeout 3 × PERSONA_TIMEOUT_MS + 5 s: the
   * 5 s hold everything but Persona). A session read, a conditional write and two secret reads
   * (each waiting at most 1.5 s) fit in it when one of them fails: 3 × 1 s per DynamoDB call.
   */
  resolver: {
    secretsManager: { connectionTimeoutMs: 300, requestTimeoutMs: 1000, maxAttempts: 3 },
    dynamoDb: { connectionTimeoutMs: 300, requestTimeoutMs: 1000, maxAttempts: 3 },
  },
  /**
   * handleEvent, Persona's webhook (10 s timeout; Persona retries a failed delivery). One secret
   * read (waiting at most 2 s), a batch read and a conditional update: 2 s + 2 × 3 × 1 s < 10 s.
   */
  webhook: {
    secretsManager: { connectionTimeoutMs: 300, requestTimeoutMs: 1000, maxAttempts: 3 },
    dynamoDb: { connectionTimeoutMs: 300, requestTimeoutMs: 1000, maxAttempts: 3 },
  },
  /**
   * lookupArai (60 s timeout, SQS batches of up to 10 fans; ARAI takes up to 3 × ARAI_TIMEOUT_MS).
   * Batch work, so a call may take longer than on a request path: 3 × 2 s each, and the
   * credentials read waits at most 3 s before using the previous credentials.
   */
  lookup: {
    secretsManager: { connectionTimeoutMs: 500, requestTimeoutMs: 2000, maxAttempts: 3 },
    dynamoDb: { connectionTimeoutMs: 500, requestTimeoutMs: 2000, maxAttempts: 3 },
    /** Parking poison messages in a dead-letter queue: sendMessages makes three attempts of its own. */
    sqs: { connectionTimeoutMs: 500, requestTimeoutMs: 1500, maxAttempts: 2 },
  },
  /** scoreUsers and stagingScoreUsers (60 s timeout, Kinesis batches): as lookupArai, for the model token and the writes. */
  scoring: {
    secretsManager: { connectionTimeoutMs: 500, requestTimeoutMs: 2000, maxAttempts: 3 },
    dynamoDb: { connectionTimeoutMs: 500, requestTimeoutMs: 2000, maxAttempts: 3 },
    /** Parking poison records in the failure queue: sendMessages makes three attempts of its own. */
    sqs: { connectionTimeoutMs: 500, requestTimeoutMs: 1500, maxAttempts: 2 },
  },
  /**
   * The enqueue workers and processRescoreEvents (scoring.enqueueTimeoutSeconds, 30 s by default,
   * at least 3 s). sendMessages already makes three attempts of each SendMessageBatch, so SQS
   * takes two of its own: 3 × 2 × 1.5 s ≈ 9 s for a batch of ten SQS never answers. A rescore's
   * conditional PutItem has no retry around it: three attempts of 1.5 s.
   */
  enqueue: {
    sqs: { connectionTimeoutMs: 500, requestTimeoutMs: 1500, maxAttempts: 2 },
    dynamoDb: { connectionTimeoutMs: 500, requestTimeoutMs: 1500, maxAttempts: 3 },
  },
  /**
   * startBotOrNotImport and startClusterImport (30 s timeout, invoked asynchronously by S3 with
   * Lambda's two retries after it). StartWorkflowRun is a control-plane call, slower than a data
   * call: 3 × 3 s for the export an event carries.
   */
  import: {
    glue: { connectionTimeoutMs: 500, requestTimeoutMs: 3000, maxAttempts: 3 },
  },
} as const satisfies Record<string, Partial<Record<AwsService, AwsClientBounds>>>;

/** What an SDK v3 client's configuration takes to apply the bounds (spread into it, or given as it). */
export interface AwsClientConfig {
  readonly maxAttempts: number;
  readonly requestHandler: {
    readonly connectionTimeout: number;
    readonly requestTimeout: number;
    /** Also a pause while the body arrives: the SDK's own default would wait five minutes. */
    readonly socketTimeout: number;
    /** Without it, a request past requestTimeout is only warned about. */
    readonly throwOnRequestTimeout: true;
  };
}

/** The configuration an SDK client is built with to keep within `bounds`. */
export function awsClientConfig(bounds: AwsClientBounds): AwsClientConfig {
  return {
    maxAttempts: bounds.maxAttempts,
    requestHandler: {
      connectionTimeout: bounds.connectionTimeoutMs,
      requestTimeout: bounds.requestTimeoutMs,
      socketTimeout: bounds.requestTimeoutMs,
      throwOnRequestTimeout: true,
    },
  };
}
