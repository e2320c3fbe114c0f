/** Small helpers for measuring and printing benchmark figures. */

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The value below which `p` percent of the values fall (nearest rank). */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A plain text table with left-aligned first columns and right-aligned figures. */
export function table(header: readonly string[], rows: readonly (readonly string[])[], leftColumns = 1): string {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column < leftColumns ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(line)].join("\n");
}

/**
 * One line of the bench table: a figure, the anchor it is read against (measured in the same
 * run, or a minimum that follows from a rule), the figure against that anchor, and the target.
 */
export interface Row {
  readonly what: string;
  readonly figure: string;
  /** What the figure is read against, with its value; "-" where there is none. */
  readonly anchor?: string;
  /** The figure against the anchor (a ratio or a share). */
  readonly against?: string;
  /** The target; "-" where none is set. */
  readonly target?: string;
  /** Whether the target is met: "yes", "no", or empty when there is no target. */
  readonly met?: "yes" | "no";
}

/** What a benchmark gives the table: a line saying how it measured (run counts), and its rows. */
export interface Part {
  readonly how: string;
  readonly rows: readonly Row[];
}

/** "yes" when `ok`, else "no". */
export const met = (ok: boolean): "yes" | "no" => (ok ? "yes" : "no");

/** The one table of a bench run: how each part measured, then every part's rows. */
export function benchTable(parts: readonly (readonly [string, Part])[]): string {
  const how = parts.map(([name, part]) => `  ${name}: ${part.how}`).join("\n");
  const rows = parts.flatMap(([name, part]) =>
    part.rows.map((row) => [name, row.what, row.figure, row.anchor ?? "-", row.against ?? "-", row.target ?? "-", row.met ?? ""]),
  );
  return `${how}\n\n${table(["part", "what", "figure", "anchor (same run)", "against anchor", "target", "met"], rows, 2)}`;
}
