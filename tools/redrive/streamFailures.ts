/**
 * A stream mapping's on-failure destination, redriven. Each message is a parked record, which a
 * worker wrote with the record itself (parkedRecords.ts: invoked again with that one record), or
 * a failure record (failureRecords.ts), a pointer to the records Lambda gave up on:
 *
 * - Kinesis: the shard is read from `startSequenceNumber` (GetShardIterator AT_SEQUENCE_NUMBER,
 *   then GetRecords) up to `endSequenceNumber`, and the records the mapping's filter criteria
 *   deliver are re-delivered to the function of `requestContext.functionArn` as one Kinesis event,
 *   exactly as the mapping builds it, with Invoke (RequestResponse). The function's answer is
 *   judged as the mapping judges it: an error fails every record; with ReportBatchItemFailures, the
 *   first record reported and every one after it are still failing (Lambda would retry from there).
 *   The message is deleted only when every record was accepted; otherwise it stays, and the
 *   records still failing are listed. Records past the stream's retention (the first record's
 *   arrival is older than the retention period, or the shard no longer holds the first sequence
 *   number) cannot be read: the message stays, saying so.
 * - Kafka: the records are on the cluster, which this tool does not reach; what the record points
 *   at (topic-partition, offsets, consumer group) is printed and the message stays. (A Kafka record
 *   a worker parked itself carries the record, and is redriven.)
 * - Anything else: reported, never deleted.
 *
 * Re-delivering records the function had already accepted in an earlier attempt (before the one
 * that failed) is absorbed downstream: the activity enqueuers deduplicate by stream ARN and
 * sequence number, scores are written only for a newer ARAI, and a repeated VF login finds the
 * fan's ARAI fresh (docs/flows.md).
 */
import {
  GetRecordsCommand,
  GetShardIteratorCommand,
  type KinesisClient,
  type _Record,
  DescribeStreamSummaryCommand,
} from "@aws-sdk/client-kinesis";
import type { LambdaClient } from "@aws-sdk/client-lambda";
import { DeleteMessageCommand, type Message, type SQSClient } from "@aws-sdk/client-sqs";
import type { ParkedRecord } from "../../workers/shared/runtime/parking";
import { findFunction, functionNameOf } from "../local/invokeApi";
import { isDelivered, kinesisEvent, type ShardRecord } from "../local/sources/kinesis";
import { verdictOf } from "../local/sources/streamDelivery";
import { nameOfArn, type PlannedFunction, type PlannedQueue, type StreamMapping, type Wiring } from "../local/wiring";
import { type KafkaFailure, type KinesisFailure, parseFailureRecord } from "./failureRecords";
import { deliverParked, describeParkedSource, redrivenInRun, targetOf } from "./parkedRecords";
import { invokeForAnswer } from "./invoke";
import { type Handled, type MessageOutcome, outcomeLog, readEach } from "./queueReader";
import { regionOfArn } from "./targets";

export interface StreamClients {
  readonly kinesis: KinesisClient;
  readonly lambda: LambdaClient;
}

export interface StreamFailuresOptions {
  readonly sqs: SQSClient;
  readonly queue: PlannedQueue;
  readonly queueUrl: string;
  readonly wiring: Wiring;
  /** The Kinesis and Lambda clients for a region. */
  readonly clients: (region: string) => StreamClients;
  readonly apply: boolean;
  readonly limit?: number;
  readonly waitSeconds: number;
  readonly print: (line: string) => void;
  /** The time, for the retention check. @default Date.now */
  readonly now?: () => number;
}

/** Why records cannot be re-delivered, or the records (in shard order) the mapping would deliver. */
type ShardRead =
  | { readonly ok: false; readonly reason: string }
  | { readonly ok: true; readonly read: number; readonly records: readonly ShardRecord[] };

const errorText = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error));

/** Reads the shard from the record's first sequence number to its last, as far as retention allows. */
async function readShard(
  kinesis: KinesisClient,
  failure: KinesisFailure,
  mapping: StreamMapping,
  now: number,
): Promise<ShardRead> {
  const info = failure.KinesisBatchInfo;
  // The stream's own account: the SDK resolves the name in the credentials' account (the stack's).
  const streamName = nameOfArn(info.streamArn);
  const start = BigInt(info.startSequenceNumber);
  const end = BigInt(info.endSequenceNumber);
  try {
    const { StreamDescriptionSummary } = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: streamName }));
    const hours = StreamDescriptionSummary?.RetentionPeriodHours ?? 24;
    const arrived = Date.parse(info.approximateArrivalOfFirstRecord);
    if (arrived + hours * 3_600_000 <= now) {
      return {
        ok: false,
        reason: `past retention: the first record arrived ${info.approximateArrivalOfFirstRecord} and ${streamName} keeps records ${hours} h`,
      };
    }
    let { ShardIterator: iterator } = await kinesis.send(
      new GetShardIteratorCommand({
        StreamName: streamName,
        ShardId: info.shardId,
        ShardIteratorType: "AT_SEQUENCE_NUMBER",
        StartingSequenceNumber: info.startSequenceNumber,
      }),
    );
    const read: _Record[] = [];
    let past = false;
    // An empty answer with records still ahead is possible (MillisBehindLatest > 0): read on.
    for (let empty = 0; iterator && !past && empty < 50;) {
      const answer = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 10_000 }));
      iterator = answer.NextShardIterator;
      const records = answer.Records ?? [];
      for (const record of records) {
        if (BigInt(record.SequenceNumber!) > end) past = true;
        else read.push(record);
      }
      if (records.length > 0) empty = 0;
      else if (!answer.MillisBehindLatest) break;
      else empty += 1;
    }
    const first = read[0]?.SequenceNumber;
    if (first === undefined || BigInt(first) !== start) {
      return {
        ok: false,
        reason: `past retention: shard ${info.shardId} of ${streamName} no longer holds sequence number ${info.startSequenceNumber}`,
      };
    }
    if (read.at(-1)!.SequenceNumber !== info.endSequenceNumber) {
      return {
        ok: false,
        reason: `shard ${info.shardId} of ${streamName} ends before sequence number ${info.endSequenceNumber}`,
      };
    }
    const records = read.filter((record) => isDelivered(mapping, record)).map((record) => ({ shardId: info.shardId, record }));
    return { ok: true, read: read.length, records };
  } catch (error) {
    // A trimmed or unknown sequence number, a deleted stream or shard: nothing to read.
    return { ok: false, reason: `cannot read shard ${info.shardId} of ${streamName}: ${errorText(error)}` };
  }
}

type Delivery =
  { readonly accepted: true } | { readonly accepted: false; readonly reason: string; readonly failing: readonly ShardRecord[] };

/** Invokes the function with the records and judges its answer as the mapping would. */
async function deliver(
  lambda: LambdaClient,
  failure: KinesisFailure,
  fn: PlannedFunction,
  mapping: StreamMapping,
  records: readonly ShardRecord[],
): Promise<Delivery> {
  const answer = await invokeForAnswer(lambda, failure.requestContext.functionArn, kinesisEvent(fn, mapping.streamArn, records));
  if (!answer.ok) return { accepted: false, reason: answer.reason, failing: records };
  const result = answer.result;
  const verdict = verdictOf(
    {
      reportBatchItemFailures: mapping.reportBatchItemFailures,
      idOf: (record: ShardRecord) => record.record.SequenceNumber!,
      keyOfReported: (identifier) => (typeof identifier === "string" && identifier !== "" ? identifier : undefined),
    },
    records,
    { result },
  );
  if (verdict.kind === "ok") return { accepted: true };
  if (verdict.kind === "partial") {
    return { accepted: false, reason: "the function reported records failed", failing: records.slice(verdict.from) };
  }
  return { accepted: false, reason: "the function's partial batch response names records not in the batch", failing: records };
}

function describeKafka(failure: KafkaFailure): string {
  const info = failure.KafkaBatchInfo;
  const ranges = Object.entries(info.recordsInfo)
    .map(([partition, offsets]) => `${partition} offsets ${offsets.firstRecordOffset}–${offsets.lastRecordOffset}`)
    .join(", ");
  const group = info.consumerGroupId ? `, consumer group ${info.consumerGroupId}` : "";
  return `Kafka records ${ranges} (${info.batchSize} records${group}) for ${functionNameOf(failure.requestContext.functionArn)}`;
}

/** Redrives (or, in a dry run, reports) the on-failure messages; answers what became of each. */
export async function redriveStreamFailures(options: StreamFailuresOptions): Promise<MessageOutcome[]> {
  const { print, wiring } = options;
  const { outcomes, leave } = outcomeLog(print);
  const redriven = redrivenInRun();

  /** A record a worker parked itself: invoked again, alone, in the event its source delivers it in. */
  const handleParked = async (message: Message, document: ParkedRecord): Promise<Handled> => {
    const messageId = message.MessageId!;
    print(`  ${messageId}: parked by ${document.worker}, ${describeParkedSource(document.source)}: ${document.reason}`);
    const target = targetOf(wiring, options.queue, document);
    if ("reason" in target) return leave(messageId, target.reason);
    if (redriven.seen(document)) {
      return leave(messageId, `${document.worker} parked this record again when it was redriven in this run`);
    }
    if (!options.apply) {
      print(`    would invoke ${target.fn.name} with it`);
      outcomes.push({ messageId, action: "would redeliver", detail: document.reason });
      return "left";
    }
    redriven.add(document);
    const delivery = await deliverParked(options.clients(regionOfArn(target.fn.arn)).lambda, target.fn, target.mapping, document);
    if (!delivery.accepted) return leave(messageId, `${delivery.reason}; still failing`);
    await options.sqs.send(new DeleteMessageCommand({ QueueUrl: options.queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    print(`    re-delivered to ${target.fn.name}: accepted; message deleted`);
    outcomes.push({ messageId, action: "redelivered", detail: "1 record" });
    return "done";
  };

  const handle = async (message: Message): Promise<Handled> => {
    const messageId = message.MessageId!;
    const failure = parseFailureRecord(message.Body);
    if (failure.kind === "parked") return handleParked(message, failure.record);
    if (failure.kind === "unrecognised" || failure.kind === "async") {
      print(`  ${messageId}: not a stream mapping's failure record`);
      return leave(messageId, failure.kind === "async" ? "an asynchronous invocation's failure record" : failure.reason);
    }
    if (failure.kind === "kafka") {
      print(`  ${messageId}: ${describeKafka(failure.record)}`);
      return leave(messageId, "Kafka records cannot be read here: the tool would need the cluster");
    }
    const record = failure.record;
    const info = record.KinesisBatchInfo;
    const functionArn = record.requestContext.functionArn;
    print(
      `  ${messageId}: Kinesis ${nameOfArn(info.streamArn)} ${info.shardId} ${info.startSequenceNumber}…${info.endSequenceNumber} ` +
        `(${info.batchSize} records) for ${functionNameOf(functionArn)}`,
    );
    const fn = findFunction(wiring.functions, functionArn);
    const mapping = wiring.mappings.find(
      (candidate): candidate is StreamMapping =>
        candidate.kind === "kinesis" && candidate.functionName === fn?.name && candidate.streamArn === info.streamArn,
    );
    if (!fn || !mapping) {
      return leave(messageId, `the stack has no Kinesis mapping of ${info.streamArn} to ${functionArn}`);
    }
    const clients = options.clients(regionOfArn(info.streamArn));
    const shard = await readShard(clients.kinesis, record, mapping, (options.now ?? Date.now)());
    if (!shard.ok) return leave(messageId, shard.reason);
    const filtered = shard.read - shard.records.length;
    const counted = filtered > 0 ? ` (of ${shard.read} read; the mapping's filter drops ${filtered})` : "";
    if (shard.records.length !== info.batchSize) {
      print(`    note: ${shard.records.length} records to deliver, the failure record counted ${info.batchSize}`);
    }
    if (!options.apply) {
      print(`    would re-deliver ${shard.records.length} records to ${fn.name}${counted}:`);
      for (const { record: r } of shard.records) print(`      ${r.SequenceNumber} (${r.Data?.length ?? 0} bytes)`);
      outcomes.push({ messageId, action: "would redeliver", detail: `${shard.records.length} records` });
      return "left";
    }
    const delivery = await deliver(options.clients(regionOfArn(functionArn)).lambda, record, fn, mapping, shard.records);
    if (!delivery.accepted) {
      print(`    ${delivery.reason}; still failing:`);
      for (const { record: r } of delivery.failing) print(`      ${r.SequenceNumber}`);
      return leave(messageId, `${delivery.failing.length} of ${shard.records.length} records still failing`);
    }
    await options.sqs.send(new DeleteMessageCommand({ QueueUrl: options.queueUrl, ReceiptHandle: message.ReceiptHandle! }));
    print(`    re-delivered ${shard.records.length} records to ${fn.name}${counted}: all accepted; message deleted`);
    outcomes.push({ messageId, action: "redelivered", detail: `${shard.records.length} records` });
    return "done";
  };

  print(`${options.apply ? "Redriving" : "Dry run: would redrive"} the failure records on ${options.queue.name}`);
  // One message at a time, hidden long enough for the function to run (its timeout) and the shard to be read.
  const longest = Math.max(60, ...wiring.functions.map((fn) => fn.timeoutSeconds));
  await readEach(
    {
      sqs: options.sqs,
      queueUrl: options.queueUrl,
      batch: options.apply ? 1 : 10,
      visibilitySeconds: options.apply ? longest + 120 : 600,
      waitSeconds: options.waitSeconds,
      limit: options.limit,
    },
    handle,
  );
  return outcomes;
}
