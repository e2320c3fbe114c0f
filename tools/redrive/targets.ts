/**
 * The queues of a planned stack that `npm run redrive` can empty, read from the stack's wiring:
 *
 * - a dead-letter queue, named by another queue's redrive policy: its messages go back to that
 *   source queue;
 * - a stream mapping's on-failure destination: its Kinesis failure records are resolved to the
 *   records and re-delivered to the function (Kafka's are reported), and the records the workers
 *   parked there themselves are invoked again one by one;
 * - an asynchronous invocation's on-failure destination (the import workers'): each event is
 *   invoked again, asynchronously.
 *
 * `--from` names one by its physical name, or by its short name (after
 * `<productCode>-<env>-<region>-`, with or without `.fifo`); `--region` picks between two regions'
 * queues of the same short name.
 */
import type { AsyncInvokeConfig, PlannedQueue, StreamMapping, Wiring } from "../local/wiring";

export type RedriveTarget =
  | { readonly kind: "deadLetter"; readonly queue: PlannedQueue; readonly source: PlannedQueue }
  | { readonly kind: "streamFailures"; readonly queue: PlannedQueue; readonly mappings: readonly StreamMapping[] }
  | { readonly kind: "asyncFailures"; readonly queue: PlannedQueue; readonly configs: readonly AsyncInvokeConfig[] };

/** The region of an ARN (`arn:aws:<service>:<region>:…`). */
export const regionOfArn = (arn: string): string => arn.split(":")[3] ?? "";

/** A queue's name after `<productCode>-<env>-<region>-`; the whole name when it has no such prefix. */
export function shortName(queue: PlannedQueue): string {
  const marker = `-${regionOfArn(queue.arn)}-`;
  const at = queue.name.indexOf(marker);
  return at < 0 ? queue.name : queue.name.slice(at + marker.length);
}

/** Every queue of the wiring that can be redriven, dead-letter queues first. */
export function redriveTargets(wiring: Wiring): RedriveTarget[] {
  const byArn = new Map(wiring.queues.map((queue) => [queue.arn, queue]));
  const targets: RedriveTarget[] = [];
  for (const source of wiring.queues) {
    const dlq = source.redrive && byArn.get(source.redrive.deadLetterTargetArn);
    if (dlq) targets.push({ kind: "deadLetter", queue: dlq, source });
  }
  const streams = wiring.mappings.filter((mapping): mapping is StreamMapping => mapping.kind !== "sqs" && !!mapping.onFailureArn);
  for (const arn of new Set(streams.map((mapping) => mapping.onFailureArn!))) {
    const queue = byArn.get(arn);
    if (queue) targets.push({ kind: "streamFailures", queue, mappings: streams.filter((m) => m.onFailureArn === arn) });
  }
  const asyncConfigs = wiring.asyncConfigs.filter((config) => !!config.onFailureArn);
  for (const arn of new Set(asyncConfigs.map((config) => config.onFailureArn!))) {
    const queue = byArn.get(arn);
    if (queue) targets.push({ kind: "asyncFailures", queue, configs: asyncConfigs.filter((c) => c.onFailureArn === arn) });
  }
  return targets;
}

/** One line per target, for the listing an unknown name fails with. */
export function describeTarget(target: RedriveTarget): string {
  const what =
    target.kind === "deadLetter"
      ? `dead-letter queue of ${target.source.name}`
      : target.kind === "streamFailures"
        ? `on-failure destination of ${target.mappings.length} stream mapping(s)`
        : `on-failure destination of ${target.configs.map((config) => config.functionName).join(", ")}'s asynchronous invocations`;
  return `${target.queue.name} (${shortName(target.queue)}, ${regionOfArn(target.queue.arn)}): ${what}`;
}

export class UnknownQueueError extends Error {}

/** The target `from` names; throws UnknownQueueError, listing the stack's targets, when none or two do. */
export function findTarget(targets: readonly RedriveTarget[], from: string, region?: string): RedriveTarget {
  const inRegion = targets.filter((target) => region === undefined || regionOfArn(target.queue.arn) === region);
  const bare = (name: string) => name.replace(/\.fifo$/, "");
  const exact = inRegion.filter((target) => target.queue.name === from);
  const matches = exact.length > 0 ? exact : inRegion.filter((target) => bare(shortName(target.queue)) === bare(from));
  if (matches.length === 1) return matches[0]!;
  const listing = targets.map((target) => `  ${describeTarget(target)}`).join("\n");
  if (matches.length > 1) {
    const regions = matches.map((target) => regionOfArn(target.queue.arn)).join(" and ");
    throw new UnknownQueueError(
      `--from ${from} names a queue in ${regions}: add --region. The queues that can be redriven:\n${listing}`,
    );
  }
  const where = region === undefined ? "" : ` in ${region}`;
  throw new UnknownQueueError(
    `--from ${from}: no queue of this name${where} can be redriven. The queues that can be redriven:\n${listing}`,
  );
}
