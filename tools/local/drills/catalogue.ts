/**
 * Every fault drill, in the order `--drill all` (and test/drills.spec.ts) runs them: the
 * dependency drills of this folder (the stand-ins' faults) and the AWS-level drills
 * (`aws*.ts`, faults at the wire).
 */
import { ARAI_DRILLS } from "./arai";
import { AWS_DRILLS } from "./aws";
import { IDENTITY_DRILLS } from "./identity";
import { MODEL_DRILLS } from "./modelServing";
import { PRODUCER_DRILLS } from "./producers";
import { REDIS_DRILLS } from "./redis";
import type { Drill } from "./types";

/** The dependency drills: each a fault of one stand-in, or of what a producer sends. */
export const DEPENDENCY_DRILLS: readonly Drill[] = [
  ...REDIS_DRILLS,
  ...IDENTITY_DRILLS,
  ...ARAI_DRILLS,
  ...MODEL_DRILLS,
  ...PRODUCER_DRILLS,
];

export const DRILLS: readonly Drill[] = [...DEPENDENCY_DRILLS, ...AWS_DRILLS];

/** The drills a `--drill` value names: one by name, or `all`; throws, listing the names, for another. */
export function drillsNamed(name: string): readonly Drill[] {
  if (name === "all") return DRILLS;
  const drill = DRILLS.find((candidate) => candidate.name === name);
  if (!drill)
    throw new Error(`no drill ${name}; the drills are: ${DRILLS.map((candidate) => candidate.name).join(", ")}, or all`);
  return [drill];
}
