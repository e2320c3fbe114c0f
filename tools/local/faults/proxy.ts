/**
 * Faults at the wire: an HTTP proxy in front of each AWS service of the local system (installed
 * through the system's `wrapEndpoint`), passing every request through unless a rule set for that
 * service says otherwise. Drills set and clear rules while the system runs; the workers see what
 * they would see from AWS (an error answer, a slow answer, a partial batch answer).
 *
 * Forwarding keeps connections alive on both sides. A request body is read whole (they are small
 * JSON documents here, and a rule decides on the body); an answer streams through unless a rule
 * (or the SQS queue-URL rewrite below) needs it whole, so large GetRecords or ReceiveMessage
 * answers pass as they come. Node's own http module serves: no proxy library offers per-request
 * rules on the body with a hang released on demand, and the protocol is two hops of HTTP/1.1.
 */
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { crc32 } from "node:zlib";
import type { WrapEndpoint } from "../types";

/** The services a proxy stands in front of, as `wrapEndpoint` names them. */
export type ProxiedService = Parameters<WrapEndpoint>[0];

/** A request as the proxy sees it. */
export interface ProxiedRequest {
  readonly service: ProxiedService;
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The AWS JSON protocol's operation (`X-Amz-Target`, e.g. `DynamoDB_20120810.BatchWriteItem`), when given. */
  readonly target?: string;
  readonly body: Buffer;
}

/** An answer, whole. */
export interface ProxiedResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: Buffer | string;
}

/** What the proxy does with one request. */
export type FaultAction =
  /**
   * Forward it unchanged; `onAnswer`, when given, sees the whole answer (a trace following the
   * calls), which is then not counted as faulted.
   */
  | { readonly kind: "pass"; readonly onAnswer?: (answer: ProxiedResponse) => void }
  /** Answer at once, without forwarding. */
  | ({ readonly kind: "respond" } & ProxiedResponse)
  /** Wait, then forward. */
  | { readonly kind: "delay"; readonly ms: number }
  /** Never answer (the socket stays open until the rule is cleared or the client gives up). */
  | { readonly kind: "hang" }
  /**
   * Forward a changed request and/or change the answer (an UnprocessedItems answer made by taking
   * items out of the request, say).
   */
  | {
      readonly kind: "rewrite";
      readonly request?: (body: Buffer) => Buffer;
      readonly response?: (answer: ProxiedResponse) => ProxiedResponse;
    };

/** Decides per request; undefined means pass. */
export type FaultRule = (request: ProxiedRequest) => FaultAction | undefined;

export interface FaultProxies {
  /** Give this to the local system (`RunOptions.wrapEndpoint`). */
  readonly wrapEndpoint: WrapEndpoint;
  /** Sets (or, with undefined, clears) the rule of a service. */
  set(service: ProxiedService, rule: FaultRule | undefined): void;
  /** Clears every rule; requests hanging are answered by forwarding them. */
  clear(): void;
  /**
   * Requests a service's proxy has seen, how many a rule changed, and how many an AWS SDK sent as
   * a retry of an earlier attempt (its `amz-sdk-request: attempt=N` header, N > 1).
   */
  counts(service: ProxiedService): ProxyCounts;
  close(): Promise<void>;
}

export interface ProxyCounts {
  readonly seen: number;
  readonly faulted: number;
  readonly retried: number;
}

/** Headers of one hop, or recomputed for the body sent. */
const PER_HOP = new Set(["host", "connection", "keep-alive", "content-length", "transfer-encoding", "x-amz-crc32"]);

/** SQS answers that name queue URLs: the URLs are made to name the proxy, so the SDK keeps coming through it. */
const QUEUE_URL_OPERATIONS = new Set(["CreateQueue", "GetQueueUrl", "ListQueues", "ListDeadLetterSourceQueues"]);

/** The attempt an AWS SDK request says it is (1 when it says nothing). */
export function sdkAttempt(headers: ProxiedRequest["headers"]): { readonly attempt: number; readonly max?: number } {
  const value = String(headers["amz-sdk-request"] ?? "");
  const attempt = Number(/attempt=(\d+)/.exec(value)?.[1] ?? 1);
  const max = /max=(\d+)/.exec(value)?.[1];
  return max === undefined ? { attempt } : { attempt, max: Number(max) };
}

const flatHeaders = (headers: http.IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers).flatMap(([name, value]) =>
      value === undefined || PER_HOP.has(name) ? [] : [[name, Array.isArray(value) ? value.join(", ") : value]],
    ),
  );

function readAll(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

/** Writes a whole answer with its length, and its CRC32 where the service sends one (DynamoDB). */
function writeWhole(res: http.ServerResponse, answer: ProxiedResponse, withCrc: boolean): void {
  if (res.destroyed) return;
  const body = Buffer.isBuffer(answer.body) ? answer.body : Buffer.from(answer.body, "utf8");
  const headers = Object.fromEntries(Object.entries(answer.headers ?? {}).filter(([name]) => !PER_HOP.has(name.toLowerCase())));
  res.writeHead(answer.status, {
    ...headers,
    "content-length": body.length,
    ...(withCrc ? { "x-amz-crc32": String(crc32(body)) } : {}),
  });
  res.end(body);
}

/** An SQS answer with the queue URLs it names (`QueueUrl`, `QueueUrls`) on the proxy's host. */
function throughProxy(body: Buffer, host: string): Buffer {
  let output: Record<string, unknown>;
  try {
    output = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
  } catch {
    return body;
  }
  const moved = (url: unknown) => {
    if (typeof url !== "string" || !URL.canParse(url)) return url;
    const parsed = new URL(url);
    return `http://${host}${parsed.pathname}${parsed.search}`;
  };
  if ("QueueUrl" in output) output.QueueUrl = moved(output.QueueUrl);
  if (Array.isArray(output.QueueUrls)) output.QueueUrls = output.QueueUrls.map(moved);
  return Buffer.from(JSON.stringify(output), "utf8");
}

/** One proxy: the service it stands in front of and the way there. */
interface Hop {
  readonly service: ProxiedService;
  readonly target: URL;
  readonly agent: http.Agent;
  /** The proxy's own host (`127.0.0.1:<port>`), once it listens. */
  host: string;
}

/** A request read whole, waiting to be forwarded. */
interface Held {
  readonly hop: Hop;
  readonly req: http.IncomingMessage;
  readonly res: http.ServerResponse;
  readonly body: Buffer;
}

/**
 * Sends a request read whole on to the service. A kept-alive connection the service closed just
 * as it was reused fails at once; that request is sent again on a fresh one (the body is at hand).
 */
function forward(held: Held, body: Buffer, retried = false): Promise<http.IncomingMessage> {
  const { hop, req } = held;
  return new Promise((resolve, reject) => {
    const upstream = http.request(
      {
        host: hop.target.hostname,
        port: hop.target.port,
        path: req.url,
        method: req.method,
        agent: hop.agent,
        headers: { ...flatHeaders(req.headers), host: hop.target.host, "content-length": body.length },
      },
      resolve,
    );
    upstream.on("error", (error) => {
      if (upstream.reusedSocket && !retried && (error as NodeJS.ErrnoException).code === "ECONNRESET") {
        forward(held, body, true).then(resolve, reject);
      } else reject(error);
    });
    upstream.end(body);
  });
}

export interface FaultProxyOptions {
  /**
   * The endpoints to stand in front of; the others are given back as they are. Each proxy is one
   * more hop, served by the local system's main process, for every call to its service (Kinesis'
   * pollers make many): a run proxies what its faults need.
   * @default every endpoint
   */
  readonly services?: readonly ProxiedService[];
}

/** Creates the proxies; each starts when the system wraps an endpoint with `wrapEndpoint`. */
export function createFaultProxies(options: FaultProxyOptions = {}): FaultProxies {
  const proxied = (service: ProxiedService) => options.services === undefined || options.services.includes(service);
  const rules = new Map<ProxiedService, FaultRule>();
  const tallies = new Map<ProxiedService, { seen: number; faulted: number; retried: number }>();
  const hanging = new Map<ProxiedService, Set<() => void>>();
  const servers: { server: http.Server; hop: Hop }[] = [];
  const tally = (service: ProxiedService) =>
    tallies.get(service) ?? tallies.set(service, { seen: 0, faulted: 0, retried: 0 }).get(service)!;

  /** Answers hanging requests of `service` by forwarding them. */
  const release = (service: ProxiedService) => {
    const held = hanging.get(service);
    hanging.delete(service);
    for (const forwardNow of held ?? []) forwardNow();
  };

  const failed = (held: Held, error: unknown) => {
    const message = `fault proxy for ${held.hop.service}: ${held.hop.target.origin} did not answer: ${(error as Error).message}`;
    if (held.res.headersSent) return void held.res.destroy();
    writeWhole(held.res, { status: 502, headers: { "content-type": "text/plain" }, body: message }, false);
  };

  /** Forwards, then streams the answer back, or hands it whole to `change` first. */
  const pass = (held: Held, body: Buffer, change?: (answer: ProxiedResponse) => ProxiedResponse) => {
    const { hop, res } = held;
    const operation =
      String(held.req.headers["x-amz-target"] ?? "")
        .split(".")
        .at(-1) ?? "";
    const queueUrls = hop.service === "sqs" && QUEUE_URL_OPERATIONS.has(operation);
    forward(held, body).then(
      (answer) => {
        if (!change && !queueUrls) {
          const headers = Object.fromEntries(
            Object.entries(answer.headers).filter(([name]) => name !== "connection" && name !== "keep-alive"),
          );
          res.writeHead(answer.statusCode ?? 502, headers);
          answer.pipe(res);
          return;
        }
        readAll(answer).then(
          (whole) => {
            let given: ProxiedResponse = { status: answer.statusCode ?? 502, headers: flatHeaders(answer.headers), body: whole };
            if (queueUrls) given = { ...given, body: throughProxy(whole, hop.host) };
            writeWhole(res, change ? change(given) : given, "x-amz-crc32" in answer.headers);
          },
          (error: unknown) => failed(held, error),
        );
      },
      (error: unknown) => failed(held, error),
    );
  };

  const act = (held: Held, action: FaultAction) => {
    switch (action.kind) {
      case "pass":
        if (!action.onAnswer) return pass(held, held.body);
        return pass(held, held.body, (answer) => (action.onAnswer!(answer), answer));
      case "respond": {
        const { kind: _kind, ...answer } = action;
        return writeWhole(held.res, answer, held.hop.service === "dynamodb" || held.hop.service === "table");
      }
      case "delay":
        return void setTimeout(() => pass(held, held.body), action.ms);
      case "hang": {
        const set = hanging.get(held.hop.service) ?? hanging.set(held.hop.service, new Set()).get(held.hop.service)!;
        const forwardNow = () => pass(held, held.body);
        set.add(forwardNow);
        // A client that gives up takes its request with it.
        held.res.on("close", () => set.delete(forwardNow));
        return;
      }
      case "rewrite":
        return pass(held, action.request ? action.request(held.body) : held.body, action.response);
    }
  };

  const handle = (hop: Hop, req: http.IncomingMessage, res: http.ServerResponse) => {
    const counts = tally(hop.service);
    counts.seen += 1;
    if (sdkAttempt(req.headers).attempt > 1) counts.retried += 1;
    readAll(req).then(
      (body) => {
        const held: Held = { hop, req, res, body };
        const rule = rules.get(hop.service);
        let action: FaultAction = { kind: "pass" };
        if (rule) {
          try {
            action = rule({
              service: hop.service,
              method: req.method ?? "GET",
              path: req.url ?? "/",
              headers: req.headers,
              ...(typeof req.headers["x-amz-target"] === "string" ? { target: req.headers["x-amz-target"] } : {}),
              body,
            }) ?? { kind: "pass" };
          } catch (error) {
            console.error(`fault proxy for ${hop.service}: its rule threw: ${(error as Error).stack ?? String(error)}`);
            action = { kind: "respond", status: 500, body: `fault rule for ${hop.service} threw: ${(error as Error).message}` };
          }
        }
        if (action.kind !== "pass") counts.faulted += 1;
        act(held, action);
      },
      () => res.destroy(),
    );
  };

  return {
    async wrapEndpoint(service, url) {
      if (!proxied(service)) return url;
      const hop: Hop = {
        service,
        target: new URL(url),
        agent: new http.Agent({ keepAlive: true, maxSockets: 256 }),
        host: "",
      };
      const server = http.createServer((req, res) => handle(hop, req, res));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      hop.host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      servers.push({ server, hop });
      return `http://${hop.host}`;
    },
    set(service, rule) {
      if (rule && !proxied(service)) {
        throw new Error(`no fault proxy stands in front of ${service}: these proxies serve ${options.services!.join(", ")}`);
      }
      if (rule) rules.set(service, rule);
      else rules.delete(service);
      release(service);
    },
    clear() {
      rules.clear();
      for (const service of [...hanging.keys()]) release(service);
    },
    counts(service) {
      return { ...tally(service) };
    },
    async close() {
      hanging.clear();
      await Promise.all(
        servers.splice(0).map(async ({ server, hop }) => {
          server.closeAllConnections();
          await new Promise<void>((resolve) => server.close(() => resolve()));
          hop.agent.destroy();
        }),
      );
    },
  };
}
