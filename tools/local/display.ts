/**
 * The local system's live panel. On a terminal it redraws in place (cursor up, clear line); on
 * anything else (a pipe, a CI log) it prints one plain summary line every few seconds. `stop()`
 * prints the final summary as a table.
 */
import type { Figures, FiguresSnapshot } from "./figures";
import { formatClock, formatCount, formatCounts, formatMs, formatTable } from "./text";

/** Where the panel is written: process.stdout, or any stream like it. */
export interface DisplayStream {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface DisplayOptions {
  readonly figures: Figures;
  /** @default process.stdout */
  readonly stream?: DisplayStream;
  /** How often the panel is redrawn. @default 500 */
  readonly intervalMs?: number;
  /** A bounded run's length: the panel shows its progress. */
  readonly durationMs?: number;
  /** Off a terminal, how often a summary line is printed. @default 5000 */
  readonly plainEveryMs?: number;
}

export interface Display {
  /** Draws now (the timer draws every `intervalMs`). */
  draw(): void;
  /** Stops drawing, prints the final summary and returns it. Refresh the figures first for final queue depths. */
  stop(): string;
}

const WORKER_HEADER = [
  "worker",
  "delivered",
  "records",
  "ok",
  "skipped",
  "failed",
  "parked",
  "in flight",
  "invocations",
  "cold",
  "errors",
  "timeouts",
];

/** One row per worker, by name. */
function workerRows(snapshot: FiguresSnapshot): (string | number)[][] {
  return Object.entries(snapshot.workers)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, w]) => [
      name,
      w.delivered,
      w.records,
      w.ok,
      w.skipped,
      w.failed,
      w.parked,
      w.inFlight,
      w.invocations,
      w.coldStarts,
      w.errors,
      w.timeouts,
    ]);
}

/** `p50 … · p95 … · p99 … (n samples)`. */
export function formatLatency(snapshot: FiguresSnapshot): string {
  const { latency } = snapshot;
  if (latency.samples === 0) return "no scores of generated activity yet";
  return `p50 ${formatMs(latency.p50)} · p95 ${formatMs(latency.p95)} · p99 ${formatMs(latency.p99)} (${formatCount(latency.samples)} scores)`;
}

/** `[████░░░░] 40% 0:24/1:00` of a bounded run. */
export function progressBar(elapsedMs: number, durationMs: number, width = 24): string {
  const share = durationMs <= 0 ? 1 : Math.min(1, Math.max(0, elapsedMs / durationMs));
  const filled = Math.round(share * width);
  return `[${"█".repeat(filled)}${"░".repeat(width - filled)}] ${Math.round(share * 100)}% ${formatClock(elapsedMs)}/${formatClock(durationMs)}`;
}

/** The top reasons of `record failed` (or `record parked`) lines, one a line. */
function reasonLines(
  reasons: FiguresSnapshot["failures"],
  titles: { readonly heading: string; readonly column: string },
  limit: number,
): string[] {
  if (reasons.length === 0) return [`${titles.heading.padEnd(10)} none`];
  const rows = reasons.slice(0, limit).map((entry) => [entry.count, entry.reason, formatCounts(entry.functions, 2)]);
  const lines = formatTable([titles.column, "reason", "where"], rows).map((line) => `  ${line}`);
  const more = reasons.length - limit;
  return [`${titles.heading.padEnd(10)} by reason (top ${limit})`, ...lines, ...(more > 0 ? [`  +${more} more reasons`] : [])];
}

/** The top failure reasons, one a line. */
const failureLines = (snapshot: FiguresSnapshot, limit: number) =>
  reasonLines(snapshot.failures, { heading: "failures", column: "failed" }, limit);

/** The top reasons the workers parked poison records for, one a line. */
const parkedLines = (snapshot: FiguresSnapshot, limit: number) =>
  reasonLines(snapshot.parkedByWorkers, { heading: "poison", column: "parked" }, limit);

/** Sums over the mappings: records filtered and parked. */
function mappingTotals(snapshot: FiguresSnapshot) {
  const mappings = Object.values(snapshot.mappings);
  return {
    filtered: mappings.reduce((sum, entry) => sum + entry.filtered, 0),
    delivered: mappings.reduce((sum, entry) => sum + entry.delivered, 0),
  };
}

/** The panel's lines for a snapshot. */
export function renderPanel(snapshot: FiguresSnapshot, durationMs?: number): string[] {
  const header =
    durationMs === undefined
      ? `local system · ${formatClock(snapshot.elapsedMs)}`
      : `local system · ${progressBar(snapshot.elapsedMs, durationMs)}`;
  const { filtered } = mappingTotals(snapshot);
  return [
    header,
    `inputs     ${formatCounts(snapshot.sources)}`,
    `filtered   ${formatCount(filtered)} · parked ${formatCounts(snapshot.parked)}`,
    ...formatTable(WORKER_HEADER, workerRows(snapshot)),
    `scores     ${formatCount(snapshot.scores.written)} written · latency ${formatLatency(snapshot)}`,
    ...failureLines(snapshot, 5),
    ...parkedLines(snapshot, 3),
    `queues     ${formatCounts(snapshot.queues)}${snapshot.queuesError ? ` (not read: ${snapshot.queuesError})` : ""}`,
  ];
}

/** One line of the figures, for logs that are not a terminal. */
export function summaryLine(snapshot: FiguresSnapshot): string {
  const workers = Object.values(snapshot.workers);
  const sum = (pick: (w: (typeof workers)[number]) => number) => formatCount(workers.reduce((total, w) => total + pick(w), 0));
  const inputs = Object.values(snapshot.sources).reduce((total, value) => total + value, 0);
  // Records the mappings parked, and the poison records the workers parked themselves.
  const parked =
    Object.values(snapshot.parked).reduce((total, value) => total + value, 0) +
    snapshot.parkedByWorkers.reduce((total, entry) => total + entry.count, 0);
  return [
    `[${formatClock(snapshot.elapsedMs)}] in ${formatCount(inputs)}`,
    `records ${sum((w) => w.records)}`,
    `failed ${sum((w) => w.failed)}`,
    `in flight ${sum((w) => w.inFlight)}`,
    `errors ${sum((w) => w.errors)}`,
    `scores ${formatCount(snapshot.scores.written)}`,
    `p95 ${formatMs(snapshot.latency.p95)}`,
    `parked ${formatCount(parked)}`,
  ].join(" · ");
}

/**
 * The final summary: inputs, workers, scores and latency, failures, the poison records the workers
 * parked, the records the mappings parked, and queue depths, as tables.
 */
export function renderSummary(snapshot: FiguresSnapshot): string {
  const { filtered, delivered } = mappingTotals(snapshot);
  const inputs = Object.entries(snapshot.sources).sort(([a], [b]) => a.localeCompare(b));
  const mappings = Object.entries(snapshot.mappings)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, entry]) => [name, entry.function ?? "?", entry.delivered, entry.filtered, entry.parked]);
  return [
    `Local run: ${formatClock(snapshot.elapsedMs)}`,
    "",
    ...formatTable(["input", "records put"], inputs),
    "",
    ...formatTable(["mapping", "function", "delivered", "filtered", "parked"], mappings),
    `  ${formatCount(delivered)} delivered, ${formatCount(filtered)} filtered`,
    "",
    ...formatTable(WORKER_HEADER, workerRows(snapshot)),
    "",
    `Scores written: ${formatCount(snapshot.scores.written)}; activity → score latency ${formatLatency(snapshot)}`,
    "",
    ...failureLines(snapshot, 10),
    "",
    ...parkedLines(snapshot, 10),
    "",
    `Parked by the mappings: ${formatCounts(snapshot.parked)}`,
    `Queues: ${formatCounts(snapshot.queues)}${snapshot.queuesError ? ` (not read: ${snapshot.queuesError})` : ""}`,
    "",
  ].join("\n");
}

/** Starts the panel; see `Display`. */
export function createDisplay(options: DisplayOptions): Display {
  const stream = options.stream ?? process.stdout;
  const tty = stream.isTTY === true;
  const intervalMs = options.intervalMs ?? 500;
  const plainEveryMs = Math.max(intervalMs, options.plainEveryMs ?? 5000);
  let drawnLines = 0;
  let lastPlain = Number.NEGATIVE_INFINITY;
  let refreshing = false;
  let stopped = false;

  const clip = (line: string) => (stream.columns && line.length > stream.columns ? line.slice(0, stream.columns - 1) : line);
  // Redraws over the previous panel: up as many lines as were drawn, clear each, clear below.
  const redraw = (lines: readonly string[]) => {
    const up = drawnLines > 0 ? `\x1b[${drawnLines}A` : "";
    stream.write(`${up}${lines.map((line) => `\x1b[2K${clip(line)}\n`).join("")}\x1b[J`);
    drawnLines = lines.length;
  };

  function draw() {
    if (stopped) return;
    const snapshot = options.figures.snapshot();
    if (tty) redraw(renderPanel(snapshot, options.durationMs));
    else if (snapshot.elapsedMs - lastPlain >= plainEveryMs) {
      lastPlain = snapshot.elapsedMs;
      stream.write(`${summaryLine(snapshot)}\n`);
    }
    if (!refreshing) {
      refreshing = true;
      void options.figures.refresh().finally(() => (refreshing = false));
    }
  }

  const timer = setInterval(draw, intervalMs);
  timer.unref();
  return {
    draw,
    stop() {
      clearInterval(timer);
      stopped = true;
      // On a terminal the summary takes the panel's place.
      if (tty && drawnLines > 0) stream.write(`\x1b[${drawnLines}A\x1b[J`);
      drawnLines = 0;
      const text = renderSummary(options.figures.snapshot());
      stream.write(text);
      return text;
    },
  };
}
