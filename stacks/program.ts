/**
 * The whole deployment of one stack (qa1, dev1, preprod1, prod1), built from its configuration.
 */
import { LogShipping } from "../components/logShipping";
import { createRegionalPlatform, type RegionalPlatform } from "../components/platform";
import { AuthStack } from "./authStack";
import { PRIMARY_REGION, type StackConfig, WEST_REGION } from "./config";
import { BotOrNotStack, ClusteringStack, ExportNotifications } from "./exportImportStack";
import { IdvStack } from "./idvStack";
import { ScoringStack } from "./scoringStack";

export function fanIdentityWorkers(config: StackConfig) {
  const east = createRegionalPlatform(config.platform, PRIMARY_REGION);
  const logShipping =
    config.logShipping && new LogShipping("log-shipping", { platform: east, streamArn: config.logShipping.streamArn });
  const logsOf = (platform: RegionalPlatform) => logShipping?.targetFor(platform);

  const auth = new AuthStack("auth", {
    platform: east,
    auth: config.auth,
    apiKeys: config.secrets.authApiKeys,
    logShipping: logsOf(east),
  });
  const exportsBucket = { platform: east, dataScience: config.dataScience, logShipping: logsOf(east) };
  const botOrNot = new BotOrNotStack("botornot", { ...exportsBucket, exportImport: config.botOrNot });
  const clustering = new ClusteringStack("clustering", { ...exportsBucket, exportImport: config.clustering });
  if (config.dataScience.bucketInThisAccount) {
    new ExportNotifications("data-science-exports", {
      platform: east,
      bucketArn: config.dataScience.exportsBucketArn,
      targets: [botOrNot.notificationTarget, clustering.notificationTarget],
    });
  }

  const scoringIn = (platform: RegionalPlatform, region: StackConfig["scoring"]["east"]) =>
    new ScoringStack(`scoring-${platform === east ? "east" : "west"}`, {
      platform,
      scoring: config.scoring,
      region,
      araiCredentials: config.secrets.araiCredentials,
      modelServingToken: config.secrets.modelServingToken,
      appsyncApiArn: config.auth.appsyncApiArn,
      logShipping: logsOf(platform),
    });
  const scoringEast = scoringIn(east, config.scoring.east);
  // The west region has its own provider, queues, table and streams, runs as `<env>w`, and ships its logs east.
  const scoringWest =
    config.scoring.west && scoringIn(createRegionalPlatform(config.platform, WEST_REGION, "w"), config.scoring.west);

  // Identity verification keeps its sessions in the east region's fan-identity table.
  const idv = new IdvStack("idv", {
    platform: east,
    idv: config.idv,
    appsyncApiArn: config.auth.appsyncApiArn,
    table: { name: scoringEast.table.name, arn: scoringEast.table.arn },
    secrets: {
      personaApiKey: config.secrets.personaApiKey,
      personaWebhookSecrets: config.secrets.personaWebhookSecrets,
      decisionSigningKey: config.secrets.decisionSigningKey,
    },
    logShipping: logsOf(east),
  });

  return {
    idvWebhookUrl: idv.webhookUrl,
    fanIdentityTableEast: scoringEast.table.name,
    activityQueueUrlEast: scoringEast.activityQueue.url,
    ...(scoringWest ? { fanIdentityTableWest: scoringWest.table.name, activityQueueUrlWest: scoringWest.activityQueue.url } : {}),
    validateTokenArn: auth.validateToken.function.arn,
    startBotOrNotImportArn: botOrNot.importFunction.function.arn,
    startClusterImportArn: clustering.importFunction.function.arn,
  };
}
