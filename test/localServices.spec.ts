/**
 * The local system's stand-ins for the services the workers call (tools/local/services), each
 * started for real and exercised through the workers' own clients: what they accept, what they
 * answer, and that the workers take it.
 */
import * as assert from "node:assert/strict";
import {
  CreateSecretCommand,
  DescribeSecretCommand,
  GetSecretValueCommand,
  ListSecretsCommand,
  PutSecretValueCommand,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { GetWorkflowRunCommand, GetWorkflowRunsCommand, GlueClient } from "@aws-sdk/client-glue";
import { importSPKI, jwtVerify } from "jose";
import { z } from "zod";
import { SECRET_KEYS } from "../stacks/config";
import { type LocalGlue, startGlue } from "../tools/local/services/glue";
import {
  type LocalSecretsManager,
  type LocalSecretValues,
  planSecrets,
  type PlanSecret,
  seedSecrets,
  startSecretsManager,
} from "../tools/local/services/secretsManager";
import { araiCredentialsSchema } from "../workers/lookupArai/araiClient";
import { personaApiKeySchema } from "../workers/checkLiveness/persona";
import { createDecisionSigner, signingKeySchema } from "../workers/checkLiveness/token";
import { createGlueImport } from "../workers/shared/glueImport";
import { createLogger } from "../workers/shared/runtime/logging";
import { createSecretReader } from "../workers/shared/runtime/secrets";
import { createModelTokenReader } from "../workers/shared/scoring/modelServing";
import { startBotOrNotImportContract } from "../workers/startBotOrNotImport";
import { rejectionOf } from "./support/assertions";
import { operationOf } from "./support/http";
import { captureLogs } from "./support/logs";
import { planStack } from "./support/program";
import { secretsManagerClient } from "./support/secrets";

const credentials = { accessKeyId: "test", secretAccessKey: "test" };

/** A secret reader as the workers build them, against the local Secrets Manager. */
function readerOf<T extends z.ZodType>(client: SecretsManagerClient, secretId: string, schema: T) {
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
      const sign = createDecisionSigner({ issuer: "fan-identity", ttlSeconds: 3600, readSigningKey });
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
      const { payload, protectedHeader } = await jwtVerify(token, await importSPKI(values.signingKey.publicKey, "RS256"));
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
});
