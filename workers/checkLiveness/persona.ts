/**
 * Persona's API (JSON:API): creating an inquiry for a fan. A time bound on each attempt and at most
 * two retries with backoff (the runtime HTTP client); every attempt of one creation carries the same
 * Idempotency-Key, so a retry after a lost answer does not open a second inquiry.
 */
import { randomUUID } from "node:crypto";
import { z } from "../shared/zod";
import { SESSION_STATUSES, type SessionStatus } from "../shared/idv/session";
import { createHttpClient, type HttpCallOptions, httpServiceError } from "../shared/runtime/http";
import { decodeWith } from "../shared/runtime/records";

export const PERSONA_SERVICE = "Persona API";
export const CREATE_INQUIRY = "POST create inquiry";
/** The API version the requests and answers are read in. */
export const PERSONA_VERSION = "2023-01-05";
export const INQUIRIES_PATH = "/api/v1/inquiries";

/** The Secrets Manager document holding the API key. */
export const personaApiKeySchema = () => z.object({ apiKey: z.string().check(z.minLength(8)) });

/** What creating an inquiry answers, checked for what the session keeps. */
const createdInquirySchema = () =>
  z.object({
    data: z.looseObject({
      type: z.literal("inquiry"),
      id: z.string().check(z.regex(/^inq_\w+$/, "expected an inquiry id (inq_…)")),
      attributes: z.looseObject({
        status: z.enum(SESSION_STATUSES),
        "reference-id": z.nullish(z.string()),
      }),
    }),
    meta: z.nullish(z.looseObject({ "session-token": z.nullish(z.string().check(z.minLength(1))) })),
  });

export interface Inquiry {
  /** inq_… */
  readonly id: string;
  readonly status: SessionStatus;
  /** Lets the fan's client open the inquiry; Persona does not always send one. */
  readonly sessionToken?: string;
}

export interface PersonaClientOptions extends HttpCallOptions {
  /** The API's base URL, e.g. https://withpersona.com. */
  readonly apiUrl: string;
  /** The API key, from its secret (cached by the reader). */
  readonly readApiKey: () => Promise<string>;
}

export function createPersonaClient(options: PersonaClientOptions) {
  const schema = createdInquirySchema();
  const url = `${options.apiUrl.replace(/\/+$/, "")}${INQUIRIES_PATH}`;
  const request = createHttpClient({
    service: PERSONA_SERVICE,
    timeoutMs: options.timeoutMs,
    retries: options.retries,
    baseDelayMs: options.baseDelayMs,
    fetch: options.fetch,
    calls: options.calls,
    headers: async () => ({ authorization: `Bearer ${await options.readApiKey()}`, "persona-version": PERSONA_VERSION }),
  });

  return {
    /**
     * Creates an inquiry from the template, referenced by the fan's globalUserId. Throws an
     * HttpServiceError (or the API key's read error) when Persona does not answer with one.
     */
    async createInquiry(templateId: string, referenceId: string): Promise<Inquiry> {
      // Read before the request, so a failure to read the key is reported as such and not retried as an HTTP one.
      await options.readApiKey();
      const { body, status } = await request({
        operation: CREATE_INQUIRY,
        url,
        method: "POST",
        headers: { "idempotency-key": randomUUID() },
        body: { data: { attributes: { "inquiry-template-id": templateId, "reference-id": referenceId } } },
      });
      const decoded = decodeWith(schema, body, "inquiry");
      if (!decoded.ok) throw httpServiceError(PERSONA_SERVICE, CREATE_INQUIRY, status, decoded.reason, 1);
      const { data, meta } = decoded.value;
      // An inquiry referencing someone else would route its webhooks to the wrong fan.
      const answeredReference = data.attributes["reference-id"];
      if (answeredReference !== referenceId) {
        throw httpServiceError(
          PERSONA_SERVICE,
          CREATE_INQUIRY,
          status,
          `inquiry ${data.id} has reference-id ${JSON.stringify(answeredReference ?? null)}, not the one asked for`,
          1,
        );
      }
      const sessionToken = meta?.["session-token"] ?? undefined;
      return { id: data.id, status: data.attributes.status, ...(sessionToken ? { sessionToken } : {}) };
    },
  };
}

export type PersonaClient = ReturnType<typeof createPersonaClient>;
