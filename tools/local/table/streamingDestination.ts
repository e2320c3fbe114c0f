/**
 * The fan-identity table's Kinesis streaming destination, run locally. dynalite has no streams:
 * an endpoint in front of it, the one the workers are given as their DynamoDB endpoint, forwards
 * every request and, for each write to a streamed table that changes an item, makes the change
 * record DynamoDB would write to the stream (docs/data-model.md), with the new and old images.
 *
 * Writes to one item are taken one at a time by the endpoint (reads and other items' writes run
 * alongside), so the images it reads and the service returns are exactly the item before and
 * after each write. PutItem and DeleteItem cost no extra call (the old image comes back with
 * `ReturnValues: ALL_OLD`), UpdateItem one read, BatchWriteItem one BatchGetItem; what the
 * endpoint asked for and the caller did not is taken out of the answer.
 *
 * Ordering: the sink receives an item's change records in the order of its writes, and is called
 * for an item's next write only once its call for the previous one has settled; each write is
 * answered after the sink has taken its records. Records of different items come in no set order.
 */
import { randomUUID } from "node:crypto";
import { CreateTableCommand, type DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { TTL_PRINCIPAL } from "../../../workers/shared/scoring/table";
import type { RunningService, TableChangeRecord } from "../types";
import { type Answer, createUpstream, startForwarder, type TakenRequest, type Upstream } from "./forward";
import { canonicalItem, type Item, itemId, itemSize, keyOf, type KeySchema, partitionKeyOf, sameItem } from "./images";
import { createItemLocks, type WithItems } from "./keyLocks";
import type { TtlTable } from "./ttl";

/** A change record and the partition key to put it on the stream with (one per item). */
export interface TableChange {
  readonly partitionKey: string;
  readonly data: TableChangeRecord;
}

/** Where the change records go (the stream); called with one write's records at a time. */
export type ChangeSink = (records: TableChange[]) => Promise<void>;

export interface TableStreamOptions {
  /** dynalite's URL. */
  readonly dynamoUrl: string;
  /** The tables whose changes are streamed, by name; writes to others pass through untouched. */
  readonly tables: readonly string[];
  readonly sink: ChangeSink;
  /** The records' `awsRegion`. @default "us-east-1" */
  readonly region?: string;
  /** Epoch milliseconds, for `ApproximateCreationDateTime`. @default Date.now */
  readonly clock?: () => number;
  /**
   * A sink that failed: the write stands (as a write to DynamoDB does when its stream lags).
   * @default a line on stderr
   */
  readonly onSinkError?: (error: unknown, records: readonly TableChange[]) => void;
  /** @default 0 (any free port) */
  readonly port?: number;
}

/** The endpoint in front of dynalite. */
export interface TableWithStream extends RunningService {
  /**
   * Headers that mark a request as made by DynamoDB's TTL process (the sweeper's): its deletions'
   * REMOVE records carry the service's `userIdentity`. The value is made per endpoint, so no
   * worker can send it.
   */
  readonly serviceHeaders: Readonly<Record<string, string>>;
}

const SERVICE_HEADER = "x-local-dynamodb-service";
const WRITES = new Set(["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"]);
const TTL_IDENTITY = { type: "Service", principalId: TTL_PRINCIPAL } as const;

/** What the handlers share: the service, the locks, the tables' keys and the way to the sink. */
interface Destination {
  readonly upstream: Upstream;
  readonly withItems: WithItems;
  /** A streamed table's key attributes (undefined: not streamed, or not known to the service). */
  schemaOf(table: string): Promise<KeySchema | undefined>;
  /** The change record of one write, or undefined when the write changed nothing. */
  record(
    table: string,
    key: Item,
    before: Item | undefined,
    after: Item | undefined,
    byService: boolean,
  ): TableChange | undefined;
  emit(records: readonly (TableChange | undefined)[]): Promise<void>;
}

/**
 * Starts the endpoint in front of `options.dynamoUrl`. TransactWriteItems is passed on as it is
 * (dynalite has no transactions).
 */
export async function startTableWithStream(options: TableStreamOptions): Promise<TableWithStream> {
  const token = randomUUID();
  const upstream = createUpstream(options.dynamoUrl, new Set([SERVICE_HEADER]));
  const destination = createDestination(options, upstream);
  const forwarder = await startForwarder(
    upstream,
    (operation) => WRITES.has(operation),
    (request) => handleWrite(destination, request, request.headers[SERVICE_HEADER] === token),
    options.port,
  );
  return { url: forwarder.url, serviceHeaders: { [SERVICE_HEADER]: token }, close: () => forwarder.close() };
}

function createDestination(options: TableStreamOptions, upstream: Upstream): Destination {
  const clock = options.clock ?? Date.now;
  const onSinkError =
    options.onSinkError ??
    ((error: unknown, records: readonly TableChange[]) =>
      console.error(`table stream: ${records.length} change record(s) not taken by the sink: ${String(error)}`));
  return {
    upstream,
    withItems: createItemLocks(),
    schemaOf: schemaCache(upstream, new Set(options.tables)),
    record(table, key, before, after, byService) {
      const data = changeRecord(table, key, before, after, { region: options.region ?? "us-east-1", at: clock(), byService });
      return data && { partitionKey: partitionKeyOf(itemId(table, key)), data };
    },
    async emit(records) {
      const changes = records.filter((record): record is TableChange => record !== undefined);
      if (changes.length === 0) return;
      try {
        await options.sink(changes);
      } catch (error) {
        onSinkError(error, changes);
      }
    },
  };
}

/**
 * The record DynamoDB writes for a change from `before` to `after` (undefined: no item), or
 * undefined when there is none: no item either side, or the item left as it was (DynamoDB writes
 * no stream record for a write that changes no data).
 */
function changeRecord(
  table: string,
  key: Item,
  before: Item | undefined,
  after: Item | undefined,
  context: { readonly region: string; readonly at: number; readonly byService: boolean },
): TableChangeRecord | undefined {
  if (!before && !after) return undefined;
  if (before && after && sameItem(before, after)) return undefined;
  const eventName = !before ? "INSERT" : !after ? "REMOVE" : "MODIFY";
  return {
    awsRegion: context.region,
    eventID: randomUUID(),
    eventName,
    userIdentity: eventName === "REMOVE" && context.byService ? TTL_IDENTITY : null,
    recordFormat: "application/json",
    tableName: table,
    dynamodb: {
      // The table's destination has MILLISECOND precision: epoch milliseconds.
      ApproximateCreationDateTime: Math.floor(context.at),
      Keys: key,
      ...(after ? { NewImage: after } : {}),
      ...(before ? { OldImage: before } : {}),
      SizeBytes: itemSize(key) + (after ? itemSize(after) : 0) + (before ? itemSize(before) : 0),
    },
    eventSource: "aws:dynamodb",
  };
}

/** The key schema of each streamed table, asked of the service once (again after a failure). */
function schemaCache(upstream: Upstream, streamed: ReadonlySet<string>): (table: string) => Promise<KeySchema | undefined> {
  const known = new Map<string, Promise<KeySchema | undefined>>();
  const describe = async (table: string): Promise<KeySchema | undefined> => {
    const described = await upstream.call("DescribeTable", { TableName: table });
    if (!described.ok) return undefined;
    const keys = (described.output.Table as { KeySchema: { AttributeName: string; KeyType: string }[] }).KeySchema;
    const hashKey = keys.find((key) => key.KeyType === "HASH")!.AttributeName;
    const rangeKey = keys.find((key) => key.KeyType === "RANGE")?.AttributeName;
    return rangeKey === undefined ? { hashKey } : { hashKey, rangeKey };
  };
  return (table) => {
    if (!streamed.has(table)) return Promise.resolve(undefined);
    let schema = known.get(table);
    if (!schema) {
      schema = describe(table);
      known.set(table, schema);
      void schema.then((found) => found ?? known.delete(table));
    }
    return schema;
  };
}

async function handleWrite(destination: Destination, request: TakenRequest, byService: boolean): Promise<Answer> {
  let input: Record<string, unknown>;
  try {
    input = JSON.parse(request.body) as Record<string, unknown>;
  } catch {
    return destination.upstream.forward(request.headers, request.body);
  }
  return request.operation === "BatchWriteItem"
    ? batchWrite(destination, input, request, byService)
    : writeItem(destination, input, request, byService);
}

/** How one PutItem, UpdateItem or DeleteItem is sent, and where its images come from. */
interface WritePlan {
  readonly send: Record<string, unknown>;
  /** Read the item before the write (else the old image is the `ALL_OLD` answer). */
  readonly readBefore: boolean;
  /** Read the item after the write (else the new image is `newImage` of the answer). */
  readonly readAfter: boolean;
  readonly newImage: (output: Record<string, unknown>) => Item | undefined;
  /** The answer's `Attributes` were asked for by the endpoint, not by the caller. */
  readonly strip: boolean;
}

/** The plan of a write: `ReturnValues` is changed only where the caller left it at NONE. */
function planWrite(operation: string, input: Record<string, unknown>): WritePlan {
  const asked = input.ReturnValues ?? "NONE";
  const none = asked === "NONE";
  if (operation !== "UpdateItem") {
    const newImage = operation === "PutItem" ? () => canonicalItem(input.Item as Item) : () => undefined;
    return {
      send: none ? { ...input, ReturnValues: "ALL_OLD" } : input,
      readBefore: false,
      readAfter: false,
      newImage,
      strip: none,
    };
  }
  if (asked === "ALL_OLD") return { send: input, readBefore: false, readAfter: true, newImage: () => undefined, strip: false };
  if (none || asked === "ALL_NEW") {
    const send = none ? { ...input, ReturnValues: "ALL_NEW" } : input;
    return { send, readBefore: true, readAfter: false, newImage: (output) => output.Attributes as Item, strip: none };
  }
  return { send: input, readBefore: true, readAfter: true, newImage: () => undefined, strip: false };
}

/** The item under `key` as it is now, consistently read. */
async function readItem(destination: Destination, table: string, key: Item): Promise<{ ok: boolean; item?: Item }> {
  const read = await destination.upstream.call("GetItem", { TableName: table, Key: key, ConsistentRead: true });
  return read.ok ? { ok: true, item: read.output.Item as Item | undefined } : { ok: false };
}

async function writeItem(destination: Destination, input: Record<string, unknown>, request: TakenRequest, byService: boolean) {
  const { upstream } = destination;
  const table = String(input.TableName);
  const schema = await destination.schemaOf(table);
  const key = schema && keyOf((request.operation === "PutItem" ? input.Item : input.Key) as Item | undefined, schema);
  if (!key) return upstream.forward(request.headers, request.body);
  const plan = planWrite(request.operation, input);
  return destination.withItems([itemId(table, key)], async () => {
    const before = plan.readBefore ? await readItem(destination, table, key) : undefined;
    if (before && !before.ok) return upstream.forward(request.headers, request.body);
    const answer = await upstream.forward(request.headers, plan.send === input ? request.body : JSON.stringify(plan.send));
    if (answer.status !== 200) return answer;
    const { Attributes, ...rest } = JSON.parse(answer.body) as Record<string, unknown>;
    let after = plan.newImage({ Attributes, ...rest });
    if (plan.readAfter) {
      const read = await readItem(destination, table, key);
      if (!read.ok) throw new Error(`${table}: the item written could not be read back for its change record`);
      after = read.item;
    }
    const old = before ? before.item : (Attributes as Item | undefined);
    await destination.emit([destination.record(table, key, old, after, byService)]);
    return plan.strip ? { ...answer, body: JSON.stringify(rest) } : answer;
  });
}

/** One put or delete of a BatchWriteItem on a streamed table. */
interface BatchEntry {
  readonly table: string;
  readonly key: Item;
  readonly id: string;
  /** The item put (undefined: a delete). */
  readonly put?: Item;
}

/** The batch's entries on streamed tables, in request order; undefined when one has no key. */
async function batchEntries(destination: Destination, input: Record<string, unknown>): Promise<BatchEntry[] | undefined> {
  const entries: BatchEntry[] = [];
  for (const [table, requests] of Object.entries((input.RequestItems ?? {}) as Record<string, unknown>)) {
    const schema = await destination.schemaOf(table);
    if (!schema) continue;
    if (!Array.isArray(requests)) return undefined;
    for (const request of requests as { PutRequest?: { Item?: Item }; DeleteRequest?: { Key?: Item } }[]) {
      const put = request?.PutRequest?.Item;
      const key = keyOf(put ?? request?.DeleteRequest?.Key, schema);
      if (!key) return undefined;
      entries.push({ table, key, id: itemId(table, key), ...(put ? { put: canonicalItem(put) } : {}) });
    }
  }
  return entries;
}

/** The entries' items as they are now, by id (absent: no item); undefined when the read failed. */
async function readEntries(destination: Destination, entries: readonly BatchEntry[]): Promise<Map<string, Item> | undefined> {
  const items = new Map<string, Item>();
  const unique = [...new Map(entries.map((entry) => [entry.id, entry])).values()];
  for (let start = 0; start < unique.length; start += 100) {
    let pending: Record<string, unknown> = {};
    for (const entry of unique.slice(start, start + 100)) {
      const table = (pending[entry.table] ??= { Keys: [], ConsistentRead: true }) as { Keys: Item[] };
      table.Keys.push(entry.key);
    }
    while (Object.keys(pending).length > 0) {
      const read = await destination.upstream.call("BatchGetItem", { RequestItems: pending });
      if (!read.ok) return undefined;
      for (const [table, found] of Object.entries((read.output.Responses ?? {}) as Record<string, Item[]>)) {
        const schema = (await destination.schemaOf(table))!;
        for (const item of found) items.set(itemId(table, keyOf(item, schema)!), item);
      }
      pending = (read.output.UnprocessedKeys ?? {}) as Record<string, unknown>;
    }
  }
  return items;
}

/** The ids of the items a BatchWriteItem answer leaves unprocessed. */
async function unprocessedIds(destination: Destination, output: Record<string, unknown>): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const [table, requests] of Object.entries((output.UnprocessedItems ?? {}) as Record<string, unknown[]>)) {
    const schema = await destination.schemaOf(table);
    if (!schema) continue;
    for (const request of requests as { PutRequest?: { Item?: Item }; DeleteRequest?: { Key?: Item } }[]) {
      const key = keyOf(request.PutRequest?.Item ?? request.DeleteRequest?.Key, schema);
      if (key) ids.add(itemId(table, key));
    }
  }
  return ids;
}

/** A BatchWriteItem as it is sent, with a record for each item it changed (none for those left unprocessed). */
async function batchWrite(destination: Destination, input: Record<string, unknown>, request: TakenRequest, byService: boolean) {
  const { upstream } = destination;
  const entries = await batchEntries(destination, input);
  if (!entries?.length) return upstream.forward(request.headers, request.body);
  return destination.withItems(
    entries.map((entry) => entry.id),
    async () => {
      const items = await readEntries(destination, entries);
      const answer = await upstream.forward(request.headers, request.body);
      if (!items || answer.status !== 200) return answer;
      const unprocessed = await unprocessedIds(destination, JSON.parse(answer.body) as Record<string, unknown>);
      const records = entries
        .filter((entry) => !unprocessed.has(entry.id))
        .map((entry) => {
          const record = destination.record(entry.table, entry.key, items.get(entry.id), entry.put, byService);
          if (entry.put) items.set(entry.id, entry.put);
          else items.delete(entry.id);
          return record;
        });
      await destination.emit(records);
      return answer;
    },
  );
}

/** A table as the program plans it (the inputs of an `aws:dynamodb/table:Table`), reduced to what dynalite needs. */
export interface TableSpec {
  readonly name: string;
  readonly hashKey: string;
  readonly rangeKey?: string;
  readonly attributes: readonly { readonly name: string; readonly type: string }[];
  /** The TTL attribute, when TTL is enabled. */
  readonly ttlAttribute?: string;
}

/** The spec of a planned `aws:dynamodb/table:Table` from its inputs (`ttl: { attributeName, enabled }`). */
export function tableSpecFromPlan(inputs: Record<string, unknown>): TableSpec {
  const ttl = inputs.ttl as { attributeName?: string; enabled?: boolean } | undefined;
  return {
    name: String(inputs.name),
    hashKey: String(inputs.hashKey),
    ...(inputs.rangeKey ? { rangeKey: String(inputs.rangeKey) } : {}),
    attributes: (inputs.attributes ?? []) as TableSpec["attributes"],
    ...(ttl?.enabled && ttl.attributeName ? { ttlAttribute: ttl.attributeName } : {}),
  };
}

/**
 * Creates each table in dynalite (on demand, keyed as planned; a table that exists already is
 * left as it is). dynalite has no TTL: returns the tables with a TTL attribute, as the sweeper
 * (startTtlSweeper) takes them.
 */
export async function createTablesFromPlan(client: DynamoDBClient, tables: readonly TableSpec[]): Promise<TtlTable[]> {
  for (const table of tables) {
    const keys = [table.hashKey, ...(table.rangeKey === undefined ? [] : [table.rangeKey])];
    try {
      await client.send(
        new CreateTableCommand({
          TableName: table.name,
          KeySchema: keys.map((name, index) => ({ AttributeName: name, KeyType: index === 0 ? "HASH" : "RANGE" })),
          AttributeDefinitions: table.attributes
            .filter((attribute) => keys.includes(attribute.name))
            .map((attribute) => ({ AttributeName: attribute.name, AttributeType: attribute.type as "S" | "N" | "B" })),
          BillingMode: "PAY_PER_REQUEST",
        }),
      );
    } catch (error) {
      if ((error as Error).name !== "ResourceInUseException") throw error;
    }
  }
  return tables.flatMap(({ name, hashKey, rangeKey, ttlAttribute }) =>
    ttlAttribute === undefined ? [] : [{ name, hashKey, ...(rangeKey === undefined ? {} : { rangeKey }), ttlAttribute }],
  );
}
