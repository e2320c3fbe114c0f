/**
 * Per-item locks: work on an item waits for the work on it that came before; work on other items
 * runs alongside.
 */

/** Runs `work` once every earlier holder of any of `ids` has finished, holding them meanwhile. */
export type WithItems = <T>(ids: readonly string[], work: () => Promise<T>) => Promise<T>;

/**
 * A set of per-item locks. Work takes all its items at once, in one synchronous step, so two
 * holders of several items queue in the same order on each of them and never deadlock.
 */
export function createItemLocks(): WithItems {
  const tails = new Map<string, Promise<void>>();
  return async <T>(ids: readonly string[], work: () => Promise<T>): Promise<T> => {
    const unique = [...new Set(ids)];
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const before: Promise<void>[] = [];
    for (const id of unique) {
      const tail = tails.get(id);
      if (tail) before.push(tail);
      tails.set(id, mine);
    }
    try {
      if (before.length > 0) await Promise.all(before);
      return await work();
    } finally {
      release();
      for (const id of unique) if (tails.get(id) === mine) tails.delete(id);
    }
  };
}
