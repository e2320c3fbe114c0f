/**
 * The vocabulary of the local system (`npm start`): what its parts hand each other. The wiring
 * (read from the program's offline plan) says what exists; the local services stand in for AWS
 * and the outside world; the Lambda emulation runs the real archives; everything that happens is
 * reported as a `LocalEvent`, from which the figures and the ledger are computed.
 */

/** A service the local system starts, and how to reach it. */
export interface RunningService {
  /** Base URL (`http://127.0.0.1:<port>`) of its HTTP endpoint, where it has one. */
  readonly url: string;
  close(): Promise<void>;
}

/** A change record as DynamoDB's Kinesis streaming destination writes it (the record's `data`). */
export interface TableChangeRecord {
  readonly awsRegion: string;
  readonly eventID: string;
  readonly eventName: "INSERT" | "MODIFY" | "REMOVE";
  /** On TTL deletions `{ type: "Service", principalId: "dynamodb.amazonaws.com" }`, else null. */
  readonly userIdentity?: { readonly type: string; readonly principalId: string } | null;
  readonly recordFormat: "application/json";
  readonly tableName: string;
  readonly dynamodb: {
    /**
     * Epoch milliseconds: the table's destination has MILLISECOND precision (with MICROSECOND,
     * epoch microseconds and `ApproximateCreationDateTimePrecision: "MICROSECOND"`).
     */
    readonly ApproximateCreationDateTime: number;
    readonly Keys: Record<string, unknown>;
    readonly NewImage?: Record<string, unknown>;
    readonly OldImage?: Record<string, unknown>;
    readonly SizeBytes: number;
  };
  readonly eventSource: "aws:dynamodb";
}

/**
 * What the local system reports as it runs. Sources report what they deliver and park; the
 * Lambda emulation reports invocations and every JSON log line a worker writes.
 */
export type LocalEvent =
  /** A worker's log line (Powertools JSON), as the worker wrote it. */
  | { readonly kind: "log"; readonly function: string; readonly line: Record<string, unknown> }
  /** A non-JSON line on a worker's stdout or stderr (a crash, a stack trace). */
  | { readonly kind: "output"; readonly function: string; readonly text: string }
  | {
      readonly kind: "invocation";
      readonly function: string;
      /** The request id the worker's log lines carry. */
      readonly requestId: string;
      readonly coldStart: boolean;
      readonly ms: number;
      readonly outcome: "ok" | "error" | "timeout" | "crash";
      readonly error?: string;
    }
  /** Records a mapping's filter criteria kept from a function. */
  | { readonly kind: "filtered"; readonly mapping: string; readonly count: number }
  /**
   * Records a source handed to a function in one batch, and which: Kinesis sequence numbers, Kafka
   * `<topic>-<partition>@<offset>`, SQS message ids (so a test can count deliveries per record).
   */
  | { readonly kind: "delivered"; readonly mapping: string; readonly count: number; readonly records?: readonly string[] }
  /** Records a mapping gave up on and sent to its on-failure destination (or a DLQ received). */
  | { readonly kind: "parked"; readonly mapping: string; readonly destination: string; readonly count: number }
  /** Records put on an input (by the traffic generator or a worker's table write). */
  | { readonly kind: "input"; readonly source: string; readonly count: number };

export type Report = (event: LocalEvent) => void;

/** The endpoints of a run that can be reached through something in front of them. */
export type EndpointName = "dynamodb" | "kinesis" | "sqs" | "table" | "accounts" | "modelServing";

/**
 * Answers the URL by which the rest of the system reaches the endpoint at `url`: a benchmark puts
 * a counting proxy there. Not given (every normal run): the endpoint's own URL.
 */
export type WrapEndpoint = (name: EndpointName, url: string) => Promise<string>;
