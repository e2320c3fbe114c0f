/**
 * A parked record on a stream mapping's failure queue, redriven: a poison record its worker parked
 * itself (workers/shared/runtime/parking.ts), carrying the record as Lambda delivered it.
 *
 * - The worker's function is found from the document through the plan's mappings, as for
 *   Lambda's pointers: the Kinesis mapping of its stream (`source.eventSourceARN`), or the Kafka
 *   mapping of its topic, whose function is the document's worker and whose on-failure
 *   destination is this queue. A document naming none is left.
 * - The function is invoked (RequestResponse) with a one-record event in Lambda's shape for that
 *   source kind, built from `record`: `{Records: [record]}` for Kinesis, the self-managed Kafka
 *   event with the record under `<topic>-<partition>` for Kafka. Unlike a Kafka pointer, which
 *   only names offsets on a cluster this tool does not reach, the document carries the record.
 * - The function accepts the record when it answers without a function error and with no batch
 *   item failure (judged as the mapping judges it); only then is the message deleted.
 *
 * A record that can still never succeed is parked again by its worker: the function accepts it
 * (it took care of it) and a new document comes to the queue. Within one run the tool leaves a
 * document for a record it already redrove, saying so, rather than redriving it round and round.
 */
import type { LambdaClient } from "@aws-sdk/client-lambda";
import type { ParkedRecord } from "../../workers/shared/runtime/parking";
import { selfManagedKafkaEvent } from "../local/sources/kafka";
import { verdictOf } from "../local/sources/streamDelivery";
import { nameOfArn, type PlannedFunction, type PlannedQueue, type StreamMapping, type Wiring } from "../local/wiring";
import { invokeForAnswer } from "./invoke";

/** Where a parked record was read, for people: `Kinesis <stream> <sequence number>`, `Kafka <topic>-<partition>@<offset>`. */
export function describeParkedSource(source: ParkedRecord["source"]): string {
  return source.kind === "kinesis"
    ? `Kinesis ${source.eventSourceARN ? nameOfArn(source.eventSourceARN) : "(no stream named)"} ${source.sequenceNumber}`
    : `Kafka ${source.topic}-${source.partition}@${source.offset}`;
}

/** One key per record a document names, whoever parked it. */
const recordKey = (document: ParkedRecord) => `${document.worker}|${describeParkedSource(document.source)}`;

/** The mapping and function a parked record goes back to, or why there is none. */
export function targetOf(
  wiring: Wiring,
  queue: PlannedQueue,
  document: ParkedRecord,
): { readonly fn: PlannedFunction; readonly mapping: StreamMapping } | { readonly reason: string } {
  const { source } = document;
  for (const mapping of wiring.mappings) {
    if (mapping.kind !== source.kind || mapping.onFailureArn !== queue.arn) continue;
    const fn = wiring.functions.find((candidate) => candidate.name === mapping.functionName);
    if (fn?.worker !== document.worker) continue;
    if (source.kind === "kinesis" ? mapping.streamArn === source.eventSourceARN : mapping.topic === source.topic) {
      return { fn, mapping };
    }
  }
  const from = source.kind === "kinesis" ? (source.eventSourceARN ?? "(no stream named)") : `topic ${source.topic}`;
  return {
    reason: `the stack has no ${source.kind === "kinesis" ? "Kinesis" : "Kafka"} mapping of ${from} to ${document.worker} failing to ${queue.name}`,
  };
}

/** The one-record event Lambda would deliver the record in. */
export function eventOf(document: ParkedRecord, mapping: StreamMapping): object {
  if (document.source.kind === "kinesis") return { Records: [document.record] };
  const { topic, partition } = document.source;
  // The document's own position names the partition, whatever the record says.
  return selfManagedKafkaEvent(mapping.bootstrapServers, [{ ...document.record, topic, partition }]);
}

export type ParkedDelivery = { readonly accepted: true } | { readonly accepted: false; readonly reason: string };

/** Invokes the function with the record and judges its answer as the mapping would. */
export async function deliverParked(
  lambda: LambdaClient,
  fn: PlannedFunction,
  mapping: StreamMapping,
  document: ParkedRecord,
): Promise<ParkedDelivery> {
  const answer = await invokeForAnswer(lambda, fn.arn, eventOf(document, mapping));
  if (!answer.ok) return { accepted: false, reason: answer.reason };
  const result = answer.result;
  const { source } = document;
  // The one record's identifier, as the function reports it back: a sequence number, or `{partition, offset}`.
  const key = source.kind === "kinesis" ? source.sequenceNumber : `${source.topic}-${source.partition}@${source.offset}`;
  const verdict = verdictOf(
    {
      reportBatchItemFailures: mapping.reportBatchItemFailures,
      idOf: () => key,
      keyOfReported: (identifier) => {
        if (typeof identifier === "string") return identifier;
        const { partition, offset } = (identifier ?? {}) as { partition?: unknown; offset?: unknown };
        return typeof partition === "string" && offset !== undefined ? `${partition}@${String(offset)}` : undefined;
      },
    },
    [document],
    { result },
  );
  if (verdict.kind === "ok") return { accepted: true };
  return {
    accepted: false,
    reason: verdict.kind === "partial" ? "the function reported the record failed" : "the function's answer fails the record",
  };
}

/** The records redriven in one run, so a record parked again in it is not redriven again. */
export function redrivenInRun() {
  const keys = new Set<string>();
  return {
    seen: (document: ParkedRecord) => keys.has(recordKey(document)),
    add: (document: ParkedRecord) => void keys.add(recordKey(document)),
  };
}
