import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { z } from "../shared/zod";
import { ARM_SCORE_MAX, ARM_SCORE_MIN } from "../shared/scoring/armScore";
import {
  type Decision,
  DEFAULT_VERIFICATION_TYPE,
  SESSION_STATUSES,
  type SessionItem,
  lastApprovalOf as lastApprovalRecorded,
  sessionExpiry,
  sessionKey,
  unknownSessionAttributes,
} from "../shared/idv/session";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../shared/runtime/awsClients";
import { defineWorker } from "../shared/runtime/contract";
import { createDocumentClient } from "../shared/runtime/dynamo";
import { loadEnvironment } from "../shared/runtime/environment";
import { namedError } from "../shared/runtime/errors";
import { describeIssues } from "../shared/runtime/issues";
import { instrumentHandler } from "../shared/runtime/handler";
import { createLogger, describeError, type Logger } from "../shared/runtime/logging";
import { createWorkerMetrics, discardedMetrics, type WorkerMetrics } from "../shared/runtime/metrics";
import { createSecretReader } from "../shared/runtime/secrets";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import { isObject } from "../shared/runtime/values";
import { globalUserIdSchema } from "../shared/scoring/activity";
import { KEY, RECORD_TYPES } from "../shared/scoring/table";
import { checkLivenessContract, type CheckLivenessEnvironment } from "./contract";
import { createPersonaClient, type Inquiry, PERSONA_SERVICE, type PersonaClient, personaApiKeySchema } from "./persona";
import { evaluateTier, lastApprovalOf, nextStep, type SessionFacts, type Tier, TIERS, TIERS_READING_APPROVAL } from "./tiers";
import { createDecisionSigner, type DecisionSigner, signingKeySchema } from "./token";

/** The session as the fan's client needs it to open (or resume) the inquiry. */
export interface SessionAnswer {
  readonly vendorSessionId: string;
  readonly status: string;
  readonly expiresAt: string;
  readonly sessionToken?: string;
}

/** What the resolver answers. */
export interface LivenessAnswer {
  readonly requiresVerification: boolean;
  readonly reason: string;
  readonly session: SessionAnswer | null;
  /** RS256 JWT carrying the decision. */
  readonly token: string;
}

export interface CheckLivenessDependencies {
  readonly env: CheckLivenessEnvironment;
  readonly dynamo: DynamoDBDocumentClient;
  readonly persona: PersonaClient;
  readonly signDecision: DecisionSigner;
  readonly logger: Logger;
  readonly now?: () => number;
  /** The outcome of each request (counted by the handler wrapper unless counted here). @default none */
  readonly metrics?: WorkerMetrics;
}

/** The reason given when verification is required but no inquiry could be opened. */
export const VENDOR_UNAVAILABLE = "vendor-unavailable";

/** How many times the session is read again after another request changed it between read and write. */
const SESSION_ROUNDS = 3;

/** The arguments of the `checkLiveness` field; `verificationTypes` are those the stack allows. */
const argumentsSchema = (verificationTypes: readonly string[]) =>
  z.object({
    options: z.object({
      tier: z.enum(TIERS, {
        error: (issue) =>
          issue.input === undefined
            ? `required; expected one of ${TIERS.join(", ")}`
            : `unknown tier ${JSON.stringify(issue.input)}; expected one of ${TIERS.join(", ")}`,
      }),
      appId: z.string().check(z.minLength(1), z.maxLength(256)),
      subjectId: z.string().check(z.minLength(1), z.maxLength(256)),
      verificationType: z.pipe(
        z.nullish(
          z
            .string()
            .check(z.refine((type) => verificationTypes.includes(type), `expected one of ${verificationTypes.join(", ")}`)),
        ),
        z.transform((value) => value ?? DEFAULT_VERIFICATION_TYPE),
      ),
    }),
    armScore: z.nullish(z.number().check(z.int(), z.gte(ARM_SCORE_MIN), z.lte(ARM_SCORE_MAX))),
    accountScore: z.nullish(z.number()),
  });

/** What is read of a stored session; a session that does not match is replaced, not reused. */
const storedSessionSchema = () => {
  const instant = z.string().check(z.refine((value) => !Number.isNaN(Date.parse(value)), "expected an ISO 8601 time"));
  return z.looseObject({
    vendorSessionId: z.string().check(z.minLength(1)),
    status: z.enum(SESSION_STATUSES),
    updated: instant,
    expiresAt: instant,
    lastApprovedAt: z.optional(instant),
  });
};

interface StoredSession {
  /** The item as stored, when there is one. */
  readonly item?: Record<string, unknown>;
  /** The session, when the item is a well-formed one. */
  readonly session?: SessionFacts & { readonly vendorSessionId: string };
}

/** The caller's globalUserId, from the Lambda authoriser's resolverContext. */
function callerOf(event: Record<string, unknown>, gidSchema: ReturnType<typeof globalUserIdSchema>): string {
  const context = isObject(event.identity) ? event.identity.resolverContext : undefined;
  if (!isObject(context) || context.isLoggedIn !== "true") {
    throw namedError("Unauthorized", "the caller is not logged in");
  }
  const parsed = gidSchema.safeParse(context.globalUserId);
  if (!parsed.success) {
    throw namedError("Unauthorized", "the caller's resolverContext carries no globalUserId");
  }
  return parsed.data;
}

/** The fan's address: the first x-forwarded-for entry (the ones after it are proxies). */
function ipAddressOf(event: Record<string, unknown>): string | undefined {
  const headers = isObject(event.request) ? event.request.headers : undefined;
  const forwarded = isObject(headers) ? headers["x-forwarded-for"] : undefined;
  if (typeof forwarded !== "string") return undefined;
  const first = forwarded.split(",")[0]?.trim();
  return first ? first : undefined;
}

/** The condition a new session is put under: the item is still as it was read (or still absent). */
function unchangedSince(item: Record<string, unknown> | undefined): {
  ConditionExpression: string;
  ExpressionAttributeNames: Record<string, string>;
  ExpressionAttributeValues?: Record<string, unknown>;
} {
  if (item === undefined) {
    return { ConditionExpression: "attribute_not_exists(#key)", ExpressionAttributeNames: { "#key": KEY } };
  }
  if (typeof item.updated === "string") {
    return {
      ConditionExpression: "#updated = :updated",
      ExpressionAttributeNames: { "#updated": "updated" },
      ExpressionAttributeValues: { ":updated": item.updated },
    };
  }
  return {
    ConditionExpression: "attribute_exists(#key) AND attribute_not_exists(#updated)",
    ExpressionAttributeNames: { "#key": KEY, "#updated": "updated" },
  };
}

const isConditionFailure = (error: unknown) => (error as Error).name === "ConditionalCheckFailedException";

/** The resolver itself, with its clients passed in. */
export function createCheckLiveness(deps: CheckLivenessDependencies) {
  const { env, dynamo, persona, logger } = deps;
  const now = deps.now ?? Date.now;
  const worker = checkLivenessContract.name;
  const metrics = deps.metrics ?? discardedMetrics();
  const table = env.TABLE_NAME;
  const schema = argumentsSchema(env.VERIFICATION_TYPES);
  const gidSchema = globalUserIdSchema();
  const sessionSchema = storedSessionSchema();
  const thresholds = {
    highDays: env.HIGH_TIER_DAYS,
    mediumDays: env.MEDIUM_TIER_DAYS,
    lowScoreBelow: env.LOW_TIER_SCORE_BELOW,
    asuArmAbove: env.ASU_ARM_ABOVE,
    asuScoreBelow: env.ASU_SCORE_BELOW,
    asuDays: env.ASU_DAYS,
  };

  /** A DynamoDB failure, naming the operation, the table and the item. */
  function dynamoError(operation: string, key: string, error: unknown): Error {
    const { message, code } = describeError(error);
    logger.error("IDV session not accessed", { operation, table, key, error: { message, code } });
    return new Error(`${worker}: dynamodb ${operation} on ${table} (${key}) failed: ${code ?? "Error"}: ${message}`, {
      cause: error,
    });
  }

  async function readSession(key: string): Promise<StoredSession> {
    let item: Record<string, unknown> | undefined;
    try {
      // Consistent: a session stored or updated a moment ago must be seen, or a second inquiry would be opened.
      ({ Item: item } = await dynamo.send(new GetCommand({ TableName: table, Key: { [KEY]: key }, ConsistentRead: true })));
    } catch (error) {
      throw dynamoError("GetItem", key, error);
    }
    if (item === undefined) return {};
    const parsed = sessionSchema.safeParse(item);
    if (parsed.success) return { item, session: parsed.data };
    const problems = describeIssues(parsed.error, "(item)");
    logger.error("stored IDV session is malformed: it will be replaced", { key, problems: problems.slice(0, 5) });
    return { item };
  }

  /** Adds the decision to a live session; undefined when the session was replaced in the meantime. */
  async function appendDecision(key: string, vendorSessionId: string, decision: Decision) {
    try {
      const { Attributes } = await dynamo.send(
        new UpdateCommand({
          TableName: table,
          Key: { [KEY]: key },
          UpdateExpression: "SET #decisions = list_append(if_not_exists(#decisions, :none), :decision)",
          ConditionExpression: "#vendorSessionId = :vendorSessionId",
          ExpressionAttributeNames: { "#decisions": "decisions", "#vendorSessionId": "vendorSessionId" },
          ExpressionAttributeValues: { ":none": [], ":decision": [decision], ":vendorSessionId": vendorSessionId },
          ReturnValues: "ALL_NEW",
        }),
      );
      return Attributes as Partial<SessionItem> | undefined;
    } catch (error) {
      if (isConditionFailure(error)) return undefined;
      throw dynamoError("UpdateItem", key, error);
    }
  }

  /**
   * Stores a new session in place of the one read; false when the stored item changed since it
   * was read. A whole-item put, conditioned on what was read, so the attributes of the item read
   * that this code does not know (a newer writer's) are written back with it.
   */
  async function putSession(item: SessionItem, read: Record<string, unknown> | undefined): Promise<boolean> {
    try {
      await dynamo.send(
        new PutCommand({ TableName: table, Item: { ...unknownSessionAttributes(read), ...item }, ...unchangedSince(read) }),
      );
      return true;
    } catch (error) {
      if (isConditionFailure(error)) return false;
      throw dynamoError("PutItem", item.userId, error);
    }
  }

  return async function checkLiveness(event: unknown): Promise<LivenessAnswer> {
    if (!isObject(event)) {
      logger.warn("refused: not an AppSync resolver event", { eventType: event === null ? "null" : typeof event });
      throw namedError("ValidationError", "the event is not an AppSync resolver event");
    }
    let globalUserId: string;
    try {
      globalUserId = callerOf(event, gidSchema);
    } catch (error) {
      logger.warn("refused: unauthorized", { reason: (error as Error).message });
      throw error;
    }
    const parsed = schema.safeParse(event.arguments);
    if (!parsed.success) {
      const problems = describeIssues(parsed.error, "arguments");
      logger.warn("refused: invalid arguments", { globalUserId, problems });
      throw namedError("ValidationError", problems.join("; "));
    }
    const { options, armScore, accountScore } = parsed.data;
    const tier: Tier = options.tier;
    const { appId, subjectId, verificationType } = options;
    const at = now();
    const key = sessionKey(globalUserId, verificationType);
    const context = { globalUserId, tier, appId, subjectId, verificationType };

    let stored = TIERS_READING_APPROVAL.includes(tier) ? await readSession(key) : undefined;
    const outcome = evaluateTier(
      tier,
      { armScore, accountScore, lastApprovedAt: lastApprovalOf(stored?.session) },
      thresholds,
      at,
    );
    const decide = (requiresVerification: boolean, reason: string): Decision => ({
      at: new Date(at).toISOString(),
      tier,
      appId,
      subjectId,
      requiresVerification,
      reason,
    });
    const answer = async (decision: Decision, session: SessionAnswer | null): Promise<LivenessAnswer> => {
      let token: string;
      try {
        token = await deps.signDecision({ globalUserId, decision, appId, subjectId, now: at });
      } catch (error) {
        const { message, code } = describeError(error);
        logger.error("decision token not signed", { ...context, error: { message, code } });
        throw new Error(`${worker}: the decision token could not be signed: ${message}`, { cause: error });
      }
      logger.info("liveness decided", {
        ...context,
        requiresVerification: decision.requiresVerification,
        reason: decision.reason,
        vendorSessionId: session?.vendorSessionId,
      });
      return { requiresVerification: decision.requiresVerification, reason: decision.reason, session, token };
    };

    const decision = decide(outcome.requiresVerification, outcome.reason);
    if (!outcome.requiresVerification) return answer(decision, null);

    for (let round = 1; round <= SESSION_ROUNDS; round++) {
      stored ??= await readSession(key);
      const step = nextStep(stored.session, at, env.COOLDOWN_SECONDS);

      if (step.action === "cooldown") {
        logger.warn("refused: cooldown after a refused verification", { ...context, status: step.status, until: step.until });
        // The answer the rule gives, though an error to AppSync: the request was handled.
        metrics.processed(1);
        const outcomeText = step.status === "failed" ? "failed" : "was declined";
        throw namedError(
          "CooldownActive",
          `the last verification ${outcomeText} at ${step.since}; a new one can start at ${step.until}`,
          { until: step.until },
        );
      }

      if (step.action === "reuse") {
        const { vendorSessionId } = stored.session!;
        const updated = await appendDecision(key, vendorSessionId, decision);
        if (updated?.status !== undefined && updated.expiresAt !== undefined) {
          return answer(decision, { vendorSessionId, status: updated.status, expiresAt: updated.expiresAt });
        }
        stored = undefined;
        continue;
      }

      let inquiry: Inquiry;
      try {
        inquiry = await persona.createInquiry(env.PERSONA_INQUIRY_TEMPLATE_ID, globalUserId);
      } catch (error) {
        // Fail safe: the fan is still asked to verify, though no inquiry could be opened now.
        const { message, code } = describeError(error);
        logger.error("no Persona inquiry: answering requiresVerification without a session", {
          ...context,
          vendor: PERSONA_SERVICE,
          error: { message, code },
        });
        return answer(decide(true, VENDOR_UNAVAILABLE), null);
      }
      const nowIso = new Date(at).toISOString();
      const previousApproval = lastApprovalRecorded(stored.session);
      const item: SessionItem = {
        userId: key,
        type: RECORD_TYPES.idvSession,
        globalUserId,
        verificationType,
        vendorSessionId: inquiry.id,
        status: inquiry.status,
        statusHistory: [{ status: inquiry.status, at: nowIso }],
        decisions: [decision],
        ipAddress: ipAddressOf(event),
        created: nowIso,
        updated: nowIso,
        // The replaced session's approval is kept: the tiers look back over it.
        ...(previousApproval ? { lastApprovedAt: previousApproval } : {}),
        ...sessionExpiry(inquiry.status, nowIso, previousApproval, env.APPROVAL_RETENTION_DAYS),
      };
      if (await putSession(item, stored.item)) {
        const session: SessionAnswer = {
          vendorSessionId: item.vendorSessionId,
          status: item.status,
          expiresAt: item.expiresAt,
          ...(inquiry.sessionToken ? { sessionToken: inquiry.sessionToken } : {}),
        };
        return answer(decision, session);
      }
      // Another request stored a session first: read it again, and most likely resume that one.
      logger.info("IDV session changed while opening an inquiry: reading it again", { ...context, unused: inquiry.id });
      stored = undefined;
    }
    logger.error("IDV session kept changing: no decision", { ...context, rounds: SESSION_ROUNDS });
    throw namedError("SessionConflict", `the IDV session ${key} kept changing; try again`);
  };
}

/** The longest a read of the Persona API key or the signing key waits for Secrets Manager. */
const SECRET_WAIT_MS = 1500;

export const checkLiveness = defineWorker(checkLivenessContract, () => {
  const env = loadEnvironment(checkLivenessContract);
  const logger = createLogger(checkLivenessContract);
  const metrics = createWorkerMetrics(checkLivenessContract);
  const secretCalls = metrics.calls(DEPENDENCIES.secretsManager);
  const secrets = new SecretsManagerClient(awsClientConfig(AWS_CLIENT_BOUNDS.resolver.secretsManager));
  const onStale = (error: unknown) => logger.warn("serving a cached secret: refresh failed", { error: describeError(error) });
  // Kept five minutes, so a rotated API key or signing key is picked up without a cold start. A
  // fan waits on the answer: a read waits at most SECRET_WAIT_MS for Secrets Manager (a cached
  // value is then served, or the fail-safe answer given), leaving the function's 5 s beyond
  // Persona's attempts for the session's reads and writes.
  const readApiKey = createSecretReader({
    secretId: env.PERSONA_API_KEY_SECRET_ARN,
    schema: personaApiKeySchema(),
    maxAgeMs: 300_000,
    client: secrets,
    waitMs: SECRET_WAIT_MS,
    onStale,
    calls: secretCalls,
  });
  const readSigningKey = createSecretReader({
    secretId: env.SIGNING_KEY_SECRET_ARN,
    schema: signingKeySchema(),
    maxAgeMs: 300_000,
    client: secrets,
    waitMs: SECRET_WAIT_MS,
    onStale,
    calls: secretCalls,
  });
  const handler = createCheckLiveness({
    env,
    logger,
    dynamo: createDocumentClient(new DynamoDBClient(awsClientConfig(AWS_CLIENT_BOUNDS.resolver.dynamoDb))),
    persona: createPersonaClient({
      apiUrl: env.PERSONA_API_URL,
      timeoutMs: env.PERSONA_TIMEOUT_MS,
      readApiKey: async () => (await readApiKey()).apiKey,
      calls: metrics.calls(DEPENDENCIES.persona),
    }),
    signDecision: createDecisionSigner({
      issuer: env.TOKEN_ISSUER,
      audience: env.TOKEN_AUDIENCE,
      ttlSeconds: env.TOKEN_TTL_SECONDS,
      readSigningKey,
    }),
    metrics,
  });
  return instrumentHandler({ logger, metrics, request: true }, handler);
});
