import { defineContract } from "../shared/runtime/contract";
import { ACTIVITY_STREAM_ACCESS, activityStreamEnvironment } from "../shared/scoring/enqueueContracts";

export const enqueueFromSQJourneyStreamContract = defineContract({
  name: "enqueueFromSQJourneyStream",
  description: "Enqueues fans moving through the smart queue on sq-journey-stream for scoring, and schedules their rescore",
  environment: activityStreamEnvironment,
  access: ACTIVITY_STREAM_ACCESS,
  dependencies: [],
});
