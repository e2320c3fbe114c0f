/**
 * DynamoDB's Time to Live, run locally (dynalite has none), on a clock that may run faster than
 * real time. An item is expired when its TTL attribute is a Number of epoch seconds before the
 * clock's now and not more than five years before it; items with another type there, or none,
 * are never deleted. Each expired item is deleted on condition that it is expired still (one
 * updated meanwhile stays), through the streaming endpoint with its service headers, so that the
 * REMOVE record carries the TTL service's identity as DynamoDB's does.
 */
import { ConditionalCheckFailedException, DeleteItemCommand, DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb";
import { mapConcurrently } from "../../../workers/shared/runtime/retry";

/** A table TTL applies to. */
export interface TtlTable {
  readonly name: string;
  readonly hashKey: string;
  readonly rangeKey?: string;
  /** The attribute holding the expiry, in epoch seconds. */
  readonly ttlAttribute: string;
}

export interface TtlSweeperOptions {
  /**
   * Where to delete: the streaming endpoint (startTableWithStream), whose `serviceHeaders` mark
   * the deletions as TTL's, or dynalite itself (no change records then).
   */
  readonly dynamo: { readonly url: string; readonly serviceHeaders?: Readonly<Record<string, string>> };
  readonly tables: readonly TtlTable[];
  /** Epoch milliseconds of the (maybe sped-up) clock: see createClock. */
  readonly clock: () => number;
  /** Real milliseconds between the end of one sweep and the start of the next. */
  readonly intervalMs: number;
  /** @default "us-east-1" */
  readonly region?: string;
  /** A sweep that failed; the next one runs as planned. @default a line on stderr */
  readonly onError?: (error: unknown) => void;
}

export interface TtlSweeper {
  /** Sweeps every table now (after a sweep under way); resolves with the number of items deleted. */
  sweep(): Promise<number>;
  /** Stops sweeping, once a sweep under way has finished. */
  close(): Promise<void>;
}

/** DynamoDB leaves alone items whose TTL lies more than five years in the past. */
const FIVE_YEARS_MS = 5 * 365.25 * 24 * 3600 * 1000;
const DELETES_AT_ONCE = 16;

/** The condition, as a DynamoDB expression, that an item is expired at `nowMs`. */
function expiredAt(nowMs: number) {
  return {
    expression: "#ttl < :now AND #ttl >= :oldest",
    values: { ":now": { N: String(nowMs / 1000) }, ":oldest": { N: String(Math.floor((nowMs - FIVE_YEARS_MS) / 1000)) } },
  };
}

/** A client of `dynamo` whose every request carries its service headers. */
function clientOf(dynamo: TtlSweeperOptions["dynamo"], region: string): DynamoDBClient {
  const client = new DynamoDBClient({
    endpoint: dynamo.url,
    region,
    credentials: { accessKeyId: "ttl", secretAccessKey: "ttl" },
  });
  const headers = dynamo.serviceHeaders ?? {};
  client.middlewareStack.add(
    (next) => (args) => {
      Object.assign((args.request as { headers: Record<string, string> }).headers, headers);
      return next(args);
    },
    { step: "build", name: "ttlServiceHeaders" },
  );
  return client;
}

/** Deletes the expired items of one table; resolves with how many it deleted. */
async function sweepTable(client: DynamoDBClient, table: TtlTable, clock: () => number): Promise<number> {
  const keys = [table.hashKey, ...(table.rangeKey === undefined ? [] : [table.rangeKey])];
  const keyNames = Object.fromEntries(keys.map((key, index) => [`#k${index}`, key]));
  const names = { "#ttl": table.ttlAttribute, ...keyNames };
  let deleted = 0;
  let start: Record<string, never> | undefined;
  do {
    const condition = expiredAt(clock());
    const page = await client.send(
      new ScanCommand({
        TableName: table.name,
        FilterExpression: condition.expression,
        ProjectionExpression: Object.keys(keyNames).join(", "),
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: condition.values,
        ExclusiveStartKey: start,
      }),
    );
    const gone = await mapConcurrently(page.Items ?? [], DELETES_AT_ONCE, async (key) => {
      const still = expiredAt(clock());
      try {
        await client.send(
          new DeleteItemCommand({
            TableName: table.name,
            Key: key,
            ConditionExpression: still.expression,
            ExpressionAttributeNames: { "#ttl": table.ttlAttribute },
            ExpressionAttributeValues: still.values,
          }),
        );
        return true;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return false; // updated meanwhile: not expired now
        throw error;
      }
    });
    deleted += gone.filter(Boolean).length;
    start = page.LastEvaluatedKey as Record<string, never> | undefined;
  } while (start);
  return deleted;
}

/** Starts sweeping `options.tables`, every `options.intervalMs` from now. */
export function startTtlSweeper(options: TtlSweeperOptions): TtlSweeper {
  const client = clientOf(options.dynamo, options.region ?? "us-east-1");
  const onError = options.onError ?? ((error: unknown) => console.error(`TTL sweep failed: ${String(error)}`));
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let last: Promise<number> = Promise.resolve(0);
  const sweepAll = async () => {
    let deleted = 0;
    for (const table of options.tables) deleted += await sweepTable(client, table, options.clock);
    return deleted;
  };
  const sweep = () => (last = last.catch(() => 0).then(sweepAll));
  const scheduled = (): void => {
    timer = undefined;
    void sweep()
      .catch(onError)
      .finally(() => {
        if (!closed) timer = setTimeout(scheduled, options.intervalMs).unref();
      });
  };
  timer = setTimeout(scheduled, options.intervalMs).unref();
  return {
    sweep,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      await last.catch(() => undefined);
      client.destroy();
    },
  };
}

/**
 * A clock (epoch milliseconds) on which time passes `speed` times as fast as real time, reading
 * `start` now: with speed 1 it is real time, with 86,400 a day passes in a second.
 */
export function createClock(speed: number, start: number = Date.now()): () => number {
  if (!(speed > 0)) throw new Error(`clock speed must be a positive number, not ${speed}`);
  const realStart = Date.now();
  return () => start + (Date.now() - realStart) * speed;
}
