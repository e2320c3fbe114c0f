import { defineContract } from "../shared/runtime/contract";
import { ACTIVITY_STREAM_ACCESS, activityStreamEnvironment } from "../shared/scoring/enqueueContracts";

export const enqueueFromPurchaseStreamContract = defineContract({
  name: "enqueueFromPurchaseStream",
  description: "Enqueues fans with a successful purchase on purchase-stream for scoring, and schedules their rescore",
  environment: activityStreamEnvironment,
  access: ACTIVITY_STREAM_ACCESS,
  dependencies: [],
});
