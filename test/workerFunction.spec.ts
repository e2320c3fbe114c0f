/**
 * The WorkerFunction component holds the stacks to their workers' contracts at plan time.
 */
import { strict as assert } from "node:assert";
import { createRegionalPlatform } from "../components/platform";
import { WorkerFunction, type WorkerFunctionArgs } from "../components/workerFunction";
import { runOffline } from "../tools/offline/runtime";
import { startBotOrNotImport } from "../workers/startBotOrNotImport";
import { testPlatformSettings } from "./support/platform";
import { statementsOf } from "./support/program";

const settings = testPlatformSettings();

function deploy(args: Partial<WorkerFunctionArgs>) {
  return runOffline({
    project: "fan-identity-workers",
    stack: "qa1",
    config: {},
    secretKeys: [],
    accountId: settings.accountId,
    program: () => {
      const platform = createRegionalPlatform(settings, "us-east-1");
      const fn = new WorkerFunction("import", {
        worker: startBotOrNotImport,
        platform,
        environment: { GLUE_WORKFLOW_NAME: "vfid-qa1-bot-or-not-import" },
        grants: { glue_policy: [platform.arn("glue", "workflow/vfid-qa1-bot-or-not-import")] },
        ...args,
      });
      return { name: fn.function.name };
    },
  });
}

describe("WorkerFunction", function () {
  it("fails the plan when the stack does not set a variable the worker requires", async function () {
    await assert.rejects(
      deploy({ environment: {} }),
      /import \(worker startBotOrNotImport\): the stack does not set GLUE_WORKFLOW_NAME/,
    );
  });

  it("fails the plan when the stack sets a variable the worker never reads", async function () {
    await assert.rejects(
      deploy({ environment: { GLUE_WORKFLOW_NAME: "w", GLUE_WORKFLOW: "w" } }),
      /the stack sets GLUE_WORKFLOW, which the worker does not read/,
    );
  });

  it("fails the plan when a variable's value does not meet the contract", async function () {
    const run = await deploy({ environment: { GLUE_WORKFLOW_NAME: "not a workflow name!" } });
    assert.ok(
      run.errors.some((error) => /GLUE_WORKFLOW_NAME: expected a Glue workflow name/.test(error.message)),
      run.errors.map((error) => error.message).join("\n") || "no error",
    );
  });

  it("fails the plan when the stack grants nothing for an access the worker needs, or grants one it does not", async function () {
    await assert.rejects(deploy({ grants: {} }), /grants no resources for glue_policy \(the import's Glue workflow\)/);
    await assert.rejects(
      deploy({ grants: { glue_policy: ["arn:aws:glue:us-east-1:210987654321:workflow/w"], dynamodb: ["arn:x"] } }),
      /grants dynamodb, which the worker does not need/,
    );
  });

  it("refuses wildcard actions, and * resources for actions AWS can scope", async function () {
    await assert.rejects(
      deploy({ policies: { extra: [{ actions: ["sqs:*"], resources: ["arn:aws:sqs:us-east-1:210987654321:q"] }] } }),
      /policy extra: action "sqs:\*" is a wildcard/,
    );
    await assert.rejects(
      deploy({ policies: { extra: [{ actions: ["sqs:SendMessage"], resources: ["*"] }] } }),
      /sqs:SendMessage on resource "\*"; name the resources instead/,
    );
  });

  it("places a function in the VPC with the ENI permissions Lambda needs, and nothing else on *", async function () {
    const run = await deploy({ vpc: { subnetIds: ["subnet-a", "subnet-b"], securityGroupIds: ["sg-1"] } });
    assert.deepEqual(run.errors, []);
    const fn = run.resources.find((resource) => resource.type === "aws:lambda/function:Function")!;
    assert.deepEqual(fn.inputs.vpcConfig, { subnetIds: ["subnet-a", "subnet-b"], securityGroupIds: ["sg-1"] });
    const network = run.resources.find((resource) => resource.name === "import-network")!;
    assert.deepEqual(statementsOf(network), [
      {
        Effect: "Allow",
        Action: ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"],
        Resource: ["*"],
      },
    ]);
  });
});
