/**
 * IAM policy statements, checked where they are written: no wildcard actions, and a wildcard
 * resource only for the actions AWS offers no narrower resource for.
 */
import * as pulumi from "@pulumi/pulumi";

export interface Statement {
  readonly actions: readonly string[];
  readonly resources: readonly pulumi.Input<string>[];
}

/** Actions that AWS only authorises on `Resource: "*"` (ENI management for VPC Lambdas, X-Ray). */
export const WILDCARD_RESOURCE_ACTIONS: readonly string[] = [
  "ec2:CreateNetworkInterface",
  "ec2:DescribeNetworkInterfaces",
  "ec2:DeleteNetworkInterface",
  "ec2:AssignPrivateIpAddresses",
  "ec2:UnassignPrivateIpAddresses",
  "ec2:DescribeSubnets",
  "ec2:DescribeSecurityGroups",
  "ec2:DescribeVpcs",
  "xray:PutTraceSegments",
  "xray:PutTelemetryRecords",
];

/** Throws unless every action is spelled out and `*` resources are used only where AWS requires. */
export function checkStatement(statement: Statement, where: string): void {
  if (statement.actions.length === 0) throw new Error(`${where}: a statement needs at least one action`);
  if (statement.resources.length === 0) throw new Error(`${where}: a statement needs at least one resource`);
  for (const action of statement.actions) {
    if (action.includes("*")) throw new Error(`${where}: action "${action}" is a wildcard; list the actions needed`);
  }
  if (statement.resources.includes("*")) {
    const narrowable = statement.actions.filter((action) => !WILDCARD_RESOURCE_ACTIONS.includes(action));
    if (narrowable.length > 0) {
      throw new Error(`${where}: ${narrowable.join(", ")} on resource "*"; name the resources instead`);
    }
  }
}

/** A policy document (JSON text) allowing the given statements. */
export function policyDocument(statements: readonly Statement[]): pulumi.Output<string> {
  return pulumi.jsonStringify({
    Version: "2012-10-17",
    Statement: statements.map((statement) => ({
      Effect: "Allow",
      Action: [...statement.actions],
      Resource: [...statement.resources],
    })),
  });
}

/** A trust policy (JSON text) letting an AWS service assume a role, under `condition` when given. */
export function assumeRolePolicy(service: string, condition?: object): string {
  return JSON.stringify({
    Version: "2012-10-17",
    Statement: [
      {
        Effect: "Allow",
        Principal: { Service: service },
        Action: "sts:AssumeRole",
        ...(condition ? { Condition: condition } : {}),
      },
    ],
  });
}

/** Trust policy letting the Lambda service assume a function's role. */
export const LAMBDA_ASSUME_ROLE_POLICY = assumeRolePolicy("lambda.amazonaws.com");

/** The region an ARN names (empty for a global service's). */
export function regionOfArn(arn: string): string {
  return arn.split(":")[3] ?? "";
}
