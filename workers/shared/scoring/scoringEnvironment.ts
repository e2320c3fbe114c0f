/** The environment both scoring workers (scoreUsers, stagingScoreUsers) read. */
import { z } from "zod";
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
    MODEL_VERSION: z.string().min(1).max(128),
    /** Secrets Manager secret holding `{"token": "…"}`, the endpoint's bearer token. */
    MODEL_TOKEN_SECRET_ARN: z.string().min(1),
    MODEL_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(3000),
    /** Fans per model request. */
    MODEL_BATCH_SIZE: z.coerce.number().int().min(1).max(1000).default(100),
    /** Where fan-record changes that can never be scored are parked. */
    ...failureQueueVariables(),
  });

export type ScoringEnvironment = z.infer<ReturnType<typeof scoringEnvironment>>;
