/**
 * JSON over HTTP to the external services (accounts ARAI API, model serving): a time bound on
 * every attempt, at most two retries with exponential backoff for what is worth retrying
 * (network failures, timeouts, 429 and 5xx), and errors that say which service, which
 * operation and what came back.
 */
import { namedError } from "./errors";
import type { CallRecorder } from "./metrics";
import { withRetries } from "./retry";

export interface HttpClientOptions {
  /** Service name used in errors, e.g. "accounts ARAI API". */
  readonly service: string;
  /** Bound on each attempt. */
  readonly timeoutMs: number;
  /** @default 2 */
  readonly retries?: number;
  /** @default 100 */
  readonly baseDelayMs?: number;
  /** Headers sent with every request (credentials, client id). */
  readonly headers?: () => Record<string, string> | Promise<Record<string, string>>;
  readonly fetch?: typeof fetch;
  /** Counts and times each request, its retries included (runtime/metrics.ts). */
  readonly calls?: CallRecorder;
  /**
   * Failures that are the service's answer rather than its failure (ARAI's 404 for a fan it does
   * not know): not counted as failed calls. @default none
   */
  readonly isAnswer?: (error: HttpServiceError) => boolean;
}

/** What a service's client takes through to its HTTP client: the bound and retries of each call, the fetch to use, and the call metrics. */
export type HttpCallOptions = Pick<HttpClientOptions, "timeoutMs" | "retries" | "baseDelayMs" | "fetch" | "calls">;

export interface HttpRequest {
  /** Operation name used in errors, e.g. "GET account activity". */
  readonly operation: string;
  readonly url: string;
  readonly method?: "GET" | "POST";
  readonly body?: unknown;
  /** Headers of this request alone, sent with every attempt of it (an idempotency key). */
  readonly headers?: Record<string, string>;
}

export interface HttpResponse {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Headers;
}

/** A failed call: names the service, the operation, and what came back (status and body start). */
export interface HttpServiceError extends Error {
  readonly name: "HttpServiceError";
  readonly service: string;
  readonly operation: string;
  readonly status: number | undefined;
  readonly attempts: number;
  /** Not worth another attempt: the request itself was refused. */
  readonly permanent: boolean;
}

/** Builds an HttpServiceError (a named error: see runtime/errors.ts). */
export function httpServiceError(
  service: string,
  operation: string,
  status: number | undefined,
  detail: string,
  attempts: number,
  options?: { cause?: unknown },
): HttpServiceError {
  const message = `${service} ${operation} failed${attempts > 1 ? ` after ${attempts} attempts` : ""}: ${status === undefined ? "" : `HTTP ${status}: `}${detail}`;
  const permanent = status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429;
  return namedError("HttpServiceError", message, { service, operation, status, attempts, permanent }, options);
}

export function isHttpServiceError(error: unknown): error is HttpServiceError {
  return error instanceof Error && error.name === "HttpServiceError";
}

const excerpt = (text: string) => (text.length > 300 ? `${text.slice(0, 300)}…` : text) || "(empty body)";

export function createHttpClient(options: HttpClientOptions) {
  const doFetch = options.fetch ?? fetch;
  const retries = options.retries ?? 2;
  const calls: CallRecorder = options.calls ?? ((action) => action());
  const isFailure = (error: unknown) => !(isHttpServiceError(error) && options.isAnswer?.(error));

  /** One request, with its retries. */
  async function send(req: HttpRequest): Promise<HttpResponse> {
    let attempts = 0;
    return withRetries(
      async () => {
        attempts += 1;
        const headers: Record<string, string> = { accept: "application/json", ...(await options.headers?.()), ...req.headers };
        if (req.body !== undefined) headers["content-type"] = "application/json";
        let response: Response;
        try {
          response = await doFetch(req.url, {
            method: req.method ?? "GET",
            headers,
            body: req.body === undefined ? undefined : JSON.stringify(req.body),
            signal: AbortSignal.timeout(options.timeoutMs),
          });
        } catch (error) {
          const timedOut = (error as Error).name === "TimeoutError";
          const detail = timedOut ? `no answer within ${options.timeoutMs} ms` : `${(error as Error).message}${causeOf(error)}`;
          throw httpServiceError(options.service, req.operation, undefined, detail, attempts, { cause: error });
        }
        const text = await response.text();
        if (!response.ok) throw httpServiceError(options.service, req.operation, response.status, excerpt(text), attempts);
        try {
          return {
            status: response.status,
            body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined,
            headers: response.headers,
          };
        } catch {
          throw httpServiceError(
            options.service,
            req.operation,
            response.status,
            `answer is not JSON: ${excerpt(text)}`,
            attempts,
          );
        }
      },
      {
        attempts: retries + 1,
        baseDelayMs: options.baseDelayMs ?? 100,
        retryable: (error) => !(isHttpServiceError(error) && error.permanent),
      },
    );
  }

  return async function request(req: HttpRequest): Promise<HttpResponse> {
    return calls(() => send(req), isFailure);
  };
}

function causeOf(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return cause ? ` (${cause.code ?? cause.message})` : "";
}
