/**
 * The wiring of one region, as the program builds it: each component registers here what it
 * wires (a worker and its role's statements, a mapping, a queue, a failure destination, an
 * invoke permission, a table's change stream, an API), and the region's alarms and dashboard
 * (components/operations.ts) are built from this record, so they cover what was built and
 * nothing else. The event-flow diagram (tools/offline/diagram.ts) reads the same wiring back from
 * the planned resources; a test checks that the two agree on every stack.
 */
import * as pulumi from "@pulumi/pulumi";
import type { Dependency } from "../workers/shared/runtime/telemetry";
import type { Statement } from "./iam";

/** What a node of the flow is: drawn and alarmed differently. */
export type FlowShape = "worker" | "queue" | "stream" | "table" | "external";

/** A node: a worker by its function's physical name, anything else by the name its ARN ends in. */
export interface FlowNode {
  readonly shape: FlowShape;
  readonly name: string;
}

/**
 * How work moves along an edge: a mapping `delivers` to a worker, a table `streams` its changes,
 * an API or bucket `invokes` a worker, a worker `sends`, `writes` or `starts`, and Lambda hands
 * what it gave up on to a `failures` queue.
 */
export type FlowKind = "delivers" | "streams" | "invokes" | "sends" | "writes" | "starts" | "failures";

export interface Flow {
  readonly from: FlowNode;
  readonly kind: FlowKind;
  readonly to: FlowNode;
}

/** The actions that move work on, and the verb of the edge they draw. */
export const WRITE_ACTIONS: Readonly<Record<string, FlowKind>> = {
  "sqs:SendMessage": "sends",
  "dynamodb:PutItem": "writes",
  "dynamodb:UpdateItem": "writes",
  "dynamodb:BatchWriteItem": "writes",
  "glue:StartWorkflowRun": "starts",
};

/** The last part of an ARN, readable: `…:stream/purchase-stream-qa1` → `purchase-stream-qa1`. */
export function arnName(arn: string): string {
  const resource = arn.split(":").slice(5).join(":");
  return resource.replace(/^(stream|table|workflow|apis)\//, "").replace(/^:+/, "") || arn;
}

/** The shape of the resource an ARN names. */
export function shapeOfArn(arn: string): FlowShape {
  if (arn.startsWith("arn:aws:sqs:")) return "queue";
  if (arn.startsWith("arn:aws:kinesis:")) return "stream";
  if (arn.startsWith("arn:aws:dynamodb:")) return "table";
  return "external";
}

export const arnNode = (arn: string): FlowNode => ({ shape: shapeOfArn(arn), name: arnName(arn) });
/** A Kafka topic has no ARN: it is drawn as a stream named after the topic. */
export const kafkaNode = (topic: string): FlowNode => ({ shape: "stream", name: `kafka ${topic}` });

/** A flow as one line of text, for comparing and listing: `stream purchase-stream delivers worker …`. */
export const flowKey = (flow: Flow): string =>
  `${flow.from.shape} ${flow.from.name} ${flow.kind} ${flow.to.shape} ${flow.to.name}`;

/** A deployed worker. */
export interface RecordedWorker {
  /** The contract's name: the `service` dimension of its metrics. */
  readonly workerName: string;
  /** The function's physical name: the `FunctionName` dimension of Lambda's metrics. */
  readonly functionName: string;
  /** The external dependencies its contract declares. */
  readonly dependencies: readonly Dependency[];
  /** Its role's statements, by policy name. */
  readonly statements: Readonly<Record<string, readonly Statement[]>>;
}

/** An event source mapping. */
export type RecordedMapping =
  | {
      readonly kind: "kinesis" | "sqs";
      readonly functionName: string;
      readonly sourceArn: pulumi.Input<string>;
      readonly failureQueueArn?: pulumi.Input<string>;
    }
  | {
      readonly kind: "kafka";
      readonly functionName: string;
      readonly topic: string;
      readonly failureQueueArn: pulumi.Input<string>;
    };

/** A queue: work queues are consumed, dead-letter queues and failure queues only hold what failed. */
export interface RecordedQueue {
  /** The physical name: the `QueueName` dimension of SQS's metrics. */
  readonly queueName: string;
  readonly role: "work" | "deadLetter" | "failures";
  readonly arn: pulumi.Input<string>;
  readonly url: pulumi.Input<string>;
}

/** A REST API stage: the `ApiName` and `Stage` dimensions of API Gateway's metrics. */
export interface RecordedApi {
  readonly apiName: string;
  readonly stage: string;
}

/** The region's wiring, filled in as the program builds it. */
export class FlowRecord {
  readonly workers: RecordedWorker[] = [];
  readonly mappings: RecordedMapping[] = [];
  readonly queues: RecordedQueue[] = [];
  readonly apis: RecordedApi[] = [];
  /** Functions that answer an AppSync API's authorisation: their duration is alarmed on. */
  readonly authorisers: string[] = [];
  /** Queues an asynchronous invocation of a function goes to once its retries are spent. */
  readonly asyncFailures: { readonly functionName: string; readonly queueArn: pulumi.Input<string> }[] = [];
  /** Who may invoke a function: an API, a bucket, an AppSync API. */
  readonly invokers: { readonly functionName: string; readonly sourceArn: pulumi.Input<string> }[] = [];
  /** Tables whose changes go to a Kinesis stream. */
  readonly tableStreams: { readonly tableName: string; readonly streamArn: pulumi.Input<string> }[] = [];

  constructor(
    /** The region the record is of. */
    readonly region: string,
  ) {}

  /** Every flow of the region, once its ARNs are known. */
  flows(): pulumi.Output<Flow[]> {
    return pulumi
      .output({
        workers: this.workers.map((worker) => ({ functionName: worker.functionName, statements: worker.statements })),
        mappings: this.mappings,
        asyncFailures: this.asyncFailures,
        invokers: this.invokers,
        tableStreams: this.tableStreams,
        deadLetterQueues: this.queues.filter((queue) => queue.role === "deadLetter").map((queue) => queue.arn),
      })
      .apply((wiring) => {
        const flows = new Map<string, Flow>();
        const add = (from: FlowNode, kind: FlowKind, to: FlowNode) => flows.set(flowKey({ from, kind, to }), { from, kind, to });
        const worker = (functionName: string): FlowNode => ({ shape: "worker", name: functionName });
        const failureQueues = new Set([
          ...wiring.mappings.flatMap((mapping) => (mapping.failureQueueArn ? [mapping.failureQueueArn] : [])),
          ...wiring.asyncFailures.map((failure) => failure.queueArn),
          // A dead-letter queue only holds what failed, whoever puts it there (SQS, or lookupArai parking).
          ...wiring.deadLetterQueues,
        ]);
        for (const mapping of wiring.mappings) {
          const source = mapping.kind === "kafka" ? kafkaNode(mapping.topic) : arnNode(mapping.sourceArn);
          add(source, "delivers", worker(mapping.functionName));
        }
        for (const { tableName, streamArn } of wiring.tableStreams)
          add({ shape: "table", name: tableName }, "streams", arnNode(streamArn));
        for (const { functionName, sourceArn } of wiring.invokers) {
          add({ shape: "external", name: arnName(sourceArn) }, "invokes", worker(functionName));
        }
        for (const { functionName, statements } of wiring.workers) {
          for (const statement of Object.values(statements).flat()) {
            const kinds = statement.actions.map((action) => WRITE_ACTIONS[action]).filter((kind) => kind !== undefined);
            if (kinds.length === 0) continue;
            for (const arn of statement.resources) {
              // What goes to a failure destination or dead-letter queue is drawn as failures.
              add(worker(functionName), failureQueues.has(arn) ? "failures" : kinds[0]!, arnNode(arn));
            }
          }
        }
        return [...flows.values()].sort((a, b) => flowKey(a).localeCompare(flowKey(b)));
      });
  }
}
