/**
 * Lambda's event filtering, as documented for event source mappings: a record is delivered when
 * it matches any of the mapping's patterns. In a pattern, an object matches nested fields, every
 * key must match, and a list of matchers matches a field when any matcher matches its value (or,
 * for a list value, any element); a nested object on a list of objects matches when one element
 * matches it whole. Matchers: a literal (string, number, boolean, null; numbers compared as
 * numbers), `prefix`, `suffix`, `equals-ignore-case`, `anything-but` (a literal, a list, or
 * `{prefix}`), `numeric` (comparisons joined by and), `exists`; `$or` takes a list of patterns.
 * Kinesis and Kafka records are matched with `data` / `value` parsed as JSON: a record whose
 * payload is not JSON matches no pattern on it, and is dropped.
 *
 * Written here because no library implements Lambda's filter semantics; a matcher this file
 * does not know is refused when the mapping starts, by name, rather than guessed at.
 */
type Matcher = Readonly<Record<string, unknown>>;

const OPERATORS = new Set(["prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists"]);

/** `anything-but` takes a literal, a list of literals or `{prefix}`; anything else would be taken for a literal. */
function checkAnythingBut(rule: unknown, where: string, at: string): void {
  const literals = Array.isArray(rule) ? rule : [rule];
  for (const literal of literals) {
    if (typeof literal !== "object" || literal === null) continue;
    const operators = Object.keys(literal);
    if (Array.isArray(rule) || operators.length !== 1 || operators[0] !== "prefix") {
      const named = operators.map((operator) => `"anything-but" with "${operator}"`).join(", ") || "an empty object";
      throw new Error(`${where}: filter operator ${named} at ${at} is not supported by the local system`);
    }
  }
}

/** Throws, naming the operator, when a pattern uses one the local system cannot evaluate. */
export function checkPattern(pattern: unknown, where: string): void {
  const visit = (node: unknown, at: string): void => {
    if (Array.isArray(node)) {
      for (const entry of node) {
        if (typeof entry !== "object" || entry === null) continue;
        for (const [operator, rule] of Object.entries(entry)) {
          if (!OPERATORS.has(operator)) {
            throw new Error(`${where}: filter operator "${operator}" at ${at} is not supported by the local system`);
          }
          if (operator === "anything-but") checkAnythingBut(rule, where, at);
        }
      }
      return;
    }
    if (typeof node !== "object" || node === null) throw new Error(`${where}: filter at ${at} must be an object or a list`);
    for (const [key, value] of Object.entries(node)) {
      if (key === "$or") (value as unknown[]).forEach((alternative, index) => visit(alternative, `${at}.$or[${index}]`));
      else visit(value, `${at}.${key}`);
    }
  };
  visit(pattern, "pattern");
}

function numericMatches(conditions: readonly unknown[], value: unknown): boolean {
  if (typeof value !== "number") return false;
  for (let i = 0; i < conditions.length; i += 2) {
    const bound = conditions[i + 1] as number;
    const holds = { "<": value < bound, "<=": value <= bound, "=": value === bound, ">": value > bound, ">=": value >= bound }[
      conditions[i] as "<"
    ];
    if (!holds) return false;
  }
  return true;
}

function anythingBut(rule: unknown, value: unknown): boolean {
  if (value === undefined) return false;
  if (Array.isArray(rule)) return !rule.some((entry) => equalLiteral(entry, value));
  if (typeof rule === "object" && rule !== null && "prefix" in rule) {
    return typeof value === "string" && !value.startsWith(String((rule as { prefix: string }).prefix));
  }
  return !equalLiteral(rule, value);
}

function equalLiteral(expected: unknown, value: unknown): boolean {
  if (typeof expected === "number" && typeof value === "number") return expected === value;
  return expected === value;
}

function matcherMatches(matcher: unknown, value: unknown): boolean {
  if (typeof matcher !== "object" || matcher === null) return value !== undefined && equalLiteral(matcher, value);
  const [[operator, rule]] = Object.entries(matcher as Matcher);
  switch (operator) {
    case "exists":
      return rule === (value !== undefined);
    case "prefix":
      return typeof value === "string" && value.startsWith(String(rule));
    case "suffix":
      return typeof value === "string" && value.endsWith(String(rule));
    case "equals-ignore-case":
      return typeof value === "string" && value.toLowerCase() === String(rule).toLowerCase();
    case "anything-but":
      return anythingBut(rule, value);
    case "numeric":
      return numericMatches(rule as unknown[], value);
    default:
      throw new Error(`filter operator "${operator}" is not supported by the local system`);
  }
}

function leafMatches(matchers: readonly unknown[], value: unknown): boolean {
  if (Array.isArray(value)) {
    // `exists` is about the field; the others about any element.
    return matchers.some((matcher) =>
      typeof matcher === "object" && matcher !== null && "exists" in matcher
        ? matcherMatches(matcher, value)
        : value.some((element) => matcherMatches(matcher, element)),
    );
  }
  return matchers.some((matcher) => matcherMatches(matcher, value));
}

/** Whether `value` matches `pattern`. */
export function matchesPattern(pattern: Readonly<Record<string, unknown>>, value: unknown): boolean {
  return Object.entries(pattern).every(([key, expected]) => {
    if (key === "$or") return (expected as Record<string, unknown>[]).some((alternative) => matchesPattern(alternative, value));
    const field = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
    if (Array.isArray(expected)) return leafMatches(expected, field);
    if (Array.isArray(field)) {
      // A nested pattern on an array of objects: one element must match all of it.
      return field.some(
        (element) =>
          typeof element === "object" && element !== null && matchesPattern(expected as Record<string, unknown>, element),
      );
    }
    if (typeof field !== "object" || field === null) {
      // A nested pattern on a missing field holds only if all it asks is absence.
      return matchesPattern(expected as Record<string, unknown>, {}) && field === undefined;
    }
    return matchesPattern(expected as Record<string, unknown>, field);
  });
}

/** Whether `pattern` asks about top-level field `key`, itself or in one of its `$or` alternatives. */
function namesKey(pattern: Readonly<Record<string, unknown>>, key: string): boolean {
  if (key in pattern) return true;
  const alternatives = pattern.$or;
  return Array.isArray(alternatives) && alternatives.some((alternative) => namesKey(alternative as Record<string, unknown>, key));
}

/**
 * Whether a record is delivered under `patterns` (none: every record): `payloadKey` (`data` for
 * Kinesis, `value` for Kafka, `body` for SQS) is matched parsed as JSON when the pattern names it.
 */
export function delivers(
  patterns: readonly object[],
  record: Record<string, unknown>,
  payloadKey: string,
  payload: () => string | undefined,
): boolean {
  if (patterns.length === 0) return true;
  let parsed: unknown;
  let decoded = false;
  const view = () => {
    if (!decoded) {
      decoded = true;
      try {
        const text = payload();
        parsed = text === undefined ? undefined : JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    return { ...record, [payloadKey]: parsed };
  };
  return patterns.some((pattern) => {
    const names = namesKey(pattern as Record<string, unknown>, payloadKey);
    if (names && view()[payloadKey] === undefined) return false;
    return matchesPattern(pattern as Record<string, unknown>, names ? view() : record);
  });
}
