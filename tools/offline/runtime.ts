/**
 * Runs the Pulumi program offline, under the SDK's runtime mocks: no CLI, no cloud account.
 * Every resource registration and every provider function call is recorded with its inputs,
 * parent and provider, and each resource gets plausible outputs (ids, ARNs, URLs) so that the
 * program's dataflow runs as it would in a preview. A provider function nobody answers for
 * fails the run, so nothing passes by accident.
 */
import { createHash } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as settings from "@pulumi/pulumi/runtime/settings";

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly custom: boolean;
  readonly inputs: Record<string, unknown>;
  /** URN of the provider reference the resource was registered with, if any. */
  readonly providerUrn?: string;
  parentUrn?: string;
  urn?: string;
  /** The outputs the mocks answered with. */
  readonly state: Record<string, unknown>;
}

export interface RecordedCall {
  readonly token: string;
  readonly inputs: Record<string, unknown>;
  readonly providerUrn?: string;
}

export interface OfflineRun<T> {
  readonly resources: RecordedResource[];
  readonly calls: RecordedCall[];
  /** What the program returned (its stack outputs), resolved. */
  readonly outputs: pulumi.Unwrap<T>;
  /** Failures the program did not raise synchronously (rejected applies, serialization errors). */
  readonly errors: Error[];
  /**
   * What the program logged with `pulumi.log.info` and `pulumi.log.warn`, as `info: …` and
   * `warning: …`: the diagnostics the CLI shows after a preview, kept for the caller to report.
   */
  readonly messages: string[];
}

export interface OfflineOptions<T> {
  readonly project: string;
  readonly stack: string;
  /** Configuration as the CLI would pass it: `namespace:key` → text. */
  readonly config: Record<string, string>;
  readonly secretKeys: readonly string[];
  /** The account the mocks place resources in. */
  readonly accountId: string;
  readonly program: () => T;
  /** Answers for provider functions, replacing the defaults (to model another environment). */
  readonly answers?: Record<string, (inputs: Record<string, unknown>) => Record<string, unknown>>;
}

const OFFLINE_VPC = "vpc-0000000000000offl";

/** Answers for the provider functions the program calls. */
function answerCall(token: string, inputs: Record<string, unknown>, accountId: string): Record<string, unknown> {
  switch (token) {
    case "aws:index/getCallerIdentity:getCallerIdentity":
      return { accountId, arn: `arn:aws:iam::${accountId}:user/offline`, userId: "OFFLINE", id: accountId };
    case "aws:ec2/getVpc:getVpc":
      return { id: OFFLINE_VPC, cidrBlock: "10.0.0.0/16", tags: inputs.tags ?? {} };
    case "aws:ec2/getSubnets:getSubnets": {
      const filters = (inputs.filters ?? []) as { name: string; values: string[] }[];
      const tier = filters.find((filter) => filter.name.startsWith("tag:"))?.values[0] ?? "any";
      const ids = ["a", "b", "c"].map((zone) => `subnet-${tier}0000000000000${zone}`.slice(0, 24));
      return { id: `${tier}-subnets`, ids, filters };
    }
    case "aws:ec2/getManagedPrefixList:getManagedPrefixList": {
      // AWS's managed prefix lists are named com.amazonaws.<region>.<service>.
      const name = String(inputs.name);
      return { id: `pl-${createHash("sha256").update(name).digest("hex").slice(0, 8)}`, name, entries: [] };
    }
    case "aws:route53/getZone:getZone":
      return { id: "Z0OFFLINE0000000000", zoneId: "Z0OFFLINE0000000000", name: inputs.name, privateZone: false };
    default:
      throw new Error(`offline run: no mock answer for provider function ${token}; add one to tools/offline/runtime.ts`);
  }
}

/** Plausible outputs of a created resource: its inputs, an id, and an ARN (and URL) where AWS has them. */
function resourceState(
  type: string,
  name: string,
  inputs: Record<string, unknown>,
  region: string,
  accountId: string,
): { id: string; state: Record<string, unknown> } {
  if (type === "awsx:ec2:Vpc") return { id: "", state: awsxVpcState(name, inputs) };
  const physical = typeof inputs.name === "string" ? inputs.name : name;
  const [, module = "", resource = ""] = /^aws:([^/]+)\/([^:]+):/.exec(type) ?? [];
  const arn = (service: string, rest: string, inRegion = true) =>
    `arn:aws:${service}:${inRegion ? region : ""}:${service === "s3" ? "" : accountId}:${rest}`;
  const state: Record<string, unknown> = { ...inputs };
  let id = `${physical}-id`;
  switch (`${module}/${resource}`) {
    case "iam/role":
      state.arn = arn("iam", `role/${physical}`, false);
      id = physical;
      break;
    case "lambda/function":
      state.arn = arn("lambda", `function:${physical}`);
      state.invokeArn = `arn:aws:apigateway:${region}:lambda:path/2015-03-31/functions/${state.arn}/invocations`;
      state.qualifiedArn = `${state.arn}:$LATEST`;
      // The archive stays in the recorded inputs, not in the outputs: Pulumi renders every
      // registration's response into a debug line, logged or not, and for a megabyte of bundled
      // code per function that alone took seconds of a plan.
      delete state.code;
      id = physical;
      break;
    case "cloudwatch/logGroup":
      state.arn = arn("logs", `log-group:${physical}`);
      id = physical;
      break;
    case "sqs/queue":
      state.arn = arn("sqs", physical);
      state.url = `https://sqs.${region}.amazonaws.com/${accountId}/${physical}`;
      id = state.url as string;
      break;
    case "apigateway/restApi":
      id = `${physical
        .replace(/[^a-z0-9]/gi, "")
        .slice(0, 10)
        .toLowerCase()}api`;
      state.rootResourceId = `${id}root`;
      state.executionArn = `arn:aws:execute-api:${region}:${accountId}:${id}`;
      state.arn = `arn:aws:apigateway:${region}::/restapis/${id}`;
      break;
    case "apigateway/domainName":
      id = physical;
      state.regionalDomainName = `d-offline000.execute-api.${region}.amazonaws.com`;
      state.regionalZoneId = "Z1UJRXOUMOOFQ8";
      state.arn = `arn:aws:apigateway:${region}::/domainnames/${physical}`;
      break;
    case "acm/certificate":
      state.arn = arn("acm", `certificate/offline-${name}`);
      id = state.arn as string;
      state.domainValidationOptions = [
        {
          domainName: inputs.domainName,
          resourceRecordName: `_0ffline.${inputs.domainName}.`,
          resourceRecordType: "CNAME",
          resourceRecordValue: `_0ffline.validations.acm-validations.aws.`,
        },
      ];
      break;
    case "cloudwatch/logDestination":
      state.arn = arn("logs", `destination:${physical}`);
      id = physical;
      break;
    case "sns/topic":
      state.arn = arn("sns", physical);
      id = state.arn as string;
      break;
    case "cloudwatch/metricAlarm":
      state.arn = arn("cloudwatch", `alarm:${physical}`);
      id = physical;
      break;
    case "kms/key":
      id = `offline-key-${name}`;
      state.arn = arn("kms", `key/${id}`);
      state.keyId = id;
      break;
    case "secretsmanager/secret":
      state.arn = arn("secretsmanager", `secret:${physical}-AbCdEf`);
      id = state.arn as string;
      break;
    default:
      if (module && module !== "index") state.arn = arn(module, `${resource}/${physical}`);
  }
  return { id, state };
}

/**
 * The outputs of an awsx VPC. It is a component run by its own provider plugin, so its children
 * (subnets, route tables, NAT gateways, gateway endpoints) are never registered here: the ids the
 * program reads are answered instead, one subnet per tier and zone, named after the VPC.
 */
function awsxVpcState(name: string, inputs: Record<string, unknown>): Record<string, unknown> {
  const zones = Number(inputs.numberOfAvailabilityZones ?? 3);
  const digest = createHash("sha256").update(name).digest("hex");
  const subnets = (type: string) =>
    Array.from(
      { length: zones },
      (_, zone) => `subnet-${createHash("sha256").update(`${digest}${type}${zone}`).digest("hex").slice(0, 17)}`,
    );
  const specs = (inputs.subnetSpecs ?? []) as { type: string }[];
  const of = (type: string) => (specs.some((spec) => spec.type === type) ? subnets(type) : []);
  return {
    ...inputs,
    vpcId: `vpc-${digest.slice(0, 17)}`,
    publicSubnetIds: of("Public"),
    privateSubnetIds: of("Private"),
    isolatedSubnetIds: of("Isolated"),
  };
}

/** A provider reference is `<urn>::<id>`. */
const providerUrnOf = (reference?: string) => (reference ? reference.slice(0, reference.lastIndexOf("::")) : undefined);

/**
 * Runs `program` under mocks and waits for every registration to finish. Throws what the
 * program throws synchronously (a configuration error, a contract not met).
 */
export async function runOffline<T>(options: OfflineOptions<T>): Promise<OfflineRun<T>> {
  const resources: RecordedResource[] = [];
  const calls: RecordedCall[] = [];
  const errors: Error[] = [];
  const regionOfProvider = new Map<string, string>();
  let failed: () => void = () => {};
  const failure = new Promise<void>((resolve) => (failed = resolve));
  const onRejection = (reason: unknown) => {
    errors.push(reason instanceof Error ? reason : new Error(String(reason)));
    failed();
  };
  process.on("unhandledRejection", onRejection);

  // Links the registration in flight to the record `newResource` makes for it: the mock monitor
  // calls `newResource` synchronously from `registerResource`.
  let registering: { parentUrn?: string; record?: RecordedResource } | undefined;

  pulumi.runtime.setAllConfig(options.config, [...options.secretKeys]);
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = args.inputs as Record<string, unknown>;
        const providerUrn = providerUrnOf(args.provider);
        const region = (providerUrn && regionOfProvider.get(providerUrn)) ?? "no-region";
        const { id, state } = args.type.startsWith("pulumi:providers:")
          ? { id: `${args.name}-provider`, state: inputs }
          : resourceState(args.type, args.name, inputs, region, options.accountId);
        const record: RecordedResource = {
          type: args.type,
          name: args.name,
          custom: args.custom ?? false,
          inputs,
          providerUrn,
          state,
        };
        if (registering) {
          record.parentUrn = registering.parentUrn;
          registering.record = record;
          registering = undefined;
        }
        resources.push(record);
        return { id: args.custom ? id : undefined, state };
      },
      call(args) {
        calls.push({
          token: args.token,
          inputs: args.inputs as Record<string, unknown>,
          providerUrn: providerUrnOf(args.provider),
        });
        const inputs = args.inputs as Record<string, unknown>;
        const answer = options.answers?.[args.token];
        return answer ? answer(inputs) : answerCall(args.token, inputs, options.accountId);
      },
    },
    options.project,
    options.stack,
    true,
  );

  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(request: RegisterRequest, callback: (error: unknown, response?: { getUrn(): string }) => void): void;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (request, callback) => {
    const slot: { parentUrn?: string; record?: RecordedResource } = { parentUrn: request.getParent() || undefined };
    registering = slot;
    register(request, (error, response) => {
      if (slot.record && response) {
        slot.record.urn = response.getUrn();
        if (slot.record.type.startsWith("pulumi:providers:aws")) {
          regionOfProvider.set(slot.record.urn, String(slot.record.inputs.region));
        }
      }
      callback(error, response);
    });
  };

  // Pulumi captures a stack trace for every promise it makes, thousands in a plan: a third of the
  // program's run. A plan reports errors by their messages, so traces are off while it runs.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  const messages: string[] = [];
  const restoreConsole = keepDiagnostics(messages);
  try {
    const returned = options.program();
    let outputs: { value: pulumi.Unwrap<T> } | undefined;
    pulumi.output(returned).apply((value) => {
      outputs = { value: value as pulumi.Unwrap<T> };
    });
    await settle(failure, () => resources.length);
    if (!outputs) errors.push(new Error("the program's outputs never resolved: a resource failed to register"));
    return { resources, calls, outputs: outputs?.value as pulumi.Unwrap<T>, errors, messages };
  } finally {
    restoreConsole();
    Error.stackTraceLimit = stackTraceLimit;
    process.off("unhandledRejection", onRejection);
  }
}

/**
 * With no engine to send them to, Pulumi's log functions write `<severity>: [runtime] <message>`
 * to the console; info and warning lines are kept in `messages` instead while the program runs
 * (errors still go to the console). Returns the function that puts the console back.
 */
function keepDiagnostics(messages: string[]): () => void {
  const original = { log: console.log, warn: console.warn };
  const keep =
    (write: (...args: unknown[]) => void) =>
    (...args: unknown[]) => {
      const diagnostic = args.length === 1 && typeof args[0] === "string" && /^(info|warning): \[runtime\] /.exec(args[0]);
      if (diagnostic) messages.push((args[0] as string).replace(" [runtime]", ""));
      else write(...args);
    };
  console.log = keep(original.log);
  console.warn = keep(original.warn);
  return () => Object.assign(console, original);
}

interface RegisterRequest {
  getParent(): string;
}

/**
 * Waits until no registration is in flight, including those started by applies that resolved
 * meanwhile. A failed input (a rejected apply) leaves its resource's registration pending for
 * ever; once a failure is seen, the run ends when no new resource has registered for a moment.
 */
async function settle(failure: Promise<void>, registered: () => number): Promise<void> {
  const waitForRPCs = (settings as unknown as { waitForRPCs(): Promise<void> }).waitForRPCs;
  const quiet = async () => {
    await failure;
    for (let count = -1; count !== registered();) {
      count = registered();
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };
  for (let round = 0; round < 3; round++) {
    await Promise.race([waitForRPCs(), quiet()]);
    await new Promise((resolve) => setImmediate(resolve));
  }
}
