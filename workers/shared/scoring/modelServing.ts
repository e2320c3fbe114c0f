/**
 * The Databricks model-serving client (docs/rules.md#model-serving):
 * `POST <host>/serving-endpoints/<name>/invocations` with
 * `{"dataframe_records": [{globalUserId, raw_json_string}]}`, answered by
 * `{"predictions": [number, ...]}` in input order; bearer token from Secrets Manager.
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { z } from "../zod";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../runtime/awsClients";
import { createHttpClient, type HttpCallOptions, httpServiceError } from "../runtime/http";
import { describeError, type Logger } from "../runtime/logging";
import type { CallRecorder, WorkerMetrics } from "../runtime/metrics";
import { createSecretReader } from "../runtime/secrets";
import { DEPENDENCIES } from "../runtime/telemetry";

/** One fan to score: the ARAI snapshot as the JSON text the model reads. */
export interface ModelInput {
  readonly globalUserId: string;
  readonly rawJson: string;
}

export interface ModelClientOptions extends HttpCallOptions {
  /** The full invocations URL. */
  readonly url: string;
  /** The bearer token, read on every request (the reader caches it). */
  readonly readToken: () => Promise<string>;
  /** Service name used in errors, e.g. "scoring model". */
  readonly service: string;
}

export interface ModelClient {
  /** One score in [0, 1] per input, in input order. */
  predict(records: readonly ModelInput[]): Promise<number[]>;
}

/** A token in the secret is reused this long, so a rotated token is picked up within five minutes. */
export const MODEL_TOKEN_MAX_AGE_MS = 5 * 60_000;

/** A read of the token waits this long at most before the cached token serves on (the scorers' 60 s hold a batch's model calls). */
export const MODEL_TOKEN_WAIT_MS = 3000;

/** Reads the bearer token from the Secrets Manager JSON secret `{"token": "…"}`. */
export function createModelTokenReader(options: {
  readonly secretId: string;
  readonly onStale?: (error: unknown) => void;
  /** @default a client bounded as the scorers' (runtime/awsClients.ts) */
  readonly client?: SecretsManagerClient;
  readonly calls?: CallRecorder;
}): () => Promise<string> {
  const read = createSecretReader({
    secretId: options.secretId,
    schema: z.object({ token: z.string().check(z.minLength(1)) }),
    maxAgeMs: MODEL_TOKEN_MAX_AGE_MS,
    waitMs: MODEL_TOKEN_WAIT_MS,
    onStale: options.onStale,
    client: options.client ?? new SecretsManagerClient(awsClientConfig(AWS_CLIENT_BOUNDS.scoring.secretsManager)),
    calls: options.calls,
  });
  return async () => (await read()).token;
}

/**
 * Why `body` is not a valid answer to `count` inputs, or undefined when it is: `predictions`
 * must be an array of exactly `count` finite numbers in [0, 1].
 */
export function invalidPredictions(body: unknown, count: number): string | undefined {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return `answer is not a JSON object: ${excerpt(body)}`;
  const predictions = (body as { predictions?: unknown }).predictions;
  if (!Array.isArray(predictions)) return `answer has no predictions array: ${excerpt(body)}`;
  if (predictions.length !== count) {
    return `answer has ${predictions.length} predictions for ${count} records: ${excerpt(body)}`;
  }
  const index = predictions.findIndex((value) => typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > 1);
  if (index >= 0) return `prediction ${index} is ${excerpt(predictions[index])}, not a score in [0, 1]`;
  return undefined;
}

const excerpt = (value: unknown) => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
};

export function createModelClient(options: ModelClientOptions): ModelClient {
  const request = createHttpClient({
    service: options.service,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    baseDelayMs: options.baseDelayMs,
    fetch: options.fetch,
    calls: options.calls,
    headers: async () => ({ authorization: `Bearer ${await options.readToken()}` }),
  });
  const operation = `POST ${new URL(options.url).pathname}`;

  return {
    async predict(records) {
      if (records.length === 0) return [];
      const answer = await request({
        operation,
        url: options.url,
        method: "POST",
        body: {
          dataframe_records: records.map((record) => ({ globalUserId: record.globalUserId, raw_json_string: record.rawJson })),
        },
      });
      const problem = invalidPredictions(answer.body, records.length);
      // Not retried: the endpoint answered, and the same request would get the same answer.
      if (problem !== undefined) throw httpServiceError(options.service, operation, answer.status, problem, 1);
      return (answer.body as { predictions: number[] }).predictions;
    },
  };
}

/** The variables a scoring worker's model endpoint is configured by. */
export interface ModelEnvironment {
  readonly MODEL_URL: string;
  readonly MODEL_TIMEOUT_MS: number;
  readonly MODEL_TOKEN_SECRET_ARN: string;
}

/**
 * The model client a scoring worker builds from its environment: the endpoint, its bound, and
 * the bearer token from its secret, a failed refresh of which is logged while the cached token
 * serves on.
 */
export function createModelClientFromEnvironment(
  env: ModelEnvironment,
  options: {
    readonly service: string;
    readonly logger: Logger;
    readonly secretsClient?: SecretsManagerClient;
    readonly baseDelayMs?: number;
    /** Counts and times the model and Secrets Manager calls. @default none */
    readonly metrics?: WorkerMetrics;
  },
): ModelClient {
  const { logger, metrics } = options;
  return createModelClient({
    url: env.MODEL_URL,
    timeoutMs: env.MODEL_TIMEOUT_MS,
    service: options.service,
    baseDelayMs: options.baseDelayMs,
    calls: metrics?.calls(DEPENDENCIES.modelServing),
    readToken: createModelTokenReader({
      secretId: env.MODEL_TOKEN_SECRET_ARN,
      onStale: (error) => logger.warn("using the cached model token: refresh failed", { error: describeError(error) }),
      client: options.secretsClient,
      calls: metrics?.calls(DEPENDENCIES.secretsManager),
    }),
  });
}
