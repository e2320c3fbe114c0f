/**
 * The records a worker parked itself (workers/shared/runtime/parking.ts), read back from the
 * failure queue as the tools read them: each message's body through the parked-record reader, its
 * String attributes beside it.
 */
import * as assert from "node:assert/strict";
import type { Message } from "@aws-sdk/client-sqs";
import { type ParkedRecord, readParkedRecord } from "../../workers/shared/runtime/parking";
import type { LogLine } from "./logs";

export interface ParkedMessage {
  readonly document: ParkedRecord;
  /** The message's String attributes, by name. */
  readonly attributes: Readonly<Record<string, string | undefined>>;
}

/** Each message as a parked record; a message that is not one fails the test, saying why. */
export function parkedRecordsOf(messages: readonly Message[]): ParkedMessage[] {
  return messages.map((message) => {
    const reading = readParkedRecord(message.Body);
    assert.ok(reading.ok, `message ${message.MessageId} is not a parked record: ${reading.ok ? "" : reading.reason}`);
    const attributes = Object.fromEntries(
      Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue]),
    );
    return { document: reading.value, attributes };
  });
}

/** The parked records of a Kinesis batch, by sequence number. */
export function parkedBySequenceNumber(messages: readonly Message[]): Map<string, ParkedMessage> {
  return new Map(
    parkedRecordsOf(messages).map((parked) => {
      assert.equal(parked.document.source.kind, "kinesis");
      return [(parked.document.source as { sequenceNumber: string }).sequenceNumber, parked];
    }),
  );
}

/** The `record parked` lines, in order. */
export const parkedLines = (logs: readonly LogLine[]): LogLine[] => logs.filter((line) => line.message === "record parked");
