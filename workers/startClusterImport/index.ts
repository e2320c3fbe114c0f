import { glueImportContract } from "../shared/glueImport/contract";
import { defineGlueImportWorker } from "../shared/glueImport";

export const startClusterImportContract = glueImportContract(
  "startClusterImport",
  "Starts the clustering Glue import workflow when a Data Science clustering export completes",
);

export const startClusterImport = defineGlueImportWorker(startClusterImportContract);
