import { strict as assert } from "node:assert";
import fc from "fast-check";
import { fitName, NAME_RULES, type NameKind, namePrefix, physicalName } from "../components/naming";

const nameChars = fc.string({
  unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"),
  minLength: 1,
  maxLength: 120,
});
const kinds = Object.keys(NAME_RULES) as NameKind[];

describe("physical names", function () {
  it("are <productCode>-<env>-<region>-<name>", function () {
    const prefix = namePrefix("vfid", "prod1", "us-east-1");
    assert.equal(physicalName(prefix, "fan-identity-table", "dynamodbTable"), "vfid-prod1-us-east-1-fan-identity-table");
    assert.equal(physicalName(prefix, "on-demand-scoring-sqs", "sqsQueue"), "vfid-prod1-us-east-1-on-demand-scoring-sqs");
  });

  it("end FIFO queue names in .fifo exactly once", function () {
    const prefix = namePrefix("vfid", "qa1", "us-west-2");
    assert.equal(physicalName(prefix, "acct-activity-sqs", "sqsFifoQueue"), "vfid-qa1-us-west-2-acct-activity-sqs.fifo");
    assert.equal(physicalName(prefix, "acct-activity-sqs.fifo", "sqsFifoQueue"), "vfid-qa1-us-west-2-acct-activity-sqs.fifo");
  });

  it("fit every type's length limit, keep their suffix, and stay deterministic", function () {
    fc.assert(
      fc.property(nameChars, fc.constantFrom(...kinds), (name, kind) => {
        const rule = NAME_RULES[kind];
        const result = physicalName("vfid-preprod1-us-east-1", name, kind);
        assert.ok(result.length <= rule.maxLength, `${result} (${result.length}) > ${rule.maxLength}`);
        assert.match(result, rule.pattern);
        assert.ok(result.startsWith("vfid-preprod1-us-east-1-"));
        assert.equal(result, physicalName("vfid-preprod1-us-east-1", name, kind));
      }),
    );
  });

  it("never give two different long names the same result", function () {
    fc.assert(
      fc.property(nameChars, nameChars, (a, b) => {
        fc.pre(a !== b);
        const long = (suffix: string) => `enqueue-from-a-rather-long-stream-name-${suffix}`;
        assert.notEqual(
          physicalName("vfid-preprod1-us-west-2", long(a), "lambdaFunction"),
          physicalName("vfid-preprod1-us-west-2", long(b), "lambdaFunction"),
        );
      }),
    );
  });

  it("leave names that fit untouched and cut the rest predictably", function () {
    assert.equal(fitName("short", 64), "short");
    const cut = fitName("x".repeat(70), 64);
    assert.equal(cut.length, 64);
    assert.match(cut, /^x{55}-[0-9a-f]{8}$/);
  });

  it("refuse characters a type does not accept", function () {
    assert.throws(() => physicalName("vfid-qa1-us-east-1", "bad name", "lambdaFunction"), /not a valid lambdaFunction name/);
  });
});
