import { z } from "../zod";
import { defineContract, type WorkerContract } from "../runtime/contract";
import { DEPENDENCIES } from "../runtime/telemetry";

const environment = () =>
  z.object({
    /** The Glue workflow each completed export starts. */
    GLUE_WORKFLOW_NAME: z.string().check(z.regex(/^[\w-]{1,255}$/, "expected a Glue workflow name")),
  });

export type GlueImportEnvironment = z.infer<ReturnType<typeof environment>>;

/** The contract shared by the import workers: one Glue workflow, started per completed export. */
export function glueImportContract(name: string, description: string): WorkerContract<ReturnType<typeof environment>> {
  return defineContract({
    name,
    description,
    environment,
    access: {
      glue_policy: { actions: ["glue:StartWorkflowRun"], on: "the import's Glue workflow" },
    },
    dependencies: [DEPENDENCIES.glue],
  });
}
