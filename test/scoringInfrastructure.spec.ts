/**
 * The scoring stack under runtime mocks, against docs/data-model.md#table and
 * docs/flows.md#event-sources: the table, its stream, the queues, every event source mapping and
 * every function's policies.
 */
import { strict as assert } from "node:assert";
import { WORKERS } from "../workers/registry";
import { deliversKinesisRecord } from "./support/eventFilter";
import { fixture } from "./support/fixtures";
import { type PlannedStack, planStack, statementsOf } from "./support/program";
import type { RecordedResource } from "../tools/offline/runtime";

const ACCOUNT = "410987654321";
const PREFIX = "vfid-prod1-us-east-1";
const ESM = "aws:lambda/eventSourceMapping:EventSourceMapping";
const inputStream = (name: string) => `arn:aws:kinesis:us-east-1:${ACCOUNT}:stream/${name}-prod1`;

describe("the scoring stack (prod1, us-east-1), under runtime mocks", function () {
  let plan: PlannedStack;
  before(async function () {
    plan = await planStack("prod1");
  });

  const fn = (worker: string) => plan.find("aws:lambda/function:Function", `scoring-east-${worker}-function`);
  const policies = (worker: string) =>
    Object.fromEntries(
      plan
        .ofType("aws:iam/rolePolicy:RolePolicy")
        .filter((policy) => policy.name.startsWith(`scoring-east-${worker}-`))
        .map((policy) => [
          policy.inputs.name as string,
          statementsOf(policy).map(({ Action, Resource }) => ({ Action, Resource })),
        ]),
    );
  const arnOf = (type: string, name: string) => String(plan.find(type, name).state.arn);
  const tableArn = () => arnOf("aws:dynamodb/table:Table", "scoring-east-table");
  const tableStreamArn = () => arnOf("aws:kinesis/stream:Stream", "scoring-east-table-stream");
  const queueArn = (name: string) => arnOf("aws:sqs/queue:Queue", `scoring-east-${name}-queue`);
  const failuresArn = () => queueArn("stream-failures");

  it("creates the fan-identity table: key userId (S) only, TTL on expiresOn, point-in-time recovery, encryption", function () {
    const table = plan.find("aws:dynamodb/table:Table", "scoring-east-table");
    assert.equal(table.inputs.name, `${PREFIX}-fan-identity-table`);
    assert.equal(table.inputs.hashKey, "userId");
    assert.equal(table.inputs.rangeKey, undefined);
    assert.deepEqual(table.inputs.attributes, [{ name: "userId", type: "S" }]);
    assert.deepEqual(table.inputs.ttl, { attributeName: "expiresOn", enabled: true });
    assert.deepEqual(table.inputs.pointInTimeRecovery, { enabled: true });
    assert.deepEqual(table.inputs.serverSideEncryption, { enabled: true });
    assert.equal(table.inputs.billingMode, "PAY_PER_REQUEST");
  });

  it("streams the table's changes to the fan-identity-table-stream it creates", function () {
    const stream = plan.find("aws:kinesis/stream:Stream", "scoring-east-table-stream");
    assert.equal(stream.inputs.name, `${PREFIX}-fan-identity-table-stream`);
    assert.equal(stream.inputs.encryptionType, "KMS");
    const destination = plan.find(
      "aws:dynamodb/kinesisStreamingDestination:KinesisStreamingDestination",
      "scoring-east-table-streaming",
    );
    assert.equal(destination.inputs.streamArn, stream.state.arn);
    assert.equal(destination.inputs.tableName, `${PREFIX}-fan-identity-table`);
  });

  it("creates the account-activity FIFO queue and the on-demand standard queue, encrypted, each with a dead-letter queue after 3 receives", function () {
    for (const [name, physical, fifo] of [
      ["activity", "acct-activity-sqs.fifo", true],
      ["on-demand", "on-demand-scoring-sqs", false],
    ] as const) {
      const queue = plan.find("aws:sqs/queue:Queue", `scoring-east-${name}-queue`);
      const dlq = plan.find("aws:sqs/queue:Queue", `scoring-east-${name}-dlq`);
      assert.equal(queue.inputs.name, `${PREFIX}-${physical}`);
      assert.equal(Boolean(queue.inputs.fifoQueue), fifo);
      assert.equal(Boolean(dlq.inputs.fifoQueue), fifo, "a FIFO queue's dead letters need a FIFO queue");
      assert.equal(queue.inputs.sqsManagedSseEnabled, true);
      assert.equal(dlq.inputs.sqsManagedSseEnabled, true);
      const redrive = JSON.parse(String(queue.inputs.redrivePolicy)) as { deadLetterTargetArn: string; maxReceiveCount: number };
      assert.equal(redrive.deadLetterTargetArn, dlq.state.arn);
      // One delivery and REQ-007's two retries.
      assert.equal(redrive.maxReceiveCount, 3);
      const lookupTimeout = Number(fn("lookupArai").inputs.timeout);
      assert.ok(
        Number(queue.inputs.visibilityTimeoutSeconds) >= 6 * lookupTimeout,
        "visibility timeout at least 6× the consumer's",
      );
    }
  });

  const kinesisMappings: [string, string, () => string, object][] = [
    [
      "table-to-scoreUsers",
      "scoreUsers",
      () => tableStreamArn(),
      { data: { eventName: ["INSERT", "MODIFY"], dynamodb: { NewImage: { type: { S: ["activityData"] } } } } },
    ],
    [
      "table-to-stagingScoreUsers",
      "stagingScoreUsers",
      () => tableStreamArn(),
      { data: { eventName: ["INSERT", "MODIFY"], dynamodb: { NewImage: { type: { S: ["activityData"] } } } } },
    ],
    [
      "table-to-processRescoreEvents",
      "processRescoreEvents",
      () => tableStreamArn(),
      {
        data: {
          eventName: ["REMOVE"],
          userIdentity: { type: ["Service"], principalId: ["dynamodb.amazonaws.com"] },
          dynamodb: { OldImage: { type: { S: ["rescore"] } } },
        },
      },
    ],
    ["vf-to-enqueue", "enqueueFromVfStream", () => inputStream("vf-input-stream"), { data: { type: ["vfLogin"] } }],
    [
      "demand-to-enqueue",
      "enqueueFromDemandStream",
      () => inputStream("dmnd-table-stream"),
      { data: { eventName: ["INSERT", "MODIFY"], dynamodb: { NewImage: { globalUserId: { S: [{ exists: true }] } } } } },
    ],
    [
      "purchase-to-enqueue",
      "enqueueFromPurchaseStream",
      () => inputStream("purchase-stream"),
      { data: { status: ["SUCCESS"], customer: { globalUserId: [{ exists: true }] } } },
    ],
    [
      "sq-journey-to-enqueue",
      "enqueueFromSQJourneyStream",
      () => inputStream("sq-journey-stream"),
      { data: { globalUserId: [{ exists: true }] } },
    ],
  ];

  for (const [mapping, worker, source, filter] of kinesisMappings) {
    it(`maps ${mapping}: from LATEST, filtered, batched, partial failures, bisect, 2 retries, on-failure queue`, function () {
      const esm = plan.find(ESM, `scoring-east-${mapping}`);
      assert.equal(esm.inputs.functionName, fn(worker).inputs.name);
      assert.equal(esm.inputs.eventSourceArn, source());
      assert.equal(esm.inputs.startingPosition, "LATEST");
      assert.equal(esm.inputs.batchSize, 100);
      assert.deepEqual(esm.inputs.functionResponseTypes, ["ReportBatchItemFailures"]);
      assert.equal(esm.inputs.bisectBatchOnFunctionError, true);
      assert.equal(esm.inputs.maximumRetryAttempts, 2);
      assert.deepEqual(esm.inputs.destinationConfig, { onFailure: { destinationArn: failuresArn() } });
      // The worker parks its poison records in the same queue (workers/shared/runtime/parking.ts).
      const variables = (fn(worker).inputs.environment as { variables: Record<string, string> }).variables;
      const onFailure = plan.ofType("aws:sqs/queue:Queue").find((queue) => queue.state.arn === failuresArn())!;
      assert.equal(variables.FAILURE_QUEUE_URL, onFailure.state.url);
      const patterns = (esm.inputs.filterCriteria as { filters: { pattern: string }[] }).filters.map((f) =>
        JSON.parse(f.pattern),
      );
      assert.deepEqual(patterns, [filter]);
    });
  }

  for (const [mapping, queue, fifo] of [
    ["activity-to-lookupArai", "activity", true],
    ["on-demand-to-lookupArai", "on-demand", false],
  ] as const) {
    it(`maps ${mapping} with partial batch failures`, function () {
      const esm = plan.find(ESM, `scoring-east-${mapping}`);
      assert.equal(esm.inputs.functionName, fn("lookupArai").inputs.name);
      assert.equal(esm.inputs.eventSourceArn, queueArn(queue));
      assert.equal(esm.inputs.batchSize, 10);
      assert.deepEqual(esm.inputs.functionResponseTypes, ["ReportBatchItemFailures"]);
      assert.equal(esm.inputs.maximumBatchingWindowInSeconds, fifo ? undefined : 1);
    });
  }

  it("has no other mappings", function () {
    // The Kafka mapping has its own tests (regions.spec).
    const others = plan
      .ofType(ESM)
      .filter((esm) => esm.name.startsWith("scoring-east-") && esm.name !== "scoring-east-kafka-to-enqueue");
    assert.equal(others.length, kinesisMappings.length + 2);
  });

  const kinesisConsumer = (stream: string) => [
    {
      Action: [
        "kinesis:DescribeStream",
        "kinesis:DescribeStreamSummary",
        "kinesis:GetRecords",
        "kinesis:GetShardIterator",
        "kinesis:ListShards",
      ],
      Resource: [stream],
    },
    { Action: ["sqs:SendMessage"], Resource: [failuresArn()] },
  ];
  const network = [
    { Action: ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface"], Resource: ["*"] },
  ];
  // prod1 traces actively: every function may send its segments to X-Ray.
  const tracing = [{ Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], Resource: ["*"] }];
  // The worker's own access need: it parks its poison records in its mapping's on-failure queue.
  const parking = () => [{ Action: ["sqs:SendMessage"], Resource: [failuresArn()] }];
  const logs = (worker: string) => [
    {
      Action: ["logs:CreateLogStream", "logs:PutLogEvents"],
      Resource: [`arn:aws:logs:us-east-1:${ACCOUNT}:log-group:/aws/lambda/${PREFIX}-${worker}:*`],
    },
  ];

  it("grants each enqueue worker only its stream, its queue, its table writes and its network", function () {
    for (const [worker, stream] of [
      ["enqueueFromDemandStream", "dmnd-table-stream"],
      ["enqueueFromPurchaseStream", "purchase-stream"],
      ["enqueueFromSQJourneyStream", "sq-journey-stream"],
    ]) {
      assert.deepEqual(policies(worker!), {
        lambda_sqs_producer: [{ Action: ["sqs:SendMessage"], Resource: [queueArn("activity")] }],
        dynamodb_enqueue_from_streams: [{ Action: ["dynamodb:PutItem"], Resource: [tableArn()] }],
        parked_records_producer: parking(),
        fan_identity_kinesis_consumer_policy: kinesisConsumer(inputStream(stream!)),
        enqueue_from_streams_network: network,
        logs: logs(worker!),
        tracing,
      });
    }
    assert.deepEqual(policies("enqueueFromVfStream"), {
      lambda_sqs_producer: [{ Action: ["sqs:SendMessage"], Resource: [queueArn("on-demand")] }],
      parked_records_producer: parking(),
      fan_identity_kinesis_consumer_policy: kinesisConsumer(inputStream("vf-input-stream")),
      enqueue_from_streams_network: network,
      logs: logs("enqueueFromVfStream"),
      tracing,
    });
    assert.deepEqual(policies("processRescoreEvents"), {
      lambda_sqs_producer: [{ Action: ["sqs:SendMessage"], Resource: [queueArn("activity")] }],
      parked_records_producer: parking(),
      fan_identity_kinesis_consumer_policy: kinesisConsumer(tableStreamArn()),
      enqueue_from_streams_network: network,
      logs: logs("processRescoreEvents"),
      tracing,
    });
  });

  it("grants lookupArai the queues it consumes, sending to their dead-letter queues only, the fan records and the ARAI credentials", function () {
    const deadLetterArn = (name: string) => arnOf("aws:sqs/queue:Queue", `scoring-east-${name}-dlq`);
    assert.deepEqual(policies("lookupArai"), {
      dead_letter_queues: [{ Action: ["sqs:SendMessage"], Resource: [deadLetterArn("activity"), deadLetterArn("on-demand")] }],
      dynamodb_fan_records: [{ Action: ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"], Resource: [tableArn()] }],
      arai_credentials: [
        {
          Action: ["secretsmanager:GetSecretValue"],
          Resource: [arnOf("aws:secretsmanager/secret:Secret", "scoring-east-arai-credentials-secret")],
        },
      ],
      lambda_sqs_consumer: [
        {
          Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"],
          Resource: [queueArn("activity"), queueArn("on-demand")],
        },
      ],
      network,
      logs: logs("lookupArai"),
      tracing,
    });
  });

  it("grants the scorers the table stream, their score writes and the model token", function () {
    const token = arnOf("aws:secretsmanager/secret:Secret", "scoring-east-model-token-secret");
    for (const [worker, action] of [
      ["scoreUsers", "dynamodb:UpdateItem"],
      ["stagingScoreUsers", "dynamodb:BatchWriteItem"],
    ]) {
      assert.deepEqual(policies(worker!), {
        dynamodb_write_scores: [{ Action: [action!], Resource: [tableArn()] }],
        model_token: [{ Action: ["secretsmanager:GetSecretValue"], Resource: [token] }],
        parked_records_producer: parking(),
        fan_identity_kinesis_consumer_policy: kinesisConsumer(tableStreamArn()),
        network,
        logs: logs(worker!),
        tracing,
      });
    }
  });

  it("runs every scoring worker in the app tier, behind an outbound-only security group", function () {
    const group: RecordedResource = plan.find("aws:ec2/securityGroup:SecurityGroup", "scoring-east-workers-sg");
    assert.equal(group.inputs.ingress, undefined);
    assert.equal(group.inputs.vpcId, "vpc-0f1e2d3c4b5a69788");
    for (const worker of [
      "enqueueFromVfStream",
      "enqueueFromDemandStream",
      "enqueueFromPurchaseStream",
      "enqueueFromSQJourneyStream",
      "processRescoreEvents",
      "lookupArai",
      "scoreUsers",
      "stagingScoreUsers",
    ]) {
      const vpcConfig = fn(worker).inputs.vpcConfig as { subnetIds: string[]; securityGroupIds: string[] };
      assert.ok(vpcConfig.subnetIds.length > 0 && vpcConfig.subnetIds.every((id) => id.startsWith("subnet-app")), worker);
      assert.deepEqual(vpcConfig.securityGroupIds, [group.state.id ?? `${group.inputs.name}-id`]);
    }
  });

  it("points each worker at its resources through its environment", function () {
    const env = (worker: string) => (fn(worker).inputs.environment as { variables: Record<string, string> }).variables;
    const activityUrl = `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/${PREFIX}-acct-activity-sqs.fifo`;
    const failureUrl = `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/${PREFIX}-scoring-stream-failures-sqs`;
    assert.deepEqual(env("enqueueFromPurchaseStream"), {
      ACTIVITY_QUEUE_URL: activityUrl,
      TABLE_NAME: `${PREFIX}-fan-identity-table`,
      RESCORE_DELAY_DAYS: "5",
      FAILURE_QUEUE_URL: failureUrl,
      DEPLOYMENT: "prod1",
    });
    assert.deepEqual(env("enqueueFromVfStream"), {
      ON_DEMAND_QUEUE_URL: `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/${PREFIX}-on-demand-scoring-sqs`,
      FAILURE_QUEUE_URL: failureUrl,
      DEPLOYMENT: "prod1",
    });
    assert.deepEqual(env("processRescoreEvents"), {
      ACTIVITY_QUEUE_URL: activityUrl,
      FAILURE_QUEUE_URL: failureUrl,
      DEPLOYMENT: "prod1",
    });
    for (const worker of ["scoreUsers", "stagingScoreUsers"]) assert.equal(env(worker).FAILURE_QUEUE_URL, failureUrl, worker);
    assert.equal(
      env("lookupArai").ARAI_URL_TEMPLATE,
      "https://accounts.verifiedfan.example.com/arai/v1/accounts/{globalUserId}/activity",
    );
    // Each queue's messages are parked in that queue's own dead-letter queue.
    const queueUrl = (name: string) => `https://sqs.us-east-1.amazonaws.com/${ACCOUNT}/${PREFIX}-${name}`;
    assert.deepEqual(JSON.parse(env("lookupArai").DEAD_LETTER_QUEUE_URLS!), {
      [queueArn("activity")]: queueUrl("acct-activity-sqs-dlq.fifo"),
      [queueArn("on-demand")]: queueUrl("on-demand-scoring-sqs-dlq"),
    });
    assert.equal(
      env("scoreUsers").MODEL_URL,
      "https://dbc-prod.cloud.databricks.com/serving-endpoints/fan-risk-prod1/invocations",
    );
    assert.equal(env("scoreUsers").MODEL_VERSION, "fan-risk-7");
    assert.equal(
      env("stagingScoreUsers").MODEL_URL,
      "https://dbc-prod.cloud.databricks.com/serving-endpoints/fan-risk-prod1-staging/invocations",
    );
    assert.equal(env("stagingScoreUsers").MODEL_VERSION, "fan-risk-8-rc1");
  });
});

describe("the scoring mappings' filters, on recorded events", function () {
  const FILTERS = {
    vfLogin: WORKERS.enqueueFromVfStream.trigger.filter,
    demand: WORKERS.enqueueFromDemandStream.trigger.filter,
    successfulPurchase: WORKERS.enqueueFromPurchaseStream.trigger.filter,
    sqJourney: WORKERS.enqueueFromSQJourneyStream.trigger.filter,
    activityData: WORKERS.scoreUsers.trigger.filter,
    rescoreExpired: WORKERS.processRescoreEvents.trigger.filter,
  };
  const first = (name: string) => fixture<{ Records: { kinesis: { data: string } }[] }>(name).Records[0]!;
  const withData = (record: { kinesis: { data: string } }, change: (data: Record<string, unknown>) => void) => {
    const data = JSON.parse(Buffer.from(record.kinesis.data, "base64").toString("utf8")) as Record<string, unknown>;
    change(data);
    return { ...record, kinesis: { ...record.kinesis, data: Buffer.from(JSON.stringify(data)).toString("base64") } };
  };

  it("deliver each input stream's recorded event to its worker, and nothing else's", function () {
    const recorded = {
      vfLogin: first("kinesis-vf-login.json"),
      demand: first("kinesis-demand-insert.json"),
      successfulPurchase: first("kinesis-purchase-success.json"),
      sqJourney: first("kinesis-sq-journey.json"),
    };
    for (const [filter, record] of Object.entries(recorded)) {
      assert.ok(
        deliversKinesisRecord(FILTERS[filter as keyof typeof recorded] as object, record),
        `${filter} delivers its own stream's event`,
      );
    }
    assert.ok(
      !deliversKinesisRecord(
        FILTERS.vfLogin,
        withData(recorded.vfLogin, (data) => (data.type = "vfLogout")),
      ),
    );
    assert.ok(
      !deliversKinesisRecord(
        FILTERS.successfulPurchase,
        withData(recorded.successfulPurchase, (data) => (data.status = "FAILED")),
      ),
    );
    assert.ok(
      !deliversKinesisRecord(
        FILTERS.successfulPurchase,
        withData(recorded.successfulPurchase, (data) => delete (data.customer as Record<string, unknown>).globalUserId),
      ),
    );
    assert.ok(
      !deliversKinesisRecord(
        FILTERS.sqJourney,
        withData(recorded.sqJourney, (data) => delete data.globalUserId),
      ),
    );
    assert.ok(
      !deliversKinesisRecord(
        FILTERS.demand,
        withData(recorded.demand, (data) => (data.eventName = "REMOVE")),
      ),
    );
  });

  it("deliver fresh ARAI to the scorers and TTL deletions of rescores to processRescoreEvents, never a written score", function () {
    const activity = first("kinesis-fan-table-activity-data.json");
    const ttl = first("kinesis-rescore-ttl-removal.json");
    assert.ok(deliversKinesisRecord(FILTERS.activityData, activity));
    assert.ok(!deliversKinesisRecord(FILTERS.rescoreExpired, activity));
    assert.ok(deliversKinesisRecord(FILTERS.rescoreExpired, ttl));
    assert.ok(!deliversKinesisRecord(FILTERS.activityData, ttl));
    const scoreWrite = withData(activity, (data) => {
      ((data.dynamodb as Record<string, Record<string, unknown>>).NewImage!.type as { S: string }).S = "score";
    });
    assert.ok(!deliversKinesisRecord(FILTERS.activityData, scoreWrite));
    const manualDelete = withData(ttl, (data) => (data.userIdentity = null));
    assert.ok(!deliversKinesisRecord(FILTERS.rescoreExpired, manualDelete));
  });
});
