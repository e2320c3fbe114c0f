/**
 * A region's CloudWatch dashboard (docs/operations.md#dashboard), as plain data built from its
 * wiring record: its flows first, as a table one row per edge (the README's event flow, from the
 * same wiring), then its alarms, then a row per worker, the queues and the API. The body is the
 * dashboard JSON CloudWatch documents; `dashboardFlows` reads the flows back from it.
 */
import { METRICS_NAMESPACE, WORKER_METRICS } from "../workers/shared/runtime/telemetry";
import { type AlarmMetric, apiMetric, lambdaMetric, local, sqsMetric, workerMetric } from "./alarms";
import { type Flow, flowKey, type FlowRecord, type RecordedApi, type RecordedQueue, type RecordedWorker } from "./flows";

/** The console address of a dashboard. */
export const dashboardUrl = (region: string, name: string): string =>
  `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${name}`;

/** The markdown table row of a flow in the dashboard's flow widget. */
export const flowRow = (flow: Flow): string =>
  `| ${flow.from.shape} \`${flow.from.name}\` | ${flow.kind} | ${flow.to.shape} \`${flow.to.name}\` |`;

/** Reads the flows back from a dashboard body's flow widget (the inverse of `flowRow`). */
export function dashboardFlows(body: string): Flow[] {
  const widgets = (JSON.parse(body) as { widgets: { type: string; properties: { markdown?: string } }[] }).widgets;
  const markdown = widgets.flatMap((widget) => (widget.type === "text" ? [widget.properties.markdown ?? ""] : [])).join("\n");
  return [...markdown.matchAll(/^\| (\w+) `([^`]+)` \| (\w+) \| (\w+) `([^`]+)` \|$/gm)].map(
    ([, fromShape, from, kind, toShape, to]) =>
      ({ from: { shape: fromShape, name: from }, kind, to: { shape: toShape, name: to } }) as Flow,
  );
}

/** Where the dashboard is: its region's name prefix, the workers' deployment, and the graphs' period. */
export interface DashboardPlace {
  readonly prefix: string;
  readonly region: string;
  readonly deployment: string;
  readonly period: number;
}

/** A widget and its width, placed by `rows` (CloudWatch's grid is 24 wide). */
interface Cell {
  readonly width: number;
  readonly height: number;
  readonly widget: object;
}

/** An alarm widget shows at most this many alarms. */
const ALARMS_PER_WIDGET = 100;

/** The dashboard's widgets, top to bottom, each placed on CloudWatch's grid. */
export function dashboardWidgets(
  record: FlowRecord,
  flows: readonly Flow[],
  alarmArns: readonly string[],
  place: DashboardPlace,
): object[] {
  const queues = record.queues.map((queue) => queueCell(queue, place));
  const rows: Cell[][] = [
    [flowsCell(flows, place)],
    ...chunks(alarmArns, ALARMS_PER_WIDGET).map((alarms) => [
      {
        width: 24,
        height: Math.max(3, Math.ceil(alarms.length / 6)),
        widget: { type: "alarm", properties: { title: "Alarms", alarms } },
      },
    ]),
    ...record.workers.map((worker) => workerCells(record, worker, place)),
    ...chunks(queues, 3),
    ...record.apis.map((api) => apiCells(api, place)),
  ];
  const widgets: object[] = [];
  let y = 0;
  for (const row of rows) {
    let x = 0;
    for (const { width, height, widget } of row) {
      widgets.push({ ...widget, x, y, width, height });
      x += width;
    }
    y += Math.max(...row.map((cell) => cell.height));
  }
  return widgets;
}

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, index) => items.slice(index * size, (index + 1) * size));

/** A time-series graph of `metrics` (each a metric line or an expression). */
const graph = (place: DashboardPlace, title: string, metrics: unknown[][], stat = "Sum") => ({
  type: "metric",
  properties: { title, region: place.region, view: "timeSeries", stacked: false, period: place.period, stat, metrics },
});

/** A metric as a dashboard line: namespace, name, dimension names and values, then its options. */
const line = (metric: AlarmMetric, label?: string): unknown[] => [
  metric.namespace,
  metric.metricName,
  ...Object.entries(metric.dimensions).flat(),
  { stat: metric.stat, ...(label ? { label } : {}) },
];

/** The region's flows, one table row per edge. */
function flowsCell(flows: readonly Flow[], place: DashboardPlace): Cell {
  const markdown = [
    `# ${place.prefix}: event flows`,
    "The region's wiring as the program built it (the README's event flow). Runbook: docs/operations.md.",
    "",
    "| from | flow | to |",
    "|---|---|---|",
    ...[...flows].sort((a, b) => flowKey(a).localeCompare(flowKey(b))).map(flowRow),
  ].join("\n");
  return { width: 24, height: 4 + Math.ceil(flows.length / 2), widget: { type: "text", properties: { markdown } } };
}

/** A worker's row: Lambda's view of it, its records, its duration and its dependencies. */
function workerCells(record: FlowRecord, worker: RecordedWorker, place: DashboardPlace): Cell[] {
  const { workerName, functionName } = worker;
  const dimensions = { service: workerName, environment: place.deployment, region: place.region };
  // Failures carry a `reason` dimension: a search finds every reason's series.
  const failedByReason = `SEARCH('{${METRICS_NAMESPACE},service,environment,region,reason} MetricName="${WORKER_METRICS.recordsFailed.name}" service="${workerName}" environment="${place.deployment}"', 'Sum', ${place.period})`;
  const stream = record.mappings.find((mapping) => mapping.functionName === functionName && mapping.kind !== "sqs")?.kind;
  const cell = (title: string, metrics: unknown[][]): Cell => ({ width: 8, height: 6, widget: graph(place, title, metrics) });
  return [
    cell(`${workerName}: invocations`, [
      line(lambdaMetric("Invocations", functionName, "Sum")),
      line(lambdaMetric("Errors", functionName, "Sum")),
      line(lambdaMetric("Throttles", functionName, "Sum")),
      ...(stream === "kinesis" ? [line(lambdaMetric("IteratorAge", functionName, "Maximum"))] : []),
      ...(stream === "kafka" ? [line(lambdaMetric("OffsetLag", functionName, "Maximum"))] : []),
    ]),
    cell(`${workerName}: records`, [
      line(workerMetric(WORKER_METRICS.recordsReceived, dimensions)),
      line(workerMetric(WORKER_METRICS.recordsProcessed, dimensions)),
      line(workerMetric(WORKER_METRICS.recordsSkipped, dimensions)),
      [{ expression: failedByReason, id: "failed", label: "failed, by reason" }],
    ]),
    cell(`${workerName}: duration and dependencies`, [
      line(lambdaMetric("Duration", functionName, "p99"), "duration p99"),
      ...worker.dependencies.flatMap((dependency) => [
        line(workerMetric(WORKER_METRICS.externalCalls, dimensions, dependency), `${dependency} calls`),
        line(workerMetric(WORKER_METRICS.externalCallFailures, dimensions, dependency), `${dependency} failures`),
      ]),
    ]),
  ];
}

/** A queue's depth and the age of its oldest message. */
function queueCell(queue: RecordedQueue, place: DashboardPlace): Cell {
  const metrics = [
    line(sqsMetric("ApproximateNumberOfMessagesVisible", queue.queueName)),
    line(sqsMetric("ApproximateAgeOfOldestMessage", queue.queueName)),
  ];
  return {
    width: 8,
    height: 6,
    widget: graph(place, `${local(place.prefix, queue.queueName)} (${queue.role})`, metrics, "Maximum"),
  };
}

/** A REST API stage's requests and errors, and its latency. */
function apiCells(api: RecordedApi, place: DashboardPlace): Cell[] {
  const name = local(place.prefix, api.apiName);
  const requests = [
    line(apiMetric(api, "Count", "Sum")),
    line(apiMetric(api, "4XXError", "Sum")),
    line(apiMetric(api, "5XXError", "Sum")),
  ];
  const latency = [
    line(apiMetric(api, "Latency", "p99"), "p99"),
    line(apiMetric(api, "IntegrationLatency", "p99"), "integration p99"),
  ];
  return [
    { width: 12, height: 6, widget: graph(place, `${name}: requests`, requests) },
    { width: 12, height: 6, widget: graph(place, `${name}: latency`, latency, "p99") },
  ];
}
