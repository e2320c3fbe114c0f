/**
 * Persona for the local system (docs/rules.md#persona): the inquiries API checkLiveness calls
 * (`POST /api/v1/inquiries`, JSON:API, bearer API key, idempotency keys), and the webhooks Persona
 * sends as an inquiry moves on. After each inquiry is created, its events (by default
 * inquiry.completed, then inquiry.approved) are POSTed one by one, each `webhookDelayMs` after the
 * last, to the webhook URL, signed as Persona signs them: `Persona-Signature: t=<unix seconds>,v1=<hex
 * HMAC-SHA256 of "<t>.<body>">`, one pair per webhook secret. A delivery not answered 2xx is tried
 * again, up to `webhookAttempts` times. A fault (`setFault`) makes the API answer an error or
 * late, for the drills; webhooks already scheduled are still sent.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { RunningService } from "../types";
import { type Answer, type RecordedRequest, WireServer } from "../wire";
import { createFaultSwitch, type FaultCounts, faultedAnswer, type ServiceFault } from "./fault";

export const INQUIRIES_PATH = "/api/v1/inquiries";

/** The inquiry's status after each event, as Persona reports it. */
export const STATUS_AFTER_EVENT = {
  "inquiry.created": "created",
  "inquiry.started": "pending",
  "inquiry.completed": "completed",
  "inquiry.approved": "approved",
  "inquiry.declined": "declined",
  "inquiry.failed": "failed",
  "inquiry.expired": "expired",
  "inquiry.marked-for-review": "needs_review",
} as const;
export type InquiryEvent = keyof typeof STATUS_AFTER_EVENT;

export interface PersonaInquiry {
  /** inq_… */
  readonly id: string;
  readonly referenceId: string | null;
  readonly templateId: string;
  status: string;
  /** ISO 8601. */
  readonly createdAt: string;
}

/** One webhook sent: what, to whom, and how it was answered. */
export interface WebhookDelivery {
  readonly eventId: string;
  readonly name: InquiryEvent;
  readonly inquiryId: string;
  readonly referenceId: string | null;
  /** The raw body, and the signature header of the last attempt. */
  readonly body: string;
  signature: string;
  attempts: number;
  /** The webhook URL's last HTTP status, or the error that kept it from answering. */
  answeredStatus?: number;
  error?: string;
  delivered: boolean;
}

export interface PersonaOptions {
  /** The API key (the Persona API key secret's `apiKey`). */
  readonly apiKey: string;
  /** The webhook secrets (the webhook secret's `secrets`): one signature pair each. */
  readonly webhookSecrets: readonly string[];
  /** Where webhooks go: the local API's webhook route. */
  readonly webhookUrl: string;
  /** PERSONA_INQUIRY_TEMPLATE_ID; another template is refused. @default any itmpl_… */
  readonly templateId?: string;
  /** The events an inquiry goes through after it is created. @default completed, then approved */
  readonly events?: (inquiry: PersonaInquiry) => readonly InquiryEvent[];
  /** Wait before each event's webhook (and between attempts). @default 1000 */
  readonly webhookDelayMs?: number;
  /** @default 3 */
  readonly webhookAttempts?: number;
}

export interface LocalPersona extends RunningService {
  readonly server: WireServer;
  /** Every inquiry created, oldest first. */
  readonly inquiries: readonly PersonaInquiry[];
  /** Every webhook sent (the latest 1000), oldest first. */
  readonly deliveries: readonly WebhookDelivery[];
  /** Sends the event of an inquiry now; resolves once delivered or given up. */
  sendEvent(inquiryId: string, name: InquiryEvent): Promise<WebhookDelivery>;
  /** Resolves once every webhook scheduled so far has been delivered or given up. */
  idle(): Promise<void>;
  /** Gives the API a fault, or with undefined clears it. */
  setFault(fault: ServiceFault | undefined): void;
  /** The API requests seen since the fault was set, and how many it changed. */
  faultCounts(): FaultCounts;
}

const DEFAULT_EVENTS: readonly InquiryEvent[] = ["inquiry.completed", "inquiry.approved"];
const KEPT_DELIVERIES = 1000;
const randomId = (prefix: string) => `${prefix}${randomBytes(12).toString("hex")}`;
const errors = (status: number, title: string, details?: string): Answer => ({
  status,
  body: { errors: [{ title, ...(details ? { details } : {}) }] },
});

/** The `Persona-Signature` value for `body` at `t`: one `t=…,v1=…` pair per secret, space-separated. */
export function personaSignatureHeader(secrets: readonly string[], t: number, body: string): string {
  return secrets
    .map((secret) => `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`, "utf8").digest("hex")}`)
    .join(" ");
}

/** The inquiry as Persona's API and webhooks describe it. */
const inquiryResource = (inquiry: PersonaInquiry) => ({
  type: "inquiry",
  id: inquiry.id,
  attributes: {
    status: inquiry.status,
    "reference-id": inquiry.referenceId,
    "inquiry-template-id": inquiry.templateId,
    "created-at": inquiry.createdAt,
    fields: {},
  },
});

/** The webhook body of an event that has just happened to `inquiry`. */
function eventBody(eventId: string, name: InquiryEvent, inquiry: PersonaInquiry): string {
  const attributes = { name, "created-at": new Date().toISOString(), payload: { data: inquiryResource(inquiry) } };
  return JSON.stringify({ data: { type: "event", id: eventId, attributes } });
}

/** The template and reference id a create-inquiry body asks for, or the answer refusing it. */
function requestedInquiry(
  body: string,
  templateId: string | undefined,
): { templateId: string; referenceId: string | null } | Answer {
  let attributes: Record<string, unknown> | undefined;
  try {
    attributes = (JSON.parse(body) as { data?: { attributes?: Record<string, unknown> } }).data?.attributes;
  } catch {
    return errors(400, "Bad Request", "body is not JSON");
  }
  const template = attributes?.["inquiry-template-id"];
  if (typeof template !== "string" || !/^itmpl_\w+$/.test(template)) {
    return errors(422, "Unprocessable Entity", "data.attributes.inquiry-template-id must be an inquiry template id");
  }
  if (templateId !== undefined && template !== templateId) return errors(404, "Record not found", `no template ${template}`);
  const reference = attributes?.["reference-id"];
  return { templateId: template, referenceId: typeof reference === "string" ? reference : null };
}

/** Waits `ms`, or less when `signal` aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", wake);
      resolve();
    };
    const timer = setTimeout(wake, ms);
    signal.addEventListener("abort", wake, { once: true });
  });
}

/** One attempt at a delivery, signed now; records how the webhook URL answered, or why it did not. */
async function attemptDelivery(delivery: WebhookDelivery, options: PersonaOptions, signal: AbortSignal): Promise<void> {
  delivery.signature = personaSignatureHeader(options.webhookSecrets, Math.floor(Date.now() / 1000), delivery.body);
  delivery.attempts += 1;
  try {
    const response = await fetch(options.webhookUrl, {
      method: "POST",
      headers: { "content-type": "application/json", "persona-signature": delivery.signature },
      body: delivery.body,
      signal,
    });
    await response.arrayBuffer();
    delivery.answeredStatus = response.status;
    delivery.delivered = response.ok;
    delete delivery.error;
  } catch (error) {
    delivery.error = (error as Error).message;
  }
}

/** Sends the webhooks: each one tried until answered 2xx or out of attempts; all stopped by `stop`. */
function createCourier(options: PersonaOptions) {
  const deliveries: WebhookDelivery[] = [];
  const pending = new Set<Promise<unknown>>();
  const stopped = new AbortController();
  const { signal } = stopped;
  const delayMs = options.webhookDelayMs ?? 1000;
  const maxAttempts = options.webhookAttempts ?? 3;

  async function send(inquiry: PersonaInquiry, name: InquiryEvent): Promise<WebhookDelivery> {
    inquiry.status = STATUS_AFTER_EVENT[name];
    const eventId = randomId("evt_");
    const body = eventBody(eventId, name, inquiry);
    const delivery: WebhookDelivery = {
      eventId,
      name,
      inquiryId: inquiry.id,
      referenceId: inquiry.referenceId,
      body,
      signature: "",
      attempts: 0,
      delivered: false,
    };
    deliveries.push(delivery);
    if (deliveries.length > KEPT_DELIVERIES) deliveries.shift();
    while (!delivery.delivered && delivery.attempts < maxAttempts && !signal.aborted) {
      if (delivery.attempts > 0) await sleep(delayMs, signal);
      if (!signal.aborted) await attemptDelivery(delivery, options, signal);
    }
    return delivery;
  }

  function track<T>(work: Promise<T>): Promise<T> {
    pending.add(work);
    void work.finally(() => pending.delete(work)).catch(() => undefined);
    return work;
  }

  return {
    deliveries,
    send: (inquiry: PersonaInquiry, name: InquiryEvent) => track(send(inquiry, name)),
    /** Sends the inquiry's events in turn, each after the delay. */
    follow(inquiry: PersonaInquiry): void {
      const events = (options.events ?? (() => DEFAULT_EVENTS))(inquiry);
      void track(
        (async () => {
          for (const name of events) {
            await sleep(delayMs, signal);
            if (signal.aborted) return;
            await send(inquiry, name);
          }
        })(),
      );
    },
    async idle(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
    stop: () => stopped.abort(),
  };
}

type Courier = ReturnType<typeof createCourier>;

/** What creating an inquiry answers (201), as Persona's API does. */
const created = (inquiry: PersonaInquiry): Answer => ({
  status: 201,
  body: { data: inquiryResource(inquiry), meta: { "session-token": randomId("sess_") } },
});

/** The responder: creates inquiries (once per idempotency key) and has their events followed. */
function personaResponder(options: PersonaOptions, inquiries: PersonaInquiry[], courier: Courier) {
  const byKey = new Map<string, { body: string; inquiry: PersonaInquiry }>();
  return (request: RecordedRequest): Answer => {
    if (request.url.replace(/\?.*$/, "") !== INQUIRIES_PATH) return errors(404, "Not Found", `no route for ${request.url}`);
    if (request.method !== "POST") return errors(405, "Method Not Allowed");
    if (request.headers.authorization !== `Bearer ${options.apiKey}`) {
      return errors(401, "Unauthorized", "Must be authenticated to access this endpoint");
    }
    const key = request.headers["idempotency-key"];
    const earlier = typeof key === "string" ? byKey.get(key) : undefined;
    if (earlier) {
      return earlier.body === request.body
        ? created(earlier.inquiry)
        : errors(409, "Conflict", "Idempotency-Key reused with another request");
    }
    const asked = requestedInquiry(request.body, options.templateId);
    if (!("templateId" in asked)) return asked;
    const inquiry: PersonaInquiry = { id: randomId("inq_"), ...asked, status: "created", createdAt: new Date().toISOString() };
    inquiries.push(inquiry);
    if (typeof key === "string") byKey.set(key, { body: request.body, inquiry });
    courier.follow(inquiry);
    return created(inquiry);
  };
}

/** Starts the local Persona on a free loopback port, sending webhooks to `options.webhookUrl`. */
export async function startPersona(options: PersonaOptions): Promise<LocalPersona> {
  const inquiries: PersonaInquiry[] = [];
  const courier = createCourier(options);
  const fault = createFaultSwitch<ServiceFault>();
  const respond = personaResponder(options, inquiries, courier);
  const responder = (request: RecordedRequest) => {
    const taken = fault.take();
    return taken
      ? faultedAnswer(
          taken,
          () => respond(request),
          (status) => errors(status, `HTTP ${status}`).body,
        )
      : respond(request);
  };
  const server = await WireServer.start(responder, {
    keep: 1000,
    redactHeaders: ["authorization"],
  });
  return {
    server,
    url: server.url,
    inquiries,
    deliveries: courier.deliveries,
    sendEvent(inquiryId, name) {
      const inquiry = inquiries.find((candidate) => candidate.id === inquiryId);
      if (!inquiry) return Promise.reject(new Error(`no inquiry ${inquiryId}`));
      return courier.send(inquiry, name);
    },
    idle: () => courier.idle(),
    setFault: (next) => fault.set(next),
    faultCounts: () => fault.counts(),
    async close() {
      courier.stop();
      await courier.idle();
      await server.close();
    },
  };
}
