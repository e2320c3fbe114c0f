/**
 * The event flow of a planned stack as a Mermaid flowchart, read from the resources themselves:
 * event source mappings (stream or queue → worker), what each worker's role may write (worker →
 * queue, table, workflow), the table's streaming destination (table → stream), and who may
 * invoke a worker (bucket, AppSync API → worker). Drawn from the program, so it cannot drift.
 */
import {
  arnName,
  arnNode,
  type Flow,
  type FlowKind,
  type FlowNode,
  type FlowShape,
  kafkaNode,
  WRITE_ACTIONS,
} from "../../components/flows";
import type { PlannedResource } from "./describe";

/** Left to right: where events come from, the workers, where they go. */
const SHAPE_ORDER: readonly FlowShape[] = ["external", "stream", "worker", "queue", "table"];

/** How each kind of flow is drawn. */
const ARROWS: Record<FlowKind, string> = {
  delivers: "-->",
  streams: "-->",
  invokes: "-.->",
  sends: "-- sends -->",
  writes: "-- writes -->",
  starts: "-- starts -->",
  failures: "-. failures .->",
};

const render = (id: string, node: FlowNode, label: string) => {
  label = label.replace(/"/g, "'");
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

const nodeKey = (node: FlowNode) => `${node.shape}:${node.name}`;

/**
 * The flows of a planned stack, read from the resources themselves: event source mappings
 * (stream or queue → worker), what each worker's role may write (worker → queue, table,
 * workflow; to a failure destination, Lambda's failures), the table's streaming destination
 * (table → stream), and who may invoke a worker (bucket, API → worker).
 */
export function plannedFlows(planned: readonly PlannedResource[]): Flow[] {
  const flows = new Map<string, Flow>();
  const add = (from: FlowNode, kind: FlowKind, to: FlowNode) =>
    flows.set(`${nodeKey(from)}\0${kind}\0${nodeKey(to)}`, { from, kind, to });
  const functions = planned.filter((resource) => resource.type === "aws:lambda/function:Function");
  const functionNames = new Set(functions.map((fn) => String(fn.inputs.name)));
  const workerOf = (name: unknown): FlowNode | undefined =>
    functionNames.has(String(name)) ? { shape: "worker", name: String(name) } : undefined;
  /**
   * Queues that only receive what was given up on: a mapping's or an asynchronous invocation's
   * on-failure destination, and a queue's dead-letter queue (where its consumer parks messages).
   */
  const failureQueues = new Set(
    planned.flatMap((resource) => {
      const inputs = resource.inputs as {
        destinationConfig?: { onFailure?: { destinationArn?: string; destination?: string } };
        redrivePolicy?: string;
      };
      const destination = inputs.destinationConfig?.onFailure;
      if (destination) return [String(destination.destinationArn ?? destination.destination)];
      if (resource.type === "aws:sqs/queue:Queue" && typeof inputs.redrivePolicy === "string") {
        return [String((JSON.parse(inputs.redrivePolicy) as { deadLetterTargetArn?: string }).deadLetterTargetArn)];
      }
      return [];
    }),
  );

  for (const resource of planned) {
    const inputs = resource.inputs as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    switch (resource.type) {
      case "aws:lambda/eventSourceMapping:EventSourceMapping": {
        const target = workerOf(inputs.functionName);
        const source = inputs.eventSourceArn ? arnNode(String(inputs.eventSourceArn)) : kafkaNode(String(inputs.topics));
        if (target) add(source, "delivers", target);
        break;
      }
      case "aws:dynamodb/kinesisStreamingDestination:KinesisStreamingDestination":
        add({ shape: "table", name: String(inputs.tableName) }, "streams", arnNode(String(inputs.streamArn)));
        break;
      case "aws:lambda/permission:Permission": {
        const target = workerOf(inputs.function);
        if (target && inputs.sourceArn) add({ shape: "external", name: arnName(String(inputs.sourceArn)) }, "invokes", target);
        break;
      }
      case "aws:iam/rolePolicy:RolePolicy": {
        const fn = functions.find((candidate) => String(candidate.inputs.role).endsWith(`:role/${inputs.role}`));
        const source = fn && workerOf(fn.inputs.name);
        if (!source) break;
        const document = JSON.parse(String(inputs.policy)) as { Statement: { Action: string[]; Resource: string[] }[] };
        for (const statement of document.Statement) {
          const kinds = statement.Action.map((action) => WRITE_ACTIONS[action]).filter((kind) => kind !== undefined);
          if (kinds.length === 0) continue;
          for (const arn of statement.Resource) {
            // Failure destinations are drawn dashed: what is sent there was given up on.
            add(source, failureQueues.has(arn) ? "failures" : kinds[0]!, arnNode(arn));
          }
        }
        break;
      }
    }
  }
  return [...flows.values()];
}

/** The event flow of a planned stack as a Mermaid flowchart, names shown without `prefix`. */
export function renderFlow(planned: readonly PlannedResource[], prefix: string): string {
  const flows = plannedFlows(planned);
  const strip = (name: string) => (name.startsWith(`${prefix}-`) ? name.slice(prefix.length + 1) : name);
  const nodes = new Map<string, FlowNode>();
  for (const fn of planned.filter((resource) => resource.type === "aws:lambda/function:Function")) {
    const node: FlowNode = { shape: "worker", name: String(fn.inputs.name) };
    nodes.set(nodeKey(node), node);
  }
  for (const flow of flows)
    for (const node of [flow.from, flow.to]) if (!nodes.has(nodeKey(node))) nodes.set(nodeKey(node), node);

  const order = [...nodes.entries()].sort(
    ([, a], [, b]) => SHAPE_ORDER.indexOf(a.shape) - SHAPE_ORDER.indexOf(b.shape) || strip(a.name).localeCompare(strip(b.name)),
  );
  const rank = new Map(order.map(([key], index) => [key, index]));
  const id = (node: FlowNode) => `n${rank.get(nodeKey(node))! + 1}`;
  const position = (node: FlowNode) => rank.get(nodeKey(node))!;
  const lines = [
    "flowchart LR",
    ...order.map(([, node]) => `  ${render(id(node), node, strip(node.name))}`),
    ...flows
      .sort((a, b) => position(a.from) - position(b.from) || position(a.to) - position(b.to))
      .map((flow) => `  ${id(flow.from)} ${ARROWS[flow.kind]} ${id(flow.to)}`),
  ];
  return lines.join("\n");
}
