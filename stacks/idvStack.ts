/**
 * The identity-verification stack (docs/flows.md#identity-verification): checkLiveness and
 * handleEvent, and the regional REST API on its custom domain through which Persona's webhooks
 * reach handleEvent.
 *
 *   Persona ─▶ https://<inventoryCode>-gateway-<env>.verifiedfan.<zone>/webhooks/persona
 *            ─▶ request validation (body model, signature header) ─▶ handleEvent ─▶ sessions
 *   AppSync ─▶ checkLiveness (tiers, sessions, Persona inquiries, decision tokens)
 */
import { createHash } from "node:crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { assumeRolePolicy, policyDocument } from "../components/iam";
import { Component } from "../components/component";
import type { RegionalPlatform } from "../components/platform";
import { SecretDocument } from "../components/secretDocument";
import { type LogShippingTarget, WorkerFunction } from "../components/workerFunction";
import { checkLiveness } from "../workers/checkLiveness";
import { handleEvent } from "../workers/handleEvent";
import { personaWebhookSchema } from "../workers/shared/idv/webhook";
import type { StackConfig } from "./config";

export interface IdvStackArgs {
  /** The region the stack deploys to: the one whose fan-identity table holds the sessions. */
  readonly platform: RegionalPlatform;
  /** The stack's `idv` configuration: the API's zone, Persona, the signing key id, the tiers, the throttling. */
  readonly idv: StackConfig["idv"];
  /**
   * The AppSync API allowed to invoke both workers; without it neither grants AppSync anything.
   * @example "arn:aws:appsync:us-east-1:123456789012:apis/abcdefghijklmnopqrstuvwxyz"
   */
  readonly appsyncApiArn?: string;
  /** The region's fan-identity table, where sessions are kept. */
  readonly table: {
    /** The table's name, the workers' `TABLE_NAME`. */
    readonly name: pulumi.Input<string>;
    /** The table's ARN, which the workers' session grants are scoped to. */
    readonly arn: pulumi.Input<string>;
  };
  /** The values of the stack's Secrets Manager documents; each should be a Pulumi secret. */
  readonly secrets: {
    /** Persona's API key, with which checkLiveness creates inquiries. */
    readonly personaApiKey: pulumi.Input<string>;
    /** Persona's webhook signing secrets, which handleEvent checks signatures against: two during rotation. */
    readonly personaWebhookSecrets: pulumi.Input<string[]>;
    /** The RSA private key (PKCS#8 PEM) checkLiveness signs its decision tokens with. */
    readonly decisionSigningKey: pulumi.Input<string>;
  };
  /**
   * Where both workers' logs are sent: the central log stream.
   * @default none: the logs stay in CloudWatch
   */
  readonly logShipping?: LogShippingTarget;
}

/** The webhook route. */
export const WEBHOOK_PATH = ["webhooks", "persona"] as const;
const SIGNATURE_HEADER = "method.request.header.Persona-Signature";

/** The webhook body's request model: Persona's event schema, as handleEvent validates it, in JSON Schema draft 4. */
export function webhookModelSchema(): string {
  return JSON.stringify(z.toJSONSchema(personaWebhookSchema(), { target: "draft-4" }));
}

export class IdvStack extends Component {
  readonly checkLiveness: WorkerFunction;
  readonly handleEvent: WorkerFunction;
  readonly api: aws.apigateway.RestApi;
  readonly stage: aws.apigateway.Stage;
  /** The webhook URL to give Persona. */
  readonly webhookUrl: pulumi.Output<string>;
  readonly domainName: string;

  constructor(name: string, args: IdvStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:stacks:IdvStack", name, args.platform, opts);
    const { platform, idv } = args;
    const child = { parent: this };
    const tags = platform.tags;
    const { environment, inventoryCode } = platform.settings;
    this.domainName = `${inventoryCode}-gateway-${environment}.verifiedfan.${idv.zone}`;

    // The workers. A fan's last approval is kept as long as any tier looks back.
    const approvalRetentionDays = Math.max(idv.tiers.highDays, idv.tiers.mediumDays, idv.tiers.asuDays);
    const document = (id: string, description: string, value: pulumi.Input<Record<string, unknown>>) =>
      new SecretDocument(`${name}-${id}`, { platform, name: id, description, document: value }, child);
    const personaKey = document("persona-api-key", "Persona API key, for creating inquiries", {
      apiKey: args.secrets.personaApiKey,
    });
    const webhookSecrets = document("persona-webhook-secrets", "Persona webhook signing secrets (two during rotation)", {
      secrets: args.secrets.personaWebhookSecrets,
    });
    const signingKey = document("decision-signing-key", "RSA key signing liveness decision tokens", {
      privateKey: args.secrets.decisionSigningKey,
      keyId: idv.signingKeyId,
    });

    this.checkLiveness = new WorkerFunction(
      `${name}-checkLiveness`,
      {
        worker: checkLiveness,
        platform,
        // Persona may take three tries of PERSONA_TIMEOUT_MS each before the fail-safe answer.
        timeoutSeconds: Math.ceil((3 * idv.persona.timeoutMs) / 1000) + 5,
        environment: {
          TABLE_NAME: args.table.name,
          PERSONA_API_URL: idv.persona.apiUrl,
          PERSONA_INQUIRY_TEMPLATE_ID: idv.persona.inquiryTemplateId,
          PERSONA_API_KEY_SECRET_ARN: personaKey.arn,
          PERSONA_TIMEOUT_MS: String(idv.persona.timeoutMs),
          SIGNING_KEY_SECRET_ARN: signingKey.arn,
          HIGH_TIER_DAYS: String(idv.tiers.highDays),
          MEDIUM_TIER_DAYS: String(idv.tiers.mediumDays),
          LOW_TIER_SCORE_BELOW: String(idv.tiers.lowScoreBelow),
          ASU_ARM_ABOVE: String(idv.tiers.asuArmAbove),
          ASU_SCORE_BELOW: String(idv.tiers.asuScoreBelow),
          ASU_DAYS: String(idv.tiers.asuDays),
          COOLDOWN_SECONDS: String(idv.tiers.cooldownSeconds),
          APPROVAL_RETENTION_DAYS: String(approvalRetentionDays),
          VERIFICATION_TYPES: idv.verificationTypes.join(","),
        },
        grants: {
          dynamodb_idv_sessions: [args.table.arn],
          persona_api_key: [personaKey.arn],
          decision_signing_key: [signingKey.arn],
        },
        logShipping: args.logShipping,
      },
      child,
    );
    this.handleEvent = new WorkerFunction(
      `${name}-handleEvent`,
      {
        worker: handleEvent,
        platform,
        timeoutSeconds: 10,
        environment: {
          TABLE_NAME: args.table.name,
          WEBHOOK_SECRETS_ARN: webhookSecrets.arn,
          VERIFICATION_TYPES: idv.verificationTypes.join(","),
          APPROVAL_RETENTION_DAYS: String(approvalRetentionDays),
        },
        grants: { dynamodb_idv_sessions: [args.table.arn], webhook_secrets: [webhookSecrets.arn] },
        logShipping: args.logShipping,
      },
      child,
    );
    if (args.appsyncApiArn) {
      for (const fn of [this.checkLiveness, this.handleEvent]) {
        fn.allowAppSync(`${name}-${fn.workerName}-appsync-invoke`, args.appsyncApiArn, child);
      }
    }

    // The REST API: regional, reachable only through its custom domain.
    this.api = new aws.apigateway.RestApi(
      `${name}-api`,
      {
        name: platform.name("idv-api", "restApi"),
        description: "Persona webhooks for identity verification",
        endpointConfiguration: { types: "REGIONAL" },
        disableExecuteApiEndpoint: true,
        tags,
      },
      child,
    );
    const webhooks = new aws.apigateway.Resource(
      `${name}-webhooks`,
      { restApi: this.api.id, parentId: this.api.rootResourceId, pathPart: WEBHOOK_PATH[0] },
      child,
    );
    const persona = new aws.apigateway.Resource(
      `${name}-webhooks-persona`,
      { restApi: this.api.id, parentId: webhooks.id, pathPart: WEBHOOK_PATH[1] },
      child,
    );
    const modelSchema = webhookModelSchema();
    const model = new aws.apigateway.Model(
      `${name}-webhook-model`,
      { restApi: this.api.id, name: "PersonaWebhook", contentType: "application/json", schema: modelSchema },
      child,
    );
    const validator = new aws.apigateway.RequestValidator(
      `${name}-validator`,
      { restApi: this.api.id, name: "body-and-parameters", validateRequestBody: true, validateRequestParameters: true },
      child,
    );
    const method = new aws.apigateway.Method(
      `${name}-webhook-post`,
      {
        restApi: this.api.id,
        resourceId: persona.id,
        httpMethod: "POST",
        // Persona signs each request; the signature is checked by handleEvent.
        authorization: "NONE",
        requestValidatorId: validator.id,
        requestModels: { "application/json": model.name },
        requestParameters: { [SIGNATURE_HEADER]: true },
      },
      child,
    );
    const integration = new aws.apigateway.Integration(
      `${name}-webhook-integration`,
      {
        restApi: this.api.id,
        resourceId: persona.id,
        httpMethod: method.httpMethod,
        type: "AWS_PROXY",
        integrationHttpMethod: "POST",
        uri: this.handleEvent.function.invokeArn,
      },
      child,
    );
    new aws.lambda.Permission(
      `${name}-apigateway-invoke`,
      {
        action: "lambda:InvokeFunction",
        function: this.handleEvent.function.name,
        principal: "apigateway.amazonaws.com",
        sourceArn: pulumi.interpolate`${this.api.executionArn}/*/POST/${WEBHOOK_PATH.join("/")}`,
      },
      child,
    );
    for (const [type, errorType] of [
      ["BAD_REQUEST_BODY", "InvalidEvent"],
      ["BAD_REQUEST_PARAMETERS", "InvalidRequest"],
    ] as const) {
      new aws.apigateway.Response(
        `${name}-${type.toLowerCase().replace(/_/g, "-")}`,
        {
          restApiId: this.api.id,
          responseType: type,
          statusCode: "400",
          responseTemplates: {
            "application/json": `{"errorType":"${errorType}","message":$context.error.validationErrorString,"requestId":"$context.requestId"}`,
          },
        },
        child,
      );
    }

    // Deployed again whenever a route, the model or the integration changes.
    const deployment = new aws.apigateway.Deployment(
      `${name}-deployment`,
      {
        restApi: this.api.id,
        triggers: {
          redeployment: pulumi
            .all([persona.id, method.id, integration.id, integration.uri, model.id, validator.id])
            .apply((parts) =>
              createHash("sha256")
                .update(JSON.stringify([...parts, modelSchema]))
                .digest("hex"),
            ),
        },
      },
      { parent: this, dependsOn: [method, integration, model, validator] },
    );

    // Access and execution logs, through the account-level CloudWatch role API Gateway needs.
    const account = this.cloudWatchRole(name, platform);
    const accessLogs = new aws.cloudwatch.LogGroup(
      `${name}-access-logs`,
      {
        name: platform.logGroupName("apigateway", platform.name("idv-api", "restApi")),
        retentionInDays: platform.settings.lambda.logRetentionDays,
        tags,
      },
      child,
    );
    const executionLogs = new aws.cloudwatch.LogGroup(
      `${name}-execution-logs`,
      {
        name: platform.executionLogGroupName(this.api.id, environment),
        retentionInDays: platform.settings.lambda.logRetentionDays,
        tags,
      },
      child,
    );
    this.stage = new aws.apigateway.Stage(
      `${name}-stage`,
      {
        restApi: this.api.id,
        deployment: deployment.id,
        stageName: environment,
        accessLogSettings: {
          destinationArn: accessLogs.arn,
          format: JSON.stringify({
            requestId: "$context.requestId",
            ip: "$context.identity.sourceIp",
            requestTime: "$context.requestTime",
            httpMethod: "$context.httpMethod",
            path: "$context.path",
            status: "$context.status",
            responseLength: "$context.responseLength",
            integrationStatus: "$context.integration.status",
            integrationLatency: "$context.integration.latency",
            error: "$context.error.message",
          }),
        },
        tags,
      },
      { parent: this, dependsOn: [account, executionLogs] },
    );
    new aws.apigateway.MethodSettings(
      `${name}-method-settings`,
      {
        restApi: this.api.id,
        stageName: this.stage.stageName,
        methodPath: "*/*",
        settings: {
          loggingLevel: "INFO",
          metricsEnabled: true,
          dataTraceEnabled: false,
          throttlingRateLimit: idv.throttling.rateLimit,
          throttlingBurstLimit: idv.throttling.burstLimit,
        },
      },
      child,
    );

    // The custom domain, its DNS-validated certificate, and its CNAME in the public zone.
    const zone = aws.route53.getZoneOutput(
      { name: `verifiedfan.${idv.zone}`, privateZone: false },
      { provider: platform.provider },
    );
    const certificate = new aws.acm.Certificate(
      `${name}-certificate`,
      { domainName: this.domainName, validationMethod: "DNS", tags },
      child,
    );
    const validation = certificate.domainValidationOptions.apply((options) => options[0]!);
    const validationRecord = new aws.route53.Record(
      `${name}-certificate-validation-record`,
      {
        zoneId: zone.zoneId,
        name: validation.resourceRecordName,
        type: validation.resourceRecordType,
        records: [validation.resourceRecordValue],
        ttl: 300,
        allowOverwrite: true,
      },
      child,
    );
    const validated = new aws.acm.CertificateValidation(
      `${name}-certificate-validation`,
      { certificateArn: certificate.arn, validationRecordFqdns: [validationRecord.fqdn] },
      child,
    );
    const domain = new aws.apigateway.DomainName(
      `${name}-domain`,
      {
        domainName: this.domainName,
        regionalCertificateArn: validated.certificateArn,
        endpointConfiguration: { types: "REGIONAL" },
        securityPolicy: "TLS_1_2",
        tags,
      },
      child,
    );
    new aws.apigateway.BasePathMapping(
      `${name}-base-path`,
      { restApi: this.api.id, stageName: this.stage.stageName, domainName: domain.domainName },
      child,
    );
    new aws.route53.Record(
      `${name}-cname`,
      { zoneId: zone.zoneId, name: this.domainName, type: "CNAME", ttl: 300, records: [domain.regionalDomainName] },
      child,
    );

    this.webhookUrl = pulumi.output(`https://${this.domainName}/${WEBHOOK_PATH.join("/")}`);
    this.registerOutputs({ webhookUrl: this.webhookUrl, apiId: this.api.id });
  }

  /**
   * API Gateway writes logs with one role per account and region (the `Account` setting); the
   * stage's logging depends on it being set first.
   */
  private cloudWatchRole(name: string, platform: RegionalPlatform): aws.apigateway.Account {
    const role = new aws.iam.Role(
      `${name}-apigateway-logs-role`,
      {
        name: platform.name("apigateway-cloudwatch-role", "iamRole"),
        description: "Lets API Gateway write this account's execution and access logs in the region",
        assumeRolePolicy: assumeRolePolicy("apigateway.amazonaws.com"),
        tags: platform.tags,
      },
      { parent: this },
    );
    new aws.iam.RolePolicy(
      `${name}-apigateway-logs`,
      {
        name: "apigateway_cloudwatch_logs",
        role: role.id,
        policy: policyDocument([
          {
            actions: [
              "logs:CreateLogGroup",
              "logs:CreateLogStream",
              "logs:DescribeLogGroups",
              "logs:DescribeLogStreams",
              "logs:PutLogEvents",
              "logs:GetLogEvents",
              "logs:FilterLogEvents",
            ],
            resources: [platform.arn("logs", "log-group:*")],
          },
        ]),
      },
      { parent: this },
    );
    return new aws.apigateway.Account(`${name}-apigateway-account`, { cloudwatchRoleArn: role.arn }, { parent: this });
  }
}
