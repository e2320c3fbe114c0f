/**
 * fan-identity-workers: `pulumi up -s <stack>` runs this program.
 */
import { loadStackConfig } from "./stacks/config";
import { fanIdentityWorkers } from "./stacks/program";

export = fanIdentityWorkers(loadStackConfig());
