/**
 * The real Temporal environment the workflow tests share: the server at
 * TEMPORAL_ADDRESS when given, else a dev server this test run starts on free
 * ports; plus one in-process worker on a task queue of this run's own.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, makeTelemetryFilterString, type Worker } from '@temporalio/worker';
import { startDevServer, registerSearchAttributes, type DevServer } from '../../worker/devServer';
import { createHypervisorWorker } from '../../worker/worker';
import { openAuditStore, type AuditStore } from '../../src/store';
import { registerTestHandlers } from './testHandlers';
import { loadHypervisorKey } from '../../src/store/treeHeads';
import { freePort } from '../../worker/ports';
import { DEFAULT_MAX_RESPONSE_BYTES, type ToolPolicy } from '../../activities/toolPolicy';
import { McpClients } from '../../activities/mcpClients';
import type { McpServerConfig } from '../../src/core/mcpServers';

export interface TestEnv {
  address: string;
  namespace: string;
  taskQueue: string;
  client: Client;
  connection: Connection;
  nativeConnection: NativeConnection;
  worker: Worker;
  workerRun: Promise<void>;
  server?: DevServer;
  dataDir: string;
  /** The audit store the worker writes trails to (SQLite in dataDir, or HV_AUDIT_DATABASE_URL). */
  store: AuditStore;
  /** The worker's did:key, which signs tree heads (its key file is <dataDir>/hypervisor.key). */
  hypervisorDid: string;
}

/**
 * The origins the test worker runs HTTP tools at — its HV_TOOL_ORIGINS. Tool
 * servers listen on free ports, so each test adds its own tool's origin when
 * it starts it (allowTestToolOrigin; tests/adversarial/raw.ts httpTool does).
 */
export const testToolOrigins = new Set<string>();

/** Lists an HTTP tool's origin with the test worker, as an operator lists it in HV_TOOL_ORIGINS. */
export function allowTestToolOrigin(origin: string): void {
  testToolOrigins.add(new URL(origin).origin);
}

/**
 * The test worker's tool policy. Its tools run on 127.0.0.1, so it allows
 * private addresses — explicitly, as an operator with internal tools would
 * (HV_TOOL_ALLOW_PRIVATE=1); tests of the refusal start a worker without it.
 */
export const testToolPolicy: ToolPolicy = {
  origins: testToolOrigins,
  allowPrivateAddresses: true,
  maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
};

/**
 * What a test's own hypervisor worker on `taskQueue` shares with the test worker: the server, the store and the
 * tool policy, no retention schedule. The test adds the rest (its bundle, its deployment, its identity).
 */
export function ownWorkerOptions(env: TestEnv, taskQueue: string) {
  return {
    connection: env.nativeConnection,
    namespace: env.namespace,
    taskQueue,
    store: env.store,
    retentionSchedule: false,
    toolPolicy: testToolPolicy,
  };
}

/**
 * The MCP servers the test worker calls tools at — its HV_MCP_SERVERS. Tests
 * add theirs as they start them (each under a name of its own).
 */
export const testMcpServers = new Map<string, McpServerConfig>();
let testMcp: McpClients | undefined;

let env: TestEnv | undefined;
let starting: Promise<TestEnv> | undefined;

export function testEnv(): Promise<TestEnv> {
  starting ??= start();
  return starting;
}

let runtimeInstalled = false;

/** Tests fail steps on purpose: keep the worker's expected warnings out of the report. */
export function installQuietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
    shutdownSignals: [],
  });
}

async function start(): Promise<TestEnv> {
  installQuietRuntime();
  const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-test-'));
  let server: DevServer | undefined;
  let address = process.env.TEMPORAL_ADDRESS;
  if (address) {
    await registerSearchAttributes(address, namespace);
  } else {
    server = await startDevServer({
      port: await freePort(),
      uiPort: await freePort(),
      dbFile: path.join(dataDir, 'temporal.db'),
      namespace,
      headless: true,
    });
    address = server.address;
  }
  try {
    const connection = await Connection.connect({ address });
    const client = new Client({ connection, namespace });
    const nativeConnection = await NativeConnection.connect({ address });
    const taskQueue = `hv-test-${process.pid}-${Date.now().toString(36)}`;
    registerTestHandlers();
    const store = await openAuditStore({ dataDir });
    const hypervisorKey = loadHypervisorKey({ dataDir });
    const worker = await createHypervisorWorker({
      connection: nativeConnection,
      namespace,
      taskQueue,
      store,
      toolPolicy: testToolPolicy,
      mcp: (testMcp = new McpClients(testMcpServers, testToolPolicy)),
      hypervisorKey,
    });
    const workerRun = worker.run();
    env = {
      address,
      namespace,
      taskQueue,
      client,
      connection,
      nativeConnection,
      worker,
      workerRun,
      server,
      dataDir,
      store,
      hypervisorDid: hypervisorKey.did,
    };
    return env;
  } catch (err) {
    await server?.stop();
    throw err;
  }
}

export async function stopTestEnv(): Promise<void> {
  if (!env) return;
  const { worker, workerRun, connection, nativeConnection, server, dataDir, store } = env;
  env = undefined;
  starting = undefined;
  worker.shutdown();
  await workerRun;
  await testMcp?.close();
  await store.close();
  await nativeConnection.close();
  await connection.close();
  await server?.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
