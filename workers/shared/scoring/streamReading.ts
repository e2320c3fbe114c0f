/**
 * What the stream enqueue workers' readers share: what a record means for scoring, and the
 * decoding every reader does before its own rule (the JSON a Kinesis record carries, a DynamoDB
 * change, an event's own time). Pure: each worker's reader decides, the batch loop does the I/O.
 */
import {
  createDynamoChangeDecoder,
  type Decoded,
  decodeKinesisData,
  type DynamoChange,
  type KinesisRecord,
} from "../runtime/records";
import { utcDay } from "../runtime/values";

/** What one stream record means for scoring. */
export type StreamReading =
  | {
      readonly kind: "activity";
      readonly globalUserId: string;
      /** The event's own time, as the event gives it (used when it is a valid ISO 8601 date-time). */
      readonly timestamp?: unknown;
      /** What identifies the producing record, when not the record's stream position (hashed into the FIFO deduplication id). */
      readonly identity?: string;
      /** The correlation id the record carries, as it carries it (checked by the correlation rule, which replaces a bad one). */
      readonly correlationId?: unknown;
    }
  | { readonly kind: "skip"; readonly reason: string }
  | { readonly kind: "fail"; readonly reason: string };

/**
 * Reads one Kinesis record (its `data` still encoded). Each worker builds its reader once, with
 * its schemas, at cold start.
 */
export type StreamReader = (record: KinesisRecord) => StreamReading;

// RFC 3339: a date, a time and a zone (Z or ±hh:mm).
const ISO_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(?:Z|([+-])(\d{2}):(\d{2}))$/i;

/**
 * The instant an ISO 8601 date-time with a zone names, or undefined when it is not one or names
 * no real day or time. Computed from its parts: Date.parse rolls 2026-02-30 over to 2 March.
 */
export function parseIsoDateTime(value: unknown): Date | undefined {
  if (typeof value !== "string") return undefined;
  const match = ISO_DATE_TIME.exec(value);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second = "0", fraction = "", sign, offsetHour = "0", offsetMinute = "0"] = match;
  const local = utcDay(Number(year), Number(month), Number(day));
  if (!local) return undefined;
  if (Number(hour) > 23 || Number(minute) > 59 || Number(second) > 59) return undefined;
  if (Number(offsetHour) > 23 || Number(offsetMinute) > 59) return undefined;
  local.setUTCHours(Number(hour), Number(minute), Number(second), Number(fraction.slice(0, 3).padEnd(3, "0")));
  const offsetMs = (sign === "-" ? -1 : 1) * (Number(offsetHour) * 60 + Number(offsetMinute)) * 60_000;
  const instant = new Date(local.getTime() - offsetMs);
  // Only what ISO 8601 writes with four-digit years, as the queues' messages carry it.
  const utcYear = instant.getUTCFullYear();
  return utcYear >= 0 && utcYear <= 9999 ? instant : undefined;
}

/** Reads the JSON document a Kinesis record carries with `read`; a record whose data is not base64 JSON fails. */
export function readJson(record: KinesisRecord, read: (data: unknown) => StreamReading): StreamReading {
  const data = decodeKinesisData(record);
  return data.ok ? read(data.value) : { kind: "fail", reason: data.reason };
}

/**
 * The activity of a decoded event (its fan, its own time and the correlation id it carries, if
 * any), or the failure saying why it did not decode.
 */
export function activityFrom<T>(
  decoded: Decoded<T>,
  globalUserId: (value: T) => string,
  timestamp: (value: T) => unknown,
  correlationId: (value: T) => unknown = () => undefined,
): StreamReading {
  if (!decoded.ok) return { kind: "fail", reason: decoded.reason };
  const carried = correlationId(decoded.value);
  return {
    kind: "activity",
    globalUserId: globalUserId(decoded.value),
    timestamp: timestamp(decoded.value),
    ...(carried === undefined ? {} : { correlationId: carried }),
  };
}

/**
 * Builds a reader of the DynamoDB change records a table streams to Kinesis (the decoder once, at
 * cold start): a record that is not such a change fails, saying why; `read` decides the rest.
 */
export function createDynamoChangeReader(read: (change: DynamoChange) => StreamReading): StreamReader {
  const decodeChange = createDynamoChangeDecoder();
  return (record) =>
    readJson(record, (data) => {
      const change = decodeChange(data);
      return change.ok ? read(change.value) : { kind: "fail", reason: change.reason };
    });
}
