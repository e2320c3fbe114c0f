/**
 * checkLiveness against a real local DynamoDB (dynalite, calls counted at the service), Persona and
 * Secrets Manager mocked at the wire, with the AppSync resolver event a Lambda authoriser's caller
 * sends: what each tier decides, what is stored, what Persona is asked (and how often), and that
 * the decision token verifies with the public key.
 */
import * as assert from "node:assert/strict";
import { Logger } from "@aws-lambda-powertools/logger";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { exportPKCS8, generateKeyPair, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { checkLiveness, createCheckLiveness, type LivenessAnswer } from "../workers/checkLiveness";
import { checkLivenessContract } from "../workers/checkLiveness/contract";
import { createPersonaClient, personaApiKeySchema } from "../workers/checkLiveness/persona";
import { createDecisionSigner, decisionTokenVerifyOptions, signingKeySchema } from "../workers/checkLiveness/token";
import { type Decision, type SessionItem, type SessionStatus, sessionExpiry, sessionKey } from "../workers/shared/idv/session";
import { loadEnvironment } from "../workers/shared/runtime/environment";
import { createSecretReader } from "../workers/shared/runtime/secrets";
import { AWS_VARIABLES, environmentPerTest, LAMBDA_AWS } from "./support/environment";
import { fixture } from "./support/fixtures";
import { type Answer, countOperations, operationOf, type RecordedRequest, WireServer } from "./support/http";
import { type LocalDynamo, startDynamo } from "./support/localAws";
import { captureLogs, linesAt, type LogLine } from "./support/logs";
import { ACCESS_DENIED, secretsManagerClient, startSecrets } from "./support/secrets";

const PERSONA_KEY_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/persona-api-key-Hk29Lm";
const SIGNING_KEY_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/decision-signing-key-Pq71Zx";
const API_KEY = "persona_sandbox_3f9c1e7a-52d4-4b0e-9a61-0d8e2c7b4f15";
const KEY_ID = "fan-identity-qa1-2026-11";
const TEMPLATE_ID = "itmpl_Tst4rQ7mKp2Vn8Hx1Jd6";
const GLOBAL_USER_ID = "gu-7f3c2a91";
const APP_ID = "presale-web";
const SUBJECT_ID = "evt-2026-11-tour-lon-0042";
/** The decision tokens' audience (TOKEN_AUDIENCE) of directly built resolvers. */
const AUDIENCE = "presale-backend-qa1";
const SESSION_KEY = sessionKey(GLOBAL_USER_ID, "liveness");

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** The clock of directly built resolvers. */
const NOW = Date.parse("2026-11-25T12:00:00.000Z");
const NOW_ISO = new Date(NOW).toISOString();

const ENVIRONMENT = [
  ...Object.keys(checkLivenessContract.environment().shape),
  ...AWS_VARIABLES,
  "AWS_ENDPOINT_URL_DYNAMODB",
  "AWS_ENDPOINT_URL_SECRETS_MANAGER",
  "POWERTOOLS_LOG_LEVEL",
] as const;

interface Arguments {
  tier?: unknown;
  appId?: unknown;
  subjectId?: unknown;
  verificationType?: unknown;
  armScore?: unknown;
  accountScore?: unknown;
}

type ResolverEvent = {
  arguments: { options: Record<string, unknown>; armScore?: unknown; accountScore?: unknown };
  identity: { resolverContext: Record<string, string> } | null;
  request: { headers: Record<string, string> };
};
const FIXTURE = fixture<ResolverEvent>("appsync-check-liveness.json");

/** The fixture with its arguments replaced by `args` (absent ones left out) and the caller `globalUserId`. */
function eventFor(args: Arguments, globalUserId = GLOBAL_USER_ID): ResolverEvent {
  const event = structuredClone(FIXTURE);
  const options: Record<string, unknown> = {
    tier: args.tier,
    appId: args.appId ?? APP_ID,
    subjectId: args.subjectId ?? SUBJECT_ID,
  };
  if ("verificationType" in args) options.verificationType = args.verificationType;
  event.arguments = { options };
  if ("armScore" in args) event.arguments.armScore = args.armScore;
  if ("accountScore" in args) event.arguments.accountScore = args.accountScore;
  event.identity!.resolverContext.globalUserId = globalUserId;
  return event;
}

/** A stored session of the fan in `status`, last updated `agoMs` before NOW. */
function storedSession(status: SessionStatus, agoMs: number, overrides: Partial<SessionItem> = {}): SessionItem {
  const updated = new Date(NOW - agoMs).toISOString();
  return {
    userId: SESSION_KEY,
    type: "idvSession",
    globalUserId: GLOBAL_USER_ID,
    verificationType: "liveness",
    vendorSessionId: "inq_Seeded9x8y7w6v5u4t3s2r",
    status,
    statusHistory: [{ status, at: updated, eventId: "evt_Seeded1a2b3c4d" }],
    decisions: [],
    ipAddress: "198.51.100.23",
    created: new Date(NOW - agoMs - HOUR).toISOString(),
    updated,
    ...sessionExpiry(status, updated),
    ...overrides,
  };
}

type Outcome = { answer: LivenessAnswer; error?: undefined } | { answer?: undefined; error: Error };

describe("checkLiveness", function () {
  let dynamo: LocalDynamo;
  let persona: WireServer;
  let secrets: WireServer;
  let secretsClient: SecretsManagerClient;
  let keys: Awaited<ReturnType<typeof generateKeyPair>>;
  let privateKeyPem: string;
  let table: string;
  /** What Persona answers to a request; each test may replace it. */
  let personaAnswer: (request: RecordedRequest) => Answer;
  let signingKeyReadable: boolean;
  let apiKeyReadable: boolean;
  let inquiries = 0;
  const setWorkerEnvironment = environmentPerTest(ENVIRONMENT);

  /** Persona creating an inquiry: a new id each time, the reference id echoed, a session token. */
  const inquiryCreated = (request: RecordedRequest): Answer => {
    const { attributes } = (JSON.parse(request.body) as { data: { attributes: Record<string, string> } }).data;
    const id = `inq_Test${String(++inquiries).padStart(20, "0")}`;
    return {
      status: 201,
      body: {
        data: {
          type: "inquiry",
          id,
          attributes: {
            status: "created",
            "reference-id": attributes["reference-id"],
            "inquiry-template-id": attributes["inquiry-template-id"],
            "created-at": NOW_ISO,
          },
        },
        meta: { "session-token": `sess_${id}` },
      },
    };
  };
  const lastInquiryId = () => `inq_Test${String(inquiries).padStart(20, "0")}`;

  before(async function () {
    keys = await generateKeyPair("RS256", { extractable: true });
    privateKeyPem = await exportPKCS8(keys.privateKey);
    dynamo = await startDynamo();
    persona = await WireServer.start((request) => personaAnswer(request));
    secrets = await startSecrets((secretId) => {
      if (secretId === PERSONA_KEY_ARN) return apiKeyReadable ? { apiKey: API_KEY } : ACCESS_DENIED;
      if (secretId === SIGNING_KEY_ARN) return signingKeyReadable ? { privateKey: privateKeyPem, keyId: KEY_ID } : ACCESS_DENIED;
      return undefined;
    });
    secretsClient = secretsManagerClient(secrets);
  });

  after(async function () {
    secretsClient?.destroy();
    await Promise.all([dynamo?.close(), persona?.close(), secrets?.close()]);
  });

  beforeEach(async function () {
    table = await dynamo.createFanTable();
    dynamo.intercept = () => undefined;
    dynamo.proxy.requests.length = 0;
    persona.requests.length = 0;
    secrets.requests.length = 0;
    personaAnswer = inquiryCreated;
    signingKeyReadable = true;
    apiKeyReadable = true;
  });

  /** The configuration of directly built resolvers (the factory's defaults otherwise). */
  const varsFor = (vars: Record<string, string>) => ({
    TABLE_NAME: table,
    PERSONA_API_URL: persona.url,
    PERSONA_INQUIRY_TEMPLATE_ID: TEMPLATE_ID,
    PERSONA_API_KEY_SECRET_ARN: PERSONA_KEY_ARN,
    PERSONA_TIMEOUT_MS: "500",
    SIGNING_KEY_SECRET_ARN: SIGNING_KEY_ARN,
    TOKEN_AUDIENCE: AUDIENCE,
    ...vars,
  });

  /** The resolver built from its parts as the factory builds them, on the local services, logging everything. */
  function direct(vars: Record<string, string> = {}) {
    const env = loadEnvironment(checkLivenessContract, varsFor(vars));
    const readApiKey = createSecretReader({
      secretId: PERSONA_KEY_ARN,
      schema: personaApiKeySchema(),
      maxAgeMs: 300_000,
      client: secretsClient,
    });
    const readSigningKey = createSecretReader({
      secretId: SIGNING_KEY_ARN,
      schema: signingKeySchema(),
      maxAgeMs: 300_000,
      client: secretsClient,
    });
    return createCheckLiveness({
      env,
      dynamo: dynamo.documents,
      persona: createPersonaClient({
        apiUrl: env.PERSONA_API_URL,
        timeoutMs: env.PERSONA_TIMEOUT_MS,
        readApiKey: async () => (await readApiKey()).apiKey,
        baseDelayMs: 5,
      }),
      signDecision: createDecisionSigner({
        issuer: env.TOKEN_ISSUER,
        audience: env.TOKEN_AUDIENCE,
        ttlSeconds: env.TOKEN_TTL_SECONDS,
        readSigningKey,
      }),
      logger: new Logger({ serviceName: checkLivenessContract.name, logLevel: "DEBUG" }),
      now: () => NOW,
    });
  }

  type Handler = ReturnType<typeof createCheckLiveness>;

  /** Runs one event, collecting the answer or the error, and the log lines. */
  async function run(handler: Handler, event: unknown): Promise<Outcome & { logs: LogLine[] }> {
    const { result, logs } = await captureLogs(() =>
      handler(event).then(
        (answer): Outcome => ({ answer }),
        (error: Error): Outcome => ({ error }),
      ),
    );
    return { ...result, logs };
  }

  /** The answer of one event; fails the test if the resolver threw. */
  async function decide(args: Arguments, handler: Handler = direct()): Promise<LivenessAnswer> {
    const outcome = await run(handler, eventFor(args));
    assert.equal(outcome.error, undefined, `the resolver threw: ${outcome.error?.name}: ${outcome.error?.message}`);
    return outcome.answer!;
  }

  /** The error of one event; fails the test if the resolver answered. */
  async function refusal(args: Arguments | ResolverEvent, handler: Handler = direct()) {
    const event = "identity" in args ? args : eventFor(args as Arguments);
    const outcome = await run(handler, event);
    assert.equal(outcome.answer, undefined, `the resolver answered ${JSON.stringify(outcome.answer)}`);
    return { error: outcome.error!, logs: outcome.logs };
  }

  const dynamoCalls = () => countOperations(dynamo.proxy);

  /** Stores the fan's session as a test's starting state (not counted). */
  const seedSession = (session: SessionItem) => dynamo.seed(table, [{ ...session }]);

  /** The token's claims, verified with the public key as the token's consumers verify it. */
  async function verified(token: string, issuer = "fan-identity", at = NOW, audience = AUDIENCE) {
    const { payload, protectedHeader } = await jwtVerify(token, keys.publicKey, {
      ...decisionTokenVerifyOptions({ issuer, audience }),
      currentDate: new Date(at),
    });
    return { payload: payload as JWTPayload & { decisions: Decision[]; appId: string; subjectId: string }, protectedHeader };
  }

  const decisionOf = (tier: string, requiresVerification: boolean, reason: string): Decision => ({
    at: NOW_ISO,
    tier,
    appId: APP_ID,
    subjectId: SUBJECT_ID,
    requiresVerification,
    reason,
  });

  /** The session a fresh inquiry is stored as (inquiry `id`, decided by `decision`). */
  const newSession = (id: string, decision: Decision): SessionItem => ({
    userId: SESSION_KEY,
    type: "idvSession",
    globalUserId: GLOBAL_USER_ID,
    verificationType: "liveness",
    vendorSessionId: id,
    status: "created",
    statusHistory: [{ status: "created", at: NOW_ISO }],
    decisions: [decision],
    ipAddress: "203.0.113.7",
    created: NOW_ISO,
    updated: NOW_ISO,
    expiresAt: new Date(NOW + DAY).toISOString(),
    expiresOn: Math.floor((NOW + 30 * DAY) / 1000),
  });

  describe("through its factory, as deployed", function () {
    it("decides for two fans with the environment's settings, reading each secret once per container", async function () {
      setWorkerEnvironment({
        ...LAMBDA_AWS,
        AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
        POWERTOOLS_LOG_LEVEL: "WARN",
        TABLE_NAME: table,
        PERSONA_API_URL: persona.url,
        PERSONA_INQUIRY_TEMPLATE_ID: TEMPLATE_ID,
        PERSONA_API_KEY_SECRET_ARN: PERSONA_KEY_ARN,
        SIGNING_KEY_SECRET_ARN: SIGNING_KEY_ARN,
        TOKEN_AUDIENCE: AUDIENCE,
      });
      const handler = checkLiveness.factory();
      const started = Date.now();

      const first = await handler(eventFor({ tier: "always" }));
      const second = await handler(eventFor({ tier: "test-never" }, "gu-5d13f0b8"));

      assert.equal(first.requiresVerification, true);
      assert.equal(first.reason, "tier-always");
      assert.deepEqual(first.session, {
        vendorSessionId: lastInquiryId(),
        status: "created",
        expiresAt: (await dynamo.item(table, SESSION_KEY))!.expiresAt,
        sessionToken: `sess_${lastInquiryId()}`,
      });
      assert.deepEqual(
        { ...second, token: undefined },
        {
          requiresVerification: false,
          reason: "tier-test-never",
          session: null,
          token: undefined,
        },
      );
      for (const [answer, subject] of [
        [first, GLOBAL_USER_ID],
        [second, "gu-5d13f0b8"],
      ] as const) {
        const { payload, protectedHeader } = await verified(answer.token, "fan-identity", Date.now());
        assert.deepEqual(protectedHeader, { alg: "RS256", kid: KEY_ID, typ: "JWT" });
        assert.equal(payload.sub, subject);
        assert.equal(payload.exp! - payload.iat!, 3600);
        assert.ok(Math.abs(payload.iat! * 1000 - started) < 5000);
      }
      assert.deepEqual(
        secrets.requests.map((request) => JSON.parse(request.body).SecretId).sort(),
        [PERSONA_KEY_ARN, SIGNING_KEY_ARN].sort(),
        "each secret read once for two invocations",
      );
      assert.equal(persona.requests.length, 1);
      assert.equal(persona.requests[0]!.headers.authorization, `Bearer ${API_KEY}`);
    });

    it("fails at cold start, naming each variable that does not meet the contract", function () {
      setWorkerEnvironment({
        ...LAMBDA_AWS,
        TABLE_NAME: table,
        PERSONA_API_URL: "http://withpersona.com",
        PERSONA_INQUIRY_TEMPLATE_ID: "tmpl_123",
        PERSONA_API_KEY_SECRET_ARN: PERSONA_KEY_ARN,
      });
      assert.throws(
        () => checkLiveness.factory(),
        (error: Error) =>
          error.message.startsWith("checkLiveness: environment does not meet the worker's contract: ") &&
          error.message.includes("PERSONA_API_URL: expected an https URL") &&
          error.message.includes("PERSONA_INQUIRY_TEMPLATE_ID: expected a Persona inquiry template id") &&
          error.message.includes("SIGNING_KEY_SECRET_ARN: ") &&
          error.message.includes("TOKEN_AUDIENCE: "),
      );
    });

    it("takes the documented defaults: Persona at https://withpersona.com, 2 s, issuer fan-identity, 1 h tokens, the tier thresholds", function () {
      const env = loadEnvironment(checkLivenessContract, {
        TABLE_NAME: table,
        PERSONA_INQUIRY_TEMPLATE_ID: TEMPLATE_ID,
        PERSONA_API_KEY_SECRET_ARN: PERSONA_KEY_ARN,
        SIGNING_KEY_SECRET_ARN: SIGNING_KEY_ARN,
        TOKEN_AUDIENCE: AUDIENCE,
      });
      assert.deepEqual(env, {
        TABLE_NAME: table,
        PERSONA_API_URL: "https://withpersona.com",
        PERSONA_INQUIRY_TEMPLATE_ID: TEMPLATE_ID,
        PERSONA_API_KEY_SECRET_ARN: PERSONA_KEY_ARN,
        PERSONA_TIMEOUT_MS: 2000,
        SIGNING_KEY_SECRET_ARN: SIGNING_KEY_ARN,
        TOKEN_ISSUER: "fan-identity",
        TOKEN_AUDIENCE: AUDIENCE,
        TOKEN_TTL_SECONDS: 3600,
        HIGH_TIER_DAYS: 30,
        MEDIUM_TIER_DAYS: 90,
        LOW_TIER_SCORE_BELOW: 0.5,
        ASU_ARM_ABOVE: 3,
        ASU_SCORE_BELOW: 0.3,
        ASU_DAYS: 90,
        COOLDOWN_SECONDS: 3600,
        APPROVAL_RETENTION_DAYS: 90,
        VERIFICATION_TYPES: ["liveness"],
      });
      for (const url of ["http://127.0.0.1:8080", "http://localhost:9000/", "https://persona.internal.example.com/base"]) {
        assert.equal(loadEnvironment(checkLivenessContract, { ...varsFor({}), PERSONA_API_URL: url }).PERSONA_API_URL, url);
      }
    });

    it("declares the access it needs (its archive and packages are checked with every worker's in infrastructure.spec)", function () {
      assert.deepEqual(checkLivenessContract.access, {
        dynamodb_idv_sessions: {
          actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
          on: "the fan-identity table",
        },
        persona_api_key: { actions: ["secretsmanager:GetSecretValue"], on: "the Persona API key" },
        decision_signing_key: { actions: ["secretsmanager:GetSecretValue"], on: "the decision token signing key" },
      });
    });
  });

  describe("the caller and the arguments", function () {
    it("refuses a caller who is not logged in, or whose resolverContext carries no usable globalUserId, as Unauthorized", async function () {
      const loggedOut = eventFor({ tier: "always" });
      loggedOut.identity = { resolverContext: { isLoggedIn: "false" } };
      const noContext = eventFor({ tier: "always" });
      noContext.identity = null;
      const noId = eventFor({ tier: "always" });
      delete noId.identity!.resolverContext.globalUserId;
      const keyBreaking = eventFor({ tier: "always" }, "gu-1#idv");
      for (const [event, message] of [
        [loggedOut, "the caller is not logged in"],
        [noContext, "the caller is not logged in"],
        [noId, "the caller's resolverContext carries no globalUserId"],
        [keyBreaking, "the caller's resolverContext carries no globalUserId"],
      ] as const) {
        const { error, logs } = await refusal(event);
        assert.equal(error.name, "Unauthorized");
        assert.equal(error.message, message);
        assert.deepEqual(
          linesAt(logs, "WARN").map((line) => [line.message, line.reason]),
          [["refused: unauthorized", message]],
        );
      }
      assert.equal(dynamo.proxy.requests.length + persona.requests.length + secrets.requests.length, 0);
    });

    it("refuses an unknown tier with a ValidationError naming the field and the tiers", async function () {
      const { error, logs } = await refusal({ tier: "gold" });
      assert.equal(error.name, "ValidationError");
      assert.equal(
        error.message,
        'options.tier: unknown tier "gold"; expected one of always, high, medium, low, asu, test-always, test-never',
      );
      assert.deepEqual(
        linesAt(logs, "WARN").map((line) => line.message),
        ["refused: invalid arguments"],
      );
      assert.equal(dynamo.proxy.requests.length + persona.requests.length + secrets.requests.length, 0);
    });

    it("refuses other bad arguments, naming each field", async function () {
      const cases: [Arguments, RegExp][] = [
        [{}, /^options\.tier: required; expected one of always, high/],
        [{ tier: "always", appId: "" }, /^options\.appId: /],
        [{ tier: "always", subjectId: 42 }, /^options\.subjectId: /],
        [{ tier: "asu", armScore: 7 }, /^armScore: /],
        [{ tier: "asu", armScore: 3.5 }, /^armScore: /],
        [{ tier: "low", accountScore: "0.4" }, /^accountScore: /],
        [{ tier: "always", verificationType: "liveness#2" }, /^options\.verificationType: expected one of liveness/],
        [{ tier: "gold", armScore: 0 }, /^options\.tier: unknown tier "gold"; .*; armScore: /],
      ];
      for (const [args, message] of cases) {
        const { error } = await refusal(args);
        assert.equal(error.name, "ValidationError", JSON.stringify(args));
        assert.match(error.message, message);
      }
      assert.equal(dynamo.proxy.requests.length + persona.requests.length, 0);
    });
  });

  describe("a new verification", function () {
    it("creates a Persona inquiry for the fan, stores the session and answers it with a token carrying the decision", async function () {
      const answer = await decide({ tier: "always" });

      const id = lastInquiryId();
      assert.deepEqual(
        { ...answer, token: "" },
        {
          requiresVerification: true,
          reason: "tier-always",
          session: { vendorSessionId: id, status: "created", expiresAt: "2026-11-26T12:00:00.000Z", sessionToken: `sess_${id}` },
          token: "",
        },
      );
      const decision = decisionOf("always", true, "tier-always");
      assert.deepEqual(dynamoCalls(), { GetItem: 1, PutItem: 1 });
      assert.equal(persona.requests.length, 1);
      const [request] = persona.requests;
      assert.equal(request!.method, "POST");
      assert.equal(request!.url, "/api/v1/inquiries");
      assert.equal(request!.headers.authorization, `Bearer ${API_KEY}`);
      assert.equal(request!.headers["persona-version"], "2023-01-05");
      assert.equal(request!.headers["content-type"], "application/json");
      assert.deepEqual(JSON.parse(request!.body), {
        data: { attributes: { "inquiry-template-id": TEMPLATE_ID, "reference-id": GLOBAL_USER_ID } },
      });
      // The put only creates: a session stored meanwhile is not overwritten.
      const put = dynamo.proxy.requests.find((candidate) => operationOf(candidate) === "PutItem")!;
      assert.equal(JSON.parse(put.body).ConditionExpression, "attribute_not_exists(#key)");
      assert.deepEqual(await dynamo.item(table, SESSION_KEY), newSession(id, decision));

      const { payload, protectedHeader } = await verified(answer.token);
      assert.deepEqual(protectedHeader, { alg: "RS256", kid: KEY_ID, typ: "JWT" });
      assert.match(String(payload.jti), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.deepEqual(payload, {
        iss: "fan-identity",
        aud: AUDIENCE,
        sub: GLOBAL_USER_ID,
        jti: payload.jti,
        iat: NOW / 1000,
        exp: NOW / 1000 + 3600,
        decisions: [decision],
        appId: APP_ID,
        subjectId: SUBJECT_ID,
      });
    });

    it("reuses the live session on the next check: no second Persona call, the decision appended", async function () {
      const handler = direct();
      const first = await decide({ tier: "always" }, handler);
      dynamo.proxy.requests.length = 0;

      const second = await decide({ tier: "test-always", subjectId: "evt-2026-12-tour-man-0007" }, handler);

      assert.equal(persona.requests.length, 1, "one inquiry for both checks");
      assert.deepEqual(dynamoCalls(), { GetItem: 1, UpdateItem: 1 });
      assert.deepEqual(second.session, {
        vendorSessionId: first.session!.vendorSessionId,
        status: "created",
        expiresAt: first.session!.expiresAt,
      });
      const reused = { ...decisionOf("test-always", true, "tier-test-always"), subjectId: "evt-2026-12-tour-man-0007" };
      const stored = (await dynamo.item(table, SESSION_KEY)) as unknown as SessionItem;
      assert.deepEqual(stored.decisions, [decisionOf("always", true, "tier-always"), reused]);
      assert.deepEqual((await verified(second.token)).payload.decisions, [reused]);
    });

    it("resumes a pending or needs_review session within its lifetime, and replaces one past it", async function () {
      for (const status of ["pending", "needs_review"] as const) {
        await seedSession(storedSession(status, 23 * HOUR));
        const answer = await decide({ tier: "always" });
        assert.deepEqual(answer.session, {
          vendorSessionId: "inq_Seeded9x8y7w6v5u4t3s2r",
          status,
          expiresAt: new Date(NOW + HOUR).toISOString(),
        });
        assert.equal(persona.requests.length, 0);
      }
      await seedSession(storedSession("pending", DAY + 1));
      const answer = await decide({ tier: "always" });
      assert.equal(answer.session!.vendorSessionId, lastInquiryId());
      assert.equal(persona.requests.length, 1);
      assert.equal(((await dynamo.item(table, SESSION_KEY)) as unknown as SessionItem).status, "created");
    });

    it("keeps sessions apart by verification type, liveness when none is named, and refuses a type the stack does not allow", async function () {
      const handler = direct({ VERIFICATION_TYPES: "liveness,document" });
      await decide({ tier: "always", verificationType: null }, handler);
      await decide({ tier: "always", verificationType: "document" }, handler);
      const { error } = await refusal({ tier: "always", verificationType: "passport" }, handler);
      assert.equal(error.name, "ValidationError");
      assert.equal(error.message, "options.verificationType: expected one of liveness, document");
      assert.equal(persona.requests.length, 2);
      assert.equal((await dynamo.item(table, SESSION_KEY))!.verificationType, "liveness");
      assert.equal((await dynamo.item(table, sessionKey(GLOBAL_USER_ID, "document")))!.verificationType, "document");
    });

    it("keeps the fan's last approval when a new inquiry replaces the approved session, and the tiers still see it", async function () {
      await seedSession(storedSession("approved", 20 * DAY));
      const approvedAt = new Date(NOW - 20 * DAY).toISOString();
      await decide({ tier: "always" });
      const replaced = (await dynamo.item(table, SESSION_KEY)) as unknown as SessionItem;
      assert.equal(replaced.vendorSessionId, lastInquiryId());
      assert.equal(replaced.status, "created");
      assert.equal(replaced.lastApprovedAt, approvedAt);
      // Kept (by TTL) until the approval is 90 days old, not only 30 days after this update.
      assert.equal(replaced.expiresOn, Math.floor((Date.parse(approvedAt) + 90 * DAY) / 1000));
      const medium = await decide({ tier: "medium" });
      assert.equal(medium.requiresVerification, false);
      assert.equal(medium.reason, "approved-within-90-days");
    });

    it("opens one session when two checks race: the later put finds the first session and resumes it", async function () {
      // Persona answers slowly enough that both checks read the (absent) session before either stores one.
      personaAnswer = (request) => ({ ...inquiryCreated(request), delayMs: 100 });
      const handler = direct();
      const { result } = await captureLogs(() =>
        Promise.all([handler(eventFor({ tier: "always" })), handler(eventFor({ tier: "always" }))]),
      );
      const [a, b] = result;

      assert.equal(a.session!.vendorSessionId, b.session!.vendorSessionId);
      assert.equal(persona.requests.length, 2, "both asked Persona before either stored");
      assert.deepEqual(dynamoCalls(), { GetItem: 3, PutItem: 2, UpdateItem: 1 });
      const stored = (await dynamo.item(table, SESSION_KEY)) as unknown as SessionItem;
      assert.equal(stored.vendorSessionId, a.session!.vendorSessionId);
      assert.equal(stored.decisions.length, 2);
    });

    it("replaces a malformed stored session, saying what was wrong with it", async function () {
      await dynamo.seed(table, [{ userId: SESSION_KEY, type: "idvSession", status: "lost", updated: "yesterday" }]);
      const outcome = await run(direct(), eventFor({ tier: "always" }));
      assert.equal(outcome.answer!.session!.vendorSessionId, lastInquiryId());
      const [error] = linesAt(outcome.logs, "ERROR");
      assert.equal(error!.message, "stored IDV session is malformed: it will be replaced");
      assert.match(JSON.stringify(error!.problems), /vendorSessionId/);
      assert.match(JSON.stringify(error!.problems), /status/);
      assert.equal(((await dynamo.item(table, SESSION_KEY)) as unknown as SessionItem).status, "created");
    });
  });

  describe("tiers, at their thresholds", function () {
    /** Decides with the fan's session approved `daysAgo`; returns the answer and what it cost. */
    async function withApprovalDaysAgo(tier: string, daysAgo: number, args: Arguments = {}) {
      await seedSession(storedSession("approved", daysAgo * DAY));
      const answer = await decide({ tier, ...args });
      return { answer, calls: dynamoCalls(), inquiries: persona.requests.length };
    }

    it("high: an approval 29 days ago stands (one GetItem, nothing else); 31 days ago a new inquiry replaces it", async function () {
      const recent = await withApprovalDaysAgo("high", 29);
      assert.deepEqual(
        { ...recent.answer, token: "" },
        {
          requiresVerification: false,
          reason: "approved-within-30-days",
          session: null,
          token: "",
        },
      );
      assert.deepEqual(recent.calls, { GetItem: 1 });
      assert.equal(recent.inquiries, 0);
      assert.deepEqual((await verified(recent.answer.token)).payload.decisions, [
        decisionOf("high", false, "approved-within-30-days"),
      ]);

      dynamo.proxy.requests.length = 0;
      const old = await withApprovalDaysAgo("high", 31);
      assert.equal(old.answer.requiresVerification, true);
      assert.equal(old.answer.reason, "no-approval-within-30-days");
      assert.equal(old.answer.session!.vendorSessionId, lastInquiryId());
      assert.deepEqual(old.calls, { GetItem: 1, PutItem: 1 }, "the session read for the tier is the one acted on");
      assert.equal(old.inquiries, 1);
      // Replacing a stored session is conditioned on it being as it was read.
      const put = dynamo.proxy.requests.find((candidate) => operationOf(candidate) === "PutItem")!;
      assert.equal(JSON.parse(put.body).ConditionExpression, "#updated = :updated");
    });

    it("medium: an approval 89 days ago stands; 91 days ago it does not", async function () {
      const recent = await withApprovalDaysAgo("medium", 89);
      assert.equal(recent.answer.requiresVerification, false);
      assert.equal(recent.answer.reason, "approved-within-90-days");
      const old = await withApprovalDaysAgo("medium", 91);
      assert.equal(old.answer.requiresVerification, true);
      assert.equal(old.answer.reason, "no-approval-within-90-days");
      assert.equal(persona.requests.length, 1);
    });

    it("high and medium: a session that is not approved does not count, however recent", async function () {
      for (const status of ["completed", "declined", "expired"] as const) {
        await seedSession(storedSession(status, 2 * HOUR));
        assert.equal((await decide({ tier: "medium" })).reason, "no-approval-within-90-days", status);
      }
    });

    it("low: an account score of exactly 0.5 passes without touching DynamoDB or Persona; just below, or none, requires verification", async function () {
      const passing = await decide({ tier: "low", accountScore: 0.5 });
      assert.deepEqual(
        [passing.requiresVerification, passing.reason, passing.session],
        [false, "account-score-not-below-0.5", null],
      );
      assert.equal(dynamo.proxy.requests.length + persona.requests.length, 0);

      const below = await decide({ tier: "low", accountScore: 0.4999 });
      assert.deepEqual([below.requiresVerification, below.reason], [true, "account-score-below-0.5"]);
      assert.equal(below.session!.vendorSessionId, lastInquiryId());

      const none = await decide({ tier: "low", accountScore: null });
      assert.deepEqual([none.requiresVerification, none.reason], [true, "no-account-score"]);
      assert.equal(none.session!.vendorSessionId, below.session!.vendorSessionId, "the live session is resumed");
      assert.equal(persona.requests.length, 1);
    });

    it("asu: ARM 3 with an account score below 0.3, or with none, requires verification; ARM 3 at 0.3 does not", async function () {
      const low = await decide({ tier: "asu", armScore: 3, accountScore: 0.29 });
      assert.deepEqual([low.requiresVerification, low.reason], [true, "account-score-below-0.3"]);
      const unknown = await decide({ tier: "asu", armScore: 3 });
      assert.deepEqual([unknown.requiresVerification, unknown.reason], [true, "no-account-score"]);
      const passing = await decide({ tier: "asu", armScore: 3, accountScore: 0.3 });
      assert.deepEqual(
        [passing.requiresVerification, passing.reason, passing.session],
        [false, "account-score-not-below-0.3", null],
      );
    });

    it("asu: ARM 4 requires verification whatever the account score, unless approved within 90 days", async function () {
      const risky = await decide({ tier: "asu", armScore: 4, accountScore: 0.99 });
      assert.deepEqual([risky.requiresVerification, risky.reason], [true, "arm-score-above-3"]);

      const approved = await withApprovalDaysAgo("asu", 89, { armScore: 5, accountScore: 0.1 });
      assert.deepEqual([approved.answer.requiresVerification, approved.answer.reason], [false, "approved-within-90-days"]);
      const lapsed = await withApprovalDaysAgo("asu", 91, { armScore: 5 });
      assert.deepEqual([lapsed.answer.requiresVerification, lapsed.answer.reason], [true, "arm-score-above-3"]);
    });

    it("asu: ARM 1 or 2 passes, and the fixture's ARM 4 with 0.42 does not", async function () {
      const safe = await decide({ tier: "asu", armScore: 2, accountScore: 0.01 });
      assert.deepEqual([safe.requiresVerification, safe.reason], [false, "arm-score-below-3"]);
      const outcome = await run(direct(), {
        ...FIXTURE,
        arguments: { ...FIXTURE.arguments, options: { ...FIXTURE.arguments.options, tier: "asu" } },
      });
      assert.deepEqual([outcome.answer!.requiresVerification, outcome.answer!.reason], [true, "arm-score-above-3"]);
    });

    it("test-never answers without touching DynamoDB or Persona; test-always opens an inquiry", async function () {
      const never = await decide({ tier: "test-never" });
      assert.deepEqual([never.requiresVerification, never.reason, never.session], [false, "tier-test-never", null]);
      assert.equal(dynamo.proxy.requests.length + persona.requests.length, 0);
      const always = await decide({ tier: "test-always" });
      assert.deepEqual([always.requiresVerification, always.reason], [true, "tier-test-always"]);
      assert.equal(always.session!.vendorSessionId, lastInquiryId());
    });

    it("takes its thresholds from the environment", async function () {
      const strict = direct({ HIGH_TIER_DAYS: "7", LOW_TIER_SCORE_BELOW: "0.8", ASU_ARM_ABOVE: "2", ASU_DAYS: "7" });
      await seedSession(storedSession("approved", 8 * DAY));
      assert.equal((await decide({ tier: "high" }, strict)).reason, "no-approval-within-7-days");
      assert.equal((await decide({ tier: "low", accountScore: 0.7 }, strict)).reason, "account-score-below-0.8");
      assert.equal((await decide({ tier: "asu", armScore: 3, accountScore: 0.9 }, strict)).reason, "arm-score-above-2");
    });
  });

  describe("cooldown", function () {
    for (const status of ["failed", "declined"] as const) {
      it(`refuses a new verification for an hour after a ${status} one, saying until when; not after the hour`, async function () {
        await seedSession(storedSession(status, 59 * 60_000));
        const { error, logs } = await refusal({ tier: "always" });
        assert.equal(error.name, "CooldownActive");
        const since = new Date(NOW - 59 * 60_000).toISOString();
        const outcome = status === "failed" ? "failed" : "was declined";
        assert.equal(
          error.message,
          `the last verification ${outcome} at ${since}; a new one can start at 2026-11-25T12:01:00.000Z`,
        );
        assert.equal((error as Error & { until?: string }).until, "2026-11-25T12:01:00.000Z");
        assert.equal(persona.requests.length, 0);
        assert.deepEqual(dynamoCalls(), { GetItem: 1 }, "nothing written");
        assert.deepEqual(
          linesAt(logs, "WARN").map((line) => [line.message, line.status]),
          [["refused: cooldown after a refused verification", status]],
        );

        await seedSession(storedSession(status, HOUR));
        const after = await decide({ tier: "always" });
        assert.equal(after.session!.vendorSessionId, lastInquiryId());
        assert.equal(persona.requests.length, 1);
      });
    }

    it("does not apply when the tier does not require verification", async function () {
      await seedSession(storedSession("declined", 60_000));
      const answer = await decide({ tier: "low", accountScore: 0.9 });
      assert.equal(answer.requiresVerification, false);
    });

    it("follows COOLDOWN_SECONDS", async function () {
      await seedSession(storedSession("failed", 11 * 60_000));
      const answer = await decide({ tier: "always" }, direct({ COOLDOWN_SECONDS: "600" }));
      assert.equal(answer.session!.vendorSessionId, lastInquiryId());
    });
  });

  describe("when a dependency fails", function () {
    it("fails safe when Persona answers 503 every time: verification required, no session, nothing stored, the failure logged", async function () {
      personaAnswer = () => ({ status: 503, body: { errors: [{ title: "Service Unavailable" }] } });
      const outcome = await run(direct(), eventFor({ tier: "always" }));

      assert.deepEqual(
        { ...outcome.answer!, token: "" },
        {
          requiresVerification: true,
          reason: "vendor-unavailable",
          session: null,
          token: "",
        },
      );
      assert.equal(persona.requests.length, 3, "the first attempt and two retries");
      assert.deepEqual(dynamoCalls(), { GetItem: 1 });
      assert.deepEqual(await dynamo.scan(table), []);
      const errors = linesAt(outcome.logs, "ERROR");
      assert.equal(errors.length, 1);
      assert.equal(errors[0]!.message, "no Persona inquiry: answering requiresVerification without a session");
      assert.equal(errors[0]!.vendor, "Persona API");
      assert.deepEqual(errors[0]!.error, {
        message:
          'Persona API POST create inquiry failed after 3 attempts: HTTP 503: {"errors":[{"title":"Service Unavailable"}]}',
        code: "HttpServiceError",
      });
      assert.deepEqual((await verified(outcome.answer!.token)).payload.decisions, [
        decisionOf("always", true, "vendor-unavailable"),
      ]);
    });

    it("fails safe within the time bound when Persona hangs", async function () {
      personaAnswer = (request) => ({ ...inquiryCreated(request), delayMs: 2000 });
      const started = Date.now();
      const answer = await decide({ tier: "always" }, direct({ PERSONA_TIMEOUT_MS: "100" }));
      const elapsed = Date.now() - started;
      assert.equal(answer.reason, "vendor-unavailable");
      assert.equal(answer.session, null);
      assert.equal(persona.requests.length, 3);
      assert.ok(elapsed < 1500, `answered after ${elapsed} ms`);
      assert.deepEqual(await dynamo.scan(table), []);
    });

    it("fails safe when Persona answers something other than an inquiry for the fan", async function () {
      for (const answer of [
        { status: 200, headers: { "content-type": "text/html" }, body: "<html>maintenance</html>" },
        {
          status: 201,
          body: { data: { type: "inquiry", id: "inq_Other1", attributes: { status: "created", "reference-id": "gu-other" } } },
        },
      ]) {
        personaAnswer = () => answer;
        const outcome = await run(direct(), eventFor({ tier: "always" }));
        assert.equal(outcome.answer!.reason, "vendor-unavailable");
        assert.match(
          String((linesAt(outcome.logs, "ERROR")[0]!.error as { message: string }).message),
          /^Persona API POST create inquiry failed( after 3 attempts)?: HTTP 20[01]: /,
        );
      }
      assert.deepEqual(await dynamo.scan(table), []);
    });

    it("fails safe, without calling Persona, when its API key cannot be read", async function () {
      apiKeyReadable = false;
      const outcome = await run(direct(), eventFor({ tier: "always" }));
      assert.equal(outcome.answer!.reason, "vendor-unavailable");
      assert.equal(persona.requests.length, 0);
      assert.match(String((linesAt(outcome.logs, "ERROR")[0]!.error as { message: string }).message), /AccessDeniedException/);
    });

    it("fails, naming DynamoDB, the operation and the table, when the session cannot be read; Persona is not called", async function () {
      const handler = direct({ TABLE_NAME: "fan-identity-table-missing" });
      const { error, logs } = await refusal({ tier: "always" }, handler);
      assert.match(
        error.message,
        /^checkLiveness: dynamodb GetItem on fan-identity-table-missing \(idv#gu-7f3c2a91#liveness\) failed: ResourceNotFoundException: /,
      );
      assert.equal(persona.requests.length, 0);
      assert.deepEqual(
        linesAt(logs, "ERROR").map((line) => line.message),
        ["IDV session not accessed"],
      );
    });

    it("fails, naming PutItem, when the new session cannot be stored", async function () {
      dynamo.intercept = (request) =>
        operationOf(request) === "PutItem"
          ? {
              answer: {
                status: 400,
                headers: { "content-type": "application/x-amz-json-1.0" },
                body: {
                  __type: "com.amazon.coral.validate#ValidationException",
                  message: "Item size has exceeded the maximum allowed size",
                },
              },
            }
          : undefined;
      const { error } = await refusal({ tier: "always" });
      assert.match(
        error.message,
        new RegExp(`^checkLiveness: dynamodb PutItem on ${table} \\(${SESSION_KEY}\\) failed: ValidationException: Item size`),
      );
      assert.equal(persona.requests.length, 1);
    });

    it("fails, logging why, when the decision cannot be signed", async function () {
      signingKeyReadable = false;
      const { error, logs } = await refusal({ tier: "test-never" });
      assert.match(
        error.message,
        /^checkLiveness: the decision token could not be signed: secretsmanager GetSecretValue .* AccessDeniedException/,
      );
      assert.deepEqual(
        linesAt(logs, "ERROR").map((line) => line.message),
        ["decision token not signed"],
      );
    });
  });

  describe("the decision token", function () {
    it("is issued by TOKEN_ISSUER for TOKEN_TTL_SECONDS, and fails verification with another key or issuer", async function () {
      const answer = await decide(
        { tier: "test-never" },
        direct({ TOKEN_ISSUER: "https://idv.verifiedfan.example.com", TOKEN_TTL_SECONDS: "600" }),
      );
      const { payload } = await verified(answer.token, "https://idv.verifiedfan.example.com");
      assert.equal(payload.exp! - payload.iat!, 600);
      await assert.rejects(verified(answer.token), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED" });
      await assert.rejects(verified(answer.token, "https://idv.verifiedfan.example.com", NOW + 601_000), {
        code: "ERR_JWT_EXPIRED",
      });
      const other = await generateKeyPair("RS256");
      await assert.rejects(jwtVerify(answer.token, other.publicKey, { algorithms: ["RS256"] }), {
        code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
      });
    });

    it("is for TOKEN_AUDIENCE: verifies with the public key, the issuer and that aud; another aud fails", async function () {
      const answer = await decide({ tier: "test-never" }, direct({ TOKEN_AUDIENCE: "presale-backend-prod1" }));
      const { payload } = await jwtVerify(answer.token, keys.publicKey, {
        algorithms: ["RS256"],
        issuer: "fan-identity",
        audience: "presale-backend-prod1",
        currentDate: new Date(NOW),
      });
      assert.equal(payload.aud, "presale-backend-prod1");
      assert.equal(payload.sub, GLOBAL_USER_ID);
      for (const audience of [AUDIENCE, "verified-fan", "presale-backend-prod"]) {
        await assert.rejects(verified(answer.token, "fan-identity", NOW, audience), {
          code: "ERR_JWT_CLAIM_VALIDATION_FAILED",
          claim: "aud",
        });
      }
    });

    it("carries a jti, a random UUID, different in every token, also for the same fan and decision", async function () {
      const handler = direct();
      const tokens = [];
      for (let index = 0; index < 3; index++) tokens.push((await decide({ tier: "test-never" }, handler)).token);
      const ids = await Promise.all(tokens.map(async (token) => (await verified(token)).payload.jti));
      for (const id of ids) assert.match(String(id), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      assert.equal(new Set(ids).size, 3, `ids ${ids.join(", ")}`);
      const decisions = await Promise.all(tokens.map(async (token) => (await verified(token)).payload.decisions));
      assert.deepEqual(decisions[0], decisions[2], "the same decision, told apart only by jti");
    });

    it("is verified refusing a token with the right key, issuer and audience but no exp, or no jti", async function () {
      const signed = (claims: { exp?: boolean; jti?: boolean }) => {
        const jwt = new SignJWT({ decisions: [] })
          .setProtectedHeader({ alg: "RS256", kid: KEY_ID, typ: "JWT" })
          .setIssuer("fan-identity")
          .setAudience(AUDIENCE)
          .setSubject(GLOBAL_USER_ID)
          .setIssuedAt(Math.floor(NOW / 1000));
        if (claims.exp) jwt.setExpirationTime(Math.floor(NOW / 1000) + 3600);
        if (claims.jti) jwt.setJti("8a3b1f0e-5c2d-4e7f-9a6b-1c0d2e3f4a5b");
        return jwt.sign(keys.privateKey);
      };
      assert.equal((await verified(await signed({ exp: true, jti: true }))).payload.sub, GLOBAL_USER_ID);
      await assert.rejects(verified(await signed({ jti: true })), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "exp" });
      await assert.rejects(verified(await signed({ exp: true })), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "jti" });
    });

    it("is signed with a key read and imported once for many decisions", async function () {
      const handler = direct();
      // One capture around the concurrent calls: nested captures would restore the streams out of order.
      const { result: answers } = await captureLogs(() =>
        Promise.all(["gu-1", "gu-2", "gu-3"].map((gid) => handler(eventFor({ tier: "test-never" }, gid)))),
      );
      answers.push(await decide({ tier: "test-never" }, handler));
      for (const answer of answers) await verified(answer.token);
      assert.deepEqual(
        secrets.requests.map((request) => JSON.parse(request.body).SecretId),
        [SIGNING_KEY_ARN],
      );
    });
  });
});
