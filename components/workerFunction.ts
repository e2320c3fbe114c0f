/**
 * One worker deployed as a Lambda function: the inline callback imported from `workers/`, a
 * role with only the statements the worker needs, a log group with retention, and the runtime,
 * timeout, memory, environment and VPC placement the stack chooses.
 *
 * The worker's contract is checked here, at plan time: a variable it requires and the stack does
 * not set, a variable the stack sets and it never reads, an access it needs and the stack does not
 * bind, all fail the plan with the worker's name.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { knownVariables, PLATFORM_VARIABLES, requiredVariables, type WorkerDefinition } from "../workers/shared/runtime/contract";
import { describeIssues } from "../workers/shared/runtime/issues";
import { archivePackages } from "./archive";
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
  /** @default 30 */
  readonly timeoutSeconds?: number;
  /** @default 256 */
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
  /** Where the function's log group is subscribed: the central log stream, or a destination pointing at it. */
  readonly logShipping?: LogShippingTarget;
}

/** A subscription target for log groups: a Kinesis stream with the role CloudWatch Logs writes with, or a logs destination. */
export interface LogShippingTarget {
  readonly destinationArn: pulumi.Input<string>;
  readonly roleArn?: pulumi.Input<string>;
}

export class WorkerFunction extends pulumi.ComponentResource {
  readonly function: aws.lambda.CallbackFunction<unknown, unknown>;
  readonly role: aws.iam.Role;
  readonly logGroup: aws.cloudwatch.LogGroup;
  readonly policies: aws.iam.RolePolicy[];
  /** Physical name of the Lambda function. */
  readonly functionName: string;
  /** The worker's name, from its contract. */
  readonly workerName: string;

  constructor(name: string, args: WorkerFunctionArgs, opts?: pulumi.ComponentResourceOptions) {
    super("fan-identity:components:WorkerFunction", name, {}, opts);
    const { worker, platform } = args;
    const contract = worker.contract;
    const where = `${name} (worker ${contract.name})`;
    this.workerName = contract.name;
    this.functionName = platform.name(contract.name, "lambdaFunction");

    const environment = checkEnvironment();
    const statements = collectStatements();

    this.logGroup = new aws.cloudwatch.LogGroup(
      `${name}-logs`,
      {
        name: `/aws/lambda/${this.functionName}`,
        retentionInDays: platform.settings.lambda.logRetentionDays,
        tags: platform.tags,
      },
      { parent: this },
    );
    statements.logs = [
      { actions: ["logs:CreateLogStream", "logs:PutLogEvents"], resources: [pulumi.interpolate`${this.logGroup.arn}:*`] },
    ];

    this.role = new aws.iam.Role(
      `${name}-role`,
      {
        name: platform.name(`${contract.name}-role`, "iamRole"),
        description: `Execution role of ${this.functionName}`,
        assumeRolePolicy: LAMBDA_ASSUME_ROLE_POLICY,
        tags: platform.tags,
      },
      { parent: this },
    );
    this.policies = Object.entries(statements).map(
      ([policyName, policyStatements]) =>
        new aws.iam.RolePolicy(
          `${name}-${policyName}`,
          { name: policyName, role: this.role.id, policy: policyDocument(policyStatements) },
          { parent: this },
        ),
    );

    const packages = archivePackages(contract.name, contract.packages);
    this.function = new aws.lambda.CallbackFunction(
      `${name}-function`,
      {
        name: this.functionName,
        description: contract.description,
        callbackFactory: worker.factory,
        role: this.role,
        runtime: platform.settings.lambda.runtime,
        architectures: [platform.settings.lambda.architecture],
        timeout: args.timeoutSeconds ?? 30,
        memorySize: args.memoryMb ?? 256,
        environment: {
          variables: environment,
        },
        vpcConfig: args.vpc && { subnetIds: args.vpc.subnetIds, securityGroupIds: args.vpc.securityGroupIds },
        loggingConfig: { logFormat: "JSON", logGroup: this.logGroup.name, applicationLogLevel: "INFO", systemLogLevel: "WARN" },
        codePathOptions: packages,
        tags: platform.tags,
      },
      // The policies first: event source mappings created against this function check its role.
      { parent: this, dependsOn: [this.logGroup, ...this.policies] },
    );

    if (args.logShipping) {
      new aws.cloudwatch.LogSubscriptionFilter(
        `${name}-log-shipping`,
        {
          name: "log-shipping",
          logGroup: this.logGroup.name,
          filterPattern: "",
          destinationArn: args.logShipping.destinationArn,
          roleArn: args.logShipping.roleArn,
        },
        { parent: this },
      );
    }

    if (args.asyncFailureQueueArn) {
      new aws.lambda.FunctionEventInvokeConfig(
        `${name}-async`,
        {
          functionName: this.function.name,
          maximumRetryAttempts: 2,
          destinationConfig: { onFailure: { destination: args.asyncFailureQueueArn } },
        },
        { parent: this },
      );
    }

    this.registerOutputs({ functionName: this.function.name, functionArn: this.function.arn, roleArn: this.role.arn });

    /** The variables the function gets: the stack's, checked against the contract, and the platform's. */
    function checkEnvironment(): pulumi.Output<Record<string, string>> {
      const given = args.environment ?? {};
      const known = knownVariables(contract);
      const missing = requiredVariables(contract).filter((variable) => !(variable in given));
      const platformSet = Object.keys(given).filter((variable) => PLATFORM_VARIABLES.includes(variable));
      if (platformSet.length > 0) throw new Error(`${where}: ${platformSet.join(", ")} is set by the platform, not the stack`);
      const unknown = Object.keys(given).filter((variable) => !known.includes(variable));
      if (missing.length > 0)
        throw new Error(`${where}: the stack does not set ${missing.join(", ")}, which the worker requires`);
      if (unknown.length > 0) throw new Error(`${where}: the stack sets ${unknown.join(", ")}, which the worker does not read`);
      // Values are checked once known: a malformed URL or number fails the plan, not a cold start.
      return pulumi.output(given).apply((values): Record<string, string> => {
        const parsed = contract.environment().safeParse(values);
        if (!parsed.success) {
          const problems = describeIssues(parsed.error, "");
          throw new Error(`${where}: environment does not meet the worker's contract: ${problems.join("; ")}`);
        }
        return { ...values, DEPLOYMENT: platform.deployment };
      });
    }

    function collectStatements(): Record<string, Statement[]> {
      const grants = args.grants ?? {};
      const needed = Object.keys(contract.access);
      const unbound = needed.filter((policy) => !(policy in grants));
      const unneeded = Object.keys(grants).filter((policy) => !needed.includes(policy));
      if (unbound.length > 0) {
        const what = unbound.map((policy) => `${policy} (${contract.access[policy]!.on})`);
        throw new Error(`${where}: the stack grants no resources for ${what.join(", ")}`);
      }
      if (unneeded.length > 0)
        throw new Error(`${where}: the stack grants ${unneeded.join(", ")}, which the worker does not need`);

      const collected: Record<string, Statement[]> = {};
      for (const policy of needed) {
        collected[policy] = [{ actions: contract.access[policy]!.actions, resources: grants[policy]! }];
      }
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
        if (policy in collected) throw new Error(`${where}: policy name "${policy}" is used twice`);
        collected[policy] = [...policyStatements];
      }
      for (const [policy, policyStatements] of Object.entries(collected)) {
        policyStatements.forEach((statement) => checkStatement(statement, `${where}, policy ${policy}`));
      }
      return collected;
    }
  }

  /** Lets an AppSync API invoke the function, as a resolver or as its authoriser. */
  allowAppSync(name: string, apiArn: pulumi.Input<string>, opts: pulumi.CustomResourceOptions): aws.lambda.Permission {
    return new aws.lambda.Permission(
      name,
      { action: "lambda:InvokeFunction", function: this.function.name, principal: "appsync.amazonaws.com", sourceArn: apiArn },
      opts,
    );
  }
}
