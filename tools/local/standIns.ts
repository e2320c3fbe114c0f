/**
 * The stand-ins for everything the workers reach besides queues and streams: the table behind
 * its streaming destination and TTL (in front of dynalite), Secrets Manager seeded with generated
 * values for every planned secret, Glue, the accounts service (ARAI and JWKS), model serving,
 * Persona (its webhooks sent to the local webhook route) and Redis with the ARM grades. Each is
 * configured from the plan: the workers' variables name what they expect.
 */
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import type { RecordedResource } from "../offline/runtime";
import { type LocalAccounts, startAccounts } from "./services/accounts";
import { type LocalGlue, startGlue } from "./services/glue";
import { type LocalModelServing, startModelServing } from "./services/modelServing";
import { type LocalPersona, startPersona } from "./services/persona";
import { type LocalRedis, startArmRedis } from "./services/redis";
import {
  generateSecretValues,
  type LocalSecretValues,
  planSecrets,
  seedSecrets,
  startSecretsManager,
} from "./services/secretsManager";
import type { StandInContext, StandIns } from "./system";
import { kinesisSink } from "./table/kinesisSink";
import {
  type ChangeSink,
  createTablesFromPlan,
  startTableWithStream,
  type TableChange,
  type TableWithStream,
} from "./table/streamingDestination";
import { createClock, startTtlSweeper, type TtlSweeper } from "./table/ttl";
import type { WrapEndpoint } from "./types";
import { nameOfArn, type Wiring } from "./wiring";

export interface StandInOptions {
  /** The planned resources (the secrets to seed are read from them). */
  readonly resources: readonly RecordedResource[];
  /** How much faster than real time TTL's clock runs. @default 1 */
  readonly clockSpeed?: number;
  /** Real milliseconds between TTL sweeps. @default 1000 */
  readonly ttlIntervalMs?: number;
  /** The decision signing key's id (the stack's `idv.signingKeyId`). */
  readonly signingKeyId?: string;
  /** Fans the accounts service does not know (answered 404). */
  readonly unknownFans?: readonly string[];
  /** Wait before each Persona webhook. @default 1000 */
  readonly webhookDelayMs?: number;
  /** Sees every change record the table writes to its stream. */
  readonly onTableChanges?: (records: readonly TableChange[]) => void;
  /**
   * Puts something in front of the table endpoint, the accounts service and model serving (a
   * benchmark's counting proxy): the workers are given the URLs it answers. @default none
   */
  readonly wrapEndpoint?: WrapEndpoint;
}

export interface LocalStandIns extends StandIns {
  readonly secrets: LocalSecretValues;
  readonly table: TableWithStream;
  readonly ttl: TtlSweeper;
  /** TTL's clock, epoch milliseconds. */
  readonly clock: () => number;
  readonly glue: LocalGlue;
  readonly accounts: LocalAccounts;
  readonly model: LocalModelServing;
  readonly persona: LocalPersona;
  readonly redis: LocalRedis;
}

const credentials = { accessKeyId: "local", secretAccessKey: "local" };

/** A variable's value in the planned functions that set it. */
function variable(wiring: Wiring, name: string): string | undefined {
  return wiring.functions.map((fn) => fn.variables[name]).find((value) => value !== undefined);
}

/** The sink of the table endpoint: each table's records onto its stream, after `onTableChanges` saw them. */
function tableSink(context: StandInContext, options: StandInOptions): ChangeSink {
  const sinks = new Map<string, ChangeSink>();
  for (const table of context.wiring.tables) {
    if (!table.streamArn) continue;
    const stream = nameOfArn(table.streamArn);
    sinks.set(
      table.name,
      kinesisSink((entries) => context.putRecords(stream, entries)),
    );
  }
  return async (records) => {
    options.onTableChanges?.(records);
    const byTable = new Map<string, TableChange[]>();
    for (const record of records) byTable.set(record.data.tableName, [...(byTable.get(record.data.tableName) ?? []), record]);
    await Promise.all([...byTable].map(([table, changes]) => sinks.get(table)?.(changes)));
  };
}

async function startTable(context: StandInContext, options: StandInOptions) {
  const { wiring } = context;
  const table = await startTableWithStream({
    dynamoUrl: context.dynamoUrl,
    tables: wiring.tables.filter((candidate) => candidate.streamArn).map((candidate) => candidate.name),
    region: wiring.tables[0]?.region,
    sink: tableSink(context, options),
  });
  const client = new DynamoDBClient({ endpoint: context.dynamoUrl, region: "us-east-1", credentials });
  const ttlTables = await createTablesFromPlan(client, wiring.tables);
  client.destroy();
  const clock = createClock(options.clockSpeed ?? 1);
  const ttl = startTtlSweeper({
    dynamo: { url: table.url, serviceHeaders: table.serviceHeaders },
    tables: ttlTables,
    clock,
    intervalMs: options.ttlIntervalMs ?? 1000,
  });
  return { table, ttl, clock };
}

async function startOutside(context: StandInContext, options: StandInOptions, secrets: LocalSecretValues) {
  const { wiring } = context;
  const audience = variable(wiring, "JWT_AUDIENCE")?.split(",") ?? [];
  const accounts = await startAccounts({
    credentials: secrets.araiCredentials,
    issuer: variable(wiring, "JWT_ISSUER") ?? "https://accounts.local",
    audience,
    userIdClaim: variable(wiring, "JWT_USER_ID_CLAIM"),
    araiUrlTemplate: variable(wiring, "ARAI_URL_TEMPLATE"),
    jwksUrl: variable(wiring, "JWKS_URL"),
  });
  for (const fan of options.unknownFans ?? []) accounts.forget(fan);
  const webhook = wiring.routes.find((route) => route.functionName.endsWith("-handleEvent"));
  const [model, persona, redis] = await Promise.all([
    startModelServing({ token: secrets.modelToken }),
    startPersona({
      apiKey: secrets.personaApiKey,
      webhookSecrets: secrets.webhookSecrets,
      webhookUrl: `http://127.0.0.1:${context.gatewayPort}${webhook?.path ?? "/webhooks/persona"}`,
      templateId: variable(wiring, "PERSONA_INQUIRY_TEMPLATE_ID"),
      webhookDelayMs: options.webhookDelayMs,
    }),
    startArmRedis(),
  ]);
  return { accounts, model, persona, redis };
}

/** Starts every stand-in; `close` ends them all. */
export async function startStandIns(context: StandInContext, options: StandInOptions): Promise<LocalStandIns> {
  const store = await startSecretsManager({ region: context.wiring.functions[0]?.region });
  const secrets = seedSecrets(
    store,
    planSecrets(options.resources),
    generateSecretValues({ signingKeyId: options.signingKeyId }),
  );
  const glue = await startGlue({
    workflows: [...new Set(context.wiring.functions.flatMap((fn) => fn.variables.GLUE_WORKFLOW_NAME ?? []))],
  });
  const { table, ttl, clock } = await startTable(context, options);
  const outside = await startOutside(context, options, secrets);
  const wrap = options.wrapEndpoint ?? (async (_name, url) => url);
  const [dynamodbUrl, accountsUrl, modelUrl] = await Promise.all([
    wrap("table", table.url),
    wrap("accounts", outside.accounts.url),
    wrap("modelServing", outside.model.url),
  ]);
  return {
    ...outside,
    secrets,
    table,
    ttl,
    clock,
    glue,
    dynamodbUrl,
    secretsManagerUrl: store.url,
    glueUrl: glue.url,
    origins: {
      accounts: accountsUrl,
      modelServing: modelUrl,
      persona: outside.persona.url,
      redis: outside.redis.url,
    },
    async close() {
      await ttl.close();
      await Promise.all([outside.persona.close(), outside.model.close(), outside.accounts.close(), outside.redis.close()]);
      await Promise.all([table.close(), glue.close(), store.close()]);
    },
  };
}
