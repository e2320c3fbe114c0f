/**
 * An endpoint speaking DynamoDB's JSON protocol (`X-Amz-Target: DynamoDB_20120810.<Operation>`)
 * in front of another one (dynalite): requests pass through as they are, streamed, unless the
 * handler takes their operation; the handler gets the JSON body and answers, calling the service
 * behind as it needs.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { crc32 } from "node:zlib";

/** A whole answer of the service behind, or one to give the caller. */
export interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** What the handler receives: the operation called, the caller's headers and JSON body. */
export interface TakenRequest {
  readonly operation: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** The service behind the endpoint. */
export interface Upstream {
  readonly target: URL;
  readonly agent: http.Agent;
  /** Sends the caller's request on with this body (the caller's headers, the length recomputed). */
  forward(headers: http.IncomingHttpHeaders, body: string): Promise<Answer>;
  /** Calls an operation on the endpoint's own account: the parsed output, or the error answer. */
  call(
    operation: string,
    input: object,
  ): Promise<{ readonly ok: true; readonly output: Record<string, unknown> } | { readonly ok: false; readonly answer: Answer }>;
  close(): void;
}

/** Headers that belong to one connection, or that are recomputed for the body sent. */
const PER_MESSAGE = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding", "x-amz-crc32"]);

const withoutPerMessage = (headers: http.IncomingHttpHeaders, drop: ReadonlySet<string> = new Set()) =>
  Object.fromEntries(Object.entries(headers).filter(([name]) => !PER_MESSAGE.has(name) && !drop.has(name)));

/** The credentials of the endpoint's own calls: dynalite checks their shape, never the signature. */
function ownHeaders(operation: string): http.OutgoingHttpHeaders {
  const date = new Date().toISOString().replace(/[-:]|\.\d{3}/g, "");
  return {
    "content-type": "application/x-amz-json-1.0",
    "x-amz-target": `DynamoDB_20120810.${operation}`,
    "x-amz-date": date,
    authorization: `AWS4-HMAC-SHA256 Credential=local/${date.slice(0, 8)}/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date, Signature=local`,
  };
}

/** POSTs `body` to `target` and reads the answer whole. */
function post(target: URL, agent: http.Agent, headers: http.OutgoingHttpHeaders, body: string): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    const payload = Buffer.from(body, "utf8");
    const request = http.request(
      {
        host: target.hostname,
        port: target.port,
        path: "/",
        method: "POST",
        agent,
        headers: { ...headers, "content-length": payload.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({
            status: response.statusCode ?? 502,
            headers: response.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", reject);
    request.end(payload);
  });
}

/**
 * The service at `url`, over kept-alive HTTP/1.1 connections. Headers named in `drop` (the
 * endpoint's own, lower case) never reach it.
 */
export function createUpstream(url: string, drop: ReadonlySet<string> = new Set()): Upstream {
  const target = new URL(url);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  return {
    agent,
    target,
    forward: (headers, body) => post(target, agent, withoutPerMessage(headers, drop), body),
    async call(operation, input) {
      const answer = await post(target, agent, ownHeaders(operation), JSON.stringify(input));
      return answer.status === 200
        ? { ok: true, output: JSON.parse(answer.body) as Record<string, unknown> }
        : { ok: false, answer };
    },
    close: () => agent.destroy(),
  };
}

/** Writes an answer, its length and checksum (`x-amz-crc32`, as DynamoDB sends it) for the body sent. */
function respond(res: http.ServerResponse, answer: Answer): void {
  const body = Buffer.from(answer.body, "utf8");
  res.writeHead(answer.status, {
    ...withoutPerMessage(answer.headers),
    "content-length": body.length,
    ...("x-amz-crc32" in answer.headers ? { "x-amz-crc32": crc32(body) } : {}),
  });
  res.end(body);
}

/** An error the SDK retries, in DynamoDB's shape. */
function internalError(res: http.ServerResponse, error: unknown): void {
  if (res.headersSent) return void res.destroy();
  const message = error instanceof Error ? error.message : String(error);
  respond(res, {
    status: 500,
    headers: { "content-type": "application/x-amz-json-1.0" },
    body: JSON.stringify({ __type: "com.amazonaws.dynamodb.v20120810#InternalServerError", message }),
  });
}

/** Streams a request through to the service as it is, and its answer back. */
function pipeThrough(upstream: Upstream, req: http.IncomingMessage, res: http.ServerResponse): void {
  const headers = Object.fromEntries(
    Object.entries(req.headers).filter(([name]) => !["host", "connection", "keep-alive"].includes(name)),
  );
  const request = http.request(
    {
      host: upstream.target.hostname,
      port: upstream.target.port,
      path: req.url,
      method: req.method,
      agent: upstream.agent,
      headers,
    },
    (response) => {
      const { connection: _connection, "keep-alive": _keepAlive, ...answerHeaders } = response.headers;
      res.writeHead(response.statusCode ?? 502, answerHeaders);
      response.pipe(res);
    },
  );
  request.on("error", (error) => internalError(res, error));
  req.pipe(request);
}

export interface Forwarder {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Listens on loopback (`port`, 0 for any) and forwards to `upstream`; requests whose operation
 * `takes` accepts are read whole and answered by `handle`.
 */
export async function startForwarder(
  upstream: Upstream,
  takes: (operation: string) => boolean,
  handle: (request: TakenRequest) => Promise<Answer>,
  port = 0,
): Promise<Forwarder> {
  const server = http.createServer((req, res) => {
    const target = String(req.headers["x-amz-target"] ?? "");
    const operation = target.slice(target.indexOf(".") + 1);
    if (req.method !== "POST" || !takes(operation)) return pipeThrough(upstream, req, res);
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      handle({ operation, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") }).then(
        (answer) => respond(res, answer),
        (error: unknown) => internalError(res, error),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      upstream.close();
    },
  };
}
