/**
 * Stack configuration: the committed stack files parse; a missing, malformed, unknown or
 * plain-text secret key fails with the stack, the key and what was expected.
 */
import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { projectRoot } from "../components/archive";
import { parseStackConfig, PROJECT, StackConfigError } from "../stacks/config";
import { stackConfig, stackSection } from "./support/program";

const KEY = (key: string) => `${PROJECT}:${key}`;
const API_KEYS = JSON.stringify(["a-perfectly-long-api-key-0001"]);

function parse(stack: string, changes: Record<string, unknown>, secretKeys?: string[]) {
  const { values, secretKeys: fileSecrets } = stackConfig(stack, { authApiKeys: API_KEYS, ...changes });
  return parseStackConfig(stack, values, secretKeys ?? fileSecrets);
}

const unwrap = <T>(output: pulumi.Output<T>) => new Promise<T>((resolve) => output.apply(resolve));

function problemsOf(action: () => unknown): string[] {
  try {
    action();
  } catch (error) {
    assert.ok(error instanceof StackConfigError, String(error));
    return [...error.problems];
  }
  assert.fail("expected a StackConfigError");
}

describe("stack configuration", function () {
  for (const stack of ["qa1", "dev1", "preprod1", "prod1", "sandbox1"]) {
    it(`parses Pulumi.${stack}.yaml, filling defaults`, function () {
      const config = parse(stack, {});
      assert.equal(config.environment, stack);
      assert.equal(config.platform.environment, stack);
      assert.equal(config.lambda.runtime, "nodejs24.x");
      assert.equal(config.dataScience.completionMarkerSuffix, "_SUCCESS");
      assert.equal(config.auth.jwksTimeoutMs, 1500);
      assert.match(config.accountId, /^\d{12}$/);
    });
  }

  it("names the stack, the key and what was expected for every problem at once", function () {
    const error = (() => {
      try {
        parse("qa1", { productCode: "VF_ID", auth: { jwksUrl: undefined }, lambda: { logRetentionDays: 13 }, accountId: "2109" });
      } catch (caught) {
        return caught as StackConfigError;
      }
      assert.fail("expected an error");
    })();
    assert.match(error.message, /^stack "qa1": configuration is invalid:\n {2}- /);
    assert.deepEqual(
      [...error.problems].sort(),
      [
        `${KEY("accountId")}: expected a 12-digit AWS account id (got "2109")`,
        `${KEY("auth.jwksUrl")}: missing; expected string`,
        `${KEY("lambda.logRetentionDays")}: expected one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653 (got 13)`,
        `${KEY("productCode")}: expected 2 to 10 lower-case letters and digits (got "VF_ID")`,
      ].sort(),
    );
  });

  it("reports a missing section and an unknown key", function () {
    assert.deepEqual(
      problemsOf(() => parse("qa1", { botOrNot: undefined, bogus: "1" })),
      [`${KEY("bogus")}: unknown key`, `${KEY("botOrNot")}: missing; expected object`],
    );
    assert.deepEqual(
      problemsOf(() => parse("qa1", { auth: { jwksURL: "https://x" } })),
      [`${KEY("auth.jwksURL")}: unknown key`],
    );
  });

  it("reports JSON that is not JSON, and values of the wrong type", function () {
    assert.deepEqual(
      problemsOf(() => parse("qa1", { lambda: "{runtime: nodejs24.x" })),
      [`${KEY("lambda")}: expected JSON (an object, list, number or boolean), got "{runtime: nodejs24.x"`],
    );
    const problems = problemsOf(() => parse("qa1", { dataScience: { bucketInThisAccount: "yes" } }));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^fan-identity-workers:dataScience\.bucketInThisAccount: .*expected boolean/);
  });

  it("refuses an unsupported Lambda runtime", function () {
    const problems = problemsOf(() => parse("qa1", { lambda: { runtime: "nodejs18.x" } }));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^fan-identity-workers:lambda\.runtime: .*"nodejs22\.x"\|"nodejs24\.x"/);
  });

  it("accepts secrets only as Pulumi secrets, and never echoes their value", function () {
    assert.deepEqual(
      problemsOf(() => parse("qa1", {}, [KEY("araiCredentials")])),
      ["authApiKeys", "modelServingToken", "personaApiKey", "personaWebhookSecrets", "decisionSigningKey"].map(
        (key) => `${KEY(key)}: must be a secret; set it with pulumi config set --secret ${key} '<value>'`,
      ),
    );
    const short = problemsOf(() => parse("qa1", { authApiKeys: JSON.stringify(["hunter2"]) }));
    assert.deepEqual(short, [`${KEY("authApiKeys")}[0]: API keys are at least 16 characters`]);
    assert.ok(!short.join().includes("hunter2"));
    const { values, secretKeys } = stackConfig("qa1");
    delete values[KEY("authApiKeys")];
    assert.deepEqual(
      problemsOf(() => parseStackConfig("qa1", values, secretKeys)),
      [`${KEY("authApiKeys")}: missing; set it with pulumi config set --secret authApiKeys '<value>'`],
    );
  });

  it("keeps secrets secret inside the program, reading text secrets as text and others as JSON", async function () {
    const config = parse("qa1", {
      modelServingToken: "dapi-0123456789abcdef",
      araiCredentials: JSON.stringify({ username: "svc", password: "pw", clientId: "vf" }),
    });
    // A list of endpoints is held item by item (none here), each item a secret.
    for (const secret of Object.values(config.secrets).flat())
      assert.equal(await pulumi.isSecret(secret as pulumi.Output<unknown>), true);
    assert.equal(await unwrap(config.secrets.modelServingToken), "dapi-0123456789abcdef");
    assert.deepEqual(await unwrap(config.secrets.araiCredentials), { username: "svc", password: "pw", clientId: "vf" });
    assert.deepEqual(
      problemsOf(() => parse("qa1", { araiCredentials: JSON.stringify({ username: "svc" }) })),
      [
        `${KEY("araiCredentials")}[password]: Invalid input: expected string, received undefined`,
        `${KEY("araiCredentials")}[clientId]: Invalid input: expected string, received undefined`,
      ],
    );
  });

  it("checks the operations settings: alert emails, HTTPS endpoints only as a secret, thresholds in range", async function () {
    const config = parse("qa1", {});
    assert.deepEqual(config.secrets.alertHttpsEndpoints, [], "the endpoints are optional");
    assert.deepEqual(config.operations.alerts.emails, ["fan-identity-oncall+qa1@verifiedfan.example.com"]);
    assert.equal(config.operations.alarms.externalCallFailureRate, 0.05, "defaults fill what the file leaves out");
    assert.equal(config.manageApiGatewayAccount, true);
    assert.equal(parse("dev1", { manageApiGatewayAccount: undefined }).manageApiGatewayAccount, false, "not managed unless said");

    const endpoints = ["https://events.pager.example.com/integration/k3y/enqueue"];
    const { secretKeys } = stackConfig("qa1");
    const withEndpoints = parse("qa1", { alertHttpsEndpoints: JSON.stringify(endpoints) }, [
      ...secretKeys,
      KEY("alertHttpsEndpoints"),
    ]);
    assert.equal(withEndpoints.secrets.alertHttpsEndpoints.length, 1);
    assert.equal(await pulumi.isSecret(withEndpoints.secrets.alertHttpsEndpoints[0]!), true);
    assert.equal(await unwrap(withEndpoints.secrets.alertHttpsEndpoints[0]!), endpoints[0]);
    assert.deepEqual(
      problemsOf(() => parse("qa1", { alertHttpsEndpoints: JSON.stringify(endpoints) })),
      [`${KEY("alertHttpsEndpoints")}: must be a secret; set it with pulumi config set --secret alertHttpsEndpoints '<value>'`],
    );
    const badUrl = problemsOf(() =>
      parse("qa1", { alertHttpsEndpoints: JSON.stringify(["http://hooks.example.com/t0ken"]) }, [
        ...secretKeys,
        KEY("alertHttpsEndpoints"),
      ]),
    );
    assert.deepEqual(badUrl, [`${KEY("alertHttpsEndpoints")}[0]: expected the https URL of an alert endpoint`]);
    assert.ok(!badUrl[0]!.includes("t0ken"), "the endpoint is never echoed");

    assert.deepEqual(
      problemsOf(() =>
        parse("qa1", {
          operations: {
            alerts: { emails: ["oncall at example.com"] },
            alarms: { periodSeconds: 90, externalCallFailureRate: 2 },
          },
          lambda: { tracing: "On" },
        }),
      ).sort(),
      [
        `${KEY("lambda.tracing")}: Invalid option: expected one of "Active"|"PassThrough" (got "On")`,
        `${KEY("operations.alarms.externalCallFailureRate")}: Too big: expected number to be <=1 (got 2)`,
        `${KEY("operations.alarms.periodSeconds")}: expected a multiple of 60 (got 90)`,
        `${KEY("operations.alerts.emails.0")}: expected an email address (got "oncall at example.com")`,
      ].sort(),
    );
  });

  it("requires default providers to be disabled", function () {
    assert.deepEqual(
      problemsOf(() => parse("qa1", { "pulumi:disable-default-providers": undefined })),
      [`pulumi:disable-default-providers: expected ["aws"] or ["*"], so nothing can be created without an explicit region`],
    );
  });

  it("checks the scoring regions: west needs its Kafka topic and log shipping, and each region's ARNs are its own", function () {
    const prod1 = stackSection<{
      west: { kafka?: unknown; inputStreams: Record<string, string> };
      kafka: Record<string, unknown>;
    }>("prod1", "scoring");
    const { kafka: _kafka, ...westWithoutKafka } = prod1.west;
    assert.deepEqual(
      problemsOf(() => parse("prod1", { scoring: { west: westWithoutKafka } })),
      [`${KEY("scoring.west.kafka")}: the west region is deployed only with its Kafka topic configured`],
    );
    assert.deepEqual(
      problemsOf(() => parse("prod1", { logShipping: undefined })),
      [`${KEY("logShipping.streamArn")}: missing; the west region's logs are sent to the east region's log stream`],
    );
    const wrongRegion = {
      ...prod1.west,
      inputStreams: { ...prod1.west.inputStreams, vfArn: prod1.west.inputStreams.vfArn!.replace("us-west-2", "us-east-1") },
    };
    assert.deepEqual(
      problemsOf(() => parse("prod1", { scoring: { west: wrongRegion } })),
      [`${KEY("scoring.west.inputStreams.vfArn")}: expected an ARN in us-west-2, the west region`],
    );
    assert.deepEqual(
      problemsOf(() => parse("prod1", { scoring: { kafka: { ...prod1.kafka, minimumPollers: 5, maximumPollers: 2 } } })),
      [`${KEY("scoring.kafka.minimumPollers")}: more than maximumPollers`],
    );
  });

  it("deploys the west region only when it is configured", function () {
    assert.ok(parse("prod1", {}).scoring.west);
    assert.equal(parse("qa1", {}).scoring.west, undefined);
  });

  it("checks the exports bucket and prefixes against each other", function () {
    assert.deepEqual(
      problemsOf(() =>
        parse("qa1", { dataScience: { bucketInThisAccount: true }, clustering: { exportPrefix: "bot-or-not/clusters/" } }),
      ),
      [
        `${KEY("dataScience.bucketOwnerAccountId")}: bucketInThisAccount is true but the owner 510987654321 is not accountId 210987654321`,
        `${KEY("clustering.exportPrefix")}: overlaps botOrNot.exportPrefix "bot-or-not/"; S3 rejects overlapping notification filters`,
      ],
    );
  });
});

describe("npm run plan", function () {
  const root = projectRoot();
  const plan = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [path.join(root, "build/tools/plan.js"), ...args], { cwd: root }, (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code) : 0, stdout, stderr }),
      );
    });

  it("prints the resource tree of qa1 and writes the same as JSON, and the event flow as a diagram", async function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "plan-"));
    const out = path.join(dir, "qa1.json");
    const diagram = path.join(dir, "qa1.mmd");
    const { code, stdout, stderr } = await plan(["--stack", "qa1", "--json", out, "--diagram", diagram]);
    const flow = fs.readFileSync(diagram, "utf8");
    assert.match(flow, /^flowchart LR\n/);
    assert.match(flow, / n\d+\["scoreUsers"\]\n/);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /^Stack qa1 \(Pulumi\.qa1\.yaml\): \d+ resources/);
    assert.match(stdout, /fan-identity:stacks:AuthStack {2}auth\n/);
    assert.match(
      stdout,
      /aws:lambda\/function:Function {2}auth-validateToken-function \[us-east-1\]\n[│ ]+vfid-qa1-us-east-1-validateToken · nodejs24\.x arm64 · timeout 15s/,
    );
    assert.match(stderr, /secret fan-identity-workers:authApiKeys is not set for qa1/);
    const written = JSON.parse(fs.readFileSync(out, "utf8")) as { resources: { type: string; name: string; region?: string }[] };
    const lines = stdout.split("\n").filter((line) => /^[ │├└─]*(aws|pulumi|fan-identity):/.test(line));
    assert.equal(written.resources.length, lines.length);
    assert.ok(written.resources.some((r) => r.name === "auth-validateToken-function" && r.region === "us-east-1"));
  });

  it("prints prod1's tree", async function () {
    const { code, stdout } = await plan(["--stack", "prod1"]);
    assert.equal(code, 0);
    assert.match(stdout, / vfid-prod1-us-east-1-startClusterImport · /);
  });

  it("exits non-zero naming the key when a stack file is missing one or has it malformed", async function () {
    const original = fs.readFileSync(path.join(root, "Pulumi.qa1.yaml"), "utf8");
    const broken = original.replace(/^ {4}jwksUrl: .*\n/m, "").replace("productCode: vfid", "productCode: V");
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stack-")), "Pulumi.qa1.yaml");
    fs.writeFileSync(file, broken);
    const { code, stderr } = await plan(["--stack", "qa1", "--stack-file", file]);
    assert.equal(code, 1);
    assert.match(stderr, /^stack "qa1": configuration is invalid:\n/);
    assert.match(stderr, / {2}- fan-identity-workers:auth\.jwksUrl: missing; expected string\n/);
    assert.match(stderr, / {2}- fan-identity-workers:productCode: expected 2 to 10 lower-case letters and digits \(got "V"\)\n/);
  });

  it("exits non-zero for a stack that does not exist, listing those that do", async function () {
    const { code, stderr } = await plan(["--stack", "qa9"]);
    assert.equal(code, 1);
    assert.match(stderr, /no stack file for "qa9".*stacks here: dev1, preprod1, prod1, qa1/);
  });
});
