/**
 * What bench:scale and bench:identity stand on: a dev server of their own
 * (temp folder, free ports), the audit store's SQLite file beside it, and the
 * hypervisor's worker in this process — all torn down after `run`, pass or
 * fail, and on Ctrl-C.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { killAllDevServers, startDevServer, type DevServer } from '../worker/devServer';
import { freePort } from '../worker/ports';
import { createHypervisorWorker } from '../worker/worker';
import { openAuditStore, type AuditStore } from '../src/store';

export interface DevHypervisor {
  client: Client;
  store: AuditStore;
  taskQueue: string;
  /** The run's temp folder (removed afterwards): room for scratch files. */
  dir: string;
}

export async function withDevHypervisor<T>(name: string, run: (env: DevHypervisor) => Promise<T>): Promise<T> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `hv-${name}-`));
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      killAllDevServers();
      fs.rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  let server: DevServer | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let native: NativeConnection | undefined;
  let connection: Connection | undefined;
  const store = await openAuditStore({ dataDir: dir, url: '' });
  try {
    server = await startDevServer({
      port: await freePort(),
      uiPort: await freePort(),
      dbFile: path.join(dir, 'temporal.db'),
      logFile: path.join(dir, 'server.log'),
      headless: true,
    });
    native = await NativeConnection.connect({ address: server.address });
    connection = await Connection.connect({ address: server.address });
    const taskQueue = `hv-${name}-${Date.now().toString(36)}`;
    worker = await createHypervisorWorker({
      connection: native,
      namespace: 'default',
      taskQueue,
      store,
      retentionSchedule: false,
    });
    running = worker.run();
    return await run({ client: new Client({ connection }), store, taskQueue, dir });
  } finally {
    worker?.shutdown();
    await running?.catch(() => undefined);
    await store.close();
    await native?.close().catch(() => undefined);
    await connection?.close().catch(() => undefined);
    await server?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
