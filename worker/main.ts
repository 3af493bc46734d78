/**
 * `npm run worker`: the worker alone, against the server at TEMPORAL_ADDRESS.
 * SIGINT and SIGTERM shut it down gracefully (the SDK's runtime handles them).
 */
import { loadConfig } from './config';
import { connectWithRetry, createHypervisorWorker } from './worker';
import { registerDemoHandlers } from '../activities/demoHandlers';
import { openAuditStore } from '../src/store';
import { useNodeCrypto } from '../src/hashNode';

export async function runWorker(): Promise<void> {
  const config = loadConfig();
  useNodeCrypto(); // this process's own hashing; the workflow bundle keeps @noble/hashes (src/hash.ts)
  registerDemoHandlers();
  const connection = await connectWithRetry(config.address);
  const store = await openAuditStore({ dataDir: config.dataDir });
  try {
    const worker = await createHypervisorWorker({ connection, namespace: config.namespace, taskQueue: config.taskQueue, store });
    console.error(`Worker polling task queue "${config.taskQueue}" on ${config.address} (namespace ${config.namespace})`);
    await worker.run();
    console.error('Worker stopped.');
  } finally {
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
