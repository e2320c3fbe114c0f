/**
 * Items in DynamoDB JSON (`{ userId: { S: "…" } }`) as the change records carry them: numbers in
 * the canonical form DynamoDB stores, whether a write left an item as it was, an item's key and
 * its size by DynamoDB's item-size rules.
 */
import { createHash } from "node:crypto";

/** One attribute value in DynamoDB JSON: `{ S: "…" }`, `{ N: "…" }`, `{ M: {…} }`, … */
export type AttributeValue = Record<string, unknown>;
export type Item = Record<string, AttributeValue>;

/** A table's key attributes. */
export interface KeySchema {
  readonly hashKey: string;
  readonly rangeKey?: string;
}

const NUMBER = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/;

/**
 * A number as DynamoDB keeps it: no exponent, no leading or trailing zeros (`"1.50"` → `"1.5"`,
 * `"1e3"` → `"1000"`). Text that is not a number is returned as it is.
 */
export function canonicalNumber(text: string): string {
  const match = NUMBER.exec(text.trim());
  if (!match || (match[2] === "" && !match[3])) return text;
  const [, sign, whole = "", fraction = "", exponent = "0"] = match;
  let digits = (whole + fraction).replace(/^0+/, "");
  let scale = Number(exponent) - fraction.length;
  if (digits === "") return "0";
  const trailing = /0+$/.exec(digits)?.[0].length ?? 0;
  digits = digits.slice(0, digits.length - trailing);
  scale += trailing;
  const point = digits.length + scale;
  const plain =
    scale >= 0
      ? digits + "0".repeat(scale)
      : point > 0
        ? `${digits.slice(0, point)}.${digits.slice(point)}`
        : `0.${"0".repeat(-point)}${digits}`;
  return sign === "-" ? `-${plain}` : plain;
}

/** A value with its numbers (in N, NS, and within lists and maps) in canonical form. */
export function canonicalValue(value: AttributeValue): AttributeValue {
  if (typeof value.N === "string") return { N: canonicalNumber(value.N) };
  if (Array.isArray(value.NS)) return { NS: (value.NS as string[]).map(canonicalNumber) };
  if (Array.isArray(value.L)) return { L: (value.L as AttributeValue[]).map(canonicalValue) };
  if (value.M && typeof value.M === "object") return { M: canonicalItem(value.M as Item) };
  return value;
}

/** An item as DynamoDB stores it (numbers in canonical form), attributes in the order given. */
export function canonicalItem(item: Item): Item {
  return Object.fromEntries(Object.entries(item).map(([name, value]) => [name, canonicalValue(value)]));
}

const sameSet = (a: unknown, b: unknown, canonical: (text: string) => string = (text) => text) => {
  const left = new Set((a as string[]).map(canonical));
  const right = (b as string[]).map(canonical);
  return left.size === new Set(right).size && right.every((element) => left.has(element));
};

/** Whether two values are equal as DynamoDB compares them: numbers by value, sets in any order. */
export function sameValue(a: AttributeValue, b: AttributeValue): boolean {
  const [type] = Object.keys(a);
  if (type === undefined || Object.keys(b).length !== 1 || !(type in b)) return false;
  const left = a[type];
  const right = b[type];
  switch (type) {
    case "N":
      return canonicalNumber(String(left)) === canonicalNumber(String(right));
    case "SS":
    case "BS":
      return sameSet(left, right);
    case "NS":
      return sameSet(left, right, canonicalNumber);
    case "L": {
      const [l, r] = [left as AttributeValue[], right as AttributeValue[]];
      return l.length === r.length && l.every((element, index) => sameValue(element, r[index]!));
    }
    case "M":
      return sameItem(left as Item, right as Item);
    default:
      return left === right;
  }
}

/** Whether two items hold the same attributes with equal values. */
export function sameItem(a: Item, b: Item): boolean {
  const names = Object.keys(a);
  return names.length === Object.keys(b).length && names.every((name) => name in b && sameValue(a[name]!, b[name]!));
}

/** The item's key attributes, or undefined when one is missing. */
export function keyOf(item: Item | undefined, schema: KeySchema): Item | undefined {
  const hash = item?.[schema.hashKey];
  const range = schema.rangeKey === undefined ? undefined : item?.[schema.rangeKey];
  if (!hash || (schema.rangeKey !== undefined && !range)) return undefined;
  const key: Item = { [schema.hashKey]: canonicalValue(hash) };
  if (schema.rangeKey !== undefined) key[schema.rangeKey] = canonicalValue(range!);
  return key;
}

/** One string per item of a table, for locks and maps: the table and the key's values. */
export const itemId = (table: string, key: Item) => JSON.stringify([table, ...Object.values(key)]);

/** The Kinesis partition key of an item's change records: one per item, so its records share a shard. */
export const partitionKeyOf = (id: string) => createHash("md5").update(id).digest("hex").toUpperCase();

const utf8 = (text: string) => Buffer.byteLength(text, "utf8");

/** A number's size: one byte per two significant digits, plus one. */
function numberSize(text: string): number {
  const digits = canonicalNumber(text).replace(/[-.]/g, "").replace(/^0+/, "").replace(/0+$/, "");
  return Math.ceil(Math.max(digits.length, 1) / 2) + 1;
}

/** A value's size in bytes by DynamoDB's item-size rules. */
export function valueSize(value: AttributeValue): number {
  const [type] = Object.keys(value);
  const content = value[type!];
  switch (type) {
    case "S":
      return utf8(content as string);
    case "N":
      return numberSize(content as string);
    case "B":
      return Buffer.from(content as string, "base64").length;
    case "SS":
      return (content as string[]).reduce((sum, element) => sum + utf8(element), 0);
    case "NS":
      return (content as string[]).reduce((sum, element) => sum + numberSize(element), 0);
    case "BS":
      return (content as string[]).reduce((sum, element) => sum + Buffer.from(element, "base64").length, 0);
    case "L":
      return 3 + (content as AttributeValue[]).reduce((sum, element) => sum + 1 + valueSize(element), 0);
    case "M":
      return 3 + Object.keys(content as Item).length + itemSize(content as Item);
    default:
      return 1; // BOOL, NULL
  }
}

/** An item's size in bytes: every attribute's name and value. */
export function itemSize(item: Item): number {
  return Object.entries(item).reduce((sum, [name, value]) => sum + utf8(name) + valueSize(value), 0);
}
