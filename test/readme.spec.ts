/**
 * The README's configuration reference stays true to the schema the program checks.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import type { z } from "zod";
import { projectRoot } from "../components/archive";
import { plainConfigSchema, SECRET_KEYS } from "../stacks/config";
import { describeResources } from "../tools/offline/describe";
import { renderFlow } from "../tools/offline/diagram";
import { planStack } from "./support/program";

/** Dotted names of every key the schema accepts (objects are walked, lists are not). */
function schemaKeys(schema: z.ZodType, prefix = ""): string[] {
  let current = schema;
  for (;;) {
    const def = current.def as { type: string; innerType?: z.ZodType; in?: z.ZodType; shape?: Record<string, z.ZodType> };
    if (def.type === "object") {
      return Object.entries(def.shape!).flatMap(([key, child]) => {
        const nested = schemaKeys(child, `${prefix}${key}.`);
        return nested.length > 0 ? nested : [`${prefix}${key}`];
      });
    }
    const inner = def.innerType ?? def.in;
    if (!inner) return [];
    current = inner;
  }
}

function tableKeys(readme: string, heading: string): string[] {
  const section = readme.split(/^#{2,3} /m).find((part) => part.startsWith(heading));
  assert.ok(section, `README has no section ${heading}`);
  return [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((match) => match[1]!);
}

describe("README", function () {
  const readme = fs.readFileSync(path.join(projectRoot(), "README.md"), "utf8");

  it("documents every configuration key the schema accepts, and no other", function () {
    const schema = schemaKeys(plainConfigSchema);
    // A row `section.*` documents every key of the section ("as scoring.east.*").
    const documented = tableKeys(readme, "Configuration reference")
      .filter((key) => !key.startsWith("pulumi:"))
      .flatMap((key) => (key.endsWith(".*") ? schema.filter((name) => name.startsWith(key.slice(0, -1))) : [key]));
    assert.deepEqual([...documented].sort(), [...schema].sort());
  });

  it("documents every secret", function () {
    assert.deepEqual(tableKeys(readme, "Secrets").sort(), Object.keys(SECRET_KEYS).sort());
  });

  it("gives the command lines .ci/run and package.json actually run", function () {
    assert.match(readme, /npm ci && npm start\n/);
    assert.match(readme, /npm ci && npm run plan -- --stack qa1/);
    assert.match(readme, /npm ci && npm test/);
    const ci = fs.readFileSync(path.join(projectRoot(), ".ci/run"), "utf8");
    assert.match(ci, /^npm ci/m);
    assert.match(ci, /^npm test$/m);
  });
});

describe("README event flow", function () {
  it("is the diagram the program draws for qa1", async function () {
    const readme = fs.readFileSync(path.join(projectRoot(), "README.md"), "utf8");
    const documented = /## Event flow[\s\S]*?```mermaid\n([\s\S]*?)\n```/.exec(readme)?.[1];
    assert.ok(documented, "README has no mermaid block under Event flow");
    const plan = await planStack("qa1");
    const drawn = renderFlow(await describeResources(plan.resources), "vfid-qa1-us-east-1");
    assert.equal(documented, drawn, "README's diagram is out of date: npm run plan -- --stack qa1 --diagram flow.mmd");
  });
});
