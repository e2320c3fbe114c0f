/**
 * The functions' synchronous triggers, over local HTTP:
 *
 * - `POST /graphql/<field>` as AppSync calls a Lambda resolver: the request's `Authorization`
 *   header goes first to the API's Lambda authoriser (its AppSync authoriser event); denied, the
 *   answer is AppSync's 401; allowed, the resolver function of that name is invoked with
 *   AppSync's resolver event (`arguments` from the body, `identity.resolverContext` from the
 *   authoriser) and its result answered as GraphQL data. Only functions the program lets AppSync
 *   invoke are reachable.
 * - every REST API route the program declares (method and path), as API Gateway delivers it:
 *   required headers and query strings, then the body against the method's model (JSON Schema
 *   draft 4), answered with the API's gateway responses when they fail; then the proxy event to
 *   the integrated function and its proxy result back.
 * - Lambda's Invoke API, `POST /2015-03-31/functions/<name or ARN>/invocations`, for any planned
 *   function (invokeApi.ts), so `AWS_ENDPOINT_URL_LAMBDA` can point at the gateway.
 */
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import Ajv from "ajv";
import { answerInvoke, INVOKE_PATH } from "./invokeApi";
import type { InvokeOutcome } from "./lambda/pool";
import type { ApiRoute, Wiring } from "./wiring";

export interface GatewayOptions {
  readonly wiring: Wiring;
  readonly invoke: (functionName: string, event: unknown) => Promise<InvokeOutcome>;
  /** Asynchronous invocation (Invoke with InvocationType Event); without it the Invoke API refuses Event. */
  readonly invokeAsync?: (functionName: string, event: unknown) => Promise<void>;
  /** The AppSync API's Lambda authoriser. */
  readonly authorizer?: string;
  readonly accountId: string;
}

export interface Gateway {
  readonly url: string;
  close(): Promise<void>;
}

interface Answer {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body: string;
}

const json = (status: number, body: unknown): Answer => ({
  status,
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

function appsyncApiId(wiring: Wiring): string {
  const grant = wiring.grants.find((candidate) => candidate.principal === "appsync.amazonaws.com" && candidate.sourceArn);
  return grant?.sourceArn?.split("/").at(-1) ?? "localgraphqlapi";
}

/**
 * The event AppSync hands its Lambda authoriser for a request to `field` carrying `headers`
 * (their `authorization` is the token), as the gateway sends it.
 */
export function authorizerEvent(
  wiring: Wiring,
  accountId: string,
  field: string,
  headers: Readonly<Record<string, string>>,
  requestId: string,
) {
  return {
    authorizationToken: headers.authorization ?? "",
    requestContext: {
      apiId: appsyncApiId(wiring),
      accountId,
      requestId,
      queryString: `query { ${field} }`,
      operationName: field,
      variables: {},
    },
    requestHeaders: headers,
  };
}

async function graphql(options: GatewayOptions, field: string, request: http.IncomingMessage, text: string): Promise<Answer> {
  const { wiring } = options;
  const resolver = wiring.functions.find(
    (fn) =>
      fn.worker === field && wiring.grants.some((g) => g.functionName === fn.name && g.principal === "appsync.amazonaws.com"),
  );
  if (!resolver) return json(404, { errors: [{ errorType: "NotFound", message: `no AppSync resolver function ${field}` }] });
  let body: { arguments?: unknown; source?: unknown };
  try {
    body = text ? (JSON.parse(text) as typeof body) : {};
  } catch {
    return json(400, { errors: [{ errorType: "MalformedHttpRequestException", message: "the body is not JSON" }] });
  }
  const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
  const requestId = randomUUID();
  let resolverContext: unknown = {};
  if (options.authorizer) {
    const authorized = await options.invoke(
      options.authorizer,
      authorizerEvent(wiring, options.accountId, field, headers, requestId),
    );
    const verdict = authorized.result as { isAuthorized?: unknown; resolverContext?: unknown } | undefined;
    if (authorized.error || verdict?.isAuthorized !== true) {
      return json(401, {
        errors: [{ errorType: "UnauthorizedException", message: "You are not authorized to make this call." }],
      });
    }
    resolverContext = verdict.resolverContext ?? {};
  }
  const outcome = await options.invoke(resolver.name, {
    arguments: body.arguments ?? {},
    identity: { resolverContext },
    source: body.source ?? null,
    request: { headers: { ...headers, "x-amzn-requestid": requestId }, domainName: null },
    prev: null,
    info: { selectionSetList: [], selectionSetGraphQL: "", parentTypeName: "Query", fieldName: field, variables: {} },
    stash: {},
  });
  if (outcome.error) {
    return json(200, {
      data: { [field]: null },
      errors: [{ path: [field], errorType: "Lambda:Unhandled", message: outcome.error.errorMessage }],
    });
  }
  return json(200, { data: { [field]: outcome.result } });
}

const GATEWAY_MESSAGES: Record<string, string> = {
  BAD_REQUEST_BODY: "Invalid request body",
  BAD_REQUEST_PARAMETERS: "Missing required request parameters",
};

/**
 * A gateway response for a failed validation, its template filled in as API Gateway fills it:
 * `messageString` quoted, `validationErrorString` as it stands (written here without quotes).
 */
function gatewayResponse(route: ApiRoute, type: string, validation: string, requestId: string): Answer {
  const message = GATEWAY_MESSAGES[type]!;
  const response = route.responses[type];
  if (!response?.template) return json(400, { message });
  const body = response.template
    .replaceAll("$context.error.validationErrorString", validation.replaceAll('"', "'"))
    .replaceAll("$context.error.messageString", JSON.stringify(message))
    .replaceAll("$context.requestId", requestId);
  return { status: response.statusCode, headers: { "content-type": "application/json" }, body };
}

function validate(route: ApiRoute, request: http.IncomingMessage, url: URL, text: string, requestId: string): Answer | undefined {
  const missingHeaders = route.requiredHeaders.filter((name) => request.headers[name] === undefined);
  const missingQuery = route.requiredQueryStrings.filter((name) => !url.searchParams.has(name));
  const missing = [...missingHeaders, ...missingQuery];
  if (missing.length > 0) {
    return gatewayResponse(
      route,
      "BAD_REQUEST_PARAMETERS",
      `Missing required request parameters: [${missing.join(", ")}]`,
      requestId,
    );
  }
  if (!route.bodySchema) return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return gatewayResponse(route, "BAD_REQUEST_BODY", "[the body is not JSON]", requestId);
  }
  const ajv = new Ajv({ schemaId: "auto", allErrors: true });
  ajv.addMetaSchema(require("ajv/lib/refs/json-schema-draft-04.json") as object);
  if (ajv.validate(route.bodySchema, body)) return undefined;
  const problems = (ajv.errors ?? []).map((error) => `${error.dataPath || "(body)"} ${error.message}`).join("; ");
  return gatewayResponse(route, "BAD_REQUEST_BODY", `[${problems}]`, requestId);
}

function proxyEvent(
  route: ApiRoute,
  request: http.IncomingMessage,
  url: URL,
  text: string,
  requestId: string,
  accountId: string,
) {
  const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
  const query = url.searchParams.size > 0 ? Object.fromEntries(url.searchParams) : null;
  return {
    resource: route.path,
    path: url.pathname,
    httpMethod: route.method,
    headers,
    multiValueHeaders: Object.fromEntries(Object.entries(headers).map(([name, value]) => [name, [value]])),
    queryStringParameters: query,
    multiValueQueryStringParameters:
      query && Object.fromEntries([...url.searchParams.keys()].map((key) => [key, url.searchParams.getAll(key)])),
    pathParameters: null,
    stageVariables: null,
    requestContext: {
      resourcePath: route.path,
      httpMethod: route.method,
      path: url.pathname,
      accountId,
      protocol: `HTTP/${request.httpVersion}`,
      stage: route.stage,
      requestTimeEpoch: Date.now(),
      requestId,
      identity: { sourceIp: request.socket.remoteAddress ?? "127.0.0.1", userAgent: headers["user-agent"] ?? null },
      domainName: headers.host,
      apiId: route.api,
    },
    body: text,
    isBase64Encoded: false,
  };
}

async function rest(
  options: GatewayOptions,
  route: ApiRoute,
  request: http.IncomingMessage,
  url: URL,
  text: string,
): Promise<Answer> {
  const requestId = randomUUID();
  const refused = validate(route, request, url, text, requestId);
  if (refused) return refused;
  const outcome = await options.invoke(route.functionName, proxyEvent(route, request, url, text, requestId, options.accountId));
  const result = outcome.result as { statusCode?: number; headers?: Record<string, string>; body?: string } | undefined;
  if (outcome.error || typeof result?.statusCode !== "number") return json(502, { message: "Internal server error" });
  return { status: result.statusCode, headers: result.headers, body: result.body ?? "" };
}

/**
 * A gateway listening on a loopback port the system chose (the kernel's, so no other listener
 * can take it meanwhile), before what it answers is known: the stand-ins need its address first
 * (Persona sends its webhooks there). Requests that arrive before `serve` wait for it.
 */
export interface OpenGateway {
  readonly url: string;
  readonly port: number;
  /** Answers every request, those waiting included, with `options`. */
  serve(options: GatewayOptions): Gateway;
  close(): Promise<void>;
}

/** Opens the gateway on a free loopback port; it answers once `serve` is called. */
export async function openGateway(): Promise<OpenGateway> {
  let serve!: (options: GatewayOptions) => void;
  const served = new Promise<GatewayOptions>((resolve) => (serve = resolve));
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      served
        .then((options) => answer(options, request, text))
        .then(
          (done) => response.writeHead(done.status, done.headers).end(done.body),
          (error: unknown) => response.writeHead(500, { "content-type": "text/plain" }).end(String(error)),
        );
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => (server.off("error", reject), resolve()));
  });
  const port = (server.address() as AddressInfo).port;
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    serve(options) {
      serve(options);
      return { url, close };
    },
    close,
  };
}

function answer(options: GatewayOptions, request: http.IncomingMessage, text: string): Promise<Answer> {
  const url = new URL(request.url ?? "/", "http://localhost");
  const field = /^\/graphql\/([A-Za-z0-9_]+)$/.exec(url.pathname)?.[1];
  const invoked = INVOKE_PATH.exec(url.pathname)?.[1];
  const route = options.wiring.routes.find((candidate) => candidate.path === url.pathname && candidate.method === request.method);
  const invocationType = request.headers["x-amz-invocation-type"];
  return request.method === "POST" && invoked
    ? answerInvoke(
        { functions: options.wiring.functions, invoke: options.invoke, invokeAsync: options.invokeAsync },
        decodeURIComponent(invoked),
        typeof invocationType === "string" ? invocationType : undefined,
        text,
      )
    : request.method === "POST" && field
      ? graphql(options, field, request, text)
      : route
        ? rest(options, route, request, url, text)
        : Promise.resolve(json(404, { message: `no route ${request.method} ${url.pathname}` }));
}

/** Starts the gateway on a free loopback port. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  return (await openGateway()).serve(options);
}
