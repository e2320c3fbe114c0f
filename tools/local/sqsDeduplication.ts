/**
 * SQS's five-minute deduplication window for FIFO queues, kept in front of local-aws-sqs.
 *
 * Real SQS drops a FIFO message whose deduplication id it has accepted in the last five minutes,
 * whether or not the first message is still in the queue. local-aws-sqs only compares against the
 * messages it still holds, so once the first copy is deleted a repeat is delivered again. The
 * workers depend on the real rule: a Kinesis batch delivered again after a kill or a partial failure
 * makes the enqueue workers resend with the same deduplication ids. The emulator has no option for
 * it, so each FIFO queue's `setRecord` (the one place both SendMessage and SendMessageBatch store a
 * message) is wrapped here: a repeat within the window is answered with the first message's id and
 * sequence number, as SQS answers it, and is not stored.
 */

import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { keepIdleConnections } from "./wire";

/** How long SQS remembers a FIFO deduplication id (Amazon SQS Developer Guide, "Exactly-once processing"). */
export const DEDUPLICATION_WINDOW_MS = 5 * 60_000;

/** What this module needs of local-aws-sqs' queue objects; the emulator publishes no type for them. */
interface EmulatedQueue {
  readonly QueueName: string;
  readonly FifoQueue: boolean;
  readonly DeduplicationScope?: "queue" | "messageGroup";
  setRecord(message: EmulatedMessage, messageId?: string): StoredRecord;
  readonly DelaySeconds: number;
  newRecord(record: EmulatedRecord, delaySeconds: number): HeldRecord;
  getAttributes(names: readonly string[]): Record<string, string> | undefined;
  startMessageMoveTask(task: object): string;
  readonly constructor: { createRecord(fields: object): [EmulatedRecord, string | undefined] };
}

interface HeldRecord {
  delayed: boolean;
}

interface EmulatedMessage {
  readonly MessageBody: string;
  readonly MessageGroupId?: string;
  readonly MessageDeduplicationId?: string;
  readonly MessageAttributes?: object;
  readonly MessageSystemAttributes?: object;
}

interface EmulatedRecord {
  MessageId: string;
  readonly attributes: { readonly SequenceNumber?: string };
}

interface StoredRecord {
  readonly record: EmulatedRecord;
  readonly MD5OfMessageSystemAttributes?: string;
}

/** The emulator's service object: its queues, created and deleted at run time. */
export interface EmulatedSqsService {
  readonly Queues: readonly object[];
}

/**
 * local-aws-sqs on a free loopback port, its FIFO queues keeping the deduplication window: the one
 * way the local system and the tests run SQS. `now` is the window's clock.
 */
export async function startSqsEmulator(windowMs = DEDUPLICATION_WINDOW_MS, now: () => number = Date.now): Promise<Server> {
  const { createRequestHandler } = require("local-aws-sqs") as {
    createRequestHandler(options: object): { service: EmulatedSqsService & { PORT: number }; requestHandler: RequestListener };
  };
  const { service, requestHandler } = createRequestHandler({
    port: 0,
    hostname: "127.0.0.1",
    emulateQueueCreationLifecycle: false,
  });
  const server = createServer((request, response) => {
    keepDeduplicationWindow(service, windowMs, now);
    holdUndelayedMessagesAtOnce(service);
    countVisibleMessagesOnly(service);
    requestHandler(request, response);
  });
  keepIdleConnections(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  // The queue URLs the emulator answers name this port.
  service.PORT = (server.address() as AddressInfo).port;
  return server;
}

interface Accepted {
  readonly messageId: string;
  readonly sequenceNumber?: string;
  readonly until: number;
}

/**
 * Applies `adapt` once to each queue of `service` that `seen` has not met: queues are created by
 * requests, so each adaptation runs before every request is handled, and skips the queues it has.
 */
function adaptNewQueues(service: EmulatedSqsService, seen: WeakSet<object>, adapt: (queue: EmulatedQueue) => void): void {
  for (const queue of service.Queues as readonly EmulatedQueue[]) {
    if (seen.has(queue)) continue;
    seen.add(queue);
    adapt(queue);
  }
}

const wrapped = new WeakSet<object>();

/**
 * Gives every FIFO queue of `service` the deduplication window. Call it before each request is
 * handled: queues are created by requests, and one already wrapped is left as it is.
 */
export function keepDeduplicationWindow(
  service: EmulatedSqsService,
  windowMs = DEDUPLICATION_WINDOW_MS,
  now: () => number = Date.now,
): void {
  adaptNewQueues(service, wrapped, (queue) => {
    // A queue is FIFO or not from its creation on.
    if (!queue.FifoQueue) return;
    const accepted = new Map<string, Accepted>();
    const store = queue.setRecord.bind(queue);
    queue.setRecord = (message, messageId) => {
      const id = message.MessageDeduplicationId;
      if (id === undefined) return store(message, messageId);
      const key = queue.DeduplicationScope === "messageGroup" ? `${message.MessageGroupId ?? ""}\u0000${id}` : id;
      const at = now();
      const first = accepted.get(key);
      if (first !== undefined && first.until > at) return repeatOf(queue, message, first);
      const stored = store(message, messageId);
      forgetExpired(accepted, at);
      accepted.set(key, {
        messageId: stored.record.MessageId,
        sequenceNumber: stored.record.attributes.SequenceNumber,
        until: at + windowMs,
      });
      return stored;
    };
  });
}

const undelayed = new WeakSet<object>();

/**
 * A message sent without a delay is on its queue as soon as SendMessage answers, as in SQS.
 * local-aws-sqs marks every new message delayed and lifts that on a timer even for a delay of 0,
 * so until the timer ran a receive did not see the message and ApproximateNumberOfMessages left
 * it out: on a busy machine a queue read just after a send looked empty.
 */
export function holdUndelayedMessagesAtOnce(service: EmulatedSqsService): void {
  adaptNewQueues(service, undelayed, (queue) => {
    const hold = queue.newRecord.bind(queue);
    queue.newRecord = (record, delaySeconds) => {
      const held = hold(record, delaySeconds);
      const delay = Number.isNaN(Number(delaySeconds)) ? queue.DelaySeconds : Number(delaySeconds);
      if (!(delay > 0)) held.delayed = false;
      return held;
    };
  });
}

const countingVisible = new WeakSet<object>();
const VISIBLE = "ApproximateNumberOfMessages";
const IN_FLIGHT = "ApproximateNumberOfMessagesNotVisible";

/**
 * ApproximateNumberOfMessages counts the messages available for retrieval, as in SQS. local-aws-sqs
 * counts every message that is not delayed, in flight or not, so a depth read as visible plus
 * in flight (ApproximateNumberOfMessagesNotVisible) counted a message being received twice.
 * The emulator's own message-move task computes what it has to move as its count less the
 * messages in flight, so it reads the emulator's count unchanged.
 */
export function countVisibleMessagesOnly(service: EmulatedSqsService): void {
  adaptNewQueues(service, countingVisible, (queue) => {
    const emulatorCount = queue.getAttributes.bind(queue);
    const visibleCount: EmulatedQueue["getAttributes"] = (names) => {
      if (!Array.isArray(names) || !(names.includes(VISIBLE) || names.includes("All"))) return emulatorCount(names);
      const attributes = emulatorCount(names)!;
      const counts = emulatorCount([VISIBLE, IN_FLIGHT])!;
      attributes[VISIBLE] = String(Number(counts[VISIBLE]) - Number(counts[IN_FLIGHT]));
      return attributes;
    };
    queue.getAttributes = visibleCount;
    const startMove = queue.startMessageMoveTask.bind(queue);
    queue.startMessageMoveTask = (task) => {
      queue.getAttributes = emulatorCount;
      try {
        return startMove(task);
      } finally {
        queue.getAttributes = visibleCount;
      }
    };
  });
}

/** The answer to a repeat: the first message's id and sequence number, the repeat's own checksums. */
function repeatOf(queue: EmulatedQueue, message: EmulatedMessage, first: Accepted): StoredRecord {
  const [record, systemAttributesMd5] = queue.constructor.createRecord({
    MessageId: first.messageId,
    MessageBody: message.MessageBody,
    MessageAttributes: message.MessageAttributes,
    MessageGroupId: message.MessageGroupId,
    MessageDeduplicationId: message.MessageDeduplicationId,
    MessageSystemAttributes: message.MessageSystemAttributes,
    SequenceNumber: first.sequenceNumber,
  });
  return systemAttributesMd5 === undefined ? { record } : { record, MD5OfMessageSystemAttributes: systemAttributesMd5 };
}

function forgetExpired(accepted: Map<string, Accepted>, at: number): void {
  // Entries are inserted in time order, so the expired ones are at the front.
  for (const [key, entry] of accepted) {
    if (entry.until > at) return;
    accepted.delete(key);
  }
}
