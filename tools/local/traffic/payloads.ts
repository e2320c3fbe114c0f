/**
 * What the traffic generator puts on each input, and what must become of it. An event is drawn
 * as a `Draft` (its source, its kind, its fan) and encoded when it is put, as the producers of
 * each input write it (the recorded events under test/fixtures/events): Kafka user activity,
 * Verified Fan logins, demand-table changes carried in Kinesis, purchases and queue-journey steps,
 * and bad records of each.
 *
 * The expected outcome is this module's own reading of the documented rules (docs/flows.md,
 * docs/rules.md#scorable-activities, the filters of docs/flows.md#event-sources), written here
 * and not imported from workers/: a worker that changes what it accepts fails the tests that hold
 * the two side by side.
 */
import { createHash } from "node:crypto";
import { createRandom, type Random } from "./random";

/** The inputs the generator feeds: the Kafka user-activity topic and the four Kinesis input streams. */
export const SOURCE_ROLES = ["kafka", "vf", "demand", "purchase", "sqJourney"] as const;
export type SourceRole = (typeof SOURCE_ROLES)[number];
export type KinesisRole = Exclude<SourceRole, "kafka">;

/** Kafka actions whose successful result is scored (docs/rules.md#scorable-activities). */
export const SCORABLE_ACTIONS: readonly string[] = [
  "add_phone",
  "create_account",
  "login",
  "reset_password",
  "update_account",
  "update_email",
  "update_phone",
  "verify_otp",
  "verify_otp_mfa",
];

/** Actions the accounts service also reports, none of them scored. */
export const NOT_SCORABLE_ACTIONS: readonly string[] = [
  "logout",
  "refresh_token",
  "view_account",
  "accept_terms",
  "unlink_account",
];

/** Results other than success: the activity is skipped. */
export const FAILED_RESULTS: readonly string[] = ["failure", "blocked", "error"];

/** VF input-stream event types other than vfLogin (kept from the worker by the mapping's filter). */
export const OTHER_VF_TYPES: readonly string[] = ["vfRegistration", "vfLogout", "vfCodeRedeemed"];

/** Purchase statuses other than SUCCESS (kept from the worker by the mapping's filter). */
export const OTHER_PURCHASE_STATUSES: readonly string[] = ["FAILED", "PENDING", "CANCELLED", "REFUNDED"];

export const JOURNEY_STEPS: readonly string[] = ["queue_joined", "queue_position_update", "queue_exited", "checkout_started"];

/** How a bad record is bad. */
export type BadKind = "undecodable" | "noFanId" | "invalidFanId";

/** The ways of each kind: an undecodable Kafka value may also be bytes that are not UTF-8, or a tombstone. */
export const BAD_VARIANTS = {
  undecodable: { kinesis: ["truncatedJson", "plainText"], kafka: ["truncatedJson", "plainText", "notUtf8", "tombstone"] },
  noFanId: { kinesis: ["missing"], kafka: ["missing"] },
  invalidFanId: { kinesis: ["whitespace", "hash", "tooLong"], kafka: ["whitespace", "hash", "tooLong"] },
} as const;

/** An event as drawn: everything random about it is decided here; the time is added when it is put. */
export type Draft = {
  /** Its place in the generated sequence, from 0. */
  readonly seq: number;
  /** Seeds the details of its payload (ids, amounts, markets). */
  readonly salt: number;
} & (
  | {
      readonly role: "kafka";
      readonly kind: "activity";
      readonly globalUserId: string;
      readonly action: string;
      readonly result: string;
    }
  | { readonly role: "vf"; readonly kind: "vfEvent"; readonly globalUserId: string; readonly type: string }
  | {
      readonly role: "demand";
      readonly kind: "change";
      readonly globalUserId: string;
      readonly eventName: "INSERT" | "MODIFY" | "REMOVE";
    }
  | { readonly role: "purchase"; readonly kind: "purchase"; readonly globalUserId: string; readonly status: string }
  | { readonly role: "sqJourney"; readonly kind: "journeyStep"; readonly globalUserId: string; readonly step: string }
  | {
      readonly role: SourceRole;
      readonly kind: "bad";
      readonly bad: BadKind;
      readonly variant: string;
      /** A fan of the population the record is about (its key), though it does not name it validly. */
      readonly aboutFan: string;
    }
);

/** Why an event is expected to be skipped. */
export type SkipReason =
  /** A mapping's filter keeps it from the worker. */
  | "filtered"
  /** A Kafka activity whose action is not scored. */
  | "notScorable"
  /** A Kafka activity whose result is not success. */
  | "failedResult"
  /** The accounts service does not know the fan (ARAI 404): lookupArai lets its messages go. */
  | "fanUnknown";

/** What must become of an event, by the documented rules. */
export type ExpectedOutcome =
  /** The fan must end up scored. */
  | { readonly outcome: "scored" }
  | { readonly outcome: "skipped"; readonly reason: SkipReason; readonly detail: string }
  /** A bad record: the worker fails it, and it must reach the mapping's failure destination. */
  | { readonly outcome: "parked"; readonly reason: string };

const INVALID_ID_DETAIL: Record<string, string> = {
  whitespace: "globalUserId with whitespace",
  hash: "globalUserId with #",
  tooLong: "globalUserId longer than 128 characters",
};

/** What must become of a bad record: filtered where a mapping's filter cannot match it, else parked. */
function badOutcome(draft: Extract<Draft, { kind: "bad" }>): ExpectedOutcome {
  const filtered = (detail: string): ExpectedOutcome => ({ outcome: "skipped", reason: "filtered", detail });
  if (draft.bad === "undecodable") {
    // Lambda parses `data` as JSON to filter: data that is not JSON matches no pattern on it.
    if (draft.role !== "kafka") return filtered("data is not JSON: matches no filter on data");
    const reasons: Record<string, string> = {
      tombstone: "value is null (a tombstone)",
      notUtf8: "value is not UTF-8",
    };
    return { outcome: "parked", reason: reasons[draft.variant] ?? "value is not JSON" };
  }
  if (draft.bad === "noFanId") {
    if (draft.role === "kafka") return { outcome: "parked", reason: "activity without globalUserId" };
    // The vf filter asks only for type = vfLogin; the others require the fan's id to exist.
    if (draft.role === "vf") return { outcome: "parked", reason: "VF login without globalUserId" };
    return filtered("no globalUserId: the filter requires one");
  }
  return { outcome: "parked", reason: INVALID_ID_DETAIL[draft.variant] ?? "invalid globalUserId" };
}

/** Why a well-formed event is skipped before any fan is looked up, or undefined when it is activity. */
function skipOf(draft: Exclude<Draft, { kind: "bad" }>): ExpectedOutcome | undefined {
  const skip = (reason: SkipReason, detail: string): ExpectedOutcome => ({ outcome: "skipped", reason, detail });
  switch (draft.role) {
    case "kafka":
      if (draft.result !== "success") return skip("failedResult", `${draft.action} result is ${draft.result}`);
      return SCORABLE_ACTIONS.includes(draft.action) ? undefined : skip("notScorable", `action ${draft.action}`);
    case "vf":
      return draft.type === "vfLogin" ? undefined : skip("filtered", `type ${draft.type}, not vfLogin`);
    case "demand":
      return draft.eventName === "REMOVE" ? skip("filtered", "demand REMOVE") : undefined;
    case "purchase":
      return draft.status === "SUCCESS" ? undefined : skip("filtered", `purchase status ${draft.status}`);
    case "sqJourney":
      return undefined;
  }
}

/** What must become of `draft`, by the documented rules; `unknownFans` are those the accounts service does not know. */
export function expectedOutcome(draft: Draft, unknownFans: ReadonlySet<string>): ExpectedOutcome {
  if (draft.kind === "bad") return badOutcome(draft);
  const skipped = skipOf(draft);
  if (skipped) return skipped;
  if (unknownFans.has(draft.globalUserId)) {
    return { outcome: "skipped", reason: "fanUnknown", detail: "the accounts service does not know the fan" };
  }
  return { outcome: "scored" };
}

/** The fan an event validly names, if any (bad records name none). */
export const fanOf = (draft: Draft): string | undefined => (draft.kind === "bad" ? undefined : draft.globalUserId);

/** The action a scoring-queue message would carry for the event: the Kafka action, vfLogin, or the source's name. */
export function actionOf(draft: Draft): string {
  if (draft.role === "kafka") return draft.kind === "activity" ? draft.action : "activity";
  if (draft.role === "vf") return draft.kind === "vfEvent" ? draft.type : "vfLogin";
  return draft.role;
}

/** An id that is not a valid globalUserId, made from a fan's. */
function invalidId(fan: string, variant: string): string {
  if (variant === "whitespace") return `${fan.slice(0, 6)} ${fan.slice(6)}`;
  if (variant === "hash") return `${fan}#dup`;
  return `${fan}-${"x".repeat(129 - fan.length - 1)}`;
}

const iso = (at: number) => new Date(at).toISOString();

/** The JSON object a well-formed Kinesis event carries (the fixtures' fields, for another fan, time and details). */
function kinesisPayload(draft: Draft, fan: string | undefined, at: number, options: EncodeOptions): Record<string, unknown> {
  const detail = createRandom(draft.salt);
  const fanField = fan === undefined ? {} : { globalUserId: fan };
  switch (draft.role) {
    case "vf":
      return {
        type: draft.kind === "vfEvent" ? draft.type : "vfLogin",
        ...fanField,
        timestamp: iso(at),
        campaignId: detail.pick(["taylor-swift-eras-2026", "coldplay-mots-2026", "beyonce-cowboy-2026"]),
        market: detail.pick(["US", "GB", "CA"]),
        ipCountry: detail.pick(["US", "GB", "CA", "MX"]),
        userAgent: detail.pick(["Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)", "Mozilla/5.0 (X11; Linux x86_64)"]),
      };
    case "purchase":
      return purchasePayload(draft, fan, at, detail);
    case "sqJourney":
      return {
        ...fanField,
        journeyStep: draft.kind === "journeyStep" ? draft.step : "queue_joined",
        queueId: `q-eras-2026-us-${String(detail.int(1, 9999)).padStart(4, "0")}`,
        eventId: `vvG1zZ${detail.hex(7)}`,
        position: detail.int(1, 50_000),
        timestamp: iso(at),
      };
    case "demand":
      return demandChange(draft, fan, at, options.demandTableName, detail);
    case "kafka":
      // Kafka records are encoded by encodeKafka; the same payload, should one be put on a stream.
      return activityPayload(draft, fan, at, detail);
  }
}

function purchasePayload(draft: Draft, fan: string | undefined, at: number, detail: Random) {
  const tickets = detail.int(1, 6);
  return {
    purchaseId: `ord-${detail.int(1000, 9999)}-${detail.int(1000, 9999)}`,
    status: draft.kind === "purchase" ? draft.status : "SUCCESS",
    customer: {
      ...(fan === undefined ? {} : { globalUserId: fan }),
      country: detail.pick(["US", "GB"]),
      memberSince: "2019-03-02",
    },
    eventId: `vvG1zZ${detail.hex(7)}`,
    ticketCount: tickets,
    totalAmount: { currency: "USD", value: Math.round(tickets * detail.int(4000, 30000)) / 100 },
    channel: detail.pick(["web", "app"]),
    timestamp: iso(at),
  };
}

/** A demand-table change as DynamoDB's Kinesis destination writes it (creation time in epoch milliseconds). */
function demandChange(draft: Draft, fan: string | undefined, at: number, tableName: string, detail: Random) {
  const eventName = draft.kind === "change" ? draft.eventName : "INSERT";
  const userId = fan ?? `anon-${detail.hex(8)}`;
  const keys = { userId: { S: userId }, eventId: { S: `vf-evt-${String(detail.int(1, 9999)).padStart(4, "0")}` } };
  const image = (status: string) => ({
    ...keys,
    ...(fan === undefined ? {} : { globalUserId: { S: fan } }),
    artistId: { S: detail.pick(["K8vZ917Gku7", "K8vZ9171ob0", "K8vZ917_YJf"]) },
    marketIds: { L: [{ N: String(detail.int(1, 40)) }, { N: String(detail.int(41, 80)) }] },
    status: { S: status },
    requestedAt: { S: iso(at) },
  });
  const uuid = detail.hex(32);
  return {
    awsRegion: "us-east-1",
    eventID: `${uuid.slice(0, 8)}-${uuid.slice(8, 12)}-${uuid.slice(12, 16)}-${uuid.slice(16, 20)}-${uuid.slice(20)}`,
    eventName,
    userIdentity: null,
    recordFormat: "application/json",
    tableName,
    dynamodb: {
      ApproximateCreationDateTime: at,
      Keys: keys,
      ...(eventName === "REMOVE" ? {} : { NewImage: image(eventName === "INSERT" ? "REGISTERED" : "UPDATED") }),
      ...(eventName === "INSERT" ? {} : { OldImage: image("REGISTERED") }),
      SizeBytes: 192,
    },
    eventSource: "aws:dynamodb",
  };
}

/** A user activity as the accounts service writes it; its own timestamp ISO 8601 or epoch milliseconds, as the fixture has both. */
function activityPayload(draft: Draft, fan: string | undefined, at: number, detail: Random) {
  const action = draft.kind === "activity" ? draft.action : "login";
  const result = draft.kind === "activity" ? draft.result : "success";
  return {
    ...(fan === undefined ? {} : { globalUserId: fan }),
    action,
    result,
    timestamp: detail.chance(0.5) ? iso(at) : at,
    metadata: { clientId: detail.pick(["fan-portal", "tm-app", "accounts-web"]), ipCountry: detail.pick(["US", "GB", "CA"]) },
  };
}

/** What the encoders need besides the draft. */
export interface EncodeOptions {
  /** The demand table named in its change records. */
  readonly demandTableName: string;
  /**
   * Fields added at the top of every JSON payload, as a producer that has started sending a new
   * field writes them (the readers must ignore what they do not know). @default none
   */
  readonly extraFields?: Readonly<Record<string, unknown>>;
}

/** The payload with the producer's extra fields added, when there are any. */
const withExtraFields = (payload: Record<string, unknown>, extra: EncodeOptions["extraFields"]) =>
  extra ? { ...payload, ...extra } : payload;

/** The id a record names as its fan: the valid one, an invalid one made from it, or none. */
function namedFan(draft: Draft): string | undefined {
  if (draft.kind !== "bad") return draft.globalUserId;
  if (draft.bad === "invalidFanId") return invalidId(draft.aboutFan, draft.variant);
  return draft.bad === "noFanId" ? undefined : draft.aboutFan;
}

/** The JSON text of a payload, or the undecodable bytes a bad record carries instead. */
function bytesOf(draft: Draft, payload: Record<string, unknown>): Buffer | null {
  const json = JSON.stringify(payload);
  if (draft.kind !== "bad" || draft.bad !== "undecodable") return Buffer.from(json, "utf8");
  if (draft.variant === "tombstone") return null;
  if (draft.variant === "truncatedJson") return Buffer.from(json.slice(0, Math.floor(json.length / 2)), "utf8");
  // A lone continuation byte: not UTF-8, though the rest is JSON.
  if (draft.variant === "notUtf8")
    return Buffer.concat([Buffer.from('{"note":"', "utf8"), Buffer.from([0x80]), Buffer.from('"}')]);
  return Buffer.from(`not json: ${draft.aboutFan} did something at ${String(payload.timestamp ?? "")}`, "utf8");
}

const md5Hex = (text: string) => createHash("md5").update(text, "utf8").digest("hex").toUpperCase();

/** The Kinesis record of a draft of a stream role, put at `at` (epoch ms): its partition key as the producer picks it, and its data. */
export function encodeKinesis(draft: Draft, at: number, options: EncodeOptions): { partitionKey: string; data: Buffer } {
  const fan = namedFan(draft);
  const payload = withExtraFields(kinesisPayload(draft, fan, at, options), options.extraFields);
  const data = bytesOf(draft, payload) ?? Buffer.alloc(0);
  let partitionKey: string;
  if (draft.role === "purchase") partitionKey = String(payload.purchaseId);
  else if (draft.role === "demand") {
    const keys = (payload.dynamodb as { Keys: { userId: { S: string }; eventId: { S: string } } }).Keys;
    partitionKey = md5Hex(`${keys.userId.S}|${keys.eventId.S}`);
  } else partitionKey = draft.kind === "bad" ? draft.aboutFan : draft.globalUserId;
  return { partitionKey, data };
}

/** The Kafka record of a Kafka draft, produced at `at` (epoch ms): keyed by the fan it is about. */
export function encodeKafka(
  draft: Draft,
  at: number,
  options: Pick<EncodeOptions, "extraFields"> = {},
): { key: string; value: Buffer | null; timestamp: number } {
  const fan = namedFan(draft);
  const payload = withExtraFields(activityPayload(draft, fan, at, createRandom(draft.salt)), options.extraFields);
  return { key: draft.kind === "bad" ? draft.aboutFan : draft.globalUserId, value: bytesOf(draft, payload), timestamp: at };
}
