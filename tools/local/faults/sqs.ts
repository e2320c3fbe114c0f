/**
 * SQS's faults at the wire, as fault rules (faults/proxy.ts) for the `sqs` endpoint: SendMessageBatch
 * answered with a share of its entries in `Failed`, those entries taken out of the request so they
 * are really not sent. SQS answers so when it cannot take an entry for now (`SenderFault: false`:
 * send it again); the sender retries the entry, and a sender that gives up fails the record that
 * produced it, which goes back to its stream.
 */
import { createHash } from "node:crypto";
import { awsOperation, jsonAnswer, jsonInput, jsonOutput, type SqsBatchFailure, sqsEntries } from "./awsJson";
import type { FaultAction, ProxiedResponse } from "./proxy";
import { evenShare, type TrackedRule } from "./share";

/** A SendMessageBatch entry as a rule sees it. */
export interface SendEntry {
  /** The queue's URL as the sender gave it. */
  readonly queueUrl: string;
  readonly body: string;
  readonly groupId?: string;
  readonly deduplicationId?: string;
  /** String message attributes by name. */
  readonly attributes: Readonly<Record<string, string>>;
  /** Its place among the call's entries (from 0), and how many the call has. */
  readonly index: number;
  readonly of: number;
}

export interface FailedEntriesOptions {
  /** Share (0..1) of the entries refused, each picked the first time it is sent. */
  readonly share: number;
  /**
   * Times an entry picked is refused before it is taken: 1 costs the sender one retry; as many as
   * the sender's attempts (SEND_ATTEMPTS) makes it give up, so its record fails and comes back
   * from its source, and is taken then.
   * @default 1
   */
  readonly times?: number;
  /** Entries picked at most. @default no bound */
  readonly limit?: number;
  /** Which entries may be picked (the scoring queues', not the failure queues'). @default every entry */
  readonly accepts?: (entry: SendEntry) => boolean;
  /** The entry's error: @default `{Code: "InternalError", SenderFault: false}` */
  readonly code?: string;
  readonly senderFault?: boolean;
}

export interface FailedEntriesStats {
  /** Entries picked. */
  readonly picked: number;
  /** Entries answered as failed (picked ones each time, and FIFO entries held behind them). */
  readonly refused: number;
  /** Picked entries sent again after their last refusal, and taken. */
  readonly takenAfter: number;
  /** Picked entries' bodies, in picking order (for a drill to follow their records). */
  readonly pickedBodies: readonly string[];
}

/** What identifies an entry across retries: its FIFO deduplication id, else its body and attributes. */
function entryId(entry: SendEntry): string {
  if (entry.deduplicationId) return `dedup:${entry.deduplicationId}`;
  const text = `${entry.body}\n${JSON.stringify(Object.entries(entry.attributes).sort())}`;
  return `body:${createHash("sha256").update(text).digest("hex")}`;
}

function sendEntry(queueUrl: string, raw: Record<string, unknown>, index: number, of: number): SendEntry {
  const attributes = Object.fromEntries(
    Object.entries((raw.MessageAttributes ?? {}) as Record<string, { StringValue?: unknown }>).flatMap(([name, value]) =>
      typeof value?.StringValue === "string" ? [[name, value.StringValue]] : [],
    ),
  );
  return {
    queueUrl,
    body: String(raw.MessageBody ?? ""),
    ...(typeof raw.MessageGroupId === "string" ? { groupId: raw.MessageGroupId } : {}),
    ...(typeof raw.MessageDeduplicationId === "string" ? { deduplicationId: raw.MessageDeduplicationId } : {}),
    attributes,
    index,
    of,
  };
}

/** The answer with `failures` added to its `Failed` list (an error answer is left as it is). */
function withFailed(answer: ProxiedResponse, failures: readonly SqsBatchFailure[]): ProxiedResponse {
  if (answer.status !== 200) return answer;
  const output = jsonOutput(answer) ?? {};
  const failed = [...((output.Failed as SqsBatchFailure[] | undefined) ?? []), ...failures];
  return { ...answer, body: JSON.stringify({ Successful: [], ...output, Failed: failed }) };
}

/**
 * Refuses `share` of the SendMessageBatch entries (`Failed`, not forwarded). On a FIFO queue the
 * entries of a refused entry's message group behind it in the call are refused too, as their
 * order would otherwise change.
 */
export function failedEntries(options: FailedEntriesOptions): TrackedRule<FailedEntriesStats> {
  const pick = evenShare(options.share);
  const times = options.times ?? 1;
  const failure = (id: string): SqsBatchFailure => ({
    Id: id,
    SenderFault: options.senderFault ?? false,
    Code: options.code ?? "InternalError",
    Message: "We encountered an internal error. Please try again.",
  });
  /** Refusals left of each picked entry. */
  const left = new Map<string, number>();
  const seen = new Set<string>();
  const taken = new Set<string>();
  const pickedBodies: string[] = [];
  let refused = 0;
  let stopped = false;
  return {
    rule(request): FaultAction | undefined {
      if (awsOperation(request) !== "SendMessageBatch") return undefined;
      const input = jsonInput(request);
      const raw = sqsEntries(input);
      if (!input || raw.length === 0) return undefined;
      const queueUrl = String(input.QueueUrl ?? "");
      const heldGroups = new Set<string>();
      const out: Record<string, unknown>[] = [];
      for (const [index, candidate] of raw.entries()) {
        const entry = sendEntry(queueUrl, candidate, index, raw.length);
        const id = entryId(entry);
        const first = !seen.has(id);
        seen.add(id);
        if (
          !stopped &&
          first &&
          (options.limit === undefined || left.size < options.limit) &&
          (options.accepts?.(entry) ?? true) &&
          pick()
        ) {
          left.set(id, times);
          pickedBodies.push(entry.body);
        }
        const refusals = stopped ? 0 : left.get(id);
        const refuse = (refusals !== undefined && refusals > 0) || (entry.groupId !== undefined && heldGroups.has(entry.groupId));
        if (refuse) {
          if (refusals !== undefined && refusals > 0) left.set(id, refusals - 1);
          if (entry.groupId !== undefined) heldGroups.add(entry.groupId);
          out.push(candidate);
        } else if (left.has(id)) {
          if (left.get(id) === 0 || stopped) taken.add(id);
        }
      }
      if (out.length === 0) return undefined;
      refused += out.length;
      const failures = out.map((entry) => failure(String(entry.Id)));
      if (out.length === raw.length)
        return { kind: "respond", ...jsonAnswer(request.service, { Successful: [], Failed: failures }) };
      return {
        kind: "rewrite",
        request: () => Buffer.from(JSON.stringify({ ...input, Entries: raw.filter((entry) => !out.includes(entry)) })),
        response: (answer) => withFailed(answer, failures),
      };
    },
    stats: () => ({ picked: left.size, refused, takenAfter: taken.size, pickedBodies: [...pickedBodies] }),
    stop: () => void (stopped = true),
  };
}
