/**
 * Every alarm on a worker metric watches a metric the workers really emit: the workers run on
 * real events (test/support/emittedMetrics.ts collects their Embedded Metric Format output), and
 * each alarm of every stack's plan in the workers' namespace must name a metric emitted with the
 * same name and the same dimension names, by the same worker, with the same extra dimension value.
 * The environment and region an alarm names must be those its function runs with.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import { projectRoot } from "../components/archive";
import { METRICS_NAMESPACE } from "../workers/shared/runtime/telemetry";
import { type EmittedMetric, emittedMetrics } from "./support/emittedMetrics";
import { type PlannedStack, planStacks } from "./support/program";

const STACKS = fs
  .readdirSync(projectRoot())
  .map((file) => /^Pulumi\.(\w+)\.yaml$/.exec(file)?.[1])
  .filter((stack): stack is string => stack !== undefined)
  .sort();

interface WatchedMetric {
  readonly alarm: string;
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Record<string, string>;
}

/** The metrics an alarm watches: its own metric, or each metric of its metric-math queries. */
function watchedMetrics(alarm: { name: string; inputs: Record<string, unknown> }): WatchedMetric[] {
  const inputs = alarm.inputs as {
    namespace?: string;
    metricName?: string;
    dimensions?: Record<string, string>;
    metricQueries?: { metric?: { namespace: string; metricName: string; dimensions?: Record<string, string> } }[];
  };
  const own = inputs.metricName
    ? [{ namespace: inputs.namespace!, metricName: inputs.metricName, dimensions: inputs.dimensions ?? {} }]
    : [];
  const queried = (inputs.metricQueries ?? []).flatMap((query) =>
    query.metric ? [{ ...query.metric, dimensions: query.metric.dimensions ?? {} }] : [],
  );
  return [...own, ...queried].map((metric) => ({ alarm: alarm.name, ...metric }));
}

/** What identifies an emitted metric apart from where it ran: its name, dimension names, worker and extra value. */
function shape(metric: { namespace: string; name: string; dimensions: Record<string, string> }): string {
  const { environment: _environment, region: _region, ...rest } = metric.dimensions;
  const names = Object.keys(metric.dimensions).sort().join(",");
  const values = Object.entries(rest)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => `${name}=${value}`)
    .join(",");
  return `${metric.namespace} ${metric.name} [${names}] ${values}`;
}

describe("alarms on worker metrics", function () {
  let emitted: EmittedMetric[];
  let plans: Map<string, PlannedStack>;

  before(async function () {
    emitted = await emittedMetrics();
    plans = await planStacks(STACKS);
  });

  it("the workers emit metrics in their namespace, with the dimensions the catalogue gives", function () {
    assert.ok(emitted.length > 0, "no metric was emitted");
    for (const metric of emitted) assert.equal(metric.namespace, METRICS_NAMESPACE);
  });

  for (const stack of STACKS) {
    it(`${stack}: every alarm on a worker metric watches a metric the workers emit`, function () {
      const plan = plans.get(stack)!;
      const emittedShapes = new Set(emitted.map(shape));
      const functions = plan.ofType("aws:lambda/function:Function").map((fn) => ({
        name: String(fn.inputs.name),
        deployment: (fn.inputs.environment as { variables?: Record<string, string> } | undefined)?.variables?.DEPLOYMENT,
      }));
      const watched = plan
        .ofType("aws:cloudwatch/metricAlarm:MetricAlarm")
        .flatMap(watchedMetrics)
        .filter((metric) => metric.namespace === METRICS_NAMESPACE);
      assert.ok(watched.length > 0, `${stack} has no alarm on a worker metric`);
      const unmatched = watched.filter(
        (metric) =>
          !emittedShapes.has(shape({ namespace: metric.namespace, name: metric.metricName, dimensions: metric.dimensions })),
      );
      assert.deepEqual(
        unmatched.map((metric) => `${metric.alarm}: ${shape({ ...metric, name: metric.metricName })}`),
        [],
        "alarms watching metrics no worker emits",
      );
      // The worker it names runs in the region it names, under the deployment it names.
      for (const { alarm, dimensions } of watched) {
        const runs = functions.some(
          (fn) =>
            fn.name.endsWith(`-${dimensions.service}`) &&
            fn.name.includes(`-${dimensions.region}-`) &&
            fn.deployment === dimensions.environment,
        );
        assert.ok(
          runs,
          `${alarm}: no function of ${dimensions.service} runs in ${dimensions.region} as ${dimensions.environment}`,
        );
      }
    });
  }
});
