/**
 * Correlation ids (docs/following-an-activity.md): one id per activity, taken from the source
 * record when it carries a usable one, else made once from what identifies the record, and
 * carried through the scoring queues as the SQS message attribute `correlationId`, stored with the
 * fan record's `lastActivity` and logged at every hop, so one activity can be followed from its
 * stream to its score.
 *
 * A made id is derived, not random: a record Lambda delivers again (a retry, a bisected batch, a
 * second consumer of the stream) is the same record at the same position, so it gets the same id
 * and its lines join those of the first attempt.
 */
import { createHash } from "node:crypto";
import { z } from "../zod";
import { describeIssues } from "./issues";

/** The SQS message attribute (String) that carries the id, and the field a source record may carry it in. */
export const CORRELATION_ID_ATTRIBUTE = "correlationId";

/** Longest id taken from a producer. */
export const MAX_CORRELATION_ID_LENGTH = 128;

/**
 * An id a producer may send: 1–128 characters, letters, digits and `.`, `_`, `:`, `-`, starting
 * with a letter or digit. UUIDs, ULIDs, X-Ray and W3C trace ids fit; nothing that could break a
 * log line or a Logs Insights query (spaces, quotes, control characters) does.
 */
export const correlationIdSchema = () =>
  z
    .string()
    .check(
      z.minLength(1),
      z.maxLength(MAX_CORRELATION_ID_LENGTH),
      z.regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, "expected letters, digits, '.', '_', ':' or '-', starting with a letter or digit"),
    );

/** Hex digits of a made id: 128 bits of sha256, as long as a UUID's. */
const MADE_ID_LENGTH = 32;

/**
 * The id made for a record that carries none: the first 32 hex digits of the sha256 of what
 * identifies it (its parts joined by newlines): for a Kinesis record its source, stream ARN and
 * sequence number; for a Kafka record its topic, partition and offset; for an SQS message
 * without the attribute, `sqs` and its messageId.
 */
export function madeCorrelationId(...identity: readonly string[]): string {
  return createHash("sha256").update(identity.join("\n"), "utf8").digest("hex").slice(0, MADE_ID_LENGTH);
}

/** An activity's id, and where it came from. */
export type Correlation =
  | { readonly id: string; readonly origin: "carried" | "made" }
  /** The record carried an id that is not one (`problem` says why; the value itself is never logged). */
  | { readonly id: string; readonly origin: "replaced"; readonly problem: string };

/**
 * Builds the rule (its schema once, at cold start): the id `carried` by a record when it is one,
 * otherwise one made from `identity`. Absent (undefined, null, empty) is "made"; anything else
 * that is not an id is "replaced", with why.
 */
export function createCorrelationRule() {
  const schema = correlationIdSchema();
  return function correlationOf(carried: unknown, identity: readonly string[]): Correlation {
    if (carried === undefined || carried === null || carried === "")
      return { id: madeCorrelationId(...identity), origin: "made" };
    const parsed = schema.safeParse(carried);
    if (parsed.success) return { id: parsed.data, origin: "carried" };
    const problem =
      typeof carried === "string"
        ? describeIssues(parsed.error, CORRELATION_ID_ATTRIBUTE).join("; ")
        : `${CORRELATION_ID_ATTRIBUTE}: expected a string, got ${Array.isArray(carried) ? "array" : typeof carried}`;
    return { id: madeCorrelationId(...identity), origin: "replaced", problem };
  };
}

export type CorrelationRule = ReturnType<typeof createCorrelationRule>;

/** The message attributes that carry an id on an outgoing SQS message. */
export function correlationAttributes(id: string): Record<string, string> {
  return { [CORRELATION_ID_ATTRIBUTE]: id };
}
