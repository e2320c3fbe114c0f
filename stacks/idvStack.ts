/**
 * The identity-verification stack (docs/flows.md#identity-verification): checkLiveness and
 * handleEvent, and the regional REST API on its custom domain through which Persona's webhooks
 * reach handleEvent.
 *
 *   Persona ─▶ https://<inventoryCode>-gateway-<env>.verifiedfan.<zone>/webhooks/persona
 *            ─▶ request validation (body model, signature header) ─▶ handleEvent ─▶ sessions
 *   AppSync ─▶ checkLiveness (tiers, sessions, Persona inquiries, decision tokens)
 */
import { createHash, createPrivateKey, createPublicKey, type JsonWebKey } from "node:crypto";
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { assumeRolePolicy, policyDocument } from "../components/iam";
import { Component } from "../components/component";
import type { RegionalPlatform } from "../components/platform";
import { SecretDocument } from "../components/secretDocument";
import { type LogShippingTarget, WorkerFunction } from "../components/workerFunction";
import { checkLiveness } from "../workers/checkLiveness";
import { DECISION_TOKEN_ALGORITHM } from "../workers/checkLiveness/token";
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
  /**
   * Whether this stack sets the account's API Gateway CloudWatch role (one per account and
   * region; exactly one stack per account does). Otherwise the stack relies on the one set.
   */
  readonly manageApiGatewayAccount: boolean;
  /** X-Ray tracing of the stage, as the functions'. */
  readonly tracing: boolean;
}

/** A JSON Web Key Set: the public keys a token's verifier trusts. */
export interface Jwks {
  readonly keys: readonly (JsonWebKey & { kid: string; alg: string; use: "sig" })[];
}

/**
 * The JWKS verifying decision tokens: the public half of the signing key, named by its key id.
 * The private key never leaves the apply: only its public JWK is returned.
 */
export function decisionTokenJwks(privateKeyPem: string, keyId: string): Jwks {
  let publicJwk: JsonWebKey;
  try {
    publicJwk = createPublicKey(createPrivateKey({ key: privateKeyPem, format: "pem" })).export({ format: "jwk" });
  } catch (error) {
    // node:crypto's message names the problem (a bad PEM, an unsupported key), never the key.
    throw new Error(`decisionSigningKey: not a private key in PKCS#8 PEM (${(error as Error).message})`, { cause: error });
  }
  if (publicJwk.kty !== "RSA") {
    throw new Error(
      `decisionSigningKey: decision tokens are ${DECISION_TOKEN_ALGORITHM}, which needs an RSA key, not ${publicJwk.kty}`,
    );
  }
  return { keys: [{ ...publicJwk, kid: keyId, alg: DECISION_TOKEN_ALGORITHM, use: "sig" }] };
}

/** The webhook route. */
export const WEBHOOK_PATH = ["webhooks", "persona"] as const;
const SIGNATURE_HEADER = "method.request.header.Persona-Signature";

/** What the stage's access log records of each request. */
const ACCESS_LOG_FORMAT = JSON.stringify({
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
});

/** The webhook body's request model: Persona's event schema, as handleEvent validates it, in JSON Schema draft 4. */
export function webhookModelSchema(): string {
  return JSON.stringify(z.toJSONSchema(personaWebhookSchema(), { target: "draft-4" }));
}

type IdvConfig = IdvStackArgs["idv"];

/** The Secrets Manager documents the workers read at cold start. */
interface IdvSecrets {
  readonly personaKey: SecretDocument;
  readonly webhookSecrets: SecretDocument;
  readonly signingKey: SecretDocument;
}

/** POST /webhooks/persona: the resources a deployment of the API is a snapshot of. */
interface WebhookRoute {
  readonly resource: aws.apigateway.Resource;
  readonly model: aws.apigateway.Model;
  /** The JSON Schema the model holds. */
  readonly modelSchema: string;
  readonly validator: aws.apigateway.RequestValidator;
  readonly method: aws.apigateway.Method;
  readonly integration: aws.apigateway.Integration;
}

/** The stage's log groups, and the account setting that lets API Gateway write to them (when this stack manages it). */
interface ApiLogs {
  readonly account?: aws.apigateway.Account;
  readonly accessLogs: aws.cloudwatch.LogGroup;
  readonly executionLogs: aws.cloudwatch.LogGroup;
}

export class IdvStack extends Component {
  readonly checkLiveness: WorkerFunction;
  readonly handleEvent: WorkerFunction;
  readonly api: aws.apigateway.RestApi;
  readonly stage: aws.apigateway.Stage;
  /** The webhook URL to give Persona. */
  readonly webhookUrl: pulumi.Output<string>;
  /** The public JWKS verifying checkLiveness's decision tokens (not secret). */
  readonly decisionTokenJwks: pulumi.Output<Jwks>;
  readonly domainName: string;

  constructor(name: string, args: IdvStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:stacks:IdvStack", name, args.platform, opts);
    const { idv } = args;
    const { environment, inventoryCode } = this.platform.settings;
    this.domainName = `${inventoryCode}-gateway-${environment}.verifiedfan.${idv.zone}`;
    // A fan's last approval is kept as long as any tier looks back.
    const approvalRetentionDays = Math.max(idv.tiers.highDays, idv.tiers.mediumDays, idv.tiers.asuDays);

    const secrets = this.createSecrets(args.secrets, idv.signingKeyId);
    this.checkLiveness = this.createCheckLiveness(args, secrets, approvalRetentionDays);
    this.handleEvent = this.createHandleEvent(args, secrets, approvalRetentionDays);
    if (args.appsyncApiArn) this.allowAppSync(args.appsyncApiArn);

    const apiName = this.platform.name("idv-api", "restApi");
    this.api = this.createApi(apiName);
    const route = this.createWebhookRoute();
    this.allowWebhooks();
    this.createValidationResponses();
    const deployment = this.deployApi(route);
    const logs = this.createLogs(apiName, args.manageApiGatewayAccount);
    this.stage = this.createStage(deployment, logs, idv.throttling, args.tracing);
    this.platform.flows.apis.push({ apiName, stage: environment });
    this.createDomain(idv.zone);
    this.decisionTokenJwks = pulumi.unsecret(
      pulumi.output(args.secrets.decisionSigningKey).apply((pem) => decisionTokenJwks(pem, idv.signingKeyId)),
    );

    this.webhookUrl = pulumi.output(`https://${this.domainName}/${WEBHOOK_PATH.join("/")}`);
    this.registerOutputs({ webhookUrl: this.webhookUrl, apiId: this.api.id });
  }

  /** The Persona API key, the webhook signing secrets and the decision signing key, as Secrets Manager documents. */
  private createSecrets(values: IdvStackArgs["secrets"], signingKeyId: string): IdvSecrets {
    const document = (id: string, description: string, value: pulumi.Input<Record<string, unknown>>) =>
      new SecretDocument(this.childName(id), { platform: this.platform, name: id, description, document: value }, this.child);
    return {
      personaKey: document("persona-api-key", "Persona API key, for creating inquiries", { apiKey: values.personaApiKey }),
      webhookSecrets: document("persona-webhook-secrets", "Persona webhook signing secrets (two during rotation)", {
        secrets: values.personaWebhookSecrets,
      }),
      signingKey: document("decision-signing-key", "RSA key signing liveness decision tokens", {
        privateKey: values.decisionSigningKey,
        keyId: signingKeyId,
      }),
    };
  }

  /** checkLiveness: AppSync's liveness check, which creates Persona inquiries and signs decision tokens. */
  private createCheckLiveness(args: IdvStackArgs, secrets: IdvSecrets, approvalRetentionDays: number): WorkerFunction {
    const { idv } = args;
    return new WorkerFunction(
      this.childName("checkLiveness"),
      {
        worker: checkLiveness,
        platform: this.platform,
        // Persona may take three tries of PERSONA_TIMEOUT_MS each before the fail-safe answer.
        timeoutSeconds: Math.ceil((3 * idv.persona.timeoutMs) / 1000) + 5,
        environment: {
          TABLE_NAME: args.table.name,
          PERSONA_API_URL: idv.persona.apiUrl,
          PERSONA_INQUIRY_TEMPLATE_ID: idv.persona.inquiryTemplateId,
          PERSONA_API_KEY_SECRET_ARN: secrets.personaKey.arn,
          PERSONA_TIMEOUT_MS: String(idv.persona.timeoutMs),
          SIGNING_KEY_SECRET_ARN: secrets.signingKey.arn,
          TOKEN_AUDIENCE: idv.decisionTokenAudience,
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
          persona_api_key: [secrets.personaKey.arn],
          decision_signing_key: [secrets.signingKey.arn],
        },
        logShipping: args.logShipping,
      },
      this.child,
    );
  }

  /** handleEvent: checks each Persona webhook's signature and records the inquiry's outcome in the session. */
  private createHandleEvent(args: IdvStackArgs, secrets: IdvSecrets, approvalRetentionDays: number): WorkerFunction {
    return new WorkerFunction(
      this.childName("handleEvent"),
      {
        worker: handleEvent,
        platform: this.platform,
        timeoutSeconds: 10,
        environment: {
          TABLE_NAME: args.table.name,
          WEBHOOK_SECRETS_ARN: secrets.webhookSecrets.arn,
          VERIFICATION_TYPES: args.idv.verificationTypes.join(","),
          APPROVAL_RETENTION_DAYS: String(approvalRetentionDays),
        },
        grants: { dynamodb_idv_sessions: [args.table.arn], webhook_secrets: [secrets.webhookSecrets.arn] },
        logShipping: args.logShipping,
      },
      this.child,
    );
  }

  /** Lets the AppSync API invoke both workers. */
  private allowAppSync(appsyncApiArn: string): void {
    for (const fn of [this.checkLiveness, this.handleEvent]) {
      fn.allowAppSync(this.childName(`${fn.workerName}-appsync-invoke`), appsyncApiArn, this.child);
    }
  }

  /** The REST API: regional, reachable only through its custom domain. */
  private createApi(apiName: string): aws.apigateway.RestApi {
    return new aws.apigateway.RestApi(
      this.childName("api"),
      {
        name: apiName,
        description: "Persona webhooks for identity verification",
        endpointConfiguration: { types: "REGIONAL" },
        disableExecuteApiEndpoint: true,
        tags: this.platform.tags,
      },
      this.child,
    );
  }

  /** POST /webhooks/persona: its body checked against the model and its signature header required, then proxied to handleEvent. */
  private createWebhookRoute(): WebhookRoute {
    const restApi = this.api.id;
    const webhooks = new aws.apigateway.Resource(
      this.childName("webhooks"),
      { restApi, parentId: this.api.rootResourceId, pathPart: WEBHOOK_PATH[0] },
      this.child,
    );
    const resource = new aws.apigateway.Resource(
      this.childName("webhooks-persona"),
      { restApi, parentId: webhooks.id, pathPart: WEBHOOK_PATH[1] },
      this.child,
    );
    const modelSchema = webhookModelSchema();
    const model = new aws.apigateway.Model(
      this.childName("webhook-model"),
      { restApi, name: "PersonaWebhook", contentType: "application/json", schema: modelSchema },
      this.child,
    );
    const validator = new aws.apigateway.RequestValidator(
      this.childName("validator"),
      { restApi, name: "body-and-parameters", validateRequestBody: true, validateRequestParameters: true },
      this.child,
    );
    const method = new aws.apigateway.Method(
      this.childName("webhook-post"),
      {
        restApi,
        resourceId: resource.id,
        httpMethod: "POST",
        // Persona signs each request; the signature is checked by handleEvent.
        authorization: "NONE",
        requestValidatorId: validator.id,
        requestModels: { "application/json": model.name },
        requestParameters: { [SIGNATURE_HEADER]: true },
      },
      this.child,
    );
    const integration = new aws.apigateway.Integration(
      this.childName("webhook-integration"),
      {
        restApi,
        resourceId: resource.id,
        httpMethod: method.httpMethod,
        type: "AWS_PROXY",
        integrationHttpMethod: "POST",
        uri: this.handleEvent.function.invokeArn,
      },
      this.child,
    );
    return { resource, model, modelSchema, validator, method, integration };
  }

  /** Lets API Gateway invoke handleEvent, for the webhook route only. */
  private allowWebhooks(): void {
    this.handleEvent.allowInvoke(
      this.childName("apigateway-invoke"),
      {
        principal: "apigateway.amazonaws.com",
        sourceArn: pulumi.interpolate`${this.api.executionArn}/*/POST/${WEBHOOK_PATH.join("/")}`,
      },
      this.child,
    );
  }

  /** A request the validator refuses is answered 400 in handleEvent's error shape, with the validator's reason. */
  private createValidationResponses(): void {
    for (const [type, errorType] of [
      ["BAD_REQUEST_BODY", "InvalidEvent"],
      ["BAD_REQUEST_PARAMETERS", "InvalidRequest"],
    ] as const) {
      new aws.apigateway.Response(
        this.childName(type.toLowerCase().replace(/_/g, "-")),
        {
          restApiId: this.api.id,
          responseType: type,
          statusCode: "400",
          responseTemplates: {
            // messageString is quoted by API Gateway; validationErrorString is not, so it is quoted here.
            "application/json": `{"errorType":"${errorType}","message":$context.error.messageString,"validationErrors":"$context.error.validationErrorString","requestId":"$context.requestId"}`,
          },
        },
        this.child,
      );
    }
  }

  /**
   * The API's deployment. Deployed again whenever a route, the model or the integration
   * changes: a deployment is a snapshot of the API, and a change reaches the stage only through
   * a new one.
   */
  private deployApi(route: WebhookRoute): aws.apigateway.Deployment {
    const { resource, method, integration, model, validator } = route;
    return new aws.apigateway.Deployment(
      this.childName("deployment"),
      {
        restApi: this.api.id,
        triggers: {
          redeployment: pulumi
            .all([resource.id, method.id, integration.id, integration.uri, model.id, validator.id])
            .apply((parts) =>
              createHash("sha256")
                .update(JSON.stringify([...parts, route.modelSchema]))
                .digest("hex"),
            ),
        },
      },
      { ...this.child, dependsOn: [method, integration, model, validator] },
    );
  }

  /** Access and execution logs, through the account-level CloudWatch role API Gateway needs. */
  private createLogs(apiName: string, manageAccount: boolean): ApiLogs {
    const { settings, tags } = this.platform;
    const account = manageAccount ? this.cloudWatchRole() : undefined;
    const accessLogs = new aws.cloudwatch.LogGroup(
      this.childName("access-logs"),
      {
        name: this.platform.logGroupName("apigateway", apiName),
        retentionInDays: settings.lambda.logRetentionDays,
        tags,
      },
      this.child,
    );
    const executionLogs = new aws.cloudwatch.LogGroup(
      this.childName("execution-logs"),
      {
        name: this.platform.executionLogGroupName(this.api.id, settings.environment),
        retentionInDays: settings.lambda.logRetentionDays,
        tags,
      },
      this.child,
    );
    return { account, accessLogs, executionLogs };
  }

  /**
   * API Gateway writes logs with one role per account and region (the `Account` setting); the
   * stage's logging depends on it being set first. One stack per account manages it
   * (`manageApiGatewayAccount`): two would overwrite each other's role.
   */
  private cloudWatchRole(): aws.apigateway.Account {
    const role = new aws.iam.Role(
      this.childName("apigateway-logs-role"),
      {
        name: this.platform.name("apigateway-cloudwatch-role", "iamRole"),
        description: "Lets API Gateway write this account's execution and access logs in the region",
        assumeRolePolicy: assumeRolePolicy("apigateway.amazonaws.com"),
        tags: this.platform.tags,
      },
      this.child,
    );
    new aws.iam.RolePolicy(
      this.childName("apigateway-logs"),
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
            resources: [this.platform.arn("logs", "log-group:*")],
          },
        ]),
      },
      this.child,
    );
    return new aws.apigateway.Account(this.childName("apigateway-account"), { cloudwatchRoleArn: role.arn }, this.child);
  }

  /** The stage named after the environment, its access log, and its methods' logging, metrics and throttling. */
  private createStage(
    deployment: aws.apigateway.Deployment,
    logs: ApiLogs,
    throttling: IdvConfig["throttling"],
    tracing: boolean,
  ): aws.apigateway.Stage {
    const stage = new aws.apigateway.Stage(
      this.childName("stage"),
      {
        restApi: this.api.id,
        deployment: deployment.id,
        stageName: this.platform.settings.environment,
        accessLogSettings: { destinationArn: logs.accessLogs.arn, format: ACCESS_LOG_FORMAT },
        xrayTracingEnabled: tracing,
        tags: this.platform.tags,
      },
      { ...this.child, dependsOn: [...(logs.account ? [logs.account] : []), logs.executionLogs] },
    );
    new aws.apigateway.MethodSettings(
      this.childName("method-settings"),
      {
        restApi: this.api.id,
        stageName: stage.stageName,
        methodPath: "*/*",
        settings: {
          loggingLevel: "INFO",
          metricsEnabled: true,
          dataTraceEnabled: false,
          throttlingRateLimit: throttling.rateLimit,
          throttlingBurstLimit: throttling.burstLimit,
        },
      },
      this.child,
    );
    return stage;
  }

  /** The custom domain, its DNS-validated certificate, and its CNAME in the public zone `verifiedfan.<zone>`. */
  private createDomain(zone: string): void {
    const hostedZone = aws.route53.getZoneOutput(
      { name: `verifiedfan.${zone}`, privateZone: false },
      { provider: this.platform.provider },
    );
    const domain = new aws.apigateway.DomainName(
      this.childName("domain"),
      {
        domainName: this.domainName,
        regionalCertificateArn: this.validatedCertificate(hostedZone.zoneId),
        endpointConfiguration: { types: "REGIONAL" },
        securityPolicy: "TLS_1_2",
        tags: this.platform.tags,
      },
      this.child,
    );
    new aws.apigateway.BasePathMapping(
      this.childName("base-path"),
      { restApi: this.api.id, stageName: this.stage.stageName, domainName: domain.domainName },
      this.child,
    );
    new aws.route53.Record(
      this.childName("cname"),
      { zoneId: hostedZone.zoneId, name: this.domainName, type: "CNAME", ttl: 300, records: [domain.regionalDomainName] },
      this.child,
    );
  }

  /** The domain's certificate, once ACM has validated it through its DNS record in the zone. */
  private validatedCertificate(zoneId: pulumi.Output<string>): pulumi.Output<string> {
    const certificate = new aws.acm.Certificate(
      this.childName("certificate"),
      { domainName: this.domainName, validationMethod: "DNS", tags: this.platform.tags },
      this.child,
    );
    const validation = certificate.domainValidationOptions.apply((options) => options[0]!);
    const validationRecord = new aws.route53.Record(
      this.childName("certificate-validation-record"),
      {
        zoneId,
        name: validation.resourceRecordName,
        type: validation.resourceRecordType,
        records: [validation.resourceRecordValue],
        ttl: 300,
        allowOverwrite: true,
      },
      this.child,
    );
    const validated = new aws.acm.CertificateValidation(
      this.childName("certificate-validation"),
      { certificateArn: certificate.arn, validationRecordFqdns: [validationRecord.fqdn] },
      this.child,
    );
    return validated.certificateArn;
  }
}
