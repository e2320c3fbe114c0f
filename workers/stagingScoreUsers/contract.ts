import { defineContract } from "../shared/runtime/contract";
import { PARKING_ACCESS } from "../shared/runtime/parking";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import { scoringEnvironment } from "../shared/scoring/scoringEnvironment";

export const stagingScoreUsersContract = defineContract({
  name: "stagingScoreUsers",
  description: "Scores the same fans with the staging model and stores the results in staging items, apart from the fan records",
  environment: scoringEnvironment,
  access: {
    dynamodb_write_scores: { actions: ["dynamodb:BatchWriteItem"], on: "the fan-identity table" },
    model_token: { actions: ["secretsmanager:GetSecretValue"], on: "the model-serving token secret" },
    ...PARKING_ACCESS,
  },
  dependencies: [DEPENDENCIES.modelServing, DEPENDENCIES.secretsManager],
});
