/**
 * The event flow of a planned stack as a Mermaid flowchart, read from the resources themselves:
 * event source mappings (stream or queue → worker), what each worker's role may write (worker →
 * queue, table, workflow), the table's streaming destination (table → stream), and who may
 * invoke a worker (bucket, AppSync API → worker). Drawn from the program, so it cannot drift.
 */
import type { PlannedResource } from "./describe";

interface Node {
  readonly id: string;
  readonly label: string;
  readonly shape: "worker" | "queue" | "stream" | "table" | "external";
}

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

const render = (node: Node) => {
  const label = node.label.replace(/"/g, "'");
  switch (node.shape) {
    case "worker":
      return `${node.id}["${label}"]`;
    case "queue":
      return `${node.id}[["${label}"]]`;
    case "stream":
      return `${node.id}>"${label}"]`;
    case "table":
      return `${node.id}[("${label}")]`;
    default:
      return `${node.id}{{"${label}"}}`;
  }
};

export function renderFlow(planned: readonly PlannedResource[], prefix: string): string {
  const nodes = new Map<string, Node>();
  const edges = new Set<string>();
  const strip = (name: string) => (name.startsWith(`${prefix}-`) ? name.slice(prefix.length + 1) : name);
  const nodeFor = (key: string, label: string, shape: Node["shape"]) => {
    let node = nodes.get(key);
    if (!node) {
      node = { id: `n${nodes.size + 1}`, label: strip(label), shape };
      nodes.set(key, node);
    }
    return node.id;
  };
  const arnNode = (arn: string) => nodeFor(arn, arnName(arn), shapeOf(arn));

  const functions = planned.filter((resource) => resource.type === "aws:lambda/function:Function");
  for (const fn of functions) nodeFor(String(fn.inputs.name), String(fn.inputs.name), "worker");
  const workerOf = (name: unknown) => nodes.get(String(name))?.id;
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
        if (target) edges.add(`${arnNode(String(inputs.eventSourceArn))} --> ${target}`);
        break;
      }
      case "aws:dynamodb/kinesisStreamingDestination:KinesisStreamingDestination": {
        const table = [...nodes.entries()].find(([key]) => key.endsWith(`:table/${inputs.tableName}`))?.[1].id;
        edges.add(
          `${table ?? nodeFor(String(inputs.tableName), String(inputs.tableName), "table")} --> ${arnNode(String(inputs.streamArn))}`,
        );
        break;
      }
      case "aws:lambda/permission:Permission": {
        const target = workerOf(inputs.function);
        if (target && inputs.sourceArn)
          edges.add(`${nodeFor(String(inputs.sourceArn), arnName(String(inputs.sourceArn)), "external")} -.-> ${target}`);
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
            edges.add(`${source} ${failureQueues.has(arn) ? "-. failures .->" : `-- ${verbs[0]} -->`} ${arnNode(arn)}`);
          }
        }
        break;
      }
    }
  }

  const lines = [
    "flowchart LR",
    ...[...nodes.values()].map((node) => `  ${render(node)}`),
    ...[...edges].sort().map((edge) => `  ${edge}`),
  ];
  return lines.join("\n");
}
