/**
 * The program under Pulumi runtime mocks: every resource it registers is recorded and checked
 * against the rules every stack must keep (explicit regional providers, tags, names, least
 * privilege) and against what docs/flows.md says of the auth, bot-or-not and clustering stacks.
 */
import { strict as assert } from "node:assert";
import { NAME_RULES } from "../components/naming";
import { REQUIRED_TAG_KEYS } from "../components/platform";
import { WILDCARD_RESOURCE_ACTIONS } from "../components/iam";
import type { RecordedResource } from "../tools/offline/runtime";
import { REGISTERED } from "../workers/registry";
import { type InputStreams, type PlannedStack, planStacks, stackSection, statementsOf } from "./support/program";
import { isTaggable } from "./support/taggable";

const STACKS = ["qa1", "dev1", "preprod1", "prod1"] as const;
const FUNCTION = "aws:lambda/function:Function";
const WORKERS = REGISTERED.map(({ worker }) => worker);
const ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy";

describe("every stack, under runtime mocks", function () {
  let planned: Map<string, PlannedStack>;
  before(async function () {
    planned = await planStacks(STACKS);
  });

  for (const stack of STACKS) {
    describe(stack, function () {
      const plan = () => planned.get(stack)!;

      it("creates every AWS resource and calls every provider function through an explicit provider with a known region", function () {
        const providers = new Map(
          plan()
            .ofType("pulumi:providers:aws")
            .map((provider) => [provider.urn, provider]),
        );
        assert.ok(providers.size >= 1);
        for (const provider of providers.values()) {
          assert.match(String(provider.inputs.region), /^us-(east-1|west-2)$/, `provider ${provider.name} region`);
          // Provider inputs reach the engine as text.
          assert.deepEqual(JSON.parse(String(provider.inputs.allowedAccountIds)), [accountOf(stack)]);
        }
        for (const resource of plan().awsResources) {
          assert.ok(resource.providerUrn, `${resource.type} ${resource.name} has no explicit provider`);
          assert.ok(providers.has(resource.providerUrn), `${resource.type} ${resource.name} uses an unknown provider`);
        }
        for (const call of plan().calls) {
          assert.ok(call.providerUrn && providers.has(call.providerUrn), `${call.token} is called without an explicit provider`);
        }
      });

      it("tags every taggable resource with Environment, ProductCode, InventoryCode and iacRepo", function () {
        const taggable = plan().awsResources.filter((resource) => isTaggable(resource.type));
        assert.ok(taggable.length > 10);
        for (const resource of taggable) {
          const tags = resource.inputs.tags as Record<string, string> | undefined;
          assert.ok(tags, `${resource.type} ${resource.name} has no tags`);
          assert.deepEqual(Object.keys(tags).sort(), [...REQUIRED_TAG_KEYS].sort(), `${resource.type} ${resource.name}`);
          assert.equal(tags.Environment, stack);
          assert.equal(tags.ProductCode, "vfid");
          assert.equal(tags.InventoryCode, "fanid");
          assert.match(tags.iacRepo!, /^https:\/\//);
        }
      });

      it("names resources <productCode>-<env>-<region>-<name>, within each type's limits", function () {
        const prefixOf = (resource: RecordedResource) => `vfid-${stack}-${regionOf(plan(), resource)}-`;
        const kinds: Record<string, keyof typeof NAME_RULES> = {
          [FUNCTION]: "lambdaFunction",
          "aws:iam/role:Role": "iamRole",
          "aws:sqs/queue:Queue": "sqsQueue",
          "aws:secretsmanager/secret:Secret": "secret",
          "aws:dynamodb/table:Table": "dynamodbTable",
          "aws:kinesis/stream:Stream": "kinesisStream",
          "aws:ec2/securityGroup:SecurityGroup": "securityGroup",
        };
        let checked = 0;
        for (const resource of plan().awsResources) {
          const kind = kinds[resource.type];
          if (!kind) continue;
          const name = String(resource.inputs.name);
          const prefix = prefixOf(resource);
          assert.ok(name.startsWith(prefix), `${resource.type} ${name} does not start with ${prefix}`);
          const rule = resource.inputs.fifoQueue ? NAME_RULES.sqsFifoQueue : NAME_RULES[kind];
          assert.ok(name.length <= rule.maxLength, `${name} is longer than ${rule.maxLength}`);
          assert.match(name, rule.pattern);
          checked += 1;
        }
        assert.ok(checked >= 35);
        for (const logGroup of plan().ofType("aws:cloudwatch/logGroup:LogGroup")) {
          // Lambda's and API Gateway's log groups; API Gateway names its execution logs itself.
          const name = String(logGroup.inputs.name);
          if (name.startsWith("API-Gateway-Execution-Logs_")) continue;
          assert.match(name, new RegExp(`^/aws/(lambda|apigateway)/${prefixOf(logGroup)}`));
        }
      });

      it("spells out every IAM action, and uses a * resource only where AWS requires one", function () {
        const policies = plan().ofType(ROLE_POLICY);
        assert.ok(policies.length > 0);
        for (const policy of policies) {
          for (const statement of statementsOf(policy)) {
            assert.equal(statement.Effect, "Allow");
            for (const action of statement.Action) assert.ok(!action.includes("*"), `${policy.name}: wildcard action ${action}`);
            if (statement.Resource.includes("*")) {
              for (const action of statement.Action) {
                assert.ok(WILDCARD_RESOURCE_ACTIONS.includes(action), `${policy.name}: ${action} on resource *`);
              }
            }
          }
        }
        assert.equal(plan().ofType("aws:iam/rolePolicyAttachment:RolePolicyAttachment").length, 0, "no managed policies");
        const functionRoles = plan()
          .ofType(FUNCTION)
          .map((fn) => fn.inputs.role);
        for (const role of plan().ofType("aws:iam/role:Role")) {
          const trust = JSON.parse(String(role.inputs.assumeRolePolicy)) as { Statement: { Principal: unknown }[] };
          // Function roles trust Lambda; the others, the service they are named for.
          const service = functionRoles.includes(role.state.arn)
            ? "lambda.amazonaws.com"
            : String(role.inputs.name).endsWith("-apigateway-cloudwatch-role")
              ? "apigateway.amazonaws.com"
              : "logs.amazonaws.com";
          assert.deepEqual(
            trust.Statement.map((statement) => statement.Principal),
            [{ Service: service }],
            String(role.inputs.name),
          );
        }
      });

      it("gives every function its own role, a log group with retention, and an archive of one bundle", async function () {
        const functions = plan().ofType(FUNCTION);
        const roles = new Set(functions.map((fn) => fn.inputs.role));
        assert.equal(roles.size, functions.length);
        const workerOf = (fn: RecordedResource) =>
          WORKERS.find((worker) => String(fn.inputs.name).endsWith(`-${worker.contract.name}`));
        // dev1 runs without Kafka, so without its consumer; an optional input stream a stack
        // leaves out has no worker there.
        const streams = stackSection<{ east: { inputStreams: InputStreams } }>(stack, "scoring").east.inputStreams;
        const deployed = REGISTERED.filter(
          ({ trigger }) =>
            !(stack === "dev1" && trigger.kind === "kafka") && !(trigger.kind === "inputStream" && !streams[trigger.stream]),
        );
        for (const { worker } of deployed)
          assert.ok(
            functions.some((fn) => workerOf(fn) === worker),
            `no function for ${worker.contract.name}`,
          );
        for (const fn of functions) {
          const worker = workerOf(fn);
          assert.ok(worker, `${fn.inputs.name} runs no known worker`);
          const logGroup = plan()
            .ofType("aws:cloudwatch/logGroup:LogGroup")
            .find((group) => group.inputs.name === `/aws/lambda/${fn.inputs.name}`);
          assert.ok(logGroup, `no log group for ${fn.inputs.name}`);
          assert.ok(Number(logGroup.inputs.retentionInDays) > 0);
          assert.deepEqual(fn.inputs.loggingConfig, {
            logFormat: "JSON",
            logGroup: logGroup.inputs.name,
            applicationLogLevel: "INFO",
            systemLogLevel: "WARN",
          });
          assert.equal(fn.inputs.runtime, "nodejs24.x");

          const assets = await (fn.inputs.code as { assets: Promise<Record<string, { text?: Promise<string> }>> }).assets;
          const entries = Object.keys(assets);
          assert.ok(entries.includes("__index.js"), `${worker.contract.name}: serialization produced no handler`);
          const handler = await assets["__index.js"]!.text!;
          // A Set or Map held at module scope serializes as an empty object with borrowed methods.
          assert.ok(!/global\.(Set|Map)\.prototype/.test(handler), `${worker.contract.name} captured a Set or Map`);
          // One bundle, holding every package it uses (the plan fails on one it would still require).
          assert.deepEqual(entries, ["__index.js"], `${worker.contract.name}'s archive is more than its bundle`);
        }
      });

      it("deploys validateToken with a 15 s timeout, its JWKS settings and its API keys only by reference", function () {
        const fn = plan().find(FUNCTION, "auth-validateToken-function");
        assert.equal(fn.inputs.timeout, 15);
        assert.equal(fn.inputs.vpcConfig, undefined);
        const variables = (fn.inputs.environment as { variables: Record<string, string> }).variables;
        const domain = stack === "prod1" ? "accounts" : `accounts-${stack}`;
        assert.equal(variables.JWKS_URL, `https://${domain}.verifiedfan.example.com/.well-known/jwks.json`);
        assert.equal(variables.JWT_ISSUER, `https://${domain}.verifiedfan.example.com`);
        assert.equal(variables.JWT_AUDIENCE, "verified-fan");
        assert.equal(variables.JWT_ALGORITHMS, "RS256");
        const secret = plan().find("aws:secretsmanager/secret:Secret", "auth-api-keys-secret");
        assert.equal(variables.API_KEYS_SECRET_ARN, secret.state.arn);
        for (const value of Object.values(variables)) assert.ok(!value.includes("offline-placeholder-api-key"));

        const [policy] = plan().under("auth-validateToken-api_keys_secret");
        assert.deepEqual(statementsOf(policy!), [
          { Effect: "Allow", Action: ["secretsmanager:GetSecretValue"], Resource: [secret.state.arn] },
        ]);
      });

      it("lets only the configured AppSync API invoke validateToken", function () {
        const permissions = plan().under("auth-appsync-invoke");
        if (stack === "dev1") {
          assert.equal(permissions.length, 0, "dev1 configures no AppSync API");
          return;
        }
        assert.equal(permissions.length, 1);
        assert.equal(permissions[0]!.inputs.principal, "appsync.amazonaws.com");
        assert.match(String(permissions[0]!.inputs.sourceArn), new RegExp(`^arn:aws:appsync:us-east-1:\\d{12}:apis/${stack}`));
        assert.equal(permissions[0]!.inputs.function, `vfid-${stack}-us-east-1-validateToken`);
      });

      for (const [component, worker, workflow, prefix] of [
        ["botornot", "startBotOrNotImport", "bot-or-not-import", "bot-or-not/"],
        ["clustering", "startClusterImport", "clustering-import", "clustering/"],
      ] as const) {
        it(`${component}: may start only its own Glue workflow, and keeps exports it could not start`, function () {
          const [glue] = plan().under(`${component}-${worker}-glue_policy`);
          assert.deepEqual(statementsOf(glue!), [
            {
              Effect: "Allow",
              Action: ["glue:StartWorkflowRun"],
              Resource: [`arn:aws:glue:us-east-1:${accountOf(stack)}:workflow/vfid-${stack}-${workflow}`],
            },
          ]);
          const fn = plan().find(FUNCTION, `${component}-${worker}-function`);
          assert.deepEqual((fn.inputs.environment as { variables: object }).variables, {
            GLUE_WORKFLOW_NAME: `vfid-${stack}-${workflow}`,
            DEPLOYMENT: stack,
          });

          const failures = plan().find("aws:sqs/queue:Queue", `${component}-failures-queue`);
          assert.equal(failures.inputs.sqsManagedSseEnabled, true);
          const invokeConfig = plan().find(
            "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
            `${component}-${worker}-async`,
          );
          assert.equal(invokeConfig.inputs.maximumRetryAttempts, 2);
          assert.deepEqual(invokeConfig.inputs.destinationConfig, { onFailure: { destination: failures.state.arn } });
          const [send] = plan().under(`${component}-${worker}-async_failure_destination`);
          assert.deepEqual(statementsOf(send!)[0]!.Resource, [failures.state.arn]);
        });

        it(`${component}: is invocable by S3 only from the exports bucket and its owner account`, function () {
          const permission = plan().find("aws:lambda/permission:Permission", `${component}-s3-invoke`);
          assert.equal(permission.inputs.principal, "s3.amazonaws.com");
          assert.equal(permission.inputs.action, "lambda:InvokeFunction");
          assert.match(String(permission.inputs.sourceArn), /^arn:aws:s3:::vfid-/);
          assert.match(String(permission.inputs.sourceAccount), /^\d{12}$/);

          const notifications = plan().ofType("aws:s3/bucketNotification:BucketNotification");
          if (stack !== "dev1") {
            assert.equal(notifications.length, 0, "a bucket in another account is notified by its owner");
            return;
          }
          const targets = notifications[0]!.inputs.lambdaFunctions as Record<string, unknown>[];
          const fn = plan().find(FUNCTION, `${component}-${worker}-function`);
          assert.ok(
            targets.some(
              (target) =>
                target.lambdaFunctionArn === fn.state.arn &&
                target.filterPrefix === prefix &&
                target.filterSuffix === "_SUCCESS" &&
                JSON.stringify(target.events) === JSON.stringify(["s3:ObjectCreated:*"]),
            ),
            `no notification of ${worker} on ${prefix}*_SUCCESS`,
          );
        });
      }
    });
  }

  it("writes the exports bucket's single notification configuration once, for both imports, when the bucket is in this account", function () {
    const dev1 = planned.get("dev1")!;
    const [notification] = dev1.ofType("aws:s3/bucketNotification:BucketNotification");
    assert.equal(dev1.ofType("aws:s3/bucketNotification:BucketNotification").length, 1);
    assert.equal(notification!.inputs.bucket, "vfid-dev1-datascience-exports");
    assert.equal((notification!.inputs.lambdaFunctions as unknown[]).length, 2);
  });
});

/** The region of the provider a resource was created through. */
function regionOf(plan: PlannedStack, resource: RecordedResource): string {
  const provider = plan.resources.find((candidate) => candidate.urn === resource.providerUrn);
  return String(provider?.inputs.region);
}

const ACCOUNTS: Record<string, string> = {
  qa1: "210987654321",
  dev1: "210987654321",
  preprod1: "310987654321",
  prod1: "410987654321",
};
const accountOf = (stack: string) => ACCOUNTS[stack]!;
