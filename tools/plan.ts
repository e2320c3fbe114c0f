/**
 * npm run plan -- --stack <name> [--json <file>]
 *
 * Runs the Pulumi program offline, under runtime mocks, with the stack's configuration, and
 * prints the resources it would create as a tree: type, name, region and key settings. Needs no
 * cloud account and no Pulumi CLI. Exits non-zero, naming the key, when the configuration is
 * wrong, and when a worker's contract is not met.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { projectRoot } from "../components/archive";
import { namePrefix } from "../components/naming";
import { PRIMARY_REGION, PROJECT, StackConfigError } from "../stacks/config";
import { describeResources, renderTree } from "./offline/describe";
import { renderFlow } from "./offline/diagram";
import { planStack } from "./offline/planStack";

const USAGE = `usage: npm run plan -- --stack <qa1|dev1|preprod1|prod1> [--json <file>] [--diagram <file>] [--stack-file <file>]
  --stack       the stack to plan
  --json        also write the planned resources, with their inputs, to this file
  --diagram     also write the event flow (streams, queues, workers, table) as a Mermaid flowchart to this file
  --stack-file  read the stack's configuration from this file instead of Pulumi.<stack>.yaml`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      json: { type: "string" },
      diagram: { type: "string" },
      "stack-file": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (!values.stack) {
    console.error(USAGE);
    return 2;
  }
  const root = projectRoot();
  const { stackFile, run } = await planStack(values.stack, values["stack-file"], { reportsDiagnostics: true });
  if (run.errors.length > 0) {
    console.error(`stack "${values.stack}": the program failed:`);
    for (const error of run.errors) console.error(`  - ${error.message}`);
    return 1;
  }

  const planned = await describeResources(run.resources);
  const custom = run.resources.filter((resource) => resource.custom && !resource.type.startsWith("pulumi:providers:"));
  console.log(`Stack ${values.stack} (${path.relative(root, stackFile.file)}): ${custom.length} resources\n`);
  console.log(renderTree(planned));
  console.log("\nOutputs:");
  for (const [key, value] of Object.entries(run.outputs as Record<string, unknown>))
    console.log(`  ${key}: ${typeof value === "object" ? JSON.stringify(value) : String(value)}`);
  if (run.messages.length > 0) console.log(`\nDiagnostics:\n${run.messages.map((message) => `  ${message}`).join("\n")}`);
  for (const key of stackFile.unsetSecrets) {
    console.warn(`\nwarning: secret ${key} is not set for ${values.stack}; pulumi up stops until it is:`);
    console.warn(`  pulumi config set --secret ${key.slice(PROJECT.length + 1)} '<value>' -s ${values.stack}`);
  }
  if (values.diagram) {
    const environment = stackFile.values[`${PROJECT}:environment`] ?? values.stack;
    const prefix = namePrefix(stackFile.values[`${PROJECT}:productCode`]!, environment, PRIMARY_REGION);
    fs.writeFileSync(values.diagram, `${renderFlow(planned, prefix)}\n`);
    console.log(`\nWrote ${values.diagram}`);
  }
  if (values.json) {
    fs.writeFileSync(
      values.json,
      `${JSON.stringify({ stack: values.stack, resources: planned, outputs: run.outputs }, null, 2)}\n`,
    );
    console.log(`\nWrote ${values.json}`);
  }
  return 0;
}

/** Exits once stdout has taken everything written: `process.exit` alone cuts a piped plan short. */
const exitWhenFlushed = (code: number) => process.stdout.write("", () => process.exit(code));

main().then(
  (code) => exitWhenFlushed(code),
  (error: unknown) => {
    if (error instanceof StackConfigError) {
      console.error(error.message);
    } else {
      console.error(error instanceof Error ? `${error.message}` : String(error));
    }
    process.exit(1);
  },
);
