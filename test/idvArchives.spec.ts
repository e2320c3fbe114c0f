/**
 * The identity-verification workers' archives, as Pulumi would upload them for qa1, run in fresh
 * Node processes: a Persona webhook as API Gateway delivers it, and a liveness check as AppSync
 * delivers it, against a local DynamoDB and Persona and Secrets Manager at the wire.
 */
import { strict as assert } from "node:assert";
import { exportPKCS8, exportSPKI, generateKeyPair, importSPKI, jwtVerify } from "jose";
import { decisionTokenVerifyOptions } from "../workers/checkLiveness/token";
import { invokeArchive } from "../tools/offline/archive";
import { sessionKey } from "../workers/shared/idv/session";
import { archiveShelf, resultsOf } from "./support/archives";
import { fixture } from "./support/fixtures";
import { WireServer } from "./support/http";
import { type LocalDynamo, startDynamo } from "./support/localAws";
import { personaWebhookEvent, sessionAwaitingWebhook, startPersona } from "./support/idv";
import { type PlannedStack, planStack } from "./support/program";
import { startSecrets } from "./support/secrets";

const FAN = "gu-7f3c2a91";
const WEBHOOK_SECRET = "wbhsec_archive_test_0001";

describe("identity-verification archives, run in a fresh process as Lambda runs them", function () {
  let plan: PlannedStack;
  let dynamo: LocalDynamo;
  let secrets: WireServer;
  let persona: WireServer;
  let table: string;
  let publicKeyPem: string;
  const shelf = archiveShelf();

  before(async function () {
    plan = await planStack("qa1");
    dynamo = await startDynamo();
    table = await dynamo.createFanTable();
    const { privateKey, publicKey } = await generateKeyPair("RS256", { extractable: true });
    publicKeyPem = await exportSPKI(publicKey);
    const signingKey = { privateKey: await exportPKCS8(privateKey), keyId: "fan-identity-qa1-2026-11" };
    secrets = await startSecrets((secretId) =>
      secretId.includes("webhook")
        ? { secrets: [WEBHOOK_SECRET] }
        : secretId.includes("signing")
          ? signingKey
          : { apiKey: "persona_sandbox_key" },
    );
    persona = await startPersona(() => "inq_Archive0000000000000001", "st_archive");
  });

  after(async function () {
    shelf.removeAll();
    await Promise.all([dynamo.close(), secrets.close(), persona.close()]);
  });

  const services = () => ({
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
    TABLE_NAME: table,
  });

  it("checkLiveness answers an AppSync liveness check with a new Persona inquiry, a stored session and a signed decision token", async function () {
    const { archive, lambdaEnv } = await shelf.deployed(plan, "idv", "checkLiveness");
    const event = fixture<{ arguments: Record<string, unknown> }>("appsync-check-liveness.json");
    event.arguments = { ...event.arguments, options: { tier: "always", appId: "presale-web", subjectId: "evt-0042" } };
    const report = await invokeArchive(archive, event, lambdaEnv({ ...services(), PERSONA_API_URL: persona.url }));
    const [answer] = resultsOf(report) as {
      requiresVerification: boolean;
      session: { vendorSessionId: string };
      token: string;
    }[];

    assert.equal(answer!.requiresVerification, true);
    assert.equal(answer!.session.vendorSessionId, "inq_Archive0000000000000001");
    assert.equal(persona.requests.length, 1);
    assert.equal(persona.requests[0]!.url, "/api/v1/inquiries");
    const stored = await dynamo.item(table, sessionKey(FAN, "liveness"));
    assert.equal(stored?.vendorSessionId, "inq_Archive0000000000000001");
    // The audience the stack binds by default (idv.decisionTokenAudience).
    const { payload, protectedHeader } = await jwtVerify(
      answer!.token,
      await importSPKI(publicKeyPem, "RS256"),
      decisionTokenVerifyOptions({ issuer: "fan-identity", audience: "verified-fan-liveness" }),
    );
    assert.equal(payload.sub, FAN);
    assert.equal(protectedHeader.kid, "fan-identity-qa1-2026-11");
    assert.deepEqual(
      (payload.decisions as { tier: string; requiresVerification: boolean }[]).map(({ tier, requiresVerification }) => ({
        tier,
        requiresVerification,
      })),
      [{ tier: "always", requiresVerification: true }],
    );
  });

  it("handleEvent takes a signed Persona webhook as API Gateway delivers it, and refuses a bad signature with 401", async function () {
    const { archive, lambdaEnv } = await shelf.deployed(plan, "idv", "handleEvent");
    const inquiry = "inq_Archive0000000000000002";
    const session = sessionAwaitingWebhook(FAN, inquiry);
    await dynamo.seed(table, [session as unknown as Record<string, unknown>]);

    const env = lambdaEnv(services());

    const refused = resultsOf(await invokeArchive(archive, personaWebhookEvent(inquiry, "wbhsec_someone_else"), env)) as {
      statusCode: number;
    }[];
    assert.equal(refused[0]!.statusCode, 401);
    assert.equal((await dynamo.item(table, session.userId))?.status, "created");

    const accepted = resultsOf(await invokeArchive(archive, personaWebhookEvent(inquiry, WEBHOOK_SECRET), env)) as {
      statusCode: number;
      body: string;
    }[];
    assert.equal(accepted[0]!.statusCode, 200);
    assert.deepEqual(JSON.parse(accepted[0]!.body), { received: true });
    assert.equal((await dynamo.item(table, session.userId))?.status, "completed");
  });
});
