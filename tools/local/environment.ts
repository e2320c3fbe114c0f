/**
 * The environment of a function's local containers: the variables the program sets, with every
 * address pointed at its local stand-in, plus what Lambda adds (region, name, memory, log level,
 * credentials). AWS services are reached through the SDK's service endpoint variables; queue URLs
 * become the local queues', also inside a variable holding a JSON object of them
 * (DEAD_LETTER_QUEUE_URLS); the outside services' URLs keep their paths on a local origin.
 */
import type { PlannedFunction } from "./wiring";

/** The outside services the workers call, by the variable that holds their address. */
export const EXTERNAL_SERVICES = {
  ARAI_URL_TEMPLATE: "accounts",
  JWKS_URL: "accounts",
  MODEL_URL: "modelServing",
  PERSONA_API_URL: "persona",
  ARM_REDIS_URL: "redis",
  ARM_REDIS_READ_ONLY_URL: "redis",
} as const;

export type ExternalService = (typeof EXTERNAL_SERVICES)[keyof typeof EXTERNAL_SERVICES];

/** Variables that hold a URL no worker fetches (a token's expected issuer). */
const NOT_FETCHED = new Set(["JWT_ISSUER"]);

export interface LocalEndpoints {
  readonly dynamodb: string;
  readonly sqs: string;
  readonly secretsManager: string;
  readonly glue: string;
  /** Planned queue URL → local queue URL. */
  readonly queueUrls: ReadonlyMap<string, string>;
  /** The origin (`http://127.0.0.1:port`, `redis://127.0.0.1:port`) of each outside service. */
  readonly origins: Readonly<Record<ExternalService, string>>;
}

const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/]+/i;

/** A variable holding a JSON object of strings (DEAD_LETTER_QUEUE_URLS, say), parsed; else undefined. */
function jsonObjectOf(value: string): Record<string, string> | undefined {
  if (!value.startsWith("{")) return undefined;
  try {
    const parsed = JSON.parse(value) as unknown;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return undefined;
    return Object.values(parsed).every((item) => typeof item === "string") ? (parsed as Record<string, string>) : undefined;
  } catch {
    return undefined;
  }
}

function localValue(fn: PlannedFunction, name: string, value: string, endpoints: LocalEndpoints): string {
  const queue = endpoints.queueUrls.get(value);
  if (queue) return queue;
  // A JSON object of addresses (queue ARN → dead-letter queue URL): each address made local.
  const object = jsonObjectOf(value);
  if (object) {
    return JSON.stringify(
      Object.fromEntries(Object.entries(object).map(([key, item]) => [key, localValue(fn, name, item, endpoints)])),
    );
  }
  if (!ORIGIN.test(value) || NOT_FETCHED.has(name)) return value;
  const service = EXTERNAL_SERVICES[name as keyof typeof EXTERNAL_SERVICES];
  if (!service) {
    throw new Error(
      `${fn.name}: variable ${name} holds an address (${value}) with no local stand-in; add it to EXTERNAL_SERVICES in tools/local/environment.ts`,
    );
  }
  return value.replace(ORIGIN, endpoints.origins[service]);
}

/** The whole environment of one of the function's containers. */
export function functionEnvironment(fn: PlannedFunction, endpoints: LocalEndpoints, archiveDir: string): Record<string, string> {
  const variables = Object.fromEntries(
    Object.entries(fn.variables).map(([name, value]) => [name, localValue(fn, name, value, endpoints)]),
  );
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    TZ: ":UTC",
    LANG: "en_US.UTF-8",
    ...variables,
    AWS_REGION: fn.region,
    AWS_DEFAULT_REGION: fn.region,
    AWS_ACCESS_KEY_ID: "local",
    AWS_SECRET_ACCESS_KEY: "local",
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    AWS_LAMBDA_FUNCTION_VERSION: "$LATEST",
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: `local/[$LATEST]${process.pid}`,
    ...(fn.logLevel ? { AWS_LAMBDA_LOG_LEVEL: fn.logLevel } : {}),
    AWS_EXECUTION_ENV: "AWS_Lambda_nodejs",
    // What Lambda sets for a container started on demand; Powertools reads it for the cold-start flag.
    AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    LAMBDA_TASK_ROOT: archiveDir,
    LOCAL_FUNCTION_ARN: fn.arn,
    AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
    AWS_ENDPOINT_URL_SQS: endpoints.sqs,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: endpoints.secretsManager,
    AWS_ENDPOINT_URL_GLUE: endpoints.glue,
    // The machine's Node may be older than the runtime's; the SDK's notice about it is noise here.
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
  };
}
