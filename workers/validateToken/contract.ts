import { z } from "../shared/zod";
import { defineContract } from "../shared/runtime/contract";
import { DEPENDENCIES } from "../shared/runtime/telemetry";

/** Asymmetric algorithms a SOTC may be signed with; symmetric ones would let a public key sign. */
export const ASYMMETRIC_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
] as const;

const seconds = (fallback: number, max: number) => z._default(z.coerce.number().check(z.int(), z.gte(0), z.lte(max)), fallback);
const list = (check: (item: string) => boolean, expected: string) =>
  z
    .pipe(
      z.string(),
      z.transform((value) =>
        value
          .split(",")
          .map((item) => item.trim())
          .filter(Boolean),
      ),
    )
    .check(
      z.refine((items) => items.length > 0 && items.every(check), { message: `expected a comma-separated list of ${expected}` }),
    );

export const validateTokenContract = defineContract({
  name: "validateToken",
  description: "AppSync Lambda authoriser: checks the API key and, when present, the fan's SOTC against the accounts JWKS",
  environment: () =>
    z.object({
      /** Secrets Manager secret holding `{"apiKeys": ["…", …]}`; several keys allow rotation. */
      API_KEYS_SECRET_ARN: z.string().check(z.minLength(1)),
      API_KEYS_MAX_AGE_SECONDS: seconds(300, 3600),
      JWKS_URL: z.url({ protocol: /^https?$/ }),
      JWKS_TIMEOUT_MS: z._default(z.coerce.number().check(z.int(), z.gte(100), z.lte(10_000)), 1500),
      JWKS_CACHE_MAX_AGE_SECONDS: seconds(600, 86_400),
      JWT_ISSUER: z.string().check(z.minLength(1)),
      JWT_AUDIENCE: list(Boolean, "audiences"),
      JWT_ALGORITHMS: z._default(
        list((item) => (ASYMMETRIC_ALGORITHMS as readonly string[]).includes(item), ASYMMETRIC_ALGORITHMS.join(", ")),
        ["RS256"],
      ),
      JWT_CLOCK_TOLERANCE_SECONDS: seconds(30, 300),
      /** Claim of the SOTC that carries the globalUserId. */
      JWT_USER_ID_CLAIM: z._default(z.string().check(z.minLength(1)), "sub"),
      /** Upper bound on how long AppSync may cache a logged-in answer (never past the token's expiry). */
      AUTHORIZED_TTL_SECONDS: seconds(300, 3600),
    }),
  access: {
    api_keys_secret: { actions: ["secretsmanager:GetSecretValue"], on: "the secret holding the accepted API keys" },
  },
  dependencies: [DEPENDENCIES.jwks, DEPENDENCIES.secretsManager],
});

export type ValidateTokenEnvironment = z.infer<ReturnType<typeof validateTokenContract.environment>>;
