import { z } from "../shared/zod";
import { defineContract } from "../shared/runtime/contract";
import { DEPENDENCIES } from "../shared/runtime/telemetry";

/** redis:// or rediss:// (TLS), with a host; an optional /<db>, user and password. */
const redisUrl = () =>
  z.string().check(
    z.refine((value) => {
      try {
        const url = new URL(value);
        return (
          (url.protocol === "redis:" || url.protocol === "rediss:") && url.hostname !== "" && /^(\/\d{0,2})?$/.test(url.pathname)
        );
      } catch {
        return false;
      }
    }, "expected a redis:// or rediss:// URL with a host"),
  );

export const getArmScoreContract = defineContract({
  name: "getArmScore",
  description:
    "Answers a fan's ARM score (the account-risk grade 1 to 5 another team keeps in Redis), invoked directly or as an AppSync resolver",
  environment: () =>
    z.object({
      /** The primary (standalone) or the configuration endpoint (cluster mode). */
      ARM_REDIS_URL: redisUrl(),
      /** A replica (reader) endpoint; when set, reads go there (in cluster mode: to the shards' replicas). */
      ARM_REDIS_READ_ONLY_URL: z.pipe(
        z.optional(z.union([z.literal(""), redisUrl()])),
        z.transform((value) => value || undefined),
      ),
      ARM_REDIS_CLUSTER_MODE: z.pipe(
        z._default(z.enum(["true", "false"]), "false"),
        z.transform((value) => value === "true"),
      ),
      // The bounds keep a failing call well inside the 6 s function timeout: a read on the kept
      // connection is bounded by the command timeout, a read that connects by connect + command
      // timeout, and there is at most one of each: at most 1000 + 2000 + 1000 ms.
      ARM_REDIS_CONNECT_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.gte(10), z.lte(2000)), 1000),
      ARM_REDIS_COMMAND_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.gte(10), z.lte(1000)), 500),
    }),
  // Redis is reached over the VPC's network, not through IAM.
  access: {},
  dependencies: [DEPENDENCIES.redis],
});
