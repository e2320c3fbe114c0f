import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { type DynamoDBDocumentClient, UpdateCommand, type UpdateCommandInput } from "@aws-sdk/lib-dynamodb";
import { z } from "../shared/zod";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { batchGetItems, createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { namedError } from "../shared/runtime/errors";
import { describeIssues } from "../shared/runtime/issues";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger, describeError, type Logger } from "../shared/runtime/logging";
import { createWorkerMetrics, discardedMetrics, failureReasonOf, type WorkerMetrics } from "../shared/runtime/metrics";
import { createSecretReader } from "../shared/runtime/secrets";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import { isObject } from "../shared/runtime/values";
import { sessionExpiry, sessionKey, type SessionStatus, STATUS_OF_EVENT } from "../shared/idv/session";
import { personaWebhookSchema } from "../shared/idv/webhook";
import { MAX_GLOBAL_USER_ID_LENGTH } from "../shared/scoring/activity";
import { KEY } from "../shared/scoring/table";
import { handleEventContract, type HandleEventEnvironment, SECRETS_MAX_AGE_MS } from "./contract";
import { verifySignature } from "./signature";

/** Why a webhook is refused; also the `name` of the error an AppSync resolver throws, which AppSync reports as its type. */
export type WebhookErrorType = "Unauthorized" | "InvalidEvent" | "NotFound";

/** What an AppSync resolver answers for a webhook it took (applied, or ignored as not for a session's status). */
export interface WebhookReceipt {
  readonly received: true;
}

/** A REST API (v1) proxy integration's answer. */
export interface ProxyResult {
  readonly statusCode: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

const STATUS_CODES: Readonly<Record<WebhookErrorType, number>> = { Unauthorized: 401, InvalidEvent: 400, NotFound: 404 };

/**
 * What a session lookup reads: enough to pick the inquiry's session, order its updates and keep
 * the fan's last approval in its expiry, not its decisions.
 */
const SESSION_ATTRIBUTES: readonly string[] = [KEY, "vendorSessionId", "status", "updated", "lastApprovedAt"];

/** The webhook as received, whichever way it came. */
export interface WebhookRequest {
  readonly via: "apigateway" | "appsync";
  /** The body's bytes as Persona signed them. */
  readonly rawBody: Buffer;
  /** The `Persona-Signature` value; undefined when the request carries none. */
  readonly signature: string | undefined;
  readonly requestId?: string;
}

type Refusal = { readonly errorType: WebhookErrorType; readonly message: string };
type Outcome = { readonly received: true; readonly refused?: undefined } | { readonly refused: Refusal };

/**
 * A header's value, its name matched regardless of case, from `headers` or, failing that,
 * `multiValueHeaders` (several values joined by a space, as rotation pairs are).
 */
export function headerValue(event: Record<string, unknown>, name: string): string | undefined {
  const wanted = name.toLowerCase();
  if (isObject(event.headers)) {
    for (const [key, value] of Object.entries(event.headers)) {
      if (key.toLowerCase() === wanted && typeof value === "string") return value;
    }
  }
  if (isObject(event.multiValueHeaders)) {
    for (const [key, values] of Object.entries(event.multiValueHeaders)) {
      if (key.toLowerCase() === wanted && Array.isArray(values) && values.length > 0) {
        return values.filter((value): value is string => typeof value === "string").join(" ");
      }
    }
  }
  return undefined;
}

/**
 * The webhook an event carries: a REST API proxy event (`httpMethod`, the header, `body`
 * base64-decoded when `isBase64Encoded`) or an AppSync resolver event (`arguments.body` and
 * `arguments.signature`); otherwise why not.
 */
export function webhookRequest(
  event: unknown,
):
  | { readonly request: WebhookRequest; readonly invalid?: undefined }
  | { readonly invalid: string; readonly via?: "apigateway" | "appsync" } {
  if (!isObject(event)) return { invalid: "event is not an object" };
  if (typeof event.httpMethod === "string") {
    const context = isObject(event.requestContext) ? event.requestContext : {};
    const body = event.body ?? "";
    if (typeof body !== "string") return { invalid: "body is not text", via: "apigateway" };
    return {
      request: {
        via: "apigateway",
        rawBody: Buffer.from(body, event.isBase64Encoded === true ? "base64" : "utf8"),
        signature: headerValue(event, "Persona-Signature"),
        ...(typeof context.requestId === "string" ? { requestId: context.requestId } : {}),
      },
    };
  }
  if ("arguments" in event) {
    const args = isObject(event.arguments) ? event.arguments : {};
    if (typeof args.body !== "string") {
      return { invalid: "arguments.body is missing: expected the raw JSON text of Persona's webhook", via: "appsync" };
    }
    const request = isObject(event.request) && isObject(event.request.headers) ? event.request.headers : {};
    const requestId = request["x-amzn-requestid"];
    return {
      request: {
        via: "appsync",
        rawBody: Buffer.from(args.body, "utf8"),
        signature: typeof args.signature === "string" ? args.signature : undefined,
        ...(typeof requestId === "string" ? { requestId } : {}),
      },
    };
  }
  return { invalid: "event is neither an API Gateway proxy event nor an AppSync resolver event" };
}

/** The webhook's answer to API Gateway. */
export function proxyAnswer(statusCode: number, body: Record<string, unknown>): ProxyResult {
  return { statusCode, headers: { "content-type": "application/json" }, body: JSON.stringify(body) };
}

/** The error an AppSync resolver throws for a refusal, named by the type AppSync reports. */
export function webhookError(errorType: WebhookErrorType, message: string): Error {
  return namedError(errorType, message);
}

/**
 * The one conditional write of a status change. The condition keeps a late, older event from
 * undoing a newer status (and makes a redelivered event a no-op: its time is not older than
 * itself), and a session replaced meanwhile by a new inquiry from taking the old one's status.
 * An approval is remembered as `lastApprovedAt`, and the session kept at least as long as the
 * tiers look back over it.
 */
export function statusUpdate(
  table: string,
  userId: string,
  inquiryId: string,
  change: { readonly status: SessionStatus; readonly at: string; readonly eventId: string },
  approval: { readonly lastApprovedAt?: string; readonly retentionDays: number },
): UpdateCommandInput {
  const lastApprovedAt = change.status === "approved" ? change.at : approval.lastApprovedAt;
  const { expiresAt, expiresOn } = sessionExpiry(change.status, change.at, lastApprovedAt, approval.retentionDays);
  return {
    TableName: table,
    Key: { [KEY]: userId },
    UpdateExpression: `SET #status = :status, #updated = :at, statusHistory = list_append(if_not_exists(statusHistory, :none), :change), expiresAt = :expiresAt, expiresOn = :expiresOn${change.status === "approved" ? ", lastApprovedAt = :at" : ""}`,
    ConditionExpression: "vendorSessionId = :inquiry AND #updated < :at",
    ExpressionAttributeNames: { "#status": "status", "#updated": "updated" },
    ExpressionAttributeValues: {
      ":status": change.status,
      ":at": change.at,
      ":none": [],
      ":change": [{ status: change.status, at: change.at, eventId: change.eventId }],
      ":expiresAt": expiresAt,
      ":expiresOn": expiresOn,
      ":inquiry": inquiryId,
    },
  };
}

export interface HandleEventDependencies {
  readonly env: Pick<
    HandleEventEnvironment,
    "TABLE_NAME" | "SIGNATURE_TOLERANCE_SECONDS" | "VERIFICATION_TYPES" | "APPROVAL_RETENTION_DAYS"
  >;
  readonly logger: Logger;
  readonly documents: DynamoDBDocumentClient;
  /** The webhook secrets in force: one, or two while Persona rotates. */
  readonly readSecrets: () => Promise<readonly string[]>;
  readonly now?: () => number;
  /** The outcome of each webhook (counted processed by the handler wrapper unless counted here). @default none */
  readonly metrics?: WorkerMetrics;
}

/** The webhook handler, with its dependencies passed in. */
export function createHandleEvent(deps: HandleEventDependencies) {
  const { env, logger, documents } = deps;
  const now = deps.now ?? Date.now;
  const schema = personaWebhookSchema();
  const worker = handleEventContract.name;
  const metrics = deps.metrics ?? discardedMetrics();

  /** Takes one webhook; facts about it go to `facts`, for every line logged about it. Throws when it could not be stored. */
  async function receive(request: WebhookRequest, facts: Record<string, unknown>): Promise<Outcome> {
    const refuse = (errorType: WebhookErrorType, message: string, details: Record<string, unknown> = {}): Outcome => {
      logger.warn(`refused: ${message}`, { ...facts, errorType, ...details });
      metrics.failed("invalid");
      return { refused: { errorType, message } };
    };

    let secrets: readonly string[];
    try {
      secrets = await deps.readSecrets();
    } catch (error) {
      throw new Error(`${worker}: webhook secrets not read: ${describeError(error).message}`, { cause: error });
    }
    const verdict = verifySignature({
      header: request.signature,
      rawBody: request.rawBody,
      secrets,
      nowSeconds: Math.floor(now() / 1000),
      toleranceSeconds: env.SIGNATURE_TOLERANCE_SECONDS,
    });
    if (!verdict.ok) return refuse("Unauthorized", verdict.reason, { problem: verdict.problem });

    let document: unknown;
    try {
      document = JSON.parse(request.rawBody.toString("utf8"));
    } catch (error) {
      return refuse("InvalidEvent", `body is not JSON: ${(error as Error).message}`);
    }
    const parsed = schema.safeParse(document);
    if (!parsed.success) {
      const problems = describeIssues(parsed.error, "(body)");
      return refuse("InvalidEvent", `body is not a Persona webhook event: ${problems.join("; ")}`);
    }
    const event = parsed.data.data;
    const inquiry = event.attributes.payload.data;
    const globalUserId = inquiry.attributes["reference-id"];
    Object.assign(facts, { eventId: event.id, eventName: event.attributes.name, inquiryId: inquiry.id, globalUserId });

    // Own keys only: a name such as "constructor" must not find something on the prototype.
    if (!Object.hasOwn(STATUS_OF_EVENT, event.attributes.name)) {
      logger.info("ignored: the event does not change a session's status", facts);
      metrics.skipped(1);
      return { received: true };
    }
    const status = STATUS_OF_EVENT[event.attributes.name]!;

    const createdAt = Date.parse(event.attributes["created-at"]);
    if (Number.isNaN(createdAt)) {
      return refuse("InvalidEvent", `data.attributes.created-at: "${event.attributes["created-at"]}" is not a time`);
    }
    // One spelling (UTC, milliseconds), so times compare as strings here and in the write's condition.
    const at = new Date(createdAt).toISOString();

    if (globalUserId === null || globalUserId.length > MAX_GLOBAL_USER_ID_LENGTH || /\s/.test(globalUserId)) {
      return refuse("NotFound", `inquiry ${inquiry.id} has no reference-id naming a fan, so no session`);
    }

    const keys = env.VERIFICATION_TYPES.map((type) => sessionKey(globalUserId, type));
    let found: Record<string, unknown>[];
    try {
      // Strongly consistent: inquiry.created arrives moments after checkLiveness stored the session.
      const read = await batchGetItems(documents, env.TABLE_NAME, KEY, keys, SESSION_ATTRIBUTES, { consistentRead: true });
      if (read.unread.length > 0) throw new Error(`${read.unread.length} keys still unprocessed after ${read.calls} calls`);
      found = read.items;
    } catch (error) {
      const { message, code } = describeError(error);
      const failure = `BatchGetItem on ${env.TABLE_NAME} failed: ${code ?? "Error"}: ${message}`;
      throw new Error(`${worker}: sessions of ${globalUserId} not read: ${failure}`, { cause: error });
    }
    const session = found.find((item) => item.vendorSessionId === inquiry.id);
    if (!session) {
      return refuse("NotFound", `no session of ${globalUserId} is for inquiry ${inquiry.id}`, {
        sessions: found.map((item) => ({ userId: item[KEY], vendorSessionId: item.vendorSessionId })),
      });
    }
    const userId = String(session[KEY]);
    Object.assign(facts, { userId, status, at });

    if (typeof session.updated === "string" && session.updated >= at) {
      logger.info("ignored: out of order, the session holds a status as new or newer", { ...facts, stored: session.updated });
      metrics.skipped(1);
      return { received: true };
    }
    try {
      await documents.send(
        new UpdateCommand(
          statusUpdate(
            env.TABLE_NAME,
            userId,
            inquiry.id,
            { status, at, eventId: event.id },
            {
              lastApprovedAt: typeof session.lastApprovedAt === "string" ? session.lastApprovedAt : undefined,
              retentionDays: env.APPROVAL_RETENTION_DAYS,
            },
          ),
        ),
      );
    } catch (error) {
      if ((error as Error).name === "ConditionalCheckFailedException") {
        // Written meanwhile by a newer event, or the session now follows another inquiry.
        logger.info("ignored: out of order, the session changed since it was read", facts);
        metrics.skipped(1);
        return { received: true };
      }
      const { message, code } = describeError(error);
      const failure = `UpdateItem on ${env.TABLE_NAME} failed: ${code ?? "Error"}: ${message}`;
      throw new Error(`${worker}: session ${userId} not updated: ${failure}`, { cause: error });
    }
    logger.info("session updated", { ...facts, previous: session.status });
    return { received: true };
  }

  return async function handleEvent(event: unknown): Promise<ProxyResult | WebhookReceipt> {
    const taken = webhookRequest(event);
    if (taken.invalid !== undefined) {
      logger.warn(`refused: ${taken.invalid}`, { errorType: "InvalidEvent", via: taken.via });
      metrics.failed("invalid");
      if (taken.via === "apigateway") return proxyAnswer(400, { errorType: "InvalidEvent", message: taken.invalid });
      throw webhookError("InvalidEvent", taken.invalid);
    }
    const { request } = taken;
    const facts: Record<string, unknown> = { via: request.via, requestId: request.requestId };
    let outcome: Outcome;
    try {
      outcome = await receive(request, facts);
    } catch (error) {
      // Persona retries a webhook that is not answered 2xx, so nothing is lost.
      logger.error("not stored: answering an error so Persona retries", { ...facts, error: describeError(error) });
      metrics.failed(failureReasonOf(error));
      if (request.via === "appsync") throw error;
      return proxyAnswer(500, { errorType: "InternalError", message: "the event could not be stored; retry later" });
    }
    if (request.via === "apigateway") {
      return outcome.refused
        ? proxyAnswer(STATUS_CODES[outcome.refused.errorType], { ...outcome.refused })
        : proxyAnswer(200, { received: true });
    }
    if (outcome.refused) throw webhookError(outcome.refused.errorType, outcome.refused.message);
    return { received: true };
  };
}

export const handleEvent = defineWorker(handleEventContract, () => {
  const env = loadEnvironment(handleEventContract);
  const logger = createLogger(handleEventContract);
  const metrics = createWorkerMetrics(handleEventContract);
  const readSecrets = createSecretReader({
    secretId: env.WEBHOOK_SECRETS_ARN,
    schema: z.object({ secrets: z.array(z.string().check(z.minLength(1))).check(z.minLength(1)) }),
    maxAgeMs: SECRETS_MAX_AGE_MS,
    client: new SecretsManagerClient(awsClientConfig(AWS_CLIENT_BOUNDS.webhook.secretsManager)),
    // Past it the cached secrets check the signature, or the webhook is answered 500 and Persona
    // delivers it again; the function's 10 s leave the rest for the session's read and update.
    waitMs: 2000,
    calls: metrics.calls(DEPENDENCIES.secretsManager),
    onStale: (error) => logger.warn("using the cached webhook secrets: refresh failed", { error: describeError(error) }),
  });
  const documents = createDocumentClient(new DynamoDBClient(awsClientConfig(AWS_CLIENT_BOUNDS.webhook.dynamoDb)));
  const handler = createHandleEvent({ env, logger, documents, readSecrets: async () => (await readSecrets()).secrets, metrics });
  return instrumentHandler({ logger, metrics, request: true }, handler);
});
