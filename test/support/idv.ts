/**
 * Identity-verification state as the workers leave it, for the runs that start from it.
 */
import { createHmac } from "node:crypto";
import { sessionExpiry, sessionKey, type SessionItem } from "../../workers/shared/idv/session";
import { fixture } from "./fixtures";
import { WireServer } from "./http";

/** A liveness session checkLiveness created a minute ago for `globalUserId`, awaiting Persona's webhook for `inquiry`. */
export function sessionAwaitingWebhook(globalUserId: string, inquiry: string): SessionItem {
  const created = new Date(Date.now() - 60_000).toISOString();
  return {
    userId: sessionKey(globalUserId, "liveness"),
    type: "idvSession",
    globalUserId,
    verificationType: "liveness",
    vendorSessionId: inquiry,
    status: "created",
    statusHistory: [{ status: "created", at: created }],
    decisions: [],
    created,
    updated: created,
    ...sessionExpiry("created", created),
  };
}

/**
 * Persona's webhook that `inquiry` completed, as API Gateway delivers it, its `Persona-Signature`
 * made with `secret` (`t=<seconds>,v1=<HMAC-SHA256 of "<t>.<body>">`).
 */
export function personaWebhookEvent(inquiry: string, secret: string) {
  const template = fixture<{ body: string; headers: Record<string, string>; multiValueHeaders: Record<string, string[]> }>(
    "apigateway-persona-webhook.json",
  );
  const webhook = JSON.parse(template.body) as {
    data: { attributes: { "created-at": string; payload: { data: { id: string } } } };
  };
  webhook.data.attributes["created-at"] = new Date().toISOString();
  webhook.data.attributes.payload.data.id = inquiry;
  const body = JSON.stringify(webhook);
  const t = Math.floor(Date.now() / 1000);
  const header = `t=${t},v1=${createHmac("sha256", secret).update(`${t}.${body}`).digest("hex")}`;
  return {
    ...template,
    body,
    headers: { ...template.headers, "Persona-Signature": header },
    multiValueHeaders: { ...template.multiValueHeaders, "Persona-Signature": [header] },
  };
}

/** Persona's inquiry API: each inquiry created gets the id `nextId()` gives, and the session token named. */
export function startPersona(nextId: () => string, sessionToken: string): Promise<WireServer> {
  return WireServer.start((request) => {
    const body = JSON.parse(request.body) as { data: { attributes: Record<string, string> } };
    return {
      status: 201,
      body: {
        data: {
          type: "inquiry",
          id: nextId(),
          attributes: {
            status: "created",
            "reference-id": body.data.attributes["reference-id"],
            "created-at": new Date().toISOString(),
          },
        },
        meta: { "session-token": sessionToken },
      },
    };
  });
}
