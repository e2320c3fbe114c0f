/**
 * The local system's Lambda event filtering (tools/local/sources/filter.ts) against the
 * documented semantics: each operator of the filter rule syntax, lists as OR and fields as AND,
 * arrays in the event, `$or`, several patterns as OR, Kinesis `data` parsed as JSON (a payload
 * that is not JSON matches no pattern on it), and the refusal of operators it cannot evaluate.
 * Then the program's own filters (workers/registry.ts) on records built like the fixtures.
 */
import * as assert from "node:assert/strict";
import { checkPattern, delivers, matchesPattern } from "../tools/local/sources/filter";
import { WORKERS } from "../workers/registry";
import { deliversKinesisRecord } from "./support/eventFilter";
import { fanChange, payloads, rescoreRemoval, templates, TTL } from "./support/streamFixtures";
import { type KinesisFixtureRecord, payloadOf, recordLike } from "./support/streams";

const matches = (pattern: object, value: unknown) => matchesPattern(pattern as Record<string, unknown>, value);

/** Whether the mapping would deliver a Lambda Kinesis record, as kinesis.ts asks: its metadata, and `data` decoded. */
function deliversKinesis(patterns: readonly object[], record: KinesisFixtureRecord): boolean {
  const { data, ...metadata } = record.kinesis;
  return delivers(patterns, metadata, "data", () => Buffer.from(data, "base64").toString("utf8"));
}

/** A Kinesis record whose data is `text`, exactly. */
const rawKinesis = (text: string) =>
  recordLike(templates.vf, 1, undefined, { rawData: Buffer.from(text, "utf8").toString("base64") });

describe("local event filtering", function () {
  describe("literals", function () {
    it("matches a string only when equal, and a list of them when any is equal", function () {
      assert.ok(matches({ Name: ["Alice"] }, { Name: "Alice" }));
      assert.ok(!matches({ Name: ["Alice"] }, { Name: "alice" }));
      assert.ok(!matches({ Name: ["Alice"] }, { Name: "Alice " }));
      assert.ok(matches({ PaymentType: ["Credit", "Debit"] }, { PaymentType: "Debit" }));
      assert.ok(!matches({ PaymentType: ["Credit", "Debit"] }, { PaymentType: "Cash" }));
    });

    it("matches a number by its value, not by its text, and a boolean by itself", function () {
      assert.ok(matches({ Price: [100] }, { Price: 100 }));
      assert.ok(matches({ Price: [100] }, JSON.parse('{"Price": 100.0}')));
      assert.ok(!matches({ Price: [100] }, { Price: "100" }));
      assert.ok(!matches({ Code: ["100"] }, { Code: 100 }));
      assert.ok(matches({ Active: [true] }, { Active: true }));
      assert.ok(!matches({ Active: [true] }, { Active: "true" }));
    });

    it("tells null, the empty string and a missing field apart", function () {
      assert.ok(matches({ UserID: [null] }, { UserID: null }));
      assert.ok(!matches({ UserID: [null] }, {}));
      assert.ok(!matches({ UserID: [null] }, { UserID: "" }));
      assert.ok(matches({ LastName: [""] }, { LastName: "" }));
      assert.ok(!matches({ LastName: [""] }, { LastName: null }));
      assert.ok(!matches({ LastName: [""] }, {}));
    });

    it("asks every field of a pattern to match, nested objects field by field", function () {
      const pattern = { Location: ["New York"], Day: ["Monday"], order: { type: ["buy"] } };
      assert.ok(matches(pattern, { Location: "New York", Day: "Monday", order: { type: "buy", stock: "ANYCO" }, extra: 1 }));
      assert.ok(!matches(pattern, { Location: "New York", Day: "Tuesday", order: { type: "buy" } }));
      assert.ok(!matches(pattern, { Location: "New York", Day: "Monday", order: { type: "sell" } }));
      assert.ok(!matches(pattern, { Location: "New York", Day: "Monday" }));
      assert.ok(!matches(pattern, { Location: "New York", Day: "Monday", order: "buy" }));
    });
  });

  describe("string matchers", function () {
    it("prefix: strings that begin with it", function () {
      assert.ok(matches({ Region: [{ prefix: "us-" }] }, { Region: "us-east-1" }));
      assert.ok(!matches({ Region: [{ prefix: "us-" }] }, { Region: "eu-west-1" }));
      assert.ok(!matches({ Region: [{ prefix: "us-" }] }, { Region: "US-east-1" }));
      assert.ok(!matches({ Region: [{ prefix: "1" }] }, { Region: 123 }));
      assert.ok(!matches({ Region: [{ prefix: "us-" }] }, {}));
    });

    it("suffix: strings that end with it", function () {
      assert.ok(matches({ FileName: [{ suffix: ".png" }] }, { FileName: "cover.png" }));
      assert.ok(!matches({ FileName: [{ suffix: ".png" }] }, { FileName: "cover.png.txt" }));
      assert.ok(!matches({ FileName: [{ suffix: ".png" }] }, { FileName: "cover.PNG" }));
      assert.ok(!matches({ FileName: [{ suffix: "5" }] }, { FileName: 125 }));
    });

    it("equals-ignore-case: strings equal but for case", function () {
      assert.ok(matches({ Name: [{ "equals-ignore-case": "alice" }] }, { Name: "ALICE" }));
      assert.ok(matches({ Name: [{ "equals-ignore-case": "alice" }] }, { Name: "Alice" }));
      assert.ok(!matches({ Name: [{ "equals-ignore-case": "alice" }] }, { Name: "Alicia" }));
      assert.ok(!matches({ Name: [{ "equals-ignore-case": "alice" }] }, {}));
    });
  });

  describe("anything-but", function () {
    it("with a list: any value but those, never a missing field", function () {
      const pattern = { Weather: [{ "anything-but": ["Raining", "Snowing"] }] };
      assert.ok(matches(pattern, { Weather: "Sunny" }));
      assert.ok(!matches(pattern, { Weather: "Raining" }));
      assert.ok(!matches(pattern, { Weather: "Snowing" }));
      assert.ok(!matches(pattern, {}));
    });

    it("with one value, a number compared as a number", function () {
      assert.ok(matches({ Weather: [{ "anything-but": "Raining" }] }, { Weather: "Sunny" }));
      assert.ok(!matches({ Weather: [{ "anything-but": "Raining" }] }, { Weather: "Raining" }));
      assert.ok(matches({ Code: [{ "anything-but": [404, 500] }] }, { Code: 200 }));
      assert.ok(!matches({ Code: [{ "anything-but": [404, 500] }] }, { Code: 404 }));
    });

    it("with a prefix: strings that do not begin with it", function () {
      const pattern = { Region: [{ "anything-but": { prefix: "us-" } }] };
      assert.ok(matches(pattern, { Region: "eu-west-1" }));
      assert.ok(!matches(pattern, { Region: "us-west-2" }));
      assert.ok(!matches(pattern, {}));
    });
  });

  describe("numeric", function () {
    it("holds every comparison of a range, on numbers only", function () {
      const pattern = { Price: [{ numeric: [">", 10, "<=", 20] }] };
      assert.ok(matches(pattern, { Price: 20 }));
      assert.ok(matches(pattern, { Price: 10.5 }));
      assert.ok(!matches(pattern, { Price: 10 }));
      assert.ok(!matches(pattern, { Price: 20.01 }));
      assert.ok(!matches(pattern, { Price: "15" }));
      assert.ok(!matches(pattern, {}));
    });

    it("compares for equality and with each operator", function () {
      assert.ok(matches({ Price: [{ numeric: ["=", 100] }] }, { Price: 100 }));
      assert.ok(!matches({ Price: [{ numeric: ["=", 100] }] }, { Price: 100.5 }));
      assert.ok(matches({ Price: [{ numeric: ["<", 0] }] }, { Price: -1 }));
      assert.ok(!matches({ Price: [{ numeric: ["<", 0] }] }, { Price: 0 }));
      assert.ok(matches({ Price: [{ numeric: [">=", 0] }] }, { Price: 0 }));
      assert.ok(!matches({ Price: [{ numeric: [">=", 0] }] }, { Price: -0.5 }));
    });
  });

  describe("exists", function () {
    it("true matches a field that is there, whatever its value; false one that is not", function () {
      for (const value of ["Widget", "", 0, false, null, { nested: 1 }]) {
        assert.ok(matches({ ProductName: [{ exists: true }] }, { ProductName: value }), JSON.stringify(value));
        assert.ok(!matches({ ProductName: [{ exists: false }] }, { ProductName: value }), JSON.stringify(value));
      }
      assert.ok(!matches({ ProductName: [{ exists: true }] }, { Other: "Widget" }));
      assert.ok(matches({ ProductName: [{ exists: false }] }, { Other: "Widget" }));
    });

    it("on a field under an object the event lacks: absent, so false matches and true does not", function () {
      assert.ok(matches({ customer: { email: [{ exists: false }] } }, { status: "SUCCESS" }));
      assert.ok(!matches({ customer: { email: [{ exists: true }] } }, { status: "SUCCESS" }));
      assert.ok(matches({ customer: { email: [{ exists: false }] } }, { customer: { phone: "555" } }));
      assert.ok(!matches({ customer: { email: [{ exists: true }] } }, { customer: { phone: "555" } }));
      assert.ok(matches({ a: { b: { c: [{ exists: false }] } } }, {}));
      // Absence does not excuse the pattern's other fields.
      assert.ok(!matches({ a: { b: [{ exists: false }], c: ["x"] } }, {}));
    });
  });

  describe("arrays in the event", function () {
    it("match when any element matches", function () {
      assert.ok(matches({ tags: ["vip"] }, { tags: ["new", "vip"] }));
      assert.ok(!matches({ tags: ["vip"] }, { tags: ["new", "regular"] }));
      assert.ok(!matches({ tags: ["vip"] }, { tags: [] }));
      assert.ok(matches({ tags: [{ prefix: "v" }] }, { tags: ["new", "vip"] }));
      assert.ok(matches({ scores: [{ numeric: [">", 0.9] }] }, { scores: [0.1, 0.95] }));
      assert.ok(!matches({ scores: [{ numeric: [">", 0.9] }] }, { scores: [0.1, 0.5] }));
    });

    it("of objects: a nested pattern matches when one element matches it", function () {
      const event = {
        items: [
          { sku: "A-1", quantity: 1 },
          { sku: "B-2", quantity: 5 },
        ],
      };
      assert.ok(matches({ items: { sku: ["B-2"] } }, event));
      assert.ok(matches({ items: { sku: ["B-2"], quantity: [{ numeric: [">", 2] }] } }, event));
      assert.ok(!matches({ items: { sku: ["C-3"] } }, event));
      // Both fields must hold in the same element.
      assert.ok(!matches({ items: { sku: ["A-1"], quantity: [5] } }, event));
    });
  });

  describe("$or and several patterns", function () {
    it("$or matches when any of its patterns does", function () {
      const pattern = { $or: [{ Location: ["New York"] }, { Day: ["Monday"] }] };
      assert.ok(matches(pattern, { Location: "New York", Day: "Sunday" }));
      assert.ok(matches(pattern, { Location: "Boston", Day: "Monday" }));
      assert.ok(!matches(pattern, { Location: "Boston", Day: "Sunday" }));
    });

    it("$or inside a nested object, and beside other fields that must hold too", function () {
      const pattern = { data: { status: ["SUCCESS"], $or: [{ channel: ["web"] }, { ticketCount: [{ numeric: [">", 4] }] }] } };
      assert.ok(matches(pattern, { data: { status: "SUCCESS", channel: "web", ticketCount: 1 } }));
      assert.ok(matches(pattern, { data: { status: "SUCCESS", channel: "app", ticketCount: 6 } }));
      assert.ok(!matches(pattern, { data: { status: "SUCCESS", channel: "app", ticketCount: 2 } }));
      assert.ok(!matches(pattern, { data: { status: "FAILED", channel: "web", ticketCount: 6 } }));
    });

    it("delivers a record that matches any of a mapping's patterns, and every record when there are none", function () {
      const patterns = [{ data: { type: ["vfLogin"] } }, { data: { type: ["vfLogout"] } }];
      const login = recordLike(templates.vf, 1, { type: "vfLogin" });
      const logout = recordLike(templates.vf, 2, { type: "vfLogout" });
      const other = recordLike(templates.vf, 3, { type: "vfSignup" });
      assert.ok(deliversKinesis(patterns, login));
      assert.ok(deliversKinesis(patterns, logout));
      assert.ok(!deliversKinesis(patterns, other));
      assert.ok(deliversKinesis([], other));
      assert.ok(deliversKinesis([], rawKinesis("not json")));
    });
  });

  describe("Kinesis data", function () {
    it("is matched parsed from its base64 JSON", function () {
      const record = recordLike(templates.vf, 1, { record: 12345, order: { type: "buy", stock: "ANYCO", quantity: 1000 } });
      assert.ok(deliversKinesis([{ data: { order: { type: ["buy"] } } }], record));
      assert.ok(!deliversKinesis([{ data: { order: { type: ["sell"] } } }], record));
      assert.ok(deliversKinesis([{ data: { order: { quantity: [{ numeric: [">=", 1000] }] } } }], record));
    });

    it("that is not JSON matches no pattern on data, not even one asking only for absence", function () {
      for (const text of ["not json", '{"type": "vfLogin"', ""]) {
        const record = rawKinesis(text);
        assert.ok(!deliversKinesis([{ data: { type: ["vfLogin"] } }], record), text);
        assert.ok(!deliversKinesis([{ data: { type: [{ exists: false }] } }], record), text);
        assert.ok(!deliversKinesis([{ data: { type: [{ "anything-but": "x" }] } }], record), text);
      }
    });

    it("named only inside a top-level $or is still parsed, and still refused when it is not JSON", function () {
      const patterns = [{ $or: [{ data: { type: ["vfLogin"] } }, { data: { type: ["vfLogout"] } }] }];
      assert.ok(deliversKinesis(patterns, recordLike(templates.vf, 1, { type: "vfLogout" })));
      assert.ok(!deliversKinesis(patterns, recordLike(templates.vf, 2, { type: "vfSignup" })));
      assert.ok(!deliversKinesis(patterns, rawKinesis("vfLogout")));
    });
  });

  describe("checkPattern", function () {
    it("accepts every operator it evaluates, and the program's own filters", function () {
      checkPattern(
        {
          a: ["x", 1, true, null, ""],
          b: [{ prefix: "p" }, { suffix: "s" }, { "equals-ignore-case": "E" }],
          c: [{ "anything-but": ["x"] }, { "anything-but": 3 }, { "anything-but": { prefix: "p" } }],
          d: [{ numeric: [">", 0, "<=", 5] }, { exists: false }],
          e: { $or: [{ f: ["x"] }, { g: [{ exists: true }] }] },
        },
        "test",
      );
      for (const entry of Object.values(WORKERS)) {
        if ("filter" in entry.trigger) checkPattern(entry.trigger.filter, "registry");
      }
    });

    it("refuses an operator it does not know, naming it and where it is", function () {
      assert.throws(
        () => checkPattern({ data: { FileName: [{ wildcard: "*.png" }] } }, "mapping images"),
        (error: Error) =>
          /"wildcard"/.test(error.message) && /mapping images/.test(error.message) && /data\.FileName/.test(error.message),
      );
      assert.throws(() => checkPattern({ data: { sourceIp: [{ cidr: "10.0.0.0/24" }] } }, "m"), /"cidr"/);
      assert.throws(() => checkPattern({ $or: [{ a: ["x"] }, { b: [{ "unknown-op": 1 }] }] }, "m"), /"unknown-op"/);
    });

    it("refuses an anything-but it cannot evaluate rather than matching everything", function () {
      assert.throws(() => checkPattern({ FileName: [{ "anything-but": { suffix: ".png" } }] }, "m"), /suffix/);
      assert.throws(() => checkPattern({ Name: [{ "anything-but": { wildcard: "a*" } }] }, "m"), /wildcard/);
    });

    it("refuses a pattern that is neither an object nor a list", function () {
      assert.throws(() => checkPattern({ data: "vfLogin" }, "m"), /must be an object or a list/);
    });
  });

  describe("the program's filters", function () {
    const { vf, demand, purchase, sqJourney } = templates;
    const filterOf = (name: keyof typeof WORKERS) => (WORKERS[name].trigger as { filter: object }).filter;

    /** The local filter's verdict, checked against the test helper's where its rules apply. */
    function verdict(filter: object, record: KinesisFixtureRecord, compare = true): boolean {
      const local = deliversKinesis([filter], record);
      if (compare) assert.equal(local, deliversKinesisRecord(filter, record), "the test helper disagrees");
      return local;
    }

    it("the vf stream's: logins only", function () {
      const filter = filterOf("enqueueFromVfStream");
      assert.ok(verdict(filter, vf));
      assert.ok(verdict(filter, recordLike(vf, 1, payloads.vf("gu-1"))));
      assert.ok(!verdict(filter, recordLike(vf, 2, { ...payloads.vf("gu-1"), type: "vfLogout" })));
      assert.ok(!verdict(filter, recordLike(vf, 3, undefined, { rawData: Buffer.from("vfLogin").toString("base64") })));
    });

    it("the demand stream's: inserts and modifications that carry a fan", function () {
      const filter = filterOf("enqueueFromDemandStream");
      assert.ok(verdict(filter, demand));
      assert.ok(verdict(filter, recordLike(demand, 1, payloads.demand("gu-2", "MODIFY"))));
      assert.ok(!verdict(filter, recordLike(demand, 2, payloads.demand("gu-2", "REMOVE"))));
      const noFan = payloads.demand("gu-2") as { dynamodb: { NewImage: Record<string, unknown> } };
      delete noFan.dynamodb.NewImage.globalUserId;
      assert.ok(!verdict(filter, recordLike(demand, 3, noFan)));
    });

    it("the purchase stream's: successful purchases by a known fan", function () {
      const filter = filterOf("enqueueFromPurchaseStream");
      assert.ok(verdict(filter, purchase));
      assert.ok(!verdict(filter, recordLike(purchase, 1, { ...(payloadOf(purchase) as object), status: "FAILED" })));
      const anonymous = payloadOf(purchase) as { customer: Record<string, unknown> };
      delete anonymous.customer.globalUserId;
      assert.ok(!verdict(filter, recordLike(purchase, 2, anonymous)));
      const { customer: _customer, ...noCustomer } = payloadOf(purchase) as Record<string, unknown>;
      assert.ok(!verdict(filter, recordLike(purchase, 3, noCustomer)));
    });

    it("the SQ journey stream's: steps by a known fan", function () {
      const filter = filterOf("enqueueFromSQJourneyStream");
      assert.ok(verdict(filter, sqJourney));
      assert.ok(verdict(filter, recordLike(sqJourney, 1, payloads.sqJourney("gu-3"))));
      const { globalUserId: _id, ...anonymous } = payloadOf(sqJourney) as Record<string, unknown>;
      assert.ok(!verdict(filter, recordLike(sqJourney, 2, anonymous)));
    });

    it("the table stream's: fresh ARAI to score, TTL removals of rescore records to rescore", function () {
      const scoring = filterOf("scoreUsers");
      const staging = filterOf("stagingScoreUsers");
      const rescore = filterOf("processRescoreEvents");
      const table = (index: number, change: unknown) => recordLike(templates.rescoreRemoval, index, change);

      const activity = table(1, fanChange("MODIFY", null));
      const firstActivity = table(2, fanChange("INSERT", null));
      assert.ok(verdict(scoring, activity) && verdict(staging, activity));
      assert.ok(verdict(scoring, firstActivity) && verdict(staging, firstActivity));
      assert.ok(!verdict(rescore, activity));

      // The score written back is no fresh ARAI: scoring cannot loop.
      const scored = fanChange("MODIFY", null) as { dynamodb: { NewImage: Record<string, unknown> } };
      scored.dynamodb.NewImage.type = { S: "score" };
      assert.ok(!verdict(scoring, table(3, scored)));

      const byTtl = table(4, rescoreRemoval("gu-4", "2026-12-01"));
      assert.ok(verdict(rescore, byTtl));
      assert.ok(!verdict(scoring, byTtl));
      assert.ok(!verdict(rescore, table(5, rescoreRemoval("gu-4", "2026-12-01", { userIdentity: null }))));
      assert.ok(!verdict(rescore, table(6, rescoreRemoval("gu-4", "2026-12-01", { userIdentity: { ...TTL, type: "User" } }))));
      assert.ok(!verdict(rescore, table(7, fanChange("REMOVE", TTL))));
      assert.ok(verdict(rescore, templates.rescoreRemoval));
    });
  });
});
