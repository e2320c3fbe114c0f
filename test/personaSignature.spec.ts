/**
 * The Persona-Signature rules (docs/rules.md#persona), free of I/O: the header's form, the HMAC
 * over the raw body's bytes, rotation (two pairs in the header, two secrets configured), and the
 * time tolerance.
 */
import * as assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import * as fc from "fast-check";
import {
  MAX_SIGNATURE_PAIRS,
  parseSignatureHeader,
  personaSignature,
  signatureHeader,
  type SignatureCheck,
  verifySignature,
} from "../workers/handleEvent/signature";

const NOW = 1_795_543_760;
const TOLERANCE = 300;

/** The HMAC as docs/rules.md#persona words it, computed apart from the module under test. */
const expected = (secret: string, t: number | string, body: Uint8Array) =>
  createHmac("sha256", secret)
    .update(Buffer.concat([Buffer.from(`${t}.`, "utf8"), body]))
    .digest("hex");

const secretArb = fc.string({ minLength: 1, maxLength: 64 }).map((text) => `wbhsec_${text}`);
const bodyArb = fc.uint8Array({ maxLength: 512 });
/** A signing time within the tolerance of NOW, either way. */
const freshArb = fc.integer({ min: NOW - TOLERANCE, max: NOW + TOLERANCE });

const check = (
  header: string | undefined,
  rawBody: Uint8Array,
  secrets: readonly string[],
  nowSeconds = NOW,
): SignatureCheck => ({
  header,
  rawBody,
  secrets,
  nowSeconds,
  toleranceSeconds: TOLERANCE,
});

describe("Persona signature", function () {
  describe("the HMAC", function () {
    it("matches a vector computed with openssl: HMAC-SHA256 of '<t>.<raw body>', hex", function () {
      const body = Buffer.from('{"data":{"id":"evt_1"}}', "utf8");
      assert.equal(
        personaSignature("wbhsec_vector_secret", "1795543755", body).toString("hex"),
        "6e67b161c1a39b92a0a140bc60dd179c8ab83975d9281119dfef74ce4f0e0349",
      );
    });

    it("is computed over the body's bytes as received, also bytes that are not UTF-8", function () {
      fc.assert(
        fc.property(secretArb, fc.integer({ min: 0, max: 2 ** 40 }), bodyArb, (secret, t, body) => {
          assert.equal(personaSignature(secret, String(t), body).toString("hex"), expected(secret, t, body));
        }),
      );
      // 0xff is no UTF-8: a body decoded to text first would be signed as U+FFFD instead.
      const bytes = Uint8Array.from([0x7b, 0xff, 0x7d]);
      assert.notEqual(personaSignature("s", "1", bytes).toString("hex"), expected("s", 1, Buffer.from("{\ufffd}", "utf8")));
    });
  });

  describe("the header", function () {
    it("parses one pair, or several space-separated (rotation), keeping t as sent and v1 in lower case", function () {
      fc.assert(
        fc.property(
          fc.array(fc.record({ t: fc.stringMatching(/^\d{1,12}$/), v1: fc.stringMatching(/^[0-9a-fA-F]{64}$/) }), {
            minLength: 1,
            maxLength: MAX_SIGNATURE_PAIRS,
          }),
          fc.constantFrom(" ", "  ", "\t"),
          (pairs, separator) => {
            const parsed = parseSignatureHeader(pairs.map(({ t, v1 }) => `t=${t},v1=${v1}`).join(separator));
            assert.deepEqual(parsed, { ok: true, pairs: pairs.map(({ t, v1 }) => ({ t, v1: v1.toLowerCase() })) });
          },
        ),
      );
    });

    it("refuses what is not t=<digits>,v1=<64 hex digits>, naming the pair", function () {
      const v1 = "a".repeat(64);
      for (const header of [
        `v1=${v1}`,
        "t=1795543755",
        `t=abc,v1=${v1}`,
        `t=1795543755,v1=${v1.slice(1)}`,
        `t=1795543755,v1=${v1}0`,
        `t=1795543755,v1=${"g".repeat(64)}`,
        `v1=${v1},t=1795543755`,
        `t=1795543755;v1=${v1}`,
        `t=1795543755,v1=${v1},v0=${v1}`,
        `sha256=${v1}`,
        `t=1795543755,v1=${v1} garbage`,
      ]) {
        const parsed = parseSignatureHeader(header);
        assert.equal(parsed.ok, false, header);
        assert.match((parsed as { reason: string }).reason, /Persona-Signature pair \d is not/, header);
      }
    });

    it(`takes at most ${MAX_SIGNATURE_PAIRS} pairs`, function () {
      const pair = `t=1795543755,v1=${"b".repeat(64)}`;
      assert.equal(parseSignatureHeader(Array(MAX_SIGNATURE_PAIRS).fill(pair).join(" ")).ok, true);
      const parsed = parseSignatureHeader(
        Array(MAX_SIGNATURE_PAIRS + 1)
          .fill(pair)
          .join(" "),
      );
      assert.deepEqual(parsed, { ok: false, reason: `Persona-Signature carries 5 pairs; at most 4 are taken` });
    });
  });

  describe("verification", function () {
    it("accepts a body signed with the secret, at any time within the tolerance either way", function () {
      fc.assert(
        fc.property(secretArb, bodyArb, freshArb, (secret, body, t) => {
          assert.deepEqual(verifySignature(check(signatureHeader([secret], t, body), body, [secret])), { ok: true, signedAt: t });
        }),
      );
    });

    it("refuses a body changed in any one byte after signing", function () {
      fc.assert(
        fc.property(
          secretArb,
          fc.uint8Array({ minLength: 1, maxLength: 512 }),
          fc.nat(),
          fc.integer({ min: 1, max: 255 }),
          (secret, body, at, delta) => {
            const header = signatureHeader([secret], NOW, body);
            const altered = Uint8Array.from(body);
            const index = at % body.length;
            altered[index] = (altered[index]! + delta) % 256;
            const verdict = verifySignature(check(header, altered, [secret]));
            assert.equal(verdict.ok, false);
            assert.equal((verdict as { problem: string }).problem, "mismatch");
          },
        ),
      );
    });

    it("refuses a signature with any one bit flipped, and one made with another secret", function () {
      fc.assert(
        fc.property(secretArb, secretArb, bodyArb, fc.integer({ min: 0, max: 255 }), (secret, other, body, bit) => {
          fc.pre(secret !== other);
          const digest = personaSignature(secret, String(NOW), body);
          digest[bit >> 3]! ^= 1 << (bit & 7);
          const flipped = verifySignature(check(`t=${NOW},v1=${digest.toString("hex")}`, body, [secret]));
          assert.equal((flipped as { problem?: string }).problem, "mismatch");
          const foreign = verifySignature(check(signatureHeader([other], NOW, body), body, [secret]));
          assert.equal((foreign as { problem?: string }).problem, "mismatch");
        }),
      );
    });

    it("refuses a signature moved to another timestamp: t is signed too", function () {
      const body = Buffer.from('{"data":{}}');
      const v1 = personaSignature("wbhsec_a", String(NOW - 10), body).toString("hex");
      assert.equal((verifySignature(check(`t=${NOW},v1=${v1}`, body, ["wbhsec_a"])) as { problem?: string }).problem, "mismatch");
    });

    it("during rotation: a header with two pairs passes when either pair matches; two configured secrets accept either", function () {
      fc.assert(
        fc.property(secretArb, secretArb, bodyArb, (previous, next, body) => {
          fc.pre(previous !== next);
          const both = signatureHeader([previous, next], NOW, body);
          assert.equal(verifySignature(check(both, body, [previous])).ok, true);
          assert.equal(verifySignature(check(both, body, [next])).ok, true);
          assert.equal(verifySignature(check(signatureHeader([previous], NOW, body), body, [previous, next])).ok, true);
          assert.equal(verifySignature(check(signatureHeader([next], NOW, body), body, [previous, next])).ok, true);
          // A pair that matches nothing beside one that matches: the request is still Persona's.
          const forged = `t=${NOW},v1=${"0".repeat(64)} ${signatureHeader([next], NOW, body)}`;
          assert.equal(verifySignature(check(forged, body, [next])).ok, true);
          assert.equal(verifySignature(check(both, body, ["wbhsec_retired"])).ok, false);
        }),
      );
    });

    it("refuses a matching signature whose timestamp is beyond the tolerance, in the past or in the future", function () {
      fc.assert(
        fc.property(
          secretArb,
          bodyArb,
          fc.integer({ min: TOLERANCE + 1, max: 10 * 365 * 86_400 }),
          fc.boolean(),
          (secret, body, off, past) => {
            const t = past ? NOW - off : NOW + off;
            const verdict = verifySignature(check(signatureHeader([secret], t, body), body, [secret]));
            assert.equal(verdict.ok, false);
            assert.equal((verdict as { problem: string }).problem, "stale");
            assert.match((verdict as { reason: string }).reason, past ? /in the past/ : /in the future/);
          },
        ),
      );
      const body = Buffer.from("{}");
      assert.equal(verifySignature(check(signatureHeader(["s"], NOW - TOLERANCE, body), body, ["s"])).ok, true);
      assert.equal(verifySignature(check(signatureHeader(["s"], NOW - TOLERANCE - 1, body), body, ["s"])).ok, false);
    });

    it("takes the fresh pair when the header carries a stale one besides", function () {
      const body = Buffer.from("{}");
      const header = `${signatureHeader(["s"], NOW - 3600, body)} ${signatureHeader(["s"], NOW - 1, body)}`;
      assert.deepEqual(verifySignature(check(header, body, ["s"])), { ok: true, signedAt: NOW - 1 });
    });

    it("refuses a missing or empty header as missing, and never accepts nor throws on an arbitrary header", function () {
      for (const header of [undefined, "", "   "]) {
        assert.equal((verifySignature(check(header, Buffer.from("{}"), ["s"])) as { problem?: string }).problem, "missing");
      }
      fc.assert(
        fc.property(fc.string({ maxLength: 300 }), bodyArb, (header, body) => {
          assert.equal(verifySignature(check(header, body, ["s"])).ok, false);
        }),
      );
    });
  });
});
