/**
 * Bounded retries with exponential backoff and full jitter.
 */
export interface RetryOptions {
  /** Attempts in all, the first included. */
  readonly attempts: number;
  /** Delay cap before the second attempt; doubled for each further one. */
  readonly baseDelayMs: number;
  /** @default 5000 */
  readonly maxDelayMs?: number;
  /** Whether a failure is worth another attempt. @default every failure */
  readonly retryable?: (error: unknown) => boolean;
  /** @default setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The delay before attempt `attempt + 1` (attempt counts from 1): random in [0, base·2^(attempt-1)], capped. */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs = 5000): number {
  return Math.random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
}

/** Runs `action` until it succeeds, a failure is not retryable, or the attempts are spent. */
export async function withRetries<T>(action: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const wait = options.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await action(attempt);
    } catch (error) {
      const retryable = options.retryable?.(error) ?? true;
      if (!retryable || attempt >= options.attempts) throw error;
      await wait(backoffDelay(attempt, options.baseDelayMs, options.maxDelayMs));
    }
  }
}

/** Maps `items` through `action`, at most `limit` at a time, keeping the order of the results. */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  action: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await action(items[index]!, index);
    }
  });
  await Promise.all(lanes);
  return results;
}

/** Splits `items` into chunks of at most `size`. */
export function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let start = 0; start < items.length; start += size) chunks.push(items.slice(start, start + size));
  return chunks;
}
