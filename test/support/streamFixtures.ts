/**
 * The records of the streams the enqueue workers read, from the fixtures in test/fixtures/events:
 * each fixture's first record as a template, and payloads like the fixtures' for another fan, time
 * or change. Shared by the workers' tests at the service and the readers' tests without I/O.
 */
import { fixture } from "./fixtures";
import { type KinesisFixtureEvent, payloadOf } from "./streams";

/** The first record of each stream's fixture. */
export const templates = {
  vf: fixture<KinesisFixtureEvent>("kinesis-vf-login.json").Records[0]!,
  demand: fixture<KinesisFixtureEvent>("kinesis-demand-insert.json").Records[0]!,
  purchase: fixture<KinesisFixtureEvent>("kinesis-purchase-success.json").Records[0]!,
  sqJourney: fixture<KinesisFixtureEvent>("kinesis-sq-journey.json").Records[0]!,
  rescoreRemoval: fixture<KinesisFixtureEvent>("kinesis-rescore-ttl-removal.json").Records[0]!,
};

/** Payloads like the fixtures', for another fan and time. */
export const payloads = {
  vf: (globalUserId: string, timestamp = "2026-11-24T09:15:02.417Z") => ({
    ...(payloadOf(templates.vf) as object),
    globalUserId,
    timestamp,
  }),
  purchase: (globalUserId: string, timestamp = "2026-11-24T09:20:11.004Z") => {
    const template = payloadOf(templates.purchase) as { customer: object };
    return { ...template, customer: { ...template.customer, globalUserId }, timestamp };
  },
  sqJourney: (globalUserId: string, timestamp = "2026-11-24T08:30:45.880Z") => ({
    ...(payloadOf(templates.sqJourney) as object),
    globalUserId,
    timestamp,
  }),
  demand: (globalUserId: string, eventName = "INSERT") => {
    const template = payloadOf(templates.demand) as { dynamodb: { NewImage: object; Keys: object } };
    return {
      ...template,
      eventName,
      dynamodb: {
        ...template.dynamodb,
        Keys: { ...template.dynamodb.Keys, userId: { S: globalUserId } },
        NewImage: { ...template.dynamodb.NewImage, userId: { S: globalUserId }, globalUserId: { S: globalUserId } },
      },
    };
  },
};

/** A DynamoDB change record of the fan-identity table, as its stream carries it. */
export type Change = {
  eventName: string;
  userIdentity: unknown;
  dynamodb: { Keys: Record<string, unknown>; OldImage?: Record<string, unknown>; NewImage?: Record<string, unknown> };
};

/** The `userIdentity` of a deletion by DynamoDB's TTL. */
export const TTL = { type: "Service", principalId: "dynamodb.amazonaws.com" };

/** The fixture's TTL removal of a rescore record, for another fan and date, with `changes` applied. */
export function rescoreRemoval(globalUserId: string, rescoreDate: string, changes: Partial<Change> = {}): Change {
  const change = payloadOf(templates.rescoreRemoval) as Change;
  const key = `rescore#${globalUserId}#${rescoreDate}`;
  return {
    ...change,
    dynamodb: {
      ...change.dynamodb,
      Keys: { userId: { S: key } },
      OldImage: {
        ...change.dynamodb.OldImage,
        userId: { S: key },
        globalUserId: { S: globalUserId },
        rescoreDate: { S: rescoreDate },
        expiresOn: { N: String(Date.parse(`${rescoreDate}T00:00:00Z`) / 1000) },
      },
    },
    ...changes,
  };
}

/** A fan record's change on the same stream. */
export function fanChange(eventName: string, userIdentity: unknown): Change {
  const fan = {
    userId: { S: "gu-5d13f0b8" },
    type: { S: "score" },
    globalUserId: { S: "gu-5d13f0b8" },
    score: { N: "0.0412" },
    scoreVersion: { S: "fan-risk-7" },
    araiVersion: { N: "3" },
    scoredAraiVersion: { N: "3" },
    dateUpdated: { S: "2026-11-29T01:00:00.000Z" },
  };
  const change = payloadOf(templates.rescoreRemoval) as Change;
  return {
    ...change,
    eventName,
    userIdentity,
    dynamodb: {
      Keys: { userId: fan.userId },
      ...(eventName === "INSERT" ? {} : { OldImage: fan }),
      ...(eventName === "REMOVE" ? {} : { NewImage: { ...fan, type: { S: "activityData" } } }),
    },
  };
}
