/** Platform settings of a qa1-like stack, for specs that build components outside the program. */
import type { PlatformSettings } from "../../components/platform";

export const testPlatformSettings = (): PlatformSettings => ({
  environment: "qa1",
  productCode: "vfid",
  inventoryCode: "fanid",
  iacRepo: "https://github.com/verified-fan/fan-identity-workers",
  accountId: "210987654321",
  lambda: { runtime: "nodejs24.x", architecture: "arm64", logRetentionDays: 14, tracing: "Active" },
  network: { mode: "existing", vpcIds: {}, tierTagKey: "Tier" },
});
