/**
 * handleEvent against a real local DynamoDB (dynalite) and Secrets Manager at the wire: what each
 * Persona webhook answers, through API Gateway's proxy event and as an AppSync resolver, and what
 * it leaves stored on the fan's IDV session, and what it costs at the service.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import { z } from "zod";
import { handleEventContract } from "../workers/handleEvent/contract";
import { createHandleEvent, handleEvent, type ProxyResult, type WebhookReceipt } from "../workers/handleEvent";
import { signatureHeader } from "../workers/handleEvent/signature";
import { sessionExpiry, sessionKey, type SessionItem } from "../workers/shared/idv/session";
import { loadEnvironment } from "../workers/shared/runtime/environment";
import { createSecretReader } from "../workers/shared/runtime/secrets";
import { AWS_VARIABLES, environmentPerTest, LAMBDA_AWS } from "./support/environment";
import { fixture } from "./support/fixtures";
import { countOperations, operationOf, type WireServer } from "./support/http";
import { type LocalDynamo, startDynamo } from "./support/localAws";
import { captureLogs, linesAt, type LogLine } from "./support/logs";
import { ACCESS_DENIED, secretsManagerClient, startSecrets } from "./support/secrets";
import { DYNAMO_INTERNAL_ERROR, serviceDown } from "./support/streams";

/** The secret the proxy fixture's Persona-Signature was made with. */
const SECRET = "wbhsec_qa1_3vJ8kQ2nX7pL5rT9wY4zB6cDfixture";
const ROTATED_SECRET = "wbhsec_qa1_9hT2mV6xK1pQ4wZ8rN3cL7bFnext";
const SECRETS_ARN = "arn:aws:secretsmanager:us-east-1:210987654321:secret:fanid-qa1/persona-webhook-secrets-Xy7Qp2";
const GLOBAL_USER_ID = "gu-7f3c2a91";
/** The fixture's inquiry. */
const INQUIRY = "inq_4Rk9Vb2Nc7Xm1Qz8Lw5Ty3Pd";
const OTHER_INQUIRY = "inq_9Zt3Wc6Yb1Nd4Qx7Lk2Rm5Vp";
const SESSION_CREATED = "2026-11-24T18:04:52.000Z";
/** When the fixture reached API Gateway (its requestTimeEpoch), and the signature's t. */
const NOW_MS = 1_795_543_755_370;
const SIGNED_AT = Math.floor(NOW_MS / 1000);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Session lifetimes as docs/rules.md#session-lifetimes gives them. */
const LIFETIME_MS: Record<string, number> = {
  created: DAY,
  pending: DAY,
  needs_review: DAY,
  completed: HOUR,
  approved: HOUR,
  failed: HOUR,
  declined: HOUR,
  expired: 0,
};
const RETENTION_S = 30 * 86_400;

/** Event times, a minute apart from when the session was created. */
const minute = (n: number) => new Date(Date.parse(SESSION_CREATED) + n * 60_000).toISOString();

type ProxyEvent = {
  headers: Record<string, string> | null;
  multiValueHeaders: Record<string, string[]> | null;
  body: string | null;
  isBase64Encoded: boolean;
  requestContext: { requestId: string };
} & Record<string, unknown>;
type AppSyncEvent = { arguments: Record<string, unknown> } & Record<string, unknown>;

const PROXY_FIXTURE = fixture<ProxyEvent>("apigateway-persona-webhook.json");
const APPSYNC_FIXTURE = fixture<AppSyncEvent>("appsync-resolver-persona-webhook.json");

interface EventOptions {
  readonly name?: string;
  readonly eventId?: string;
  readonly at?: string;
  readonly inquiryId?: string;
  readonly referenceId?: string | null;
}

let events = 0;
/** The fixture's Persona webhook body (compact JSON, as Persona sends it) with the event given. */
function personaBody(options: EventOptions = {}): string {
  const document = JSON.parse(PROXY_FIXTURE.body!) as {
    data: { id: string; attributes: { name: string; "created-at": string; payload: { data: Record<string, unknown> } } };
  };
  const { data } = document;
  const inquiry = data.attributes.payload.data as { id: string; attributes: Record<string, unknown> };
  data.id = options.eventId ?? `evt_${String(++events).padStart(24, "0")}`;
  data.attributes.name = options.name ?? "inquiry.completed";
  data.attributes["created-at"] = options.at ?? minute(4);
  inquiry.id = options.inquiryId ?? INQUIRY;
  inquiry.attributes.status = data.attributes.name.replace(/^inquiry\./, "");
  if (options.referenceId !== undefined) inquiry.attributes["reference-id"] = options.referenceId;
  return JSON.stringify(document);
}

/** Persona-Signature for `body`, one pair per secret, signed at `t`. */
const sign = (body: string | Buffer, secrets: readonly string[] = [SECRET], t = SIGNED_AT) =>
  signatureHeader(secrets, t, typeof body === "string" ? Buffer.from(body, "utf8") : body);

interface ProxyOptions {
  /** The header's name as the request spells it. */
  readonly headerName?: string;
  /** The header only in multiValueHeaders, headers null (as API Gateway may send). */
  readonly multiValueOnly?: boolean;
  readonly base64?: boolean;
}

let requests = 0;
/** The proxy fixture carrying `body` and, unless undefined, `signature`. */
function proxyEvent(body: string | Buffer, signature: string | undefined, options: ProxyOptions = {}): ProxyEvent {
  const event = structuredClone(PROXY_FIXTURE);
  delete event.headers!["Persona-Signature"];
  delete event.multiValueHeaders!["Persona-Signature"];
  if (signature !== undefined) {
    event.headers![options.headerName ?? "Persona-Signature"] = signature;
    event.multiValueHeaders![options.headerName ?? "Persona-Signature"] = [signature];
  }
  if (options.multiValueOnly) event.headers = null;
  const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  event.body = options.base64 ? bytes.toString("base64") : bytes.toString("utf8");
  event.isBase64Encoded = options.base64 === true;
  event.requestContext.requestId = `4f6a2c8e-1b3d-4e5f-9a7b-${String(++requests).padStart(12, "0")}`;
  return event;
}

/** The AppSync fixture with the arguments given (an undefined one left out). */
function appsyncEvent(body: string | undefined, signature: string | undefined): AppSyncEvent {
  const event = structuredClone(APPSYNC_FIXTURE);
  event.arguments = { ...(body === undefined ? {} : { body }), ...(signature === undefined ? {} : { signature }) };
  return event;
}

/** A session as checkLiveness stores it when it creates the inquiry. */
function storedSession(overrides: Partial<SessionItem> = {}): SessionItem {
  return {
    userId: sessionKey(GLOBAL_USER_ID, "liveness"),
    type: "idvSession",
    globalUserId: GLOBAL_USER_ID,
    verificationType: "liveness",
    vendorSessionId: INQUIRY,
    status: "created",
    statusHistory: [{ status: "created", at: SESSION_CREATED }],
    decisions: [
      {
        at: SESSION_CREATED,
        tier: "high",
        appId: "vf-presale-web",
        subjectId: "evt-2026-11-stadium-tour",
        requiresVerification: true,
        reason: "no approved session in the last 30 days",
      },
    ],
    ipAddress: "203.0.113.24",
    created: SESSION_CREATED,
    updated: SESSION_CREATED,
    ...sessionExpiry("created", SESSION_CREATED),
    ...overrides,
  };
}

type Handler = (event: unknown) => Promise<ProxyResult | WebhookReceipt>;
type Invocation = { value?: ProxyResult | WebhookReceipt; error?: Error; logs: LogLine[]; calls: Record<string, number> };

const JSON_HEADERS = { "content-type": "application/json" };
const RECEIVED: ProxyResult = { statusCode: 200, headers: JSON_HEADERS, body: JSON.stringify({ received: true }) };

/** A proxy answer with its body parsed. */
function answerOf(invocation: Invocation): {
  statusCode: number;
  headers: Record<string, string>;
  body: Record<string, unknown>;
} {
  assert.equal(invocation.error, undefined, invocation.error?.message);
  const result = invocation.value as ProxyResult;
  return { statusCode: result.statusCode, headers: result.headers, body: JSON.parse(result.body) as Record<string, unknown> };
}

describe("handleEvent", function () {
  let dynamo: LocalDynamo;
  let table: string;

  before(async function () {
    dynamo = await startDynamo();
  });
  after(async function () {
    await dynamo?.close();
  });
  beforeEach(async function () {
    table = await dynamo.createFanTable();
  });
  afterEach(function () {
    dynamo.intercept = () => undefined;
  });

  interface DirectOptions {
    readonly secrets?: readonly string[];
    readonly readSecrets?: () => Promise<readonly string[]>;
    readonly vars?: Record<string, string>;
    readonly now?: number;
  }

  /** The handler built from its parts, against the local table, with a fixed clock. */
  function direct(options: DirectOptions = {}): Handler {
    const env = loadEnvironment(handleEventContract, { TABLE_NAME: table, WEBHOOK_SECRETS_ARN: SECRETS_ARN, ...options.vars });
    const secrets = options.secrets ?? [SECRET];
    return createHandleEvent({
      env,
      logger: new Logger({ serviceName: handleEventContract.name, logLevel: "DEBUG" }),
      documents: dynamo.documents,
      readSecrets: options.readSecrets ?? (async () => secrets),
      now: () => options.now ?? NOW_MS,
    });
  }

  /** Runs one event; what it answered or threw, its log lines, and its calls at DynamoDB. */
  async function invoke(handler: Handler, event: unknown): Promise<Invocation> {
    dynamo.proxy.requests.length = 0;
    const { result, logs } = await captureLogs(() =>
      handler(event).then(
        (value) => ({ value }),
        (error: Error) => ({ error }),
      ),
    );
    return { ...result, logs, calls: countOperations(dynamo.proxy) };
  }

  const seed = (...sessions: SessionItem[]) => dynamo.seed(table, sessions as unknown as Record<string, unknown>[]);
  const stored = (userId = sessionKey(GLOBAL_USER_ID, "liveness")) => dynamo.item(table, userId);

  /**
   * The session after `status` at `at` from `eventId` was applied to `before`: an approval is
   * remembered and keeps the session 90 days (the longest tier window) instead of 30.
   */
  function applied(before: SessionItem, status: SessionItem["status"], at: string, eventId: string): SessionItem {
    const approved = status === "approved";
    return {
      ...before,
      status,
      updated: at,
      statusHistory: [...before.statusHistory, { status, at, eventId }],
      expiresAt: new Date(Date.parse(at) + LIFETIME_MS[status]!).toISOString(),
      expiresOn: Math.floor(Date.parse(at) / 1000) + (approved ? 90 * 86_400 : RETENTION_S),
      ...(approved ? { lastApprovedAt: at } : {}),
    };
  }

  /** Asserts a refusal: the proxy answer, one WARN line naming it, nothing written. */
  function assertRefused(invocation: Invocation, statusCode: number, errorType: string, message: RegExp) {
    const answer = answerOf(invocation);
    assert.equal(answer.statusCode, statusCode);
    assert.deepEqual(answer.headers, JSON_HEADERS);
    assert.equal(answer.body.errorType, errorType);
    assert.match(String(answer.body.message), message);
    const warned = linesAt(invocation.logs, "WARN");
    assert.equal(warned.length, 1, JSON.stringify(invocation.logs));
    assert.equal(warned[0]!.errorType, errorType);
    assert.equal(warned[0]!.message, `refused: ${String(answer.body.message)}`);
    assert.equal(invocation.calls.UpdateItem, undefined, "nothing written");
  }

  describe("a validly signed webhook", function () {
    it("moves the session to the inquiry's status: status, statusHistory, updated, expiresAt by lifetime, expiresOn 30 days on", async function () {
      const session = storedSession();
      await seed(session);
      const body = personaBody({ name: "inquiry.completed", eventId: "evt_completed_01", at: minute(4) });

      const invocation = await invoke(direct(), proxyEvent(body, sign(body)));

      assert.deepEqual(invocation.value, RECEIVED);
      const after = await stored();
      assert.deepEqual(after, applied(session, "completed", minute(4), "evt_completed_01"));
      assert.equal(after!.expiresAt, "2026-11-24T19:08:52.000Z");
      assert.equal(after!.expiresOn, Math.floor(Date.parse(minute(4)) / 1000) + 30 * 86_400);
      // One consistent read of the fan's sessions, one conditional write.
      assert.deepEqual(invocation.calls, { BatchGetItem: 1, UpdateItem: 1 });
      const read = JSON.parse(dynamo.proxy.requests[0]!.body) as {
        RequestItems: Record<string, { ConsistentRead?: boolean; Keys: unknown[] }>;
      };
      assert.equal(read.RequestItems[table]!.ConsistentRead, true);
      assert.deepEqual(read.RequestItems[table]!.Keys, [{ userId: { S: `idv#${GLOBAL_USER_ID}#liveness` } }]);
      const line = invocation.logs.find((entry) => entry.message === "session updated");
      assert.ok(line, JSON.stringify(invocation.logs));
      assert.equal(line.status, "completed");
      assert.equal(line.previous, "created");
      assert.equal(line.inquiryId, INQUIRY);
      assert.equal(linesAt(invocation.logs, "WARN").length + linesAt(invocation.logs, "ERROR").length, 0);
    });

    it("walks created → pending → completed → approved, each with its lifetime, the history growing", async function () {
      let session = storedSession({ statusHistory: [], updated: minute(-1), ...sessionExpiry("created", minute(-1)) });
      await seed(session);
      const handler = direct();
      const walk = [
        ["inquiry.created", "created", minute(0)],
        ["inquiry.started", "pending", minute(1)],
        ["inquiry.completed", "completed", minute(3)],
        ["inquiry.approved", "approved", minute(4)],
      ] as const;
      for (const [name, status, at] of walk) {
        const eventId = `evt_walk_${status}`;
        const body = personaBody({ name, eventId, at });
        assert.deepEqual((await invoke(handler, proxyEvent(body, sign(body)))).value, RECEIVED, name);
        session = applied(session, status, at, eventId);
        assert.deepEqual(await stored(), session, name);
      }
      assert.deepEqual(
        session.statusHistory.map((change) => change.status),
        ["created", "pending", "completed", "approved"],
      );
    });

    it("keeps the fan's approval through a later status: expiresOn stays 90 days past the approval", async function () {
      const approvedAt = minute(4);
      const session = storedSession({
        status: "approved",
        updated: approvedAt,
        lastApprovedAt: approvedAt,
        ...sessionExpiry("approved", approvedAt, approvedAt),
      });
      await seed(session);
      const body = personaBody({ name: "inquiry.marked-for-review", eventId: "evt_review_after_approval", at: minute(6) });

      assert.deepEqual((await invoke(direct(), proxyEvent(body, sign(body)))).value, RECEIVED);
      const after = await stored();
      assert.equal(after!.status, "needs_review");
      assert.equal(after!.lastApprovedAt, approvedAt);
      // The later of 30 days after the update and 90 days (the longest tier window) after the approval.
      assert.equal(after!.expiresOn, Math.floor((Date.parse(approvedAt) + 90 * DAY) / 1000));
    });

    it("maps every inquiry event docs/rules.md#persona names to its status and lifetime", async function () {
      const cases = [
        ["inquiry.created", "created", DAY],
        ["inquiry.started", "pending", DAY],
        ["inquiry.marked-for-review", "needs_review", DAY],
        ["inquiry.completed", "completed", HOUR],
        ["inquiry.approved", "approved", HOUR],
        ["inquiry.failed", "failed", HOUR],
        ["inquiry.declined", "declined", HOUR],
        ["inquiry.expired", "expired", 0],
      ] as const;
      const handler = direct();
      for (const [name, status, lifetime] of cases) {
        const session = storedSession();
        await seed(session);
        const body = personaBody({ name, eventId: `evt_${status}`, at: minute(5) });
        assert.deepEqual((await invoke(handler, proxyEvent(body, sign(body)))).value, RECEIVED, name);
        const after = await stored();
        assert.equal(after!.status, status, name);
        assert.equal(Date.parse(String(after!.expiresAt)) - Date.parse(minute(5)), lifetime, name);
      }
    });

    it("finds the session under any configured verification type, reading them all in one BatchGetItem", async function () {
      const document = storedSession({ userId: sessionKey(GLOBAL_USER_ID, "document"), verificationType: "document" });
      const liveness = storedSession({ vendorSessionId: OTHER_INQUIRY });
      await seed(document, liveness);
      const handler = direct({ vars: { VERIFICATION_TYPES: "liveness, document" } });
      const body = personaBody({ name: "inquiry.started", eventId: "evt_doc", at: minute(2) });

      const invocation = await invoke(handler, proxyEvent(body, sign(body)));

      assert.deepEqual(invocation.value, RECEIVED);
      assert.deepEqual(invocation.calls, { BatchGetItem: 1, UpdateItem: 1 });
      const read = JSON.parse(dynamo.proxy.requests[0]!.body) as { RequestItems: Record<string, { Keys: unknown[] }> };
      assert.equal(read.RequestItems[table]!.Keys.length, 2);
      assert.deepEqual(await stored(document.userId), applied(document, "pending", minute(2), "evt_doc"));
      assert.deepEqual(await stored(liveness.userId), liveness);
    });

    it("reads the header in any case, from multiValueHeaders alone, and a base64-encoded body", async function () {
      const handler = direct();
      const variants: [string, ProxyOptions][] = [
        ["lower-case name", { headerName: "persona-signature" }],
        ["upper-case name", { headerName: "PERSONA-SIGNATURE" }],
        ["multiValueHeaders only", { multiValueOnly: true }],
        ["base64 body", { base64: true }],
      ];
      for (const [index, [variant, options]] of variants.entries()) {
        const session = storedSession();
        await seed(session);
        const body = personaBody({ name: "inquiry.started", eventId: `evt_variant_${index}`, at: minute(1) });
        assert.deepEqual((await invoke(handler, proxyEvent(body, sign(body), options))).value, RECEIVED, variant);
        assert.deepEqual(await stored(), applied(session, "pending", minute(1), `evt_variant_${index}`), variant);
      }
    });
  });

  describe("signature", function () {
    const expectUnauthorized = async (event: ProxyEvent, problem: string, handler = direct()) => {
      const session = storedSession();
      await seed(session);
      const invocation = await invoke(handler, event);
      assertRefused(invocation, 401, "Unauthorized", /Persona-Signature/);
      assert.equal(linesAt(invocation.logs, "WARN")[0]!.problem, problem);
      assert.deepEqual(invocation.calls, {}, "nothing read or written");
      assert.deepEqual(await stored(), session);
    };

    it("refuses a body signed with another secret: 401, nothing read or written", async function () {
      const body = personaBody();
      await expectUnauthorized(proxyEvent(body, sign(body, ["wbhsec_qa1_someone_elses_secret"])), "mismatch");
    });

    it("during rotation accepts a header with two pairs when either matches, and either of two configured secrets", async function () {
      const cases: [string, readonly string[], readonly string[]][] = [
        ["two pairs, the old secret configured", [SECRET, ROTATED_SECRET], [SECRET]],
        ["two pairs, the new secret configured", [SECRET, ROTATED_SECRET], [ROTATED_SECRET]],
        ["old pair, both secrets configured", [SECRET], [SECRET, ROTATED_SECRET]],
        ["new pair, both secrets configured", [ROTATED_SECRET], [SECRET, ROTATED_SECRET]],
      ];
      for (const [index, [label, signedWith, configured]] of cases.entries()) {
        const session = storedSession();
        await seed(session);
        const body = personaBody({ eventId: `evt_rotation_${index}` });
        const invocation = await invoke(direct({ secrets: configured }), proxyEvent(body, sign(body, signedWith)));
        assert.deepEqual(invocation.value, RECEIVED, label);
        assert.deepEqual(await stored(), applied(session, "completed", minute(4), `evt_rotation_${index}`), label);
      }
      const body = personaBody();
      await expectUnauthorized(
        proxyEvent(body, sign(body, [SECRET, ROTATED_SECRET])),
        "mismatch",
        direct({ secrets: ["wbhsec_retired"] }),
      );
    });

    it("refuses a timestamp more than 5 minutes old (or ahead), and takes one just within", async function () {
      const body = personaBody();
      await expectUnauthorized(proxyEvent(body, sign(body, [SECRET], SIGNED_AT - 301)), "stale");
      await expectUnauthorized(proxyEvent(body, sign(body, [SECRET], SIGNED_AT + 301)), "stale");
      const session = storedSession();
      await seed(session);
      assert.deepEqual((await invoke(direct(), proxyEvent(body, sign(body, [SECRET], SIGNED_AT - 300)))).value, RECEIVED);
    });

    it("refuses a request without the header", async function () {
      await expectUnauthorized(proxyEvent(personaBody(), undefined), "missing");
      await expectUnauthorized(proxyEvent(personaBody(), ""), "missing");
    });

    it("refuses a malformed header", async function () {
      const body = personaBody();
      const v1 = sign(body).split("v1=")[1]!;
      for (const header of [
        `v1=${v1}`,
        `t=${SIGNED_AT}`,
        `t=${SIGNED_AT},v1=${v1.slice(2)}`,
        `sha256=${v1}`,
        `t=${SIGNED_AT} v1=${v1}`,
      ]) {
        await expectUnauthorized(proxyEvent(body, header), "malformed");
      }
    });

    it("refuses a body altered by one byte after signing", async function () {
      const body = personaBody({ name: "inquiry.approved" });
      const signature = sign(body);
      const altered = body.replace("inquiry.approved", "inquiry.approvee");
      assert.equal(altered.length, body.length);
      await expectUnauthorized(proxyEvent(altered, signature), "mismatch");
    });

    it("answers 500 when the secrets cannot be read, so Persona retries", async function () {
      const server = await startSecrets({ [SECRETS_ARN]: ACCESS_DENIED });
      try {
        const reader = createSecretReader({
          secretId: SECRETS_ARN,
          schema: z.object({ secrets: z.array(z.string()) }),
          maxAgeMs: 300_000,
          client: secretsManagerClient(server),
        });
        const session = storedSession();
        await seed(session);
        const body = personaBody();
        const invocation = await invoke(
          direct({ readSecrets: async () => (await reader()).secrets }),
          proxyEvent(body, sign(body)),
        );
        const answer = answerOf(invocation);
        assert.equal(answer.statusCode, 500);
        assert.equal(answer.body.errorType, "InternalError");
        const [error] = linesAt(invocation.logs, "ERROR");
        assert.match(String((error!.error as { message: string }).message), /webhook secrets not read: .*AccessDeniedException/);
        assert.deepEqual(invocation.calls, {});
        assert.deepEqual(await stored(), session);
      } finally {
        await server.close();
      }
    });
  });

  describe("body", function () {
    it("answers 400 InvalidEvent for a signed body that is not JSON", async function () {
      const session = storedSession();
      await seed(session);
      const body = '{"data":{"type":"event",';
      const invocation = await invoke(direct(), proxyEvent(body, sign(body)));
      assertRefused(invocation, 400, "InvalidEvent", /^body is not JSON: /);
      assert.deepEqual(invocation.calls, {});
      assert.deepEqual(await stored(), session);
    });

    it("answers 400 InvalidEvent naming what is wrong for JSON that is not a Persona event", async function () {
      const session = storedSession();
      await seed(session);
      const handler = direct();
      const wrongInquiry = JSON.parse(personaBody()) as { data: { attributes: { payload: { data: { type: string } } } } };
      wrongInquiry.data.attributes.payload.data.type = "account";
      const cases: [unknown, RegExp][] = [
        [{ hello: "world" }, /^body is not a Persona webhook event: data: /],
        [[], /^body is not a Persona webhook event: \(body\): /],
        [
          { data: { type: "event", id: "evt_1", attributes: { name: "inquiry.completed" } } },
          /data\.attributes\.created-at: .*data\.attributes\.payload: /,
        ],
        [wrongInquiry, /data\.attributes\.payload\.data\.type: /],
      ];
      for (const [document, message] of cases) {
        const body = JSON.stringify(document);
        const invocation = await invoke(handler, proxyEvent(body, sign(body)));
        assertRefused(invocation, 400, "InvalidEvent", message);
        assert.deepEqual(invocation.calls, {});
      }
      const badTime = personaBody({ at: "yesterday-ish" });
      assertRefused(
        await invoke(handler, proxyEvent(badTime, sign(badTime))),
        400,
        "InvalidEvent",
        /created-at: "yesterday-ish" is not a time/,
      );
      assert.deepEqual(await stored(), session);
    });

    it("answers 200 for an event that changes no status, logs it as ignored, reads and writes nothing", async function () {
      const session = storedSession();
      await seed(session);
      const handler = direct();
      for (const name of ["inquiry.transitioned", "account.created", "report/watchlist.matched", "constructor", "__proto__"]) {
        const body = personaBody({ name });
        const invocation = await invoke(handler, proxyEvent(body, sign(body)));
        assert.deepEqual(invocation.value, RECEIVED, name);
        assert.deepEqual(invocation.calls, {}, name);
        const line = invocation.logs.find((entry) => entry.message.startsWith("ignored: "));
        assert.equal(line?.eventName, name);
      }
      assert.deepEqual(await stored(), session);
    });
  });

  describe("session", function () {
    it("answers 404 NotFound when the fan has no session, and writes nothing", async function () {
      const body = personaBody();
      const invocation = await invoke(direct(), proxyEvent(body, sign(body)));
      assertRefused(invocation, 404, "NotFound", new RegExp(`no session of ${GLOBAL_USER_ID} is for inquiry ${INQUIRY}`));
      assert.deepEqual(invocation.calls, { BatchGetItem: 1 });
      assert.deepEqual(await dynamo.scan(table), []);
    });

    it("answers 404 NotFound when the fan's session follows another inquiry, and leaves it as it was", async function () {
      const session = storedSession({ vendorSessionId: OTHER_INQUIRY });
      await seed(session);
      const body = personaBody();
      const invocation = await invoke(direct(), proxyEvent(body, sign(body)));
      assertRefused(invocation, 404, "NotFound", /no session of gu-7f3c2a91 is for inquiry/);
      assert.deepEqual(linesAt(invocation.logs, "WARN")[0]!.sessions, [
        { userId: session.userId, vendorSessionId: OTHER_INQUIRY },
      ]);
      assert.deepEqual(await dynamo.scan(table), [session]);
    });

    it("answers 404 NotFound for an inquiry without a reference id, reading nothing", async function () {
      const body = personaBody({ referenceId: null });
      const invocation = await invoke(direct(), proxyEvent(body, sign(body)));
      assertRefused(invocation, 404, "NotFound", /has no reference-id naming a fan/);
      assert.deepEqual(invocation.calls, {});
    });

    it("ignores an update older than the stored one (completed, then a late started); applies a newer one (approved)", async function () {
      const session = storedSession();
      await seed(session);
      const handler = direct();
      const completed = personaBody({ name: "inquiry.completed", eventId: "evt_c", at: minute(4) });
      const started = personaBody({ name: "inquiry.started", eventId: "evt_s", at: minute(1) });
      const approved = personaBody({ name: "inquiry.approved", eventId: "evt_a", at: minute(5) });

      assert.deepEqual((await invoke(handler, proxyEvent(completed, sign(completed)))).value, RECEIVED);
      const afterCompleted = applied(session, "completed", minute(4), "evt_c");
      assert.deepEqual(await stored(), afterCompleted);

      const late = await invoke(handler, proxyEvent(started, sign(started)));
      assert.deepEqual(late.value, RECEIVED);
      assert.deepEqual(late.calls, { BatchGetItem: 1 }, "known to be late from the read: no write");
      assert.ok(late.logs.some((line) => line.message.startsWith("ignored: out of order") && line.stored === minute(4)));
      assert.deepEqual(await stored(), afterCompleted);

      // Persona delivering the same event again changes nothing either.
      const again = await invoke(handler, proxyEvent(completed, sign(completed)));
      assert.deepEqual(again.value, RECEIVED);
      assert.deepEqual(again.calls, { BatchGetItem: 1 });
      assert.deepEqual(await stored(), afterCompleted);

      assert.deepEqual((await invoke(handler, proxyEvent(approved, sign(approved)))).value, RECEIVED);
      assert.deepEqual(await stored(), applied(afterCompleted, "approved", minute(5), "evt_a"));
    });

    it("lets the write's condition ignore an event when the session changed between the read and the write", async function () {
      const handler = direct();
      // A newer status written meanwhile: the read still shows the session as created.
      const completed = applied(storedSession(), "completed", minute(4), "evt_c");
      // A new inquiry started meanwhile: the read still shows the old one.
      const replaced = storedSession({ vendorSessionId: OTHER_INQUIRY, updated: minute(0) });
      for (const [label, now, wasRead] of [
        ["newer status", completed, { updated: SESSION_CREATED }],
        ["new inquiry", replaced, { vendorSessionId: INQUIRY }],
      ] as const) {
        await seed(now);
        dynamo.intercept = (request) =>
          operationOf(request) === "BatchGetItem"
            ? {
                rewriteAnswer: (text) =>
                  "updated" in wasRead
                    ? text.replace(`"updated":{"S":"${now.updated}"}`, `"updated":{"S":"${wasRead.updated}"}`)
                    : text.replace(`"vendorSessionId":{"S":"${OTHER_INQUIRY}"}`, `"vendorSessionId":{"S":"${INQUIRY}"}`),
              }
            : undefined;
        const body = personaBody({ name: "inquiry.started", eventId: "evt_s", at: minute(2) });
        const invocation = await invoke(handler, proxyEvent(body, sign(body)));
        assert.deepEqual(invocation.value, RECEIVED, label);
        assert.deepEqual(invocation.calls, { BatchGetItem: 1, UpdateItem: 1 }, label);
        assert.ok(
          invocation.logs.some((line) => line.message === "ignored: out of order, the session changed since it was read"),
          label,
        );
        assert.deepEqual(await stored(), now, label);
      }
    });

    it("answers 500 when DynamoDB fails, logging what failed, so Persona retries", async function () {
      const session = storedSession();
      await seed(session);
      const handler = direct();
      for (const operation of ["BatchGetItem", "UpdateItem"]) {
        dynamo.intercept = serviceDown([operation], DYNAMO_INTERNAL_ERROR);
        const body = personaBody();
        const invocation = await invoke(handler, proxyEvent(body, sign(body)));
        const answer = answerOf(invocation);
        assert.equal(answer.statusCode, 500, operation);
        assert.deepEqual(answer.body, { errorType: "InternalError", message: "the event could not be stored; retry later" });
        const [error] = linesAt(invocation.logs, "ERROR");
        assert.match(
          String((error!.error as { message: string }).message),
          new RegExp(`${operation} on ${table} failed: InternalServerError`),
        );
        assert.equal(error!.inquiryId, INQUIRY);
        assert.deepEqual(await stored(), session, operation);
      }
    });
  });

  describe("as an AppSync resolver", function () {
    /** What the resolver threw, or undefined. */
    const thrown = (invocation: Invocation) => invocation.error;

    it("takes a validly signed body: { received: true }, and the session updated", async function () {
      const session = storedSession();
      await seed(session);
      const body = personaBody({ name: "inquiry.approved", eventId: "evt_appsync", at: minute(6) });
      const invocation = await invoke(direct(), appsyncEvent(body, sign(body)));
      assert.deepEqual(invocation.value, { received: true });
      assert.deepEqual(await stored(), applied(session, "approved", minute(6), "evt_appsync"));
      assert.ok(invocation.logs.some((line) => line.message === "session updated" && line.via === "appsync"));
    });

    it("takes the recorded resolver event as it is", async function () {
      const session = storedSession();
      await seed(session);
      const invocation = await invoke(direct(), structuredClone(APPSYNC_FIXTURE));
      assert.deepEqual(invocation.value, { received: true });
      assert.equal((await stored())!.status, "completed");
    });

    it("throws errors named by type: Unauthorized, InvalidEvent, NotFound; writes nothing", async function () {
      const session = storedSession({ vendorSessionId: OTHER_INQUIRY });
      await seed(session);
      const handler = direct();
      const body = personaBody();
      const cases: [AppSyncEvent, string, RegExp][] = [
        [appsyncEvent(body, sign(body, ["wbhsec_wrong"])), "Unauthorized", /no Persona-Signature pair matches/],
        [appsyncEvent(body, undefined), "Unauthorized", /no Persona-Signature header/],
        [appsyncEvent("not json", sign("not json")), "InvalidEvent", /^body is not JSON/],
        [appsyncEvent("{}", sign("{}")), "InvalidEvent", /^body is not a Persona webhook event: data: /],
        [appsyncEvent(undefined, sign(body)), "InvalidEvent", /arguments\.body is missing/],
        [appsyncEvent(body, sign(body)), "NotFound", /no session of gu-7f3c2a91 is for inquiry/],
      ];
      for (const [event, name, message] of cases) {
        const invocation = await invoke(handler, event);
        const error = thrown(invocation);
        assert.ok(error instanceof Error, name);
        assert.equal(error.name, name);
        assert.match(error.message, message);
        assert.equal(invocation.calls.UpdateItem, undefined);
      }
      assert.deepEqual(await stored(), session);
    });

    it("throws when DynamoDB fails, so the caller sees an error", async function () {
      const session = storedSession();
      await seed(session);
      dynamo.intercept = serviceDown(["UpdateItem"], DYNAMO_INTERNAL_ERROR);
      const body = personaBody();
      const error = thrown(await invoke(direct(), appsyncEvent(body, sign(body))));
      assert.match(String(error?.message), /handleEvent: session idv#gu-7f3c2a91#liveness not updated: UpdateItem/);
      assert.deepEqual(await stored(), session);
    });

    it("throws InvalidEvent for an event that is neither kind", async function () {
      for (const event of [null, "text", { Records: [] }]) {
        const error = thrown(await invoke(direct(), event));
        assert.equal(error?.name, "InvalidEvent");
      }
    });
  });

  describe("acceptance: a request sent to the API's webhook route as API Gateway would (the published proxy event shape)", function () {
    it("reaches handleEvent and answers 200 for the recorded event, verbatim, and stores the status", async function () {
      const session = storedSession();
      await seed(session);
      const invocation = await invoke(direct(), structuredClone(PROXY_FIXTURE));
      assert.deepEqual(invocation.value, RECEIVED);
      assert.deepEqual(await stored(), applied(session, "completed", "2026-11-24T18:09:15.000Z", "evt_8mXq2vKc4Lr7Tn9Wb3Yd5Hf1"));
    });

    it("answers 401 when the body or signature is not Persona's, 400 for a body that is no Persona event, 404 for an unknown inquiry", async function () {
      const session = storedSession();
      await seed(session);
      const handler = direct();
      const tampered = structuredClone(PROXY_FIXTURE);
      tampered.body = tampered.body!.replace("gu-7f3c2a91", "gu-7f3c2a92");
      assertRefused(await invoke(handler, tampered), 401, "Unauthorized", /no Persona-Signature pair matches/);

      const notAnEvent = '{"data":{"type":"inquiry"}}';
      const invalid = structuredClone(PROXY_FIXTURE);
      invalid.body = notAnEvent;
      invalid.headers!["Persona-Signature"] = invalid.multiValueHeaders!["Persona-Signature"]![0] = sign(notAnEvent);
      assertRefused(await invoke(handler, invalid), 400, "InvalidEvent", /data\.type: /);

      const unknownBody = personaBody({ inquiryId: OTHER_INQUIRY });
      const unknown = structuredClone(PROXY_FIXTURE);
      unknown.body = unknownBody;
      unknown.headers!["Persona-Signature"] = unknown.multiValueHeaders!["Persona-Signature"]![0] = sign(unknownBody);
      assertRefused(await invoke(handler, unknown), 404, "NotFound", new RegExp(`inquiry ${OTHER_INQUIRY}`));

      assert.deepEqual(await stored(), session);
    });
  });

  describe("deployed: the real factory, configured by its environment", function () {
    const setWorkerEnvironment = environmentPerTest([
      "TABLE_NAME",
      "WEBHOOK_SECRETS_ARN",
      "SIGNATURE_TOLERANCE_SECONDS",
      "VERIFICATION_TYPES",
      "DEPLOYMENT",
      ...AWS_VARIABLES,
      "AWS_ENDPOINT_URL_DYNAMODB",
      "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    ]);
    let secrets: WireServer;

    before(async function () {
      secrets = await startSecrets({ [SECRETS_ARN]: { secrets: [SECRET, ROTATED_SECRET] } });
    });
    after(async function () {
      await secrets?.close();
    });

    const deploy = (vars: Record<string, string | undefined> = {}) =>
      setWorkerEnvironment({
        ...LAMBDA_AWS,
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        DEPLOYMENT: "qa1",
        TABLE_NAME: table,
        WEBHOOK_SECRETS_ARN: SECRETS_ARN,
        ...vars,
      });

    it("verifies and stores webhooks on the real clock, reading the secrets once per container", async function () {
      deploy();
      const handler = handleEvent.factory() as Handler;
      const now = Date.now();
      const at = (offsetMs: number) => new Date(now + offsetMs).toISOString();
      const session = storedSession({ updated: at(-600_000), ...sessionExpiry("created", at(-600_000)) });
      await seed(session);
      secrets.requests.length = 0;
      const t = Math.floor(now / 1000);

      const started = personaBody({ name: "inquiry.started", eventId: "evt_live_1", at: at(-120_000) });
      const completed = personaBody({ name: "inquiry.completed", eventId: "evt_live_2", at: at(-1_000) });
      assert.deepEqual((await invoke(handler, proxyEvent(started, sign(started, [SECRET], t)))).value, RECEIVED);
      assert.deepEqual((await invoke(handler, proxyEvent(completed, sign(completed, [ROTATED_SECRET], t)))).value, RECEIVED);

      const expected = applied(applied(session, "pending", at(-120_000), "evt_live_1"), "completed", at(-1_000), "evt_live_2");
      assert.deepEqual(await stored(), expected);
      assert.equal(secrets.requests.length, 1, "one secret read for two webhooks");
      assert.equal((JSON.parse(secrets.requests[0]!.body) as { SecretId: string }).SecretId, SECRETS_ARN);

      const forged = await invoke(handler, proxyEvent(completed, sign(completed, ["wbhsec_forged"], t)));
      assert.equal((forged.value as ProxyResult).statusCode, 401);
      const [warning] = linesAt(forged.logs, "WARN");
      assert.equal(warning!.service, "handleEvent");
      assert.equal(warning!.deployment, "qa1");
    });

    it("fails at cold start naming a missing or malformed variable", function () {
      for (const [vars, variable] of [
        [{ TABLE_NAME: undefined }, "TABLE_NAME"],
        [{ WEBHOOK_SECRETS_ARN: undefined }, "WEBHOOK_SECRETS_ARN"],
        [{ VERIFICATION_TYPES: "liveness,bad#type" }, "VERIFICATION_TYPES"],
        [{ VERIFICATION_TYPES: " , " }, "VERIFICATION_TYPES"],
        [{ SIGNATURE_TOLERANCE_SECONDS: "five minutes" }, "SIGNATURE_TOLERANCE_SECONDS"],
      ] as const) {
        deploy(vars);
        assert.throws(
          () => handleEvent.factory(),
          (error: Error) => error.message.startsWith("handleEvent: environment") && error.message.includes(`${variable}: `),
          variable,
        );
      }
    });

    it("defaults to a 300 s tolerance and the liveness verification type", function () {
      const env = loadEnvironment(handleEventContract, {
        TABLE_NAME: "fanid-qa1-fan-identity",
        WEBHOOK_SECRETS_ARN: SECRETS_ARN,
      });
      assert.equal(env.SIGNATURE_TOLERANCE_SECONDS, 300);
      assert.deepEqual(env.VERIFICATION_TYPES, ["liveness"]);
    });

    it("declares the access it needs (its archive and packages are checked with every worker's in infrastructure.spec)", function () {
      assert.deepEqual(handleEvent.contract.access, {
        dynamodb_idv_sessions: { actions: ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"], on: "the fan-identity table" },
        webhook_secrets: { actions: ["secretsmanager:GetSecretValue"], on: "the Persona webhook secrets" },
      });
    });
  });
});
