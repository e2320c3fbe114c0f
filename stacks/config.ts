/**
 * Stack configuration: one schema for everything a `Pulumi.<stack>.yaml` may hold, checked when
 * the program starts. A missing, malformed or unknown key fails with the stack, the key and what
 * was expected. Secrets (API keys, signing keys, credentials) are accepted only as Pulumi
 * secrets (`pulumi config set --secret`), and stay secret outputs inside the program.
 */
import * as pulumi from "@pulumi/pulumi";
import * as runtimeConfig from "@pulumi/pulumi/runtime/config";
import { z } from "zod";
import { regionOfArn } from "../components/iam";
import type { PlatformSettings } from "../components/platform";
import { INPUT_STREAM_WORKERS, type InputStreamTrigger } from "../workers/registry";
import { ASYMMETRIC_ALGORITHMS } from "../workers/validateToken/contract";

export const PROJECT = "fan-identity-workers";

/** The primary region: everything but the west scoring component lives here. */
export const PRIMARY_REGION = "us-east-1";
/** The second scoring region, deployed when its Kafka topic is configured. */
export const WEST_REGION = "us-west-2";

const accountId = z.string().regex(/^\d{12}$/, "expected a 12-digit AWS account id");
const arnOf = (service: string, example: string) =>
  z.string().regex(new RegExp(`^arn:aws:${service}:[a-z0-9-]*:(\\d{12})?:.+$`), `expected an ARN like ${example}`);
const positiveInt = (max: number) => z.number().int().min(0).max(max);

/** Runtimes AWS Lambda currently supports for Node.js. */
export const SUPPORTED_RUNTIMES = ["nodejs22.x", "nodejs24.x"] as const;
/** Retention periods CloudWatch Logs accepts, in days. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

const exportImport = z
  .object({
    /** The Glue workflow the import starts. */
    glueWorkflowName: z.string().regex(/^[\w-]{1,255}$/, "expected a Glue workflow name"),
    /** Key prefix of this import's exports in the Data Science bucket, ending in `/`. */
    exportPrefix: z.string().regex(/^[^/].*\/$/, "expected a key prefix such as bot-or-not/exports/ (no leading /, ending in /)"),
  })
  .strict();

const kinesisStreamArn = arnOf("kinesis", "arn:aws:kinesis:us-east-1:123456789012:stream/purchase-stream");
const httpsUrl = (what: string) => z.url({ protocol: /^https$/, error: `expected the https URL of ${what}` });

const vpcId = z.string().regex(/^vpc-[0-9a-f]{8,17}$/, "expected a VPC id such as vpc-0123456789abcdef0");
const redisUrl = z.url({ protocol: /^rediss?$/, error: "expected a redis:// or rediss:// URL" });

/**
 * The Kinesis streams whose activity a region's workers enqueue: one ARN per input-stream
 * worker of the registry, under the key its trigger names; optional while a new stream is rolled
 * out through the stacks.
 */
function inputStreamsSchema() {
  const arn = (optional: boolean) => (optional ? kinesisStreamArn.optional() : kinesisStreamArn);
  const shape = Object.fromEntries(INPUT_STREAM_WORKERS.map(({ trigger }) => [trigger.stream, arn(trigger.optional ?? false)]));
  return z.object(shape as Record<InputStreamTrigger["stream"], ReturnType<typeof arn>>).strict();
}

/** One scoring region's own resources: the streams it reads, its Kafka topic, its ARM Redis. */
const scoringRegion = z
  .object({
    /** The Kinesis streams whose activity the region's workers enqueue. */
    inputStreams: inputStreamsSchema(),
    /** The region's Kafka cluster and user-activity topic. */
    kafka: z
      .object({
        bootstrapServers: z.array(z.string().regex(/^[\w.-]+:\d{1,5}$/, "expected host:port")).min(1),
        topic: z.string().regex(/^[\w.-]{1,249}$/, "expected a Kafka topic name"),
        /** Secrets Manager secret in the region with the brokers' username and password (kept by the Kafka team). */
        authSecretArn: arnOf("secretsmanager", "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-user-activity-AbCdEf"),
      })
      .strict()
      .optional(),
    /** The ARM team's Redis, read by getArmScore. */
    armRedis: z
      .object({
        url: redisUrl,
        /** A read replica's endpoint; reads go there when set. */
        readOnlyUrl: redisUrl.optional(),
        clusterMode: z.boolean().default(false),
      })
      .strict(),
  })
  .strict();

const modelEndpoint = z
  .object({
    /** The serving endpoint's invocations URL: `https://<host>/serving-endpoints/<name>/invocations`. */
    url: httpsUrl("a Databricks serving endpoint's invocations").refine(
      (url) => /\/serving-endpoints\/[^/]+\/invocations$/.test(url),
      "expected https://<host>/serving-endpoints/<name>/invocations",
    ),
    /** The model version the endpoint serves, stored with every score. */
    version: z.string().min(1),
    timeoutMs: z.number().int().min(100).max(30_000).default(3000),
  })
  .strict();

const scoring = z
  .object({
    /** Days after a purchase, queue join or registration when the fan is scored again. */
    rescoreDelayDays: z.number().int().min(1).max(30).default(5),
    /** Records per invocation of the stream consumers. */
    streamBatchSize: z.number().int().min(1).max(10_000).default(100),
    /** Messages per invocation of lookupArai. */
    queueBatchSize: z.number().int().min(1).max(10).default(10),
    /** Timeout of the enqueue workers, in seconds. */
    enqueueTimeoutSeconds: z.number().int().min(3).max(900).default(30),
    arai: z
      .object({
        /** The accounts ARAI API, with `{globalUserId}` where the fan's id goes. */
        urlTemplate: httpsUrl("the accounts ARAI API").refine(
          (url) => url.includes("{globalUserId}"),
          "expected {globalUserId} in the URL",
        ),
        timeoutMs: z.number().int().min(100).max(10_000).default(2000),
        /** ARAI younger than this is not fetched again. */
        freshnessSeconds: z.number().int().min(0).max(86_400).default(300),
        concurrency: z.number().int().min(1).max(50).default(10),
      })
      .strict(),
    model: modelEndpoint,
    stagingModel: modelEndpoint,
    /** Records per model request. */
    modelBatchSize: z.number().int().min(1).max(1000).default(100),
    /** The user-activity consumer (enqueueFromActivityStream), one per region, when enabled. */
    kafka: z
      .object({
        enabled: z.boolean(),
        /** How Lambda authenticates to the brokers, with the credentials in each region's `authSecretArn`. */
        authType: z.enum(["SASL_SCRAM_512_AUTH", "SASL_SCRAM_256_AUTH", "BASIC_AUTH"]).default("SASL_SCRAM_512_AUTH"),
        consumerGroupId: z.string().regex(/^[\w.-]{1,200}$/, "expected a consumer group id"),
        batchSize: z.number().int().min(1).max(10_000).default(100),
        /** Provisioned pollers: the mode in which Lambda offers Kafka sources partial batch responses and retries. */
        minimumPollers: z.number().int().min(1).max(200).default(1),
        maximumPollers: z.number().int().min(1).max(2000).default(2),
      })
      .strict(),
    /** us-east-1, always deployed. */
    east: scoringRegion,
    /** us-west-2: deployed when its Kafka topic is configured. */
    west: scoringRegion.optional(),
  })
  .strict()
  .superRefine((scoring, ctx) => {
    if (scoring.kafka.enabled && !scoring.east.kafka) {
      ctx.addIssue({
        code: "custom",
        path: ["east", "kafka"],
        message: "kafka.enabled is true but the east region has no Kafka topic",
      });
    }
    if (scoring.west && !scoring.west.kafka) {
      ctx.addIssue({
        code: "custom",
        path: ["west", "kafka"],
        message: "the west region is deployed only with its Kafka topic configured",
      });
    }
    // Each region reads streams, and Lambda reads the Kafka secret, in the region itself.
    for (const [region, name] of [
      ["east", PRIMARY_REGION],
      ["west", WEST_REGION],
    ] as const) {
      const settings = scoring[region];
      if (!settings) continue;
      const arns: [string[], string][] = [
        ...Object.entries(settings.inputStreams).flatMap(([key, arn]): [string[], string][] =>
          arn ? [[["inputStreams", key], arn]] : [],
        ),
        ...(settings.kafka ? [[["kafka", "authSecretArn"], settings.kafka.authSecretArn] as [string[], string]] : []),
      ];
      for (const [path, arn] of arns) {
        if (regionOfArn(arn) !== name) {
          ctx.addIssue({ code: "custom", path: [region, ...path], message: `expected an ARN in ${name}, the ${region} region` });
        }
      }
    }
    if (scoring.kafka.minimumPollers > scoring.kafka.maximumPollers) {
      ctx.addIssue({ code: "custom", path: ["kafka", "minimumPollers"], message: "more than maximumPollers" });
    }
  });

/** The identity-verification stack: its API's domain, the Persona inquiry, the liveness tiers' thresholds. */
const idv = z
  .object({
    /** The API's domain is `<inventoryCode>-gateway-<env>.verifiedfan.<zone>`, in the public hosted zone `verifiedfan.<zone>`. */
    zone: z.string().regex(/^([a-z0-9-]+\.)+[a-z]{2,}$/, "expected a DNS zone such as example.com"),
    persona: z
      .object({
        apiUrl: httpsUrl("the Persona API").default("https://withpersona.com"),
        inquiryTemplateId: z.string().regex(/^itmpl_\w+$/, "expected a Persona inquiry template id (itmpl_…)"),
        timeoutMs: z.number().int().min(100).max(10_000).default(2000),
      })
      .strict(),
    /** Names the decision token's signing key (the token's `kid`). */
    signingKeyId: z.string().regex(/^[\w.-]{1,64}$/, "expected a key id"),
    /** The decision token's `aud`: whom the token is for (its verifiers check it). */
    decisionTokenAudience: z.string().min(1).max(256).default("verified-fan-liveness"),
    /** Verification types sessions are kept under. */
    verificationTypes: z
      .array(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/))
      .min(1)
      .default(["liveness"]),
    tiers: z
      .object({
        highDays: z.number().int().min(1).max(365).default(30),
        mediumDays: z.number().int().min(1).max(365).default(90),
        lowScoreBelow: z.number().min(0).max(1).default(0.5),
        asuArmAbove: z.number().int().min(1).max(5).default(3),
        asuScoreBelow: z.number().min(0).max(1).default(0.3),
        asuDays: z.number().int().min(1).max(365).default(90),
        /** After a failed or declined session, how long a new one is refused. */
        cooldownSeconds: z.number().int().min(0).max(86_400).default(3600),
      })
      .strict()
      .prefault({}),
    /** Webhook requests per second the API lets through (and the burst above it). */
    throttling: z
      .object({
        rateLimit: z.number().min(1).max(10_000).default(50),
        burstLimit: z.number().int().min(1).max(10_000).default(100),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const seconds = (max: number) => z.number().int().min(1).max(max);

/** Alarm thresholds; each alarm fires when its metric is above the threshold for the evaluation periods. */
const alarms = z
  .object({
    /** Length of each alarm's evaluation period, a multiple of 60. */
    periodSeconds: z
      .number()
      .int()
      .min(60)
      .max(86_400)
      .refine((value) => value % 60 === 0, "expected a multiple of 60")
      .default(300),
    /** Consecutive periods above the threshold before an alarm fires. */
    evaluationPeriods: z.number().int().min(1).max(24).default(1),
    /** Age of the oldest message on a work queue (account activity, on demand). */
    queueOldestMessageAgeSeconds: seconds(1_209_600).default(900),
    /**
     * Age of the oldest message on a dead-letter or failure queue, which keep 14 days: time to
     * redrive before messages expire.
     */
    failedMessageAgeSeconds: seconds(1_209_600).default(604_800),
    /** Messages on a dead-letter or failure queue: any is too many. */
    failedMessages: positiveInt(100_000).default(0),
    /** Iterator age of a Kinesis mapping: how far its worker is behind the stream. */
    iteratorAgeSeconds: seconds(86_400).default(300),
    /** Offset lag of the Kafka mapping, in messages. */
    kafkaOffsetLag: positiveInt(100_000_000).default(10_000),
    /** Errors of a function in one period (invocations that failed as a whole, not partial batch failures). */
    functionErrors: positiveInt(100_000).default(0),
    /** Throttled invocations of a function in one period. */
    functionThrottles: positiveInt(100_000).default(0),
    /** 5XX answers of the webhook API in one period. */
    api5xxErrors: positiveInt(100_000).default(0),
    /** p99 latency of the webhook API. */
    apiLatencyP99Ms: z.number().int().min(1).max(29_000).default(3000),
    /** p99 duration of the AppSync authoriser. */
    authoriserDurationP99Ms: z.number().int().min(1).max(15_000).default(1000),
    /** Share of a worker's calls to one dependency that failed, 0 to 1. */
    externalCallFailureRate: z.number().min(0).max(1).default(0.05),
  })
  .strict();

/** Alarms, their alert topic's subscriptions, and the dashboards. HTTPS endpoints are the secret `alertHttpsEndpoints`. */
const operations = z
  .object({
    alerts: z
      .object({
        /**
         * Email addresses subscribed to each region's alert topic (each confirms once per topic).
         * Plain: an address grants nothing, unlike an HTTPS endpoint, which often carries a token.
         */
        emails: z.array(z.email("expected an email address")).max(20).default([]),
      })
      .strict()
      .prefault({}),
    alarms: alarms.prefault({}),
  })
  .strict();

/** An IPv4 block a VPC can have: /16 (the largest AWS allows) to /24. */
const vpcCidrBlock = z
  .string()
  .regex(
    /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}\/(1[6-9]|2[0-4])$/,
    "expected an IPv4 CIDR block from /16 to /24, such as 10.40.0.0/16",
  );

/**
 * Where the VPC workers run. `existing` (the shared environments) looks up the environment's VPC
 * and its subnets by tier tag; `create` builds the VPC, its tiers and its endpoints
 * (components/network.ts).
 */
const network = z
  .object({
    mode: z.enum(["existing", "create"]).default("existing"),
    /** `existing`: the environment's VPC per region; where none is given, the VPC tagged `Environment=<env>`. */
    vpcIds: z
      .object({ [PRIMARY_REGION]: vpcId.optional(), [WEST_REGION]: vpcId.optional() })
      .strict()
      .prefault({}),
    /** Tag whose value (`web`, `app`) marks a subnet's tier: looked up in `existing`, set in `create`. */
    tierTagKey: z.string().min(1).default("Tier"),
    /** `create`: the VPC to build in each region the stack deploys to. */
    create: z
      .object({
        /** The VPC's address block per region; each region the stack deploys to needs one. */
        cidrBlocks: z
          .object({ [PRIMARY_REGION]: vpcCidrBlock.optional(), [WEST_REGION]: vpcCidrBlock.optional() })
          .strict()
          .prefault({}),
        /** Zones the web and app tiers span; Lambda wants two at least to ride out a zone's failure. */
        availabilityZones: z.number().int().min(1).max(6).default(2),
        /** NAT gateways for the app tier's way out: none (endpoints only), one for the VPC, or one per zone. */
        natGateways: z.enum(["none", "single", "onePerZone"], {
          error: "expected none, single or onePerZone",
        }),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((settings, ctx) => {
    if (settings.mode === "existing" && settings.create) {
      ctx.addIssue({
        code: "custom",
        path: ["create"],
        message: "set, but network.mode is existing (the default); set network.mode to create, or remove network.create",
      });
    }
    if (settings.mode === "create" && !settings.create) {
      ctx.addIssue({
        code: "custom",
        path: ["create"],
        message: "missing; network.mode create needs network.create with cidrBlocks and natGateways",
      });
    }
    const lookedUp = Object.keys(settings.vpcIds).filter((region) => settings.vpcIds[region as keyof typeof settings.vpcIds]);
    if (settings.mode === "create" && lookedUp.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["vpcIds"],
        message: `names VPCs to look up (${lookedUp.join(", ")}), but network.mode is create, which builds its own`,
      });
    }
  });

/** Everything that is not a secret. Top-level keys are `fan-identity-workers:<key>` in the stack file. */
export const plainConfigSchema = z
  .object({
    /** Environment tag and name part; defaults to the stack name. */
    environment: z
      .string()
      .regex(/^[a-z]+\d*$/, "expected a lower-case environment name such as qa1")
      .optional(),
    /** The account this stack deploys to; its providers refuse any other. */
    accountId,
    productCode: z.string().regex(/^[a-z][a-z0-9]{1,9}$/, "expected 2 to 10 lower-case letters and digits"),
    inventoryCode: z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, "expected lower-case letters, digits and dashes"),
    iacRepo: httpsUrl("this repository"),
    lambda: z
      .object({
        runtime: z.enum(SUPPORTED_RUNTIMES).default("nodejs24.x"),
        architecture: z.enum(["arm64", "x86_64"]).default("arm64"),
        logRetentionDays: z
          .number()
          .refine((days) => LOG_RETENTION_DAYS.includes(days), `expected one of ${LOG_RETENTION_DAYS.join(", ")}`)
          .default(30),
        /** X-Ray tracing of every function (and the webhook API's stage): Active, or PassThrough to record only what callers sample. */
        tracing: z.enum(["Active", "PassThrough"]).default("Active"),
      })
      .strict()
      .prefault({}),
    /**
     * Whether this stack manages the account's API Gateway CloudWatch setting in us-east-1
     * (`aws.apigateway.Account`, one per account and region). Exactly one stack per account may:
     * stacks sharing an account would otherwise overwrite each other's role, and destroying one
     * would unset the others' logging.
     */
    manageApiGatewayAccount: z.boolean().default(false),
    operations: operations.prefault({}),
    network: network.prefault({}),
    /** The central log stream (a Kinesis stream in us-east-1) every worker's logs are sent to. */
    logShipping: z
      .object({ streamArn: arnOf("kinesis", "arn:aws:kinesis:us-east-1:123456789012:stream/central-logs") })
      .strict()
      .optional(),
    auth: z
      .object({
        /** The AppSync API allowed to invoke the authoriser. */
        appsyncApiArn: arnOf("appsync", "arn:aws:appsync:us-east-1:123456789012:apis/abcdefghijklmnopqrstuvwxyz").optional(),
        jwksUrl: httpsUrl("the accounts JWKS"),
        issuer: z.string().min(1),
        audience: z.array(z.string().min(1)).min(1),
        algorithms: z.array(z.enum(ASYMMETRIC_ALGORITHMS)).min(1).default(["RS256"]),
        userIdClaim: z.string().min(1).default("sub"),
        clockToleranceSeconds: positiveInt(300).default(30),
        jwksCacheMaxAgeSeconds: positiveInt(86_400).default(600),
        jwksTimeoutMs: z.number().int().min(100).max(10_000).default(1500),
        authorizedTtlSeconds: positiveInt(3600).default(300),
      })
      .strict(),
    dataScience: z
      .object({
        /** The Data Science exports bucket, possibly in another account. */
        exportsBucketArn: z
          .string()
          .regex(/^arn:aws:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "expected an S3 bucket ARN, arn:aws:s3:::<bucket>"),
        bucketOwnerAccountId: accountId,
        /** Whether this stack may manage the bucket's notification configuration. */
        bucketInThisAccount: z.boolean(),
        /** The object each export writes last; one notification per export. */
        completionMarkerSuffix: z.string().min(1).default("_SUCCESS"),
      })
      .strict(),
    botOrNot: exportImport,
    clustering: exportImport,
    scoring,
    idv,
  })
  .strict()
  .superRefine((config, ctx) => {
    const { dataScience, botOrNot, clustering } = config;
    if (dataScience.bucketInThisAccount && dataScience.bucketOwnerAccountId !== config.accountId) {
      ctx.addIssue({
        code: "custom",
        path: ["dataScience", "bucketOwnerAccountId"],
        message: `bucketInThisAccount is true but the owner ${dataScience.bucketOwnerAccountId} is not accountId ${config.accountId}`,
      });
    }
    if (config.scoring.west && !config.logShipping) {
      ctx.addIssue({
        code: "custom",
        path: ["logShipping", "streamArn"],
        message: "missing; the west region's logs are sent to the east region's log stream",
      });
    }
    if (config.logShipping && regionOfArn(config.logShipping.streamArn) !== PRIMARY_REGION) {
      ctx.addIssue({
        code: "custom",
        path: ["logShipping", "streamArn"],
        message: `expected a stream in ${PRIMARY_REGION}, where logs are kept`,
      });
    }
    const created = config.network.mode === "create" ? config.network.create : undefined;
    if (created) {
      const regions = [PRIMARY_REGION, ...(config.scoring.west ? [WEST_REGION] : [])];
      for (const region of regions.filter((name) => !created.cidrBlocks[name as keyof typeof created.cidrBlocks])) {
        ctx.addIssue({
          code: "custom",
          path: ["network", "create", "cidrBlocks", region],
          message: `missing; the stack deploys to ${region}, and network.mode create builds a VPC there`,
        });
      }
      if (config.scoring.kafka.enabled) {
        ctx.addIssue({
          code: "custom",
          path: ["scoring", "kafka", "enabled"],
          message: "true, but a VPC the program creates (network.mode create) has no route to the Kafka brokers; turn Kafka off",
        });
      }
    }
    const [a, b] = [botOrNot.exportPrefix, clustering.exportPrefix];
    if (a.startsWith(b) || b.startsWith(a)) {
      ctx.addIssue({
        code: "custom",
        path: ["clustering", "exportPrefix"],
        message: `overlaps botOrNot.exportPrefix "${a}"; S3 rejects overlapping notification filters`,
      });
    }
  });

/**
 * Secrets, each its own top-level key so Pulumi can mark it secret. `placeholder` stands in for
 * the value when the program runs offline, where Pulumi's encrypted values cannot be read.
 */
export const SECRET_KEYS = {
  /** API keys the authoriser accepts: a JSON list, several during rotation. */
  authApiKeys: {
    schema: z.array(z.string().min(16, "API keys are at least 16 characters")).min(1),
    placeholder: ["offline-placeholder-api-key"],
  },
  /** The accounts ARAI API's basic credentials and client id. */
  araiCredentials: {
    schema: z.object({ username: z.string().min(1), password: z.string().min(1), clientId: z.string().min(1) }).strict(),
    placeholder: { username: "offline", password: "offline", clientId: "offline" },
  },
  /** Bearer token of the Databricks model-serving endpoints. */
  modelServingToken: {
    schema: z.string().min(8),
    placeholder: "offline-placeholder-token",
  },
  /** Persona's API key (checkLiveness creates inquiries with it). */
  personaApiKey: {
    schema: z.string().min(8),
    placeholder: "offline-placeholder-persona-key",
  },
  /** Persona's webhook signing secrets: a JSON list, two during rotation. */
  personaWebhookSecrets: {
    schema: z.array(z.string().min(8)).min(1).max(2),
    placeholder: ["offline-placeholder-webhook-secret"],
  },
  /** The RSA private key (PKCS#8 PEM) the liveness decision tokens are signed with. */
  decisionSigningKey: {
    schema: z
      .string()
      .regex(/^-----BEGIN PRIVATE KEY-----\n[\s\S]+\n-----END PRIVATE KEY-----\n?$/, "expected a PKCS#8 PEM private key"),
    placeholder: "-----BEGIN PRIVATE KEY-----\noffline placeholder\n-----END PRIVATE KEY-----",
  },
  /**
   * HTTPS endpoints (a pager's, a chat integration's) subscribed to each region's alert topic: a
   * JSON list, optional. A secret because such URLs usually carry the token that authorises
   * posting to them; the number of endpoints is not secret.
   */
  alertHttpsEndpoints: {
    schema: z.array(httpsUrl("an alert endpoint")).max(10),
    placeholder: [],
    optional: true,
  },
} as const satisfies Record<string, { schema: z.ZodType; placeholder: unknown; optional?: boolean }>;

type SecretKey = keyof typeof SECRET_KEYS;
/** Whether a secret may be left unset: then it is empty. */
export const isOptionalSecret = (key: string): boolean =>
  (SECRET_KEYS as Record<string, { optional?: boolean }>)[key]?.optional === true;
/** Secrets held as one value; a list of endpoints is held item by item, so its length is known. */
type SingleSecretKey = Exclude<SecretKey, "alertHttpsEndpoints">;
type Secrets = { readonly [K in SingleSecretKey]: pulumi.Output<z.infer<(typeof SECRET_KEYS)[K]["schema"]>> } & {
  /** One secret output per endpoint. */
  readonly alertHttpsEndpoints: readonly pulumi.Output<string>[];
};

export type PlainConfig = z.infer<typeof plainConfigSchema>;

export interface StackConfig extends Omit<PlainConfig, "environment"> {
  readonly stack: string;
  readonly environment: string;
  readonly secrets: Secrets;
  /** The settings every component shares. */
  readonly platform: PlatformSettings;
}

export class StackConfigError extends Error {
  constructor(
    readonly stack: string,
    readonly problems: readonly string[],
  ) {
    super(`stack "${stack}": configuration is invalid:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
    this.name = "StackConfigError";
  }
}

/** Whether a top-level key holds a plain string (read as is) rather than JSON (objects, lists, numbers). */
function holdsString(schema: z.ZodType): boolean {
  let current: z.ZodType = schema;
  for (;;) {
    const def = current.def as { type: string; innerType?: z.ZodType };
    if (def.type === "string") return true;
    if (!def.innerType) return false;
    current = def.innerType;
  }
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const key = `${PROJECT}:${issue.path.join(".")}`;
  if (issue.code === "invalid_type" && issue.input === undefined) return `${key}: missing; expected ${issue.expected}`;
  if (issue.code === "unrecognized_keys") return `${key}${issue.path.length ? "." : ""}${issue.keys.join(", ")}: unknown key`;
  const got = issue.input === undefined || typeof issue.input === "object" ? "" : ` (got ${JSON.stringify(issue.input)})`;
  return `${key}: ${issue.message}${got}`;
}

/**
 * Parses a stack's configuration from the raw values Pulumi passes a program (`project:key` →
 * text; objects, lists and numbers as JSON).
 */
export function parseStackConfig(
  stack: string,
  raw: Readonly<Record<string, string>>,
  secretKeys: readonly string[],
): StackConfig {
  const values = readValues(raw, secretKeys);
  const parsedPlain = plainConfigSchema.safeParse(values.plain, { reportInput: true });
  const secrets = parseSecrets(raw, values.secret);
  const problems = [
    ...defaultProvidersProblems(raw),
    ...values.problems,
    ...(parsedPlain.success ? [] : parsedPlain.error.issues.map(describeIssue)),
    ...secrets.problems,
  ];
  if (problems.length > 0 || !parsedPlain.success) throw new StackConfigError(stack, problems);
  return stackConfigOf(stack, parsedPlain.data, secrets.values);
}

/** Default providers must be off, so nothing can be created without an explicit region. */
function defaultProvidersProblems(raw: Readonly<Record<string, string>>): string[] {
  const disabled = raw["pulumi:disable-default-providers"];
  if (disabled && /"(aws|\*)"/.test(disabled)) return [];
  return [`pulumi:disable-default-providers: expected ["aws"] or ["*"], so nothing can be created without an explicit region`];
}

/** The project's values, not yet checked against the schemas: plain values and secrets apart. */
interface RawValues {
  readonly plain: Record<string, unknown>;
  readonly secret: Record<string, unknown>;
  /** Keys that are unknown, secrets set in plain text, or JSON that does not parse. */
  readonly problems: string[];
}

/** Reads each of the project's keys as text or as JSON, as its schema expects; a secret must have been set as one. */
function readValues(raw: Readonly<Record<string, string>>, secretKeys: readonly string[]): RawValues {
  const values: RawValues = { plain: {}, secret: {}, problems: [] };
  for (const [fullKey, text] of Object.entries(raw)) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    const key = fullKey.slice(PROJECT.length + 1);
    const isSecretKey = key in SECRET_KEYS;
    const fieldSchema: z.ZodType | undefined = isSecretKey
      ? SECRET_KEYS[key as SecretKey].schema
      : (plainConfigSchema.shape as Record<string, z.ZodType>)[key];
    if (!fieldSchema) {
      values.problems.push(`${fullKey}: unknown key`);
      continue;
    }
    if (isSecretKey && !secretKeys.includes(fullKey)) {
      values.problems.push(`${fullKey}: must be a secret; set it with pulumi config set --secret ${key} '<value>'`);
      continue;
    }
    const into = isSecretKey ? values.secret : values.plain;
    if (holdsString(fieldSchema)) {
      into[key] = text;
      continue;
    }
    try {
      into[key] = JSON.parse(text);
    } catch {
      values.problems.push(
        `${fullKey}: expected JSON (an object, list, number or boolean)${isSecretKey ? "" : `, got ${JSON.stringify(text)}`}`,
      );
    }
  }
  return values;
}

/** Every secret checked against its schema and wrapped as a Pulumi secret; a missing or invalid one is a problem. */
function parseSecrets(
  raw: Readonly<Record<string, string>>,
  secret: Readonly<Record<string, unknown>>,
): { values: Secrets; problems: string[] } {
  const values: Record<string, pulumi.Output<unknown> | pulumi.Output<unknown>[]> = { alertHttpsEndpoints: [] };
  const problems: string[] = [];
  for (const [key, { schema }] of Object.entries(SECRET_KEYS)) {
    const fullKey = `${PROJECT}:${key}`;
    if (!(fullKey in raw)) {
      if (!isOptionalSecret(key)) problems.push(`${fullKey}: missing; set it with pulumi config set --secret ${key} '<value>'`);
      continue;
    }
    if (!(key in secret)) continue;
    const parsed = (schema as z.ZodType).safeParse(secret[key]);
    if (parsed.success && key === "alertHttpsEndpoints") {
      values[key] = (parsed.data as string[]).map((endpoint) => pulumi.secret(endpoint));
    } else if (parsed.success) {
      values[key] = pulumi.secret(parsed.data);
    } else {
      // The value itself is never echoed.
      problems.push(
        ...parsed.error.issues.map(
          (issue) => `${fullKey}${issue.path.length ? `[${issue.path.join(".")}]` : ""}: ${issue.message}`,
        ),
      );
    }
  }
  return { values: values as unknown as Secrets, problems };
}

/** The checked configuration, with the environment defaulted to the stack's name and the settings components share. */
function stackConfigOf(stack: string, config: PlainConfig, secrets: Secrets): StackConfig {
  const environment = config.environment ?? stack;
  return {
    ...config,
    stack,
    environment,
    secrets,
    platform: {
      environment,
      productCode: config.productCode,
      inventoryCode: config.inventoryCode,
      iacRepo: config.iacRepo,
      accountId: config.accountId,
      lambda: config.lambda,
      network: config.network,
    },
  };
}

/** Pulumi's own record of which keys were set with --secret (exported by the SDK, not typed). */
const { isConfigSecret } = runtimeConfig as unknown as { isConfigSecret(key: string): boolean };

/** The configuration of the stack Pulumi is running. */
export function loadStackConfig(): StackConfig {
  const raw = pulumi.runtime.allConfig();
  const secretKeys = Object.keys(raw).filter((key) => isConfigSecret(key));
  return parseStackConfig(pulumi.getStack(), raw, secretKeys);
}
