/**
 * A sink that puts change records on a Kinesis stream in as few PutRecords calls as it can: the
 * records of writes made meanwhile wait for the call in flight and go together in the next one,
 * within PutRecords' limits. One call is in flight at a time, so records reach the stream in the
 * order the sink was given them; with the endpoint's ordering (an item's next records only once
 * the sink has taken its previous ones), an item's records are on the stream in write order.
 */
import type { ChangeSink, TableChange } from "./streamingDestination";

/** A PutRecords entry: the record's JSON, on its item's partition key. */
export interface KinesisEntry {
  readonly PartitionKey: string;
  readonly Data: Uint8Array;
}

/** PutRecords takes up to 500 records and 5 MiB (data and partition keys) a call. */
export const PUT_RECORDS_LIMITS = { records: 500, bytes: 5 * 1024 * 1024 } as const;

interface Waiting {
  readonly entries: KinesisEntry[];
  readonly bytes: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * The sink over `putRecords`, which puts one call's entries on the stream (and throws when any is
 * refused: the records of the sink calls it carried are reported to the endpoint as not taken).
 */
export function kinesisSink(
  putRecords: (entries: KinesisEntry[]) => Promise<void>,
  limits: { readonly records: number; readonly bytes: number } = PUT_RECORDS_LIMITS,
): ChangeSink {
  const queue: Waiting[] = [];
  let flushing = false;
  const nextCall = () => {
    const call: Waiting[] = [queue.shift()!];
    let records = call[0]!.entries.length;
    let bytes = call[0]!.bytes;
    while (queue.length > 0 && records + queue[0]!.entries.length <= limits.records && bytes + queue[0]!.bytes <= limits.bytes) {
      const next = queue.shift()!;
      call.push(next);
      records += next.entries.length;
      bytes += next.bytes;
    }
    return call;
  };
  const flush = async () => {
    flushing = true;
    while (queue.length > 0) {
      const call = nextCall();
      try {
        await putRecords(call.flatMap((waiting) => waiting.entries));
        for (const waiting of call) waiting.resolve();
      } catch (error) {
        for (const waiting of call) waiting.reject(error);
      }
    }
    flushing = false;
  };
  return (records: TableChange[]) =>
    new Promise<void>((resolve, reject) => {
      const entries = records.map((record) => ({
        PartitionKey: record.partitionKey,
        Data: Buffer.from(JSON.stringify(record.data), "utf8"),
      }));
      const bytes = entries.reduce((sum, entry) => sum + entry.Data.length + Buffer.byteLength(entry.PartitionKey), 0);
      queue.push({ entries, bytes, resolve, reject });
      if (!flushing) void flush();
    });
}
