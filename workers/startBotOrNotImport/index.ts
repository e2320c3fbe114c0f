import { glueImportContract } from "../shared/glueImport/contract";
import { defineGlueImportWorker } from "../shared/glueImport";

export const startBotOrNotImportContract = glueImportContract(
  "startBotOrNotImport",
  "Starts the bot-or-not Glue import workflow when a Data Science bot-or-not export completes",
);

export const startBotOrNotImport = defineGlueImportWorker(startBotOrNotImportContract);
