import { z } from "../shared/zod";
import { defineContract } from "../shared/runtime/contract";
import { deadLetterQueueUrlsVariable } from "../shared/runtime/deadLetters";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import { isHttpsUrl, tableNameVariable } from "../shared/runtime/environment";

/**
 * https, with `{globalUserId}` where the fan's id goes. Plain http is accepted only to a
 * loopback host, for a local stand-in of the API; the stack's configuration requires https.
 */
const araiUrlTemplate = () =>
  z.string().check(
    z.refine((value) => value.includes("{globalUserId}"), "expected {globalUserId} in the URL"),
    z.refine((value) => isHttpsUrl(value.replaceAll("{globalUserId}", "x")), "expected an https URL"),
  );

export const lookupAraiContract = defineContract({
  name: "lookupArai",
  description:
    "Consumes the account-activity and on-demand queues: fetches each fan's ARAI from the accounts service (unless fresh) and writes it to the fan record for scoring",
  environment: () =>
    z.object({
      /** The fan-identity table of the region. */
      TABLE_NAME: tableNameVariable(),
      ARAI_URL_TEMPLATE: araiUrlTemplate(),
      /** Secrets Manager secret holding `{"username", "password", "clientId"}`. */
      ARAI_CREDENTIALS_SECRET_ARN: z.string().check(z.minLength(1)),
      /** Bound on each ARAI request (there are at most two retries). */
      ARAI_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.gte(100), z.lte(10_000)), 2000),
      /** ARAI younger than this is not fetched again. */
      ARAI_FRESHNESS_SECONDS: z._default(z.coerce.number().check(z.int(), z.gte(0), z.lte(86_400)), 300),
      /** ARAI requests in flight per invocation. */
      ARAI_CONCURRENCY: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(50)), 10),
      /**
       * `{"<source queue ARN>": "<its dead-letter queue URL>"}` for both queues: where a message that
       * can never succeed, or failed on its last delivery, is parked (runtime/deadLetters.ts).
       */
      DEAD_LETTER_QUEUE_URLS: deadLetterQueueUrlsVariable(),
    }),
  access: {
    dynamodb_fan_records: { actions: ["dynamodb:BatchGetItem", "dynamodb:UpdateItem"], on: "the fan-identity table" },
    arai_credentials: { actions: ["secretsmanager:GetSecretValue"], on: "the accounts API credentials secret" },
    dead_letter_queues: { actions: ["sqs:SendMessage"], on: "the dead-letter queues of the queues it consumes" },
  },
  dependencies: [DEPENDENCIES.arai, DEPENDENCIES.secretsManager],
});

export type LookupAraiEnvironment = z.infer<ReturnType<typeof lookupAraiContract.environment>>;
