/**
 * An SQS event source mapping: pollers receive up to the batch size within the batching window,
 * hand the messages to the function in Lambda's event shape, and delete those that succeeded:
 * all of them, or, with ReportBatchItemFailures, all but those the response names. A failed
 * message stays on the queue, becomes visible again after the queue's visibility timeout, and
 * after the redrive policy's maxReceiveCount receives moves to the dead-letter queue (the local
 * SQS does that, as SQS does). On a FIFO queue each group is processed in order while groups run
 * side by side (see fifoGroups). On demand (a drill's fault), a standard queue's messages are
 * delivered twice, as SQS's at-least-once delivery may (see DuplicateDeliveries).
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  type SQSClient,
} from "@aws-sdk/client-sqs";
import type { InvokeOutcome } from "../lambda/pool";
import type { Report } from "../types";
import type { PlannedFunction, QueueMapping } from "../wiring";
import type { RunningMapping } from "./kinesis";

export interface SqsMappingOptions {
  readonly mapping: QueueMapping;
  readonly fn: PlannedFunction;
  readonly sqs: SQSClient;
  /** The queue's local URL. */
  readonly queueUrl: string;
  readonly invoke: (event: unknown) => Promise<InvokeOutcome>;
  readonly report: Report;
  /** Concurrent pollers (Lambda scales these with the backlog; here, a fixed number). */
  readonly pollers: number;
  /** How long a poller that found the queue empty waits before asking again. @default 100 */
  readonly idleMs?: number;
  /** The switch for delivering messages twice. @default none: each message once */
  readonly duplicates?: DuplicateDeliveries;
}

/**
 * At-least-once delivery, on demand: SQS may deliver a standard queue's message more than once
 * (a copy missed by the delete comes back). With a share set, that share of the messages a
 * standard queue's function completed is made visible again instead of deleted, each message at
 * most once, and is delivered again: same message id and body, a new receipt handle, a receive
 * count one higher. FIFO queues are left alone: SQS delivers their messages once.
 */
export interface DuplicateDeliveries {
  /** Share (0..1) of completed messages delivered a second time; 0 (the default) delivers each once. */
  share: number;
  /** Ids of the messages delivered a second time so far. */
  readonly duplicated: ReadonlySet<string>;
  /** Whether the completed message `id` is to be delivered again (and counts it if so). */
  take(id: string): boolean;
}

/** A switch for one system's SQS mappings, off. */
export function createDuplicateDeliveries(): DuplicateDeliveries {
  const duplicated = new Set<string>();
  let completed = 0;
  return {
    share: 0,
    duplicated,
    take(id) {
      if (this.share <= 0 || duplicated.has(id)) return false;
      // Evenly spread: the n-th completed message is taken when ⌊(n+1)·share⌋ > ⌊n·share⌋.
      const picked = Math.floor((completed + 1) * this.share) > Math.floor(completed * this.share);
      completed += 1;
      if (picked) duplicated.add(id);
      return picked;
    },
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The event Lambda hands a function for SQS messages. Message attributes come as Lambda gives
 * them: `{ stringValue | binaryValue (base64), stringListValues: [], binaryListValues: [], dataType }`.
 */
function sqsEvent(options: SqsMappingOptions, messages: readonly Message[]) {
  return {
    Records: messages.map((message) => ({
      messageId: message.MessageId,
      receiptHandle: message.ReceiptHandle,
      body: message.Body,
      attributes: message.Attributes ?? {},
      messageAttributes: Object.fromEntries(
        Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [
          name,
          {
            ...(value.StringValue === undefined ? {} : { stringValue: value.StringValue }),
            ...(value.BinaryValue === undefined ? {} : { binaryValue: Buffer.from(value.BinaryValue).toString("base64") }),
            stringListValues: [],
            binaryListValues: [],
            dataType: value.DataType,
          },
        ]),
      ),
      md5OfBody: message.MD5OfBody,
      eventSource: "aws:sqs",
      eventSourceARN: options.mapping.queueArn,
      awsRegion: options.fn.region,
    })),
  };
}

/** The messages to delete after an invocation: none if it failed, all but those reported otherwise. */
function succeeded(mapping: QueueMapping, messages: readonly Message[], outcome: InvokeOutcome): Message[] {
  if (outcome.error) return [];
  if (!mapping.reportBatchItemFailures) return [...messages];
  const failures = (outcome.result as { batchItemFailures?: unknown } | null | undefined)?.batchItemFailures;
  if (failures === undefined || failures === null) return [...messages];
  if (!Array.isArray(failures)) return [];
  const ids = new Set(messages.map((message) => message.MessageId));
  const failed = new Set<string>();
  for (const failure of failures) {
    const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    // A response naming a message that is not in the batch is invalid: the whole batch failed.
    if (typeof id !== "string" || !ids.has(id)) return [];
    failed.add(id);
  }
  return messages.filter((message) => !failed.has(message.MessageId!));
}

/**
 * Receives up to the batch size, for as long as the batching window lasts once there is a
 * message. Short polls, with a pause when the queue is empty: the local SQS answers a long poll
 * only when its wait is over, even with messages waiting, and with a visibility timeout shorter
 * than the wait it answers the same message twice in one response.
 */
async function receive(options: SqsMappingOptions, stopping: () => boolean): Promise<Message[]> {
  const { mapping, sqs, queueUrl } = options;
  const byId = new Map<string, Message>();
  const until = Date.now() + mapping.batchingWindowSeconds * 1000;
  while (!stopping()) {
    const answer = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: queueUrl,
        MaxNumberOfMessages: Math.min(10, mapping.batchSize - byId.size),
        WaitTimeSeconds: 0,
        AttributeNames: ["All"],
        MessageSystemAttributeNames: ["All"],
        MessageAttributeNames: ["All"],
      }),
    );
    const received = answer.Messages ?? [];
    // A message received again within the window is one message, under its latest receipt handle.
    for (const message of received) {
      byId.delete(message.MessageId!);
      byId.set(message.MessageId!, message);
    }
    if (byId.size >= mapping.batchSize || (byId.size > 0 && Date.now() >= until)) break;
    if (received.length === 0) await sleep(options.idleMs ?? 100);
  }
  return [...byId.values()];
}

/**
 * SQS returns no message of a FIFO group while another of it is in flight; the local SQS does not
 * hold a group back, so the mapping does. A FIFO queue has one poller, batch after batch, and a
 * group with a message that failed is blocked until that message is visible again: when a failed
 * message of the group is received again, or the visibility timeout since its receive has passed.
 * Messages of the group received meanwhile are put back, to become visible just after it (each
 * such put-back counts as a receive, which SQS would not have made).
 */
function fifoGroups(options: SqsMappingOptions) {
  const blockedUntil = new Map<string, number>();
  /** The messages that failed, by the group they block. */
  const failedOf = new Map<string, Set<string>>();
  let visibilityMs: number | undefined;
  const groupOf = (message: Message) => message.Attributes?.MessageGroupId ?? "";
  const unblock = (group: string) => {
    blockedUntil.delete(group);
    failedOf.delete(group);
  };
  return {
    /** The messages of unblocked groups; the others are put back. */
    async admit(messages: readonly Message[]): Promise<Message[]> {
      const now = Date.now();
      for (const [group, until] of blockedUntil) if (until <= now) unblock(group);
      // A failed message received again is visible again: its group goes on (the time alone, taken
      // after the receive, would hold the group a little past it, costing it a receive).
      for (const message of messages) if (failedOf.get(groupOf(message))?.has(message.MessageId!)) unblock(groupOf(message));
      const held = messages.filter((message) => blockedUntil.has(groupOf(message)));
      for (let at = 0; at < held.length; at += 10) {
        await options.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: held.slice(at, at + 10).map((message, index) => ({
              Id: `h${at + index}`,
              ReceiptHandle: message.ReceiptHandle!,
              VisibilityTimeout: Math.ceil((blockedUntil.get(groupOf(message))! - now) / 1000) + 1,
            })),
          }),
        );
      }
      return messages.filter((message) => !held.includes(message));
    },
    /** Blocks the groups of messages that failed, until they are visible again (received at `receivedAt` or before). */
    async block(failed: readonly Message[], receivedAt: number): Promise<void> {
      if (failed.length === 0) return;
      if (visibilityMs === undefined) {
        const { Attributes } = await options.sqs.send(
          new GetQueueAttributesCommand({ QueueUrl: options.queueUrl, AttributeNames: ["VisibilityTimeout"] }),
        );
        visibilityMs = Number(Attributes?.VisibilityTimeout ?? 30) * 1000;
      }
      for (const message of failed) {
        const group = groupOf(message);
        blockedUntil.set(group, Math.max(blockedUntil.get(group) ?? 0, receivedAt + visibilityMs));
        failedOf.set(group, (failedOf.get(group) ?? new Set()).add(message.MessageId!));
      }
    },
  };
}

/** Starts the mapping's pollers. */
export function startSqsMapping(options: SqsMappingOptions): RunningMapping {
  const { mapping, sqs, report } = options;
  const fifo = mapping.queueArn.endsWith(".fifo") ? fifoGroups(options) : undefined;
  let stopping = false;
  let inFlight = 0;
  const poll = async () => {
    while (!stopping) {
      const received = await receive(options, () => stopping);
      const receivedAt = Date.now();
      const messages = fifo ? await fifo.admit(received) : received;
      if (messages.length === 0) continue;
      inFlight += messages.length;
      report({
        kind: "delivered",
        mapping: mapping.name,
        count: messages.length,
        records: messages.map((message) => message.MessageId!),
      });
      const outcome = await options.invoke(sqsEvent(options, messages));
      const done = succeeded(mapping, messages, outcome);
      const again = fifo ? [] : done.filter((message) => options.duplicates?.take(message.MessageId!));
      const deleted = done.filter((message) => !again.includes(message));
      if (deleted.length > 0) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: deleted.map((message, index) => ({ Id: `m${index}`, ReceiptHandle: message.ReceiptHandle! })),
          }),
        );
      }
      if (again.length > 0) {
        await sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: again.map((message, index) => ({
              Id: `d${index}`,
              ReceiptHandle: message.ReceiptHandle!,
              VisibilityTimeout: 0,
            })),
          }),
        );
      }
      await fifo?.block(
        messages.filter((message) => !done.includes(message)),
        receivedAt,
      );
      inFlight -= messages.length;
    }
  };
  const running = Array.from({ length: fifo ? 1 : options.pollers }, () =>
    poll().catch((error: unknown) => {
      if (!stopping)
        report({ kind: "output", function: options.fn.name, text: `mapping ${mapping.name} stopped: ${String(error)}` });
    }),
  );
  return {
    pending: () => inFlight,
    async stop() {
      stopping = true;
      await Promise.all(running);
    },
  };
}
