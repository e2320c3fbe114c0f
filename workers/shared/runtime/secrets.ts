import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import type { z } from "zod";
import { describeIssues } from "./issues";
import type { CallRecorder } from "./metrics";

export interface SecretReaderOptions<T extends z.ZodType> {
  /** ARN or name of the Secrets Manager secret holding a JSON document. */
  readonly secretId: string;
  /** Shape of the document; a secret that does not match is an error naming the field. */
  readonly schema: T;
  /** How long a fetched value is reused before the next read fetches it again. */
  readonly maxAgeMs: number;
  readonly client?: SecretsManagerClient;
  readonly now?: () => number;
  /** Told when a refresh failed and the previous value was served instead. */
  readonly onStale?: (error: unknown) => void;
  /** Counts and times each GetSecretValue (runtime/metrics.ts); a value served from the cache is no call. */
  readonly calls?: CallRecorder;
}

/**
 * Reads a JSON secret from Secrets Manager and keeps it for `maxAgeMs`, so a warm container
 * makes one call per period and still picks up a rotated value. Concurrent reads share one
 * request. A failed first read is an error; a failed refresh serves the previous value (and
 * tells `onStale`) and is tried again on the next read.
 */
export function createSecretReader<T extends z.ZodType>(options: SecretReaderOptions<T>): () => Promise<z.infer<T>> {
  const client = options.client ?? new SecretsManagerClient({});
  const now = options.now ?? Date.now;
  const calls: CallRecorder = options.calls ?? ((action) => action());
  let cached: { value: z.infer<T>; fetchedAt: number } | undefined;
  let pending: Promise<z.infer<T>> | undefined;

  async function fetchSecret(): Promise<z.infer<T>> {
    let text: string | undefined;
    try {
      const answer = await calls(() => client.send(new GetSecretValueCommand({ SecretId: options.secretId })));
      text = answer.SecretString;
    } catch (error) {
      throw new Error(
        `secretsmanager GetSecretValue ${options.secretId} failed: ${(error as Error).name}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
    if (text === undefined) throw new Error(`secret ${options.secretId} has no SecretString`);
    let document: unknown;
    try {
      document = JSON.parse(text);
    } catch {
      throw new Error(`secret ${options.secretId} is not a JSON document`);
    }
    const parsed = options.schema.safeParse(document);
    if (!parsed.success) {
      const fields = describeIssues(parsed.error, "(document)");
      throw new Error(`secret ${options.secretId} does not have the expected shape: ${fields.join("; ")}`);
    }
    cached = { value: parsed.data, fetchedAt: now() };
    return parsed.data;
  }

  return async function readSecret() {
    if (cached && now() - cached.fetchedAt < options.maxAgeMs) return cached.value;
    pending ??= fetchSecret().finally(() => {
      pending = undefined;
    });
    if (!cached) return pending;
    const stale = cached.value;
    return pending.catch((error: unknown) => {
      options.onStale?.(error);
      return stale;
    });
  };
}
