/**
 * Tolerant data contracts (docs/worker-contract.md#data-contracts): every worker of
 * workers/registry.ts that reads a message, record, item or payload takes one carrying a field it
 * does not know (at the top level and, where the input nests, inside) exactly as it takes the same
 * input without it: the same answer or batch response, the same messages sent, the same items
 * written (field by field, but for the times the worker stamps with its own clock), the same
 * requests at the wire and the same warnings. A field a newer writer put in a stored item is still
 * there after the worker wrote that item. And activity messages are versioned: one of a newer
 * version is refused saying so, one of version 1 or without `v` is taken.
 *
 * Every worker is built by its real factory, as Lambda builds it, on real local services (dynalite,
 * local-aws-sqs, redis-server); the model, the ARAI API, Persona, Glue, Secrets Manager and the
 * JWKS are stand-ins at the HTTP wire. Every run gets a table and queues of its own.
 */
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import Ajv from "ajv";
import { decodeJwt, exportPKCS8, generateKeyPair } from "jose";
import { webhookModelSchema } from "../stacks/idvStack";
import { signatureHeader } from "../workers/handleEvent/signature";
import { type WorkerName, REGISTERED, WORKERS } from "../workers/registry";
import { sessionExpiry, sessionKey, type SessionItem } from "../workers/shared/idv/session";
import { rescoreKey } from "../workers/shared/scoring/table";
import { ARAI_PATH_TEMPLATE, ARAI_SECRET_ARN } from "./support/arai";
import { LAMBDA_AWS, setEnvironment } from "./support/environment";
import { deliversKinesisRecord } from "./support/eventFilter";
import { activityDataImage, MODEL_TOKEN, MODEL_TOKEN_SECRET_ARN, ModelServer } from "./support/fanTableStream";
import { fixture } from "./support/fixtures";
import { awsJsonResponder, type RecordedRequest, WireServer } from "./support/http";
import { createSigningKey, JwksServer, signSotc } from "./support/jwks";
import { activity, template as kafkaTemplate, TOPIC } from "./support/kafka";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { captureLogs, type LogLine } from "./support/logs";
import { type RedisServer, startRedis } from "./support/redis";
import { startSecrets } from "./support/secrets";
import { templates } from "./support/streamFixtures";
import { type KinesisFixtureRecord, payloadOf } from "./support/streams";

type Json = Record<string, unknown>;
type Path = readonly (string | number)[];

/** The field no reader knows, and its value: nested, so that a reader copying it whole would show. */
const EXTRA_NAME = "introducedLater";
const EXTRA_VALUE = { note: "a field this reader does not know", level: 2, tags: ["new"] };

const FAN = "gu-7f3c2a91";
const MODEL_VERSION = "fan-risk-7";
const API_KEY = "BE9DC5E3-D410-4733-AF76-70178092E681";
const API_KEYS_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/appsync-api-keys-Q1w2E3";
const PERSONA_KEY_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/persona-api-key-Hk29Lm";
const SIGNING_KEY_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/decision-signing-key-Pq71Zx";
const WEBHOOK_SECRETS_ARN = "arn:aws:secretsmanager:us-east-1:210987654321:secret:fanid-qa1/persona-webhook-secrets-Xy7Qp2";
const WEBHOOK_SECRET = "wbhsec_qa1_3vJ8kQ2nX7pL5rT9wY4zB6cDfixture";
const TEMPLATE_ID = "itmpl_Tst4rQ7mKp2Vn8Hx1Jd6";
const ISSUER = "https://accounts.example.test/";
const AUDIENCE = "verified-fan-graphql";
const ACTIVITY_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:fanid-qa1-account-activity.fifo";
const ON_DEMAND_QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:fanid-qa1-on-demand";
/** The webhook's inquiry, as the recorded body names it. */
const INQUIRY = "inq_4Rk9Vb2Nc7Xm1Qz8Lw5Ty3Pd";

const DAY = 86_400_000;
const base64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const md5 = (text: string) => createHash("md5").update(text).digest("hex");
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** What a worker answered and did, as the comparison sees it. */
interface Observed {
  /** The answer or batch response, or what it threw. */
  readonly answer: unknown;
  /** Every message on every queue of the run, by queue. */
  readonly messages: readonly Json[];
  /** The table after the run, by key. */
  readonly items: readonly Json[];
  /** Requests at the model, the ARAI API, Persona and Glue. */
  readonly requests: readonly Json[];
  /** The WARN and ERROR lines it logged. */
  readonly problems: readonly string[];
}

/**
 * Where the unknown field goes: a path into the input. `["seed", n]` is the n-th stored item, a
 * field a newer writer gave it, which it keeps.
 */
interface Extra {
  readonly where: string;
  readonly path: Path;
  /** What the field holds, when not EXTRA_VALUE (an SQS message attribute has its own shape). */
  readonly value?: unknown;
  /** A stored item: whether the worker writes it (else it leaves it alone, and the field with it). */
  readonly written?: boolean;
}

interface Consumer {
  /** The worker, and the kind of input when it takes more than one. */
  readonly worker: WorkerName;
  readonly label?: string;
  /** What it reads, as today's producers write it: a plain document its event is built from. */
  readonly input: () => Json;
  readonly extras: readonly Extra[];
  /** Runs the worker, built by its factory on fresh resources, on the input. */
  readonly run: (input: Json) => Promise<Observed>;
  /** Names of the fields the worker stamps with its own clock: compared as present, not by value. */
  readonly stamped?: readonly string[];
  /** For a Kinesis consumer: the record its mapping delivers, so the filter is checked as well. */
  readonly record?: (input: Json) => { kinesis: { data: string } };
}

/** A copy of `document` with the unknown field added to the object at `path`. */
function withField(document: Json, path: Path, value: unknown = EXTRA_VALUE): Json {
  const copy = structuredClone(document);
  let target: unknown = copy;
  for (const step of path) target = (target as Record<string | number, unknown>)[step];
  assert.ok(typeof target === "object" && target !== null && !Array.isArray(target), `no object at ${path.join(".")}`);
  assert.ok(!(EXTRA_NAME in target), `${path.join(".")} already holds ${EXTRA_NAME}`);
  (target as Json)[EXTRA_NAME] = structuredClone(value);
  return copy;
}

/** `value` with every field named in `stamped` replaced by a marker: present, its value not compared. */
function unstamped(value: unknown, stamped: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((item) => unstamped(item, stamped));
  if (typeof value !== "object" || value === null) return value;
  return Object.fromEntries(
    Object.entries(value).map(([name, field]) => [
      name,
      stamped.has(name) && field !== undefined ? "(stamped)" : unstamped(field, stamped),
    ]),
  );
}

const byJson = (a: unknown, b: unknown) => JSON.stringify(a).localeCompare(JSON.stringify(b));

/** A Kinesis input: the event's own fields, the record without its data, and the JSON the data carries. */
function kinesisInput(template: KinesisFixtureRecord, data: unknown): Json {
  const { kinesis, ...record } = structuredClone(template);
  const { data: _data, ...position } = kinesis;
  return { event: {}, record: { ...record, kinesis: position }, data };
}

/** A DynamoDB change record with its keys and images as plain objects (what a test writes the field into). */
function plainChange(change: Json): Json {
  const dynamodb = change.dynamodb as Json;
  const plain = (image: unknown) => (image === undefined ? undefined : unmarshall(image as never));
  return {
    ...change,
    dynamodb: { ...dynamodb, Keys: plain(dynamodb.Keys), NewImage: plain(dynamodb.NewImage), OldImage: plain(dynamodb.OldImage) },
  };
}

/** The change record as the table's Kinesis streaming destination writes it: its keys and images in DynamoDB JSON. */
function streamedChange(change: Json): Json {
  const dynamodb = change.dynamodb as Json;
  const typed = (image: unknown) => (image === undefined ? undefined : marshall(image, { removeUndefinedValues: true }));
  const { NewImage, OldImage, Keys, ...rest } = dynamodb;
  return {
    ...change,
    dynamodb: {
      ...rest,
      Keys: typed(Keys),
      ...(NewImage === undefined ? {} : { NewImage: typed(NewImage) }),
      ...(OldImage === undefined ? {} : { OldImage: typed(OldImage) }),
    },
  };
}

/** The Kinesis record of an input, its data encoded as the stream carries it (`change`: a DynamoDB change). */
function kinesisRecordOf(input: Json, change = false): { kinesis: { data: string } } & Json {
  const record = input.record as Json & { kinesis: Json };
  const data = change ? streamedChange(input.data as Json) : input.data;
  return { ...record, kinesis: { ...record.kinesis, data: base64(JSON.stringify(data)) } };
}

const kinesisEventOf = (input: Json, change = false) => ({ ...(input.event as Json), Records: [kinesisRecordOf(input, change)] });

describe("tolerant data contracts: every reader, built by its factory on local services", function () {
  let dynamo: LocalDynamo;
  let sqs: LocalSqs;
  let redis: RedisServer;
  let secrets: WireServer;
  let model: ModelServer;
  let arai: WireServer;
  let persona: WireServer;
  let glue: WireServer;
  let jwks: JwksServer;
  let sotc: string;
  let restore: () => void;
  /** The suite's start: the times of the stored sessions and webhooks are set from it. */
  const T0 = Date.now();
  const at = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();

  before(async function () {
    const [signing, decisionKeys] = await Promise.all([
      createSigningKey("accounts-2026-11"),
      generateKeyPair("RS256", { extractable: true }),
    ]);
    [dynamo, sqs, redis, model] = await Promise.all([startDynamo(), startSqs(), startRedis(), ModelServer.start()]);
    secrets = await startSecrets({
      [ARAI_SECRET_ARN]: { username: "svc-scoring", password: "pw", clientId: "fan-identity" },
      [MODEL_TOKEN_SECRET_ARN]: { token: MODEL_TOKEN },
      [API_KEYS_ARN]: { apiKeys: [API_KEY] },
      [PERSONA_KEY_ARN]: { apiKey: "persona_sandbox_3f9c1e7a-52d4-4b0e-9a61-0d8e2c7b4f15" },
      [SIGNING_KEY_ARN]: { privateKey: await exportPKCS8(decisionKeys.privateKey), keyId: "fan-identity-qa1-2026-11" },
      [WEBHOOK_SECRETS_ARN]: { secrets: [WEBHOOK_SECRET] },
    });
    // The recorded ARAI document, for whichever fan is asked for (the fans here are its own).
    arai = await WireServer.start(() => ({ body: fixture("arai/account-activity.json") }));
    // Persona creating an inquiry: its id made from the reference id, so two runs open the same one.
    persona = await WireServer.start((request) => {
      const { attributes } = (JSON.parse(request.body) as { data: { attributes: Record<string, string> } }).data;
      const id = `inq_${sha256(attributes["reference-id"]!).slice(0, 24)}`;
      return {
        status: 201,
        body: {
          data: { type: "inquiry", id, attributes: { status: "created", "reference-id": attributes["reference-id"] } },
          meta: { "session-token": `sess_${id}` },
        },
      };
    });
    glue = await WireServer.start(
      awsJsonResponder({ StartWorkflowRun: (input) => ({ RunId: `wr_${(input.RunProperties as { date: string }).date}` }) }),
    );
    jwks = await JwksServer.start([signing]);
    const nowSeconds = Math.floor(T0 / 1000);
    sotc = await signSotc(
      signing,
      { email: "Fan.Person@Example.COM", given_name: "Fan", locale: "en-GB" },
      { issuer: ISSUER, audience: AUDIENCE, subject: FAN, issuedAt: nowSeconds, expiresAt: nowSeconds + 3600 },
    );
    // One Lambda-like environment holding what every worker reads; each run adds its table and queues.
    restore = setEnvironment({
      ...LAMBDA_AWS,
      AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
      AWS_ENDPOINT_URL_SQS: sqs.endpoint,
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
      AWS_ENDPOINT_URL_GLUE: glue.url,
      DEPLOYMENT: "qa1",
      RESCORE_DELAY_DAYS: "5",
      ARAI_URL_TEMPLATE: `${arai.url}${ARAI_PATH_TEMPLATE}`,
      ARAI_CREDENTIALS_SECRET_ARN: ARAI_SECRET_ARN,
      MODEL_URL: model.url(),
      MODEL_VERSION,
      MODEL_TOKEN_SECRET_ARN,
      ARM_REDIS_URL: redis.url,
      PERSONA_API_URL: persona.url,
      PERSONA_INQUIRY_TEMPLATE_ID: TEMPLATE_ID,
      PERSONA_API_KEY_SECRET_ARN: PERSONA_KEY_ARN,
      SIGNING_KEY_SECRET_ARN: SIGNING_KEY_ARN,
      TOKEN_AUDIENCE: "verified-fan-liveness",
      WEBHOOK_SECRETS_ARN,
      API_KEYS_SECRET_ARN: API_KEYS_ARN,
      JWKS_URL: jwks.url,
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: AUDIENCE,
    });
  });

  after(async function () {
    restore?.();
    await Promise.all([
      dynamo?.close(),
      sqs?.close(),
      redis?.stop(),
      secrets?.close(),
      model?.close(),
      arai?.close(),
      persona?.close(),
      glue?.close(),
      jwks?.close(),
    ]);
  });

  /** The log lines of the last run observed. */
  let lastLines: LogLine[] = [];

  /** The servers whose requests are compared, by name. */
  const wire = () => ({ model: model.server, arai, persona, glue });

  const requestOf = (service: string, request: RecordedRequest): Json => ({
    service,
    method: request.method,
    url: request.url,
    body: request.body === "" ? undefined : (JSON.parse(request.body) as unknown),
  });

  /**
   * Runs `worker`, built by its factory on a new table and new queues (the failure queue and the
   * scoring queues' dead-letter queues among them), on `event`; what it answered and did.
   */
  async function observe(
    worker: WorkerName,
    event: unknown,
    options: { seed?: readonly Json[]; vars?: Record<string, string> } = {},
  ): Promise<Observed> {
    const table = await dynamo.createFanTable();
    const queues = {
      activity: await sqs.freshQueue("account-activity.fifo"),
      onDemand: await sqs.freshQueue("on-demand"),
      failures: await sqs.freshQueue("scoring-stream-failures"),
      activityDeadLetters: await sqs.freshQueue("account-activity-dlq.fifo"),
      onDemandDeadLetters: await sqs.freshQueue("on-demand-dlq"),
    };
    if (options.seed?.length) await dynamo.seed(table, options.seed);
    for (const server of Object.values(wire())) server.requests.length = 0;

    const undo = setEnvironment({
      TABLE_NAME: table,
      ACTIVITY_QUEUE_URL: queues.activity,
      ON_DEMAND_QUEUE_URL: queues.onDemand,
      FAILURE_QUEUE_URL: queues.failures,
      DEAD_LETTER_QUEUE_URLS: JSON.stringify({
        [ACTIVITY_QUEUE_ARN]: queues.activityDeadLetters,
        [ON_DEMAND_QUEUE_ARN]: queues.onDemandDeadLetters,
      }),
      ...options.vars,
    });
    let outcome: { answer: unknown; logs: LogLine[] };
    try {
      const handler = WORKERS[worker].worker.factory() as (event: unknown) => Promise<unknown>;
      const { result, logs } = await captureLogs(() =>
        handler(event).then(
          (value) => value,
          (error: Error) => ({ threw: `${error.name}: ${error.message}` }),
        ),
      );
      outcome = { answer: result, logs };
      lastLines = logs;
    } finally {
      undo();
    }

    const messages: Json[] = [];
    for (const [queue, url] of Object.entries(queues)) {
      for (const message of await sqs.drain(url)) {
        messages.push({
          queue,
          body: JSON.parse(message.Body!) as unknown,
          groupId: message.Attributes?.MessageGroupId,
          deduplicationId: message.Attributes?.MessageDeduplicationId,
          attributes: Object.fromEntries(
            Object.entries(message.MessageAttributes ?? {}).map(([name, value]) => [name, value.StringValue]),
          ),
        });
      }
    }
    return {
      answer: outcome.answer,
      messages: messages.sort(byJson),
      items: (await dynamo.scan(table)).sort((a, b) => String(a.userId).localeCompare(String(b.userId))),
      requests: Object.entries(wire()).flatMap(([service, server]) =>
        server.requests.map((request) => requestOf(service, request)),
      ),
      problems: outcome.logs.filter((line) => line.level === "WARN" || line.level === "ERROR").map((line) => line.message),
    };
  }

  /** A Kinesis stream consumer: its input's record in a Kinesis event (the data a DynamoDB change when `change`). */
  const streamConsumer = (
    worker: WorkerName,
    input: () => Json,
    extras: readonly Extra[],
    options: { change?: boolean; stamped?: readonly string[] } = {},
  ): Consumer => ({
    worker,
    input,
    extras,
    stamped: options.stamped,
    run: (document) => observe(worker, kinesisEventOf(document, options.change), { seed: document.seed as Json[] | undefined }),
    record: (document) => kinesisRecordOf(document, options.change),
  });

  /** The Kinesis extras every stream consumer takes: on the event, on the record, at the top of its data. */
  const KINESIS_EXTRAS: readonly Extra[] = [
    { where: "the Kinesis event", path: ["event"] },
    { where: "the Kinesis record", path: ["record"] },
    { where: "the record's data", path: ["data"] },
  ];

  /** The rescore of `globalUserId` for 29 November, as an earlier activity scheduled it. */
  const storedRescore = (globalUserId: string): Json => ({
    userId: rescoreKey(globalUserId, "2026-11-29"),
    type: "rescore",
    globalUserId,
    rescoreDate: "2026-11-29",
    source: "demand",
    expiresOn: Date.UTC(2026, 10, 29) / 1000,
    dateCreated: "2026-11-24T08:00:00.000Z",
  });

  /**
   * A consumer of an activity stream that also schedules rescores. The fan's rescore for the day
   * exists already, with a field a newer writer gave it: it is not written again, and keeps it.
   */
  const activityStreamConsumer = (
    worker: "enqueueFromDemandStream" | "enqueueFromPurchaseStream" | "enqueueFromSQJourneyStream",
    globalUserId: string,
    input: () => Json,
    extras: readonly Extra[],
    change = false,
  ) =>
    streamConsumer(
      worker,
      () => ({ ...input(), seed: [storedRescore(globalUserId)] }),
      [...KINESIS_EXTRAS, ...extras, { where: "the rescore record already stored", path: ["seed", 0], written: false }],
      { change },
    );

  /** A fan record lookupArai stored a day ago, scored since: its ARAI is stale. */
  const storedFan = (): Json => ({
    userId: FAN,
    type: "score",
    globalUserId: FAN,
    arai: { globalUserId: FAN, loginCounts: { last24h: 1 } },
    araiUpdatedAt: at(-DAY),
    araiVersion: 4,
    lastActivity: { action: "login", source: "kafka", at: at(-DAY - 60_000) },
    score: 0.87,
    scoreVersion: MODEL_VERSION,
    scoredAraiVersion: 4,
    dateCreated: "2026-10-02T11:00:00.000Z",
    dateUpdated: at(-DAY),
  });

  /** A session as checkLiveness stores it, in `status` since `updatedAt`. */
  const storedSession = (status: SessionItem["status"], updatedAt: string, overrides: Partial<SessionItem> = {}): Json => ({
    userId: sessionKey(FAN, "liveness"),
    type: "idvSession",
    globalUserId: FAN,
    verificationType: "liveness",
    vendorSessionId: INQUIRY,
    status,
    statusHistory: [{ status, at: updatedAt }],
    decisions: [],
    ipAddress: "203.0.113.24",
    created: updatedAt,
    updated: updatedAt,
    ...sessionExpiry(status, updatedAt, overrides.lastApprovedAt),
    ...overrides,
  });

  /** checkLiveness's answer with its token read: its claims, but for the ones stamped at signing. */
  function decisionAnswer(answer: unknown): unknown {
    if (typeof answer !== "object" || answer === null || !("token" in answer)) return answer;
    const { iat: _iat, exp: _exp, nbf: _nbf, jti: _jti, ...claims } = decodeJwt(String(answer.token));
    return { ...answer, token: claims };
  }

  const checkLivenessConsumer = (label: string, session: () => Json): Consumer => ({
    worker: "checkLiveness",
    label,
    input: () => ({ event: fixture("appsync-check-liveness.json"), seed: [session()] }),
    extras: [
      { where: "the resolver event", path: ["event"] },
      { where: "the arguments", path: ["event", "arguments"] },
      { where: "the options", path: ["event", "arguments", "options"] },
      { where: "the authoriser's resolverContext", path: ["event", "identity", "resolverContext"] },
      { where: "the stored session", path: ["seed", 0], written: true },
    ],
    // The decision's time, and for a new session every time set from it.
    stamped: ["at", "created", "updated", "expiresAt", "expiresOn"],
    run: async (document) => {
      const observed = await observe("checkLiveness", document.event, { seed: document.seed as Json[] });
      return { ...observed, answer: decisionAnswer(observed.answer) };
    },
  });

  const armRecord = (): Json => ({
    global_user_id: FAN,
    arm_risk: 4,
    timestamp: "2026-11-24T06:00:00.000Z",
    score_date: "2026-11-24",
  });
  const armConsumer = (label: string, event: () => Json, extras: readonly Extra[]): Consumer => ({
    worker: "getArmScore",
    label,
    input: () => ({ event: event(), redis: armRecord() }),
    extras: [...extras, { where: "the value stored in Redis", path: ["redis"] }],
    run: async (document) => {
      await redis.admin().set(`user:${FAN}`, JSON.stringify(document.redis));
      return observe("getArmScore", document.event);
    },
  });

  const glueConsumer = (worker: "startBotOrNotImport" | "startClusterImport", file: string, workflow: string): Consumer => ({
    worker,
    input: () => ({ event: fixture(file) }),
    extras: [
      { where: "the S3 event", path: ["event"] },
      { where: "the notification record", path: ["event", "Records", 0] },
      { where: "its s3 entity", path: ["event", "Records", 0, "s3"] },
      { where: "its object", path: ["event", "Records", 0, "s3", "object"] },
    ],
    run: (document) => observe(worker, document.event, { vars: { GLUE_WORKFLOW_NAME: workflow } }),
  });

  /** The recorded webhook body, for the inquiry of the stored session, a minute ago. */
  function webhookBody(): Json {
    const body = JSON.parse(fixture<{ body: string }>("apigateway-persona-webhook.json").body) as {
      data: { id: string; attributes: Json & { payload: { data: { id: string; attributes: Json } } } };
    };
    body.data.attributes.name = "inquiry.approved";
    body.data.attributes["created-at"] = at(-60_000);
    body.data.attributes.payload.data.attributes.status = "approved";
    body.data.attributes.payload.data.id = INQUIRY;
    return body as unknown as Json;
  }

  /** The proxy event of a webhook: `body` as Persona sends it (compact JSON), signed now. */
  function webhookEvent(document: Json): Json {
    const { body: _recorded, ...event } = document.event as Json & { headers: Json; multiValueHeaders: Json };
    const text = JSON.stringify(document.body);
    const signature = signatureHeader([WEBHOOK_SECRET], Math.floor(Date.now() / 1000), Buffer.from(text, "utf8"));
    return {
      ...event,
      headers: { ...event.headers, "Persona-Signature": signature },
      multiValueHeaders: { ...event.multiValueHeaders, "Persona-Signature": [signature] },
      body: text,
    };
  }

  const validWebhook = () => {
    const ajv = new Ajv({ schemaId: "auto", allErrors: true });
    ajv.addMetaSchema(require("ajv/lib/refs/json-schema-draft-04.json") as object);
    return ajv.compile(JSON.parse(webhookModelSchema()) as object);
  };

  /** The SQS event of one message of the account-activity queue, carrying `body` (JSON) and a correlation id. */
  function sqsEventOf(document: Json): Json {
    const body = JSON.stringify(document.body);
    return { ...(document.event as Json), Records: [{ ...(document.record as Json), body, md5OfBody: md5(body) }] };
  }

  const sqsInput = (body: Json, seed: readonly Json[] = []): Json => {
    const {
      body: _body,
      md5OfBody: _md5,
      ...record
    } = fixture<{ Records: Json[] }>("sqs-account-activity-fifo.json").Records[0]!;
    return { event: {}, record: { ...record, eventSourceARN: ACTIVITY_QUEUE_ARN }, body, seed };
  };

  const CONSUMERS: readonly Consumer[] = [
    {
      worker: "validateToken",
      input: () => ({ event: { ...fixture<Json>("appsync-authorizer.json"), authorizationToken: `${API_KEY}:${sotc}` } }),
      extras: [
        { where: "the authoriser event", path: ["event"] },
        { where: "its requestContext", path: ["event", "requestContext"] },
      ],
      run: (document) => observe("validateToken", document.event),
    },
    glueConsumer("startBotOrNotImport", "s3-export-success.json", "fanid-qa1-bot-or-not-import"),
    glueConsumer("startClusterImport", "s3-cluster-export-success.json", "fanid-qa1-clustering-import"),
    streamConsumer("enqueueFromVfStream", () => kinesisInput(templates.vf, payloadOf(templates.vf)), KINESIS_EXTRAS),
    activityStreamConsumer(
      "enqueueFromDemandStream",
      "gu-2b91d0e4",
      () => kinesisInput(templates.demand, plainChange(payloadOf(templates.demand) as Json)),
      [
        { where: "the change's dynamodb entry", path: ["data", "dynamodb"] },
        { where: "the new image", path: ["data", "dynamodb", "NewImage"] },
      ],
      true,
    ),
    activityStreamConsumer(
      "enqueueFromPurchaseStream",
      "gu-a04c77e2",
      () => kinesisInput(templates.purchase, payloadOf(templates.purchase)),
      [{ where: "the customer", path: ["data", "customer"] }],
    ),
    activityStreamConsumer(
      "enqueueFromSQJourneyStream",
      "gu-5d13f0b8",
      () => kinesisInput(templates.sqJourney, payloadOf(templates.sqJourney)),
      [],
    ),
    streamConsumer(
      "processRescoreEvents",
      () => kinesisInput(templates.rescoreRemoval, plainChange(payloadOf(templates.rescoreRemoval) as Json)),
      [
        ...KINESIS_EXTRAS,
        { where: "the change's userIdentity", path: ["data", "userIdentity"] },
        { where: "the old image", path: ["data", "dynamodb", "OldImage"] },
      ],
      { change: true },
    ),
    {
      worker: "lookupArai",
      input: () => sqsInput({ v: 1, globalUserId: FAN, source: "kafka", action: "login", at: at(-5_000) }, [storedFan()]),
      extras: [
        { where: "the SQS event", path: ["event"] },
        { where: "the SQS record", path: ["record"] },
        { where: "the record's attributes", path: ["record", "attributes"] },
        {
          where: "the message attributes",
          path: ["record", "messageAttributes"],
          value: { stringValue: "eu", stringListValues: [], binaryListValues: [], dataType: "String" },
        },
        { where: "the activity message", path: ["body"] },
        { where: "the stored fan record", path: ["seed", 0], written: true },
      ],
      stamped: ["araiUpdatedAt", "dateUpdated"],
      run: (document) => observe("lookupArai", sqsEventOf(document), { seed: document.seed as Json[] }),
    },
    ...(["scoreUsers", "stagingScoreUsers"] as const).map((worker) =>
      streamConsumer(
        worker,
        () => {
          // The recorded activityData change, and the fan record it was made by.
          const recorded = fixture<{ Records: KinesisFixtureRecord[] }>("kinesis-fan-table-activity-data.json").Records[0]!;
          return { ...kinesisInput(recorded, plainChange(payloadOf(recorded) as Json)), seed: [activityDataImage()] };
        },
        [
          ...KINESIS_EXTRAS,
          { where: "the new image", path: ["data", "dynamodb", "NewImage"] },
          { where: "the new image's lastActivity", path: ["data", "dynamodb", "NewImage", "lastActivity"] },
          // scoreUsers writes the stored fan record (stagingScoreUsers its own staging item, never this one).
          ...(worker === "scoreUsers" ? [{ where: "the stored fan record", path: ["seed", 0], written: true }] : []),
        ],
        { change: true, stamped: ["dateUpdated", "dateCreated"] },
      ),
    ),
    {
      worker: "enqueueFromActivityStream",
      input: () => {
        const { value: _value, ...record } = kafkaTemplate();
        const { eventSource, bootstrapServers } = fixture<Json>("kafka-user-activity.json");
        return { event: { eventSource, bootstrapServers }, record, value: activity(FAN) };
      },
      extras: [
        { where: "the Kafka event", path: ["event"] },
        { where: "the Kafka record", path: ["record"] },
        { where: "the record's value", path: ["value"] },
        { where: "the value's metadata", path: ["value", "metadata"] },
      ],
      run: (document) => {
        const record: Json = { ...(document.record as Json), value: base64(JSON.stringify(document.value)) };
        const event = { ...(document.event as Json), records: { [`${TOPIC}-${String(record.partition)}`]: [record] } };
        return observe("enqueueFromActivityStream", event);
      },
    },
    armConsumer("invoked directly", () => ({ globalUserId: FAN }), [{ where: "the invoke payload", path: ["event"] }]),
    armConsumer("as an AppSync resolver", () => fixture("appsync-resolver-get-arm-score.json"), [
      { where: "the resolver event", path: ["event"] },
      { where: "its arguments", path: ["event", "arguments"] },
    ]),
    checkLivenessConsumer("reusing the live session", () => storedSession("created", at(-600_000))),
    checkLivenessConsumer("replacing a session approved 40 days ago", () =>
      storedSession("approved", at(-40 * DAY), { lastApprovedAt: at(-40 * DAY) }),
    ),
    {
      worker: "handleEvent",
      input: () => ({
        event: fixture("apigateway-persona-webhook.json"),
        body: webhookBody(),
        seed: [storedSession("completed", at(-600_000))],
      }),
      extras: [
        { where: "the proxy event", path: ["event"] },
        { where: "the webhook body", path: ["body"] },
        { where: "the event", path: ["body", "data"] },
        { where: "the event's attributes", path: ["body", "data", "attributes"] },
        { where: "the payload", path: ["body", "data", "attributes", "payload"] },
        { where: "the inquiry's attributes", path: ["body", "data", "attributes", "payload", "data", "attributes"] },
        { where: "the stored session", path: ["seed", 0], written: true },
      ],
      run: async (document) => {
        // What API Gateway checks first: the route's request model takes the body too.
        const validate = validWebhook();
        assert.ok(validate(document.body), `the webhook model refuses the body: ${JSON.stringify(validate.errors)}`);
        return observe("handleEvent", webhookEvent(document), { seed: document.seed as Json[] });
      },
    },
  ];

  const queued = (observed: Observed, queue: string) => observed.messages.filter((message) => message.queue === queue);
  const requestsTo = (observed: Observed, service: string) => observed.requests.filter((request) => request.service === service);
  const answer = (observed: Observed) => observed.answer as Record<string, Json & Record<string, unknown>>;

  /** What each does with today's input: so no comparison is of two runs that did nothing. */
  const EFFECTS: Readonly<Record<string, (observed: Observed) => void>> = {
    validateToken: (observed) => assert.deepEqual(answer(observed).resolverContext?.globalUserId, FAN),
    startBotOrNotImport: (observed) => assert.equal(requestsTo(observed, "glue").length, 1),
    startClusterImport: (observed) => assert.equal(requestsTo(observed, "glue").length, 1),
    enqueueFromVfStream: (observed) => assert.equal(queued(observed, "onDemand").length, 1),
    enqueueFromDemandStream: (observed) => assert.equal(queued(observed, "activity").length, 1),
    enqueueFromPurchaseStream: (observed) => assert.equal(queued(observed, "activity").length, 1),
    enqueueFromSQJourneyStream: (observed) => assert.equal(queued(observed, "activity").length, 1),
    processRescoreEvents: (observed) =>
      assert.equal((queued(observed, "activity")[0]?.body as Json | undefined)?.source, "rescore"),
    lookupArai: (observed) => {
      assert.equal(requestsTo(observed, "arai").length, 1);
      assert.equal(observed.items[0]?.araiVersion, 5);
    },
    scoreUsers: (observed) => {
      assert.equal(requestsTo(observed, "model").length, 1);
      assert.equal(observed.items[0]?.type, "score");
    },
    stagingScoreUsers: (observed) => {
      assert.equal(requestsTo(observed, "model").length, 1);
      assert.ok(observed.items.some((item) => item.type === "stagingScore"));
    },
    enqueueFromActivityStream: (observed) => assert.equal(queued(observed, "activity").length, 1),
    "getArmScore (invoked directly)": (observed) => assert.deepEqual(observed.answer, { armScore: 4 }),
    "getArmScore (as an AppSync resolver)": (observed) => assert.deepEqual(observed.answer, { armScore: 4 }),
    "checkLiveness (reusing the live session)": (observed) => {
      assert.equal(answer(observed).session?.vendorSessionId, INQUIRY);
      assert.equal(requestsTo(observed, "persona").length, 0);
    },
    "checkLiveness (replacing a session approved 40 days ago)": (observed) => {
      assert.notEqual(answer(observed).session?.vendorSessionId, INQUIRY);
      assert.equal(requestsTo(observed, "persona").length, 1);
    },
    handleEvent: (observed) => {
      assert.equal(answer(observed).statusCode, 200);
      assert.equal(observed.items[0]?.status, "approved");
    },
  };

  it("covers every registered worker", function () {
    assert.deepEqual(
      Object.keys(EFFECTS).sort(),
      CONSUMERS.map((consumer) => (consumer.label ? `${consumer.worker} (${consumer.label})` : consumer.worker)).sort(),
    );
    assert.deepEqual(
      [...new Set(CONSUMERS.map((consumer) => consumer.worker))].sort(),
      REGISTERED.map((entry) => entry.name).sort(),
    );
  });

  it("stores a field a newer writer gave an item in a table every writer writes to, but the one that puts its own items whole", function () {
    const WRITES = ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"];
    const writers = REGISTERED.filter((entry) =>
      Object.values(entry.worker.contract.access).some((need) => need.actions.some((action) => WRITES.includes(action))),
    ).map((entry) => entry.name);
    const tested = new Set(
      CONSUMERS.filter((consumer) => consumer.extras.some((extra) => extra.path[0] === "seed")).map(
        (consumer) => consumer.worker,
      ),
    );
    // stagingScoreUsers puts its staging items whole, 25 per BatchWriteItem: it alone writes them
    // and no worker reads them (workers/stagingScoreUsers/index.ts says why).
    assert.deepEqual(
      writers.filter((writer) => !tested.has(writer)),
      ["stagingScoreUsers"],
    );
  });

  for (const consumer of CONSUMERS) {
    const name = consumer.label ? `${consumer.worker} (${consumer.label})` : consumer.worker;
    describe(name, function () {
      let baseline: Observed;
      const stamped = new Set(consumer.stamped ?? []);

      before(async function () {
        baseline = await consumer.run(consumer.input());
      });

      it("takes today's input without a problem", function () {
        EFFECTS[name]!(baseline);
        assert.deepEqual(baseline.problems, [], "no warning or error for today's input");
        assert.doesNotMatch(JSON.stringify(baseline.answer), /"threw"|batchItemFailures":\[\{/, "answered, failing nothing");
      });

      for (const extra of consumer.extras) {
        it(`takes a field it does not know in ${extra.where} as it takes the input without it`, async function () {
          const input = consumer.input();
          const variant = withField(input, extra.path, extra.value);
          if (consumer.record) {
            const filter = (WORKERS[consumer.worker].trigger as { filter?: object }).filter;
            if (filter)
              assert.ok(deliversKinesisRecord(filter, consumer.record(variant)), "its mapping's filter still delivers it");
          }
          const observed = await consumer.run(variant);

          let expected = baseline;
          if (extra.path[0] === "seed") {
            // A stored item: after the run it still holds the field a newer writer gave it, whether
            // the worker wrote the item (the run without the field shows it did) or left it alone.
            const seeded = (input.seed as Json[])[extra.path[1] as number]!;
            const before = baseline.items.find((item) => item.userId === seeded.userId);
            assert.ok(before, `${String(seeded.userId)} is still stored`);
            if (extra.written) assert.notDeepEqual(before, seeded, `the worker writes ${String(seeded.userId)}`);
            else assert.deepEqual(before, seeded, `the worker leaves ${String(seeded.userId)} as it was`);
            const after = observed.items.find((item) => item.userId === seeded.userId);
            assert.deepEqual(after?.[EXTRA_NAME], EXTRA_VALUE, "the field a newer writer stored is kept");
            expected = { ...baseline, items: baseline.items.map((item) => (item === before ? withField(item, []) : item)) };
          }
          assert.deepEqual(unstamped(observed, stamped), unstamped(expected, stamped));
        });
      }
    });
  }
  describe("activity message versions, as lookupArai reads them", function () {
    const activityOf = () => ({ globalUserId: FAN, source: "kafka", action: "login", at: at(-5_000) });

    for (const [label, body] of [
      ["v 1", () => ({ v: 1, ...activityOf() })],
      ["no v (an older producer's)", activityOf],
    ] as const) {
      it(`takes a message with ${label}: the fan's ARAI looked up and stored`, async function () {
        const observed = await observe("lookupArai", sqsEventOf(sqsInput(body())));

        assert.deepEqual(observed.answer, { batchItemFailures: [] });
        assert.equal(requestsTo(observed, "arai").length, 1);
        assert.deepEqual(
          observed.items.map((item) => [item.userId, item.type, item.araiVersion]),
          [[FAN, "activityData", 1]],
        );
        assert.deepEqual(observed.problems, []);
      });
    }

    it("refuses a message of version 2, saying it is newer than the reader knows: nothing looked up or stored, nothing let go", async function () {
      const event = sqsEventOf(sqsInput({ v: 2, ...activityOf() })) as { Records: { messageId: string; body: string }[] };
      const [{ messageId, body }] = event.Records as [{ messageId: string; body: string }];
      const observed = await observe("lookupArai", event);

      const refusal = lastLines.find((line) => line.level === "WARN" && line.record === messageId);
      assert.match(String(refusal?.reason), /\bv: message version 2 is newer than this reader knows \(1\)$/);
      assert.equal(requestsTo(observed, "arai").length, 0, "nothing looked up");
      assert.deepEqual(observed.items, [], "nothing stored");
      // Failed back to its queue, or parked in the queue's dead-letter queue, to be redriven once the reader knows it.
      const failed = (answer(observed).batchItemFailures as unknown as { itemIdentifier: string }[]).map(
        (failure) => failure.itemIdentifier,
      );
      const parked = queued(observed, "activityDeadLetters").filter((message) => JSON.stringify(message.body) === body);
      assert.equal(failed.filter((id) => id === messageId).length + parked.length, 1, "kept for a redrive");
    });
  });
});
