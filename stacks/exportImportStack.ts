/**
 * The bot-or-not and clustering stacks (docs/flows.md#data-science-imports): each starts its Glue workflow when a
 * Data Science export completes in the exports bucket.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { Component } from "../components/component";
import type { RegionalPlatform } from "../components/platform";
import { Queue } from "../components/queue";
import { type LogShippingTarget, WorkerFunction } from "../components/workerFunction";
import type { WorkerDefinition } from "../workers/shared/runtime/contract";
import { startBotOrNotImport } from "../workers/startBotOrNotImport";
import { startClusterImport } from "../workers/startClusterImport";
import type { StackConfig } from "./config";

export interface ExportImportStackArgs {
  /** The region the import deploys to; the Glue workflow it starts is in the same region and account. */
  readonly platform: RegionalPlatform;
  /** The Data Science exports bucket: its ARN, its owner account, and the marker each export writes last. */
  readonly dataScience: StackConfig["dataScience"];
  /**
   * This import's configuration, `botOrNot` or `clustering`: the Glue workflow it starts and the
   * key prefix of its exports.
   */
  readonly exportImport: StackConfig["botOrNot"];
  /**
   * Where the import function's logs are sent: the central log stream.
   * @default none: the logs stay in CloudWatch
   */
  readonly logShipping?: LogShippingTarget;
}

/** What the bucket's notification configuration needs to send an import its exports. */
export interface ExportNotificationTarget {
  readonly functionArn: pulumi.Output<string>;
  readonly filterPrefix: string;
  readonly filterSuffix: string;
  /** S3 checks it may invoke the function when the notification is written. */
  readonly permission: aws.lambda.Permission;
}

abstract class ExportImportStack extends Component {
  readonly importFunction: WorkerFunction;
  readonly failures: Queue;
  readonly notificationTarget: ExportNotificationTarget;

  protected constructor(
    type: string,
    name: string,
    worker: WorkerDefinition<any, any, any>, // eslint-disable-line @typescript-eslint/no-explicit-any
    args: ExportImportStackArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super(type, name, args.platform, opts);
    const { platform, dataScience, exportImport } = args;
    const workflowArn = platform.arn("glue", `workflow/${exportImport.glueWorkflowName}`);

    // An export whose workflow could not be started (after Lambda's two retries) lands here.
    this.failures = new Queue(
      this.childName("failures"),
      { platform, name: `${worker.contract.name}-failures`, retentionDays: 14, deadLetter: false },
      this.child,
    );

    this.importFunction = new WorkerFunction(
      this.childName(worker.contract.name),
      {
        worker,
        platform,
        timeoutSeconds: 30,
        environment: { GLUE_WORKFLOW_NAME: exportImport.glueWorkflowName },
        grants: { glue_policy: [workflowArn] },
        asyncFailureQueueArn: this.failures.arn,
        logShipping: args.logShipping,
      },
      this.child,
    );

    // Scoped to the bucket and its owner: another account's bucket of the same name cannot invoke.
    const permission = this.importFunction.allowInvoke(
      this.childName("s3-invoke"),
      {
        principal: "s3.amazonaws.com",
        sourceArn: dataScience.exportsBucketArn,
        sourceAccount: dataScience.bucketOwnerAccountId,
      },
      this.child,
    );

    this.notificationTarget = {
      functionArn: this.importFunction.function.arn,
      filterPrefix: exportImport.exportPrefix,
      filterSuffix: dataScience.completionMarkerSuffix,
      permission,
    };
    this.registerOutputs({ functionArn: this.importFunction.function.arn, failureQueueUrl: this.failures.url });
  }
}

export class BotOrNotStack extends ExportImportStack {
  constructor(name: string, args: ExportImportStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:stacks:BotOrNotStack", name, startBotOrNotImport, args, opts);
  }
}

export class ClusteringStack extends ExportImportStack {
  constructor(name: string, args: ExportImportStackArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:stacks:ClusteringStack", name, startClusterImport, args, opts);
  }
}

/**
 * The exports bucket's notification configuration. S3 keeps one per bucket and writing it
 * replaces the last, so it is created once for both imports, and only when the bucket is in this
 * account; for a bucket elsewhere its owner adds the notifications, and the stacks only grant
 * the invoke permission.
 */
export class ExportNotifications extends Component {
  constructor(
    name: string,
    args: {
      /** The region of the imports the notifications invoke. */
      readonly platform: RegionalPlatform;
      /** The exports bucket, in this account. */
      readonly bucketArn: string;
      /** One notification per import: its function, and the keys that complete one of its exports. */
      readonly targets: readonly ExportNotificationTarget[];
    },
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("fan-identity:stacks:ExportNotifications", name, args.platform, opts);
    new aws.s3.BucketNotification(
      this.childName("notification"),
      {
        bucket: args.bucketArn.slice("arn:aws:s3:::".length),
        lambdaFunctions: args.targets.map((target) => ({
          lambdaFunctionArn: target.functionArn,
          events: ["s3:ObjectCreated:*"],
          filterPrefix: target.filterPrefix,
          filterSuffix: target.filterSuffix,
        })),
      },
      { ...this.child, dependsOn: args.targets.map((target) => target.permission) },
    );
    this.registerOutputs({});
  }
}
