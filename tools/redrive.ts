/**
 * npm run redrive -- --stack <name> --from <queue> [--region <region>] [--limit <n>] [--apply]
 *
 * Puts failed work back, from the queue `--from` names (docs/redrive.md): a dead-letter queue's
 * messages return to their source queue; a stream mapping's Kinesis failure records are resolved
 * to the records (while the stream still holds them) and re-delivered to the function; a record a
 * stream worker parked itself (Kinesis or Kafka) is invoked again, alone; an import worker's parked
 * S3 events are invoked again. Kafka failure records are reported, not redriven. A dry run
 * unless `--apply`: it prints, per message, what it would do. The stack is planned offline to
 * learn its queues, mappings and functions; the AWS clients take credentials and endpoints from
 * the standard SDK environment.
 *
 * Exits 0 when every message handled was (or, in a dry run, could be) redriven; 1 when some were
 * left on the queue (or on an error); 2 on a usage error or a queue name the stack does not have.
 */
import { parseArgs } from "node:util";
import { StackConfigError } from "../stacks/config";
import { readWiring } from "./local/wiring";
import { planStack } from "./offline/planStack";
import { environmentClients, redrive } from "./redrive/run";
import { UnknownQueueError } from "./redrive/targets";

const USAGE = `usage: npm run redrive -- --stack <qa1|dev1|preprod1|prod1> --from <queue> [--region <region>] [--limit <n>] [--apply] [--stack-file <file>]
  --stack       the stack whose queues are redriven (planned offline, as npm run plan does)
  --from        the queue to redrive: a dead-letter queue, or a stream mapping's or an import's failure queue;
                its physical name or its short name (e.g. acct-activity-sqs-dlq)
  --region      the region of the queue, when two regions have one of that short name
  --limit       handle at most this many messages
  --apply       act; without it, a dry run prints what it would do and changes nothing
  --stack-file  read the stack's configuration from this file instead of Pulumi.<stack>.yaml
Credentials and endpoints come from the AWS SDK's environment (AWS_PROFILE, AWS_ENDPOINT_URL_SQS,
AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL_LAMBDA, ...).`;

class UsageError extends Error {}

function parse() {
  const { values } = parseArgs({
    options: {
      stack: { type: "string" },
      from: { type: "string" },
      region: { type: "string" },
      limit: { type: "string" },
      apply: { type: "boolean", default: false },
      "stack-file": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) return undefined;
  if (!values.stack) throw new UsageError("--stack is required");
  if (!values.from) throw new UsageError("--from is required");
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) {
    throw new UsageError(`--limit: ${values.limit} is not a whole number above 0`);
  }
  return {
    stack: values.stack,
    from: values.from,
    region: values.region,
    limit,
    apply: values.apply === true,
    stackFile: values["stack-file"],
  };
}

async function main(): Promise<number> {
  const args = parse();
  if (!args) return (console.log(USAGE), 0);
  const { run } = await planStack(args.stack, args.stackFile);
  if (run.errors.length > 0) {
    throw new Error(`stack ${args.stack}: the program failed: ${run.errors.map((error) => error.message).join("; ")}`);
  }
  const clients = environmentClients();
  try {
    const result = await redrive({
      wiring: readWiring(run.resources),
      from: args.from,
      region: args.region,
      apply: args.apply,
      limit: args.limit,
      clients: clients.forRegion,
      print: (line) => console.log(line),
    });
    return result.outcomes.some((outcome) => outcome.action === "left") ? 1 : 0;
  } finally {
    clients.destroy();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) console.error(`${error.message}\n${USAGE}`);
    else console.error(error instanceof Error ? error.message : String(error));
    process.exit(error instanceof UsageError || error instanceof UnknownQueueError || error instanceof StackConfigError ? 2 : 1);
  },
);
