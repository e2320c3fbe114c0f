/**
 * The accounts ARAI API's client in tests, built as lookupArai's factory builds it, against an API
 * and Secrets Manager at the wire.
 */
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { araiCredentialsSchema, createAraiClient } from "../../workers/lookupArai/araiClient";
import { createSecretReader } from "../../workers/shared/runtime/secrets";

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
