/**
 * Scoring in two regions, the Kafka user-activity consumer and getArmScore, under runtime
 * mocks: the west region exists only when configured, through its own provider, with its own
 * queues, Kafka settings and configuration name, and its logs sent east.
 */
import { strict as assert } from "node:assert";
import type { RecordedResource } from "../tools/offline/runtime";
import { type PlannedStack, planStack, statementsOf } from "./support/program";

const FUNCTION = "aws:lambda/function:Function";
const ESM = "aws:lambda/eventSourceMapping:EventSourceMapping";
const SUBSCRIPTION = "aws:cloudwatch/logSubscriptionFilter:LogSubscriptionFilter";
const ACCOUNT = "410987654321";

const regionOf = (plan: PlannedStack, resource: RecordedResource) =>
  String(plan.resources.find((candidate) => candidate.urn === resource.providerUrn)?.inputs.region);
const variablesOf = (fn: RecordedResource) => (fn.inputs.environment as { variables: Record<string, string> }).variables;

describe("scoring regions, under runtime mocks", function () {
  let prod1: PlannedStack;
  let qa1: PlannedStack;
  let dev1: PlannedStack;
  before(async function () {
    [prod1, qa1, dev1] = [await planStack("prod1"), await planStack("qa1"), await planStack("dev1")];
  });

  describe("with the west region configured (prod1)", function () {
    it("creates the west scoring stack through the us-west-2 provider, and everything else in us-east-1", function () {
      const west = prod1.awsResources.filter((resource) => resource.name.startsWith("scoring-west-"));
      assert.ok(west.length > 60, `${west.length} west resources`);
      for (const resource of prod1.awsResources) {
        const expected =
          resource.name.startsWith("scoring-west-") ||
          resource.name.startsWith("log-shipping-us-west-2") ||
          resource.name.startsWith("operations-west-")
            ? "us-west-2"
            : "us-east-1";
        assert.equal(regionOf(prod1, resource), expected, `${resource.type} ${resource.name}`);
      }
    });

    it("gives the west region its own table, streams and queues", function () {
      for (const [type, logical, physical] of [
        ["aws:dynamodb/table:Table", "table", "fan-identity-table"],
        ["aws:kinesis/stream:Stream", "table-stream", "fan-identity-table-stream"],
        ["aws:sqs/queue:Queue", "activity-queue", "acct-activity-sqs.fifo"],
        ["aws:sqs/queue:Queue", "on-demand-queue", "on-demand-scoring-sqs"],
        ["aws:sqs/queue:Queue", "stream-failures-queue", "scoring-stream-failures-sqs"],
      ] as const) {
        assert.equal(prod1.find(type, `scoring-east-${logical}`).inputs.name, `vfid-prod1-us-east-1-${physical}`);
        assert.equal(prod1.find(type, `scoring-west-${logical}`).inputs.name, `vfid-prod1-us-west-2-${physical}`);
      }
      const westActivity = prod1.find("aws:sqs/queue:Queue", "scoring-west-activity-queue").state.arn;
      const westEnqueue = prod1.find(FUNCTION, "scoring-west-enqueueFromPurchaseStream-function");
      assert.equal(
        variablesOf(westEnqueue).ACTIVITY_QUEUE_URL,
        `https://sqs.us-west-2.amazonaws.com/${ACCOUNT}/vfid-prod1-us-west-2-acct-activity-sqs.fifo`,
      );
      const [producer] = prod1.under("scoring-west-enqueueFromPurchaseStream-lambda_sqs_producer");
      assert.deepEqual(statementsOf(producer!)[0]!.Resource, [westActivity]);
      const purchase = prod1.find(ESM, "scoring-west-purchase-to-enqueue");
      assert.equal(purchase.inputs.eventSourceArn, `arn:aws:kinesis:us-west-2:${ACCOUNT}:stream/purchase-stream-prod1`);
    });

    it("runs the west workers as prod1w and the east ones as prod1", function () {
      const functions = prod1.ofType(FUNCTION);
      for (const fn of functions) {
        assert.equal(variablesOf(fn).DEPLOYMENT, fn.name.startsWith("scoring-west-") ? "prod1w" : "prod1", fn.name);
      }
      assert.equal(functions.filter((fn) => fn.name.startsWith("scoring-west-")).length, 10);
    });

    it("sends the west region's logs to the east region's log stream, through a logs destination in us-west-2", function () {
      const stream = `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/central-logs-prod1`;
      const destination = prod1.find("aws:cloudwatch/logDestination:LogDestination", "log-shipping-us-west-2");
      assert.equal(regionOf(prod1, destination), "us-west-2");
      assert.equal(destination.inputs.targetArn, stream);
      const role = prod1.find("aws:iam/role:Role", "log-shipping-role");
      assert.equal(destination.inputs.roleArn, role.state.arn);
      assert.deepEqual(statementsOf(prod1.find("aws:iam/rolePolicy:RolePolicy", "log-shipping-stream")), [
        { Effect: "Allow", Action: ["kinesis:PutRecord", "kinesis:PutRecords"], Resource: [stream] },
      ]);
      const policy = JSON.parse(
        String(
          prod1.find("aws:cloudwatch/logDestinationPolicy:LogDestinationPolicy", "log-shipping-us-west-2-policy").inputs
            .accessPolicy,
        ),
      );
      assert.deepEqual(policy.Statement[0].Principal, { AWS: ACCOUNT });

      const functions = prod1.ofType(FUNCTION);
      const subscriptions = prod1.ofType(SUBSCRIPTION);
      assert.equal(subscriptions.length, functions.length, "every log group is shipped");
      for (const fn of functions) {
        const subscription = subscriptions.find((candidate) => candidate.inputs.logGroup === `/aws/lambda/${fn.inputs.name}`);
        assert.ok(subscription, `${fn.inputs.name}'s logs are not shipped`);
        if (fn.name.startsWith("scoring-west-")) {
          assert.equal(subscription.inputs.destinationArn, destination.state.arn);
          assert.equal(regionOf(prod1, subscription), "us-west-2");
        } else {
          assert.equal(subscription.inputs.destinationArn, stream);
          assert.equal(subscription.inputs.roleArn, role.state.arn);
        }
      }
    });

    it("consumes each region's own Kafka topic, with its brokers, secret, app-tier subnets and security group", function () {
      for (const [side, region, topic, secret] of [
        [
          "east",
          "use1",
          "user-activity-prod1",
          `arn:aws:secretsmanager:us-east-1:${ACCOUNT}:secret:kafka-user-activity-prod1-Qx7Lp2`,
        ],
        [
          "west",
          "usw2",
          "user-activity-prod1-west",
          `arn:aws:secretsmanager:us-west-2:${ACCOUNT}:secret:kafka-user-activity-prod1-west-Wm3Rt8`,
        ],
      ] as const) {
        const esm = prod1.find(ESM, `scoring-${side}-kafka-to-enqueue`);
        const fn = prod1.find(FUNCTION, `scoring-${side}-enqueueFromActivityStream-function`);
        const group = prod1.find("aws:ec2/securityGroup:SecurityGroup", `scoring-${side}-workers-sg`);
        assert.equal(esm.inputs.functionName, fn.inputs.name);
        assert.deepEqual(esm.inputs.topics, [topic]);
        assert.deepEqual(esm.inputs.selfManagedEventSource, {
          endpoints: {
            KAFKA_BOOTSTRAP_SERVERS: [1, 2, 3].map((n) => `kafka-${n}.prod1.${region}.verifiedfan.internal:9096`).join(","),
          },
        });
        assert.deepEqual(esm.inputs.selfManagedKafkaEventSourceConfig, { consumerGroupId: "vfid-prod1-fan-identity-workers" });
        assert.deepEqual(esm.inputs.sourceAccessConfigurations, [
          { type: "SASL_SCRAM_512_AUTH", uri: secret },
          ...["a", "b", "c"].map((zone) => ({ type: "VPC_SUBNET", uri: `subnet:subnet-app0000000000000${zone}` })),
          { type: "VPC_SECURITY_GROUP", uri: `security_group:${group.inputs.name}-id` },
        ]);
        assert.equal(esm.inputs.startingPosition, "LATEST");
        assert.deepEqual(esm.inputs.provisionedPollerConfig, { minimumPollers: 1, maximumPollers: 2 });
        assert.deepEqual(esm.inputs.functionResponseTypes, ["ReportBatchItemFailures"]);
        assert.equal(esm.inputs.bisectBatchOnFunctionError, true);
        assert.equal(esm.inputs.maximumRetryAttempts, 2);
        const failures = prod1.find("aws:sqs/queue:Queue", `scoring-${side}-stream-failures-queue`).state.arn;
        assert.deepEqual(esm.inputs.destinationConfig, { onFailure: { destinationArn: failures } });

        const [policy] = prod1.under(`scoring-${side}-enqueueFromActivityStream-kafka_consumer_policy`);
        assert.deepEqual(
          statementsOf(policy!).map(({ Action, Resource }) => ({ Action, Resource })),
          [
            {
              Action: [
                "ec2:CreateNetworkInterface",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeVpcs",
                "ec2:DeleteNetworkInterface",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
              ],
              Resource: ["*"],
            },
            { Action: ["secretsmanager:GetSecretValue"], Resource: [secret] },
            { Action: ["sqs:SendMessage"], Resource: [failures] },
          ],
        );
        const activity = prod1.find("aws:sqs/queue:Queue", `scoring-${side}-activity-queue`).state.arn;
        assert.deepEqual(
          statementsOf(prod1.under(`scoring-${side}-enqueueFromActivityStream-lambda_sqs_producer`)[0]!)[0]!.Resource,
          [activity],
        );
        // It parks its poison records in the region's failure queue itself, the one onFailure names.
        const failureQueue = prod1.find("aws:sqs/queue:Queue", `scoring-${side}-stream-failures-queue`);
        assert.equal(variablesOf(fn).FAILURE_QUEUE_URL, failureQueue.state.url);
        assert.deepEqual(
          statementsOf(prod1.under(`scoring-${side}-enqueueFromActivityStream-parked_records_producer`)[0]!).map(
            ({ Action, Resource }) => ({ Action, Resource }),
          ),
          [{ Action: ["sqs:SendMessage"], Resource: [failures] }],
        );
      }
    });

    it("deploys getArmScore in each region: 6 s, app tier, the region's Redis, invocable by the AppSync API", function () {
      for (const [side, region, cluster] of [
        ["east", "use1", "true"],
        ["west", "usw2", "true"],
      ] as const) {
        const fn = prod1.find(FUNCTION, `scoring-${side}-getArmScore-function`);
        assert.equal(fn.inputs.timeout, 6);
        const vpc = fn.inputs.vpcConfig as { subnetIds: string[] };
        assert.ok(vpc.subnetIds.every((id) => id.startsWith("subnet-app")));
        const { DEPLOYMENT: _deployment, ...redis } = variablesOf(fn);
        assert.deepEqual(redis, {
          ARM_REDIS_URL: `redis://arm-scores.prod1.${region}.verifiedfan.internal:6379`,
          ARM_REDIS_READ_ONLY_URL: `redis://arm-scores-ro.prod1.${region}.verifiedfan.internal:6379`,
          ARM_REDIS_CLUSTER_MODE: cluster,
        });
        const permission = prod1.find("aws:lambda/permission:Permission", `scoring-${side}-getArmScore-appsync-invoke`);
        assert.equal(permission.inputs.principal, "appsync.amazonaws.com");
        assert.equal(permission.inputs.function, fn.inputs.name);
        const policies = prod1
          .under(`scoring-${side}-getArmScore-`)
          .filter((resource) => resource.type === "aws:iam/rolePolicy:RolePolicy");
        // Its log group and X-Ray tracing (prod1 traces actively), and its network interfaces.
        assert.deepEqual(
          policies.map((policy) => policy.inputs.name).sort(),
          ["logs", "network", "tracing"],
          "Redis needs no IAM",
        );
      }
    });
  });

  describe("without the west region (qa1)", function () {
    it("creates nothing in us-west-2", function () {
      assert.deepEqual(
        qa1.ofType("pulumi:providers:aws").map((provider) => provider.inputs.region),
        ["us-east-1"],
      );
      assert.equal(qa1.awsResources.filter((resource) => regionOf(qa1, resource) !== "us-east-1").length, 0);
      assert.equal(qa1.under("scoring-west-").length, 0);
      assert.equal(qa1.ofType("aws:cloudwatch/logDestination:LogDestination").length, 0);
      assert.ok(!("fanIdentityTableWest" in qa1.outputs));
      assert.ok("fanIdentityTableWest" in prod1.outputs);
    });

    it("still consumes the east Kafka topic", function () {
      assert.deepEqual(qa1.find(ESM, "scoring-east-kafka-to-enqueue").inputs.topics, ["user-activity-qa1"]);
    });
  });

  describe("with Kafka disabled and no log shipping (dev1)", function () {
    it("deploys no Kafka consumer and no mapping, and leaves the logs in CloudWatch", function () {
      assert.equal(dev1.under("scoring-east-enqueueFromActivityStream").length, 0);
      assert.equal(dev1.ofType(ESM).filter((esm) => esm.inputs.topics).length, 0);
      assert.equal(dev1.ofType(SUBSCRIPTION).length, 0);
      assert.equal(dev1.under("log-shipping").length, 0);
      assert.ok(dev1.find(FUNCTION, "scoring-east-getArmScore-function"));
    });
  });
});
