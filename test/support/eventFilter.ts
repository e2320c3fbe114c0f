/**
 * Lambda's event filtering, for the parts of the pattern syntax this project uses: a record is
 * delivered when every key of the pattern matches. A list matches a value equal to one of its
 * entries (or, for a list value, any element), `{ "exists": true|false }` a field's presence;
 * nested objects match nested fields. Kinesis records are matched with `data` parsed as JSON,
 * as Lambda does; a record whose data is not JSON matches no pattern on `data`.
 */
type Pattern = { readonly [key: string]: Pattern | readonly unknown[] };

function matches(pattern: Pattern, value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  return Object.entries(pattern).every(([key, expected]) => {
    const field = (value as Record<string, unknown>)[key];
    if (!Array.isArray(expected)) return matches(expected as Pattern, field);
    return expected.some((entry) => {
      if (typeof entry === "object" && entry !== null && "exists" in entry)
        return (entry as { exists: boolean }).exists === (field !== undefined);
      return Array.isArray(field) ? field.includes(entry) : field === entry;
    });
  });
}

/** Whether Lambda would deliver this Kinesis record under `pattern`. */
export function deliversKinesisRecord(pattern: object, record: { kinesis: { data: string } }): boolean {
  let data: unknown;
  try {
    data = JSON.parse(Buffer.from(record.kinesis.data, "base64").toString("utf8"));
  } catch {
    return false;
  }
  return matches(pattern as Pattern, { ...record, data });
}
