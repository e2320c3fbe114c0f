/**
 * The auth stack: validateToken, the AppSync API's Lambda authoriser (docs/flows.md#authorisation).
 */
import * as pulumi from "@pulumi/pulumi";
import { Component } from "../components/component";
import type { RegionalPlatform } from "../components/platform";
import { SecretDocument } from "../components/secretDocument";
import { type LogShippingTarget, WorkerFunction } from "../components/workerFunction";
import { validateToken } from "../workers/validateToken";
import type { StackConfig } from "./config";

export interface AuthStackArgs {
  /** The region the authoriser deploys to. */
  readonly platform: RegionalPlatform;
  /**
   * The stack's `auth` configuration: the JWKS and the tokens it accepts, and the AppSync API
   * allowed to invoke the authoriser (without one, nothing is granted).
   */
  readonly auth: StackConfig["auth"];
  /** The accepted API keys (a Pulumi secret), kept in a Secrets Manager document; several during rotation. */
  readonly apiKeys: pulumi.Input<string[]>;
  /**
   * Where the authoriser's logs are sent: the central log stream.
   * @default none: the logs stay in CloudWatch
   */
  readonly logShipping?: LogShippingTarget;
}

export class AuthStack extends Component {
  readonly validateToken: WorkerFunction;

  constructor(name: string, args: AuthStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:stacks:AuthStack", name, args.platform, opts);
    const { platform, auth } = args;

    const apiKeys = new SecretDocument(
      this.childName("api-keys"),
      {
        platform,
        name: "auth-api-keys",
        description: "API keys the GraphQL authoriser accepts; several during rotation",
        document: { apiKeys: args.apiKeys },
      },
      this.child,
    );

    this.validateToken = new WorkerFunction(
      this.childName("validateToken"),
      {
        worker: validateToken,
        platform,
        timeoutSeconds: 15,
        memoryMb: 512,
        environment: {
          API_KEYS_SECRET_ARN: apiKeys.arn,
          JWKS_URL: auth.jwksUrl,
          JWKS_TIMEOUT_MS: String(auth.jwksTimeoutMs),
          JWKS_CACHE_MAX_AGE_SECONDS: String(auth.jwksCacheMaxAgeSeconds),
          JWT_ISSUER: auth.issuer,
          JWT_AUDIENCE: auth.audience.join(","),
          JWT_ALGORITHMS: auth.algorithms.join(","),
          JWT_CLOCK_TOLERANCE_SECONDS: String(auth.clockToleranceSeconds),
          JWT_USER_ID_CLAIM: auth.userIdClaim,
          AUTHORIZED_TTL_SECONDS: String(auth.authorizedTtlSeconds),
        },
        grants: { api_keys_secret: [apiKeys.arn] },
        logShipping: args.logShipping,
      },
      this.child,
    );

    // The authoriser answers every AppSync request: its duration is alarmed on (docs/operations.md).
    platform.flows.authorisers.push(this.validateToken.functionName);
    if (auth.appsyncApiArn) this.validateToken.allowAppSync(this.childName("appsync-invoke"), auth.appsyncApiArn, this.child);

    this.registerOutputs({ validateTokenArn: this.validateToken.function.arn });
  }
}
