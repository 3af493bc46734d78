/**
 * `npm run worker`: the worker alone, against the server at TEMPORAL_ADDRESS.
 * SIGINT and SIGTERM shut it down gracefully (the SDK's runtime handles them).
 */
import { loadConfig } from './config';
import { installRuntime, tracingFromConfig } from './telemetry';
import { connectWithRetry, createHypervisorWorker } from './worker';
import { registerDemoHandlers } from '../activities/demoHandlers';
import { openAuditStore } from '../src/store';
import { useNodeCrypto } from '../src/node/hashNode';
import { loadHypervisorKey } from '../src/store/treeHeads';
import { McpClients } from '../activities/mcpClients';

export async function runWorker(): Promise<void> {
  const config = loadConfig();
  installRuntime(config); // before anything connects: the runtime is the process's
  const tracing = tracingFromConfig(config);
  useNodeCrypto(); // this process's own hashing; the workflow bundle keeps @noble/hashes (src/core/hash.ts)
  registerDemoHandlers();
  const connection = await connectWithRetry(config.address);
  // Before the store: a key file that cannot be read stops the worker before it touches a trail.
  const hypervisorKey = loadHypervisorKey({ dataDir: config.dataDir });
  const store = await openAuditStore({ dataDir: config.dataDir });
  const mcp = new McpClients(config.mcpServers, config.toolPolicy);
  try {
    const { namespace, taskQueue } = config;
    const worker = await createHypervisorWorker({
      connection,
      namespace,
      taskQueue,
      store,
      tracing,
      toolPolicy: config.toolPolicy,
      mcp,
      hypervisorKey,
      stickyQueueTimeoutMs: config.stickyQueueTimeoutMs,
      deployment: config.deployment,
    });
    console.error(
      `Worker polling task queue "${config.taskQueue}" on ${config.address} (namespace ${config.namespace})`,
    );
    console.error(
      `  signs tree heads as ${hypervisorKey.did} (\`hv audit verify SESSION --hypervisor ${hypervisorKey.did}\`)`,
    );
    if (config.deployment)
      console.error(
        `  deployment version ${config.deployment.deploymentName}:${config.deployment.buildId} (sagas pinned, sessions auto-upgrade)`,
      );
    if (config.metricsAddress) console.error(`  metrics: http://${config.metricsAddress}/metrics`);
    if (tracing) console.error(`  traces: OTLP to ${config.otlpTracesEndpoint} as ${config.serviceName}`);
    const tools = config.toolPolicy;
    console.error(
      tools.origins.size
        ? `  HTTP tools at: ${[...tools.origins].join(', ')}${tools.allowPrivateAddresses ? ' (private addresses allowed)' : ''}; answers up to ${tools.maxResponseBytes} bytes`
        : '  HTTP tools: none (HV_TOOL_ORIGINS is empty)',
    );
    console.error(
      config.mcpServers.size
        ? `  MCP servers: ${[...config.mcpServers.keys()].join(', ')}`
        : '  MCP servers: none (HV_MCP_SERVERS is empty)',
    );
    await worker.run();
    console.error('Worker stopped.');
  } finally {
    await mcp.close(); // stops stdio servers it started
    await tracing?.spanProcessor.shutdown(); // sends the spans still batched
    await store.close();
    await connection.close();
  }
}

if (require.main === module) {
  runWorker().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
