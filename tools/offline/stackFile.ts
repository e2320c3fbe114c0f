/**
 * Reads a stack's configuration the way the Pulumi CLI hands it to a program: project-level
 * values from Pulumi.yaml, then Pulumi.<stack>.yaml, each value as text (objects and lists as
 * JSON). Encrypted (`secure:`) values cannot be read without the CLI and the stack's secrets
 * provider; offline they are replaced by the placeholders the configuration schema names, and
 * still reported as secrets. The decision signing key's placeholder is a key generated for the
 * run, so the program can derive the JWKS it publishes; an optional secret left unset stays unset.
 */
import { generateKeyPairSync } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { isOptionalSecret, PROJECT, SECRET_KEYS } from "../../stacks/config";

export interface StackFileConfig {
  readonly stack: string;
  readonly file: string;
  /** `namespace:key` → value as text. */
  readonly values: Record<string, string>;
  /** Keys whose values are secrets. */
  readonly secretKeys: string[];
  /** Secrets the stack file does not hold yet, stood in for by placeholders. */
  readonly unsetSecrets: string[];
}

const isSecure = (value: unknown): value is { secure: string } =>
  typeof value === "object" && value !== null && !Array.isArray(value) && Object.keys(value).join() === "secure";

/** Replaces nested `secure:` leaves; reports whether there were any. */
function replaceSecureLeaves(value: unknown): { value: unknown; secret: boolean } {
  if (isSecure(value)) return { value: "[secret]", secret: true };
  if (Array.isArray(value)) {
    const items = value.map(replaceSecureLeaves);
    return { value: items.map((item) => item.value), secret: items.some((item) => item.secret) };
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).map(([key, child]) => [key, replaceSecureLeaves(child)] as const);
    return {
      value: Object.fromEntries(entries.map(([key, child]) => [key, child.value])),
      secret: entries.some(([, child]) => child.secret),
    };
  }
  return { value, secret: false };
}

type SecretKey = keyof typeof SECRET_KEYS;

/** One RSA key per process, standing in for the decision signing key offline (RS256 needs RSA, 2048 bits). */
let offlineSigningKey: string | undefined;

/** What stands in for a secret offline. */
export function offlinePlaceholder(key: SecretKey): unknown {
  if (key !== "decisionSigningKey") return SECRET_KEYS[key].placeholder;
  offlineSigningKey ??= generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({
    type: "pkcs8",
    format: "pem",
  }) as string;
  return offlineSigningKey;
}

const fullKey = (key: string) => (key.includes(":") ? key : `${PROJECT}:${key}`);
const asText = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));

/** Reads `Pulumi.<stack>.yaml` in `root`, or the stack file given as `file`. */
export function readStackFile(stack: string, root: string, file = path.join(root, `Pulumi.${stack}.yaml`)): StackFileConfig {
  if (!/^[a-z0-9-]+$/i.test(stack) || !fs.existsSync(file)) {
    const known = fs
      .readdirSync(root)
      .map((name) => /^Pulumi\.(.+)\.yaml$/.exec(name)?.[1])
      .filter(Boolean);
    throw new Error(`no stack file for "${stack}" (Pulumi.${stack}.yaml); stacks here: ${known.join(", ")}`);
  }
  const values: Record<string, string> = {};
  const secretKeys: string[] = [];

  const project = parse(fs.readFileSync(path.join(root, "Pulumi.yaml"), "utf8")) as { config?: Record<string, unknown> };
  for (const [key, declaration] of Object.entries(project.config ?? {})) {
    const declared = declaration as { value?: unknown; default?: unknown } | null;
    const value = declared?.value ?? declared?.default;
    if (value !== undefined) values[fullKey(key)] = asText(value);
  }

  const document = (parse(fs.readFileSync(file, "utf8")) ?? {}) as { config?: Record<string, unknown> };
  for (const [key, value] of Object.entries(document.config ?? {})) {
    const name = fullKey(key);
    if (isSecure(value)) {
      const local = name.slice(PROJECT.length + 1);
      const known = name.startsWith(`${PROJECT}:`) && local in SECRET_KEYS;
      values[name] = asText(known ? offlinePlaceholder(local as SecretKey) : "[secret]");
      secretKeys.push(name);
      continue;
    }
    const replaced = replaceSecureLeaves(value);
    values[name] = asText(replaced.value);
    if (replaced.secret) secretKeys.push(name);
  }

  // Secrets are set per stack with the CLI (`pulumi config set --secret`), which writes them here
  // encrypted; until then `pulumi up` stops, and the offline run uses placeholders.
  const unsetSecrets: string[] = [];
  for (const key of Object.keys(SECRET_KEYS) as SecretKey[]) {
    const name = `${PROJECT}:${key}`;
    if (name in values || isOptionalSecret(key)) continue;
    values[name] = asText(offlinePlaceholder(key));
    secretKeys.push(name);
    unsetSecrets.push(name);
  }
  return { stack, file, values, secretKeys, unsetSecrets };
}
