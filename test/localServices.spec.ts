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
import { importSPKI, jwtVerify } from "jose";
import { z } from "zod";
import { SECRET_KEYS } from "../stacks/config";
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
import { createSecretReader } from "../workers/shared/runtime/secrets";
import { createModelTokenReader } from "../workers/shared/scoring/modelServing";
import { rejectionOf } from "./support/assertions";
import { operationOf } from "./support/http";
import { planStack } from "./support/program";
import { secretsManagerClient } from "./support/secrets";

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
});
