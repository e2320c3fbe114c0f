/**
 * Object keys of Data Science exports: `…/date=YYYY-MM-DD/…/_SUCCESS`.
 */

/**
 * S3 event notifications carry keys URL-encoded as in an HTML form: `+` for a space and
 * `%XX` escapes (so `date=…` can arrive as `date%3D…`).
 */
export function decodeS3Key(key: string): string {
  try {
    return decodeURIComponent(key.replace(/\+/g, " "));
  } catch {
    throw new Error(`S3 object key "${key}" is not URL-encoded as S3 sends keys: it has a malformed % escape`);
  }
}

const DATE_SEGMENT = /(?:^|\/)date=(\d{4})-(\d{2})-(\d{2})(?:\/|$)/;

/** The export date named by a `date=YYYY-MM-DD` path segment, if there is one and it is a real day. */
export function exportDate(key: string): string | undefined {
  const match = DATE_SEGMENT.exec(key);
  if (!match) return undefined;
  const [, year, month, day] = match;
  // setUTCFullYear, unlike Date.UTC, takes years 0-99 as they are rather than as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(Number(year), Number(month) - 1, Number(day));
  const iso = date.toISOString().slice(0, 10);
  return iso === `${year}-${month}-${day}` ? iso : undefined;
}
