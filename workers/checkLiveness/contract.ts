import { z } from "../shared/zod";
import { approvalRetentionDaysVariable, verificationTypesSchema } from "../shared/idv/session";
import { defineContract } from "../shared/runtime/contract";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import { isHttpsUrl, tableNameVariable } from "../shared/runtime/environment";

/**
 * The Persona API's base URL: https, or plain http to a loopback host only, for a local stand-in;
 * the stack's configuration requires https.
 */
const personaApiUrl = () =>
  z._default(z.string().check(z.refine(isHttpsUrl, "expected an https URL")), "https://withpersona.com");

const days = (fallback: number) => z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(365)), fallback);
const score = (fallback: number) => z._default(z.coerce.number().check(z.gte(0), z.lte(1)), fallback);

export const checkLivenessContract = defineContract({
  name: "checkLiveness",
  description:
    "AppSync resolver: decides by the requested tier whether a fan must verify their identity, reuses or creates the Persona inquiry, and answers a signed decision token",
  environment: () =>
    z.object({
      /** The fan-identity table, where IDV sessions are kept. */
      TABLE_NAME: tableNameVariable(),
      PERSONA_API_URL: personaApiUrl(),
      PERSONA_INQUIRY_TEMPLATE_ID: z.string().check(z.regex(/^itmpl_\w+$/, "expected a Persona inquiry template id (itmpl_…)")),
      /** Secrets Manager secret holding `{"apiKey": "persona_production_…"}`. */
      PERSONA_API_KEY_SECRET_ARN: z.string().check(z.minLength(1)),
      /** Bound on each Persona request (there are at most two retries). */
      PERSONA_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.gte(50), z.lte(10_000)), 2000),
      /** Secrets Manager secret holding `{"privateKey": "<PKCS#8 PEM, RSA>", "keyId": "<kid>"}`. */
      SIGNING_KEY_SECRET_ARN: z.string().check(z.minLength(1)),
      TOKEN_ISSUER: z._default(z.string().check(z.minLength(1)), "fan-identity"),
      /** The decision token's `aud` (the stack's `idv.decisionTokenAudience`): whom the token is for. */
      TOKEN_AUDIENCE: z.string().check(z.minLength(1)),
      TOKEN_TTL_SECONDS: z._default(z.coerce.number().check(z.int(), z.gte(60), z.lte(86_400)), 3600),
      HIGH_TIER_DAYS: days(30),
      MEDIUM_TIER_DAYS: days(90),
      LOW_TIER_SCORE_BELOW: score(0.5),
      ASU_ARM_ABOVE: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(5)), 3),
      ASU_SCORE_BELOW: score(0.3),
      ASU_DAYS: days(90),
      /** After a failed or declined session, how long a new one is refused. */
      COOLDOWN_SECONDS: z._default(z.coerce.number().check(z.int(), z.gte(0), z.lte(86_400)), 3600),
      /** How long a fan's last approval is kept (at least the longest tier window). */
      APPROVAL_RETENTION_DAYS: approvalRetentionDaysVariable(),
      /** The verification types a request may name (comma-separated). */
      VERIFICATION_TYPES: verificationTypesSchema(),
    }),
  access: {
    dynamodb_idv_sessions: {
      actions: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
      on: "the fan-identity table",
    },
    persona_api_key: { actions: ["secretsmanager:GetSecretValue"], on: "the Persona API key" },
    decision_signing_key: { actions: ["secretsmanager:GetSecretValue"], on: "the decision token signing key" },
  },
  dependencies: [DEPENDENCIES.persona, DEPENDENCIES.secretsManager],
});

export type CheckLivenessEnvironment = z.infer<ReturnType<typeof checkLivenessContract.environment>>;
