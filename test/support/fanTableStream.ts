/**
 * The scoring workers' surroundings in tests: the fan-identity table's change stream as Kinesis
 * events built from the recorded fixtures, and the Databricks model-serving endpoint and Secrets
 * Manager mocked at the wire.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { projectRoot } from "../../components/archive";
import { type Answer, awsJsonResponder, type RecordedRequest, WireServer } from "./http";

export const MODEL_PATH = "/serving-endpoints/fan-risk-qa1/invocations";
export const STAGING_MODEL_PATH = "/serving-endpoints/fan-risk-qa1-staging/invocations";
export const MODEL_TOKEN = "dapi0f3c9a8e7d6b5a4c3b2a1f0e9d8c7b6a5";
export const MODEL_TOKEN_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:210987654321:secret:vfid-qa1-model-serving-token-Xy7Kp2";

export function fixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(projectRoot(), "test", "fixtures", "events", name), "utf8")) as T;
}

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

/** A distinct ARAI snapshot per fan and version, in the recorded shape. */
export function araiFor(globalUserId: string, araiVersion: number): Record<string, unknown> {
  const arai = activityDataImage().arai as Record<string, unknown>;
  return {
    ...arai,
    globalUserId,
    loginCounts: { last24h: araiVersion, last7d: araiVersion + 7, last30d: araiVersion + 30, failedLast24h: araiVersion % 3 },
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

/** A model-serving endpoint at the wire; `answer` decides each response (by default: a prediction per record). */
export class ModelServer {
  answer: (records: ModelRecord[], request: RecordedRequest) => Answer = (records) => ({
    body: { predictions: records.map(predictionFor) },
  });
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

  url(pathname = MODEL_PATH): string {
    return `${this.server.url}${pathname}`;
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

/** Secrets Manager at the wire, holding the model-serving token secret. */
export async function startModelTokenSecrets(token = MODEL_TOKEN): Promise<WireServer> {
  return WireServer.start(
    awsJsonResponder({
      GetSecretValue: (input) =>
        input.SecretId === MODEL_TOKEN_SECRET_ARN
          ? {
              ARN: MODEL_TOKEN_SECRET_ARN,
              Name: "vfid-qa1-model-serving-token",
              SecretString: JSON.stringify({ token }),
              VersionId: "3f6c2d1e-8a9b-4c7d-9e0f-EXAMPLE22222",
            }
          : { error: { type: "ResourceNotFoundException", message: "Secrets Manager can't find the specified secret." } },
    }),
  );
}

/** A Secrets Manager client for the fake, as the factory would build it against AWS_ENDPOINT_URL_SECRETS_MANAGER. */
export function secretsClient(server: WireServer): SecretsManagerClient {
  return new SecretsManagerClient({
    endpoint: server.url,
    region: "us-east-1",
    credentials: { accessKeyId: "test", secretAccessKey: "test" },
  });
}

/** Sets environment variables (undefined removes one); returns what puts them back. */
export function setEnvironment(vars: Record<string, string | undefined>): () => void {
  const previous = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  return () => apply(previous);
}
