/**
 * Object keys of Data Science exports: `…/date=YYYY-MM-DD/…/_SUCCESS`.
 */
import { utcDay } from "../runtime/values";

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
  return utcDay(Number(year), Number(month), Number(day)) ? `${year}-${month}-${day}` : undefined;
}
