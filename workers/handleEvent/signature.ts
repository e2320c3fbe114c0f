/**
 * The `Persona-Signature` rules of handleEvent (docs/rules.md#persona), free of I/O: the header is
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, and while Persona rotates the
 * webhook secret it carries two such pairs, space-separated, either of which may match.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

/** One `t=…,v1=…` pair, `t` as sent: the HMAC covers its text, not a number made of it. */
export interface SignaturePair {
  readonly t: string;
  readonly v1: string;
}

/**
 * Most pairs a header may carry. Persona sends one, or two during rotation; the bound keeps a
 * forged header from making us compute an HMAC per pair without end.
 */
export const MAX_SIGNATURE_PAIRS = 4;

const PAIR = /^t=(\d{1,12}),v1=([0-9a-fA-F]{64})$/;

export type ParsedHeader =
  { readonly ok: true; readonly pairs: readonly SignaturePair[] } | { readonly ok: false; readonly reason: string };

/** The pairs of a header value, or why it is not one. */
export function parseSignatureHeader(header: string): ParsedHeader {
  const parts = header.trim().split(/\s+/);
  if (parts.length > MAX_SIGNATURE_PAIRS) {
    return { ok: false, reason: `Persona-Signature carries ${parts.length} pairs; at most ${MAX_SIGNATURE_PAIRS} are taken` };
  }
  const pairs: SignaturePair[] = [];
  for (const [index, part] of parts.entries()) {
    const match = PAIR.exec(part);
    if (!match) {
      return {
        ok: false,
        reason: `Persona-Signature pair ${index + 1} is not "t=<unix seconds>,v1=<64 hex digits>"`,
      };
    }
    pairs.push({ t: match[1]!, v1: match[2]!.toLowerCase() });
  }
  return { ok: true, pairs };
}

/** The HMAC-SHA256 of `"<t>.<raw body>"` under `secret`, over the body's bytes as received. */
export function personaSignature(secret: string, t: string, rawBody: Uint8Array): Buffer {
  return createHmac("sha256", secret).update(`${t}.`, "utf8").update(rawBody).digest();
}

/** A header value as Persona would send it for `rawBody`, one pair per secret, at `t`. */
export function signatureHeader(secrets: readonly string[], t: number, rawBody: Uint8Array): string {
  return secrets.map((secret) => `t=${t},v1=${personaSignature(secret, String(t), rawBody).toString("hex")}`).join(" ");
}

export interface SignatureCheck {
  /** The header's value; undefined when the request carries none. */
  readonly header: string | undefined;
  readonly rawBody: Uint8Array;
  /** The secrets in force: one, or two while Persona rotates. */
  readonly secrets: readonly string[];
  readonly nowSeconds: number;
  /** How far a signed timestamp may be from now, either way. */
  readonly toleranceSeconds: number;
}

export type SignatureVerdict =
  | { readonly ok: true; readonly signedAt: number }
  | { readonly ok: false; readonly problem: "missing" | "malformed" | "mismatch" | "stale"; readonly reason: string };

/**
 * Whether the request is Persona's: some pair's `v1` is the HMAC of its `t` and the body under
 * some secret, and that `t` is within the tolerance of now. Every pair is compared with every
 * secret, each in constant time over equal-length digests, so timing tells neither which pair
 * nor which secret matched, nor how much of a forged signature was right.
 */
export function verifySignature(check: SignatureCheck): SignatureVerdict {
  if (check.header === undefined || check.header.trim().length === 0) {
    return { ok: false, problem: "missing", reason: "request carries no Persona-Signature header" };
  }
  const parsed = parseSignatureHeader(check.header);
  if (!parsed.ok) return { ok: false, problem: "malformed", reason: parsed.reason };

  const matched: number[] = [];
  for (const pair of parsed.pairs) {
    const given = Buffer.from(pair.v1, "hex");
    let matches = false;
    for (const secret of check.secrets) {
      matches = timingSafeEqual(given, personaSignature(secret, pair.t, check.rawBody)) || matches;
    }
    if (matches) matched.push(Number(pair.t));
  }
  if (matched.length === 0) {
    return { ok: false, problem: "mismatch", reason: "no Persona-Signature pair matches the body under a configured secret" };
  }
  const fresh = matched.filter((t) => Math.abs(check.nowSeconds - t) <= check.toleranceSeconds);
  if (fresh.length === 0) {
    const [t] = matched;
    const drift = Math.round(check.nowSeconds - t!);
    return {
      ok: false,
      problem: "stale",
      reason: `Persona-Signature timestamp ${t} is ${Math.abs(drift)} s ${drift >= 0 ? "in the past" : "in the future"}, beyond the ${check.toleranceSeconds} s tolerance`,
    };
  }
  return { ok: true, signedAt: Math.max(...fresh) };
}
