import * as assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import type { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { z } from "zod";
import { createSecretReader } from "../workers/shared/runtime/secrets";
import { rejectionOf } from "./support/assertions";
import { type AwsOperation, awsJsonResponder, operationOf, WireServer } from "./support/http";
import { waitUntil } from "./support/local";
import { secretsManagerClient } from "./support/secrets";

const SECRET_ARN = "arn:aws:secretsmanager:us-east-1:254688921111:secret:fan-identity/appsync-api-keys-Q1w2E3";
const API_KEYS = z.object({ apiKeys: z.array(z.string().min(1)).min(1) });
const MAX_AGE_MS = 300_000;
const FAILURE_MEMORY_MS = 5_000;

type GetSecretValueOutput = Awaited<ReturnType<AwsOperation>>;

const stored = (secretString: string | undefined, versionId = "v-1"): GetSecretValueOutput => ({
  ARN: SECRET_ARN,
  Name: "fan-identity/appsync-api-keys",
  ...(secretString === undefined ? {} : { SecretString: secretString }),
  VersionId: versionId,
});
const document = (apiKeys: string[], versionId?: string) => stored(JSON.stringify({ apiKeys }), versionId);
const failure = (type: string, message: string): GetSecretValueOutput => ({ error: { type, message } });
const NOT_FOUND = failure("ResourceNotFoundException", "Secrets Manager can't find the specified secret.");
const DENIED = failure("AccessDeniedException", "User is not authorized to perform: secretsmanager:GetSecretValue");

describe("createSecretReader (Secrets Manager at the wire)", function () {
  let server: WireServer;
  let client: SecretsManagerClient;
  /** What GetSecretValue answers next; each test sets it. */
  let answer: () => GetSecretValueOutput | Promise<GetSecretValueOutput>;
  let clock: number;

  before(async function () {
    server = await WireServer.start(awsJsonResponder({ GetSecretValue: () => answer() }));
    client = secretsManagerClient(server);
  });
  after(async function () {
    client?.destroy();
    await server?.close();
  });
  beforeEach(function () {
    server.requests.length = 0;
    clock = 1_780_000_000_000;
    answer = () => document(["key-one"]);
  });

  function reader(options: { onStale?: (error: unknown) => void; schema?: z.ZodType; waitMs?: number } = {}) {
    return createSecretReader({
      secretId: SECRET_ARN,
      schema: options.schema ?? API_KEYS,
      maxAgeMs: MAX_AGE_MS,
      failureMemoryMs: FAILURE_MEMORY_MS,
      waitMs: options.waitMs,
      client,
      now: () => clock,
      onStale: options.onStale,
    });
  }

  it("asks GetSecretValue for the configured secret and parses its JSON document", async function () {
    const read = reader();
    assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    assert.equal(server.requests.length, 1);
    assert.equal(operationOf(server.requests[0]), "GetSecretValue");
    assert.deepEqual(JSON.parse(server.requests[0].body), { SecretId: SECRET_ARN });
  });

  it("makes one request for any number of reads within maxAgeMs", async function () {
    const read = reader();
    for (let i = 0; i < 20; i++) {
      clock += (MAX_AGE_MS - 1) / 20;
      assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    }
    assert.equal(server.requests.length, 1);
  });

  it("fetches again once maxAgeMs has passed, and picks up a rotated value", async function () {
    const read = reader();
    assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    answer = () => document(["key-one", "key-two"], "v-2");
    clock += MAX_AGE_MS - 1;
    assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    assert.equal(server.requests.length, 1);
    clock += 1;
    assert.deepEqual(await read(), { apiKeys: ["key-one", "key-two"] });
    assert.equal(server.requests.length, 2);
    // The new value is kept for a full period from when it was fetched.
    clock += MAX_AGE_MS - 1;
    assert.deepEqual(await read(), { apiKeys: ["key-one", "key-two"] });
    assert.equal(server.requests.length, 2);
  });

  it("shares one request among concurrent reads, cold and on refresh", async function () {
    answer = () => new Promise((resolve) => setTimeout(() => resolve(document(["key-one"])), 20));
    const read = reader();
    const cold = await Promise.all(Array.from({ length: 10 }, () => read()));
    for (const value of cold) assert.deepEqual(value, { apiKeys: ["key-one"] });
    assert.equal(server.requests.length, 1);

    answer = () => new Promise((resolve) => setTimeout(() => resolve(document(["key-two"], "v-2")), 20));
    clock += MAX_AGE_MS;
    const refreshed = await Promise.all(Array.from({ length: 10 }, () => read()));
    for (const value of refreshed) assert.deepEqual(value, { apiKeys: ["key-two"] });
    assert.equal(server.requests.length, 2);
  });

  it("rejects a failed first read with an error naming the secret and the AWS error type", async function () {
    answer = () => NOT_FOUND;
    const rejection = await rejectionOf(reader()(), "the read");
    assert.ok(rejection.message.includes(SECRET_ARN), rejection.message);
    assert.ok(rejection.message.includes("ResourceNotFoundException"), rejection.message);
    assert.equal((rejection.cause as Error).name, "ResourceNotFoundException");
    assert.equal(server.requests.length, 1);
  });

  it("remembers a failed fetch for failureMemoryMs: reads within it fail at once without a request, the next one asks again", async function () {
    answer = () => NOT_FOUND;
    const read = reader();
    const failedAt = clock;
    await rejectionOf(read(), "the first read");
    for (let i = 0; i < 10; i++) {
      clock += (FAILURE_MEMORY_MS - 1) / 10;
      const error = await rejectionOf(read(), `read ${i} within the window`);
      assert.match(error.message, /remembered/);
      assert.ok(error.message.includes(new Date(failedAt).toISOString()), error.message);
      assert.ok(error.message.includes(new Date(failedAt + FAILURE_MEMORY_MS).toISOString()), error.message);
      assert.ok(error.message.includes(SECRET_ARN) && error.message.includes("ResourceNotFoundException"), error.message);
      assert.equal(((error.cause as Error).cause as Error).name, "ResourceNotFoundException");
    }
    assert.equal(server.requests.length, 1);

    clock = failedAt + FAILURE_MEMORY_MS;
    answer = () => document(["key-one"]);
    assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    assert.equal(server.requests.length, 2);
  });

  it("shares one failing request among concurrent cold reads, and remembers it for all", async function () {
    answer = () => new Promise((resolve) => setTimeout(() => resolve(DENIED), 20));
    const read = reader();
    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => read()));
    for (const outcome of outcomes) assert.equal(outcome.status, "rejected");
    await assert.rejects(read(), /remembered/);
    assert.equal(server.requests.length, 1);
  });

  it("serves the previous value when a refresh fails, telling onStale, through the failure window without asking again", async function () {
    const stale: unknown[] = [];
    const read = reader({ onStale: (error) => stale.push(error) });
    assert.deepEqual(await read(), { apiKeys: ["key-one"] });

    answer = () => DENIED;
    clock += MAX_AGE_MS;
    const failedAt = clock;
    assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    assert.equal(stale.length, 1);
    assert.match((stale[0] as Error).message, /AccessDeniedException/);
    assert.ok((stale[0] as Error).message.includes(SECRET_ARN));
    assert.equal(server.requests.length, 2);

    // Within the window: the previous value, each read told as stale, and no request.
    for (let i = 0; i < 5; i++) {
      clock += (FAILURE_MEMORY_MS - 1) / 5;
      assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    }
    assert.equal(stale.length, 6);
    assert.match((stale[5] as Error).message, /AccessDeniedException.*remembered/);
    assert.equal(server.requests.length, 2);

    // After it, the next read asks again and gets the rotated value.
    clock = failedAt + FAILURE_MEMORY_MS;
    answer = () => document(["key-two"], "v-2");
    assert.deepEqual(await read(), { apiKeys: ["key-two"] });
    assert.equal(stale.length, 6);
    assert.equal(server.requests.length, 3);
  });

  it("serves the cached value through an outage, asking Secrets Manager once per failure window", async function () {
    const stale: unknown[] = [];
    const outage = await WireServer.start(awsJsonResponder({ GetSecretValue: () => answer() }));
    const client = secretsManagerClient(outage, { maxAttempts: 1 });
    try {
      const read = createSecretReader({
        secretId: SECRET_ARN,
        schema: API_KEYS,
        maxAgeMs: MAX_AGE_MS,
        failureMemoryMs: FAILURE_MEMORY_MS,
        client,
        now: () => clock,
        onStale: (error) => stale.push(error),
      });
      assert.deepEqual(await read(), { apiKeys: ["key-one"] });
      answer = () => failure("InternalServiceError", "An error occurred on the server side.");
      clock += MAX_AGE_MS;
      // A minute of reads, ten a second: the cached value every time, one request per window.
      const windows = 60_000 / FAILURE_MEMORY_MS;
      for (let i = 0; i < 600; i++) {
        assert.deepEqual(await read(), { apiKeys: ["key-one"] });
        clock += 100;
      }
      assert.equal(outage.requests.length, 1 + windows);
      assert.equal(stale.length, 600);
      assert.match((stale[0] as Error).message, /InternalServiceError/);

      answer = () => document(["key-one"]);
      clock += FAILURE_MEMORY_MS;
      assert.deepEqual(await read(), { apiKeys: ["key-one"] });
      assert.equal(stale.length, 600);
    } finally {
      client.destroy();
      await outage.close();
    }
  });

  it("serves the previous value when the rotated secret does not match the schema", async function () {
    const stale: unknown[] = [];
    const read = reader({ onStale: (error) => stale.push(error) });
    assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    answer = () => stored(JSON.stringify({ apiKeys: [] }), "v-2");
    clock += MAX_AGE_MS;
    assert.deepEqual(await read(), { apiKeys: ["key-one"] });
    assert.equal(stale.length, 1);
    assert.match((stale[0] as Error).message, /apiKeys/);
  });

  it("rejects a SecretString that is not JSON, without echoing it", async function () {
    const secretValue = "hunter2-s3cr3t-value{";
    answer = () => stored(secretValue);
    const error = await rejectionOf(reader()(), "the read");
    assert.ok(error.message.includes(SECRET_ARN), error.message);
    assert.match(error.message, /not a JSON document/);
    assert.ok(!error.message.includes("hunter2"), error.message);
    assert.ok(!JSON.stringify(error).includes("hunter2"));
  });

  it("rejects a document that does not match the schema, naming the field and never the value", async function () {
    const cases: [document: unknown, field: RegExp][] = [
      [{ apiKeys: "hunter2-single-key" }, /apiKeys: /],
      [{ apiKeys: ["hunter2-good-key", ""] }, /apiKeys\.1: /],
      [{ apiKeys: [] }, /apiKeys: /],
      [{ keys: ["hunter2-wrong-field"] }, /apiKeys: /],
      [["hunter2-not-an-object"], /\(document\): /],
    ];
    for (const [content, field] of cases) {
      answer = () => stored(JSON.stringify(content));
      const error = await rejectionOf(reader()(), `reading ${JSON.stringify(content)}`);
      assert.match(error.message, /does not have the expected shape/);
      assert.match(error.message, field);
      assert.ok(error.message.includes(SECRET_ARN), error.message);
      assert.ok(!error.message.includes("hunter2"), error.message);
    }
  });

  it("rejects a secret that has no SecretString (a binary secret)", async function () {
    answer = () => ({ ...stored(undefined), SecretBinary: Buffer.from("hunter2").toString("base64") });
    await assert.rejects(reader()(), (error: Error) => {
      assert.match(error.message, /has no SecretString/);
      assert.ok(error.message.includes(SECRET_ARN));
      return true;
    });
  });

  describe("with waitMs", function () {
    /** Holds GetSecretValue's answers until `release` gives them. */
    let hung: ((output: GetSecretValueOutput) => void)[];
    const hang = () => new Promise<GetSecretValueOutput>((resolve) => hung.push(resolve));
    const release = (output: GetSecretValueOutput) => hung.splice(0).forEach((resolve) => resolve(output));
    beforeEach(function () {
      hung = [];
    });
    afterEach(function () {
      release(NOT_FOUND);
    });

    it("gets the value of a fetch that answers within it", async function () {
      assert.deepEqual(await reader({ waitMs: 60_000 })(), { apiKeys: ["key-one"] });
      assert.equal(server.requests.length, 1);
    });

    it("fails a cold read with a timeout error once waitMs has passed, and the hanging fetch is shared, not repeated", async function () {
      answer = hang;
      const read = reader({ waitMs: 50 });
      for (let i = 0; i < 3; i++) {
        const error = await rejectionOf(read(), `read ${i}`);
        assert.match(error.message, /did not answer within 50 ms/);
        assert.ok(error.message.includes(SECRET_ARN), error.message);
      }
      await waitUntil(() => hung.length > 0, "the fetch to reach Secrets Manager");
      // Answered at last: the value is cached for the reads that follow.
      release(document(["key-one"]));
      await waitUntil(async () => (await read().catch(() => undefined)) !== undefined, "the fetch's value");
      assert.deepEqual(await read(), { apiKeys: ["key-one"] });
      assert.equal(server.requests.length, 1);
    });

    it("remembers a hanging fetch that fails at last, for the reads that stopped waiting for it", async function () {
      answer = hang;
      const read = reader({ waitMs: 50 });
      await assert.rejects(read(), /did not answer within 50 ms/);
      await waitUntil(() => hung.length > 0, "the fetch to reach Secrets Manager");
      release(DENIED);
      const error = await waitUntil(
        async () =>
          read().then(
            () => undefined,
            (rejection: Error) => (/remembered/.test(rejection.message) ? rejection : undefined),
          ),
        "the failure to be remembered",
      );
      assert.match(error.message, /AccessDeniedException/);
      assert.equal(server.requests.length, 1);
    });

    it("serves the previous value once waitMs has passed on a refresh, telling onStale, and shares the hanging refresh", async function () {
      const stale: unknown[] = [];
      const read = reader({ waitMs: 50, onStale: (error) => stale.push(error) });
      assert.deepEqual(await read(), { apiKeys: ["key-one"] });
      answer = hang;
      clock += MAX_AGE_MS;
      for (let i = 0; i < 3; i++) assert.deepEqual(await read(), { apiKeys: ["key-one"] });
      assert.equal(stale.length, 3);
      for (const error of stale) assert.match((error as Error).message, /did not answer within 50 ms/);
      await waitUntil(() => hung.length > 0, "the refresh to reach Secrets Manager");
      release(document(["key-two"], "v-2"));
      await waitUntil(async () => isDeepStrictEqual(await read(), { apiKeys: ["key-two"] }), "the refreshed value");
      assert.equal(server.requests.length, 2);
    });
  });

  it("keeps separate readers separate", async function () {
    const first = reader();
    assert.deepEqual(await first(), { apiKeys: ["key-one"] });
    answer = () => document(["key-two"], "v-2");
    const second = reader();
    assert.deepEqual(await second(), { apiKeys: ["key-two"] });
    assert.deepEqual(await first(), { apiKeys: ["key-one"] });
    assert.equal(server.requests.length, 2);
  });
});
