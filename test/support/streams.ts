/**
 * Kinesis records built from the fixtures in test/fixtures/events, the scoring queues' messages
 * read back as a consumer reads them, and the ways SQS and DynamoDB misbehave, for the stream and
 * table workers' tests.
 */
import { createHash } from "node:crypto";
import type { Message } from "@aws-sdk/client-sqs";
import { type ActivityMessage, activityMessageSchema } from "../../workers/shared/scoring/activity";
import { type Interception, operationOf, type RecordedRequest } from "./http";

export interface KinesisFixtureRecord {
  kinesis: {
    kinesisSchemaVersion: string;
    partitionKey: string;
    sequenceNumber: string;
    data: string;
    approximateArrivalTimestamp?: number;
  };
  eventSource: string;
  eventVersion: string;
  eventID: string;
  eventName: string;
  invokeIdentityArn: string;
  awsRegion: string;
  eventSourceARN: string;
}

export interface KinesisFixtureEvent {
  Records: KinesisFixtureRecord[];
}

/** The JSON a Kinesis record carries. */
export function payloadOf(record: KinesisFixtureRecord): unknown {
  return JSON.parse(Buffer.from(record.kinesis.data, "base64").toString("utf8"));
}

const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** A shard position: 56 digits like Kinesis's, increasing with `index`. */
export const sequenceNumber = (index: number) =>
  `4965782840918770152001999524250839011995335832${String(index).padStart(10, "0")}`;

/** The shard positions at `indexes`. */
export const seqs = (indexes: readonly number[]) => indexes.map(sequenceNumber);

/**
 * The activity a scoring-queue message carries, as its producer wrote it (so a field the producer
 * left out stays out), after checking it as its consumer checks it.
 */
export function bodyOf(message: Message): ActivityMessage {
  const body = JSON.parse(message.Body!) as ActivityMessage;
  activityMessageSchema().parse(body);
  return body;
}

/** A system attribute of a received message (MessageGroupId, MessageDeduplicationId, …). */
export const attribute = (message: Message, name: string) => message.Attributes?.[name as keyof Message["Attributes"]];

/** SHA-256 of the text's UTF-8 bytes, in hex, as the workers derive deduplication ids. */
export const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

export interface RecordOptions {
  /** `data` exactly as given (not JSON-encoded, not base64-encoded). */
  readonly rawData?: string;
  /** Arrival time in epoch seconds; null leaves it out. Defaults to the template's. */
  readonly arrival?: number | null;
}

/** The template record at shard position `index`, carrying `payload` (JSON) instead. */
export function recordLike(
  template: KinesisFixtureRecord,
  index: number,
  payload: unknown,
  options: RecordOptions = {},
): KinesisFixtureRecord {
  const seq = sequenceNumber(index);
  const kinesis = {
    ...template.kinesis,
    sequenceNumber: seq,
    data: options.rawData ?? base64(JSON.stringify(payload)),
  };
  if (options.arrival === null) delete kinesis.approximateArrivalTimestamp;
  else if (options.arrival !== undefined) kinesis.approximateArrivalTimestamp = options.arrival;
  return { ...template, kinesis, eventID: `shardId-000000000000:${seq}` };
}

type SendEntry = { Id: string; MessageBody: string; MessageGroupId?: string; MessageDeduplicationId?: string };

const AMZ_JSON_1_0 = { "content-type": "application/x-amz-json-1.0" };

export interface Refusal {
  /** The entries SQS refuses. */
  readonly pick: (entry: SendEntry) => boolean;
  /** True: the message itself is at fault (not retried); false: SQS could not take it for now. */
  readonly senderFault: boolean;
  readonly code?: string;
  /** How many times each picked entry is refused. @default always */
  readonly times?: number;
}

/**
 * SQS refusing some SendMessageBatch entries, as `refusals` pick them (the first that picks an
 * entry decides): the others are forwarded to the queue, the refused come back in `Failed` as
 * SQS reports them.
 */
export function refuseEntries(...refusals: readonly Refusal[]): (request: RecordedRequest) => Interception | undefined {
  const counts = new Map<string, number>();
  const failed = (entry: SendEntry, refusal: Refusal) => ({
    Id: entry.Id,
    SenderFault: refusal.senderFault,
    Code: refusal.code ?? (refusal.senderFault ? "InvalidParameterValue" : "InternalError"),
    Message: refusal.senderFault ? "Value for parameter MessageBody is invalid." : "We encountered an internal error.",
  });
  return (request) => {
    if (operationOf(request) !== "SendMessageBatch") return undefined;
    const body = JSON.parse(request.body) as { QueueUrl: string; Entries: SendEntry[] };
    const refused: { entry: SendEntry; refusal: Refusal }[] = [];
    for (const entry of body.Entries) {
      const refusal = refusals.find((candidate) => candidate.pick(entry));
      const count = counts.get(entry.MessageBody) ?? 0;
      if (!refusal || count >= (refusal.times ?? Number.POSITIVE_INFINITY)) continue;
      counts.set(entry.MessageBody, count + 1);
      refused.push({ entry, refusal });
    }
    if (refused.length === 0) return undefined;
    const answers = refused.map(({ entry, refusal }) => failed(entry, refusal));
    const passed = body.Entries.filter((entry) => !refused.some((item) => item.entry === entry));
    if (passed.length === 0) return { answer: { status: 200, headers: AMZ_JSON_1_0, body: { Successful: [], Failed: answers } } };
    return {
      forwardBody: JSON.stringify({ ...body, Entries: passed }),
      rewriteAnswer: (text) => {
        const answer = JSON.parse(text) as { Successful?: unknown[]; Failed?: unknown[] };
        return JSON.stringify({ ...answer, Failed: [...(answer.Failed ?? []), ...answers] });
      },
    };
  };
}

type ServiceError = { type: string; message: string };
type Misbehaviour = (
  operations: readonly string[],
  error: ServiceError,
  when?: (request: RecordedRequest) => boolean,
) => (request: RecordedRequest) => Interception | undefined;

/** Every request for `operations` that `when` picks (all, by default) answered with HTTP `status` and `error`. */
function answering(status: number): Misbehaviour {
  return (operations, error, when = () => true) =>
    (request) =>
      operations.includes(operationOf(request) ?? "") && when(request)
        ? { answer: { status, headers: AMZ_JSON_1_0, body: { __type: error.type, message: error.message } } }
        : undefined;
}

/** A service down: the requests picked answer HTTP 500 in the service's error shape. */
export const serviceDown = answering(500);

/** A service refusing a request: the requests picked answer HTTP 400 with the error given. */
export const serviceRefuses = answering(400);

export const SQS_INTERNAL_ERROR = { type: "com.amazonaws.sqs#InternalError", message: "We encountered an internal error." };
export const DYNAMO_INTERNAL_ERROR = {
  type: "com.amazonaws.dynamodb.v20120810#InternalServerError",
  message: "Internal server error",
};
export const DYNAMO_ITEM_TOO_LARGE = {
  type: "com.amazonaws.dynamodb.v20120810#ValidationException",
  message: "Item size has exceeded the maximum allowed size",
};
