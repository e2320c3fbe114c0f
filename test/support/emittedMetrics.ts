/**
 * What the workers really emit: every worker of workers/registry.ts built by its own factory, as
 * deployed (environment, clients, metrics), run on real events from test/fixtures against real
 * local services (DynamoDB, SQS, Redis) and the HTTP services at the wire, its Embedded Metric
 * Format documents read from what it writes to stdout. Some runs make an external call fail, so
 * the failure metrics appear too.
 *
 * `emittedMetrics()` is the list alarms are checked against: an alarm on a worker metric must
 * name a namespace, metric and dimension set found here.
 */
import { exportPKCS8, generateKeyPair } from "jose";
import { araiAnswerFor } from "./arai";
import { fixture } from "./fixtures";
import { awsJsonResponder, type Answer, WireServer } from "./http";
import { createSigningKey, JwksServer, signSotc } from "./jwks";
import { activityDataImage, ModelServer } from "./fanTableStream";
import { LAMBDA_AWS, setEnvironment } from "./environment";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./localAws";
import { captureLogs } from "./logs";
import { freePort, type RedisServer, startRedis } from "./redis";
import { startSecrets } from "./secrets";
import { REGISTERED, type WorkerName, WORKERS } from "../../workers/registry";
import type { LambdaContext } from "../../workers/shared/runtime/handler";
import { DECISION_TOKEN_ALGORITHM } from "../../workers/checkLiveness/token";

/** One metric as an alarm names it. */
export interface EmittedMetric {
  readonly namespace: string;
  readonly name: string;
  readonly dimensions: Record<string, string>;
}

/** One metric of one EMF document, with what it says. */
export interface EmfMetric extends EmittedMetric {
  readonly unit: string;
  /** The value, or each value of a metric added more than once (latencies). */
  readonly values: readonly number[];
  /** The names of the dimension set, in the document's order. */
  readonly dimensionNames: readonly string[];
}

interface EmfDocument {
  _aws: {
    Timestamp: number;
    CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[];
  };
  [key: string]: unknown;
}

const isEmf = (line: Record<string, unknown>): line is EmfDocument =>
  typeof line._aws === "object" && line._aws !== null && Array.isArray((line._aws as EmfDocument["_aws"]).CloudWatchMetrics);

/** The EMF documents among a worker's JSON output lines. */
export function emfDocuments(lines: readonly Record<string, unknown>[]): EmfDocument[] {
  return lines.filter(isEmf);
}

/** Every metric of every EMF document among `lines`, once per dimension set it is published under. */
export function emfMetrics(lines: readonly Record<string, unknown>[]): EmfMetric[] {
  return emfDocuments(lines).flatMap((document) =>
    document._aws.CloudWatchMetrics.flatMap((directive) =>
      directive.Dimensions.flatMap((names) =>
        directive.Metrics.map((metric) => {
          const value = document[metric.Name];
          return {
            namespace: directive.Namespace,
            name: metric.Name,
            unit: metric.Unit,
            dimensionNames: names,
            dimensions: Object.fromEntries(names.map((name) => [name, String(document[name])])),
            values: (Array.isArray(value) ? value : [value]).map(Number),
          };
        }),
      ),
    ),
  );
}

/** The services every run uses, started once. */
export interface MetricServices {
  readonly dynamo: LocalDynamo;
  readonly sqs: LocalSqs;
  readonly redis: RedisServer;
  readonly secrets: WireServer;
  readonly arai: WireServer;
  readonly model: ModelServer;
  readonly persona: WireServer;
  readonly jwks: JwksServer;
  readonly glue: WireServer;
  readonly table: string;
  readonly activityQueue: string;
  readonly onDemandQueue: string;
  /** The dead-letter queues lookupArai parks messages in, by the source queue ARN of the SQS fixtures. */
  readonly deadLetterQueueUrls: Record<string, string>;
  /** The stream consumers' failure queue, where they park what they can never process. */
  readonly failureQueue: string;
  /** Makes the HTTP stand-ins and Glue answer 503 (true) or as they should (false). */
  failing(down: boolean): void;
  close(): Promise<void>;
}

export const SECRET_ARNS = {
  apiKeys: "arn:aws:secretsmanager:us-east-1:210987654321:secret:fanid-qa1/appsync-api-keys-Ab12Cd",
  arai: "arn:aws:secretsmanager:us-east-1:210987654321:secret:fanid-qa1/arai-credentials-Ef34Gh",
  modelToken: "arn:aws:secretsmanager:us-east-1:210987654321:secret:fanid-qa1/model-serving-token-Ij56Kl",
  personaKey: "arn:aws:secretsmanager:us-east-1:210987654321:secret:fanid-qa1/persona-api-key-Mn78Op",
  signingKey: "arn:aws:secretsmanager:us-east-1:210987654321:secret:fanid-qa1/decision-signing-key-Qr90St",
  webhook: "arn:aws:secretsmanager:us-east-1:210987654321:secret:fanid-qa1/persona-webhook-secrets-Uv12Wx",
} as const;

export const API_KEY = "qa1-appsync-api-key-000000000001";
const JWT = { issuer: "https://accounts-qa1.verifiedfan.example.com", audience: "verified-fan" };
const unavailable: Answer = { status: 503, body: { message: "service unavailable" } };

export async function startMetricServices(): Promise<MetricServices> {
  const [dynamo, sqs, redis] = await Promise.all([startDynamo(), startSqs(), startRedis()]);
  const table = await dynamo.createFanTable();
  const [activityQueue, onDemandQueue, activityDeadLetters, onDemandDeadLetters, failureQueue] = await Promise.all([
    sqs.createQueue("acct-activity-sqs.fifo"),
    sqs.createQueue("on-demand-scoring-sqs"),
    sqs.createQueue("acct-activity-sqs-dlq.fifo"),
    sqs.createQueue("on-demand-scoring-sqs-dlq"),
    sqs.createQueue("scoring-stream-failures-sqs"),
  ]);
  const sourceOf = (name: string) => fixture<{ Records: { eventSourceARN: string }[] }>(name).Records[0]!.eventSourceARN;
  const deadLetterQueueUrls = {
    [sourceOf("sqs-account-activity-fifo.json")]: activityDeadLetters,
    [sourceOf("sqs-on-demand-standard.json")]: onDemandDeadLetters,
  };
  const signing = await generateKeyPair(DECISION_TOKEN_ALGORITHM, { extractable: true });
  const privateKey = await exportPKCS8(signing.privateKey);
  const documents: Record<string, object> = {
    [SECRET_ARNS.apiKeys]: { apiKeys: [API_KEY] },
    [SECRET_ARNS.arai]: { username: "svc-scoring", password: "pw-not-a-real-one", clientId: "fan-identity" },
    [SECRET_ARNS.modelToken]: { token: "dapi-metrics-test" },
    [SECRET_ARNS.personaKey]: { apiKey: "persona_sandbox_key_0001" },
    [SECRET_ARNS.signingKey]: { privateKey, keyId: "decisions-2026-12" },
    [SECRET_ARNS.webhook]: { secrets: ["wbhsec_qa1_not_the_fixture_secret"] },
  };
  const secrets = await startSecrets(documents);
  const state = { down: false };
  const arai = await WireServer.start((request) =>
    state.down ? unavailable : { body: araiAnswerFor(decodeURIComponent(request.url.split("/").at(-1)!)) },
  );
  const model = await ModelServer.start();
  const predict = model.answer;
  const persona = await WireServer.start(() => unavailable);
  const jwks = await JwksServer.start([await createSigningKey("accounts-2026-11")]);
  const glue = await WireServer.start(
    awsJsonResponder({
      StartWorkflowRun: () =>
        state.down
          ? { error: { type: "ConcurrentRunsExceededException", message: "too many runs of the workflow", status: 400 } }
          : { RunId: "wr_0123456789abcdef" },
    }),
  );
  return {
    dynamo,
    sqs,
    redis,
    secrets,
    arai,
    model,
    persona,
    jwks,
    glue,
    table,
    activityQueue,
    onDemandQueue,
    deadLetterQueueUrls,
    failureQueue,
    failing(down) {
      state.down = down;
      model.answer = down ? () => unavailable : predict;
      jwks.mode = down ? "unavailable" : "up";
    },
    async close() {
      await Promise.all([
        dynamo.close(),
        sqs.close(),
        redis.stop(),
        secrets.close(),
        arai.close(),
        model.close(),
        persona.close(),
        jwks.close(),
        glue.close(),
      ]);
    },
  };
}

/** The environment a deployment gives each worker, pointed at the services. */
export function deployedEnvironment(services: MetricServices, worker: WorkerName): Record<string, string | undefined> {
  const aws = {
    ...LAMBDA_AWS,
    DEPLOYMENT: "qa1",
    AWS_LAMBDA_FUNCTION_NAME: `vfid-qa1-us-east-1-${worker}`,
    // As Lambda sets it for a container started on demand: the first invocation is a cold start.
    AWS_LAMBDA_INITIALIZATION_TYPE: "on-demand",
    AWS_ENDPOINT_URL_DYNAMODB: services.dynamo.endpoint,
    AWS_ENDPOINT_URL_SQS: services.sqs.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: services.secrets.url,
    AWS_ENDPOINT_URL_GLUE: services.glue.url,
    // Errors are what these runs are about; the rest of the log is not.
    POWERTOOLS_LOG_LEVEL: "ERROR",
    AWS_LAMBDA_LOG_LEVEL: undefined,
    // The metrics are what these runs are about (test/support/setup.ts turns them off elsewhere).
    POWERTOOLS_METRICS_DISABLED: "false",
  };
  const scoring = {
    TABLE_NAME: services.table,
    MODEL_URL: services.model.url(),
    MODEL_VERSION: "fan-risk-7",
    MODEL_TOKEN_SECRET_ARN: SECRET_ARNS.modelToken,
    MODEL_TIMEOUT_MS: "1000",
    FAILURE_QUEUE_URL: services.failureQueue,
  };
  const parking = { FAILURE_QUEUE_URL: services.failureQueue };
  // A stream worker's environment follows from its trigger: the queue it feeds, and its failure queue.
  const trigger = WORKERS[worker].trigger;
  if (trigger.kind === "inputStream") {
    return trigger.queue === "activity"
      ? { ...aws, ACTIVITY_QUEUE_URL: services.activityQueue, TABLE_NAME: services.table, ...parking }
      : { ...aws, ON_DEMAND_QUEUE_URL: services.onDemandQueue, ...parking };
  }
  const byWorker: Partial<Record<WorkerName, Record<string, string>>> = {
    validateToken: {
      API_KEYS_SECRET_ARN: SECRET_ARNS.apiKeys,
      JWKS_URL: services.jwks.url,
      JWT_ISSUER: JWT.issuer,
      JWT_AUDIENCE: JWT.audience,
    },
    startBotOrNotImport: { GLUE_WORKFLOW_NAME: "vfid-qa1-bot-or-not-import" },
    startClusterImport: { GLUE_WORKFLOW_NAME: "vfid-qa1-cluster-import" },
    processRescoreEvents: { ACTIVITY_QUEUE_URL: services.activityQueue, ...parking },
    lookupArai: {
      TABLE_NAME: services.table,
      ARAI_URL_TEMPLATE: `${services.arai.url}/accounts/v2/users/{globalUserId}`,
      ARAI_CREDENTIALS_SECRET_ARN: SECRET_ARNS.arai,
      // Every fan fetched, never fresh from an earlier run.
      ARAI_FRESHNESS_SECONDS: "0",
      ARAI_TIMEOUT_MS: "1000",
      DEAD_LETTER_QUEUE_URLS: JSON.stringify(services.deadLetterQueueUrls),
    },
    scoreUsers: scoring,
    stagingScoreUsers: scoring,
    enqueueFromActivityStream: { ACTIVITY_QUEUE_URL: services.activityQueue, ...parking },
    getArmScore: { ARM_REDIS_URL: services.redis.url },
    checkLiveness: {
      TABLE_NAME: services.table,
      PERSONA_API_URL: services.persona.url,
      PERSONA_INQUIRY_TEMPLATE_ID: "itmpl_qa1_liveness_0001",
      PERSONA_API_KEY_SECRET_ARN: SECRET_ARNS.personaKey,
      SIGNING_KEY_SECRET_ARN: SECRET_ARNS.signingKey,
      TOKEN_AUDIENCE: "verified-fan-liveness",
      PERSONA_TIMEOUT_MS: "1000",
    },
    handleEvent: { TABLE_NAME: services.table, WEBHOOK_SECRETS_ARN: SECRET_ARNS.webhook },
  };
  const own = byWorker[worker];
  if (!own) throw new Error(`deployedEnvironment: no environment for ${worker}; add one for its trigger (${trigger.kind})`);
  return { ...aws, ...own };
}

/** A Lambda-like context for an invocation of `worker`. */
export function lambdaContext(worker: WorkerName, requestId: string): LambdaContext {
  const functionName = `vfid-qa1-us-east-1-${worker}`;
  return {
    awsRequestId: requestId,
    functionName,
    functionVersion: "$LATEST",
    invokedFunctionArn: `arn:aws:lambda:us-east-1:210987654321:function:${functionName}`,
    memoryLimitInMB: "256",
  };
}

export interface WorkerRun {
  readonly worker: WorkerName;
  /** What the run is about. */
  readonly label: string;
  readonly result?: unknown;
  readonly error?: Error;
  /** Every JSON line the worker wrote: log lines and EMF documents. */
  readonly lines: Record<string, unknown>[];
  readonly metrics: EmfMetric[];
}

/**
 * Builds `worker` by its factory in the deployed environment and invokes it once per event, each
 * with a Lambda context; the first invocation is the container's cold start.
 */
export async function runWorker(
  services: MetricServices,
  worker: WorkerName,
  label: string,
  events: readonly unknown[],
  overrides: Record<string, string | undefined> = {},
): Promise<WorkerRun[]> {
  const restore = setEnvironment({ ...deployedEnvironment(services, worker), ...overrides });
  try {
    const handler = WORKERS[worker].worker.factory() as (event: unknown, context?: LambdaContext) => Promise<unknown>;
    const runs: WorkerRun[] = [];
    for (const [index, event] of events.entries()) {
      const { result: outcome, logs } = await captureLogs(() =>
        handler(event, lambdaContext(worker, `req-${worker}-${label.replace(/\W+/g, "-")}-${index}`)).then(
          (result) => ({ result }),
          (error: unknown) => ({ error: error as Error }),
        ),
      );
      const lines = logs as unknown as Record<string, unknown>[];
      runs.push({ worker, label, ...outcome, lines, metrics: emfMetrics(lines) });
    }
    return runs;
  } finally {
    restore();
  }
}

/** A Kinesis record of `template`'s batch whose data is not base64 JSON: a record every reader parks as invalid. */
export function withUndecodableRecord<T extends { Records: { kinesis: { sequenceNumber: string; data: string } }[] }>(
  template: T,
): T {
  const [first] = template.Records;
  const sequenceNumber = String(BigInt(first!.kinesis.sequenceNumber) + 7n);
  const broken = { ...first!, kinesis: { ...first!.kinesis, sequenceNumber, data: Buffer.from("not json").toString("base64") } };
  return { ...template, Records: [...template.Records, broken] };
}

type KinesisEvent = { Records: { kinesis: { sequenceNumber: string; data: string } }[] };

/** An SQS message of `template`'s batch whose body is not JSON: a message lookupArai parks as invalid. */
export function withUndecodableMessage<T extends { Records: { messageId: string; body: string }[] }>(template: T): T {
  const [first] = template.Records;
  const broken = { ...first!, messageId: `${first!.messageId.slice(0, -4)}0bad`, body: "not json" };
  return { ...template, Records: [...template.Records, broken] };
}

/**
 * Each worker's runs: a real event (with an invalid record, which a stream worker parks, where the
 * source is a batch), and a failing call.
 */
export async function runEveryWorker(services: MetricServices): Promise<WorkerRun[]> {
  const runs: WorkerRun[] = [];
  const run = async (...args: Parameters<typeof runWorker> extends [unknown, ...infer Rest] ? Rest : never) =>
    runs.push(...(await runWorker(services, ...args)));

  // validateToken: a fan's SOTC verified against the JWKS; then, in a new container, the JWKS down.
  const [key] = services.jwks.published;
  const sotc = await signSotc(
    key!,
    { email: "fan@example.com" },
    { ...JWT, subject: "gu-7f3c2a91", expiresAt: Math.floor(Date.now() / 1000) + 3600 },
  );
  const authorizer = { ...fixture("appsync-authorizer.json"), authorizationToken: `${API_KEY}:${sotc}` };
  await run("validateToken", "verified", [authorizer]);
  services.failing(true);
  await run("validateToken", "JWKS down", [authorizer]);
  services.failing(false);

  for (const worker of ["startBotOrNotImport", "startClusterImport"] as const) {
    const event = fixture(worker === "startBotOrNotImport" ? "s3-export-success.json" : "s3-cluster-export-success.json");
    await run(worker, "started", [event, fixture("s3-export-no-date.json")]);
    services.failing(true);
    await run(worker, "Glue refuses", [event]);
    services.failing(false);
  }

  for (const [worker, event] of [
    ["enqueueFromVfStream", "kinesis-vf-login.json"],
    ["enqueueFromDemandStream", "kinesis-demand-insert.json"],
    ["enqueueFromPurchaseStream", "kinesis-purchase-success.json"],
    ["enqueueFromSQJourneyStream", "kinesis-sq-journey.json"],
    ["processRescoreEvents", "kinesis-rescore-ttl-removal.json"],
  ] as const) {
    await run(worker, "one good record, one undecodable", [withUndecodableRecord(fixture<KinesisEvent>(event))]);
  }
  await run("enqueueFromActivityStream", "three records", [fixture("kafka-user-activity.json")]);

  await run("lookupArai", "ARAI up, one message undecodable", [
    withUndecodableMessage(fixture("sqs-account-activity-fifo.json")),
  ]);
  services.failing(true);
  await run("lookupArai", "ARAI down", [fixture("sqs-account-activity-fifo.json")]);
  services.failing(false);

  const fanImage = activityDataImage();
  for (const worker of ["scoreUsers", "stagingScoreUsers"] as const) {
    // The fan record the change is about, as lookupArai left it: not scored yet.
    const { score: _score, scoreVersion: _version, scoredAraiVersion: _scored, ...unscored } = fanImage;
    await services.dynamo.seed(services.table, [unscored]);
    const event = withUndecodableRecord(fixture<KinesisEvent>("kinesis-fan-table-activity-data.json"));
    await run(worker, "model up", [event]);
    services.failing(true);
    await run(worker, "model down", [fixture("kinesis-fan-table-activity-data.json")]);
    services.failing(false);
  }

  await services.redis.admin().set("user:gu-7f3c2a91", JSON.stringify({ global_user_id: "gu-7f3c2a91", arm_risk: 3 }));
  await run("getArmScore", "stored score", [fixture("appsync-resolver-get-arm-score.json")]);
  await run("getArmScore", "Redis unreachable", [fixture("appsync-resolver-get-arm-score.json")], {
    ARM_REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
    ARM_REDIS_CONNECT_TIMEOUT_MS: "200",
  });

  // Persona answers 503: the fan is asked to verify without a session (the rule's fail-safe).
  await run("checkLiveness", "Persona down", [fixture("appsync-check-liveness.json")]);
  // The fixture's signature was not made with this deployment's secret: refused.
  await run("handleEvent", "signature refused", [fixture("apigateway-persona-webhook.json")]);
  return runs;
}

const keyOf = (metric: EmittedMetric) =>
  `${metric.namespace}|${metric.name}|${Object.entries(metric.dimensions)
    .map(([name, value]) => `${name}=${value}`)
    .join(",")}`;

/**
 * Every metric the workers emit on representative real events, failing calls included, once
 * each: `{namespace, name, dimensions}`. Starts and stops its own local services.
 */
export async function emittedMetrics(): Promise<EmittedMetric[]> {
  const services = await startMetricServices();
  try {
    const runs = await runEveryWorker(services);
    const unique = new Map<string, EmittedMetric>();
    for (const metric of runs.flatMap((run) => run.metrics)) {
      unique.set(keyOf(metric), { namespace: metric.namespace, name: metric.name, dimensions: metric.dimensions });
    }
    return [...unique.values()];
  } finally {
    await services.close();
  }
}

/** The registered workers' names, for specs that check each one was run. */
export const WORKER_NAMES: readonly WorkerName[] = REGISTERED.map((entry) => entry.name);
