/**
 * The scoring workers' surroundings in tests: the fan-identity table's change stream as Kinesis
 * events built from the recorded fixtures, and the Databricks model-serving endpoint and Secrets
 * Manager mocked at the wire.
 */
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import type { Logger } from "../../workers/shared/runtime/logging";
import {
  createModelClientFromEnvironment,
  type ModelClient,
  type ModelEnvironment,
} from "../../workers/shared/scoring/modelServing";
import { fixture } from "./fixtures";
import { type Answer, type RecordedRequest, WireServer } from "./http";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./localAws";
import { secretsManagerClient, startSecrets } from "./secrets";

export const MODEL_PATH = "/serving-endpoints/fan-risk-qa1/invocations";
export const STAGING_MODEL_PATH = "/serving-endpoints/fan-risk-qa1-staging/invocations";
export const MODEL_TOKEN = "dapi0f3c9a8e7d6b5a4c3b2a1f0e9d8c7b6a5";
export const MODEL_TOKEN_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:210987654321:secret:vfid-qa1-model-serving-token-Xy7Kp2";

/** A DynamoDB change record as the table's Kinesis streaming destination writes it. */
export type ChangeRecord = Record<string, unknown> & { eventName: string; dynamodb: Record<string, unknown> };

/** The recorded activityData MODIFY's new image, as a plain object. */
export function activityDataImage(): Record<string, unknown> {
  const change = fixture<ChangeRecord>("dynamodb-change-fan-activity-data.json");
  return unmarshall(change.dynamodb.NewImage as never);
}

export interface FanChange {
  readonly globalUserId: string;
  readonly araiVersion: number;
  readonly arai?: Record<string, unknown>;
  readonly eventName?: "INSERT" | "MODIFY";
  /** Replaces fields of the new image (undefined removes one). */
  readonly image?: Record<string, unknown>;
}

/** The recorded activityData change, for another fan, ARAI version or ARAI. */
export function activityDataChange(fan: FanChange): ChangeRecord {
  const change = structuredClone(fixture<ChangeRecord>("dynamodb-change-fan-activity-data.json"));
  const image: Record<string, unknown> = {
    ...activityDataImage(),
    userId: fan.globalUserId,
    globalUserId: fan.globalUserId,
    araiVersion: fan.araiVersion,
    arai: fan.arai ?? araiFor(fan.globalUserId, fan.araiVersion),
    ...fan.image,
  };
  change.eventName = fan.eventName ?? "MODIFY";
  change.dynamodb.Keys = marshall({ userId: fan.globalUserId });
  change.dynamodb.NewImage = marshall(image, { removeUndefinedValues: true });
  if (change.eventName === "INSERT") delete change.dynamodb.OldImage;
  return change;
}

/** A distinct ARAI snapshot (the accounts service's `data`) per fan and version, in the recorded shape. */
export function araiFor(globalUserId: string, araiVersion: number): Record<string, unknown> {
  const arai = activityDataImage().arai as Record<string, unknown>;
  return {
    ...arai,
    globalUserId,
    counts: { loginActivity: araiVersion + 30, failedLoginActivity: araiVersion % 3 },
  };
}

let sequence = 0n;

/**
 * A Kinesis event like the recorded one, one record per entry: an object is carried as its JSON,
 * a string as the record's `data` as it stands (to send what is not base64 or not JSON).
 */
export function kinesisEvent(entries: readonly (object | string)[]): {
  event: { Records: unknown[] };
  sequenceNumbers: string[];
} {
  const template = fixture<{ Records: { kinesis: Record<string, unknown> }[] }>("kinesis-fan-table-activity-data.json")
    .Records[0]!;
  const base = BigInt(template.kinesis.sequenceNumber as string);
  const sequenceNumbers: string[] = [];
  const Records = entries.map((entry) => {
    const sequenceNumber = String(base + 1000n * ++sequence);
    sequenceNumbers.push(sequenceNumber);
    const data = typeof entry === "string" ? entry : Buffer.from(JSON.stringify(entry)).toString("base64");
    return {
      ...template,
      kinesis: { ...template.kinesis, sequenceNumber, data },
      eventID: `shardId-000000000000:${sequenceNumber}`,
    };
  });
  return { event: { Records }, sequenceNumbers };
}

/** What a model request asked for. */
export interface ModelRecord {
  readonly globalUserId: string;
  readonly raw_json_string: string;
}

export const modelRecordsOf = (request: RecordedRequest) =>
  (JSON.parse(request.body) as { dataframe_records: ModelRecord[] }).dataframe_records;

/** The fake model's score for a record: stable, in [0, 1], different per fan and ARAI. */
export function predictionFor(record: ModelRecord): number {
  let hash = 0;
  for (const character of `${record.globalUserId}|${record.raw_json_string}`)
    hash = (hash * 31 + character.charCodeAt(0)) % 10_007;
  return Math.round((hash / 10_006) * 10_000) / 10_000;
}

/** What the fake model answers for a fan's ARAI. */
export const expectedScore = (globalUserId: string, arai: unknown) =>
  predictionFor({ globalUserId, raw_json_string: JSON.stringify(arai) });

type ModelAnswer = (records: ModelRecord[], request: RecordedRequest) => Answer;
const predictEach: ModelAnswer = (records) => ({ body: { predictions: records.map(predictionFor) } });

/** A model-serving endpoint at the wire; `answer` decides each response (by default: a prediction per record). */
export class ModelServer {
  answer: ModelAnswer = predictEach;
  private constructor(readonly server: WireServer) {}

  static async start(): Promise<ModelServer> {
    let instance: ModelServer | undefined;
    const server = await WireServer.start((request) => instance!.answer(modelRecordsOf(request), request));
    instance = new ModelServer(server);
    return instance;
  }

  get requests(): RecordedRequest[] {
    return this.server.requests;
  }

  /** Back to the default answer, with no request recorded. */
  reset(): void {
    this.answer = predictEach;
    this.requests.length = 0;
  }

  url(pathname = MODEL_PATH): string {
    return `${this.server.url}${pathname}`;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** Secrets Manager at the wire, holding the model-serving token secret. */
export function startModelTokenSecrets(token = MODEL_TOKEN): Promise<WireServer> {
  return startSecrets({ [MODEL_TOKEN_SECRET_ARN]: { token } });
}

/** A model client as the scoring workers' factories build it, its token read from `secrets`, retrying after 10 ms. */
export function modelClientFor(secrets: WireServer, env: ModelEnvironment, service: string, logger: Logger): ModelClient {
  return createModelClientFromEnvironment(env, {
    service,
    logger,
    secretsClient: secretsManagerClient(secrets),
    baseDelayMs: 10,
  });
}

/**
 * What the scoring workers call: local DynamoDB, the model endpoint, Secrets Manager holding the
 * model's token, and local SQS for the failure queue they park records in.
 */
export interface ScoringServices {
  readonly dynamo: LocalDynamo;
  readonly model: ModelServer;
  readonly secrets: WireServer;
  readonly sqs: LocalSqs;
  /** A new fan table, and the services as they started: the model's default answer, no calls recorded, nothing intercepted. */
  freshTable(): Promise<string>;
  /** A new failure queue (standard), nothing intercepted at SQS. */
  freshFailureQueue(): Promise<string>;
  close(): Promise<void>;
}

export async function startScoringServices(): Promise<ScoringServices> {
  const [dynamo, model, secrets, sqs] = await Promise.all([
    startDynamo(),
    ModelServer.start(),
    startModelTokenSecrets(),
    startSqs(),
  ]);
  return {
    dynamo,
    model,
    secrets,
    sqs,
    async freshTable() {
      const table = await dynamo.createFanTable();
      model.reset();
      dynamo.proxy.requests.length = 0;
      dynamo.intercept = () => undefined;
      return table;
    },
    async freshFailureQueue() {
      sqs.intercept = () => undefined;
      return sqs.freshQueue("vfid-qa1-us-east-1-scoring-stream-failures-sqs");
    },
    async close() {
      await Promise.all([dynamo.close(), model.close(), secrets.close(), sqs.close()]);
    },
  };
}
