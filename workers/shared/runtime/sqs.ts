/**
 * Sending to SQS in batches of ten (SendMessageBatch), with the entries SQS could not take
 * retried with backoff, and a per-message outcome so each failure goes back to the record that
 * produced it.
 */
import {
  type MessageAttributeValue,
  type SendMessageBatchRequestEntry,
  SendMessageBatchCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import { backoffDelay, chunk, mapConcurrently, sleep } from "./retry";

/** SQS takes at most ten messages per SendMessageBatch. */
export const SQS_BATCH_LIMIT = 10;

/** Attempts per message when the caller gives none: the first and REQ-007's two retries. */
export const SEND_ATTEMPTS = 3;

export interface OutgoingMessage {
  /** Identifies the message in the outcome (the producing record's id, say). */
  readonly id: string;
  readonly body: string;
  /** FIFO queues: the message group (ordering per group). */
  readonly groupId?: string;
  /** FIFO queues: SQS drops a second message with this id within five minutes. */
  readonly deduplicationId?: string;
  /**
   * Message attributes, by name: a string is a String attribute (the correlation id, say); an
   * attribute in SQS's own shape is sent as it is (a message's attributes passed on unchanged).
   */
  readonly attributes?: Readonly<Record<string, string | MessageAttributeValue>>;
}

export interface SendOptions {
  /** Attempts per message, the first included. @default SEND_ATTEMPTS */
  readonly attempts?: number;
  /** @default 50 */
  readonly baseDelayMs?: number;
  /**
   * Send the batches one after another, so the messages of a FIFO group reach the queue in
   * order; otherwise up to four batches are in flight at once.
   * @default false
   */
  readonly ordered?: boolean;
}

export interface SendOutcome {
  /** Messages SQS did not take, with why. */
  readonly failed: { readonly id: string; readonly reason: string }[];
  /** SendMessageBatch calls made. */
  readonly calls: number;
}

/** Attributes in SQS's shape, strings as String attributes. */
function messageAttributes(
  attributes: Readonly<Record<string, string | MessageAttributeValue>>,
): Record<string, MessageAttributeValue> {
  return Object.fromEntries(
    Object.entries(attributes).map(([name, value]) => [
      name,
      typeof value === "string" ? { DataType: "String", StringValue: value } : value,
    ]),
  );
}

/** Sends `messages` to the queue; never throws for a failed message, reports it. */
export async function sendMessages(
  client: SQSClient,
  queueUrl: string,
  messages: readonly OutgoingMessage[],
  options: SendOptions = {},
): Promise<SendOutcome> {
  const attempts = options.attempts ?? SEND_ATTEMPTS;
  const failed: { id: string; reason: string }[] = [];
  let calls = 0;

  const sendBatch = async (batch: readonly OutgoingMessage[]) => {
    let pending = batch.map((message, index) => ({ message, entryId: `m${index}` }));
    for (let attempt = 1; pending.length > 0; attempt++) {
      const entries: SendMessageBatchRequestEntry[] = pending.map(({ message, entryId }) => ({
        Id: entryId,
        MessageBody: message.body,
        MessageGroupId: message.groupId,
        MessageDeduplicationId: message.deduplicationId,
        MessageAttributes: message.attributes && messageAttributes(message.attributes),
      }));
      let retry: typeof pending = [];
      try {
        calls += 1;
        const answer = await client.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
        for (const entry of answer.Failed ?? []) {
          const item = pending.find((candidate) => candidate.entryId === entry.Id);
          if (!item) continue;
          const reason = `SQS refused the message: ${entry.Code}${entry.Message ? `: ${entry.Message}` : ""}`;
          if (entry.SenderFault || attempt >= attempts) failed.push({ id: item.message.id, reason });
          else retry.push(item);
        }
      } catch (error) {
        const reason = `SendMessageBatch to ${queueUrl} failed: ${(error as Error).name}: ${(error as Error).message}`;
        if (attempt >= attempts) failed.push(...pending.map(({ message }) => ({ id: message.id, reason })));
        else retry = pending;
      }
      pending = retry;
      if (pending.length > 0) await sleep(backoffDelay(attempt, options.baseDelayMs ?? 50));
    }
  };

  await mapConcurrently(chunk(messages, SQS_BATCH_LIMIT), options.ordered ? 1 : 4, sendBatch);
  return { failed, calls };
}
