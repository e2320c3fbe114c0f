/**
 * DynamoDB's faults at the wire, as fault rules (faults/proxy.ts) for the `table` endpoint the
 * workers call or dynalite behind it:
 *
 * - throttling: a share of the calls answered ProvisionedThroughputExceededException (400), which
 *   the AWS SDK retries with backoff;
 * - unprocessed keys and items: BatchGetItem and BatchWriteItem answered with a share of their
 *   keys or items in UnprocessedKeys / UnprocessedItems, taken out of the request before it is
 *   forwarded, so they are really not read or written (dynalite never answers so itself; DynamoDB
 *   does under load), for the caller to send again.
 */
import { awsError, awsOperation, jsonInput, jsonOutput } from "./awsJson";
import { type FaultAction, type ProxiedResponse, sdkAttempt } from "./proxy";
import { canonicalJson, evenShare, type TrackedRule } from "./share";

/** The operations the workers call on items (not the table's own: DescribeTable, CreateTable…). */
export const ITEM_OPERATIONS: readonly string[] = [
  "GetItem",
  "PutItem",
  "UpdateItem",
  "DeleteItem",
  "BatchGetItem",
  "BatchWriteItem",
  "Query",
];

export interface ThrottlingOptions {
  /** Share (0..1) of the calls answered with the throttling error. */
  readonly share: number;
  /** @default ITEM_OPERATIONS */
  readonly operations?: readonly string[];
  /**
   * Let the SDK's last attempt of a call through (its `amz-sdk-request: attempt=N; max=M` header),
   * so throttling costs retries and time but every call gets through: what an SDK's backoff is
   * for. False throttles any attempt, and a call may then fail for its caller.
   * @default true
   */
  readonly spareLastAttempt?: boolean;
}

export interface ThrottlingStats {
  /** Calls answered with the throttling error. */
  readonly throttled: number;
  readonly byOperation: Readonly<Record<string, number>>;
  /** Throttled attempts the SDK followed with another attempt of the same call. */
  readonly retried: number;
}

const THROTTLED_MESSAGE =
  "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.";

/** Answers `share` of the item calls ProvisionedThroughputExceededException, as DynamoDB does when a table is over its capacity. */
export function throttling(options: ThrottlingOptions): TrackedRule<ThrottlingStats> {
  const operations = new Set(options.operations ?? ITEM_OPERATIONS);
  const spareLast = options.spareLastAttempt ?? true;
  const pick = evenShare(options.share);
  const byOperation: Record<string, number> = {};
  /** The attempt last throttled of each call, by the SDK's invocation id. */
  const throttledAttempt = new Map<string, number>();
  let throttled = 0;
  let retried = 0;
  let stopped = false;
  return {
    rule(request) {
      const operation = awsOperation(request);
      if (!operation || !operations.has(operation)) return undefined;
      const { attempt, max } = sdkAttempt(request.headers);
      const call = String(request.headers["amz-sdk-invocation-id"] ?? "");
      const before = call ? throttledAttempt.get(call) : undefined;
      if (before !== undefined && attempt > before) {
        retried += 1;
        throttledAttempt.delete(call);
      }
      // A call without the SDK's header (not an SDK's) has no retry to spare: its one attempt is its last.
      const last = max === undefined ? attempt >= 1 : attempt >= max;
      if (stopped || (spareLast && last) || !pick()) return undefined;
      throttled += 1;
      byOperation[operation] = (byOperation[operation] ?? 0) + 1;
      if (call) throttledAttempt.set(call, attempt);
      return { kind: "respond", ...awsError(request.service, "ProvisionedThroughputExceededException", THROTTLED_MESSAGE) };
    },
    stats: () => ({ throttled, byOperation: { ...byOperation }, retried }),
    stop: () => void (stopped = true),
  };
}

export interface UnprocessedOptions {
  /** Share (0..1) of the keys (BatchGetItem) and items (BatchWriteItem) left unprocessed. */
  readonly share: number;
  /** @default both */
  readonly operations?: readonly ("BatchGetItem" | "BatchWriteItem")[];
}

export interface UnprocessedStats {
  /** Keys and items answered unprocessed (each at most once). */
  readonly moved: number;
  readonly byOperation: Readonly<Record<string, number>>;
  /** Of those, the ones the caller sent again. */
  readonly sentAgain: number;
}

type Json = Record<string, unknown>;

/** One key (BatchGetItem) or write request (BatchWriteItem) of a batch, with its table. */
interface Entry {
  readonly table: string;
  readonly value: unknown;
  readonly id: string;
}

/** The keys or write requests of a batch call, table by table in request order. */
function entriesOf(operation: string, requestItems: Json): Entry[] {
  return Object.entries(requestItems).flatMap(([table, spec]) => {
    const values = operation === "BatchGetItem" ? (spec as { Keys?: unknown[] } | undefined)?.Keys : spec;
    return Array.isArray(values) ? values.map((value) => ({ table, value, id: `${table}\n${canonicalJson(value)}` })) : [];
  });
}

/** RequestItems holding only `entries`, each table's other settings (projection, consistency) kept. */
function requestItemsOf(operation: string, original: Json, entries: readonly Entry[]): Json {
  const byTable = new Map<string, unknown[]>();
  for (const entry of entries) (byTable.get(entry.table) ?? byTable.set(entry.table, []).get(entry.table)!).push(entry.value);
  return Object.fromEntries(
    [...byTable].map(([table, values]) =>
      operation === "BatchGetItem" ? [table, { ...(original[table] as Json), Keys: values }] : [table, values],
    ),
  );
}

/** The answer with `moved` added to its unprocessed keys or items (an error answer is left as it is). */
function withUnprocessed(operation: string, answer: ProxiedResponse, original: Json, moved: readonly Entry[]): ProxiedResponse {
  if (answer.status !== 200) return answer;
  const output = jsonOutput(answer) ?? {};
  const field = operation === "BatchGetItem" ? "UnprocessedKeys" : "UnprocessedItems";
  const unprocessed = { ...((output[field] as Json | undefined) ?? {}) };
  for (const [table, spec] of Object.entries(requestItemsOf(operation, original, moved))) {
    const already = unprocessed[table];
    unprocessed[table] =
      operation === "BatchGetItem"
        ? {
            ...(spec as Json),
            Keys: [...(((already as Json | undefined)?.Keys as unknown[]) ?? []), ...((spec as Json).Keys as unknown[])],
          }
        : [...((already as unknown[] | undefined) ?? []), ...(spec as unknown[])];
  }
  const responses =
    operation === "BatchGetItem"
      ? { Responses: { ...Object.fromEntries(Object.keys(original).map((table) => [table, []])), ...(output.Responses as Json) } }
      : {};
  return { ...answer, body: JSON.stringify({ ...output, ...responses, [field]: unprocessed }) };
}

/**
 * Leaves `share` of the keys and items of BatchGetItem and BatchWriteItem unprocessed: taken out
 * of the request, answered in UnprocessedKeys / UnprocessedItems. Each key or item is left so once
 * (its retry goes through), and at least one of a call's keys or items is processed: DynamoDB
 * answers a call it can do none of with ProvisionedThroughputExceededException instead.
 */
export function unprocessedItems(options: UnprocessedOptions): TrackedRule<UnprocessedStats> {
  const operations = new Set<string>(options.operations ?? ["BatchGetItem", "BatchWriteItem"]);
  const pick = evenShare(options.share);
  const moved = new Set<string>();
  const sentAgain = new Set<string>();
  const byOperation: Record<string, number> = {};
  let stopped = false;
  return {
    rule(request): FaultAction | undefined {
      const operation = awsOperation(request);
      if (!operation || !operations.has(operation)) return undefined;
      const input = jsonInput(request);
      const requestItems = input?.RequestItems as Json | undefined;
      if (!input || typeof requestItems !== "object" || requestItems === null) return undefined;
      const entries = entriesOf(operation, requestItems);
      for (const entry of entries) if (moved.has(entry.id)) sentAgain.add(entry.id);
      if (stopped) return undefined;
      const out: Entry[] = [];
      for (const entry of entries) {
        if (out.length >= entries.length - 1) break;
        if (!moved.has(entry.id) && pick()) out.push(entry);
      }
      if (out.length === 0) return undefined;
      for (const entry of out) moved.add(entry.id);
      byOperation[operation] = (byOperation[operation] ?? 0) + out.length;
      const kept = entries.filter((entry) => !out.includes(entry));
      return {
        kind: "rewrite",
        request: () => Buffer.from(JSON.stringify({ ...input, RequestItems: requestItemsOf(operation, requestItems, kept) })),
        response: (answer) => withUnprocessed(operation, answer, requestItems, out),
      };
    },
    stats: () => ({ moved: moved.size, byOperation: { ...byOperation }, sentAgain: sentAgain.size }),
    stop: () => void (stopped = true),
  };
}
