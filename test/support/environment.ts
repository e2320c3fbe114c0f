/**
 * Process environment for tests that build workers through their factories, which read
 * `process.env` at cold start.
 */

/** Sets environment variables (undefined removes one); returns what puts them back. */
export function setEnvironment(vars: Record<string, string | undefined>): () => void {
  const previous = Object.fromEntries(Object.keys(vars).map((name) => [name, process.env[name]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
  apply(vars);
  return () => apply(previous);
}

/** What a Lambda container in us-east-1 has, with test credentials. */
export const LAMBDA_BASICS = {
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
} as const;
