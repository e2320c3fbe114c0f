/**
 * Plain-text formatting shared by the local system's panel, summaries and ledger: counts, times
 * and aligned tables, without colour or dependencies.
 */

/** A count with thousands separators: 12,345. */
export const formatCount = (value: number): string => Math.round(value).toLocaleString("en-US");

/** Milliseconds for people: 850 ms, 12.4 s, 3:05. */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined) return "–";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return formatClock(ms);
}

/** Elapsed time as m:ss (h:mm:ss past an hour). */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  const [hours, minutes, seconds] = [Math.floor(total / 3600), Math.floor(total / 60) % 60, total % 60];
  const two = (value: number) => String(value).padStart(2, "0");
  return hours > 0 ? `${hours}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`;
}

/**
 * Rows under a header, each column as wide as its widest cell; numbers are formatted as counts
 * and right-aligned, text left-aligned.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string[] {
  const cells = rows.map((row) => row.map((cell) => (typeof cell === "number" ? formatCount(cell) : cell)));
  const numeric = header.map((_, column) => rows.length > 0 && rows.every((row) => typeof row[column] === "number"));
  const widths = header.map((title, column) => Math.max(title.length, ...cells.map((row) => (row[column] ?? "").length)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, column) => (numeric[column] ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join("  ")
      .trimEnd();
  return [line(header), ...cells.map(line)];
}

/** `name count · name count …` of a record of counts, largest first. */
export function formatCounts(counts: Readonly<Record<string, number>>, limit = Number.POSITIVE_INFINITY): string {
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const shown = entries.slice(0, limit).map(([name, value]) => `${name} ${formatCount(value)}`);
  if (entries.length > limit) shown.push(`+${entries.length - limit} more`);
  return shown.length > 0 ? shown.join(" · ") : "–";
}

/**
 * A failure reason's group: its text up to the first `:` or `(` (the details follow), numbers and
 * words of three digits or more (ids, sequence numbers) replaced by `…`, at most 60 characters.
 */
export function reasonGroup(reason: string): string {
  const head = reason.split(/[:(]/, 1)[0]!.trim();
  const words = head.split(/\s+/).map((word) => (/^\d+$|\d.*\d.*\d/.test(word) ? "…" : word));
  const text = words.filter((word, index) => word !== "…" || words[index - 1] !== "…").join(" ");
  if (text.length === 0) return "(no reason)";
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}
