/**
 * Physical names: `<productCode>-<env>-<region>-<name>`, within each AWS type's limits.
 *
 * One table of per-type rules, so no resource can be named by hand. A name too long for its type
 * is cut and given a short hash of the full name, so two long names never collide and the same
 * input always gives the same name.
 */
import { createHash } from "node:crypto";

interface NameRule {
  /** Longest name AWS accepts, suffix included. */
  readonly maxLength: number;
  /** Characters AWS accepts. */
  readonly pattern: RegExp;
  /** Required ending, added by the rule. */
  readonly suffix?: string;
}

export const NAME_RULES = {
  lambdaFunction: { maxLength: 64, pattern: /^[A-Za-z0-9_-]+$/ },
  iamRole: { maxLength: 64, pattern: /^[\w+=,.@-]+$/ },
  logGroup: { maxLength: 512, pattern: /^[\w#/.-]+$/ },
  sqsQueue: { maxLength: 80, pattern: /^[A-Za-z0-9_-]+$/ },
  sqsFifoQueue: { maxLength: 80, pattern: /^[A-Za-z0-9_-]+\.fifo$/, suffix: ".fifo" },
  dynamodbTable: { maxLength: 255, pattern: /^[A-Za-z0-9_.-]+$/ },
  kinesisStream: { maxLength: 128, pattern: /^[A-Za-z0-9_.-]+$/ },
  secret: { maxLength: 512, pattern: /^[\w/+=.@-]+$/ },
  securityGroup: { maxLength: 255, pattern: /^[\w .:/()#,@[\]+=&;{}!$*-]+$/ },
  restApi: { maxLength: 1024, pattern: /^[\w .-]+$/ },
  eventSourceMapping: { maxLength: 140, pattern: /^[A-Za-z0-9_-]+$/ },
  logDestination: { maxLength: 512, pattern: /^[^:*]+$/ },
  metricAlarm: { maxLength: 255, pattern: /^[\w.-]+$/ },
  dashboard: { maxLength: 255, pattern: /^[A-Za-z0-9_-]+$/ },
  snsTopic: { maxLength: 256, pattern: /^[A-Za-z0-9_-]+$/ },
} as const satisfies Record<string, NameRule>;

export type NameKind = keyof typeof NAME_RULES;

const HASH_LENGTH = 8;

/** Fits `name` into `maxLength`, replacing the cut tail with a hash of the whole name. */
export function fitName(name: string, maxLength: number): string {
  if (name.length <= maxLength) return name;
  const hash = createHash("sha256").update(name).digest("hex").slice(0, HASH_LENGTH);
  return `${name.slice(0, maxLength - HASH_LENGTH - 1).replace(/-+$/, "")}-${hash}`;
}

/** The physical name of a resource of `kind`, under `prefix` (`<productCode>-<env>-<region>`). */
export function physicalName(prefix: string, name: string, kind: NameKind): string {
  const rule: NameRule = NAME_RULES[kind];
  const suffix = rule.suffix ?? "";
  const base = name.endsWith(suffix) ? name.slice(0, name.length - suffix.length) : name;
  const full = `${fitName(`${prefix}-${base}`, rule.maxLength - suffix.length)}${suffix}`;
  if (!rule.pattern.test(full)) {
    throw new Error(`"${full}" is not a valid ${kind} name: it must match ${rule.pattern}`);
  }
  return full;
}

/** `<productCode>-<env>-<region>`, the prefix of every physical name. */
export function namePrefix(productCode: string, environment: string, region: string): string {
  return `${productCode}-${environment}-${region}`;
}
