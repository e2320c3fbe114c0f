/**
 * Databricks model serving for the local system (docs/rules.md#model-serving): any
 * `POST /serving-endpoints/<name>/invocations` (the scoring model's and the staging model's
 * endpoints alike), with the bearer token from the model-token secret, taking
 * `{"dataframe_records": [{globalUserId, raw_json_string}]}` and answering
 * `{"predictions": [...]}`, one score per record in input order, by `expectedScore`. A fault
 * (`setFault`) makes it answer an error, late, or with one prediction too few, for the drills.
 */
import type { RunningService } from "../types";
import { type Answer, type RecordedRequest, WireServer } from "../wire";
import { createFaultSwitch, type FaultCounts, faultedAnswer, type FaultSwitch, type ServiceFault } from "./fault";

const INVOCATIONS = /^\/serving-endpoints\/([^/]+)\/invocations$/;
/** Calls kept in `calls`, the oldest dropped first. */
const KEPT_CALLS = 1000;

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);
const listOf = (value: unknown): unknown[] => (Array.isArray(value) ? value : []);
/** A number ≥ 0, else 0. */
const countOf = (value: unknown): number => (typeof value === "number" && Number.isFinite(value) && value >= 0 ? value : 0);

/**
 * The score the local model gives a fan's ARAI (the parsed `raw_json_string`: the stored
 * snapshot, i.e. the accounts service's `data`) on an endpoint:
 *
 *   score = 1 / (1 + e^−z), rounded to 6 decimals, with
 *   z = −1 + 3·f + 0.5·l + 0.25·p − 0.75·m + 0.02·min(n, 50) + s
 *
 * where f is the share of failed logins among the history's entries (the length of
 * `history.failedLoginActivity` over that of both lists; 0 without entries), l the number of
 * `linkedAccounts`, p `sharedPhoneNumberCount` (at most 4), m 1 when `phoneNumberType` is
 * "mobile", n `counts.loginActivity`, and s 0.5 on an endpoint whose name ends in `-staging`,
 * else 0. A missing or unreadable field counts as 0 (a count only when a number ≥ 0); always in [0, 1].
 */
export function expectedScore(arai: unknown, endpointName: string): number {
  const document = isObject(arai) ? arai : {};
  const history = isObject(document.history) ? document.history : {};
  const logins = listOf(history.loginActivity).length;
  const failures = listOf(history.failedLoginActivity).length;
  const f = logins + failures === 0 ? 0 : failures / (logins + failures);
  const l = listOf(document.linkedAccounts).length;
  const p = Math.min(countOf(document.sharedPhoneNumberCount), 4);
  const m = document.phoneNumberType === "mobile" ? 1 : 0;
  const counts = isObject(document.counts) ? document.counts : {};
  const n = Math.min(countOf(counts.loginActivity), 50);
  const s = endpointName.endsWith("-staging") ? 0.5 : 0;
  const z = -1 + 3 * f + 0.5 * l + 0.25 * p - 0.75 * m + 0.02 * n + s;
  return Math.round(1e6 / (1 + Math.exp(-z))) / 1e6;
}

/** One invocation the local model answered. */
export interface ModelCall {
  readonly endpoint: string;
  readonly globalUserIds: readonly string[];
  readonly predictions: readonly number[];
  /** Epoch ms. */
  readonly at: number;
}

export interface ModelServingOptions {
  /** The bearer token (the model-token secret's `token`). */
  readonly token: string;
  /** The endpoint names served (from the plan's MODEL_URLs); others are not found. @default any */
  readonly endpoints?: readonly string[];
}

/** A fault of model serving: a service fault, or answers with one prediction fewer than records. */
export type ModelFault = (ServiceFault | { readonly wrongCount: true; readonly requests?: number }) & {
  /** Only invocations of this endpoint (by name). @default every endpoint */
  readonly endpoint?: string;
};

export interface LocalModelServing extends RunningService {
  readonly server: WireServer;
  /** The invocations answered, oldest first (the latest KEPT_CALLS). */
  readonly calls: readonly ModelCall[];
  /** A plan's MODEL_URL (https://<host>/serving-endpoints/<name>/invocations) with this server as its host. */
  localUrl(modelUrl: string): string;
  /** Gives the model a fault, or with undefined clears it. */
  setFault(fault: ModelFault | undefined): void;
  /** The invocations (of the fault's endpoint) seen since the fault was set, and how many it changed. */
  faultCounts(): FaultCounts;
  /** Resolves once a fault limited to some requests has bitten them all. */
  faultSpent(): Promise<void>;
}

const error = (status: number, code: string, message: string): Answer => ({ status, body: { error_code: code, message } });

/** The records of an invocation body, each with its ARAI parsed; or why the body is not one. */
function recordsOf(body: string): { globalUserId: string; arai: unknown }[] | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return "body is not JSON";
  }
  const records = isObject(parsed) ? parsed.dataframe_records : undefined;
  if (!Array.isArray(records)) return 'expected {"dataframe_records": [...]}';
  const out: { globalUserId: string; arai: unknown }[] = [];
  for (const [index, record] of records.entries()) {
    if (!isObject(record) || typeof record.raw_json_string !== "string")
      return `dataframe_records[${index}] has no raw_json_string`;
    try {
      out.push({ globalUserId: String(record.globalUserId ?? ""), arai: JSON.parse(record.raw_json_string) });
    } catch {
      return `dataframe_records[${index}].raw_json_string is not JSON`;
    }
  }
  return out;
}

/** The responder: checks path, endpoint, token and body, then scores every record; a fault changes the answer. */
function modelResponder(options: ModelServingOptions, calls: ModelCall[], fault: FaultSwitch<ModelFault>) {
  const score = scoringResponder(options, calls);
  let endpointOfFault: string | undefined;
  const responder = (request: RecordedRequest): Answer | Promise<Answer> => {
    const endpoint = INVOCATIONS.exec(request.url.replace(/\?.*$/, ""))?.[1];
    const taken = endpoint !== undefined && (endpointOfFault ?? endpoint) === endpoint ? fault.take() : undefined;
    if (!taken) return score(request);
    if (!("wrongCount" in taken)) return faultedAnswer(taken, () => score(request));
    const answer = score(request);
    const predictions = (answer.body as { predictions?: number[] } | undefined)?.predictions;
    return predictions ? { ...answer, body: { predictions: predictions.slice(0, -1) } } : answer;
  };
  return {
    responder,
    set(next: ModelFault | undefined) {
      endpointOfFault = next?.endpoint;
      fault.set(next);
    },
  };
}

/** Answers an invocation as the model does. */
function scoringResponder(options: ModelServingOptions, calls: ModelCall[]) {
  return (request: RecordedRequest): Answer => {
    const endpoint = INVOCATIONS.exec(request.url.replace(/\?.*$/, ""))?.[1];
    if (endpoint === undefined) return error(404, "ENDPOINT_NOT_FOUND", `no serving endpoint at ${request.url}`);
    if (options.endpoints && !options.endpoints.includes(endpoint)) {
      return error(404, "RESOURCE_DOES_NOT_EXIST", `Endpoint with name '${endpoint}' does not exist.`);
    }
    if (request.method !== "POST") return error(405, "BAD_REQUEST", `${request.method} is not allowed`);
    if (request.headers.authorization !== `Bearer ${options.token}`) {
      return error(401, "401", "Credential was not sent or was of an unsupported type for this API.");
    }
    const records = recordsOf(request.body);
    if (typeof records === "string") return error(400, "BAD_REQUEST", records);
    const predictions = records.map((record) => expectedScore(record.arai, endpoint));
    calls.push({ endpoint, globalUserIds: records.map((record) => record.globalUserId), predictions, at: Date.now() });
    if (calls.length > KEPT_CALLS) calls.shift();
    return { body: { predictions } };
  };
}

/** Starts the local model serving on a free loopback port. */
export async function startModelServing(options: ModelServingOptions): Promise<LocalModelServing> {
  const calls: ModelCall[] = [];
  const fault = createFaultSwitch<ModelFault>();
  const model = modelResponder(options, calls, fault);
  // Bodies are not kept: a chunk of 100 snapshots can be megabytes, and `calls` says what was scored.
  const server = await WireServer.start(model.responder, {
    keep: 1000,
    keepBodies: false,
    redactHeaders: ["authorization"],
  });
  return {
    server,
    url: server.url,
    calls,
    localUrl: (modelUrl) => `${server.url}${new URL(modelUrl).pathname}`,
    setFault: (next) => model.set(next),
    faultCounts: () => fault.counts(),
    faultSpent: () => fault.spent(),
    close: () => server.close(),
  };
}
