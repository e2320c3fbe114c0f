/**
 * A small HTTP server on loopback, for services mocked at the wire (a test decides each answer)
 * and for the local system's stand-ins: every request is recorded, and a responder answers it.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export interface Answer {
  readonly status?: number;
  readonly headers?: Record<string, string>;
  readonly body?: unknown;
  /** Hold the answer this long (to exercise client timeouts). */
  readonly delayMs?: number;
}

export type Responder = (request: RecordedRequest) => Answer | Promise<Answer>;

/** What a server keeps of the requests it records; tests keep everything, a long-running stand-in less. */
export interface WireOptions {
  /** Requests kept in `requests`, the oldest dropped first. @default all */
  readonly keep?: number;
  /** False records requests without their body (for bodies that carry secrets). @default true */
  readonly keepBodies?: boolean;
  /** Headers recorded as `[redacted]` (lower case: credentials, tokens). @default none */
  readonly redactHeaders?: readonly string[];
}

/**
 * Leaves idle keep-alive connections open until the client closes them (`close` ends them all).
 * A server closing one after its keep-alive timeout races a client reusing it at that moment: on
 * a busy machine the request meets a reset connection, and the client's retry is one call more
 * than the caller made, which a spec counting calls at the wire would take for the code's.
 */
export function keepIdleConnections(server: http.Server): void {
  server.keepAliveTimeout = 0;
}

export class WireServer {
  readonly requests: RecordedRequest[] = [];
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
    private readonly options: WireOptions,
  ) {}

  /** Starts a server on a free loopback port, answering every request with `responder`. */
  static async start(responder: Responder, options: WireOptions = {}): Promise<WireServer> {
    let instance: WireServer | undefined;
    const server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const request: RecordedRequest = {
          method: req.method ?? "GET",
          url: req.url ?? "/",
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
        };
        instance?.record(request);
        Promise.resolve()
          .then(() => responder(request))
          .then(async (answer) => {
            if (answer.delayMs) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
            const body =
              answer.body === undefined ? "" : typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
            res.writeHead(answer.status ?? 200, { "content-type": "application/json", ...answer.headers });
            res.end(body);
          })
          .catch((error: unknown) => {
            res.writeHead(500, { "content-type": "text/plain" });
            res.end(String(error));
          });
      });
    });
    keepIdleConnections(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    instance = new WireServer(server, `http://127.0.0.1:${port}`, options);
    return instance;
  }

  private record(request: RecordedRequest): void {
    const { keep, keepBodies, redactHeaders = [] } = this.options;
    const headers = { ...request.headers };
    for (const name of redactHeaders) if (headers[name] !== undefined) headers[name] = "[redacted]";
    this.requests.push({ ...request, headers, body: keepBodies === false ? "" : request.body });
    if (keep !== undefined && this.requests.length > keep) this.requests.splice(0, this.requests.length - keep);
  }

  /** Stops listening, dropping open connections. */
  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A responder for an AWS service speaking the JSON protocol (`X-Amz-Target: <Service>.<Operation>`):
 * each operation answers with its handler's result, or with the AWS error shape when the handler
 * returns `{ error }`.
 */
export type AwsOperation = (
  input: Record<string, unknown>,
) =>
  | Record<string, unknown>
  | { error: { type: string; message: string; status?: number } }
  | Promise<Record<string, unknown> | { error: { type: string; message: string; status?: number } }>;

/** A responder answering each JSON-protocol operation with its handler. */
export function awsJsonResponder(operations: Record<string, AwsOperation>): Responder {
  return async (request) => {
    const target = String(request.headers["x-amz-target"] ?? "");
    const operation = target.slice(target.indexOf(".") + 1);
    const handler = operations[operation];
    const headers = { "content-type": "application/x-amz-json-1.1" };
    if (!handler) {
      return { status: 400, headers, body: { __type: "UnknownOperationException", message: `no fake for ${target}` } };
    }
    const output = await handler(JSON.parse(request.body || "{}") as Record<string, unknown>);
    if ("error" in output && typeof output.error === "object" && output.error !== null) {
      const error = output.error as { type: string; message: string; status?: number };
      return { status: error.status ?? 400, headers, body: { __type: error.type, message: error.message } };
    }
    return { headers, body: output };
  };
}

/** The AWS operation a recorded JSON-protocol request called. */
export const operationOf = (request: RecordedRequest) => String(request.headers["x-amz-target"] ?? "").split(".")[1];

/**
 * A recording proxy in front of a real local service: every request is recorded (and can be
 * counted by operation) and forwarded; `intercept` may answer a request itself, or rewrite the
 * forwarded request's body and the answer's, to make the service misbehave as the real one can.
 */
export interface Interception {
  /** Answer without forwarding. */
  readonly answer?: Answer;
  /** Forward this body instead. */
  readonly forwardBody?: string;
  /** Rewrite the service's answer body before returning it. */
  readonly rewriteAnswer?: (body: string) => string;
}

/** A recording proxy forwarding to `target`, unless `intercept` answers or rewrites a request. */
export async function startProxy(
  target: string,
  intercept: (request: RecordedRequest) => Interception | undefined = () => undefined,
): Promise<WireServer> {
  return WireServer.start(async (request) => {
    const plan = intercept(request) ?? {};
    if (plan.answer) return plan.answer;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(request.headers)) {
      if (typeof value === "string" && !["host", "content-length", "connection"].includes(name)) headers[name] = value;
    }
    const response = await fetch(`${target}${request.url}`, {
      method: request.method,
      headers,
      body: request.method === "GET" ? undefined : (plan.forwardBody ?? request.body),
    });
    const text = await response.text();
    return {
      status: response.status,
      headers: { "content-type": response.headers.get("content-type") ?? "application/json" },
      body: plan.rewriteAnswer ? plan.rewriteAnswer(text) : text,
    };
  });
}

/** How many requests a recording server saw for each AWS operation. */
export function countOperations(server: WireServer): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const request of server.requests) {
    const operation = operationOf(request) ?? "unknown";
    counts[operation] = (counts[operation] ?? 0) + 1;
  }
  return counts;
}
