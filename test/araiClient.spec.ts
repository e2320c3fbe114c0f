/**
 * The accounts ARAI API client, against the API and Secrets Manager mocked at the wire: the
 * request it makes, the documented `{data, meta}` answer it reads (handing on `data`), what it
 * refuses, what it retries, and what it answers for a fan the service does not know.
 */
import * as assert from "node:assert/strict";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import * as fc from "fast-check";
import { isHttpServiceError } from "../workers/shared/runtime/http";
import { araiUrl } from "../workers/lookupArai/araiClient";
import { rejectionOf } from "./support/assertions";
import {
  ARAI_PATH_TEMPLATE as PATH_TEMPLATE,
  ARAI_SECRET_ARN as SECRET_ARN,
  araiAnswerFor,
  araiClientFor,
  recordedAraiAnswer,
} from "./support/arai";
import { type Answer, operationOf, type RecordedRequest, WireServer } from "./support/http";
import { ACCESS_DENIED, secretsManagerClient, startSecrets } from "./support/secrets";

const CREDENTIALS = { username: "svc-fanid-qa1", password: "pä$$:w0rd", clientId: "verified-fan-scoring" };
const ARAI = recordedAraiAnswer();
const FAN = ARAI.data.globalUserId;
/** The fan a request asks about, from its path. */
const fanOf = (request: RecordedRequest) => decodeURIComponent(request.url.split("/")[4]!);

describe("accounts ARAI API client", function () {
  let api: WireServer;
  let secrets: WireServer;
  let secretsClient: SecretsManagerClient;
  /** What the API answers to the n-th request (from 1) of a test. */
  let answer: (attempt: number, request: RecordedRequest) => Answer;
  let secretReadable: boolean;

  before(async function () {
    api = await WireServer.start((request) => answer(api.requests.length, request));
    secrets = await startSecrets(() => (secretReadable ? CREDENTIALS : ACCESS_DENIED));
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
    // The recorded answer, about the fan asked for.
    answer = (_attempt, request) => ({ body: araiAnswerFor(fanOf(request)) });
  });

  const araiClient = (options: { timeoutMs?: number } = {}) => araiClientFor(api.url, secretsClient, options);

  it("GETs the fan's account activity with basic credentials and the client id, and answers the answer's data", async function () {
    answer = () => ({ body: ARAI });
    const lookup = await araiClient().fetchArai(FAN);
    assert.deepEqual(lookup, { status: "found", arai: ARAI.data });
    assert.equal(api.requests.length, 1);
    const [request] = api.requests;
    assert.equal(request!.method, "GET");
    assert.equal(request!.url, "/arai/v1/accounts/gu-7f3c2a91/activity");
    const [scheme, encoded] = String(request!.headers.authorization).split(" ");
    assert.equal(scheme, "Basic");
    assert.equal(Buffer.from(encoded!, "base64").toString("utf8"), `${CREDENTIALS.username}:${CREDENTIALS.password}`);
    assert.equal(request!.headers["x-client-id"], CREDENTIALS.clientId);
    assert.equal(request!.headers.accept, "application/json");
    assert.deepEqual(secrets.requests.map(operationOf), ["GetSecretValue"]);
    assert.equal(JSON.parse(secrets.requests[0]!.body).SecretId, SECRET_ARN);
  });

  it("URL-encodes the globalUserId into its path segment", async function () {
    await araiClient().fetchArai("auth0|5f1c/ab?x=1%&y");
    assert.equal(api.requests[0]!.url, "/arai/v1/accounts/auth0%7C5f1c%2Fab%3Fx%3D1%25%26y/activity");
  });

  it("keeps the data's fields it does not know, and ignores the answer's", async function () {
    const data = { ...ARAI.data, deviceTrust: { score: 0.93 }, history: { ...ARAI.data.history, mfaActivity: [] } };
    answer = () => ({ body: { data, meta: { pageCount: "1", cursor: "c2" }, links: { self: "/x" } } });
    assert.deepEqual(await araiClient().fetchArai(FAN), { status: "found", arai: data });
  });

  it("accepts data without history, linked accounts or counts, a history with one list, and an answer without meta", async function () {
    const { history, linkedAccounts: _linked, counts: _counts, ...bare } = ARAI.data;
    const { failedLoginActivity: _failed, ...loginsOnly } = history!;
    for (const data of [bare, { ...bare, history: loginsOnly }, { ...bare, history: {} }]) {
      answer = () => ({ body: { data } });
      assert.deepEqual(await araiClient().fetchArai(FAN), { status: "found", arai: data });
    }
  });

  it("reads the credentials once for many lookups", async function () {
    const client = araiClient();
    await Promise.all(["gu-1", "gu-2", "gu-3"].map((id) => client.fetchArai(id)));
    await client.fetchArai("gu-4");
    assert.equal(api.requests.length, 4);
    assert.equal(secrets.requests.length, 1);
  });

  it("succeeds after two 503s, in three requests", async function () {
    answer = (attempt) => (attempt <= 2 ? { status: 503, body: { message: "Service Unavailable" } } : { body: ARAI });
    assert.deepEqual(await araiClient().fetchArai(FAN), { status: "found", arai: ARAI.data });
    assert.equal(api.requests.length, 3);
  });

  it("fails after three 503s, naming the service, the operation, the status and the body", async function () {
    answer = () => ({ status: 503, body: { message: "Service Unavailable" } });
    const error = await rejectionOf(araiClient().fetchArai(FAN));
    assert.ok(isHttpServiceError(error));
    assert.equal(error.status, 503);
    assert.equal(
      error.message,
      'accounts ARAI API GET account activity failed after 3 attempts: HTTP 503: {"message":"Service Unavailable"}',
    );
    assert.equal(api.requests.length, 3);
  });

  it("answers unknownFan for a 404, without retrying", async function () {
    answer = () => ({ status: 404, body: { code: "ACCOUNT_NOT_FOUND", message: "no account for gu-unknown" } });
    assert.deepEqual(await araiClient().fetchArai("gu-unknown"), { status: "unknownFan" });
    assert.equal(api.requests.length, 1);
  });

  for (const status of [400, 401, 403]) {
    it(`fails at once on ${status}: the request itself was refused`, async function () {
      answer = () => ({ status, body: { message: "refused" } });
      const error = await rejectionOf(araiClient().fetchArai(FAN));
      assert.match(error.message, new RegExp(`^accounts ARAI API GET account activity failed: HTTP ${status}: `));
      assert.equal(api.requests.length, 1);
    });
  }

  it("fails when the API hangs, within the timeout of each of its three attempts", async function () {
    answer = () => ({ delayMs: 3000, body: ARAI });
    const error = await rejectionOf(araiClient({ timeoutMs: 200 }).fetchArai(FAN));
    assert.equal(error.message, "accounts ARAI API GET account activity failed after 3 attempts: no answer within 200 ms");
    assert.equal(api.requests.length, 3);
  });

  const withData = (fields: Record<string, unknown>) => ({ ...ARAI, data: { ...ARAI.data, ...fields } });
  const [latestLogin] = ARAI.data.history!.loginActivity!;
  for (const [title, body, problem] of [
    ["a list", [ARAI], /\(root\): /],
    ["null", null, /\(root\): /],
    ["no data (the account activity at the top level)", ARAI.data, /^data: /],
    ["data that is not an object", { ...ARAI, data: [ARAI.data] }, /^data: /],
    ["data without its globalUserId", withData({ globalUserId: undefined }), /^data\.globalUserId: /],
    ["a history that is not an object", withData({ history: [latestLogin] }), /^data\.history: /],
    [
      "a login history that is not a list",
      withData({ history: { ...ARAI.data.history, loginActivity: { last: latestLogin } } }),
      /^data\.history\.loginActivity: /,
    ],
    [
      "a failed-login history that is not a list",
      withData({ history: { ...ARAI.data.history, failedLoginActivity: 3 } }),
      /^data\.history\.failedLoginActivity: /,
    ],
    ["linked accounts that are not a list", withData({ linkedAccounts: "gu-2a6d90c1" }), /^data\.linkedAccounts: /],
  ] as const) {
    it(`fails at once, naming what was wrong, when the API answers 200 with ${title}`, async function () {
      answer = () => ({ body });
      const error = await rejectionOf(araiClient().fetchArai(FAN));
      const prefix = "accounts ARAI API GET account activity failed: HTTP 200: ARAI answer is not as expected: ";
      assert.ok(error.message.startsWith(prefix), error.message);
      assert.match(error.message.slice(prefix.length), problem);
      assert.equal(api.requests.length, 1, "not retried");
    });
  }

  it("fails at once when the answer is about another fan, naming both", async function () {
    answer = () => ({ body: araiAnswerFor("gu-someone-else") });
    const error = await rejectionOf(araiClient().fetchArai(FAN));
    assert.equal(
      error.message,
      `accounts ARAI API GET account activity failed: HTTP 200: ARAI answer is about "gu-someone-else", not the fan asked for ("${FAN}")`,
    );
    assert.equal(api.requests.length, 1);
  });

  it("fails without calling the API when its credentials cannot be read, naming the secret", async function () {
    secretReadable = false;
    const error = await rejectionOf(araiClient().fetchArai(FAN));
    assert.ok(error.message.includes(SECRET_ARN) && error.message.includes("AccessDeniedException"), error.message);
    assert.equal(api.requests.length, 0);
  });

  describe("araiUrl", function () {
    it("puts the encoded id where the template says, every time it says so", function () {
      assert.equal(araiUrl("https://a.test/v1/{globalUserId}", "gu-1"), "https://a.test/v1/gu-1");
      assert.equal(araiUrl("https://a.test/{globalUserId}/x?id={globalUserId}", "a/b"), "https://a.test/a%2Fb/x?id=a%2Fb");
      assert.equal(araiUrl("https://a.test/{globalUserId}", "$&$1"), "https://a.test/%24%26%241");
    });

    it("for any id: the path segment decodes back to the id and holds no / ? #", function () {
      fc.assert(
        fc.property(fc.string({ unit: "binary", minLength: 1 }), (id) => {
          const url = araiUrl(`https://accounts.test${PATH_TEMPLATE}`, id);
          const segment = url.slice("https://accounts.test/arai/v1/accounts/".length, -"/activity".length);
          assert.ok(!/[/?#]/.test(segment), segment);
          assert.equal(decodeURIComponent(segment), id);
        }),
      );
    });
  });
});
