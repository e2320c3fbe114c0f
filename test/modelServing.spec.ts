/**
 * The model-serving client against an endpoint mocked at the wire: the request Databricks
 * expects, the bearer token from Secrets Manager, bounded retries, and answers it must refuse.
 */
import * as assert from "node:assert/strict";
import * as fc from "fast-check";
import { isHttpServiceError } from "../workers/shared/runtime/http";
import {
  createModelClient,
  createModelTokenReader,
  invalidPredictions,
  type ModelInput,
} from "../workers/shared/scoring/modelServing";
import { araiDataFor } from "./support/arai";
import { rejectionOf } from "./support/assertions";
import {
  MODEL_PATH,
  MODEL_TOKEN,
  MODEL_TOKEN_SECRET_ARN,
  ModelServer,
  modelRecordsOf,
  predictionFor,
  startModelTokenSecrets,
} from "./support/fanTableStream";
import type { WireServer } from "./support/http";
import { secretsManagerClient } from "./support/secrets";

const SERVICE = "scoring model";

/** Fans with their stored snapshots (the accounts service's `data`), each a little different. */
const inputs = (count: number): ModelInput[] =>
  Array.from({ length: count }, (_, index) => {
    const globalUserId = `gu-${(0x1000 + index).toString(16)}`;
    const data = araiDataFor(globalUserId, { counts: { loginActivity: 10 + index, failedLoginActivity: index } });
    return { globalUserId, rawJson: JSON.stringify(data) };
  });

describe("model serving client", function () {
  let model: ModelServer;
  let secrets: WireServer;

  beforeEach(async function () {
    [model, secrets] = await Promise.all([ModelServer.start(), startModelTokenSecrets()]);
  });
  afterEach(async function () {
    await Promise.all([model.close(), secrets.close()]);
  });

  function client(options: { timeoutMs?: number; secretId?: string } = {}) {
    return createModelClient({
      url: model.url(),
      timeoutMs: options.timeoutMs ?? 1000,
      service: SERVICE,
      baseDelayMs: 10,
      readToken: createModelTokenReader({
        secretId: options.secretId ?? MODEL_TOKEN_SECRET_ARN,
        client: secretsManagerClient(secrets),
      }),
    });
  }

  /** The error `action` rejects with, which must be the client's. */
  const failure = (action: Promise<unknown>) => rejectionOf(action, "the prediction");

  it("POSTs dataframe_records to the invocations path with the bearer token, and returns the predictions in input order", async function () {
    const records = inputs(3);
    const predictions = await client().predict(records);

    assert.equal(model.requests.length, 1);
    const [request] = model.requests;
    assert.equal(request!.method, "POST");
    assert.equal(request!.url, MODEL_PATH);
    assert.equal(request!.headers.authorization, `Bearer ${MODEL_TOKEN}`);
    assert.match(String(request!.headers["content-type"]), /^application\/json/);
    assert.deepEqual(JSON.parse(request!.body), {
      dataframe_records: records.map((record) => ({ globalUserId: record.globalUserId, raw_json_string: record.rawJson })),
    });
    assert.deepEqual(predictions, modelRecordsOf(request!).map(predictionFor));
  });

  it("reads the token secret once for many requests", async function () {
    const predict = client();
    for (let i = 0; i < 4; i++) await predict.predict(inputs(2));

    assert.equal(model.requests.length, 4);
    assert.equal(secrets.requests.length, 1);
    assert.deepEqual(JSON.parse(secrets.requests[0]!.body), { SecretId: MODEL_TOKEN_SECRET_ARN });
  });

  it("makes no request for no records", async function () {
    assert.deepEqual(await client().predict([]), []);
    assert.equal(model.requests.length + secrets.requests.length, 0);
  });

  it("retries a 503 twice, then fails naming the service, the operation, the status and the body", async function () {
    model.answer = () => ({
      status: 503,
      body: { error_code: "TEMPORARILY_UNAVAILABLE", message: "The endpoint is scaling up" },
    });
    const error = await failure(client().predict(inputs(2)));

    assert.equal(model.requests.length, 3, "one request and two retries");
    assert.ok(isHttpServiceError(error));
    assert.equal(error.service, SERVICE);
    assert.equal(error.status, 503);
    for (const fact of [SERVICE, `POST ${MODEL_PATH}`, "after 3 attempts", "HTTP 503", "TEMPORARILY_UNAVAILABLE"]) {
      assert.ok(error.message.includes(fact), `"${fact}" missing from: ${error.message}`);
    }
  });

  it("succeeds when a retry gets an answer", async function () {
    let calls = 0;
    model.answer = (records) =>
      ++calls === 1
        ? { status: 429, body: { error_code: "REQUEST_LIMIT_EXCEEDED" } }
        : { body: { predictions: records.map(() => 0.25) } };

    assert.deepEqual(await client().predict(inputs(2)), [0.25, 0.25]);
    assert.equal(model.requests.length, 2);
  });

  it("does not retry a refused request (403)", async function () {
    model.answer = () => ({ status: 403, body: { error_code: "PERMISSION_DENIED", message: "Invalid access token." } });
    const error = await failure(client().predict(inputs(1)));

    assert.equal(model.requests.length, 1);
    assert.match(
      error.message,
      /^scoring model POST \/serving-endpoints\/fan-risk-qa1\/invocations failed: HTTP 403: .*Invalid access token/,
    );
  });

  it("gives up on an endpoint that does not answer in time, saying so", async function () {
    model.answer = (records) => ({ delayMs: 400, body: { predictions: records.map(() => 0.5) } });
    const error = await failure(client({ timeoutMs: 100 }).predict(inputs(1)));

    assert.equal(model.requests.length, 3);
    assert.match(error.message, /scoring model .* failed after 3 attempts: no answer within 100 ms/);
  });

  for (const { title, body, expected } of [
    { title: "one prediction too few", body: { predictions: [0.1, 0.2] }, expected: /answer has 2 predictions for 3 records/ },
    {
      title: "one prediction too many",
      body: { predictions: [0.1, 0.2, 0.3, 0.4] },
      expected: /answer has 4 predictions for 3 records/,
    },
    {
      title: "a score above 1",
      body: { predictions: [0.1, 1.5, 0.3] },
      expected: /prediction 1 is 1\.5, not a score in \[0, 1\]/,
    },
    { title: "a negative score", body: { predictions: [0.1, 0.2, -0.01] }, expected: /prediction 2 is -0\.01, not a score/ },
    { title: "a score as a string", body: { predictions: ["0.1", 0.2, 0.3] }, expected: /prediction 0 is "0\.1", not a score/ },
    { title: "a null score", body: { predictions: [0.1, null, 0.3] }, expected: /prediction 1 is null, not a score/ },
    {
      title: "no predictions",
      body: { dataframe_split: { data: [[0.1], [0.2], [0.3]] } },
      expected: /answer has no predictions array: \{"dataframe_split"/,
    },
    {
      title: "an array instead of an object",
      body: [0.1, 0.2, 0.3],
      expected: /answer is not a JSON object: \[0\.1,0\.2,0\.3\]/,
    },
  ]) {
    it(`refuses an answer with ${title}, naming the service and what came back, without retrying`, async function () {
      model.answer = () => ({ body });
      const error = await failure(client().predict(inputs(3)));

      assert.equal(model.requests.length, 1);
      assert.ok(error.message.startsWith(`${SERVICE} POST ${MODEL_PATH} failed`), error.message);
      assert.match(error.message, expected);
    });
  }

  it("retries an answer that is not JSON (a proxy's error page), then fails quoting it", async function () {
    model.answer = () => ({ headers: { "content-type": "text/html" }, body: "<html>Bad gateway</html>" });
    const error = await failure(client().predict(inputs(1)));

    assert.equal(model.requests.length, 3);
    assert.match(
      error.message,
      /^scoring model POST \S+ failed after 3 attempts: HTTP 200: answer is not JSON: <html>Bad gateway/,
    );
  });

  it("fails naming Secrets Manager and the secret when the token cannot be read, and sends nothing to the model", async function () {
    const missing = `${MODEL_TOKEN_SECRET_ARN}-missing`;
    const error = await failure(client({ secretId: missing }).predict(inputs(1)));

    assert.equal(model.requests.length, 0);
    assert.match(error.message, /secretsmanager GetSecretValue .*-missing failed: ResourceNotFoundException/);
  });

  describe("invalidPredictions", function () {
    const score = fc.double({ min: 0, max: 1, noNaN: true });

    it("accepts exactly `count` finite numbers in [0, 1]", function () {
      fc.assert(
        fc.property(
          fc.array(score, { maxLength: 200 }),
          (predictions) => invalidPredictions({ predictions }, predictions.length) === undefined,
        ),
      );
    });

    it("refuses any answer with a value outside [0, 1], or of another length", function () {
      const outside = fc.oneof(
        fc.double({ min: 1, max: 1e9, noNaN: true, minExcluded: true }),
        // Below zero (not -0, which equals 0 and is a valid score).
        fc.double({ min: -1e9, max: -Number.MIN_VALUE, noNaN: true }),
        fc.constantFrom(Infinity, -Infinity, Number.NaN),
      );
      fc.assert(
        fc.property(fc.array(score, { maxLength: 50 }), outside, fc.nat(), (predictions, bad, at) => {
          const withBad = [...predictions];
          withBad.splice(at % (predictions.length + 1), 0, bad);
          return invalidPredictions({ predictions: withBad }, withBad.length) !== undefined;
        }),
      );
      fc.assert(
        fc.property(fc.array(score, { maxLength: 50 }), fc.integer({ min: 0, max: 60 }), (predictions, count) =>
          count === predictions.length ? true : invalidPredictions({ predictions }, count) !== undefined,
        ),
      );
    });
  });
});
