/**
 * The HTTP client every external service goes through (workers/shared/runtime/http.ts), against a
 * server on loopback: what it retries, how often, and what its errors say.
 */
import * as assert from "node:assert/strict";
import {
  createHttpClient,
  type HttpClientOptions,
  type HttpServiceError,
  isHttpServiceError,
} from "../workers/shared/runtime/http";
import { rejectionOf } from "./support/assertions";
import { type Answer, WireServer } from "./support/http";

const SERVICE = "accounts ARAI API";
const OPERATION = "GET account activity";

describe("createHttpClient (workers/shared/runtime/http.ts)", function () {
  let server: WireServer;
  /** The answers to give, in order; the last is repeated. */
  let answers: Answer[];
  /** Attempts the client made, counted at its fetch. */
  let attempts: number;

  before(async function () {
    server = await WireServer.start(() => answers[Math.min(server.requests.length - 1, answers.length - 1)]!);
  });
  after(async function () {
    await server?.close();
  });
  beforeEach(function () {
    server.requests.length = 0;
    answers = [{ body: { ok: true } }];
    attempts = 0;
  });

  /** A client with short delays, and a fetch that counts the attempts (also those that never reach the server). */
  function client(options: Partial<HttpClientOptions> = {}) {
    return createHttpClient({
      service: SERVICE,
      timeoutMs: 500,
      baseDelayMs: 5,
      fetch: (input, init) => {
        attempts += 1;
        return fetch(input, init);
      },
      ...options,
    });
  }

  const url = () => `${server.url}/arai/v1/accounts/gu-1/activity`;

  async function failure(promise: Promise<unknown>): Promise<HttpServiceError> {
    const error = await rejectionOf(promise, "the request");
    assert.ok(isHttpServiceError(error), String(error));
    return error;
  }

  it("GETs JSON, with the accept header and the headers it is configured with, and parses the answer", async function () {
    answers = [{ body: { globalUserId: "gu-1", loginCounts: { last24h: 2 } } }];
    const request = client({ headers: async () => ({ authorization: "Basic c3ZjOnB3", "x-client-id": "vf" }) });
    const response = await request({ operation: OPERATION, url: url() });
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, { globalUserId: "gu-1", loginCounts: { last24h: 2 } });
    const [sent] = server.requests;
    assert.equal(sent!.method, "GET");
    assert.equal(sent!.url, "/arai/v1/accounts/gu-1/activity");
    assert.equal(sent!.headers.accept, "application/json");
    assert.equal(sent!.headers.authorization, "Basic c3ZjOnB3");
    assert.equal(sent!.headers["x-client-id"], "vf");
    assert.equal(sent!.headers["content-type"], undefined);
  });

  it("POSTs a JSON body with its content type", async function () {
    const request = client();
    await request({ operation: "POST score", url: url(), method: "POST", body: { instances: [{ a: 1 }] } });
    const [sent] = server.requests;
    assert.equal(sent!.method, "POST");
    assert.equal(sent!.headers["content-type"], "application/json");
    assert.deepEqual(JSON.parse(sent!.body), { instances: [{ a: 1 }] });
  });

  it("answers an empty 2xx body as undefined", async function () {
    answers = [{ status: 204 }];
    const response = await client()({ operation: OPERATION, url: url() });
    assert.equal(response.status, 204);
    assert.equal(response.body, undefined);
  });

  for (const status of [500, 502, 503, 504, 429, 408]) {
    it(`retries ${status}, and succeeds when a retry does`, async function () {
      answers = [{ status, body: { message: "try again" } }, { status, body: { message: "try again" } }, { body: { ok: 1 } }];
      const request = client();
      const response = await request({ operation: OPERATION, url: url() });
      assert.deepEqual(response.body, { ok: 1 });
      assert.equal(server.requests.length, 3);
    });
  }

  for (const status of [400, 401, 403, 404, 409, 422]) {
    it(`does not retry ${status}`, async function () {
      answers = [{ status, body: { message: "refused" } }, { body: { ok: 1 } }];
      const error = await failure(client()({ operation: OPERATION, url: url() }));
      assert.equal(error.status, status);
      assert.equal(error.permanent, true);
      assert.equal(error.attempts, 1);
      assert.equal(server.requests.length, 1);
    });
  }

  it("gives up after two retries (three attempts), saying how many", async function () {
    answers = [{ status: 503, body: { message: "service unavailable" } }];
    const error = await failure(client()({ operation: OPERATION, url: url() }));
    assert.equal(server.requests.length, 3);
    assert.equal(attempts, 3);
    assert.equal(error.attempts, 3);
    assert.equal(error.permanent, false);
    assert.equal(error.message, `${SERVICE} ${OPERATION} failed after 3 attempts: HTTP 503: {"message":"service unavailable"}`);
  });

  it("makes as many retries as configured, and no more", async function () {
    answers = [{ status: 500, body: "" }];
    for (const retries of [0, 1]) {
      server.requests.length = 0;
      const error = await failure(client({ retries })({ operation: OPERATION, url: url() }));
      assert.equal(server.requests.length, retries + 1);
      assert.equal(error.attempts, retries + 1);
    }
  });

  it("names the service, the operation, the status and the start of the body in its errors", async function () {
    const page = `<html><body>${"maintenance ".repeat(60)}</body></html>`;
    answers = [{ status: 403, headers: { "content-type": "text/html" }, body: page }];
    const error = await failure(client()({ operation: OPERATION, url: url() }));
    assert.equal(error.service, SERVICE);
    assert.equal(error.operation, OPERATION);
    assert.equal(error.message, `${SERVICE} ${OPERATION} failed: HTTP 403: ${page.slice(0, 300)}…`);
    assert.equal(error.name, "HttpServiceError");
  });

  it("says when the body was empty", async function () {
    answers = [{ status: 401 }];
    const error = await failure(client()({ operation: OPERATION, url: url() }));
    assert.equal(error.message, `${SERVICE} ${OPERATION} failed: HTTP 401: (empty body)`);
  });

  it("retries an attempt that gets no answer within the timeout, and says so when none does", async function () {
    answers = [{ delayMs: 1000, body: { late: true } }];
    const request = client({ timeoutMs: 100 });
    const error = await failure(request({ operation: OPERATION, url: url() }));
    assert.equal(server.requests.length, 3);
    assert.equal(error.status, undefined);
    assert.equal(error.message, `${SERVICE} ${OPERATION} failed after 3 attempts: no answer within 100 ms`);
  });

  it("succeeds when a retry answers in time after a timeout", async function () {
    answers = [{ delayMs: 1000, body: { late: true } }, { body: { onTime: true } }];
    const response = await client({ timeoutMs: 100 })({ operation: OPERATION, url: url() });
    assert.deepEqual(response.body, { onTime: true });
    assert.equal(server.requests.length, 2);
  });

  it("retries a network failure, and names the cause when it persists", async function () {
    const closed = await WireServer.start(() => ({}));
    const closedUrl = `${closed.url}/arai/v1/accounts/gu-1/activity`;
    await closed.close();
    const error = await failure(client()({ operation: OPERATION, url: closedUrl }));
    assert.equal(attempts, 3);
    assert.equal(error.status, undefined);
    assert.equal(error.permanent, false);
    assert.match(error.message, new RegExp(`^${SERVICE} ${OPERATION} failed after 3 attempts: fetch failed \\(ECONNREFUSED\\)$`));
  });

  it("reports a 2xx answer that is not JSON, with its start", async function () {
    answers = [{ headers: { "content-type": "text/html" }, body: "<html>maintenance</html>" }];
    const error = await failure(client({ retries: 0 })({ operation: OPERATION, url: url() }));
    assert.equal(error.status, 200);
    assert.equal(error.message, `${SERVICE} ${OPERATION} failed: HTTP 200: answer is not JSON: <html>maintenance</html>`);
  });

  it("reads the headers for every attempt (rotated credentials are used on the retry)", async function () {
    answers = [{ status: 503 }, { body: {} }];
    let reads = 0;
    await client({ headers: () => ({ authorization: `Basic v${++reads}` }) })({ operation: OPERATION, url: url() });
    assert.deepEqual(
      server.requests.map((request) => request.headers.authorization),
      ["Basic v1", "Basic v2"],
    );
  });
});
