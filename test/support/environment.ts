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

/** `names`, each removed: spread first into what setEnvironment is given, to start from none of them. */
export function unset(names: readonly string[]): Record<string, undefined> {
  return Object.fromEntries(names.map((name) => [name, undefined]));
}

/** What a Lambda container in us-east-1 has, with test credentials. */
export const LAMBDA_BASICS = {
  AWS_REGION: "us-east-1",
  AWS_ACCESS_KEY_ID: "test",
  AWS_SECRET_ACCESS_KEY: "test",
} as const;

/** The AWS settings an SDK client takes from the environment, which a developer's shell may carry. */
export const AWS_VARIABLES = [
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_PROFILE",
  "AWS_ENDPOINT_URL",
  "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
] as const;

/** A Lambda container's AWS settings: LAMBDA_BASICS, and none of the others (no profile, session token or shared endpoint). */
export const LAMBDA_AWS = { ...unset(AWS_VARIABLES), ...LAMBDA_BASICS };

/**
 * For a suite whose tests each give the worker its environment, as a deployment would: call it in
 * the suite's body. The setter it returns sets `names` to the values given, removing the others
 * of them; after each test they are as they were before it.
 */
export function environmentPerTest(names: readonly string[]): (vars: Record<string, string | undefined>) => void {
  let restore: (() => void) | undefined;
  afterEach(function () {
    restore?.();
    restore = undefined;
  });
  return (vars) => {
    const undo = setEnvironment({ ...unset(names), ...vars });
    restore ??= undo;
  };
}
