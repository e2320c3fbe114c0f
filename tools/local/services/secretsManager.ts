/**
 * Secrets Manager for the local system, speaking its JSON protocol (`X-Amz-Target:
 * secretsmanager.<Operation>`): GetSecretValue for the workers, and CreateSecret, PutSecretValue,
 * DescribeSecret and ListSecrets for seeding and inspection. A secret is addressed by its full ARN,
 * its ARN without the random suffix, or its name (the ARN's part after `secret:` without the
 * `-AbCdEf` suffix). Values are held in memory only, and neither logged nor recorded.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import type { RunningService } from "../types";
import { type AwsOperation, awsJsonResponder, WireServer } from "../wire";

const CURRENT = "AWSCURRENT";
const PREVIOUS = "AWSPREVIOUS";
/** Requests kept for inspection (without their bodies, which carry secret values). */
const KEPT_REQUESTS = 1000;

interface SecretVersion {
  readonly id: string;
  readonly value: string;
  stages: string[];
  readonly createdAt: number;
}

interface StoredSecret {
  readonly arn: string;
  readonly name: string;
  readonly description?: string;
  readonly createdAt: number;
  changedAt: number;
  readonly versions: SecretVersion[];
}

type Failure = { error: { type: string; message: string } };
const failure = (type: string, message: string): Failure => ({ error: { type, message } });
const NOT_FOUND = failure("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");

/** The name of the secret an ARN names: the part after `secret:`, without the 6-character random suffix. */
export function secretNameOfArn(arn: string): string {
  return arn.slice(arn.indexOf(":secret:") + ":secret:".length).replace(/-[A-Za-z0-9]{6}$/, "");
}

const ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const randomSuffix = () => [...randomBytes(6)].map((byte) => ALPHANUMERIC[byte % ALPHANUMERIC.length]).join("");
const seconds = (ms: number) => ms / 1000;

export interface SecretsManagerOptions {
  /** Region and account of the ARNs CreateSecret makes. @default us-east-1, 000000000000 */
  readonly region?: string;
  readonly accountId?: string;
}

/** A secret to hold: under its ARN (the name is the ARN's) or under a name, with a value (objects as JSON). */
export interface SecretDefinition {
  readonly arn?: string;
  readonly name?: string;
  readonly description?: string;
  readonly value: string | object;
}

export interface LocalSecretsManager extends RunningService {
  /** The server, whose `requests` record the calls (operation and headers; bodies are not kept). */
  readonly server: WireServer;
  /** Holds a secret (replacing one of the same name) with one version, current; returns its ARN and name. */
  define(secret: SecretDefinition): { arn: string; name: string };
  /** The current value of a secret, by ARN or name; undefined when there is none. */
  valueOf(secretId: string): string | undefined;
  /** The secrets held, by name. */
  list(): { name: string; arn: string }[];
}

/** The secrets, and how an id (ARN, partial ARN or name) finds one. */
function createStore(options: SecretsManagerOptions) {
  const byName = new Map<string, StoredSecret>();
  const arnPrefix = `arn:aws:secretsmanager:${options.region ?? "us-east-1"}:${options.accountId ?? "000000000000"}:secret:`;
  return {
    byName,
    find(secretId: string): StoredSecret | undefined {
      if (!secretId.startsWith("arn:")) return byName.get(secretId);
      const secret = byName.get(secretNameOfArn(secretId));
      // A full ARN, or the ARN without its suffix (a partial ARN, as AWS accepts).
      return secret && (secret.arn === secretId || secret.arn.slice(0, -7) === secretId) ? secret : undefined;
    },
    add(name: string, arn: string | undefined, description: string | undefined): StoredSecret {
      const now = Date.now();
      const secret: StoredSecret = {
        arn: arn ?? `${arnPrefix}${name}-${randomSuffix()}`,
        name,
        ...(description === undefined ? {} : { description }),
        createdAt: now,
        changedAt: now,
        versions: [],
      };
      byName.set(name, secret);
      return secret;
    },
  };
}

/** Adds a version, current; the one current before becomes previous. */
function addVersion(secret: StoredSecret, value: string, id: string = randomUUID()): SecretVersion {
  for (const version of secret.versions) {
    version.stages = version.stages.filter((stage) => stage !== PREVIOUS);
    if (version.stages.includes(CURRENT)) version.stages = [PREVIOUS];
  }
  const version: SecretVersion = { id, value, stages: [CURRENT], createdAt: Date.now() };
  secret.versions.push(version);
  secret.changedAt = version.createdAt;
  return version;
}

const stagesOf = (secret: StoredSecret) =>
  Object.fromEntries(
    secret.versions.filter((version) => version.stages.length > 0).map((version) => [version.id, version.stages]),
  );

/** A new version of a secret, or the one `token` already made with the same value (a retried request). */
function putValue(secret: StoredSecret, value: unknown, token: unknown): SecretVersion | Failure {
  if (typeof value !== "string") return failure("InvalidRequestException", "SecretString is required (SecretBinary is not held)");
  const existing = typeof token === "string" ? secret.versions.find((version) => version.id === token) : undefined;
  if (!existing) return addVersion(secret, value, typeof token === "string" ? token : undefined);
  if (existing.value === value) return existing;
  return failure("ResourceExistsException", `a version with ClientRequestToken ${existing.id} already exists with another value`);
}

/** The JSON-protocol operations on the store. */
function operations(store: ReturnType<typeof createStore>): Record<string, AwsOperation> {
  const find = (input: Record<string, unknown>) => store.find(String(input.SecretId ?? ""));
  return {
    GetSecretValue: (input) => {
      const secret = find(input);
      if (!secret) return NOT_FOUND;
      const stage = typeof input.VersionStage === "string" ? input.VersionStage : CURRENT;
      const version = secret.versions.find((candidate) =>
        typeof input.VersionId === "string" ? candidate.id === input.VersionId : candidate.stages.includes(stage),
      );
      if (!version) {
        return failure(
          "ResourceNotFoundException",
          `Secrets Manager can't find the specified secret value for staging label: ${stage}`,
        );
      }
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: version.id,
        SecretString: version.value,
        VersionStages: version.stages,
        CreatedDate: seconds(version.createdAt),
      };
    },
    CreateSecret: (input) => {
      const name = String(input.Name ?? "");
      if (!/^[\w/+=.@-]{1,512}$/.test(name)) return failure("InvalidParameterException", "Name is not a valid secret name");
      if (store.byName.has(name))
        return failure("ResourceExistsException", `The operation failed because the secret ${name} already exists.`);
      const secret = store.add(name, undefined, typeof input.Description === "string" ? input.Description : undefined);
      if (input.SecretString === undefined) return { ARN: secret.arn, Name: secret.name };
      const version = putValue(secret, input.SecretString, input.ClientRequestToken);
      if ("error" in version) return version;
      return { ARN: secret.arn, Name: secret.name, VersionId: version.id };
    },
    PutSecretValue: (input) => {
      const secret = find(input);
      if (!secret) return NOT_FOUND;
      const version = putValue(secret, input.SecretString, input.ClientRequestToken);
      if ("error" in version) return version;
      return { ARN: secret.arn, Name: secret.name, VersionId: version.id, VersionStages: version.stages };
    },
    DescribeSecret: (input) => {
      const secret = find(input);
      return secret ? { ...summaryOf(secret), VersionIdsToStages: stagesOf(secret) } : NOT_FOUND;
    },
    ListSecrets: (input) => listSecrets(store, input),
  };
}

const summaryOf = (secret: StoredSecret) => ({
  ARN: secret.arn,
  Name: secret.name,
  ...(secret.description === undefined ? {} : { Description: secret.description }),
  CreatedDate: seconds(secret.createdAt),
  LastChangedDate: seconds(secret.changedAt),
});

/** ListSecrets, by name, in pages of MaxResults (100 by default); filters are refused, not ignored. */
function listSecrets(store: ReturnType<typeof createStore>, input: Record<string, unknown>) {
  if (input.Filters !== undefined)
    return failure("InvalidParameterException", "Filters are not supported by the local Secrets Manager");
  const all = [...store.byName.values()].sort((a, b) => a.name.localeCompare(b.name));
  const start = typeof input.NextToken === "string" ? Number(input.NextToken) : 0;
  if (!Number.isInteger(start) || start < 0)
    return failure("InvalidNextTokenException", "NextToken is not one this service gave");
  const size = typeof input.MaxResults === "number" ? input.MaxResults : 100;
  const page = all.slice(start, start + size);
  return {
    SecretList: page.map((secret) => ({ ...summaryOf(secret), SecretVersionsToStages: stagesOf(secret) })),
    ...(start + size < all.length ? { NextToken: String(start + size) } : {}),
  };
}

/** Starts the local Secrets Manager on a free loopback port, holding no secrets. */
export async function startSecretsManager(options: SecretsManagerOptions = {}): Promise<LocalSecretsManager> {
  const store = createStore(options);
  const server = await WireServer.start(awsJsonResponder(operations(store)), { keep: KEPT_REQUESTS, keepBodies: false });
  return {
    server,
    url: server.url,
    define(definition) {
      const name = definition.name ?? (definition.arn ? secretNameOfArn(definition.arn) : undefined);
      if (!name) throw new Error("a secret to define needs an arn or a name");
      const secret = store.add(name, definition.arn, definition.description);
      const value = typeof definition.value === "string" ? definition.value : JSON.stringify(definition.value);
      addVersion(secret, value);
      return { arn: secret.arn, name: secret.name };
    },
    valueOf: (secretId) => store.find(secretId)?.versions.find((version) => version.stages.includes(CURRENT))?.value,
    list: () => [...store.byName.values()].map(({ name, arn }) => ({ name, arn })),
    close: () => server.close(),
  };
}

/** The documents the workers read from Secrets Manager, by what they hold. */
export type SecretKind = "apiKeys" | "araiCredentials" | "modelToken" | "personaApiKey" | "webhookSecrets" | "signingKey";

/** The worker variables naming a secret, and what the secret they name holds. */
export const SECRET_VARIABLES: Readonly<Record<string, SecretKind>> = {
  API_KEYS_SECRET_ARN: "apiKeys",
  ARAI_CREDENTIALS_SECRET_ARN: "araiCredentials",
  MODEL_TOKEN_SECRET_ARN: "modelToken",
  PERSONA_API_KEY_SECRET_ARN: "personaApiKey",
  WEBHOOK_SECRETS_ARN: "webhookSecrets",
  SIGNING_KEY_SECRET_ARN: "signingKey",
};

/** A secret the plan declares: its name, its ARN and what it holds. */
export interface PlanSecret {
  readonly name: string;
  readonly arn: string;
  readonly kind: SecretKind;
}

/** The part of a plan's resource read here (tools/offline/describe.ts's PlannedResource). */
export interface PlanResource {
  readonly type: string;
  readonly inputs: Record<string, unknown>;
}

const variablesOf = (resource: PlanResource) =>
  ((resource.inputs.environment as { variables?: Record<string, unknown> } | undefined)?.variables ?? {}) as Record<
    string,
    unknown
  >;

/**
 * The secrets a plan declares (its SecretVersions' ARNs), each with what it holds, told by the
 * worker variable naming it. A secret no known variable names, or two naming it differently, is
 * an error: the local system would not know what to put in it.
 */
export function planSecrets(resources: readonly PlanResource[]): PlanSecret[] {
  const kinds = new Map<string, Set<SecretKind>>();
  for (const resource of resources.filter((candidate) => candidate.type === "aws:lambda/function:Function")) {
    for (const [variable, value] of Object.entries(variablesOf(resource))) {
      const kind = SECRET_VARIABLES[variable];
      if (kind && typeof value === "string") kinds.set(value, new Set([...(kinds.get(value) ?? []), kind]));
    }
  }
  const arns = resources
    .filter((resource) => resource.type === "aws:secretsmanager/secretVersion:SecretVersion")
    .map((resource) => String(resource.inputs.secretId));
  return [...new Set(arns)].map((arn) => {
    const found = [...(kinds.get(arn) ?? [])];
    if (found.length !== 1) {
      const why = found.length === 0 ? "no worker variable names it" : `worker variables name it as ${found.join(" and ")}`;
      throw new Error(`secret ${arn}: ${why}; known variables: ${Object.keys(SECRET_VARIABLES).join(", ")}`);
    }
    return { name: secretNameOfArn(arn), arn, kind: found[0]! };
  });
}

/** The values the local system's secrets hold: the workers read them, the stand-ins check them, traffic uses them. */
export interface LocalSecretValues {
  /** API keys the authoriser accepts (`{"apiKeys": [...]}`). */
  readonly apiKeys: readonly string[];
  /** The accounts ARAI API's credentials (`{"username", "password", "clientId"}`). */
  readonly araiCredentials: { readonly username: string; readonly password: string; readonly clientId: string };
  /** Bearer token of model serving (`{"token"}`). */
  readonly modelToken: string;
  /** Persona API key (`{"apiKey"}`). */
  readonly personaApiKey: string;
  /** Persona webhook signing secrets (`{"secrets": [...]}`). */
  readonly webhookSecrets: readonly string[];
  /** The decision token key (`{"privateKey", "keyId"}`): RSA, PKCS#8 PEM; the public key (SPKI PEM) to verify with. */
  readonly signingKey: { readonly keyId: string; readonly privateKey: string; readonly publicKey: string };
}

export interface SecretValueOptions {
  /** The decision signing key's id (the stack's `idv.signingKeyId`). @default local-decision-key */
  readonly signingKeyId?: string;
}

const token = (prefix: string, bytes = 16) => `${prefix}${randomBytes(bytes).toString("hex")}`;

/** Fresh random values for every kind of secret, each as long and shaped as the stack's configuration requires. */
export function generateSecretValues(options: SecretValueOptions = {}): LocalSecretValues {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs8", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return {
    apiKeys: [token("local-api-key-")],
    araiCredentials: { username: "fan-identity-local", password: token("", 24), clientId: "fan-identity-workers-local" },
    modelToken: token("dapi"),
    personaApiKey: token("persona_sandbox_"),
    webhookSecrets: [token("wbhsec_")],
    signingKey: { keyId: options.signingKeyId ?? "local-decision-key", privateKey, publicKey },
  };
}

/** The JSON document a secret of `kind` holds, as the stack writes it and the workers read it. */
export function secretDocument(kind: SecretKind, values: LocalSecretValues): Record<string, unknown> {
  switch (kind) {
    case "apiKeys":
      return { apiKeys: values.apiKeys };
    case "araiCredentials":
      return { ...values.araiCredentials };
    case "modelToken":
      return { token: values.modelToken };
    case "personaApiKey":
      return { apiKey: values.personaApiKey };
    case "webhookSecrets":
      return { secrets: values.webhookSecrets };
    case "signingKey":
      return { privateKey: values.signingKey.privateKey, keyId: values.signingKey.keyId };
  }
}

/**
 * Puts every secret the plan declares into the local Secrets Manager under its ARN, holding the
 * document of its kind made of `values` (fresh ones by default), and returns the values, for the
 * stand-ins to check and the traffic to use. Nothing is logged.
 */
export function seedSecrets(
  store: LocalSecretsManager,
  secrets: readonly PlanSecret[],
  values: LocalSecretValues = generateSecretValues(),
): LocalSecretValues {
  for (const secret of secrets) {
    store.define({ arn: secret.arn, name: secret.name, value: secretDocument(secret.kind, values) });
  }
  return values;
}
