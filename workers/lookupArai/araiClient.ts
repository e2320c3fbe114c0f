/**
 * The accounts ARAI API (docs/rules.md#arai-response): GET account activity for one globalUserId,
 * with basic credentials and the client id, a time bound on each attempt and at most two retries
 * with backoff (the runtime HTTP client). A fan the accounts service does not know (404) is an
 * answer, not a failure: asking again would not change it.
 */
import { z } from "zod";
import { createHttpClient, type HttpCallOptions, httpServiceError, isHttpServiceError } from "../shared/runtime/http";
import { decodeWith } from "../shared/runtime/records";
import type { AraiDocument } from "./trim";

export const ARAI_SERVICE = "accounts ARAI API";
export const ARAI_OPERATION = "GET account activity";

/** The Secrets Manager document holding the API's credentials. */
export const araiCredentialsSchema = () =>
  z.object({ username: z.string().min(1), password: z.string().min(1), clientId: z.string().min(1) });
export type AraiCredentials = z.infer<ReturnType<typeof araiCredentialsSchema>>;

/**
 * What the API answers, checked leniently: the service adds fields over time and the snapshot
 * keeps them all; only the two lists the snapshot trims must be lists.
 */
export const araiDocumentSchema = () =>
  z
    .object({
      loginHistory: z.array(z.unknown()).optional(),
      linkedAccounts: z.array(z.unknown()).optional(),
    })
    .loose();

export type AraiLookup =
  | { readonly status: "found"; readonly arai: AraiDocument }
  /** The accounts service does not know the fan (404). */
  | { readonly status: "unknownFan" };

export interface AraiClientOptions extends HttpCallOptions {
  /** The API's URL with `{globalUserId}` where the fan's id goes (URL-encoded). */
  readonly urlTemplate: string;
  /** The credentials, from their secret (cached by the reader). */
  readonly readCredentials: () => Promise<AraiCredentials>;
}

/** The URL for one fan: the id is URL-encoded, so `/`, `?`, `%` or `|` in it stay inside the path segment. */
export function araiUrl(urlTemplate: string, globalUserId: string): string {
  return urlTemplate.replaceAll("{globalUserId}", () => encodeURIComponent(globalUserId));
}

export function createAraiClient(options: AraiClientOptions) {
  const schema = araiDocumentSchema();
  const request = createHttpClient({
    service: ARAI_SERVICE,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    baseDelayMs: options.baseDelayMs,
    fetch: options.fetch,
    calls: options.calls,
    // The API's answer for a fan it does not know, not a failed call.
    isAnswer: (error) => error.status === 404,
    headers: async () => {
      const { username, password, clientId } = await options.readCredentials();
      return {
        authorization: `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`,
        "x-client-id": clientId,
      };
    },
  });

  return {
    /** The fan's ARAI, or that the fan is unknown; throws (HttpServiceError or a credentials error) otherwise. */
    async fetchArai(globalUserId: string): Promise<AraiLookup> {
      // Read before the request, so a credentials failure is reported as such and not retried as an HTTP one.
      await options.readCredentials();
      let body: unknown;
      try {
        ({ body } = await request({ operation: ARAI_OPERATION, url: araiUrl(options.urlTemplate, globalUserId) }));
      } catch (error) {
        if (isHttpServiceError(error) && error.status === 404) return { status: "unknownFan" };
        throw error;
      }
      const decoded = decodeWith(schema, body, "ARAI document");
      if (!decoded.ok) throw httpServiceError(ARAI_SERVICE, ARAI_OPERATION, 200, decoded.reason, 1);
      return { status: "found", arai: decoded.value };
    },
  };
}
