/**
 * A dev server and an in-process worker of a test's (or script's) own, for
 * work that must not share the suite's server: stopping and restarting it,
 * the Web UI (the shared server is headless), recording histories.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { HypervisorClient } from '../../src/client';
import { startDevServer, type DevServer } from '../../worker/devServer';
import { createHypervisorWorker } from '../../worker/worker';
import { openAuditStore, type AuditStore } from '../../src/store';
import { freePort } from '../../worker/ports';
import { loadHypervisorKey } from '../../src/store/treeHeads';

export interface OwnHypervisor {
  server: DevServer;
  hv: HypervisorClient;
  store: AuditStore;
  /** Where the audit store's SQLite file is: give it to other processes as HV_DATA_DIR. */
  dataDir: string;
  /** The worker's did:key, which signs tree heads (key file <dataDir>/hypervisor.key). */
  hypervisorDid: string;
  /** Stops the worker, the connections and the server; removes the data folder when it made one. */
  stop(): Promise<void>;
}

export interface OwnHypervisorOptions {
  taskQueue: string;
  /** The database file; by default one in a fresh temp folder, removed at stop. */
  dbFile?: string;
  port?: number;
  /** Serve the Web UI too. */
  withUi?: boolean;
  /** Where the audit store's SQLite file goes; by default beside the database file. */
  dataDir?: string;
}

export async function startOwnHypervisor(options: OwnHypervisorOptions): Promise<OwnHypervisor> {
  const tempDir = options.dbFile ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'hv-own-'));
  const dbFile = options.dbFile ?? path.join(tempDir!, 'temporal.db');
  const server = await startDevServer({
    port: options.port ?? (await freePort()),
    uiPort: await freePort(),
    dbFile,
    headless: !options.withUi,
  });
  const native = await NativeConnection.connect({ address: server.address });
  const connection = await Connection.connect({ address: server.address });
  const dataDir = options.dataDir ?? path.dirname(dbFile);
  const store = await openAuditStore({ dataDir });
  const hypervisorKey = loadHypervisorKey({ dataDir });
  const worker = await createHypervisorWorker({
    connection: native,
    namespace: 'default',
    taskQueue: options.taskQueue,
    store,
    hypervisorKey,
  });
  const running = worker.run();
  return {
    server,
    store,
    dataDir,
    hypervisorDid: hypervisorKey.did,
    hv: new HypervisorClient(new Client({ connection }), options.taskQueue, store),
    async stop() {
      worker.shutdown();
      await running;
      await store.close();
      await native.close();
      await connection.close();
      await server.stop();
      if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
    },
  };
}
