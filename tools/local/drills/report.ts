/**
 * A drill's report for people (`renderDrillReport`: the fault, the ledger as `renderLedger` draws
 * it, the drill's own inputs, the side effects, the recovery time, the problems), in one line
 * (`drillSummaryLine`, for a spec's output and the end of `--drill all`), and as JSON.
 */
import { renderLedger } from "../ledger";
import { formatCount, formatMs, formatTable } from "../text";
import type { DrillReport } from "./types";

/** One line: passed or not, recovery, the ledger's figures, repeated side effects and problems. */
export function drillSummaryLine(report: DrillReport): string {
  const { totals } = report.ledger;
  const own = (report.requests ?? []).reduce((sum, tally) => sum + tally.sent, 0);
  const repeated = report.sideEffects.reduce((sum, count) => sum + count.repeated.length, 0);
  const hits = report.hits
    ? `; fault hit ${formatCount(report.hits.faulted)}×${report.hits.retries === undefined ? "" : `, ${formatCount(report.hits.retries)} retries`}`
    : "";
  return (
    `${report.ok ? "PASSED" : "FAILED"} ${report.drill}: recovered in ${formatMs(report.recoveryMs)}; ` +
    `${formatCount(totals.in)} in = ${formatCount(totals.scored)} scored + ${formatCount(totals.skipped)} skipped + ` +
    `${formatCount(totals.parked)} parked + ${formatCount(totals.lost)} lost` +
    (own > 0 ? `; ${formatCount(own)} own requests` : "") +
    `; ${formatCount(repeated)} repeated${hits}` +
    (report.problems.length > 0 ? `; ${formatCount(report.problems.length)} problems` : "")
  );
}

/** The report as text. */
export function renderDrillReport(report: DrillReport): string {
  const section = (title: string, lines: readonly string[]) => (lines.length === 0 ? [] : ["", title, ...lines]);
  const timings = report.timings
    ? `fault held ${formatMs(report.timings.faultMs)}; drill took ${formatMs(report.timings.totalMs)}`
    : "";
  const hits = report.hits
    ? `fault hit: ${formatCount(report.hits.faulted)} requests changed` +
      (report.hits.retries === undefined ? "" : `, ${formatCount(report.hits.retries)} retries in the workers' logs`)
    : "fault hit: not counted by the drill";
  return [
    `== ${report.drill}: ${report.summary}`,
    [timings, hits].filter(Boolean).join("; "),
    "",
    renderLedger(report.ledger).trimEnd(),
    ...section(
      "own requests",
      report.requests
        ? formatTable(
            ["request", "sent", "as required"],
            report.requests.map((tally) => [tally.what, tally.sent, tally.asRequired]),
          )
        : [],
    ),
    ...section(
      "side effects",
      formatTable(
        ["side effect", "total", "repeated"],
        report.sideEffects.map((count) => [
          count.effect,
          count.total,
          (count.repeated.length === 0 ? "none" : `${count.repeated.length}: ${count.repeated.slice(0, 5).join(", ")}`) +
            (count.concurrent?.length ? ` (twice at once, from two queues: ${count.concurrent.length})` : ""),
        ]),
      ),
    ),
    ...section(
      "notes",
      (report.log ?? []).map((line) => `  ${line}`),
    ),
    ...section(
      `problems (${report.problems.length})`,
      report.problems.map((problem) => `  ${problem}`),
    ),
    "",
    `recovery: ${formatMs(report.recoveryMs)} from the fault's clearing to the last input accounted for`,
    drillSummaryLine(report),
    "",
  ].join("\n");
}

/** The reports as JSON text: each ledger without its per-event entries (lost and unexpected ones stay). */
export function drillReportsJson(reports: readonly DrillReport[]): string {
  return JSON.stringify(
    reports.map((report) => {
      const { entries: _entries, ...ledger } = report.ledger;
      return { ...report, ledger };
    }),
    null,
    2,
  );
}
