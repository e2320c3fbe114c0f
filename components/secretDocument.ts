/**
 * A JSON document in Secrets Manager, filled from Pulumi secrets. Workers read it at cold start
 * (and again after a while, so rotation needs no redeploy); the value never appears in a Lambda
 * environment, in code, or in plain configuration.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Component } from "./component";
import type { RegionalPlatform } from "./platform";

export interface SecretDocumentArgs {
  readonly platform: RegionalPlatform;
  /** Name after the prefix. */
  readonly name: string;
  readonly description: string;
  /** The document; its values should be Pulumi secrets. */
  readonly document: pulumi.Input<Record<string, unknown>>;
}

export class SecretDocument extends Component {
  readonly secret: aws.secretsmanager.Secret;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: SecretDocumentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:components:SecretDocument", name, args.platform, opts);
    this.secret = new aws.secretsmanager.Secret(
      this.childName("secret"),
      {
        name: args.platform.name(args.name, "secret"),
        description: args.description,
        recoveryWindowInDays: 7,
        tags: args.platform.tags,
      },
      this.child,
    );
    new aws.secretsmanager.SecretVersion(
      this.childName("value"),
      { secretId: this.secret.id, secretString: pulumi.secret(pulumi.jsonStringify(args.document)) },
      this.child,
    );
    this.arn = this.secret.arn;
    this.registerOutputs({ arn: this.arn });
  }
}
