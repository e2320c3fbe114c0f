/**
 * The whole deployment of one stack (qa1, dev1, preprod1, prod1), built from its configuration.
 */
import { createRegionalPlatform } from "../components/platform";
import { AuthStack } from "./authStack";
import type { StackConfig } from "./config";
import { BotOrNotStack, ClusteringStack, ExportNotifications } from "./exportImportStack";
import { ScoringStack } from "./scoringStack";

/** The primary region: everything but the west scoring component lives here. */
export const PRIMARY_REGION = "us-east-1";

export function fanIdentityWorkers(config: StackConfig) {
  const east = createRegionalPlatform(config.platform, PRIMARY_REGION);
  const inEast = east.componentOptions();

  const auth = new AuthStack("auth", { platform: east, auth: config.auth, apiKeys: config.secrets.authApiKeys }, inEast);
  const exportsBucket = { platform: east, dataScience: config.dataScience };
  const botOrNot = new BotOrNotStack("botornot", { ...exportsBucket, exportImport: config.botOrNot }, inEast);
  const clustering = new ClusteringStack("clustering", { ...exportsBucket, exportImport: config.clustering }, inEast);
  if (config.dataScience.bucketInThisAccount) {
    new ExportNotifications(
      "data-science-exports",
      { bucketArn: config.dataScience.exportsBucketArn, targets: [botOrNot.notificationTarget, clustering.notificationTarget] },
      inEast,
    );
  }

  const scoringEast = new ScoringStack(
    "scoring-east",
    {
      platform: east,
      scoring: config.scoring,
      region: config.scoring.east,
      araiCredentials: config.secrets.araiCredentials,
      modelServingToken: config.secrets.modelServingToken,
    },
    inEast,
  );

  return {
    fanIdentityTableEast: scoringEast.table.name,
    activityQueueUrlEast: scoringEast.activityQueue.url,
    validateTokenArn: auth.validateToken.function.arn,
    startBotOrNotImportArn: botOrNot.importFunction.function.arn,
    startClusterImportArn: clustering.importFunction.function.arn,
  };
}
