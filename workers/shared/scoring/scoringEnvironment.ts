/** The environment both scoring workers (scoreUsers, stagingScoreUsers) read. */
import { z } from "../zod";
import { tableNameVariable } from "../runtime/environment";
import { failureQueueVariables } from "../runtime/parking";

/** The environment of both scoring workers; the staging worker's MODEL_* name the staging endpoint. */
export const scoringEnvironment = () =>
  z.object({
    /** The region's fan-identity table. */
    TABLE_NAME: tableNameVariable(),
    /** The full invocations URL: https://<host>/serving-endpoints/<name>/invocations. */
    MODEL_URL: z.url({ protocol: /^https?$/ }),
    /** The model version the endpoint serves, stored with every score. */
    MODEL_VERSION: z.string().check(z.minLength(1), z.maxLength(128)),
    /** Secrets Manager secret holding `{"token": "…"}`, the endpoint's bearer token. */
    MODEL_TOKEN_SECRET_ARN: z.string().check(z.minLength(1)),
    MODEL_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.gte(100), z.lte(30_000)), 3000),
    /** Fans per model request. */
    MODEL_BATCH_SIZE: z._default(z.coerce.number().check(z.int(), z.gte(1), z.lte(1000)), 100),
    /** Where fan-record changes that can never be scored are parked. */
    ...failureQueueVariables(),
  });

export type ScoringEnvironment = z.infer<ReturnType<typeof scoringEnvironment>>;
