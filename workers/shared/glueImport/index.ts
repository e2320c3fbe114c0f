import { GlueClient, StartWorkflowRunCommand } from "@aws-sdk/client-glue";
import { z } from "../zod";
import { AWS_CLIENT_BOUNDS, awsClientConfig } from "../runtime/awsClients";
import { defineWorker, type WorkerContract } from "../runtime/contract";
import { loadEnvironment } from "../runtime/environment";
import { instrumentHandler } from "../runtime/handler";
import { describeIssues } from "../runtime/issues";
import { createLogger, describeError, type Logger } from "../runtime/logging";
import { createWorkerMetrics, discardedMetrics, type WorkerMetrics } from "../runtime/metrics";
import { DEPENDENCIES } from "../runtime/telemetry";
import type { GlueImportEnvironment } from "./contract";
import { decodeS3Key, exportDate } from "./exportKey";

/** The part of an S3 event notification the import reads; other fields may vary. */
const s3EventSchema = () =>
  z.object({
    Records: z
      .array(
        z.object({
          eventName: z.optional(z.string()),
          s3: z.object({
            bucket: z.object({ name: z.string().check(z.minLength(1)) }),
            // Decoded here, so a key S3 could not have sent is reported with its path, before any run starts.
            object: z.object({
              key: z.pipe(
                z.string().check(z.minLength(1)),
                z.transform((key, context) => {
                  try {
                    return decodeS3Key(key);
                  } catch (error) {
                    context.issues.push({ code: "custom", message: (error as Error).message, input: key });
                    return z.NEVER;
                  }
                }),
              ),
            }),
          }),
        }),
      )
      .check(z.minLength(1)),
  });

export interface ImportSummary {
  started: { bucket: string; key: string; date: string; runId: string }[];
  skipped: { bucket: string; key: string; reason: string }[];
}

export interface GlueImportDependencies {
  readonly contract: WorkerContract;
  readonly env: GlueImportEnvironment;
  readonly glue: GlueClient;
  readonly logger: Logger;
  /** Exports received, started, skipped and failed, and the Glue calls. @default none */
  readonly metrics?: WorkerMetrics;
}

/** Starts the workflow once per export in the event; skips keys without a date, with a warning. */
export function createGlueImport(deps: GlueImportDependencies) {
  const { env, glue, logger } = deps;
  const schema = s3EventSchema();
  const workflow = env.GLUE_WORKFLOW_NAME;
  const metrics = deps.metrics ?? discardedMetrics();
  // Bound here, so a contract that does not list Glue fails at cold start.
  const glueCalls = deps.metrics ? metrics.calls(DEPENDENCIES.glue) : undefined;

  return async function startImport(event: unknown): Promise<ImportSummary> {
    const parsed = schema.safeParse(event);
    if (!parsed.success) {
      metrics.received(1);
      metrics.failed("invalid");
      const problems = describeIssues(parsed.error, "(event)").join("; ");
      throw new Error(`${deps.contract.name}: not an S3 event notification: ${problems}`);
    }
    const summary: ImportSummary = { started: [], skipped: [] };
    const failures: string[] = [];
    metrics.received(parsed.data.Records.length);
    for (const record of parsed.data.Records) {
      const bucket = record.s3.bucket.name;
      const key = record.s3.object.key;
      const date = exportDate(key);
      if (date === undefined) {
        const reason = "key has no date=YYYY-MM-DD segment naming a real day";
        logger.warn("export skipped", { bucket, key, reason });
        summary.skipped.push({ bucket, key, reason });
        metrics.skipped(1);
        continue;
      }
      try {
        const command = new StartWorkflowRunCommand({ Name: workflow, RunProperties: { bucket, key, date } });
        const run = await (glueCalls ? glueCalls(() => glue.send(command)) : glue.send(command));
        const runId = run.RunId ?? "";
        logger.info("import started", { workflow, bucket, key, date, runId });
        summary.started.push({ bucket, key, date, runId });
        metrics.processed(1);
      } catch (error) {
        const { message, code } = describeError(error);
        logger.error("import not started", { workflow, bucket, key, date, error: { message, code } });
        metrics.failed("dependency");
        failures.push(
          `s3://${bucket}/${key} (date ${date}): glue StartWorkflowRun ${workflow} failed: ${code ?? "Error"}: ${message}`,
        );
      }
    }
    if (failures.length > 0) {
      // Thrown so Lambda retries the event and, when retries are spent, sends it to the
      // function's on-failure destination: an export is never silently dropped.
      throw new Error(
        `${deps.contract.name}: ${failures.length} of ${parsed.data.Records.length} exports not started: ${failures.join("; ")}`,
      );
    }
    return summary;
  };
}

/** Defines an import worker around a contract made by `glueImportContract`. */
export function defineGlueImportWorker(contract: WorkerContract<z.core.$ZodObject>) {
  return defineWorker(contract, () => {
    const env = loadEnvironment(contract) as GlueImportEnvironment;
    const logger = createLogger(contract);
    const metrics = createWorkerMetrics(contract);
    const startImport = createGlueImport({
      contract,
      env,
      logger,
      glue: new GlueClient(awsClientConfig(AWS_CLIENT_BOUNDS.import.glue)),
      metrics,
    });
    return instrumentHandler({ logger, metrics }, startImport);
  });
}
