/** A plain object, whose fields can be read: not null, not an array. */
export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/**
 * Midnight UTC of the calendar day, or undefined when there is no such day (February 30th).
 * `month` counts from 1. Years 0-99 are taken as they are, not as 1900-1999 (as Date.UTC would).
 */
export function utcDay(year: number, month: number, day: number): Date | undefined {
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day ? date : undefined;
}
