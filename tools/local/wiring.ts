/**
 * The topology of a stack as the program plans it, read from the resources an offline run
 * records: the functions (with their archives), the event source mappings, the queues, the
 * table and its change stream, asynchronous invocation settings, the REST API's routes and who
 * may invoke what. The local system is built from this and nothing else, so it cannot drift from
 * what `pulumi up` deploys.
 */
import type { RecordedResource } from "../offline/runtime";
import { REGISTERED, type WorkerName } from "../../workers/registry";

export interface PlannedFunction {
  /** The physical function name. */
  readonly name: string;
  readonly worker: WorkerName;
  /** The function's `code` archive, as the program hands it to Pulumi. */
  readonly code: unknown;
  readonly variables: Readonly<Record<string, string>>;
  readonly timeoutSeconds: number;
  readonly memoryMb: number;
  /** The level Lambda gives the function's logs (`loggingConfig.applicationLogLevel`). */
  readonly logLevel?: string;
  readonly region: string;
  readonly arn: string;
  readonly roleArn: string;
}

interface MappingBase {
  /** The mapping's logical name in the program. */
  readonly name: string;
  readonly functionName: string;
  readonly batchSize: number;
  readonly batchingWindowSeconds: number;
  /** Filter patterns (parsed); a record matching any is delivered. Empty: no filtering. */
  readonly filters: readonly object[];
  readonly reportBatchItemFailures: boolean;
}

/** A stream mapping: Kinesis or Kafka. */
export interface StreamMapping extends MappingBase {
  readonly kind: "kinesis" | "kafka";
  /** Kinesis: the stream's ARN. */
  readonly streamArn?: string;
  /** Kafka: the topic. */
  readonly topic?: string;
  readonly startingPosition: "LATEST" | "TRIM_HORIZON";
  readonly bisectOnError: boolean;
  /** -1: until the record expires. */
  readonly maximumRetryAttempts: number;
  readonly onFailureArn?: string;
  /** Kafka: the consumer group, and the brokers Lambda is given. */
  readonly consumerGroupId?: string;
  readonly bootstrapServers?: string;
}

export interface QueueMapping extends MappingBase {
  readonly kind: "sqs";
  readonly queueArn: string;
}

export type Mapping = StreamMapping | QueueMapping;

export interface PlannedQueue {
  readonly name: string;
  readonly arn: string;
  readonly url: string;
  readonly fifo: boolean;
  readonly visibilityTimeoutSeconds: number;
  readonly retentionSeconds: number;
  readonly contentBasedDeduplication: boolean;
  readonly redrive?: { readonly deadLetterTargetArn: string; readonly maxReceiveCount: number };
}

export interface PlannedTable {
  readonly name: string;
  readonly region: string;
  readonly hashKey: string;
  readonly rangeKey?: string;
  readonly attributes: readonly { readonly name: string; readonly type: string }[];
  readonly ttlAttribute?: string;
  /** The Kinesis stream its changes go to (streaming destination), if any. */
  readonly streamArn?: string;
}

/** How Lambda retries an asynchronous invocation, and where it sends one it gave up on. */
export interface AsyncInvokeConfig {
  readonly functionName: string;
  readonly maximumRetryAttempts: number;
  readonly onFailureArn?: string;
}

/** A lambda:InvokeFunction grant: which service may invoke which function, from where. */
export interface InvokeGrant {
  readonly functionName: string;
  readonly principal: string;
  readonly sourceArn?: string;
}

/** A REST API route integrated with a function (AWS_PROXY). */
export interface ApiRoute {
  readonly api: string;
  readonly stage: string;
  readonly method: string;
  /** The resource path, e.g. `/webhooks/persona`. */
  readonly path: string;
  readonly functionName: string;
  /** Headers (lower case) and query strings the method requires, when it validates parameters. */
  readonly requiredHeaders: readonly string[];
  readonly requiredQueryStrings: readonly string[];
  /** The JSON schema (draft-04) the body is validated against, when the method validates the body. */
  readonly bodySchema?: object;
  /** Gateway responses by type (`BAD_REQUEST_BODY`, …): status and JSON template. */
  readonly responses: Readonly<Record<string, { readonly statusCode: number; readonly template?: string }>>;
}

export interface Wiring {
  readonly functions: readonly PlannedFunction[];
  readonly mappings: readonly Mapping[];
  readonly queues: readonly PlannedQueue[];
  readonly tables: readonly PlannedTable[];
  /** Kinesis streams the program creates (the table's change stream). */
  readonly streams: readonly { readonly name: string; readonly arn: string }[];
  readonly asyncConfigs: readonly AsyncInvokeConfig[];
  readonly grants: readonly InvokeGrant[];
  readonly routes: readonly ApiRoute[];
}

/** The name of the resource an ARN names (`…:function:NAME`, `…:stream/NAME`, `…:NAME` for SQS). */
export function nameOfArn(arn: string): string {
  const last = arn.split(":").at(-1)!;
  return last.includes("/") ? last.slice(last.lastIndexOf("/") + 1) : last;
}

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const num = (value: unknown, fallback: number): number => (typeof value === "number" ? value : fallback);

function ofType(resources: readonly RecordedResource[], type: string): RecordedResource[] {
  return resources.filter((resource) => resource.type === type);
}

function workerOf(functionName: string): WorkerName {
  const entry = REGISTERED.find((candidate) => functionName.endsWith(`-${candidate.name}`));
  if (!entry) throw new Error(`planned function ${functionName} is none of the registered workers`);
  return entry.name;
}

function readFunctions(resources: readonly RecordedResource[]): PlannedFunction[] {
  return ofType(resources, "aws:lambda/function:Function").map((resource) => {
    const { inputs, state } = resource;
    const name = String(inputs.name);
    const environment = inputs.environment as { variables?: Record<string, string> } | undefined;
    const logging = inputs.loggingConfig as { applicationLogLevel?: string } | undefined;
    const arn = String(state.arn);
    return {
      name,
      worker: workerOf(name),
      code: inputs.code,
      variables: environment?.variables ?? {},
      timeoutSeconds: num(inputs.timeout, 3),
      memoryMb: num(inputs.memorySize, 128),
      logLevel: logging?.applicationLogLevel,
      region: arn.split(":")[3]!,
      arn,
      roleArn: String(inputs.role),
    };
  });
}

function readFilters(inputs: Record<string, unknown>): object[] {
  const criteria = inputs.filterCriteria as { filters?: { pattern: string }[] } | undefined;
  return (criteria?.filters ?? []).map((filter, index) => {
    try {
      return JSON.parse(filter.pattern) as object;
    } catch {
      throw new Error(`event source mapping ${String(inputs.functionName)}: filter ${index} is not JSON: ${filter.pattern}`);
    }
  });
}

function readMapping(resource: RecordedResource): Mapping {
  const inputs = resource.inputs;
  const base = {
    name: resource.name,
    functionName: String(inputs.functionName),
    filters: readFilters(inputs),
    reportBatchItemFailures: ((inputs.functionResponseTypes as string[] | undefined) ?? []).includes("ReportBatchItemFailures"),
  };
  const source = str(inputs.eventSourceArn);
  if (source?.startsWith("arn:aws:sqs:")) {
    return {
      ...base,
      kind: "sqs",
      queueArn: source,
      batchSize: num(inputs.batchSize, 10),
      batchingWindowSeconds: num(inputs.maximumBatchingWindowInSeconds, 0),
    };
  }
  const onFailure = (inputs.destinationConfig as { onFailure?: { destinationArn?: string } } | undefined)?.onFailure;
  const stream = {
    ...base,
    startingPosition: (str(inputs.startingPosition) ?? "LATEST") as StreamMapping["startingPosition"],
    bisectOnError: inputs.bisectBatchOnFunctionError === true,
    maximumRetryAttempts: num(inputs.maximumRetryAttempts, -1),
    onFailureArn: onFailure?.destinationArn,
    batchSize: num(inputs.batchSize, 100),
  };
  if (source?.startsWith("arn:aws:kinesis:")) {
    return {
      ...stream,
      kind: "kinesis",
      streamArn: source,
      batchingWindowSeconds: num(inputs.maximumBatchingWindowInSeconds, 0),
    };
  }
  const topics = inputs.topics as string[] | undefined;
  if (topics?.length === 1) {
    const endpoints = (inputs.selfManagedEventSource as { endpoints?: Record<string, string> } | undefined)?.endpoints;
    const config = inputs.selfManagedKafkaEventSourceConfig as { consumerGroupId?: string } | undefined;
    return {
      ...stream,
      kind: "kafka",
      topic: topics[0],
      // Lambda's default batching window for Kafka sources is 500 ms.
      batchingWindowSeconds: num(inputs.maximumBatchingWindowInSeconds, 0.5),
      consumerGroupId: config?.consumerGroupId,
      bootstrapServers: endpoints?.KAFKA_BOOTSTRAP_SERVERS,
    };
  }
  throw new Error(`event source mapping ${resource.name}: a source the local system cannot run (${source ?? "no ARN"})`);
}

function readQueues(resources: readonly RecordedResource[]): PlannedQueue[] {
  return ofType(resources, "aws:sqs/queue:Queue").map(({ inputs, state }) => {
    const redrive = str(inputs.redrivePolicy);
    return {
      name: String(inputs.name),
      arn: String(state.arn),
      url: String(state.url),
      fifo: inputs.fifoQueue === true,
      visibilityTimeoutSeconds: num(inputs.visibilityTimeoutSeconds, 30),
      retentionSeconds: num(inputs.messageRetentionSeconds, 345_600),
      contentBasedDeduplication: inputs.contentBasedDeduplication === true,
      redrive: redrive ? (JSON.parse(redrive) as PlannedQueue["redrive"]) : undefined,
    };
  });
}

function readTables(resources: readonly RecordedResource[], region: (resource: RecordedResource) => string): PlannedTable[] {
  const destinations = ofType(resources, "aws:dynamodb/kinesisStreamingDestination:KinesisStreamingDestination");
  return ofType(resources, "aws:dynamodb/table:Table").map((resource) => {
    const { inputs } = resource;
    const name = String(inputs.name);
    const ttl = inputs.ttl as { attributeName?: string; enabled?: boolean } | undefined;
    const destination = destinations.find((candidate) => candidate.inputs.tableName === name);
    return {
      name,
      region: region(resource),
      hashKey: String(inputs.hashKey),
      rangeKey: str(inputs.rangeKey),
      attributes: (inputs.attributes as { name: string; type: string }[] | undefined) ?? [],
      ttlAttribute: ttl?.enabled ? ttl.attributeName : undefined,
      streamArn: str(destination?.inputs.streamArn),
    };
  });
}

function readAsyncConfigs(resources: readonly RecordedResource[]): AsyncInvokeConfig[] {
  return ofType(resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").map(({ inputs }) => ({
    functionName: String(inputs.functionName),
    maximumRetryAttempts: num(inputs.maximumRetryAttempts, 2),
    onFailureArn: (inputs.destinationConfig as { onFailure?: { destination?: string } } | undefined)?.onFailure?.destination,
  }));
}

function readGrants(resources: readonly RecordedResource[]): InvokeGrant[] {
  return ofType(resources, "aws:lambda/permission:Permission").map(({ inputs }) => ({
    functionName: String(inputs.function),
    principal: String(inputs.principal),
    sourceArn: str(inputs.sourceArn),
  }));
}

/** The path of an API Gateway resource, from its `pathPart` and its parents'. */
function resourcePath(byId: Map<string, RecordedResource>, id: string): string {
  const resource = byId.get(id);
  if (!resource) return "";
  return `${resourcePath(byId, String(resource.inputs.parentId))}/${String(resource.inputs.pathPart)}`;
}

function readRoutes(resources: readonly RecordedResource[]): ApiRoute[] {
  const idOf = (resource: RecordedResource) => String(resource.state.id ?? `${String(resource.inputs.name ?? resource.name)}-id`);
  const apiResources = new Map(ofType(resources, "aws:apigateway/resource:Resource").map((r) => [idOf(r), r]));
  const validators = new Map(ofType(resources, "aws:apigateway/requestValidator:RequestValidator").map((r) => [idOf(r), r]));
  const models = ofType(resources, "aws:apigateway/model:Model");
  const stages = ofType(resources, "aws:apigateway/stage:Stage");
  const gatewayResponses = ofType(resources, "aws:apigateway/response:Response");
  return ofType(resources, "aws:apigateway/method:Method").flatMap((method) => {
    const m = method.inputs;
    const integration = ofType(resources, "aws:apigateway/integration:Integration").find(
      (candidate) => candidate.inputs.resourceId === m.resourceId && candidate.inputs.httpMethod === m.httpMethod,
    );
    const uri = str(integration?.inputs.uri);
    if (!integration || integration.inputs.type !== "AWS_PROXY" || !uri) return [];
    const validator = validators.get(String(m.requestValidatorId));
    const parameters = Object.keys((m.requestParameters as Record<string, boolean> | undefined) ?? {});
    const required = (prefix: string) =>
      validator?.inputs.validateRequestParameters === true
        ? parameters.filter((p) => p.startsWith(prefix)).map((p) => p.slice(prefix.length).toLowerCase())
        : [];
    const modelName = (m.requestModels as Record<string, string> | undefined)?.["application/json"];
    const model = models.find((candidate) => candidate.inputs.name === modelName && candidate.inputs.restApi === m.restApi);
    const api = String(m.restApi);
    const responses = Object.fromEntries(
      gatewayResponses
        .filter((response) => response.inputs.restApiId === api)
        .map((response) => [
          String(response.inputs.responseType),
          {
            statusCode: Number(response.inputs.statusCode ?? 400),
            template: (response.inputs.responseTemplates as Record<string, string> | undefined)?.["application/json"],
          },
        ]),
    );
    return [
      {
        api,
        stage: String(stages.find((stage) => stage.inputs.restApi === api)?.inputs.stageName ?? "local"),
        method: String(m.httpMethod),
        path: resourcePath(apiResources, String(m.resourceId)),
        functionName: nameOfArn(uri.replace(/\/invocations$/, "")),
        requiredHeaders: required("method.request.header."),
        requiredQueryStrings: required("method.request.querystring."),
        bodySchema:
          validator?.inputs.validateRequestBody === true && model
            ? (JSON.parse(String(model.inputs.schema)) as object)
            : undefined,
        responses,
      },
    ];
  });
}

/** The topology of the planned resources. */
export function readWiring(resources: readonly RecordedResource[]): Wiring {
  const providerRegion = new Map(
    resources.filter((r) => r.type.startsWith("pulumi:providers:aws")).map((r) => [r.urn, String(r.inputs.region)]),
  );
  const region = (resource: RecordedResource) => providerRegion.get(resource.providerUrn) ?? "us-east-1";
  return {
    functions: readFunctions(resources),
    mappings: ofType(resources, "aws:lambda/eventSourceMapping:EventSourceMapping").map(readMapping),
    queues: readQueues(resources),
    tables: readTables(resources, region),
    streams: ofType(resources, "aws:kinesis/stream:Stream").map(({ inputs, state }) => ({
      name: String(inputs.name),
      arn: String(state.arn),
    })),
    asyncConfigs: readAsyncConfigs(resources),
    grants: readGrants(resources),
    routes: readRoutes(resources),
  };
}
