import { defineContract } from "../shared/runtime/contract";
import { PARKING_ACCESS } from "../shared/runtime/parking";
import { DEPENDENCIES } from "../shared/runtime/telemetry";
import { scoringEnvironment } from "../shared/scoring/scoringEnvironment";

export const scoreUsersContract = defineContract({
  name: "scoreUsers",
  description:
    "Scores fans whose fresh ARAI reaches the fan-identity table's stream, and stores each score with its model version",
  environment: scoringEnvironment,
  access: {
    dynamodb_write_scores: { actions: ["dynamodb:UpdateItem"], on: "the fan-identity table" },
    model_token: { actions: ["secretsmanager:GetSecretValue"], on: "the model-serving token secret" },
    ...PARKING_ACCESS,
  },
  dependencies: [DEPENDENCIES.modelServing, DEPENDENCIES.secretsManager],
});
