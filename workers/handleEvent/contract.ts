import { z } from "../shared/zod";
import { defineContract } from "../shared/runtime/contract";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import { approvalRetentionDaysVariable, verificationTypesSchema } from "../shared/idv/session";
import { tableNameVariable } from "../shared/runtime/environment";

export const handleEventContract = defineContract({
  name: "handleEvent",
  description:
    "Persona webhooks (POST /webhooks/persona on the IDV REST API, or an AppSync resolver): verifies the signature and moves the fan's IDV session to the inquiry's status",
  environment: () =>
    z.object({
      /** The region's fan-identity table, which holds the IDV sessions. */
      TABLE_NAME: tableNameVariable(),
      /** Secrets Manager secret holding `{"secrets": ["wbhsec_…", …]}`: one, or two while Persona rotates. */
      WEBHOOK_SECRETS_ARN: z.string().check(z.minLength(1)),
      /** How far a signature's timestamp may be from now, either way. */
      SIGNATURE_TOLERANCE_SECONDS: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(3600)), 300),
      /** The verification types a session may be stored under; an event's session is looked for under each. */
      VERIFICATION_TYPES: verificationTypesSchema(),
      /** How long a fan's last approval is kept (at least the longest tier window). */
      APPROVAL_RETENTION_DAYS: approvalRetentionDaysVariable(),
    }),
  access: {
    dynamodb_idv_sessions: { actions: ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"], on: "the fan-identity table" },
    webhook_secrets: { actions: ["secretsmanager:GetSecretValue"], on: "the Persona webhook secrets" },
  },
  dependencies: [DEPENDENCIES.secretsManager],
});

export type HandleEventEnvironment = z.infer<ReturnType<typeof handleEventContract.environment>>;

/** How long a fetched webhook secret is reused: a rotated secret is picked up within this. */
export const SECRETS_MAX_AGE_MS = 5 * 60_000;
