/**
 * Loaded by mocha before any spec (see .mocharc.json).
 */
// The SDK warns on Node 20 about its own future support window; tests run on 20, Lambda on 24.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
// Worker logs are JSON on stdout; tests that check them capture it (see logs.ts).
process.env.POWERTOOLS_LOG_LEVEL ??= "WARN";
// Worker metrics (EMF documents on stdout) likewise: the specs about them turn them on (emittedMetrics.ts).
process.env.POWERTOOLS_METRICS_DISABLED ??= "true";
