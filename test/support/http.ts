/**
 * A small HTTP server on loopback for the services that have no local implementation, mocked at
 * the wire: every request is recorded, and a test decides each answer.
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

export class WireServer {
  readonly requests: RecordedRequest[] = [];
  private constructor(
    private readonly server: http.Server,
    readonly url: string,
  ) {}

  static async start(responder: Responder): Promise<WireServer> {
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
        instance?.requests.push(request);
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
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    instance = new WireServer(server, `http://127.0.0.1:${port}`);
    return instance;
  }

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
