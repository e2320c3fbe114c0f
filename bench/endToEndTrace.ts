/**
 * The end-to-end bench's view at the wire: the local system's fault proxies (tools/local/faults)
 * in front of every service the scoring path calls, put there through runLocal's `wrapEndpoint`,
 * each with a rule that faults nothing and watches every call. The calls are counted by
 * operation, with their times, and each fan is followed through the path by what the calls carry:
 * the activity message sent to the queue and received from it, the ARAI fetched, the ARAI written
 * to the table and its change record put on the stream and read from it, the model call and the
 * score written.
 */
import { awsOperation } from "../tools/local/faults/awsJson";
import { createFaultProxies, type ProxiedRequest } from "../tools/local/faults/proxy";
import type { EndpointName, WrapEndpoint } from "../tools/local/types";

/** Where a fan's activity is on the way to its score, in path order. */
export const MARKS = [
  "put",
  "enqueued",
  "received",
  "araiFetched",
  "araiWritten",
  "streamRead",
  "modelCalled",
  "scoreWritten",
] as const;
export type Mark = (typeof MARKS)[number];

export interface WireCall {
  readonly service: EndpointName;
  readonly operation: string;
  readonly at: number;
}

export interface WireTrace {
  readonly wrap: WrapEndpoint;
  /** Every call the proxies forwarded, oldest first. */
  readonly calls: readonly WireCall[];
  /** Records per model-serving call, in order. */
  readonly modelRecords: readonly number[];
  /** When each fan first reached each mark (`put` is the caller's). */
  readonly marks: Map<string, Partial<Record<Mark, number>>>;
  mark(fan: string, mark: Mark, at: number): void;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

const parse = (text: string): Json | undefined => {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return undefined;
  }
};

/** The operation a call is counted under: the AWS operation (the score write apart), or the HTTP call. */
function operationName(service: EndpointName, request: ProxiedRequest): string {
  if (service === "accounts") return /\/arai\//.test(request.path) ? "GET ARAI" : `${request.method} other`;
  if (service === "modelServing") return /\/invocations$/.test(request.path) ? "POST invocations" : `${request.method} other`;
  const operation = awsOperation(request) ?? "unknown";
  if (operation === "UpdateItem" && request.body.includes('":score_type"')) return "UpdateItem (score)";
  return operation;
}

/** The fans of a stream's change records whose new image awaits scoring (type activityData). */
function activityDataFans(records: unknown): string[] {
  const fans: string[] = [];
  for (const record of Array.isArray(records) ? (records as { Data?: string }[]) : []) {
    if (typeof record.Data !== "string") continue;
    const change = parse(Buffer.from(record.Data, "base64").toString("utf8")) as
      { dynamodb?: { NewImage?: { type?: { S?: string }; globalUserId?: { S?: string } } } } | undefined;
    const image = change?.dynamodb?.NewImage;
    if (image?.type?.S === "activityData" && image.globalUserId?.S) fans.push(image.globalUserId.S);
  }
  return fans;
}

/** What a request and its answer say about fans on the way. */
function follow(trace: WireTrace, service: EndpointName, operation: string, request: ProxiedRequest) {
  const now = Date.now();
  const body = service === "accounts" ? undefined : parse(request.body.toString("utf8"));
  if (service === "sqs" && operation === "SendMessageBatch") {
    for (const entry of (body?.Entries ?? []) as { MessageBody?: string }[]) {
      const fan = parse(entry.MessageBody ?? "")?.globalUserId;
      if (typeof fan === "string") trace.mark(fan, "enqueued", now);
    }
  }
  if (service === "accounts" && operation === "GET ARAI") {
    const fan = /\/accounts\/([^/]+)\//.exec(request.path)?.[1];
    if (fan) trace.mark(decodeURIComponent(fan), "araiFetched", now);
  }
  if (service === "modelServing" && !/-staging\//.test(request.path)) {
    const records = (body?.dataframe_records ?? []) as { globalUserId?: string }[];
    for (const record of records) if (record.globalUserId) trace.mark(record.globalUserId, "modelCalled", now);
  }
  const fan = (body?.Key as { userId?: { S?: string } } | undefined)?.userId?.S;
  return (answer: string) => {
    const at = Date.now();
    if (service === "sqs" && operation === "ReceiveMessage") {
      for (const message of (parse(answer)?.Messages ?? []) as { Body?: string }[]) {
        const id = parse(message.Body ?? "")?.globalUserId;
        if (typeof id === "string") trace.mark(id, "received", at);
      }
    }
    if (service === "table" && fan && operation === "UpdateItem") trace.mark(fan, "araiWritten", at);
    if (service === "table" && fan && operation === "UpdateItem (score)" && !answer.includes("ConditionalCheckFailed"))
      trace.mark(fan, "scoreWritten", at);
    if (service === "kinesis" && operation === "GetRecords") {
      for (const id of activityDataFans(parse(answer)?.Records)) trace.mark(id, "streamRead", at);
    }
  };
}

/** The services the trace watches: every one the local system lets a proxy stand in front of. */
const SERVICES: readonly EndpointName[] = ["dynamodb", "kinesis", "sqs", "table", "accounts", "modelServing"];

/** A trace whose `wrap` puts a watching proxy in front of each endpoint it is given. */
export function createWireTrace(): WireTrace {
  const proxies = createFaultProxies();
  const calls: WireCall[] = [];
  const modelRecords: number[] = [];
  const marks = new Map<string, Partial<Record<Mark, number>>>();
  const trace: WireTrace = {
    calls,
    modelRecords,
    marks,
    mark(fan, mark, at) {
      const fanMarks = marks.get(fan) ?? marks.set(fan, {}).get(fan)!;
      if (fanMarks[mark] === undefined) fanMarks[mark] = at;
    },
    wrap: proxies.wrapEndpoint,
    close: () => proxies.close(),
  };
  for (const service of SERVICES) {
    proxies.set(service, (request) => {
      const operation = operationName(service, request);
      calls.push({ service, operation, at: Date.now() });
      if (service === "modelServing" && operation === "POST invocations") {
        modelRecords.push(((parse(request.body.toString("utf8"))?.dataframe_records ?? []) as unknown[]).length);
      }
      const answered = follow(trace, service, operation, request);
      return { kind: "pass", onAnswer: (answer) => answered(answer.body.toString()) };
    });
  }
  return trace;
}
