/**
 * The Persona API client, against Persona and Secrets Manager mocked at the wire: the JSON:API
 * request it makes, what it retries (with one idempotency key), and what it refuses to take for
 * an inquiry.
 */
import * as assert from "node:assert/strict";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { createPersonaClient, personaApiKeySchema } from "../workers/checkLiveness/persona";
import { isHttpServiceError } from "../workers/shared/runtime/http";
import { createSecretReader } from "../workers/shared/runtime/secrets";
import { rejectionOf } from "./support/assertions";
import { type Answer, operationOf, type RecordedRequest, WireServer } from "./support/http";
import { ACCESS_DENIED, secretsManagerClient, startSecrets } from "./support/secrets";

const API_KEY = "persona_sandbox_3f9c1e7a-52d4-4b0e-9a61-0d8e2c7b4f15";
const SECRET_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/persona-api-key-Hk29Lm";
const TEMPLATE_ID = "itmpl_Tst4rQ7mKp2Vn8Hx1Jd6";
const GLOBAL_USER_ID = "gu-7f3c2a91";

/** What Persona answers (201) when it creates an inquiry. */
function createdInquiry(
  options: { id?: string; referenceId?: string | null; status?: string; sessionToken?: string | null } = {},
) {
  const body: Record<string, unknown> = {
    data: {
      type: "inquiry",
      id: options.id ?? "inq_2Cd7UjLpV9pP4ZzSgM1wFh3e",
      attributes: {
        status: options.status ?? "created",
        "reference-id": options.referenceId === undefined ? GLOBAL_USER_ID : options.referenceId,
        "created-at": "2026-11-25T12:00:00.412Z",
        "inquiry-template-id": TEMPLATE_ID,
        fields: {},
      },
      relationships: { account: { data: { type: "account", id: "act_ZmQ8u3y1W4c6rK2p" } } },
    },
  };
  if (options.sessionToken !== null) body.meta = { "session-token": options.sessionToken ?? "sess_eyJhbGciOiJIUzI1NiJ9.e30.x" };
  return body;
}

const referenceIdOf = (request: RecordedRequest) =>
  (JSON.parse(request.body) as { data: { attributes: Record<string, string> } }).data.attributes["reference-id"];

describe("Persona API client", function () {
  let api: WireServer;
  let secrets: WireServer;
  let secretsClient: SecretsManagerClient;
  /** What Persona answers to the n-th request (from 1) of a test. */
  let answer: (attempt: number, request: RecordedRequest) => Answer;
  let secretReadable: boolean;

  before(async function () {
    api = await WireServer.start((request) => answer(api.requests.length, request));
    secrets = await startSecrets(() => (secretReadable ? { apiKey: API_KEY } : ACCESS_DENIED));
    secretsClient = secretsManagerClient(secrets);
  });
  after(async function () {
    secretsClient?.destroy();
    await Promise.all([api?.close(), secrets?.close()]);
  });
  beforeEach(function () {
    api.requests.length = 0;
    secrets.requests.length = 0;
    secretReadable = true;
    // Persona echoes the reference id it was given.
    answer = (_attempt, request) => ({ status: 201, body: createdInquiry({ referenceId: referenceIdOf(request) }) });
  });

  /** The client as the worker's factory builds it, retrying after 5 ms. */
  function personaClient(options: { timeoutMs?: number; apiUrl?: string } = {}) {
    const readApiKey = createSecretReader({
      secretId: SECRET_ARN,
      schema: personaApiKeySchema(),
      maxAgeMs: 300_000,
      client: secretsClient,
    });
    return createPersonaClient({
      apiUrl: options.apiUrl ?? api.url,
      timeoutMs: options.timeoutMs ?? 1000,
      readApiKey: async () => (await readApiKey()).apiKey,
      baseDelayMs: 5,
    });
  }

  it("POSTs a JSON:API inquiry of the template, referenced by the globalUserId, with the key and the API version", async function () {
    const inquiry = await personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID);
    assert.deepEqual(inquiry, {
      id: "inq_2Cd7UjLpV9pP4ZzSgM1wFh3e",
      status: "created",
      sessionToken: "sess_eyJhbGciOiJIUzI1NiJ9.e30.x",
    });
    assert.equal(api.requests.length, 1);
    const [request] = api.requests;
    assert.equal(request!.method, "POST");
    assert.equal(request!.url, "/api/v1/inquiries");
    assert.equal(request!.headers.authorization, `Bearer ${API_KEY}`);
    assert.equal(request!.headers["persona-version"], "2023-01-05");
    assert.equal(request!.headers["content-type"], "application/json");
    assert.equal(request!.headers.accept, "application/json");
    assert.match(String(request!.headers["idempotency-key"]), /^[0-9a-f-]{36}$/);
    assert.deepEqual(JSON.parse(request!.body), {
      data: { attributes: { "inquiry-template-id": TEMPLATE_ID, "reference-id": GLOBAL_USER_ID } },
    });
    assert.deepEqual(secrets.requests.map(operationOf), ["GetSecretValue"]);
    assert.equal(JSON.parse(secrets.requests[0]!.body).SecretId, SECRET_ARN);
  });

  it("joins the base URL whether or not it ends in a slash", async function () {
    await personaClient({ apiUrl: `${api.url}/` }).createInquiry(TEMPLATE_ID, GLOBAL_USER_ID);
    assert.equal(api.requests[0]!.url, "/api/v1/inquiries");
  });

  it("answers without a session token when Persona sends no meta (or a null one)", async function () {
    answer = () => ({ status: 201, body: createdInquiry({ sessionToken: null }) });
    assert.deepEqual(await personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID), {
      id: "inq_2Cd7UjLpV9pP4ZzSgM1wFh3e",
      status: "created",
    });
    answer = () => ({ status: 201, body: { ...createdInquiry({ sessionToken: null }), meta: { "session-token": null } } });
    assert.deepEqual(await personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID), {
      id: "inq_2Cd7UjLpV9pP4ZzSgM1wFh3e",
      status: "created",
    });
  });

  it("gives each inquiry its own idempotency key, and reads the API key once for many", async function () {
    const client = personaClient();
    await Promise.all(["gu-1", "gu-2", "gu-3"].map((id) => client.createInquiry(TEMPLATE_ID, id)));
    await client.createInquiry(TEMPLATE_ID, GLOBAL_USER_ID);
    const keys = api.requests.map((request) => request.headers["idempotency-key"]);
    assert.equal(new Set(keys).size, 4);
    assert.equal(secrets.requests.length, 1);
  });

  it("succeeds after two 503s, in three requests carrying the same idempotency key and body", async function () {
    answer = (attempt) =>
      attempt <= 2
        ? { status: 503, body: { errors: [{ title: "Service Unavailable" }] } }
        : { status: 201, body: createdInquiry() };
    const inquiry = await personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID);
    assert.equal(inquiry.id, "inq_2Cd7UjLpV9pP4ZzSgM1wFh3e");
    assert.equal(api.requests.length, 3);
    assert.equal(new Set(api.requests.map((request) => request.headers["idempotency-key"])).size, 1);
    assert.equal(new Set(api.requests.map((request) => request.body)).size, 1);
  });

  it("fails after three 503s, naming the service, the operation, the status and the body", async function () {
    answer = () => ({ status: 503, body: { errors: [{ title: "Service Unavailable" }] } });
    const error = await rejectionOf(personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID));
    assert.ok(isHttpServiceError(error));
    assert.equal(error.status, 503);
    assert.equal(
      error.message,
      'Persona API POST create inquiry failed after 3 attempts: HTTP 503: {"errors":[{"title":"Service Unavailable"}]}',
    );
    assert.equal(api.requests.length, 3);
  });

  it("retries a 429 (rate limited)", async function () {
    answer = (attempt) =>
      attempt === 1
        ? { status: 429, body: { errors: [{ title: "Too Many Requests" }] } }
        : { status: 201, body: createdInquiry() };
    await personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID);
    assert.equal(api.requests.length, 2);
  });

  for (const status of [400, 401, 403, 422]) {
    it(`fails at once on ${status}: the request itself was refused`, async function () {
      answer = () => ({ status, body: { errors: [{ title: "refused", details: "inquiry-template-id is invalid" }] } });
      const error = await rejectionOf(personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID));
      assert.match(error.message, new RegExp(`^Persona API POST create inquiry failed: HTTP ${status}: `));
      assert.equal(api.requests.length, 1);
    });
  }

  it("gives up on a Persona that does not answer, after three attempts each bounded by the timeout", async function () {
    answer = () => ({ status: 201, body: createdInquiry(), delayMs: 1000 });
    const started = Date.now();
    const error = await rejectionOf(personaClient({ timeoutMs: 60 }).createInquiry(TEMPLATE_ID, GLOBAL_USER_ID));
    const elapsed = Date.now() - started;
    assert.equal(error.message, "Persona API POST create inquiry failed after 3 attempts: no answer within 60 ms");
    assert.equal(api.requests.length, 3);
    assert.ok(elapsed < 900, `took ${elapsed} ms`);
  });

  it("refuses an answer that is not an inquiry, naming what is wrong", async function () {
    const wrong: [unknown, RegExp][] = [
      [{ data: { type: "account", id: "act_1", attributes: {} } }, /data\.type/],
      [
        { data: { type: "inquiry", id: "12345", attributes: { status: "created", "reference-id": GLOBAL_USER_ID } } },
        /data\.id: expected an inquiry id/,
      ],
      [createdInquiry({ status: "pending_review" }), /data\.attributes\.status/],
      [{ errors: [] }, /data: /],
    ];
    for (const [body, problem] of wrong) {
      answer = () => ({ status: 201, body });
      const error = await rejectionOf(personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID));
      assert.ok(isHttpServiceError(error));
      assert.match(error.message, /^Persona API POST create inquiry failed: HTTP 201: inquiry is not as expected: /);
      assert.match(error.message, problem);
    }
    answer = () => ({ status: 200, headers: { "content-type": "text/html" }, body: "<html>maintenance</html>" });
    const notJson = await rejectionOf(personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID));
    assert.match(notJson.message, /HTTP 200: answer is not JSON: <html>maintenance<\/html>/);
  });

  it("refuses an inquiry that references another fan, or none", async function () {
    answer = () => ({ status: 201, body: createdInquiry({ referenceId: "gu-someone-else" }) });
    const other = await rejectionOf(personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID));
    assert.match(other.message, /inquiry inq_2Cd7UjLpV9pP4ZzSgM1wFh3e has reference-id "gu-someone-else", not the one asked for/);
    answer = () => ({ status: 201, body: createdInquiry({ referenceId: null }) });
    const none = await rejectionOf(personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID));
    assert.match(none.message, /has reference-id null/);
  });

  it("does not call Persona when the API key cannot be read, and says why", async function () {
    secretReadable = false;
    const error = await rejectionOf(personaClient().createInquiry(TEMPLATE_ID, GLOBAL_USER_ID));
    assert.match(error.message, new RegExp(`^secretsmanager GetSecretValue ${SECRET_ARN} failed: AccessDeniedException`));
    assert.equal(api.requests.length, 0);
  });
});
