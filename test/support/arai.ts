/**
 * The accounts ARAI API in tests: its answer in the documented shape (`{data, meta}`, from the
 * recorded fixture test/fixtures/arai/account-activity.json), and its client built as
 * lookupArai's factory builds it, against an API and Secrets Manager at the wire.
 */
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { araiCredentialsSchema, createAraiClient } from "../../workers/lookupArai/araiClient";
import type { UserAccountActivity } from "../../workers/lookupArai/araiDocument";
import { createSecretReader } from "../../workers/shared/runtime/secrets";
import { fixture } from "./fixtures";

/** The API's answer: the fan's account activity (`data`) and the answer's `meta`. */
export interface AraiAnswer {
  readonly data: UserAccountActivity & Record<string, unknown>;
  readonly meta: { readonly pageCount: number };
}

/** The recorded answer, for its own fan (a fresh copy each time). */
export const recordedAraiAnswer = (): AraiAnswer => fixture<AraiAnswer>("arai/account-activity.json");

/** The recorded answer's `data` for another fan, with fields replaced: what lookupArai stores for that fan. */
export function araiDataFor(globalUserId: string, fields: Record<string, unknown> = {}): AraiAnswer["data"] {
  return { ...recordedAraiAnswer().data, ...fields, globalUserId };
}

/** The recorded answer for another fan, its `data` fields replaced. */
export function araiAnswerFor(globalUserId: string, fields: Record<string, unknown> = {}): AraiAnswer {
  return { ...recordedAraiAnswer(), data: araiDataFor(globalUserId, fields) };
}

/** The secret holding the API's credentials. */
export const ARAI_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/arai-credentials-Zx81Qe";
/** The API's path for a fan's account activity. */
export const ARAI_PATH_TEMPLATE = "/arai/v1/accounts/{globalUserId}/activity";

/** The client of the API at `apiUrl`, reading its credentials from ARAI_SECRET_ARN through `secrets`, retrying after 5 ms. */
export function araiClientFor(apiUrl: string, secrets: SecretsManagerClient, options: { timeoutMs?: number } = {}) {
  const readCredentials = createSecretReader({
    secretId: ARAI_SECRET_ARN,
    schema: araiCredentialsSchema(),
    maxAgeMs: 300_000,
    client: secrets,
  });
  return createAraiClient({
    urlTemplate: `${apiUrl}${ARAI_PATH_TEMPLATE}`,
    timeoutMs: options.timeoutMs ?? 1000,
    readCredentials,
    baseDelayMs: 5,
  });
}
