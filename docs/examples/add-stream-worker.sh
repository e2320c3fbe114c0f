#!/usr/bin/env bash
# Adds an example stream worker, enqueueFromTransferStream, the way docs/adding-a-worker.md says,
# in a scratch worktree of the current commit: counts the files it touched, builds, plans qa1 and
# runs the worker's tests, then removes the scratch worktree. The checkout it runs from is left
# as it was. Needs `npm ci` done in the checkout (the scratch worktree borrows its node_modules).
set -euo pipefail
root="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"
work="$(mktemp -d)"
git -C "$root" worktree add --quiet --detach "$work" HEAD
cleanup() { git -C "$root" worktree remove --force "$work"; }
trap cleanup EXIT
ln -s "$root/node_modules" "$work/node_modules"
cd "$work"

# 1, 2: the worker's folder, copied from its sibling and renamed; its reader reads a transfer.
cp -r workers/enqueueFromSQJourneyStream workers/enqueueFromTransferStream
sed -i -e 's/enqueueFromSQJourneyStream/enqueueFromTransferStream/g' -e 's/SQJourney/Transfer/g' \
  -e 's/source: "sqJourney"/source: "transfer"/' \
  -e 's/fans moving through the smart queue on sq-journey-stream/fans receiving a ticket transfer on transfer-stream/' \
  -e 's/Queue-journey steps/Completed ticket transfers/' \
  -e 's/sq-journey-stream: a queue-journey event `{ globalUserId, journeyStep, timestamp, … }`/transfer-stream: a transfer `{ toGlobalUserId, status, completedAt, … }`/' \
  -e 's/^\(\s*\)globalUserId: globalUserIdSchema(),$/\1toGlobalUserId: globalUserIdSchema(),/' \
  -e 's/^\(\s*\)timestamp: z.optional(z.unknown()),$/\1completedAt: z.optional(z.unknown()),/' \
  -e 's/"queue-journey event"/"transfer"/' -e 's/event.globalUserId/event.toGlobalUserId/' -e 's/event.timestamp/event.completedAt/' \
  workers/enqueueFromTransferStream/*.ts

# 3: one registry entry.
node - <<'NODE'
const fs = require("fs");
const file = "workers/registry.ts";
let text = fs.readFileSync(file, "utf8");
text = text.replace(
  'import { enqueueFromSQJourneyStream } from "./enqueueFromSQJourneyStream";',
  '$&\nimport { enqueueFromTransferStream } from "./enqueueFromTransferStream";',
);
text = text.replace(
  "  processRescoreEvents: {",
  `  enqueueFromTransferStream: {
    worker: enqueueFromTransferStream,
    trigger: {
      kind: "inputStream",
      stream: "transferArn",
      queue: "activity",
      filter: { data: { status: ["COMPLETED"], toGlobalUserId: [{ exists: true }] } },
      optional: true,
    },
  },
  processRescoreEvents: {`,
);
fs.writeFileSync(file, text);
NODE

# 4: the stream's ARN in the first stack.
sed -i 's|^\(\s*\)sqJourneyArn: arn:aws:kinesis:us-east-1:\([0-9]*\):stream/sq-journey-stream-qa1$|&\n\1transferArn: arn:aws:kinesis:us-east-1:\2:stream/transfer-stream-qa1|' Pulumi.qa1.yaml

# 5: the worker's spec.
cat > test/enqueueFromTransferStream.spec.ts <<'SPEC_FILE'
import { strict as assert } from "node:assert";
import { Logger } from "@aws-lambda-powertools/logger";
import { createEnqueueFromTransferStream, createTransferReader } from "../workers/enqueueFromTransferStream";
import { WORKERS } from "../workers/registry";
import { deliversKinesisRecord } from "./support/eventFilter";
import { type LocalDynamo, type LocalSqs, startDynamo, startSqs } from "./support/localAws";
import { templates } from "./support/streamFixtures";
import { bodyOf, recordLike } from "./support/streams";

const transfer = (toGlobalUserId: string, status = "COMPLETED") => ({
  transferId: "tr-1",
  fromGlobalUserId: "gu-from",
  toGlobalUserId,
  status,
  completedAt: "2026-11-30T10:00:00.000Z",
});

describe("enqueueFromTransferStream", function () {
  let sqs: LocalSqs;
  let dynamo: LocalDynamo;
  before(async function () {
    [sqs, dynamo] = await Promise.all([startSqs(), startDynamo()]);
  });
  after(async function () {
    await Promise.all([sqs?.close(), dynamo?.close()]);
  });

  it("reads the fan a ticket was transferred to, at the transfer's time", function () {
    const reading = createTransferReader()(recordLike(templates.sqJourney, 1, transfer("gu-to")) as never);
    assert.deepEqual(reading, { kind: "activity", globalUserId: "gu-to", timestamp: "2026-11-30T10:00:00.000Z" });
  });

  it("reads a transfer without the receiving fan as a record that can never succeed (the batch loop parks it)", function () {
    const reading = createTransferReader()(recordLike(templates.sqJourney, 1, { status: "COMPLETED" }) as never);
    assert.equal(reading.kind, "fail");
  });

  it("is delivered completed transfers only", function () {
    const { filter } = WORKERS.enqueueFromTransferStream.trigger;
    assert.ok(deliversKinesisRecord(filter, recordLike(templates.sqJourney, 1, transfer("gu-to"))));
    assert.ok(!deliversKinesisRecord(filter, recordLike(templates.sqJourney, 1, transfer("gu-to", "PENDING"))));
  });

  it("enqueues the receiving fan for scoring and schedules a rescore", async function () {
    const queueUrl = await sqs.freshQueue("acct-activity.fifo");
    const failureQueueUrl = await sqs.freshQueue("scoring-stream-failures");
    const table = await dynamo.createFanTable();
    const handler = createEnqueueFromTransferStream({
      env: { ACTIVITY_QUEUE_URL: queueUrl, TABLE_NAME: table, RESCORE_DELAY_DAYS: 5, FAILURE_QUEUE_URL: failureQueueUrl },
      logger: new Logger({ logLevel: "SILENT" }),
      sqs: sqs.client,
      dynamo: dynamo.documents,
    });
    const response = await handler({ Records: [recordLike(templates.sqJourney, 1, transfer("gu-to"))] });
    assert.deepEqual(response.batchItemFailures, []);
    const [message] = (await sqs.drain(queueUrl)).map(bodyOf);
    assert.equal(message?.globalUserId, "gu-to");
    assert.equal(message?.source, "transfer");
    const rescores = await dynamo.scan(table);
    assert.deepEqual(rescores.map((item) => item.userId), ["rescore#gu-to#2026-12-05"]);
  });
});
SPEC_FILE

# 6: the README's diagram of qa1, redrawn by the plan.
npx tsc -p .
node build/tools/plan.js --stack qa1 --diagram /tmp/transfer-flow.mmd >/dev/null 2>&1
node - <<'NODE'
const fs = require("fs");
const readme = fs.readFileSync("README.md", "utf8");
const drawn = fs.readFileSync("/tmp/transfer-flow.mmd", "utf8").trimEnd();
fs.writeFileSync("README.md", readme.replace(/(## Event flow[\s\S]*?```mermaid\n)[\s\S]*?(\n```)/, (_, a, b) => a + drawn + b));
NODE
npx prettier --write workers/registry.ts workers/enqueueFromTransferStream test/enqueueFromTransferStream.spec.ts >/dev/null

echo "files touched:"
git status --porcelain --untracked-files=all | grep -v ' node_modules$' | tee /tmp/transfer-files.txt
count="$(wc -l < /tmp/transfer-files.txt)"
echo "$count files"

npx tsc -p .
npx eslint workers test
node build/tools/plan.js --stack qa1 | grep -i transfer
npx mocha --no-config --require build/test/support/setup.js --timeout 120000 --reporter dot \
  build/test/enqueueFromTransferStream.spec.js build/test/registry.spec.js build/test/readme.spec.js build/test/infrastructure.spec.js
[ "$count" -le 6 ] || { echo "the example touched $count files, more than the guide's six" >&2; exit 1; }
echo "the example worker touched $count files and passes its tests; removing the scratch worktree"
