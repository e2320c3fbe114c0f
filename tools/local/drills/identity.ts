/**
 * Drills on the identity services (docs/flows.md):
 *
 * - `persona-down`: Persona answering 503 while fans ask checkLiveness (through the gateway's
 *   GraphQL route, authorised as each fan) for a tier that needs verification. Each answer is the
 *   fail-safe one, `requiresVerification: true` with no session, and no session is stored; once
 *   Persona is back, the same fans get a session each, from one inquiry each.
 * - `jwks-down`: the accounts JWKS answering 503 while validateToken's containers hold no key set
 *   (they are recycled first, as after a deploy: a warm container verifies from its cache and the
 *   fault would not be hit). A SOTC request is answered logged out with `ttlOverride: 0`, so
 *   AppSync does not cache it; once the JWKS is back, the fan is logged in again.
 */
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { sessionKey } from "../../../workers/shared/idv/session";
import { createDocumentClient } from "../../../workers/shared/runtime/dynamo";
import { KEY } from "../../../workers/shared/scoring/table";
import { VENDOR_UNAVAILABLE } from "../../../workers/checkLiveness/index";
import type { LocalSystem } from "../system";
import { attemptsOf, errorMessageOf, linesStarting, shown, untilRight } from "./checks";
import { functionOf } from "./requests";
import type { AuthorizerAnswer, Drill, RequestOutcome } from "./types";

/** Fans asking during and after the fault. */
const FANS = 4;

/** Whether the table holds an IDV session for the fan's liveness verification. */
async function sessionStored(system: LocalSystem, globalUserId: string): Promise<boolean> {
  const documents = createDocumentClient(
    new DynamoDBClient({
      endpoint: system.standIns.dynamodbUrl,
      region: "us-east-1",
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    }),
  );
  try {
    const { Item } = await documents.send(
      new GetCommand({
        TableName: system.wiring.tables[0]!.name,
        Key: { [KEY]: sessionKey(globalUserId, "liveness") },
        ConsistentRead: true,
      }),
    );
    return Item !== undefined;
  } finally {
    documents.destroy();
  }
}

function personaDown(): Drill {
  let fans: string[] = [];
  return {
    name: "persona-down",
    summary:
      "Persona unavailable during checkLiveness: fail-safe answers, no session stored; then one session (and inquiry) per fan",
    async inject(context) {
      fans = await context.fans(FANS);
      context.running.standIns.persona.setFault({ status: 503 });
      return async () => context.running.standIns.persona.setFault(undefined);
    },
    async during(context) {
      for (const fan of fans) {
        const outcome = await context.requests.checkLiveness(fan);
        const answer = outcome.answer;
        const failSafe = answer?.requiresVerification === true && answer.session === null && answer.reason === VENDOR_UNAVAILABLE;
        const stored = await sessionStored(context.running.system, fan);
        context.account(
          "checkLiveness during the fault",
          failSafe && !stored,
          failSafe ? `${fan}: a session was stored though no inquiry was opened` : `${fan}: answered ${shown(outcome)}`,
        );
      }
    },
    async after(context) {
      for (const fan of fans) {
        const { outcome, tries, right } = await untilRight(
          () => context.requests.checkLiveness(fan),
          (candidate) => candidate.answer?.requiresVerification === true && candidate.answer.session !== null,
        );
        context.account(
          "checkLiveness after the fault",
          right,
          `${fan}: still answered ${shown(outcome)} after ${tries} requests, no session`,
        );
      }
    },
    hits: (context) => {
      const failed = linesStarting(context, "checkLiveness", "no Persona inquiry");
      return {
        faulted: context.running.standIns.persona.faultCounts().faulted,
        retries: failed.reduce((sum, line) => sum + attemptsOf(errorMessageOf(line)) - 1, 0),
      };
    },
    async verify(context) {
      const inquiries = context.running.standIns.persona.inquiries;
      return fans.flatMap((fan) => {
        const count = inquiries.filter((inquiry) => inquiry.referenceId === fan).length;
        return count === 1 ? [] : [`${fan}: ${count} Persona inquiries, not one`];
      });
    },
  };
}

const loggedOutUncached = (outcome: RequestOutcome<AuthorizerAnswer>) =>
  outcome.answer?.isAuthorized === true &&
  outcome.answer.resolverContext?.isLoggedIn === "false" &&
  outcome.answer.ttlOverride === 0;

function jwksDown(): Drill {
  let fans: string[] = [];
  return {
    name: "jwks-down",
    summary: "the accounts JWKS unavailable: a SOTC request answered logged out with ttlOverride 0; then logged in again",
    async inject(context) {
      const { system, standIns } = context.running;
      fans = await context.fans(FANS);
      const recycled = await system.pools.get(functionOf(system, "validateToken").name)!.recycle();
      context.log(`${recycled} warm validateToken containers recycled: the next ones start with no key set`);
      standIns.accounts.setFault({ status: 503 }, "jwks");
      return async () => standIns.accounts.setFault(undefined, "jwks");
    },
    async during(context) {
      for (const fan of fans) {
        const outcome = await context.requests.authorize(fan);
        context.account(
          "SOTC request during the fault",
          loggedOutUncached(outcome),
          `${fan}: answered ${shown(outcome)}, not logged out with ttlOverride 0`,
        );
      }
    },
    async after(context) {
      for (const fan of fans) {
        const { outcome, tries, right } = await untilRight(
          () => context.requests.authorize(fan),
          (candidate) =>
            candidate.answer?.resolverContext?.isLoggedIn === "true" && candidate.answer.resolverContext.globalUserId === fan,
        );
        context.account(
          "SOTC request after the fault",
          right,
          `${fan}: still answered ${shown(outcome)} after ${tries} requests, not logged in`,
        );
      }
    },
    hits: (context) => ({ faulted: context.running.standIns.accounts.faultCounts("jwks").faulted }),
    async verify(context) {
      // The worker's own account of the fault: it could not verify the SOTC, and said so.
      const uncached = linesStarting(context, "validateToken", "logged out, uncached").length;
      return uncached >= fans.length
        ? []
        : [`validateToken logged ${uncached} "logged out, uncached" lines for ${fans.length} requests during the fault`];
    },
  };
}

export const IDENTITY_DRILLS: readonly Drill[] = [personaDown(), jwksDown()];
