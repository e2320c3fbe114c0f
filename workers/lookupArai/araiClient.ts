/**
 * The accounts ARAI API (docs/rules.md#arai-response): GET account activity for one globalUserId,
 * with basic credentials and the client id, a time bound on each attempt and at most two retries
 * with backoff (the runtime HTTP client). The answer is `{data, meta}` (araiDocument.ts); the
 * client hands on `data`, the fan's account activity. A fan the accounts service does not know
 * (404) is an answer, not a failure: asking again would not change it.
 */
import { z } from "../shared/zod";
import { createHttpClient, type HttpCallOptions, httpServiceError, isHttpServiceError } from "../shared/runtime/http";
import { decodeWith } from "../shared/runtime/records";
import { araiAnswerSchema, type UserAccountActivity } from "./araiDocument";

export const ARAI_SERVICE = "accounts ARAI API";
export const ARAI_OPERATION = "GET account activity";

/** The Secrets Manager document holding the API's credentials. */
export const araiCredentialsSchema = () =>
  z.object({
    username: z.string().check(z.minLength(1)),
    password: z.string().check(z.minLength(1)),
    clientId: z.string().check(z.minLength(1)),
  });
export type AraiCredentials = z.infer<ReturnType<typeof araiCredentialsSchema>>;

export type AraiLookup =
  /** The answer's `data`: the fan's account activity, every field as sent. */
  | { readonly status: "found"; readonly arai: UserAccountActivity }
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
  const schema = araiAnswerSchema();
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
      // Not retried: the service answered, and would answer the same again.
      const decoded = decodeWith(schema, body, "ARAI answer");
      if (!decoded.ok) throw httpServiceError(ARAI_SERVICE, ARAI_OPERATION, 200, decoded.reason, 1);
      const { data } = decoded.value;
      // Stored under this fan and scored as theirs: an answer about someone else must not be.
      if (data.globalUserId !== globalUserId) {
        const reason = `ARAI answer is about ${JSON.stringify(data.globalUserId)}, not the fan asked for (${JSON.stringify(globalUserId)})`;
        throw httpServiceError(ARAI_SERVICE, ARAI_OPERATION, 200, reason, 1);
      }
      return { status: "found", arai: data };
    },
  };
}
