/**
 * `npm start`: the local Temporal dev server (unless one answers at
 * TEMPORAL_ADDRESS) and the hypervisor's worker, in one foreground process.
 * Ctrl-C stops the worker gracefully, then the server this process started.
 */
import * as path from 'node:path';
import { loadConfig } from '../worker/config';
import { startDevServer, temporalAnswers, type DevServer } from '../worker/devServer';
import { runWorker } from '../worker/main';

async function main(): Promise<void> {
  const config = loadConfig();
  let server: DevServer | undefined;
  if (await temporalAnswers(config.address)) {
    console.error(`Using the Temporal server already answering at ${config.address}.`);
  } else if (config.addressGiven) {
    throw new Error(
      `TEMPORAL_ADDRESS=${config.address} does not answer; start that server or unset TEMPORAL_ADDRESS to run a local one`,
    );
  } else {
    console.error(
      `Starting the local Temporal dev server (data in ${path.relative(process.cwd(), config.dataDir) || '.'}/) …`,
    );
    server = await startDevServer({
      port: config.port,
      uiPort: config.uiPort,
      dbFile: config.dbFile,
      namespace: config.namespace,
    });
    console.error(`Temporal server: ${server.address}`);
    console.error(`Web UI:          ${server.uiUrl}/namespaces/${config.namespace}/workflows`);
  }
  try {
    await runWorker();
  } finally {
    if (server) {
      console.error('Stopping the Temporal dev server …');
      await server.stop();
    }
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
