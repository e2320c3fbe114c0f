/**
 * The policy pack of fan-identity-workers, run by `pulumi preview --policy-pack policy`: the
 * Pulumi policy runtime loads policy/package.json, whose main is this module compiled to
 * build/policy/index.js (build with `npm run build` first).
 */
import { PolicyPack } from "@pulumi/policy";
import { policies } from "./policies";

new PolicyPack("fan-identity-workers", { policies, enforcementLevel: "mandatory" });
