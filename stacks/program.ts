/**
 * The whole deployment of one stack (qa1, dev1, preprod1, prod1), built from its configuration.
 */
import * as pulumi from "@pulumi/pulumi";
import { LogShipping } from "../components/logShipping";
import { RegionalOperations } from "../components/operations";
import { createRegionalPlatform, type RegionalPlatform } from "../components/platform";
import type { LogShippingTarget } from "../components/workerFunction";
import { AuthStack } from "./authStack";
import { PRIMARY_REGION, type StackConfig, WEST_REGION } from "./config";
import { BotOrNotStack, ClusteringStack, ExportNotifications } from "./exportImportStack";
import { IdvStack } from "./idvStack";
import { ScoringStack } from "./scoringStack";

export function fanIdentityWorkers(config: StackConfig) {
  const east = createRegionalPlatform(config.platform, PRIMARY_REGION);
  const logsOf = logShippingFor(config, east);
  const auth = new AuthStack("auth", {
    platform: east,
    auth: config.auth,
    apiKeys: config.secrets.authApiKeys,
    logShipping: logsOf(east),
  });
  const imports = dataScienceImports(config, east, logsOf);
  const scoringEast = scoringIn(config, east, config.scoring.east, logsOf);
  // The west region has its own provider, queues, table and streams, runs as `<env>w`, and ships its logs east.
  const west = config.scoring.west && createRegionalPlatform(config.platform, WEST_REGION, "w");
  const scoringWest = west && config.scoring.west && scoringIn(config, west, config.scoring.west, logsOf);
  const idv = identityVerification(config, east, scoringEast, logsOf);
  // Each region's endpoints and egress serve what its components placed in the app tier.
  for (const platform of [east, ...(west ? [west] : [])]) platform.network.complete();
  // Last: each region's alarms and dashboard cover what its components registered above.
  const operationsEast = operationsIn(config, east);
  const operationsWest = west && operationsIn(config, west);

  return {
    idvWebhookUrl: idv.webhookUrl,
    fanIdentityTableEast: scoringEast.table.name,
    activityQueueUrlEast: scoringEast.activityQueue.url,
    ...(scoringWest ? { fanIdentityTableWest: scoringWest.table.name, activityQueueUrlWest: scoringWest.activityQueue.url } : {}),
    validateTokenArn: auth.validateToken.function.arn,
    startBotOrNotImportArn: imports.botOrNot.importFunction.function.arn,
    startClusterImportArn: imports.clustering.importFunction.function.arn,
    checkLivenessArn: idv.checkLiveness.function.arn,
    handleEventArn: idv.handleEvent.function.arn,
    getArmScoreArnEast: scoringEast.workers.getArmScore!.function.arn,
    ...(scoringWest ? { getArmScoreArnWest: scoringWest.workers.getArmScore!.function.arn } : {}),
    /** The public keys verifying checkLiveness's decision tokens, as a JWKS document. */
    decisionTokenJwks: idv.decisionTokenJwks,
    /** Every dead-letter and failure queue, by name, for redrives and for the runbook. */
    failureQueueUrls: failureQueueUrls([east, ...(west ? [west] : [])]),
    alertTopicArnEast: operationsEast.topic.arn,
    dashboardUrlEast: operationsEast.dashboardUrl,
    ...(operationsWest ? { alertTopicArnWest: operationsWest.topic.arn, dashboardUrlWest: operationsWest.dashboardUrl } : {}),
  };
}

/** A region's alert topic, alarms and dashboard (docs/operations.md). */
function operationsIn(config: StackConfig, platform: RegionalPlatform): RegionalOperations {
  return new RegionalOperations(`operations-${platform.region === PRIMARY_REGION ? "east" : "west"}`, {
    platform,
    thresholds: config.operations.alarms,
    alerts: { emails: config.operations.alerts.emails, httpsEndpoints: config.secrets.alertHttpsEndpoints },
  });
}

/** The URLs of the queues that hold failed work (dead-letter and failure queues), by physical name. */
function failureQueueUrls(platforms: readonly RegionalPlatform[]): Record<string, pulumi.Output<string>> {
  return Object.fromEntries(
    platforms.flatMap((platform) =>
      platform.flows.queues
        .filter((queue) => queue.role !== "work")
        .map((queue) => [queue.queueName, pulumi.output(queue.url)] as const),
    ),
  );
}

/** Where a region's log groups subscribe: the central stream (through a destination outside its region), or nowhere. */
type LogsOf = (platform: RegionalPlatform) => LogShippingTarget | undefined;

function logShippingFor(config: StackConfig, east: RegionalPlatform): LogsOf {
  const logShipping =
    config.logShipping && new LogShipping("log-shipping", { platform: east, streamArn: config.logShipping.streamArn });
  return (platform) => logShipping?.targetFor(platform);
}

/** Both imports, and the exports bucket's one notification configuration when the bucket is this account's. */
function dataScienceImports(config: StackConfig, east: RegionalPlatform, logsOf: LogsOf) {
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
  return { botOrNot, clustering };
}

function scoringIn(config: StackConfig, platform: RegionalPlatform, region: StackConfig["scoring"]["east"], logsOf: LogsOf) {
  return new ScoringStack(`scoring-${platform.region === PRIMARY_REGION ? "east" : "west"}`, {
    platform,
    scoring: config.scoring,
    region,
    araiCredentials: config.secrets.araiCredentials,
    modelServingToken: config.secrets.modelServingToken,
    appsyncApiArn: config.auth.appsyncApiArn,
    logShipping: logsOf(platform),
  });
}

/** Identity verification keeps its sessions in the east region's fan-identity table. */
function identityVerification(config: StackConfig, east: RegionalPlatform, scoringEast: ScoringStack, logsOf: LogsOf) {
  return new IdvStack("idv", {
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
    manageApiGatewayAccount: config.manageApiGatewayAccount,
    tracing: config.platform.lambda.tracing === "Active",
  });
}
