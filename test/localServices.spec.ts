/**
 * The local system's stand-ins for the services the workers call (tools/local/services), each
 * started for real and exercised through the workers' own clients: what they accept, what they
 * answer, and that the workers take it.
 */
import * as assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { GetWorkflowRunCommand, GetWorkflowRunsCommand, GlueClient } from "@aws-sdk/client-glue";
import * as fc from "fast-check";
import { createRemoteJWKSet, importSPKI, jwtVerify } from "jose";
import { z } from "zod";
import { SECRET_KEYS } from "../stacks/config";
import { ensureRedisServer, hasCommand, type PrerequisiteOptions } from "../tools/local/prerequisites";
import { type LocalAccounts, LOGIN_HISTORY_KEPT, startAccounts, UNKNOWN_FAN_PREFIX } from "../tools/local/services/accounts";
import { type LocalGlue, startGlue } from "../tools/local/services/glue";
import { expectedScore, type LocalModelServing, startModelServing } from "../tools/local/services/modelServing";
import { type LocalPersona, type PersonaOptions, startPersona } from "../tools/local/services/persona";
import { answersPing, type LocalRedis, startArmRedis } from "../tools/local/services/redis";
import {
  type LocalSecretsManager,
  type LocalSecretValues,
  generateSecretValues,
  planSecrets,
  type PlanSecret,
  seedSecrets,
  startSecretsManager,
} from "../tools/local/services/secretsManager";
import { araiCredentialsSchema, createAraiClient } from "../workers/lookupArai/araiClient";
import { trimArai } from "../workers/lookupArai/trim";
import { createPersonaClient, personaApiKeySchema } from "../workers/checkLiveness/persona";
import { createDecisionSigner, decisionTokenVerifyOptions, signingKeySchema } from "../workers/checkLiveness/token";
import { createGetArmScore } from "../workers/getArmScore";
import { getArmScoreContract } from "../workers/getArmScore/contract";
import { createArmRedisReader } from "../workers/getArmScore/redis";
import { createHandleEvent, type ProxyResult } from "../workers/handleEvent";
import { handleEventContract } from "../workers/handleEvent/contract";
import { verifySignature } from "../workers/handleEvent/signature";
import { sessionExpiry, sessionKey, STATUS_OF_EVENT } from "../workers/shared/idv/session";
import { personaWebhookSchema } from "../workers/shared/idv/webhook";
import { createGlueImport } from "../workers/shared/glueImport";
import { loadEnvironment } from "../workers/shared/runtime/environment";
import { createLogger } from "../workers/shared/runtime/logging";
import { isHttpServiceError } from "../workers/shared/runtime/http";
import { createSecretReader } from "../workers/shared/runtime/secrets";
import { createModelClient, createModelTokenReader } from "../workers/shared/scoring/modelServing";
import { startBotOrNotImportContract } from "../workers/startBotOrNotImport";
import { createValidateToken } from "../workers/validateToken";
import { validateTokenContract } from "../workers/validateToken/contract";
import { rejectionOf } from "./support/assertions";
import { type Answer, operationOf, type RecordedRequest, WireServer } from "./support/http";
import { type LocalDynamo, startDynamo } from "./support/localAws";
import { captureLogs } from "./support/logs";
import { planStack } from "./support/program";
import { secretsManagerClient } from "./support/secrets";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };

/** The qa1 plan's issuer and audience of SOTCs (validateToken's JWT_ISSUER and JWT_AUDIENCE). */
const ISSUER = "https://accounts-qa1.verifiedfan.example.com";
const AUDIENCE = "verified-fan";
const ARAI_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:210987654321:secret:vfid-qa1-us-east-1-arai-credentials-AbCdEf";

/** A local Secrets Manager holding one secret, and a client of it. */
async function storeWith(arn: string, value: object) {
  const store = await startSecretsManager();
  store.define({ arn, value });
  return { store, client: secretsManagerClient(store.server) };
}

/** A secret reader as the workers build them, against the local Secrets Manager. */
function readerOf<T extends z.core.$ZodType>(client: SecretsManagerClient, secretId: string, schema: T) {
  return createSecretReader({ secretId, schema, maxAgeMs: 300_000, client });
}

describe("local services", function () {
  describe("Secrets Manager", function () {
    let store: LocalSecretsManager;
    let client: SecretsManagerClient;
    let secrets: PlanSecret[];
    let values: LocalSecretValues;
    const arnOf = (kind: PlanSecret["kind"]) => secrets.find((secret) => secret.kind === kind)!.arn;

    before(async function () {
      secrets = planSecrets((await planStack("qa1")).resources);
      store = await startSecretsManager();
      client = secretsManagerClient(store.server);
      values = seedSecrets(store, secrets);
    });
    after(async function () {
      client?.destroy();
      await store?.close();
    });

    it("finds the plan's six secrets, each with what it holds told by the variable that names it", function () {
      assert.deepEqual(secrets.map(({ name, kind }) => [name, kind]).sort(), [
        ["vfid-qa1-us-east-1-arai-credentials", "araiCredentials"],
        ["vfid-qa1-us-east-1-auth-api-keys", "apiKeys"],
        ["vfid-qa1-us-east-1-decision-signing-key", "signingKey"],
        ["vfid-qa1-us-east-1-model-serving-token", "modelToken"],
        ["vfid-qa1-us-east-1-persona-api-key", "personaApiKey"],
        ["vfid-qa1-us-east-1-persona-webhook-secrets", "webhookSecrets"],
      ]);
      for (const secret of secrets)
        assert.equal(secret.arn, `arn:aws:secretsmanager:us-east-1:210987654321:secret:${secret.name}-AbCdEf`);
    });

    it("refuses a plan secret no worker variable names", function () {
      const orphan = {
        type: "aws:secretsmanager/secretVersion:SecretVersion",
        inputs: { secretId: "arn:aws:secretsmanager:us-east-1:1:secret:x-AbCdEf" },
      };
      assert.throws(
        () => planSecrets([orphan]),
        /secret arn:aws:secretsmanager:us-east-1:1:secret:x-AbCdEf: no worker variable names it/,
      );
    });

    it("generates values the stack's configuration accepts", function () {
      assert.ok(SECRET_KEYS.authApiKeys.schema.safeParse(values.apiKeys).success);
      assert.ok(SECRET_KEYS.araiCredentials.schema.safeParse(values.araiCredentials).success);
      assert.ok(SECRET_KEYS.modelServingToken.schema.safeParse(values.modelToken).success);
      assert.ok(SECRET_KEYS.personaApiKey.schema.safeParse(values.personaApiKey).success);
      assert.ok(SECRET_KEYS.personaWebhookSecrets.schema.safeParse(values.webhookSecrets).success);
      assert.ok(SECRET_KEYS.decisionSigningKey.schema.safeParse(values.signingKey.privateKey).success);
      const again = seedSecrets(store, secrets);
      assert.notEqual(again.modelToken, values.modelToken, "fresh values each time");
      seedSecrets(store, secrets, values);
    });

    it("answers each worker's secret reader, by the plan's ARN, with the document its schema requires", async function () {
      assert.deepEqual(await readerOf(client, arnOf("araiCredentials"), araiCredentialsSchema())(), values.araiCredentials);
      assert.deepEqual(await readerOf(client, arnOf("personaApiKey"), personaApiKeySchema())(), { apiKey: values.personaApiKey });
      assert.equal(await createModelTokenReader({ secretId: arnOf("modelToken"), client })(), values.modelToken);
      const apiKeys = z.object({ apiKeys: z.array(z.string().min(1)).min(1) });
      assert.deepEqual((await readerOf(client, arnOf("apiKeys"), apiKeys)()).apiKeys, values.apiKeys);
      const webhook = z.object({ secrets: z.array(z.string().min(1)).min(1) });
      assert.deepEqual((await readerOf(client, arnOf("webhookSecrets"), webhook)()).secrets, values.webhookSecrets);
    });

    it("holds a decision signing key checkLiveness signs with, verified by the public key it returns", async function () {
      const readSigningKey = readerOf(client, arnOf("signingKey"), signingKeySchema());
      const sign = createDecisionSigner({ issuer: "fan-identity", audience: "local-app", ttlSeconds: 3600, readSigningKey });
      const at = new Date().toISOString();
      const decision = {
        at,
        tier: "test-never",
        appId: "app",
        subjectId: "s",
        requiresVerification: false,
        reason: "tier-test-never",
      };
      const token = await sign({ globalUserId: "gu-1", decision, appId: "app", subjectId: "s", now: Date.now() });
      const { payload, protectedHeader } = await jwtVerify(
        token,
        await importSPKI(values.signingKey.publicKey, "RS256"),
        decisionTokenVerifyOptions({ issuer: "fan-identity", audience: "local-app" }),
      );
      assert.equal(protectedHeader.kid, values.signingKey.keyId);
      assert.equal(payload.sub, "gu-1");
      assert.deepEqual(payload.decisions, [decision]);
    });

    it("finds a secret by full ARN, by the ARN without its suffix and by name, and not under another suffix", async function () {
      const created = await client.send(new CreateSecretCommand({ Name: "local/check-ids", SecretString: '{"a":1}' }));
      assert.match(created.ARN!, /^arn:aws:secretsmanager:us-east-1:000000000000:secret:local\/check-ids-[A-Za-z0-9]{6}$/);
      for (const id of [created.ARN!, created.ARN!.slice(0, -7), "local/check-ids"]) {
        const answer = await client.send(new GetSecretValueCommand({ SecretId: id }));
        assert.equal(answer.SecretString, '{"a":1}', id);
        assert.equal(answer.ARN, created.ARN);
      }
      const other = `${created.ARN!.slice(0, -6)}${created.ARN!.endsWith("AAAAAA") ? "BBBBBB" : "AAAAAA"}`;
      const error = await rejectionOf(client.send(new GetSecretValueCommand({ SecretId: other })));
      assert.equal(error.name, "ResourceNotFoundException");
      const taken = await rejectionOf(client.send(new CreateSecretCommand({ Name: "local/check-ids", SecretString: "{}" })));
      assert.equal(taken.name, "ResourceExistsException");
    });

    it("keeps the value replaced by PutSecretValue as AWSPREVIOUS, and describes and lists the versions", async function () {
      const name = "local/rotated";
      const first = await client.send(new CreateSecretCommand({ Name: name, SecretString: "one", Description: "rotates" }));
      const second = await client.send(new PutSecretValueCommand({ SecretId: name, SecretString: "two" }));
      assert.deepEqual(second.VersionStages, ["AWSCURRENT"]);
      assert.equal((await client.send(new GetSecretValueCommand({ SecretId: name }))).SecretString, "two");
      const previous = await client.send(new GetSecretValueCommand({ SecretId: name, VersionStage: "AWSPREVIOUS" }));
      assert.equal(previous.SecretString, "one");
      const described = await client.send(new DescribeSecretCommand({ SecretId: first.ARN }));
      assert.equal(described.Description, "rotates");
      assert.deepEqual(described.VersionIdsToStages, {
        [first.VersionId!]: ["AWSPREVIOUS"],
        [second.VersionId!]: ["AWSCURRENT"],
      });
      assert.ok(described.CreatedDate instanceof Date && Math.abs(described.CreatedDate.getTime() - Date.now()) < 60_000);
      const listed = await client.send(new ListSecretsCommand({}));
      const names = listed.SecretList!.map((secret) => secret.Name);
      assert.ok(names.includes(name) && names.includes("vfid-qa1-us-east-1-model-serving-token"), names.join(", "));
      const page = await client.send(new ListSecretsCommand({ MaxResults: 2 }));
      assert.equal(page.SecretList!.length, 2);
      const rest = await client.send(new ListSecretsCommand({ MaxResults: 100, NextToken: page.NextToken }));
      assert.equal(page.SecretList!.length + rest.SecretList!.length, listed.SecretList!.length);
    });

    it("records the calls without their bodies, so no secret value is kept beyond the store", async function () {
      await client.send(
        new PutSecretValueCommand({ SecretId: arnOf("modelToken"), SecretString: JSON.stringify({ token: values.modelToken }) }),
      );
      assert.ok(store.server.requests.some((request) => operationOf(request) === "PutSecretValue"));
      assert.ok(store.server.requests.every((request) => request.body === ""));
    });
  });

  describe("Glue", function () {
    const WORKFLOW = "vfid-qa1-bot-or-not-import";
    let glue: LocalGlue;
    let client: GlueClient;

    before(async function () {
      glue = await startGlue({ workflows: [WORKFLOW, "vfid-qa1-clustering-import"], runMs: 300 });
      client = new GlueClient({ endpoint: glue.url, region: "us-east-1", credentials });
    });
    after(async function () {
      client?.destroy();
      await glue?.close();
    });

    /** The import worker built by its factory, starting `workflow` through the local Glue. */
    const importer = (workflow: string) =>
      createGlueImport({
        contract: startBotOrNotImportContract,
        env: { GLUE_WORKFLOW_NAME: workflow },
        glue: client,
        logger: createLogger(startBotOrNotImportContract),
      });
    const exportEvent = (key: string) => ({
      Records: [{ eventName: "ObjectCreated:Put", s3: { bucket: { name: "ds-exports" }, object: { key } } }],
    });

    it("records the run the import worker starts, with its workflow and run properties, and answers its RunId", async function () {
      const before = glue.runs.length;
      const summary = await importer(WORKFLOW)(exportEvent("bot-or-not/date=2026-11-24/_SUCCESS"));
      assert.equal(glue.runs.length, before + 1);
      const run = glue.runs.at(-1)!;
      assert.equal(run.workflow, WORKFLOW);
      assert.deepEqual(run.runProperties, {
        bucket: "ds-exports",
        key: "bot-or-not/date=2026-11-24/_SUCCESS",
        date: "2026-11-24",
      });
      assert.match(run.runId, /^wr_[0-9a-f]{64}$/);
      assert.deepEqual(
        summary.started.map((started) => started.runId),
        [run.runId],
      );
      assert.deepEqual(glue.runsOf("vfid-qa1-clustering-import"), []);
    });

    it("reads a run RUNNING, then COMPLETED once its time has passed; lists a workflow's runs", async function () {
      await importer(WORKFLOW)(exportEvent("bot-or-not/date=2026-11-25/_SUCCESS"));
      const { runId } = glue.runs.at(-1)!;
      const first = await client.send(new GetWorkflowRunCommand({ Name: WORKFLOW, RunId: runId }));
      assert.equal(first.Run?.Status, "RUNNING");
      assert.equal(first.Run?.WorkflowRunProperties?.date, "2026-11-25");
      await new Promise((resolve) => setTimeout(resolve, 350));
      const later = await client.send(new GetWorkflowRunCommand({ Name: WORKFLOW, RunId: runId }));
      assert.equal(later.Run?.Status, "COMPLETED");
      assert.ok(later.Run!.CompletedOn!.getTime() >= later.Run!.StartedOn!.getTime() + 300);
      const listed = await client.send(new GetWorkflowRunsCommand({ Name: WORKFLOW }));
      assert.deepEqual(
        listed.Runs!.map((run) => run.WorkflowRunId).sort(),
        glue
          .runsOf(WORKFLOW)
          .map((run) => run.runId)
          .sort(),
      );
    });

    it("does not know a workflow the plan has not, and the worker fails the export saying so", async function () {
      const before = glue.runs.length;
      const { result } = await captureLogs(() =>
        importer("vfid-qa1-no-such-import")(exportEvent("bot-or-not/date=2026-11-24/_SUCCESS")).then(
          () => undefined,
          (error: Error) => error,
        ),
      );
      assert.match(String(result?.message), /glue StartWorkflowRun vfid-qa1-no-such-import failed: EntityNotFoundException/);
      assert.equal(glue.runs.length, before);
    });
  });

  describe("accounts: the ARAI API", function () {
    const values = generateSecretValues();
    let accounts: LocalAccounts;
    let store: LocalSecretsManager;
    let client: SecretsManagerClient;

    before(async function () {
      ({ store, client } = await storeWith(ARAI_SECRET_ARN, values.araiCredentials));
      accounts = await startAccounts({
        credentials: values.araiCredentials,
        issuer: ISSUER,
        audience: AUDIENCE,
        araiUrlTemplate: "https://accounts-qa1.verifiedfan.example.com/arai/v1/accounts/{globalUserId}/activity",
      });
    });
    after(async function () {
      client?.destroy();
      await Promise.all([accounts?.close(), store?.close()]);
    });

    /** lookupArai's client as its factory builds it, reading the credentials from the local Secrets Manager. */
    const araiClient = (readCredentials = readerOf(client, ARAI_SECRET_ARN, araiCredentialsSchema())) =>
      createAraiClient({ urlTemplate: accounts.araiUrlTemplate, timeoutMs: 1000, readCredentials, baseDelayMs: 5 });

    it("answers the fan's ARAI, the same at the same version, and records it as the latest served", async function () {
      assert.equal(accounts.araiUrlTemplate, `${accounts.url}/arai/v1/accounts/{globalUserId}/activity`);
      assert.equal(accounts.araiOf("gu-steady"), undefined, "nothing served yet");
      const first = await araiClient().fetchArai("gu-steady");
      const again = await araiClient().fetchArai("gu-steady");
      assert.equal(first.status, "found");
      assert.deepEqual(again, first);
      assert.deepEqual(accounts.araiOf("gu-steady"), first.status === "found" ? first.arai : undefined);
      const arai = accounts.araiOf("gu-steady")!;
      assert.equal(arai.globalUserId, "gu-steady");
      assert.ok(Array.isArray(arai.history.loginActivity) && Array.isArray(arai.history.failedLoginActivity));
      assert.ok(Array.isArray(arai.linkedAccounts));
      const other = await araiClient().fetchArai("gu-other");
      assert.notDeepEqual(other, first, "another fan, another ARAI");
    });

    it("answers in the documented shape: {data: the account activity, meta: {pageCount}}", async function () {
      const { username, password, clientId } = values.araiCredentials;
      const response = await fetch(accounts.araiUrlTemplate.replace("{globalUserId}", "gu-shape"), {
        headers: { authorization: `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`, "x-client-id": clientId },
      });
      assert.equal(response.status, 200);
      const body = (await response.json()) as { data: Record<string, unknown>; meta: unknown };
      assert.deepEqual(Object.keys(body).sort(), ["data", "meta"]);
      assert.deepEqual(body.meta, { pageCount: 1 });
      const identityAndPhone = [
        "globalUserId",
        "firstName",
        "lastName",
        "emailAddress",
        "phoneNumber",
        "phoneNumberType",
        "phoneNumberCountry",
      ];
      for (const field of identityAndPhone) assert.equal(typeof body.data[field], "string", field);
      assert.equal(typeof body.data.sharedPhoneNumberCount, "number");
      const counts = body.data.counts as Record<string, unknown>;
      assert.ok(Number.isInteger(counts.loginActivity) && Number.isInteger(counts.failedLoginActivity), JSON.stringify(counts));
      const history = body.data.history as Record<string, Record<string, unknown>[]>;
      const entryFields = ["at", "browser", "cip", "device", "from", "lat", "long", "os", "result"];
      for (const entry of [...history.loginActivity!, ...history.failedLoginActivity!])
        assert.deepEqual(Object.keys(entry).sort(), entryFields);
      for (const linked of body.data.linkedAccounts as Record<string, unknown>[])
        assert.deepEqual(Object.keys(linked).sort(), ["linkedAt", "providerId", "providerType"]);
      assert.deepEqual(body.data, accounts.araiOf("gu-shape"), "the data is what the service records as served");
    });

    it("reflects each recorded activity, newest first, from the next answer on", async function () {
      const fan = "gu-active";
      const before = await araiClient().fetchArai(fan);
      assert.equal(accounts.recordActivity(fan, { action: "login", at: "2026-11-24T18:00:00.000Z" }), 1);
      assert.equal(
        accounts.recordActivity(fan, { action: "update_email", at: "2026-11-24T18:05:00.000Z", result: "failure" }),
        2,
      );
      assert.deepEqual(accounts.araiOf(fan), before.status === "found" ? before.arai : undefined, "still what was served");
      const after = await araiClient().fetchArai(fan);
      assert.ok(after.status === "found" && before.status === "found");
      type Entry = { at: string; result: string };
      const logins = after.arai.history!.loginActivity as Entry[];
      const failures = after.arai.history!.failedLoginActivity as Entry[];
      assert.deepEqual(
        [logins[0], failures[0]].map((entry) => [entry!.at, entry!.result]),
        [
          ["2026-11-24T18:00:00.000Z", "success"],
          ["2026-11-24T18:05:00.000Z", "failure"],
        ],
        "the success among the logins, the failure among the failed logins, each newest first",
      );
      assert.equal(logins.length, before.arai.history!.loginActivity!.length + 1);
      assert.equal(failures.length, before.arai.history!.failedLoginActivity!.length + 1);
      assert.equal(accounts.versionOf(fan), 2);
      assert.deepEqual(accounts.araiOf(fan), after.arai);
    });

    it("keeps a busy fan's ARAI within what lookupArai stores whole", async function () {
      const fan = "gu-busy";
      for (let index = 0; index < LOGIN_HISTORY_KEPT + 30; index++) {
        accounts.recordActivity(fan, { action: "login", at: new Date(Date.UTC(2026, 10, 1) + index * 60_000).toISOString() });
      }
      const lookup = await araiClient().fetchArai(fan);
      assert.ok(lookup.status === "found");
      assert.equal(
        lookup.arai.history!.loginActivity!.length,
        LOGIN_HISTORY_KEPT + 1,
        "the kept activities and the account's creation",
      );
      const trimmed = trimArai(lookup.arai);
      assert.ok(trimmed.ok);
      assert.deepEqual(trimmed.dropped, { loginActivity: 0, failedLoginActivity: 0, linkedAccounts: 0 });
      assert.deepEqual(trimmed.snapshot, lookup.arai);
    });

    it("does not know fans with the unknown prefix, nor forgotten ones (404: the client's unknownFan)", async function () {
      assert.deepEqual(await araiClient().fetchArai(`${UNKNOWN_FAN_PREFIX}gu-1`), { status: "unknownFan" });
      assert.equal((await araiClient().fetchArai("gu-leaving")).status, "found");
      accounts.forget("gu-leaving");
      assert.deepEqual(await araiClient().fetchArai("gu-leaving"), { status: "unknownFan" });
      assert.equal(accounts.currentArai("gu-leaving"), undefined);
    });

    it("finds a fan whose id needs encoding in the path", async function () {
      const lookup = await araiClient().fetchArai("gu/odd?id%|x");
      assert.ok(lookup.status === "found");
      assert.equal(lookup.arai.globalUserId, "gu/odd?id%|x");
    });

    it("refuses wrong credentials and a wrong client id, once each (not retried), without recording the password", async function () {
      const wrong = { ...values.araiCredentials, password: "not-the-password" };
      const refused = await rejectionOf(araiClient(async () => wrong).fetchArai("gu-steady"));
      assert.ok(isHttpServiceError(refused) && refused.status === 401 && refused.attempts === 1, refused.message);
      const otherClient = { ...values.araiCredentials, clientId: "someone-else" };
      const forbidden = await rejectionOf(araiClient(async () => otherClient).fetchArai("gu-steady"));
      assert.ok(isHttpServiceError(forbidden) && forbidden.status === 403, forbidden.message);
      const password = values.araiCredentials.password;
      assert.ok(accounts.server.requests.every((request) => !JSON.stringify(request).includes(password)));
      const basic = Buffer.from(`${values.araiCredentials.username}:${password}`).toString("base64");
      assert.ok(accounts.server.requests.every((request) => !JSON.stringify(request).includes(basic)));
    });
  });

  describe("accounts: JWKS and SOTCs", function () {
    const API_KEY = "local-api-key-0123456789abcdef";
    const accountsList: LocalAccounts[] = [];
    after(async function () {
      await Promise.all(accountsList.map((accounts) => accounts.close()));
    });

    const start = async (options: { issuer?: string; userIdClaim?: string } = {}) => {
      const credentials = { username: "u", password: "p", clientId: "c" };
      const accounts = await startAccounts({ credentials, issuer: options.issuer ?? ISSUER, audience: [AUDIENCE], ...options });
      accountsList.push(accounts);
      return accounts;
    };

    /** validateToken built from its parts, verifying against `jwksUrl` as its factory sets it up. */
    const authoriser = (jwksUrl: string, userIdClaim = "sub") => {
      const env = validateTokenContract.environment().parse({
        API_KEYS_SECRET_ARN: "arn:aws:secretsmanager:us-east-1:210987654321:secret:vfid-qa1-us-east-1-auth-api-keys-AbCdEf",
        JWKS_URL: jwksUrl,
        JWT_ISSUER: ISSUER,
        JWT_AUDIENCE: AUDIENCE,
        JWT_USER_ID_CLAIM: userIdClaim,
      });
      const jwks = createRemoteJWKSet(new URL(env.JWKS_URL), { timeoutDuration: env.JWKS_TIMEOUT_MS });
      return createValidateToken({ env, jwks, readApiKeys: async () => [API_KEY], logger: createLogger(validateTokenContract) });
    };

    it("issues SOTCs validateToken verifies against the published JWKS: the fan logged in, with the claims", async function () {
      const accounts = await start();
      assert.equal(accounts.jwksUrl, `${accounts.url}/.well-known/jwks.json`);
      const published = (await (await fetch(accounts.jwksUrl)).json()) as { keys: { kid: string; kty: string; d?: string }[] };
      assert.deepEqual(
        published.keys.map(({ kid, kty, d }) => ({ kid, kty, d })),
        [{ kid: accounts.publicJwk.kid, kty: "RSA", d: undefined }],
      );
      const sotc = await accounts.issueSotc({ globalUserId: "gu-7f3c2a91", claims: { email: "Fan@Example.com" } });
      const answer = await authoriser(accounts.jwksUrl)({ authorizationToken: `${API_KEY}:${sotc}` });
      assert.equal(answer.isAuthorized, true);
      assert.deepEqual(answer.resolverContext, { email: "fan@example.com", isLoggedIn: "true", globalUserId: "gu-7f3c2a91" });
      assert.ok(answer.ttlOverride! > 0);
    });

    it("puts the fan in the configured user id claim", async function () {
      const accounts = await start({ userIdClaim: "guid" });
      const sotc = await accounts.issueSotc({ globalUserId: "gu-claimed" });
      const answer = await authoriser(accounts.jwksUrl, "guid")({ authorizationToken: `${API_KEY}:${sotc}` });
      assert.equal(answer.resolverContext?.globalUserId, "gu-claimed");
      const { result: bySub } = await captureLogs(() =>
        authoriser(accounts.jwksUrl)({ authorizationToken: `${API_KEY}:${sotc}` }),
      );
      assert.equal(bySub.resolverContext?.isLoggedIn, "false", "no sub claim");
    });

    it("issues SOTCs that expire, and ones another issuer's key signed are not taken", async function () {
      const accounts = await start();
      const issuedAt = Math.floor(Date.now() / 1000) - 7200;
      const expired = await accounts.issueSotc({ globalUserId: "gu-late", issuedAt, expiresInSeconds: 3600 });
      const late = await authoriser(accounts.jwksUrl)({ authorizationToken: `${API_KEY}:${expired}` });
      assert.deepEqual(late.resolverContext, { isLoggedIn: "false" });
      const stranger = await start({ issuer: "https://someone-else.example.com" });
      const foreign = await stranger.issueSotc({ globalUserId: "gu-foreign" });
      const answer = await authoriser(accounts.jwksUrl)({ authorizationToken: `${API_KEY}:${foreign}` });
      assert.deepEqual(answer.resolverContext, { isLoggedIn: "false" });
    });
  });

  describe("model serving", function () {
    const MODEL_TOKEN_ARN = "arn:aws:secretsmanager:us-east-1:210987654321:secret:vfid-qa1-us-east-1-model-serving-token-AbCdEf";
    /** The qa1 plan's MODEL_URLs of scoreUsers and stagingScoreUsers. */
    const PLAN_URLS = {
      prod: "https://dbc-nonprod.cloud.databricks.com/serving-endpoints/fan-risk-qa1/invocations",
      staging: "https://dbc-nonprod.cloud.databricks.com/serving-endpoints/fan-risk-qa1-staging/invocations",
    };
    const values = generateSecretValues();
    let model: LocalModelServing;
    let accounts: LocalAccounts;
    let store: LocalSecretsManager;
    let client: SecretsManagerClient;

    before(async function () {
      ({ store, client } = await storeWith(MODEL_TOKEN_ARN, { token: values.modelToken }));
      store.define({ arn: ARAI_SECRET_ARN, value: values.araiCredentials });
      model = await startModelServing({ token: values.modelToken, endpoints: ["fan-risk-qa1", "fan-risk-qa1-staging"] });
      accounts = await startAccounts({ credentials: values.araiCredentials, issuer: ISSUER, audience: AUDIENCE });
    });
    after(async function () {
      client?.destroy();
      await Promise.all([model?.close(), accounts?.close(), store?.close()]);
    });

    /** The scoring workers' model client, as built from their environment, against the local endpoint. */
    const modelClient = (planUrl: string, readToken = createModelTokenReader({ secretId: MODEL_TOKEN_ARN, client })) =>
      createModelClient({ url: model.localUrl(planUrl), timeoutMs: 1000, service: "scoring model", readToken, baseDelayMs: 5 });

    /** What scoreUsers sends for a fan: the snapshot lookupArai stored from the accounts service's answer. */
    async function storedSnapshot(globalUserId: string): Promise<string> {
      const readCredentials = readerOf(client, ARAI_SECRET_ARN, araiCredentialsSchema());
      const lookup = await createAraiClient({
        urlTemplate: accounts.araiUrlTemplate,
        timeoutMs: 1000,
        readCredentials,
      }).fetchArai(globalUserId);
      assert.ok(lookup.status === "found");
      const trimmed = trimArai(lookup.arai);
      assert.ok(trimmed.ok);
      return JSON.stringify(trimmed.snapshot);
    }

    it("scores by the documented formula", function () {
      assert.equal(expectedScore({}, "fan-risk-qa1"), 0.268941, "z = -1");
      assert.equal(expectedScore({}, "fan-risk-qa1-staging"), 0.377541, "z = -0.5");
      const arai = {
        history: { loginActivity: [{ result: "success" }, {}, {}], failedLoginActivity: [{ result: "failure" }] },
        linkedAccounts: [{}, {}],
        sharedPhoneNumberCount: 2,
        phoneNumberType: "mobile",
        counts: { loginActivity: 10, failedLoginActivity: 1 },
      };
      assert.equal(expectedScore(arai, "fan-risk-qa1"), 0.668188, "z = -1 + 0.75 + 1 + 0.5 - 0.75 + 0.2 = 0.7");
      assert.equal(expectedScore(arai, "fan-risk-qa1-staging"), 0.768525, "z + 0.5 = 1.2");
      assert.equal(expectedScore({ ...arai, sharedPhoneNumberCount: 9 }, "x"), 0.768525, "p at most 4: z = 0.7 + 0.5");
      assert.equal(expectedScore({ ...arai, phoneNumberType: "voip" }, "x"), 0.809998, "z = 0.7 + 0.75 = 1.45");
      assert.equal(
        expectedScore({ ...arai, counts: { loginActivity: 500 } }, "x"),
        expectedScore({ ...arai, counts: { loginActivity: 50 } }, "x"),
      );
      assert.equal(
        expectedScore({ ...arai, counts: { loginActivity: "10" } }, "x"),
        0.622459,
        "an unreadable count is 0: z = 0.5",
      );
    });

    it("always scores within [0, 1], whatever the document", function () {
      fc.assert(
        fc.property(fc.jsonValue(), fc.string(), (arai, endpoint) => {
          const score = expectedScore(arai, endpoint);
          return Number.isFinite(score) && score >= 0 && score <= 1;
        }),
      );
    });

    it("answers the model client one score per fan, in order, by the formula on the ARAI the accounts service served", async function () {
      const fans = ["gu-a1", "gu-b2", "gu-c3"];
      accounts.recordActivity("gu-b2", { action: "login", result: "failure", at: "2026-11-24T10:00:00.000Z" });
      const inputs = await Promise.all(
        fans.map(async (globalUserId) => ({ globalUserId, rawJson: await storedSnapshot(globalUserId) })),
      );
      for (const [name, url] of [
        ["fan-risk-qa1", PLAN_URLS.prod],
        ["fan-risk-qa1-staging", PLAN_URLS.staging],
      ] as const) {
        const predictions = await modelClient(url).predict(inputs);
        assert.deepEqual(
          predictions,
          fans.map((fan) => expectedScore(accounts.araiOf(fan), name)),
          name,
        );
        assert.deepEqual(model.calls.at(-1), { endpoint: name, globalUserIds: fans, predictions, at: model.calls.at(-1)!.at });
      }
      const [prod] = await modelClient(PLAN_URLS.prod).predict([inputs[0]!]);
      const [staging] = await modelClient(PLAN_URLS.staging).predict([inputs[0]!]);
      assert.ok(staging! > prod!, "the staging endpoint scores higher");
    });

    it("scores a fan higher once failed logins are recorded", async function () {
      const fan = "gu-failing";
      const [before] = await modelClient(PLAN_URLS.prod).predict([{ globalUserId: fan, rawJson: await storedSnapshot(fan) }]);
      for (let index = 0; index < 5; index++) accounts.recordActivity(fan, { action: "login", result: "failure" });
      const [after] = await modelClient(PLAN_URLS.prod).predict([{ globalUserId: fan, rawJson: await storedSnapshot(fan) }]);
      assert.ok(after! > before!, `${after} > ${before}`);
    });

    it("refuses a wrong token (not retried) and an endpoint it does not serve", async function () {
      const refused = await rejectionOf(
        modelClient(PLAN_URLS.prod, async () => "dapi-wrong").predict([{ globalUserId: "g", rawJson: "{}" }]),
      );
      assert.ok(isHttpServiceError(refused) && refused.status === 401 && refused.attempts === 1, refused.message);
      const elsewhere = "https://dbc-nonprod.cloud.databricks.com/serving-endpoints/fan-risk-other/invocations";
      const missing = await rejectionOf(modelClient(elsewhere).predict([{ globalUserId: "g", rawJson: "{}" }]));
      assert.ok(isHttpServiceError(missing) && missing.status === 404, missing.message);
      assert.ok(model.server.requests.every((request) => !JSON.stringify(request).includes(values.modelToken)));
    });

    it("answers 400 to a body that is not dataframe records of ARAI JSON", async function () {
      const post = (body: string) =>
        fetch(model.localUrl(PLAN_URLS.prod), {
          method: "POST",
          headers: { authorization: `Bearer ${values.modelToken}` },
          body,
        });
      assert.equal((await post('{"instances": []}')).status, 400);
      assert.equal((await post('{"dataframe_records": [{"globalUserId": "g", "raw_json_string": "{"}]}')).status, 400);
      const empty = await post('{"dataframe_records": []}');
      assert.deepEqual(await empty.json(), { predictions: [] });
    });
  });

  describe("Persona", function () {
    const PERSONA_KEY_ARN = "arn:aws:secretsmanager:us-east-1:210987654321:secret:vfid-qa1-us-east-1-persona-api-key-AbCdEf";
    const WEBHOOK_ARN = "arn:aws:secretsmanager:us-east-1:210987654321:secret:vfid-qa1-us-east-1-persona-webhook-secrets-AbCdEf";
    const TEMPLATE_ID = "itmpl_Tst4rQ7mKp2Vn8Hx1Jd6";
    const values = generateSecretValues();
    const started: LocalPersona[] = [];
    let store: LocalSecretsManager;
    let client: SecretsManagerClient;
    let dynamo: LocalDynamo;
    let table: string;
    let receiver: WireServer;
    /** How the webhook route answers; by default, handleEvent's answer. */
    let route: (request: RecordedRequest) => Answer | Promise<Answer>;

    before(async function () {
      ({ store, client } = await storeWith(PERSONA_KEY_ARN, { apiKey: values.personaApiKey }));
      store.define({ arn: WEBHOOK_ARN, value: { secrets: values.webhookSecrets } });
      dynamo = await startDynamo();
      table = await dynamo.createFanTable();
      receiver = await WireServer.start((request) => route(request));
    });
    beforeEach(function () {
      route = (request) => throughHandleEvent(request);
    });
    after(async function () {
      await Promise.all(started.map((persona) => persona.close()));
      client?.destroy();
      await Promise.all([store?.close(), dynamo?.close(), receiver?.close()]);
    });

    /** handleEvent as its factory builds it, reading the webhook secrets from the local Secrets Manager. */
    const handleEvent = () => {
      const env = loadEnvironment(handleEventContract, { TABLE_NAME: table, WEBHOOK_SECRETS_ARN: WEBHOOK_ARN });
      const webhook = z.object({ secrets: z.array(z.string().min(1)).min(1) });
      const readSecrets = async () => (await readerOf(client, WEBHOOK_ARN, webhook)()).secrets;
      return createHandleEvent({ env, logger: createLogger(handleEventContract), documents: dynamo.documents, readSecrets });
    };

    /** The webhook route: the request as an API Gateway proxy event to handleEvent, and its answer. */
    async function throughHandleEvent(request: RecordedRequest): Promise<Answer> {
      const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, String(value)]));
      const event = { httpMethod: "POST", path: "/webhooks/persona", headers, body: request.body, isBase64Encoded: false };
      const { result } = await captureLogs(() => handleEvent()(event));
      const answer = result as ProxyResult;
      return { status: answer.statusCode, body: answer.body };
    }

    const start = async (options: Partial<PersonaOptions> = {}) => {
      const persona = await startPersona({
        apiKey: values.personaApiKey,
        webhookSecrets: values.webhookSecrets,
        webhookUrl: `${receiver.url}/webhooks/persona`,
        templateId: TEMPLATE_ID,
        webhookDelayMs: 100,
        ...options,
      });
      started.push(persona);
      return persona;
    };

    /** checkLiveness's Persona client, reading the API key from the local Secrets Manager. */
    const personaClient = (persona: LocalPersona, readApiKey?: () => Promise<string>) =>
      createPersonaClient({
        apiUrl: persona.url,
        timeoutMs: 1000,
        baseDelayMs: 5,
        readApiKey: readApiKey ?? (async () => (await readerOf(client, PERSONA_KEY_ARN, personaApiKeySchema())()).apiKey),
      });

    /** The session checkLiveness stores for a new inquiry. */
    const seedSession = (globalUserId: string, inquiryId: string, at: string) =>
      dynamo.seed(table, [
        {
          userId: sessionKey(globalUserId, "liveness"),
          type: "idvSession",
          globalUserId,
          verificationType: "liveness",
          vendorSessionId: inquiryId,
          status: "created",
          statusHistory: [{ status: "created", at }],
          decisions: [],
          created: at,
          updated: at,
          ...sessionExpiry("created", at),
        },
      ]);

    it("creates the inquiry checkLiveness asks for, then its signed webhooks move the session to approved", async function () {
      const persona = await start();
      const inquiry = await personaClient(persona).createInquiry(TEMPLATE_ID, "gu-verifying");
      assert.match(inquiry.id, /^inq_\w+$/);
      assert.equal(inquiry.status, "created");
      assert.ok(inquiry.sessionToken);
      await seedSession("gu-verifying", inquiry.id, new Date(Date.now() - 1000).toISOString());
      await persona.idle();
      assert.deepEqual(
        persona.deliveries.map(({ name, inquiryId, attempts, answeredStatus, delivered }) => ({
          name,
          inquiryId,
          attempts,
          answeredStatus,
          delivered,
        })),
        [
          { name: "inquiry.completed", inquiryId: inquiry.id, attempts: 1, answeredStatus: 200, delivered: true },
          { name: "inquiry.approved", inquiryId: inquiry.id, attempts: 1, answeredStatus: 200, delivered: true },
        ],
      );
      const session = await dynamo.item(table, sessionKey("gu-verifying", "liveness"));
      assert.equal(session?.status, "approved");
      assert.deepEqual(
        (session?.statusHistory as { status: string }[]).map((change) => change.status),
        ["created", "completed", "approved"],
      );
      assert.deepEqual(
        persona.inquiries.map(({ id, referenceId, templateId, status }) => ({ id, referenceId, templateId, status })),
        [{ id: inquiry.id, referenceId: "gu-verifying", templateId: TEMPLATE_ID, status: "approved" }],
      );
    });

    it("signs each webhook with every secret, as handleEvent verifies; its body is Persona's event for the inquiry", async function () {
      const rotating = [...values.webhookSecrets, "wbhsec_next-secret-during-rotation"];
      const persona = await start({ webhookSecrets: rotating, events: () => ["inquiry.marked-for-review"] });
      route = () => ({ status: 200, body: { received: true } });
      const inquiry = await personaClient(persona).createInquiry(TEMPLATE_ID, "gu-signed");
      await persona.idle();
      const [delivery] = persona.deliveries;
      const [received] = receiver.requests.filter((request) => request.body === delivery!.body);
      assert.ok(received, "the webhook arrived as sent");
      const header = String(received.headers["persona-signature"]);
      assert.match(header, /^t=\d+,v1=[0-9a-f]{64} t=\d+,v1=[0-9a-f]{64}$/);
      const rawBody = Buffer.from(received.body, "utf8");
      for (const secrets of [[rotating[0]!], [rotating[1]!]]) {
        const verdict = verifySignature({
          header,
          rawBody,
          secrets,
          nowSeconds: Math.floor(Date.now() / 1000),
          toleranceSeconds: 300,
        });
        assert.ok(verdict.ok, JSON.stringify(verdict));
      }
      const forged = verifySignature({
        header,
        rawBody,
        secrets: ["wbhsec_someone-else"],
        nowSeconds: Date.now() / 1000,
        toleranceSeconds: 300,
      });
      assert.equal(forged.ok, false);
      const event = personaWebhookSchema().parse(JSON.parse(received.body)).data;
      assert.equal(event.attributes.name, "inquiry.marked-for-review");
      assert.equal(event.attributes.payload.data.id, inquiry.id);
      assert.equal(event.attributes.payload.data.attributes["reference-id"], "gu-signed");
      assert.equal(event.attributes.payload.data.attributes.status, STATUS_OF_EVENT["inquiry.marked-for-review"]);
    });

    it("tries a webhook again when the route does not answer 2xx", async function () {
      const persona = await start({ events: () => ["inquiry.declined"], webhookDelayMs: 20 });
      let calls = 0;
      route = () => (++calls === 1 ? { status: 500, body: { message: "busy" } } : { status: 200, body: {} });
      await personaClient(persona).createInquiry(TEMPLATE_ID, "gu-retried");
      await persona.idle();
      assert.deepEqual(
        persona.deliveries.map(({ name, attempts, answeredStatus, delivered }) => ({
          name,
          attempts,
          answeredStatus,
          delivered,
        })),
        [{ name: "inquiry.declined", attempts: 2, answeredStatus: 200, delivered: true }],
      );
      assert.equal(persona.inquiries[0]!.status, "declined");
    });

    it("opens one inquiry per idempotency key, however often the request is sent", async function () {
      const persona = await start({ events: () => [] });
      const body = JSON.stringify({ data: { attributes: { "inquiry-template-id": TEMPLATE_ID, "reference-id": "gu-once" } } });
      const post = (key: string) =>
        fetch(`${persona.url}/api/v1/inquiries`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${values.personaApiKey}`,
            "idempotency-key": key,
            "content-type": "application/json",
          },
          body,
        }).then(async (response) => ({
          status: response.status,
          id: ((await response.json()) as { data: { id: string } }).data.id,
        }));
      const first = await post("key-1");
      assert.deepEqual(await post("key-1"), first);
      assert.equal(first.status, 201);
      assert.notEqual((await post("key-2")).id, first.id);
      assert.equal(persona.inquiries.length, 2);
    });

    it("refuses a wrong API key (not retried) and another template, opening nothing", async function () {
      const persona = await start();
      const refused = await rejectionOf(
        personaClient(persona, async () => "persona_wrong_key").createInquiry(TEMPLATE_ID, "gu-x"),
      );
      assert.ok(isHttpServiceError(refused) && refused.status === 401 && refused.attempts === 1, refused.message);
      const other = await rejectionOf(personaClient(persona).createInquiry("itmpl_SomeOtherTemplate", "gu-x"));
      assert.ok(isHttpServiceError(other) && other.status === 404, other.message);
      assert.equal(persona.inquiries.length, 0);
      assert.ok(persona.server.requests.every((request) => !JSON.stringify(request).includes(values.personaApiKey)));
    });

    it("sends no more webhooks once closed", async function () {
      const persona = await start({ webhookDelayMs: 5000 });
      await personaClient(persona).createInquiry(TEMPLATE_ID, "gu-closed");
      const closing = Date.now();
      await persona.close();
      assert.ok(Date.now() - closing < 5000, "close does not wait out the 5 s webhook delay");
      assert.equal(persona.deliveries.length, 0);
    });
  });

  describe("Redis with the ARM grades", function () {
    let redis: LocalRedis;
    let dir: string;

    before(async function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "local-services-redis-"));
      redis = await startArmRedis({ dir });
    });
    after(async function () {
      await redis?.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    /** getArmScore built from its parts, reading the local Redis as its factory sets the reader up. */
    const getArmScore = () => {
      const reader = createArmRedisReader({
        url: redis.url,
        clusterMode: false,
        connectTimeoutMs: 1000,
        commandTimeoutMs: 500,
        connectionName: getArmScoreContract.name,
      });
      return { reader, handler: createGetArmScore({ redis: reader, logger: createLogger(getArmScoreContract) }) };
    };

    it("answers PING on loopback once started", async function () {
      assert.match(redis.url, /^redis:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(await answersPing(redis.port), true);
    });

    it("holds each seeded fan's grade where getArmScore reads it: 1 + the first byte of sha256(id) mod 5", async function () {
      const fans = ["gu-7f3c2a91", "gu-2a6d90c1", "gu-c41f07e8", "gu-0", "gu-1", "gu-2", "gu-3", "gu-4"];
      const grades = await redis.seedArmGrades(fans);
      const { reader, handler } = getArmScore();
      try {
        for (const fan of fans) {
          const expected = 1 + (createHash("sha256").update(fan).digest()[0]! % 5);
          assert.equal(grades.get(fan), expected, fan);
          assert.deepEqual(await handler({ globalUserId: fan }), { armScore: expected }, fan);
        }
        assert.ok(new Set(grades.values()).size > 1, "fans get different grades");
        assert.deepEqual(await handler({ arguments: { globalUserId: "gu-never-seeded" } }), { armScore: null });
      } finally {
        reader.close();
      }
    });

    it("stops the server on close, leaving nothing persisted in its directory", async function () {
      const own = fs.mkdtempSync(path.join(os.tmpdir(), "local-services-redis-"));
      try {
        const other = await startArmRedis({ dir: own });
        await other.seedArmGrades(["gu-kept-nowhere"]);
        await other.close();
        assert.throws(() => process.kill(other.pid, 0), /ESRCH/, "the process is gone");
        assert.equal(await answersPing(other.port), false);
        assert.deepEqual(fs.readdirSync(own), []);
      } finally {
        fs.rmSync(own, { recursive: true, force: true });
      }
    });
  });

  describe("prerequisites: redis-server", function () {
    /** ensureRedisServer with the machine replaced: whether redis-server is there before and after installing. */
    async function ensure(options: { present: boolean[]; uid: number; failing?: string }) {
      const ran: string[] = [];
      const lines: string[] = [];
      const present = [...options.present];
      const run: PrerequisiteOptions["run"] = async (argv) => {
        ran.push(argv.join(" "));
        return argv.join(" ") === options.failing ? 100 : 0;
      };
      const outcome = await ensureRedisServer({
        uid: options.uid,
        log: (line) => lines.push(line),
        has: () => present.shift() ?? false,
        run,
      }).then(
        () => undefined,
        (error: Error) => error,
      );
      return { ran, lines, error: outcome };
    }

    it("finds the redis-server of this machine", async function () {
      assert.equal(hasCommand("redis-server"), true);
      assert.equal(hasCommand("no-such-command-for-local-services"), false);
      await ensureRedisServer({ log: () => assert.fail("nothing to say when it is installed") });
    });

    it("does nothing when redis-server is on the PATH", async function () {
      assert.deepEqual(await ensure({ present: [true], uid: 1000 }), { ran: [], lines: [], error: undefined });
    });

    it("installs it with apt-get as root, and with sudo otherwise, saying what it runs", async function () {
      const root = await ensure({ present: [false, true], uid: 0 });
      assert.deepEqual(root.ran, ["apt-get update", "apt-get install -y redis-server"]);
      assert.equal(root.error, undefined);
      const user = await ensure({ present: [false, true], uid: 1000 });
      assert.deepEqual(user.ran, ["sudo apt-get update", "sudo apt-get install -y redis-server"]);
      assert.deepEqual(user.lines.slice(1), ["$ sudo apt-get update", "$ sudo apt-get install -y redis-server"]);
    });

    it("fails naming the command that failed, and stops there", async function () {
      const failed = await ensure({ present: [false], uid: 1000, failing: "sudo apt-get update" });
      assert.deepEqual(failed.ran, ["sudo apt-get update"]);
      assert.match(String(failed.error?.message), /^`sudo apt-get update` failed \(exit 100\)/);
      const missing = await ensure({ present: [false, false], uid: 0 });
      assert.match(String(missing.error?.message), /still not on the PATH/);
    });
  });
});
