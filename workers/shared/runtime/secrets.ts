/**
 * The secret reader every worker reads its credentials, tokens and keys with: a JSON document in
 * Secrets Manager, cached for a period, with a failure remembered for a few seconds and an optional
 * bound on how long a read waits, so that an outage of Secrets Manager neither multiplies its calls
 * nor holds up the worker's answer.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { z } from "../zod";
import { describeIssues } from "./issues";
import type { CallRecorder } from "./metrics";

/** How long a failed fetch is remembered when the reader is not told otherwise. */
export const DEFAULT_FAILURE_MEMORY_MS = 5_000;

export interface SecretReaderOptions<T extends z.core.$ZodType> {
  /** ARN or name of the Secrets Manager secret holding a JSON document. */
  readonly secretId: string;
  /** Shape of the document; a secret that does not match is an error naming the field. */
  readonly schema: T;
  /** How long a fetched value is reused before the next read fetches it again. */
  readonly maxAgeMs: number;
  /** The client, bounded in time as runtime/awsClients.ts says for the worker's use. */
  readonly client: SecretsManagerClient;
  readonly now?: () => number;
  /**
   * Told each time a read serves the previous value instead of a fresh one: the refresh failed,
   * failed a moment ago (the error says it is remembered) or did not end within `waitMs`.
   */
  readonly onStale?: (error: unknown) => void;
  /** Counts and times each GetSecretValue (runtime/metrics.ts); a value served from the cache is no call. */
  readonly calls?: CallRecorder;
  /**
   * How long a failed fetch is remembered: reads within it do not ask Secrets Manager again, they
   * serve the previous value or fail at once with the remembered error. @default 5000
   */
  readonly failureMemoryMs?: number;
  /**
   * The longest a read waits for a fetch. Past it the read serves the previous value, or fails
   * with a timeout error when there is none; the fetch carries on, and later reads share it.
   * @default no bound of its own: the client's timeouts and attempts bound the fetch
   */
  readonly waitMs?: number;
}

/**
 * Reads a JSON secret from Secrets Manager and keeps it for `maxAgeMs`, so a warm container
 * makes one call per period and still picks up a rotated value. Concurrent reads share one
 * request. A failed fetch is an error when there is no previous value, and serves the previous
 * value (telling `onStale`) when there is; either way it is remembered for `failureMemoryMs`,
 * after which the next read asks again.
 */
export function createSecretReader<T extends z.core.$ZodType>(options: SecretReaderOptions<T>): () => Promise<z.infer<T>> {
  const { client, secretId } = options;
  const now = options.now ?? Date.now;
  const calls: CallRecorder = options.calls ?? ((action) => action());
  const failureMemoryMs = options.failureMemoryMs ?? DEFAULT_FAILURE_MEMORY_MS;
  let cached: { value: z.infer<T>; fetchedAt: number } | undefined;
  let pending: Promise<z.infer<T>> | undefined;
  let failure: { error: Error; failedAt: number } | undefined;

  async function fetchSecret(): Promise<z.infer<T>> {
    let text: string | undefined;
    try {
      const answer = await calls(() => client.send(new GetSecretValueCommand({ SecretId: secretId })));
      text = answer.SecretString;
    } catch (error) {
      throw new Error(`secretsmanager GetSecretValue ${secretId} failed: ${(error as Error).name}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (text === undefined) throw new Error(`secret ${secretId} has no SecretString`);
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw new Error(`secret ${secretId} is not a JSON document`);
    }
    const parsed = z.safeParse(options.schema, document);
    if (!parsed.success) {
      const fields = describeIssues(parsed.error, "(document)");
      throw new Error(`secret ${secretId} does not have the expected shape: ${fields.join("; ")}`);
    }
    return parsed.data;
  }

  /** The fetch in flight, or a new one; its outcome is cached or remembered whoever waits for it. */
  function fetchShared(): Promise<z.infer<T>> {
    if (pending) return pending;
    const fetch = fetchSecret().then(
      (value) => {
        cached = { value, fetchedAt: now() };
        failure = undefined;
        return value;
      },
      (error: unknown) => {
        failure = { error: error as Error, failedAt: now() };
        throw error;
      },
    );
    pending = fetch.finally(() => {
      pending = undefined;
    });
    // A read that stopped waiting (waitMs) no longer listens: the outcome is kept above.
    pending.catch(() => undefined);
    return pending;
  }

  /** The remembered failure as the error a read within the window fails with. */
  function remembered(error: Error, failedAt: number): Error {
    const until = new Date(failedAt + failureMemoryMs).toISOString();
    return new Error(
      `${error.message} (remembered: the fetch failed at ${new Date(failedAt).toISOString()}; Secrets Manager is not asked again until ${until})`,
      { cause: error },
    );
  }

  /** The fetch, or a timeout error once `waitMs` has passed (the fetch is left running). */
  function bounded(fetch: Promise<z.infer<T>>): Promise<z.infer<T>> {
    const waitMs = options.waitMs;
    if (waitMs === undefined) return fetch;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `secretsmanager GetSecretValue ${secretId} did not answer within ${waitMs} ms (the read's waitMs); the fetch goes on and later reads share it`,
            ),
          ),
        waitMs,
      );
    });
    return Promise.race([fetch, timeout]).finally(() => clearTimeout(timer));
  }

  return async function readSecret() {
    if (cached && now() - cached.fetchedAt < options.maxAgeMs) return cached.value;
    const stale = cached;
    if (!pending && failure && now() - failure.failedAt < failureMemoryMs) {
      const error = remembered(failure.error, failure.failedAt);
      if (!stale) throw error;
      options.onStale?.(error);
      return stale.value;
    }
    const fetch = bounded(fetchShared());
    if (!stale) return fetch;
    return fetch.catch((error: unknown) => {
      options.onStale?.(error);
      return stale.value;
    });
  };
}
