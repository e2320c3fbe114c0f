import { defineContract } from "../shared/runtime/contract";
import { ACTIVITY_STREAM_ACCESS, activityStreamEnvironment } from "../shared/scoring/enqueueContracts";

export const enqueueFromDemandStreamContract = defineContract({
  name: "enqueueFromDemandStream",
  description: "Enqueues fans whose demand changes on dmnd-table-stream for scoring, and schedules their rescore",
  environment: activityStreamEnvironment,
  access: ACTIVITY_STREAM_ACCESS,
  dependencies: [],
});
