/**
 * The rules of getArmScore (docs/flows.md#arm-score), free of I/O: which fan is asked for, where
 * their ARM score lives in Redis, and what a stored value answers.
 */
import { isObject } from "../runtime/values";
import { MAX_GLOBAL_USER_ID_LENGTH } from "./activity";

/** The ARM score: another team's account-risk grade, 1 (lowest risk) to 5. */
export const ARM_SCORE_MIN = 1;
export const ARM_SCORE_MAX = 5;

/** What the function answers, directly or as the resolved AppSync field. */
export interface ArmScoreAnswer {
  readonly armScore: number | null;
}

/** The Redis key of a fan's ARM record. */
export const armKey = (globalUserId: string): string => `user:${globalUserId}`;

/** Longest piece of a stored value quoted in a log line: Redis values are not bounded. */
const MAX_QUOTED = 256;

export type Requested =
  | { readonly ok: true; readonly globalUserId: string; readonly via: "invoke" | "appsync" }
  | { readonly ok: false; readonly reason: string };

const typeOf = (value: unknown): string => (value === null ? "null" : Array.isArray(value) ? "array" : typeof value);

/**
 * The fan asked for: `{globalUserId}` from a direct invoke, or `arguments.globalUserId` from an
 * AppSync direct resolver event (an event with `arguments` is taken as one).
 */
export function requestedFan(event: unknown): Requested {
  if (!isObject(event)) return { ok: false, reason: `event is ${typeOf(event)}, not an object carrying globalUserId` };
  const appsync = "arguments" in event;
  const field = appsync ? "arguments.globalUserId" : "globalUserId";
  const holder = appsync ? event.arguments : event;
  const value = isObject(holder) ? holder.globalUserId : undefined;
  if (value === undefined) {
    return {
      ok: false,
      reason: `${field} is missing (expected {"globalUserId": "…"} or an AppSync resolver event with arguments.globalUserId)`,
    };
  }
  if (typeof value !== "string") return { ok: false, reason: `${field} is ${typeOf(value)}, not a string` };
  if (value.length === 0 || value.length > MAX_GLOBAL_USER_ID_LENGTH || /\s/.test(value)) {
    return {
      ok: false,
      reason: `${field} "${quote(value)}" is not a globalUserId (1 to ${MAX_GLOBAL_USER_ID_LENGTH} characters, no whitespace)`,
    };
  }
  return { ok: true, globalUserId: value, via: appsync ? "appsync" : "invoke" };
}

/** Why a stored value answers null, and the value at fault as stored (JSON text, cut), for the warning. */
export interface InvalidArmRecord {
  readonly reason: string;
  readonly value: string;
}

export type ArmReading =
  { readonly armScore: number; readonly invalid?: undefined } | { readonly armScore: null; readonly invalid?: InvalidArmRecord };

/**
 * What the value stored under `user:<globalUserId>` answers. Absent: null. A JSON object whose
 * `arm_risk` is an integer 1..5: that grade. Anything else: null, with why.
 */
export function readArmScore(globalUserId: string, stored: string | null): ArmReading {
  if (stored === null) return { armScore: null };
  let document: unknown;
  try {
    document = JSON.parse(stored);
  } catch {
    return { armScore: null, invalid: { reason: "value is not JSON", value: quote(stored) } };
  }
  if (!isObject(document)) {
    return { armScore: null, invalid: { reason: `value is JSON ${typeOf(document)}, not an object`, value: quote(stored) } };
  }
  // The record names its fan. One naming another fan was written under the wrong key: its grade
  // is someone else's risk, so it is not answered for this fan. A record without the field is
  // taken on its key.
  if ("global_user_id" in document && document.global_user_id !== globalUserId) {
    return {
      armScore: null,
      invalid: { reason: "global_user_id names another fan than the key", value: loggable(document.global_user_id) },
    };
  }
  if (!("arm_risk" in document)) return { armScore: null, invalid: { reason: "arm_risk is missing", value: quote(stored) } };
  const risk = document.arm_risk;
  if (typeof risk !== "number" || !Number.isInteger(risk) || risk < ARM_SCORE_MIN || risk > ARM_SCORE_MAX) {
    return {
      armScore: null,
      invalid: { reason: `arm_risk is not an integer ${ARM_SCORE_MIN} to ${ARM_SCORE_MAX}`, value: loggable(risk) },
    };
  }
  return { armScore: risk };
}

/** A string cut to a length a log line can carry. */
function quote(text: string): string {
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text;
}

/**
 * A part of a stored record as it reads in JSON, cut: `"3"` and `3` stay apart, and a null
 * survives the log line (which drops null fields).
 */
function loggable(value: unknown): string {
  return quote(JSON.stringify(value));
}
