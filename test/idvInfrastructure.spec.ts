/**
 * The identity-verification stack under runtime mocks, against docs/flows.md#identity-verification:
 * endpoint type, disabled execute-api endpoint, validation, both 400 responses, logging, the custom
 * domain, its DNS-validated certificate and its CNAME.
 */
import { strict as assert } from "node:assert";
import Ajv from "ajv";
import { z } from "zod";
import { webhookModelSchema } from "../stacks/idvStack";
import { personaWebhookSchema } from "../workers/shared/idv/webhook";
import { fixture } from "./support/fixtures";
import { type PlannedStack, planStack, statementsOf } from "./support/program";

const ACCOUNT = "210987654321";
const DOMAIN = "fanid-gateway-qa1.verifiedfan.example.com";

describe("the identity-verification stack (qa1), under runtime mocks", function () {
  let plan: PlannedStack;
  before(async function () {
    plan = await planStack("qa1");
  });
  const one = (type: string, name: string) => plan.find(`aws:apigateway/${type}`, `idv-${name}`);

  it("creates a regional REST API whose execute-api endpoint is disabled", function () {
    const api = one("restApi:RestApi", "api");
    assert.equal(api.inputs.name, "vfid-qa1-us-east-1-idv-api");
    assert.deepEqual(api.inputs.endpointConfiguration, { types: "REGIONAL" });
    assert.equal(api.inputs.disableExecuteApiEndpoint, true);
  });

  it("routes POST /webhooks/persona to handleEvent, validating the body against the worker's own schema and the signature header", function () {
    const api = one("restApi:RestApi", "api");
    const webhooks = one("resource:Resource", "webhooks");
    const persona = one("resource:Resource", "webhooks-persona");
    assert.equal(webhooks.inputs.parentId, api.state.rootResourceId);
    assert.equal(webhooks.inputs.pathPart, "webhooks");
    assert.equal(persona.inputs.pathPart, "persona");

    const validator = one("requestValidator:RequestValidator", "validator");
    assert.equal(validator.inputs.validateRequestBody, true);
    assert.equal(validator.inputs.validateRequestParameters, true);
    const model = one("model:Model", "webhook-model");
    assert.equal(model.inputs.contentType, "application/json");
    assert.deepEqual(JSON.parse(String(model.inputs.schema)), z.toJSONSchema(personaWebhookSchema(), { target: "draft-4" }));
    assert.equal(model.inputs.schema, webhookModelSchema());

    const method = one("method:Method", "webhook-post");
    assert.equal(method.inputs.httpMethod, "POST");
    assert.equal(method.inputs.authorization, "NONE");
    assert.equal(method.inputs.requestValidatorId, `${validator.inputs.name}-id`);
    assert.deepEqual(method.inputs.requestModels, { "application/json": "PersonaWebhook" });
    assert.deepEqual(method.inputs.requestParameters, { "method.request.header.Persona-Signature": true });

    const integration = one("integration:Integration", "webhook-integration");
    const handleEvent = plan.find("aws:lambda/function:Function", "idv-handleEvent-function");
    assert.equal(integration.inputs.type, "AWS_PROXY");
    assert.equal(integration.inputs.integrationHttpMethod, "POST");
    assert.equal(integration.inputs.uri, handleEvent.state.invokeArn);
    const permission = plan.find("aws:lambda/permission:Permission", "idv-apigateway-invoke");
    assert.equal(permission.inputs.principal, "apigateway.amazonaws.com");
    assert.equal(permission.inputs.sourceArn, `${api.state.executionArn}/*/POST/webhooks/persona`);
  });

  it("answers 400 for a bad body and for bad parameters", function () {
    for (const [type, errorType] of [
      ["bad-request-body", "InvalidEvent"],
      ["bad-request-parameters", "InvalidRequest"],
    ]) {
      const response = one("response:Response", type!);
      assert.equal(response.inputs.responseType, type!.toUpperCase().replace(/-/g, "_"));
      assert.equal(response.inputs.statusCode, "400");
      const template = String((response.inputs.responseTemplates as Record<string, string>)["application/json"]);
      assert.match(template, new RegExp(`"errorType":"${errorType}"`));
      // As API Gateway fills it in: messageString comes quoted, validationErrorString bare.
      const filled = template
        .replace("$context.error.messageString", '"Invalid request body"')
        .replace("$context.error.validationErrorString", "[object has missing required properties (data)]")
        .replace("$context.requestId", "c0ffee00-0000-4000-8000-000000000000");
      assert.deepEqual(JSON.parse(filled), {
        errorType,
        message: "Invalid request body",
        validationErrors: "[object has missing required properties (data)]",
        requestId: "c0ffee00-0000-4000-8000-000000000000",
      });
    }
  });

  it("redeploys when a route, the model or the integration changes, to a stage named from the environment", function () {
    const deployment = one("deployment:Deployment", "deployment");
    assert.match(String((deployment.inputs.triggers as { redeployment: string }).redeployment), /^[0-9a-f]{64}$/);
    const stage = one("stage:Stage", "stage");
    assert.equal(stage.inputs.stageName, "qa1");
    assert.equal(stage.inputs.deployment, `${deployment.name}-id`);
  });

  it("logs access and execution to CloudWatch, through the account-level CloudWatch role", function () {
    const stage = one("stage:Stage", "stage");
    const accessLogs = plan.find("aws:cloudwatch/logGroup:LogGroup", "idv-access-logs");
    const settings = stage.inputs.accessLogSettings as { destinationArn: string; format: string };
    assert.equal(settings.destinationArn, accessLogs.state.arn);
    assert.equal(JSON.parse(settings.format).requestId, "$context.requestId");
    const executionLogs = plan.find("aws:cloudwatch/logGroup:LogGroup", "idv-execution-logs");
    assert.match(String(executionLogs.inputs.name), /^API-Gateway-Execution-Logs_\w+\/qa1$/);
    assert.ok(Number(executionLogs.inputs.retentionInDays) > 0);
    const methodSettings = one("methodSettings:MethodSettings", "method-settings");
    assert.equal(methodSettings.inputs.methodPath, "*/*");
    assert.equal((methodSettings.inputs.settings as { loggingLevel: string }).loggingLevel, "INFO");
    assert.equal((methodSettings.inputs.settings as { metricsEnabled: boolean }).metricsEnabled, true);

    const account = one("account:Account", "apigateway-account");
    const role = plan.find("aws:iam/role:Role", "idv-apigateway-logs-role");
    assert.equal(account.inputs.cloudwatchRoleArn, role.state.arn);
    assert.deepEqual(JSON.parse(String(role.inputs.assumeRolePolicy)).Statement[0].Principal, {
      Service: "apigateway.amazonaws.com",
    });
    const [policy] = statementsOf(plan.find("aws:iam/rolePolicy:RolePolicy", "idv-apigateway-logs"));
    assert.deepEqual(policy!.Resource, [`arn:aws:logs:us-east-1:${ACCOUNT}:log-group:*`]);
  });

  it("lets through a webhook with fields Persona adds, at the top and inside every object, and still refuses one missing a field", function () {
    const ajv = new Ajv({ schemaId: "auto", allErrors: true });
    ajv.addMetaSchema(require("ajv/lib/refs/json-schema-draft-04.json") as object);
    const validate = ajv.compile(JSON.parse(webhookModelSchema()) as object);
    type Body = { data: { attributes: { payload: { data: { attributes: Record<string, unknown> } } } } };
    const recorded = JSON.parse(fixture<{ body: string }>("apigateway-persona-webhook.json").body) as Body;
    const extended = structuredClone(recorded) as Body & Record<string, unknown>;
    extended.meta = { "webhook-version": "2" };
    Object.assign(extended.data, { links: { self: "/api/v1/events/evt_1" } });
    Object.assign(extended.data.attributes, { "delivered-at": "2026-11-24T18:09:16.000Z" });
    Object.assign(extended.data.attributes.payload, { included: [] });
    Object.assign(extended.data.attributes.payload.data.attributes, { "risk-level": "low" });

    assert.ok(validate(recorded), JSON.stringify(validate.errors));
    assert.ok(validate(extended), JSON.stringify(validate.errors));
    const { data: _data, ...withoutData } = extended;
    assert.equal(validate(withoutData), false, "data stays required");
  });

  it("serves the API on <inventoryCode>-gateway-<env>.verifiedfan.<zone>, with a DNS-validated certificate and a CNAME in the public zone", function () {
    const zoneCalls = plan.calls.filter((call) => call.token === "aws:route53/getZone:getZone");
    assert.deepEqual(
      zoneCalls.map((call) => call.inputs),
      [{ name: "verifiedfan.example.com", privateZone: false }],
    );
    const certificate = plan.find("aws:acm/certificate:Certificate", "idv-certificate");
    assert.equal(certificate.inputs.domainName, DOMAIN);
    assert.equal(certificate.inputs.validationMethod, "DNS");
    const validationRecord = plan.find("aws:route53/record:Record", "idv-certificate-validation-record");
    assert.equal(validationRecord.inputs.zoneId, "Z0OFFLINE0000000000");
    assert.equal(validationRecord.inputs.name, `_0ffline.${DOMAIN}.`);
    assert.equal(validationRecord.inputs.type, "CNAME");
    const validation = plan.find("aws:acm/certificateValidation:CertificateValidation", "idv-certificate-validation");
    assert.equal(validation.inputs.certificateArn, certificate.state.arn);

    const domain = one("domainName:DomainName", "domain");
    assert.equal(domain.inputs.domainName, DOMAIN);
    assert.equal(domain.inputs.regionalCertificateArn, certificate.state.arn);
    assert.deepEqual(domain.inputs.endpointConfiguration, { types: "REGIONAL" });
    assert.equal(domain.inputs.securityPolicy, "TLS_1_2");
    const mapping = one("basePathMapping:BasePathMapping", "base-path");
    assert.equal(mapping.inputs.domainName, DOMAIN);
    assert.equal(mapping.inputs.stageName, "qa1");

    const cname = plan.find("aws:route53/record:Record", "idv-cname");
    assert.deepEqual(
      { zoneId: cname.inputs.zoneId, name: cname.inputs.name, type: cname.inputs.type, records: cname.inputs.records },
      { zoneId: "Z0OFFLINE0000000000", name: DOMAIN, type: "CNAME", records: [domain.state.regionalDomainName] },
    );
    assert.equal(plan.outputs.idvWebhookUrl, `https://${DOMAIN}/webhooks/persona`);
  });

  it("binds checkLiveness's TOKEN_AUDIENCE, the decision tokens' aud, to idv.decisionTokenAudience (default verified-fan-liveness)", async function () {
    const audienceOf = (planned: PlannedStack) => {
      const fn = planned.find("aws:lambda/function:Function", "idv-checkLiveness-function");
      return (fn.inputs.environment as { variables: Record<string, string> }).variables.TOKEN_AUDIENCE;
    };
    assert.equal(audienceOf(plan), "verified-fan-liveness");
    assert.equal(
      audienceOf(await planStack("qa1", { idv: { decisionTokenAudience: "presale-backend-qa1" } })),
      "presale-backend-qa1",
    );
    await assert.rejects(planStack("qa1", { idv: { decisionTokenAudience: "" } }), /idv\.decisionTokenAudience/);
  });

  it("lets the AppSync API invoke both workers, and gives each only its table access and its own secret", function () {
    for (const worker of ["checkLiveness", "handleEvent"]) {
      const permission = plan.find("aws:lambda/permission:Permission", `idv-${worker}-appsync-invoke`);
      assert.equal(permission.inputs.principal, "appsync.amazonaws.com");
      assert.match(String(permission.inputs.sourceArn), /^arn:aws:appsync:us-east-1:\d{12}:apis\//);
    }
    const table = plan.find("aws:dynamodb/table:Table", "scoring-east-table").state.arn;
    const secret = (id: string) => plan.find("aws:secretsmanager/secret:Secret", `idv-${id}-secret`).state.arn;
    const policies = (worker: string) =>
      Object.fromEntries(
        plan
          .ofType("aws:iam/rolePolicy:RolePolicy")
          // Every function's own log group and X-Ray tracing are checked for all stacks elsewhere.
          .filter(
            (policy) => policy.name.startsWith(`idv-${worker}-`) && !["logs", "tracing"].includes(String(policy.inputs.name)),
          )
          .map((policy) => [
            policy.inputs.name as string,
            statementsOf(policy).map(({ Action, Resource }) => ({ Action, Resource })),
          ]),
      );
    assert.deepEqual(policies("checkLiveness"), {
      dynamodb_idv_sessions: [{ Action: ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], Resource: [table] }],
      persona_api_key: [{ Action: ["secretsmanager:GetSecretValue"], Resource: [secret("persona-api-key")] }],
      decision_signing_key: [{ Action: ["secretsmanager:GetSecretValue"], Resource: [secret("decision-signing-key")] }],
    });
    assert.deepEqual(policies("handleEvent"), {
      dynamodb_idv_sessions: [{ Action: ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"], Resource: [table] }],
      webhook_secrets: [{ Action: ["secretsmanager:GetSecretValue"], Resource: [secret("persona-webhook-secrets")] }],
    });
  });
});
