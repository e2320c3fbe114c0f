/**
 * The local gateway (tools/local/gateway.ts) with a fake invoke: AppSync's path through the
 * Lambda authoriser to a resolver (401 when it denies, its resolverContext in the resolver's
 * event, 404 for a function AppSync may not invoke), and the REST route as API Gateway runs it:
 * required headers and the body model validated first and refused with the API's gateway
 * responses, then the proxy event as handleEvent reads it and the function's proxy result back;
 * and Lambda's Invoke API, as the AWS SDK's Lambda client calls it.
 */
import * as assert from "node:assert/strict";
import { InvokeCommand, LambdaClient, ResourceNotFoundException } from "@aws-sdk/client-lambda";
import { type Gateway, startGateway } from "../tools/local/gateway";
import type { InvokeOutcome } from "../tools/local/lambda/pool";
import type { ApiRoute, Wiring } from "../tools/local/wiring";
import { headerValue, webhookRequest } from "../workers/handleEvent";
import type { WorkerName } from "../workers/registry";
import { plannedFunction } from "./support/local";

const ACCOUNT = "210987654321";
const APPSYNC_API = `arn:aws:appsync:us-east-1:${ACCOUNT}:apis/qa1graphqlapi0000000000000`;
const fn = (worker: WorkerName) => plannedFunction({ name: `vfid-qa1-us-east-1-${worker}`, worker });

const AUTHORIZER = fn("validateToken");
const GET_ARM_SCORE = fn("getArmScore");
const HANDLE_EVENT = fn("handleEvent");
const LOOKUP_ARAI = fn("lookupArai");

/** The gateway responses' template, as stacks/idvStack.ts declares it. */
const template = (errorType: string) =>
  `{"errorType":"${errorType}","message":$context.error.messageString,"validationErrors":"$context.error.validationErrorString","requestId":"$context.requestId"}`;

const ROUTE: ApiRoute = {
  api: "vfidqa1useapi",
  stage: "qa1",
  method: "POST",
  path: "/webhooks/persona",
  functionName: HANDLE_EVENT.name,
  requiredHeaders: ["persona-signature"],
  requiredQueryStrings: [],
  bodySchema: {
    $schema: "http://json-schema.org/draft-04/schema#",
    type: "object",
    properties: {
      data: {
        type: "object",
        properties: { type: { type: "string", enum: ["event"] }, id: { type: "string", minLength: 1 } },
        required: ["type", "id"],
      },
    },
    required: ["data"],
    additionalProperties: false,
  },
  responses: {
    BAD_REQUEST_BODY: { statusCode: 422, template: template("InvalidEvent") },
    BAD_REQUEST_PARAMETERS: { statusCode: 400, template: template("InvalidRequest") },
  },
};

const WIRING: Wiring = {
  functions: [AUTHORIZER, GET_ARM_SCORE, HANDLE_EVENT, LOOKUP_ARAI],
  mappings: [],
  queues: [],
  tables: [],
  streams: [],
  asyncConfigs: [],
  grants: [
    ...[AUTHORIZER, GET_ARM_SCORE, HANDLE_EVENT].map((planned) => ({
      functionName: planned.name,
      principal: "appsync.amazonaws.com",
      sourceArn: APPSYNC_API,
    })),
    {
      functionName: HANDLE_EVENT.name,
      principal: "apigateway.amazonaws.com",
      sourceArn: `arn:aws:execute-api:us-east-1:${ACCOUNT}:vfidqa1useapi/*/POST/webhooks/persona`,
    },
  ],
  routes: [ROUTE],
};

const ok = (result: unknown): InvokeOutcome => ({ requestId: "req", coldStart: false, ms: 1, result });
const failed = (errorType = "Error", errorMessage = "boom"): InvokeOutcome => ({
  requestId: "req",
  coldStart: false,
  ms: 1,
  error: { kind: "error", errorType, errorMessage },
});

const VALID_BODY = JSON.stringify({ data: { type: "event", id: "evt_1" } });
const SIGNATURE = "t=1795511702,v1=0f3c9a8e7d6b5a4c3b2a1f0e9d8c7b6a5";

describe("the local gateway", function () {
  let gateway: Gateway;
  let calls: { functionName: string; event: Record<string, unknown> }[];
  let answer: (functionName: string, event: Record<string, unknown>) => InvokeOutcome;

  before(async function () {
    gateway = await startGateway({
      wiring: WIRING,
      accountId: ACCOUNT,
      authorizer: AUTHORIZER.name,
      invoke: async (functionName, event) => {
        calls.push({ functionName, event: event as Record<string, unknown> });
        return answer(functionName, event as Record<string, unknown>);
      },
    });
  });

  after(async function () {
    await gateway.close();
  });

  beforeEach(function () {
    calls = [];
    answer = () => assert.fail("no invocation expected");
  });

  async function post(path: string, body: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${gateway.url}${path}`, { method: "POST", body, headers });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
  }

  describe("AppSync", function () {
    const CONTEXT = { globalUserId: "gu-7f3c2a91", loggedIn: "true" };

    it("asks the authoriser first, then invokes the resolver with its arguments and the authoriser's resolverContext", async function () {
      answer = (functionName) =>
        functionName === AUTHORIZER.name
          ? ok({ isAuthorized: true, resolverContext: CONTEXT })
          : ok({ score: 0.04, armScore: 2 });
      const response = await post("/graphql/getArmScore", JSON.stringify({ arguments: { globalUserId: "gu-7f3c2a91" } }), {
        authorization: "apikey-123 sotc-456",
      });
      assert.equal(response.status, 200);
      assert.deepEqual(response.json(), { data: { getArmScore: { score: 0.04, armScore: 2 } } });
      assert.deepEqual(
        calls.map((call) => call.functionName),
        [AUTHORIZER.name, GET_ARM_SCORE.name],
      );
      const [authorizing, resolving] = calls;
      assert.equal(authorizing!.event.authorizationToken, "apikey-123 sotc-456");
      const requestContext = authorizing!.event.requestContext as Record<string, unknown>;
      assert.equal(requestContext.apiId, "qa1graphqlapi0000000000000");
      assert.equal(requestContext.accountId, ACCOUNT);
      assert.equal(typeof requestContext.requestId, "string");
      assert.deepEqual(resolving!.event.arguments, { globalUserId: "gu-7f3c2a91" });
      assert.deepEqual((resolving!.event.identity as { resolverContext: unknown }).resolverContext, CONTEXT);
      assert.equal((resolving!.event.info as { fieldName: string }).fieldName, "getArmScore");
    });

    it("answers 401 without invoking the resolver when the authoriser denies, or fails", async function () {
      for (const verdict of [ok({ isAuthorized: false }), ok({}), ok(null), failed()]) {
        calls = [];
        answer = () => verdict;
        const response = await post("/graphql/getArmScore", JSON.stringify({ arguments: {} }), { authorization: "bad" });
        assert.equal(response.status, 401, JSON.stringify(verdict));
        const errors = response.json().errors as { errorType: string }[];
        assert.equal(errors[0]!.errorType, "UnauthorizedException");
        assert.deepEqual(
          calls.map((call) => call.functionName),
          [AUTHORIZER.name],
        );
      }
    });

    it("answers 404, invoking nothing, for a function AppSync may not invoke or that is not planned", async function () {
      for (const field of ["lookupArai", "scoreUsers"]) {
        const response = await post(`/graphql/${field}`, "{}", { authorization: "apikey-123" });
        assert.equal(response.status, 404, field);
      }
      assert.deepEqual(calls, []);
    });

    it("reports the resolver's error as a GraphQL error on its field", async function () {
      answer = (functionName) =>
        functionName === AUTHORIZER.name
          ? ok({ isAuthorized: true, resolverContext: CONTEXT })
          : failed("NotFound", "no score yet");
      const response = await post("/graphql/getArmScore", JSON.stringify({ arguments: {} }), { authorization: "a" });
      assert.equal(response.status, 200);
      const body = response.json() as { data: Record<string, unknown>; errors: { path: string[]; message: string }[] };
      assert.deepEqual(body.data, { getArmScore: null });
      assert.deepEqual(body.errors[0]!.path, ["getArmScore"]);
      assert.equal(body.errors[0]!.message, "no score yet");
    });
  });

  describe("the REST route", function () {
    it("refuses a request without a required header with the BAD_REQUEST_PARAMETERS gateway response", async function () {
      const response = await post("/webhooks/persona", VALID_BODY, { "content-type": "application/json" });
      assert.equal(response.status, 400);
      const body = response.json();
      assert.equal(body.errorType, "InvalidRequest");
      assert.equal(body.message, "Missing required request parameters");
      assert.match(String(body.validationErrors), /persona-signature/i);
      assert.equal(typeof body.requestId, "string");
      assert.notEqual(body.requestId, "$context.requestId");
      assert.deepEqual(calls, []);
    });

    it("refuses a body its model does not validate with the BAD_REQUEST_BODY gateway response and its status", async function () {
      for (const body of [
        JSON.stringify({ data: { type: "event" } }),
        JSON.stringify({ data: { type: "inquiry", id: "evt_1" } }),
        JSON.stringify({ data: { type: "event", id: "evt_1" }, extra: true }),
        JSON.stringify([]),
        "not json",
        "",
      ]) {
        const response = await post("/webhooks/persona", body, {
          "content-type": "application/json",
          "persona-signature": SIGNATURE,
        });
        assert.equal(response.status, 422, body);
        assert.equal(response.json().errorType, "InvalidEvent", body);
      }
      assert.deepEqual(calls, []);
    });

    it("checks the header before the body", async function () {
      const response = await post("/webhooks/persona", "not json", { "content-type": "application/json" });
      assert.equal(response.status, 400);
      assert.equal(response.json().errorType, "InvalidRequest");
    });

    it("delivers a valid request as an API Gateway proxy event, as handleEvent reads it, and answers with its proxy result", async function () {
      answer = () =>
        ok({ statusCode: 202, headers: { "content-type": "application/json", "x-received": "yes" }, body: '{"received":true}' });
      const response = await post("/webhooks/persona?source=persona", VALID_BODY, {
        "content-type": "application/json",
        "Persona-Signature": SIGNATURE,
      });
      assert.equal(response.status, 202);
      assert.equal(response.text, '{"received":true}');
      assert.equal(response.headers.get("x-received"), "yes");

      assert.equal(calls.length, 1);
      const [{ functionName, event }] = calls as [{ functionName: string; event: Record<string, unknown> }];
      assert.equal(functionName, HANDLE_EVENT.name);
      assert.equal(event.httpMethod, "POST");
      assert.equal(event.resource, "/webhooks/persona");
      assert.equal(event.path, "/webhooks/persona");
      assert.equal(event.body, VALID_BODY, "the body exactly as sent, for the signature");
      assert.equal(event.isBase64Encoded, false);
      assert.equal(headerValue(event, "Persona-Signature"), SIGNATURE);
      assert.deepEqual(event.queryStringParameters, { source: "persona" });
      const context = event.requestContext as Record<string, unknown>;
      assert.equal(context.stage, "qa1");
      assert.equal(context.accountId, ACCOUNT);
      assert.equal(context.apiId, "vfidqa1useapi");
      assert.equal(context.httpMethod, "POST");
      assert.equal(typeof context.requestId, "string");

      // handleEvent's own reading of it.
      const read = webhookRequest(event);
      if (read.invalid !== undefined) assert.fail(read.invalid);
      assert.equal(read.request.via, "apigateway");
      assert.equal(read.request.signature, SIGNATURE);
      assert.equal(read.request.rawBody.toString("utf8"), VALID_BODY);
      assert.equal(read.request.requestId, context.requestId);
    });

    it("answers 502 when the function fails or its result is no proxy result", async function () {
      for (const outcome of [failed(), ok({ body: "no status" }), ok(null)]) {
        answer = () => outcome;
        const response = await post("/webhooks/persona", VALID_BODY, {
          "content-type": "application/json",
          "persona-signature": SIGNATURE,
        });
        assert.equal(response.status, 502, JSON.stringify(outcome));
      }
    });

    it("answers 404 for a path or method it has no route for", async function () {
      assert.equal((await post("/webhooks/other", VALID_BODY, { "persona-signature": SIGNATURE })).status, 404);
      const get = await fetch(`${gateway.url}/webhooks/persona`, { headers: { "persona-signature": SIGNATURE } });
      await get.text();
      assert.equal(get.status, 404);
      assert.deepEqual(calls, []);
    });
  });

  describe("Lambda's Invoke API", function () {
    let lambda: LambdaClient;
    before(function () {
      lambda = new LambdaClient({
        endpoint: gateway.url,
        region: "us-east-1",
        credentials: { accessKeyId: "a", secretAccessKey: "b" },
      });
    });
    after(function () {
      lambda.destroy();
    });
    const invoke = (FunctionName: string, payload: unknown, InvocationType?: "RequestResponse" | "DryRun") =>
      lambda.send(new InvokeCommand({ FunctionName, InvocationType, Payload: Buffer.from(JSON.stringify(payload)) }));
    const text = (payload?: Uint8Array) => Buffer.from(payload ?? new Uint8Array()).toString("utf8");

    it("invokes the function a name or an ARN names with the payload, and answers its result", async function () {
      answer = () => ok({ batchItemFailures: [] });
      for (const reference of [LOOKUP_ARAI.name, LOOKUP_ARAI.arn, `${LOOKUP_ARAI.arn}:$LATEST`]) {
        const response = await invoke(reference, { Records: [{ messageId: "m-1" }] });
        assert.equal(response.StatusCode, 200);
        assert.equal(response.FunctionError, undefined);
        assert.deepEqual(JSON.parse(text(response.Payload)), { batchItemFailures: [] });
      }
      assert.deepEqual(
        calls.map((call) => call.functionName),
        [LOOKUP_ARAI.name, LOOKUP_ARAI.name, LOOKUP_ARAI.name],
      );
      assert.deepEqual(calls[0]!.event, { Records: [{ messageId: "m-1" }] });
    });

    it("answers a failed invocation as Lambda does: 200, X-Amz-Function-Error Unhandled, the error as the payload", async function () {
      answer = () => failed("TypeError", "no such fan");
      const response = await invoke(LOOKUP_ARAI.name, {});
      assert.equal(response.StatusCode, 200);
      assert.equal(response.FunctionError, "Unhandled");
      assert.deepEqual(JSON.parse(text(response.Payload)), { errorType: "TypeError", errorMessage: "no such fan" });
    });

    it("answers null for a handler that returns nothing, and 204 without invoking for a dry run", async function () {
      answer = () => ok(undefined);
      assert.equal(text((await invoke(LOOKUP_ARAI.name, {})).Payload), "null");
      calls = [];
      assert.equal((await invoke(LOOKUP_ARAI.name, {}, "DryRun")).StatusCode, 204);
      assert.deepEqual(calls, []);
    });

    it("refuses a function the stack does not plan with ResourceNotFoundException", async function () {
      await assert.rejects(invoke("vfid-qa1-us-east-1-noSuchWorker", {}), (error: Error) => {
        assert.ok(error instanceof ResourceNotFoundException, `${error.name}: ${error.message}`);
        assert.match(error.message, /Function not found: vfid-qa1-us-east-1-noSuchWorker/);
        return true;
      });
      assert.deepEqual(calls, []);
    });
  });
});
