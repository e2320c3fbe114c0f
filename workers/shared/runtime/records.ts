/**
 * Decoding the records Lambda delivers: Kinesis records (base64 JSON), DynamoDB change records
 * carried in them (DynamoDB → Kinesis streaming destination) and SQS messages. Each record is
 * decoded on its own: a malformed one is a failure of that record, with a reason saying what
 * was wrong, never of the batch.
 */
import { unmarshall } from "@aws-sdk/util-dynamodb";
import { z } from "../zod";
import { describeIssues } from "./issues";

export type Decoded<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** A Kinesis event as Lambda delivers it; only what the workers read is required. */
export const kinesisEventSchema = () =>
  z.object({
    Records: z.array(
      z.object({
        kinesis: z.object({
          data: z.string(),
          sequenceNumber: z.string().check(z.minLength(1)),
          partitionKey: z.optional(z.string()),
          approximateArrivalTimestamp: z.optional(z.number()),
        }),
        eventID: z.optional(z.string()),
        eventSourceARN: z.optional(z.string()),
      }),
    ),
  });
export type KinesisEvent = z.infer<ReturnType<typeof kinesisEventSchema>>;
export type KinesisRecord = KinesisEvent["Records"][number];

/** An SQS event as Lambda delivers it. */
export const sqsEventSchema = () =>
  z.object({
    Records: z.array(
      z.object({
        messageId: z.string().check(z.minLength(1)),
        body: z.string(),
        attributes: z.looseObject({ MessageGroupId: z.optional(z.string()), ApproximateReceiveCount: z.optional(z.string()) }),
        /** `{ <name>: { stringValue, dataType, … } }`; read with messageAttributeString. */
        messageAttributes: z.optional(z.record(z.string(), z.unknown())),
        eventSourceARN: z.optional(z.string()),
      }),
    ),
  });
export type SqsEvent = z.infer<ReturnType<typeof sqsEventSchema>>;
export type SqsRecord = SqsEvent["Records"][number];

/**
 * The value of a message's String attribute `name` as Lambda delivers it
 * (`messageAttributes.<name>.stringValue`), undefined when absent; a value of another shape comes
 * back as it is, for the caller's check to refuse.
 */
export function messageAttributeString(record: SqsRecord, name: string): unknown {
  const attribute = record.messageAttributes?.[name];
  if (attribute === undefined || attribute === null) return undefined;
  return typeof attribute === "object" && "stringValue" in attribute ? attribute.stringValue : attribute;
}

/** Parses the event's envelope; an event that is not of the shape is a fault of the wiring, thrown. */
export function parseEvent<T>(schema: z.core.$ZodType<T>, event: unknown, worker: string, kind: string): T {
  const parsed = z.safeParse(schema, event);
  if (parsed.success) return parsed.data;
  const problems = describeIssues(parsed.error, "(event)");
  throw new Error(`${worker}: not a ${kind} event: ${problems.slice(0, 5).join("; ")}`);
}

/** JSON text, parsed, or why not. */
export function decodeJson(text: string, what: string): Decoded<unknown> {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, reason: `${what} is not JSON (${(error as Error).message})` };
  }
}

/** The JSON document a Kinesis record carries in `data`, or why not. */
export function decodeKinesisData(record: KinesisRecord): Decoded<unknown> {
  const { data } = record.kinesis;
  if (!BASE64.test(data)) return { ok: false, reason: "data is not base64" };
  return decodeJson(Buffer.from(data, "base64").toString("utf8"), "data");
}

/**
 * The JSON document that base64 text carries (a Kafka record's value, say), or why not. The bytes
 * must be UTF-8: bytes that are not are refused, not read as replacement characters.
 */
export function decodeBase64Json(encoded: string, what: string): Decoded<unknown> {
  if (!BASE64.test(encoded)) return { ok: false, reason: `${what} is not base64` };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(encoded, "base64"));
  } catch {
    return { ok: false, reason: `${what} is not UTF-8` };
  }
  return decodeJson(text, what);
}

/** Validates `value` against `schema`, or says which fields were wrong. */
export function decodeWith<T>(schema: z.core.$ZodType<T>, value: unknown, what: string): Decoded<T> {
  const parsed = z.safeParse(schema, value);
  if (parsed.success) return { ok: true, value: parsed.data };
  const problems = describeIssues(parsed.error, "(root)");
  return { ok: false, reason: `${what} is not as expected: ${problems.slice(0, 3).join("; ")}` };
}

/** A DynamoDB change record, its images unmarshalled to plain objects. */
export interface DynamoChange {
  readonly eventID: string;
  readonly eventName: "INSERT" | "MODIFY" | "REMOVE";
  readonly userIdentity?: { readonly type?: string; readonly principalId?: string } | null;
  readonly keys: Record<string, unknown>;
  readonly newImage?: Record<string, unknown>;
  readonly oldImage?: Record<string, unknown>;
  /** When DynamoDB made the change, in milliseconds since the epoch, when given. */
  readonly changedAt?: number;
}

/** Builds the decoder of DynamoDB change records (as the Kinesis streaming destination writes them). */
export function createDynamoChangeDecoder() {
  const attributeMap = z.record(z.string(), z.record(z.string(), z.unknown()));
  const schema = z.object({
    eventID: z.string().check(z.minLength(1)),
    eventName: z.enum(["INSERT", "MODIFY", "REMOVE"]),
    userIdentity: z.nullish(z.object({ type: z.optional(z.string()), principalId: z.optional(z.string()) })),
    eventSource: z.optional(z.literal("aws:dynamodb")),
    dynamodb: z.object({
      Keys: attributeMap,
      NewImage: z.optional(attributeMap),
      OldImage: z.optional(attributeMap),
      ApproximateCreationDateTime: z.optional(z.number()),
      ApproximateCreationDateTimePrecision: z.optional(z.enum(["MILLISECOND", "MICROSECOND"])),
    }),
  });
  return function decodeDynamoChange(value: unknown): Decoded<DynamoChange> {
    const decoded = decodeWith(schema, value, "DynamoDB change record");
    if (!decoded.ok) return decoded;
    const { eventID, eventName, userIdentity, dynamodb } = decoded.value;
    try {
      const created = dynamodb.ApproximateCreationDateTime;
      return {
        ok: true,
        value: {
          eventID,
          eventName,
          userIdentity,
          keys: unmarshall(dynamodb.Keys as never),
          newImage: dynamodb.NewImage && unmarshall(dynamodb.NewImage as never),
          oldImage: dynamodb.OldImage && unmarshall(dynamodb.OldImage as never),
          changedAt:
            created === undefined
              ? undefined
              : dynamodb.ApproximateCreationDateTimePrecision === "MICROSECOND"
                ? created / 1000
                : created,
        },
      };
    } catch (error) {
      return { ok: false, reason: `DynamoDB change record has an image that is not DynamoDB JSON (${(error as Error).message})` };
    }
  };
}
