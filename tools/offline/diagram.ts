/**
 * The event flow of a planned stack as a Mermaid flowchart, read from the resources themselves:
 * event source mappings (stream or queue → worker), what each worker's role may write (worker →
 * queue, table, workflow), the table's streaming destination (table → stream), and who may
 * invoke a worker (bucket, AppSync API → worker). Drawn from the program, so it cannot drift.
 */
import type { PlannedResource } from "./describe";

interface Node {
  readonly label: string;
  readonly shape: "worker" | "queue" | "stream" | "table" | "external";
}

/** Left to right: where events come from, the workers, where they go. */
const SHAPE_ORDER: readonly Node["shape"][] = ["external", "stream", "worker", "queue", "table"];

const WRITE_ACTIONS: Record<string, string> = {
  "sqs:SendMessage": "sends",
  "dynamodb:PutItem": "writes",
  "dynamodb:UpdateItem": "writes",
  "dynamodb:BatchWriteItem": "writes",
  "glue:StartWorkflowRun": "starts",
};

/** The last part of an ARN, readable: `stream/purchase-stream-qa1` → `purchase-stream-qa1`. */
function arnName(arn: string): string {
  const resource = arn.split(":").slice(5).join(":");
  return resource.replace(/^(stream|table|workflow|apis)\//, "").replace(/^:+/, "") || arn;
}

function shapeOf(arn: string): Node["shape"] {
  if (arn.startsWith("arn:aws:sqs:")) return "queue";
  if (arn.startsWith("arn:aws:kinesis:")) return "stream";
  if (arn.startsWith("arn:aws:dynamodb:")) return "table";
  return "external";
}

const render = (id: string, node: Node) => {
  const label = node.label.replace(/"/g, "'");
  switch (node.shape) {
    case "worker":
      return `${id}["${label}"]`;
    case "queue":
      return `${id}[["${label}"]]`;
    case "stream":
      return `${id}>"${label}"]`;
    case "table":
      return `${id}[("${label}")]`;
    default:
      return `${id}{{"${label}"}}`;
  }
};

export function renderFlow(planned: readonly PlannedResource[], prefix: string): string {
  const nodes = new Map<string, Node>();
  /** from key, arrow, to key; the resources register in no fixed order, so ids are given at the end. */
  const edges = new Map<string, readonly [string, string, string]>();
  const edge = (from: string, arrow: string, to: string) => edges.set(`${from}\0${arrow}\0${to}`, [from, arrow, to]);
  const strip = (name: string) => (name.startsWith(`${prefix}-`) ? name.slice(prefix.length + 1) : name);
  const nodeFor = (key: string, label: string, shape: Node["shape"]) => {
    if (!nodes.has(key)) nodes.set(key, { label: strip(label), shape });
    return key;
  };
  // Keyed by kind and name: a table is named by the streaming destination and by ARN in policies.
  const arnNode = (arn: string) => nodeFor(`${shapeOf(arn)}:${arnName(arn)}`, arnName(arn), shapeOf(arn));

  const functions = planned.filter((resource) => resource.type === "aws:lambda/function:Function");
  for (const fn of functions) nodeFor(String(fn.inputs.name), String(fn.inputs.name), "worker");
  const workerOf = (name: unknown) => (nodes.has(String(name)) ? String(name) : undefined);
  /** Queues that only receive what a mapping or an asynchronous invocation gave up on. */
  const failureQueues = new Set(
    planned.flatMap((resource) => {
      const destination = (
        resource.inputs as { destinationConfig?: { onFailure?: { destinationArn?: string; destination?: string } } }
      ).destinationConfig?.onFailure;
      return destination ? [String(destination.destinationArn ?? destination.destination)] : [];
    }),
  );

  for (const resource of planned) {
    const inputs = resource.inputs as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    switch (resource.type) {
      case "aws:lambda/eventSourceMapping:EventSourceMapping": {
        const target = workerOf(inputs.functionName);
        const source = inputs.eventSourceArn
          ? arnNode(String(inputs.eventSourceArn))
          : nodeFor(`kafka:${inputs.topics}`, `kafka ${inputs.topics}`, "stream");
        if (target) edge(source, "-->", target);
        break;
      }
      case "aws:dynamodb/kinesisStreamingDestination:KinesisStreamingDestination": {
        const table = nodeFor(`table:${inputs.tableName}`, String(inputs.tableName), "table");
        edge(table, "-->", arnNode(String(inputs.streamArn)));
        break;
      }
      case "aws:lambda/permission:Permission": {
        const target = workerOf(inputs.function);
        if (target && inputs.sourceArn)
          edge(nodeFor(String(inputs.sourceArn), arnName(String(inputs.sourceArn)), "external"), "-.->", target);
        break;
      }
      case "aws:iam/rolePolicy:RolePolicy": {
        const fn = functions.find((candidate) => String(candidate.inputs.role).endsWith(`:role/${inputs.role}`));
        const source = fn && workerOf(fn.inputs.name);
        if (!source) break;
        const document = JSON.parse(String(inputs.policy)) as { Statement: { Action: string[]; Resource: string[] }[] };
        for (const statement of document.Statement) {
          const verbs = statement.Action.map((action) => WRITE_ACTIONS[action]).filter(Boolean);
          if (verbs.length === 0) continue;
          for (const arn of statement.Resource) {
            // Failure destinations are drawn dashed: Lambda, not the worker, sends to them.
            edge(source, failureQueues.has(arn) ? "-. failures .->" : `-- ${verbs[0]} -->`, arnNode(arn));
          }
        }
        break;
      }
    }
  }

  const order = [...nodes.entries()].sort(
    ([, a], [, b]) => SHAPE_ORDER.indexOf(a.shape) - SHAPE_ORDER.indexOf(b.shape) || a.label.localeCompare(b.label),
  );
  const rank = new Map(order.map(([key], index) => [key, index]));
  const id = (key: string) => `n${rank.get(key)! + 1}`;
  const lines = [
    "flowchart LR",
    ...order.map(([key, node]) => `  ${render(id(key), node)}`),
    ...[...edges.values()]
      .sort(([fromA, , toA], [fromB, , toB]) => rank.get(fromA)! - rank.get(fromB)! || rank.get(toA)! - rank.get(toB)!)
      .map(([from, arrow, to]) => `  ${id(from)} ${arrow} ${id(to)}`),
  ];
  return lines.join("\n");
}
