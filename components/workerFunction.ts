/**
 * One worker deployed as a Lambda function: the inline callback imported from `workers/`, a
 * role with only the statements the worker needs, a log group with retention, and the runtime,
 * timeout, memory, environment and VPC placement the stack chooses.
 *
 * The worker's contract is checked here, at plan time: a variable it requires and the stack does
 * not set, a variable the stack sets and it never reads, an access it needs and the stack does not
 * bind, all fail the plan with the worker's name. The archive holds the packages the serialized
 * worker requires, found in its code (components/archive.ts).
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
  knownVariables,
  PLATFORM_VARIABLES,
  requiredVariables,
  type WorkerContract,
  type WorkerDefinition,
} from "../workers/shared/runtime/contract";
import { describeIssues } from "../workers/shared/runtime/issues";
import { z } from "../workers/shared/zod";
import { workerArchive } from "./archive";
import { Component } from "./component";
import type { FlowRecord } from "./flows";
import { checkStatement, LAMBDA_ASSUME_ROLE_POLICY, policyDocument, type Statement } from "./iam";
import type { RegionalPlatform } from "./platform";

export interface WorkerFunctionArgs {
  /** The worker, as exported from `workers/`: its contract and its factory. */
  readonly worker: WorkerDefinition<any, any, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  readonly platform: RegionalPlatform;
  /**
   * Values of the environment variables the worker's contract reads.
   * @default {}
   */
  readonly environment?: Record<string, pulumi.Input<string>>;
  /**
   * The resources each access need of the contract is granted on, keyed like `contract.access`.
   * @example { glue_policy: [workflowArn] }
   */
  readonly grants?: Record<string, readonly pulumi.Input<string>[]>;
  /**
   * Further inline policies, by name, for what the stack wires to the function (event sources,
   * failure destinations).
   */
  readonly policies?: Record<string, readonly Statement[]>;
  /**
   * The function's timeout.
   * @default 30
   */
  readonly timeoutSeconds?: number;
  /**
   * The function's memory (and so its CPU share).
   * @default 256
   */
  readonly memoryMb?: number;
  /** Subnets and security groups, for a worker that must run inside the VPC. */
  readonly vpc?: {
    readonly subnetIds: pulumi.Input<pulumi.Input<string>[]>;
    readonly securityGroupIds: pulumi.Input<pulumi.Input<string>[]>;
    /** Name of the inline policy allowing Lambda to manage the function's network interfaces. @default "network" */
    readonly policyName?: string;
  };
  /**
   * Where an asynchronous invocation (an S3 notification, say) goes once its retries are spent;
   * an SQS queue ARN. The function's role is allowed to send to it.
   */
  readonly asyncFailureQueueArn?: pulumi.Input<string>;
  /**
   * Where the function's log group is subscribed: the central log stream, or a destination pointing at it.
   * @default none: the logs stay in CloudWatch
   */
  readonly logShipping?: LogShippingTarget;
}

/** A subscription target for log groups: a Kinesis stream with the role CloudWatch Logs writes with, or a logs destination. */
export interface LogShippingTarget {
  readonly destinationArn: pulumi.Input<string>;
  readonly roleArn?: pulumi.Input<string>;
}

export class WorkerFunction extends Component {
  readonly function: aws.lambda.Function;
  readonly role: aws.iam.Role;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly policies: aws.iam.RolePolicy[];
  /** Physical name of the Lambda function. */
  readonly functionName: string;
  /** The worker's name, from its contract. */
  readonly workerName: string;
  private readonly contract: WorkerContract;
  /** How errors name this function: `<logical name> (worker <name>)`. */
  private readonly where: string;

  constructor(name: string, args: WorkerFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:components:WorkerFunction", name, args.platform, opts);
    this.contract = args.worker.contract;
    this.workerName = this.contract.name;
    this.where = `${name} (worker ${this.workerName})`;
    this.functionName = this.platform.name(this.workerName, "lambdaFunction");

    const environment = this.checkEnvironment(args.environment ?? {});
    const statements = this.collectStatements(args);
    this.logGroup = this.createLogGroup();
    statements.logs = [
      { actions: ["logs:CreateLogStream", "logs:PutLogEvents"], resources: [pulumi.interpolate`${this.logGroup.arn}:*`] },
    ];
    if (this.platform.settings.lambda.tracing === "Active") {
      // Active tracing: Lambda sends the function's segments to X-Ray under the function's role.
      statements.tracing = [{ actions: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], resources: ["*"] }];
    }
    this.role = this.createRole();
    this.policies = this.createPolicies(statements);
    this.function = this.createFunction(args, environment);
    if (args.logShipping) this.shipLogs(args.logShipping);
    if (args.asyncFailureQueueArn) this.routeAsyncFailures(args.asyncFailureQueueArn);
    this.platform.flows.workers.push({
      workerName: this.workerName,
      functionName: this.functionName,
      dependencies: this.contract.dependencies,
      statements,
    });

    this.registerOutputs({ functionName: this.function.name, functionArn: this.function.arn, roleArn: this.role.arn });
  }

  /** The region's wiring record, which the function's mappings and invokers register into. */
  get flows(): FlowRecord {
    return this.platform.flows;
  }

  /** Lets an AppSync API invoke the function, as a resolver or as its authoriser. */
  allowAppSync(name: string, apiArn: pulumi.Input<string>, opts: pulumi.CustomResourceOptions): aws.lambda.Permission {
    return this.allowInvoke(name, { principal: "appsync.amazonaws.com", sourceArn: apiArn }, opts);
  }

  /** Lets a service invoke the function, from `sourceArn` only (and `sourceAccount`'s, when given). */
  allowInvoke(
    name: string,
    from: { readonly principal: string; readonly sourceArn: pulumi.Input<string>; readonly sourceAccount?: string },
    opts: pulumi.CustomResourceOptions,
  ): aws.lambda.Permission {
    this.flows.invokers.push({ functionName: this.functionName, sourceArn: from.sourceArn });
    return new aws.lambda.Permission(name, { action: "lambda:InvokeFunction", function: this.function.name, ...from }, opts);
  }

  /** The variables the function gets: the stack's, checked against the contract, and the platform's. */
  private checkEnvironment(given: Record<string, pulumi.Input<string>>): pulumi.Output<Record<string, string>> {
    const { contract, where } = this;
    const known = knownVariables(contract);
    const missing = requiredVariables(contract).filter((variable) => !(variable in given));
    const platformSet = Object.keys(given).filter((variable) => PLATFORM_VARIABLES.includes(variable));
    if (platformSet.length > 0) throw new Error(`${where}: ${platformSet.join(", ")} is set by the platform, not the stack`);
    const unknown = Object.keys(given).filter((variable) => !known.includes(variable));
    if (missing.length > 0) throw new Error(`${where}: the stack does not set ${missing.join(", ")}, which the worker requires`);
    if (unknown.length > 0) throw new Error(`${where}: the stack sets ${unknown.join(", ")}, which the worker does not read`);
    // Values are checked once known: a malformed URL or number fails the plan, not a cold start.
    const deployment = this.platform.deployment;
    return pulumi.output(given).apply((values): Record<string, string> => {
      const parsed = z.safeParse(contract.environment(), values);
      if (!parsed.success) {
        const problems = describeIssues(parsed.error, "");
        throw new Error(`${where}: environment does not meet the worker's contract: ${problems.join("; ")}`);
      }
      return { ...values, DEPLOYMENT: deployment };
    });
  }

  /** The role's statements by policy name: the contract's needs bound to the stack's grants, then the wiring's. */
  private collectStatements(args: WorkerFunctionArgs): Record<string, Statement[]> {
    const collected = this.bindGrants(args.grants ?? {});
    if (args.vpc) {
      collected[args.vpc.policyName ?? "network"] = [
        {
          actions: ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"],
          resources: ["*"],
        },
      ];
    }
    if (args.asyncFailureQueueArn) {
      collected.async_failure_destination = [{ actions: ["sqs:SendMessage"], resources: [args.asyncFailureQueueArn] }];
    }
    for (const [policy, policyStatements] of Object.entries(args.policies ?? {})) {
      if (policy in collected) throw new Error(`${this.where}: policy name "${policy}" is used twice`);
      collected[policy] = [...policyStatements];
    }
    for (const [policy, policyStatements] of Object.entries(collected)) {
      policyStatements.forEach((statement) => checkStatement(statement, `${this.where}, policy ${policy}`));
    }
    return collected;
  }

  /** Each access need of the contract, on the resources the stack grants it; a need left unbound or a grant unneeded fails. */
  private bindGrants(grants: Readonly<Record<string, readonly pulumi.Input<string>[]>>): Record<string, Statement[]> {
    const { access } = this.contract;
    const needed = Object.keys(access);
    const unbound = needed.filter((policy) => !(policy in grants));
    const unneeded = Object.keys(grants).filter((policy) => !needed.includes(policy));
    if (unbound.length > 0) {
      const what = unbound.map((policy) => `${policy} (${access[policy]!.on})`);
      throw new Error(`${this.where}: the stack grants no resources for ${what.join(", ")}`);
    }
    if (unneeded.length > 0)
      throw new Error(`${this.where}: the stack grants ${unneeded.join(", ")}, which the worker does not need`);
    return Object.fromEntries(
      needed.map((policy) => [policy, [{ actions: access[policy]!.actions, resources: grants[policy]! }]]),
    );
  }

  private createLogGroup(): aws.cloudwatch.LogGroup {
    return new aws.cloudwatch.LogGroup(
      this.childName("logs"),
      {
        name: this.platform.logGroupName("lambda", this.functionName),
        retentionInDays: this.platform.settings.lambda.logRetentionDays,
        tags: this.platform.tags,
      },
      this.child,
    );
  }

  private createRole(): aws.iam.Role {
    return new aws.iam.Role(
      this.childName("role"),
      {
        name: this.platform.name(`${this.workerName}-role`, "iamRole"),
        description: `Execution role of ${this.functionName}`,
        assumeRolePolicy: LAMBDA_ASSUME_ROLE_POLICY,
        tags: this.platform.tags,
      },
      this.child,
    );
  }

  private createPolicies(statements: Record<string, Statement[]>): aws.iam.RolePolicy[] {
    return Object.entries(statements).map(
      ([policyName, policyStatements]) =>
        new aws.iam.RolePolicy(
          this.childName(policyName),
          { name: policyName, role: this.role.id, policy: policyDocument(policyStatements) },
          this.child,
        ),
    );
  }

  private createFunction(args: WorkerFunctionArgs, environment: pulumi.Output<Record<string, string>>): aws.lambda.Function {
    const { settings, tags } = this.platform;
    return new aws.lambda.Function(
      this.childName("function"),
      {
        name: this.functionName,
        description: this.contract.description,
        code: workerArchive(this.workerName, args.worker.factory),
        handler: "__index.handler",
        role: this.role.arn,
        runtime: settings.lambda.runtime,
        architectures: [settings.lambda.architecture],
        timeout: args.timeoutSeconds ?? 30,
        memorySize: args.memoryMb ?? 256,
        environment: { variables: environment },
        vpcConfig: args.vpc && { subnetIds: args.vpc.subnetIds, securityGroupIds: args.vpc.securityGroupIds },
        loggingConfig: { logFormat: "JSON", logGroup: this.logGroup.name, applicationLogLevel: "INFO", systemLogLevel: "WARN" },
        tracingConfig: { mode: settings.lambda.tracing },
        tags,
      },
      // The policies first: event source mappings created against this function check its role.
      { parent: this, dependsOn: [this.logGroup, ...this.policies] },
    );
  }

  private shipLogs(target: LogShippingTarget): void {
    new aws.cloudwatch.LogSubscriptionFilter(
      this.childName("log-shipping"),
      {
        name: "log-shipping",
        logGroup: this.logGroup.name,
        filterPattern: "",
        destinationArn: target.destinationArn,
        roleArn: target.roleArn,
      },
      this.child,
    );
  }

  /** An asynchronous invocation (an S3 notification, say) goes to this queue once Lambda's two retries are spent. */
  private routeAsyncFailures(queueArn: pulumi.Input<string>): void {
    this.flows.asyncFailures.push({ functionName: this.functionName, queueArn });
    new aws.lambda.FunctionEventInvokeConfig(
      this.childName("async"),
      {
        functionName: this.function.name,
        maximumRetryAttempts: 2,
        destinationConfig: { onFailure: { destination: queueArn } },
      },
      this.child,
    );
  }
}
