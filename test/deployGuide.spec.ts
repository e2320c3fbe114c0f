/**
 * The README's deploy guide lists every outside resource the program looks up or points at. What
 * each stack reaches outside itself is read from its offline plan, not from a list kept here: the
 * provider functions it calls (look-ups), and every configured value that names something the
 * program does not create (an ARN, a service URL, a broker address, a resource id, a name inside
 * an ARN) and that a planned resource uses. Each must be named, by its configuration key, in the
 * guide's table of prerequisites.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { projectRoot } from "../components/archive";
import { PROJECT } from "../stacks/config";
import { type PlannedStack, planStack, stackConfig } from "./support/program";

const STACKS = fs
  .readdirSync(projectRoot())
  .map((file) => /^Pulumi\.(\w+)\.yaml$/.exec(file)?.[1])
  .filter((stack): stack is string => stack !== undefined)
  .sort();

/** The configuration key each look-up depends on; a new look-up fails the test until it is added here and to the guide. */
const LOOKUP_KEYS: Record<string, string> = {
  "aws:ec2/getVpc:getVpc": "network.vpcIds",
  "aws:ec2/getSubnets:getSubnets": "network.tierTagKey",
  "aws:route53/getZone:getZone": "idv.zone",
  "aws:ec2/getManagedPrefixList:getManagedPrefixList": "network.mode",
};

/** A value that names something outside the program: an ARN, a service URL, a broker address, an AWS resource id. */
const NAMES_A_RESOURCE = [/^arn:aws:/, /^(https|rediss?):\/\//, /^[\w.-]+:\d{2,5}$/, /^(vpc|subnet|sg)-[0-9a-f]{8,17}$/];

/** Every string leaf of the stack file's own settings, by dotted key; list items under their list's key. */
function configLeaves(stack: string): [string, string][] {
  const leaves: [string, string][] = [];
  const walk = (value: unknown, key: string) => {
    if (typeof value === "string") leaves.push([key, value]);
    else if (Array.isArray(value)) value.forEach((item) => walk(item, key));
    else if (value && typeof value === "object") for (const [name, child] of Object.entries(value)) walk(child, `${key}.${name}`);
  };
  for (const [fullKey, text] of Object.entries(stackConfig(stack).values)) {
    if (!fullKey.startsWith(`${PROJECT}:`)) continue;
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch {
      // A plain string setting.
    }
    walk(value, fullKey.slice(PROJECT.length + 1));
  }
  return leaves;
}

/** Every string a planned resource is given, tags aside (a tag points at nothing). */
function plannedStrings(plan: PlannedStack): string[] {
  const strings: string[] = [];
  const walk = (value: unknown) => {
    if (typeof value === "string") strings.push(value);
    else if (Array.isArray(value)) value.forEach(walk);
    else if (value && typeof value === "object") {
      for (const [name, child] of Object.entries(value)) if (name !== "tags" && name !== "tagsAll") walk(child);
    }
  };
  plan.awsResources.forEach((resource) => walk(resource.inputs));
  return strings;
}

/** The configuration keys naming outside resources that the stack's plan uses; west keys as their east twins. */
function externalKeys(stack: string, plan: PlannedStack): Set<string> {
  const used = plannedStrings(plan);
  // ARNs as given, and inside documents (a role policy is JSON text).
  const arns = used.flatMap((text) => text.match(/arn:aws:[^"\s,\]]+/g) ?? []);
  const keys = new Set<string>();
  for (const [key, value] of configLeaves(stack)) {
    const namesResource = NAMES_A_RESOURCE.some((pattern) => pattern.test(value));
    const nameInArn = /^[\w.-]{3,}$/.test(value) && arns.some((arn) => arn.endsWith(`/${value}`) || arn.endsWith(`:${value}`));
    const usedAsIs = used.some((text) => text.includes(value));
    if ((namesResource && usedAsIs) || nameInArn) keys.add(key.replace(/^scoring\.west\./, "scoring.east."));
  }
  for (const call of plan.calls) {
    const key = LOOKUP_KEYS[call.token];
    assert.ok(key, `the program calls ${call.token}: add what it looks up to the README's prerequisites and to LOOKUP_KEYS`);
    keys.add(key);
  }
  return keys;
}

/** The keys the guide's prerequisites table names (second column), as written. */
function documentedKeys(readme: string): string[] {
  const section = /^### Before the first `pulumi up`\n([\s\S]*?)(?=^#{2,3} )/m.exec(readme)?.[1];
  assert.ok(section, "README has no section ### Before the first `pulumi up`");
  const rows = [...section.matchAll(/^\| [^|]+ \| ([^|]+) \|/gm)].map((row) => row[1]!);
  return rows.flatMap((cell) => [...cell.matchAll(/`([\w.-]+)`/g)].map((match) => match[1]!));
}

describe("README deploy guide", function () {
  const readme = fs.readFileSync(path.join(projectRoot(), "README.md"), "utf8");
  const documented = documentedKeys(readme);
  const covers = (key: string) => documented.some((entry) => key === entry || key.startsWith(`${entry}.`));
  const found = new Map<string, Set<string>>();
  const outputs = new Set<string>();

  before(async function () {
    for (const stack of STACKS) {
      const plan = await planStack(stack);
      found.set(stack, externalKeys(stack, plan));
      Object.keys(plan.outputs).forEach((output) => outputs.add(output));
    }
  });

  it("reads the outside resources of every stack file", function () {
    assert.deepEqual(STACKS, ["dev1", "preprod1", "prod1", "qa1", "sandbox1"]);
    // The rule finds what the stacks are known to point at: the look-ups, a stream ARN, a URL, a name inside an ARN.
    const qa1 = found.get("qa1")!;
    for (const key of [
      "network.tierTagKey",
      "idv.zone",
      "scoring.east.inputStreams.vfArn",
      "auth.jwksUrl",
      "botOrNot.glueWorkflowName",
    ])
      assert.ok(qa1.has(key), `qa1: ${key} not found by the rule; found ${[...qa1].join(", ")}`);
  });

  for (const stack of STACKS) {
    it(`lists every prerequisite the plan of ${stack} looks up or points at`, function () {
      const missing = [...found.get(stack)!].filter((key) => !covers(key)).sort();
      assert.deepEqual(missing, [], `${stack} points at resources the guide does not list: ${missing.join(", ")}`);
    });
  }

  it("describes every stack output of every stack file, and no other", function () {
    const section = /^### Stack outputs\n([\s\S]*?)(?=^#{2,3} )/m.exec(readme)?.[1];
    assert.ok(section, "README has no section ### Stack outputs");
    const rows = [...section.matchAll(/^\| ([^|]+) \|/gm)].map((row) => row[1]!);
    const described = rows.flatMap((cell) => [...cell.matchAll(/`(\w+)`/g)].map((match) => match[1]!));
    assert.deepEqual([...described].sort(), [...outputs].sort());
  });

  it("lists nothing that no stack points at", function () {
    const everything = [...found.values()].flatMap((keys) => [...keys]);
    const stale = documented.filter((entry) => !everything.some((key) => key === entry || key.startsWith(`${entry}.`)));
    assert.deepEqual(stale, [], `the guide lists prerequisites no stack uses: ${stale.join(", ")}`);
  });
});
