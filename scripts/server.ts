/**
 * `npm run server`: the local Temporal dev server alone (data in .temporal/),
 * for running workers yourself with `npm run worker`. Ctrl-C stops it.
 */
import { loadConfig } from '../worker/config';
import { startDevServer, temporalAnswers } from '../worker/devServer';

async function main(): Promise<void> {
  const config = loadConfig();
  if (await temporalAnswers(config.address)) {
    console.error(`A Temporal server already answers at ${config.address}; nothing to start.`);
    return;
  }
  const server = await startDevServer({
    port: config.port,
    uiPort: config.uiPort,
    dbFile: config.dbFile,
    namespace: config.namespace,
  });
  console.error(`Temporal server: ${server.address}`);
  console.error(`Web UI:          ${server.uiUrl}/namespaces/${config.namespace}/workflows`);
  console.error('Ctrl-C stops it.');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await server.stop();
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
