/**
 * Secrets Manager at the wire, holding the JSON documents the workers read (credentials, tokens,
 * API keys), and a client pointed at it.
 */
import { SecretsManagerClient, type SecretsManagerClientConfig } from "@aws-sdk/client-secrets-manager";
import { awsJsonResponder, WireServer } from "./http";

/** What Secrets Manager answers instead of a secret's value. */
export class SecretRefusal {
  constructor(
    readonly type: string,
    readonly message: string,
  ) {}
}

export const ACCESS_DENIED = new SecretRefusal(
  "AccessDeniedException",
  "User is not authorized to perform: secretsmanager:GetSecretValue",
);
const NOT_FOUND = new SecretRefusal("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");

/** A secret's JSON document, or the refusal to answer instead; undefined: no such secret. */
export type SecretDocument = object | undefined;

/**
 * Secrets Manager at the wire. GetSecretValue answers with the document held for the SecretId asked
 * for (its JSON as SecretString): `documents` holds them by id, or picks one at each call. A
 * SecretRefusal is answered as that error; an id with no document is not found.
 */
export async function startSecrets(
  documents: Readonly<Record<string, object>> | ((secretId: string) => SecretDocument),
): Promise<WireServer> {
  const documentFor = typeof documents === "function" ? documents : (secretId: string) => documents[secretId];
  return WireServer.start(
    awsJsonResponder({
      GetSecretValue: (input) => {
        const secretId = String(input.SecretId);
        const document = documentFor(secretId) ?? NOT_FOUND;
        if (document instanceof SecretRefusal) return { error: { type: document.type, message: document.message } };
        return {
          ARN: secretId,
          Name: secretId.split(":").at(-1),
          SecretString: JSON.stringify(document),
          VersionId: "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111",
        };
      },
    }),
  );
}

/**
 * A Secrets Manager client for the fake, as a factory builds it against AWS_ENDPOINT_URL_SECRETS_MANAGER;
 * `config` adds to its configuration (a worker's bounds, `maxAttempts: 1` to count one request per fetch).
 */
export function secretsManagerClient(server: WireServer, config: SecretsManagerClientConfig = {}): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint: server.url,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
    ...config,
  });
}
