/**
 * DynamoDB batch reads (BatchGetItem, 100 keys) and writes (BatchWriteItem, 25 items), with
 * the keys and items DynamoDB leaves unprocessed retried with backoff, never dropped: what still
 * fails after the last attempt is reported by key.
 */
import type { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { BatchGetCommand, BatchWriteCommand, DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { backoffDelay, chunk, mapConcurrently, sleep } from "./retry";

/**
 * The document client every worker writes with: plain JavaScript values in and out, and an
 * attribute left undefined is left out of the item rather than refused. A worker gives it a
 * client bounded as runtime/awsClients.ts says for its use.
 */
export function createDocumentClient(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
}

export const BATCH_GET_LIMIT = 100;
export const BATCH_WRITE_LIMIT = 25;

type Item = Record<string, unknown>;

export interface BatchOptions {
  /** Attempts per key or item, the first included. @default 5 */
  readonly attempts?: number;
  /** @default 50 */
  readonly baseDelayMs?: number;
  /** Reads only: strongly consistent, to see an item written a moment ago. @default false */
  readonly consistentRead?: boolean;
}

export interface BatchGetResult {
  readonly items: Item[];
  /** Keys still unread after the last attempt. */
  readonly unread: Item[];
  readonly calls: number;
}

/**
 * Reads the items with the given partition keys (duplicates are read once), projecting
 * `attributes` when given.
 */
export async function batchGetItems(
  client: DynamoDBDocumentClient,
  table: string,
  keyName: string,
  keyValues: readonly string[],
  attributes?: readonly string[],
  options: BatchOptions = {},
): Promise<BatchGetResult> {
  const attempts = options.attempts ?? 5;
  const items: Item[] = [];
  const unread: Item[] = [];
  let calls = 0;
  const names = attributes && Object.fromEntries(attributes.map((name, index) => [`#a${index}`, name]));
  const unique = [...new Set(keyValues)];

  await mapConcurrently(chunk(unique, BATCH_GET_LIMIT), 4, async (values) => {
    let keys: Item[] = values.map((value) => ({ [keyName]: value }));
    for (let attempt = 1; keys.length > 0; attempt++) {
      calls += 1;
      const answer = await client.send(
        new BatchGetCommand({
          RequestItems: {
            [table]: {
              Keys: keys,
              ...(options.consistentRead ? { ConsistentRead: true } : {}),
              ...(names ? { ProjectionExpression: Object.keys(names).join(", "), ExpressionAttributeNames: names } : {}),
            },
          },
        }),
      );
      items.push(...(answer.Responses?.[table] ?? []));
      keys = (answer.UnprocessedKeys?.[table]?.Keys ?? []) as Item[];
      if (keys.length === 0) break;
      if (attempt >= attempts) {
        unread.push(...keys);
        break;
      }
      await sleep(backoffDelay(attempt, options.baseDelayMs ?? 50));
    }
  });
  return { items, unread, calls };
}

export interface BatchWriteResult {
  /** Items still unwritten after the last attempt, with why. */
  readonly unwritten: { readonly item: Item; readonly reason: string }[];
  readonly calls: number;
}

/**
 * Puts the items (for each partition key only the last given: one request may not hold two
 * writes of one item).
 */
export async function batchPutItems(
  client: DynamoDBDocumentClient,
  table: string,
  keyName: string,
  items: readonly Item[],
  options: BatchOptions = {},
): Promise<BatchWriteResult> {
  const attempts = options.attempts ?? 5;
  const unwritten: { item: Item; reason: string }[] = [];
  let calls = 0;
  const lastPerKey = [...new Map(items.map((item) => [String(item[keyName]), item])).values()];

  await mapConcurrently(chunk(lastPerKey, BATCH_WRITE_LIMIT), 4, async (batch) => {
    let pending: Item[] = batch;
    for (let attempt = 1; pending.length > 0; attempt++) {
      calls += 1;
      try {
        const answer = await client.send(
          new BatchWriteCommand({ RequestItems: { [table]: pending.map((item) => ({ PutRequest: { Item: item } })) } }),
        );
        pending = (answer.UnprocessedItems?.[table] ?? []).map((request) => request.PutRequest!.Item as Item);
        if (pending.length > 0 && attempt >= attempts) {
          unwritten.push(
            ...pending.map((item) => ({ item, reason: `still unprocessed after ${attempts} BatchWriteItem attempts` })),
          );
          pending = [];
        }
      } catch (error) {
        if (attempt >= attempts) {
          const reason = `BatchWriteItem on ${table} failed: ${(error as Error).name}: ${(error as Error).message}`;
          unwritten.push(...pending.map((item) => ({ item, reason })));
          pending = [];
        }
      }
      if (pending.length > 0) await sleep(backoffDelay(attempt, options.baseDelayMs ?? 50));
    }
  });
  return { unwritten, calls };
}
