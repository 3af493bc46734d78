/**
 * The local Temporal dev server: `temporal server start-dev` on a SQLite file
 * under `.temporal/`, so workflows survive a restart of the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Connection, type TLSConfig } from '@temporalio/client';
import { SearchAttributeType } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../src/contract/searchAttributes';
import { ensureTemporalCli } from './temporalCli';

/**
 * The largest update the server admits (Temporal's `history.maxInFlightUpdatePayloads`: the payload bytes of a
 * workflow's updates in flight together). Temporal refuses a workflow task completion with a payload over its
 * blob size limit (`limit.blobSize.error`, 2 MiB) — and a worker's rejection of an update carries the rejected
 * request — so an update near that size failed the session's workflow task instead of being refused. Below it,
 * the frontend refuses the update at admission (RESOURCE_EXHAUSTED, "limit on total payload size of in-flight
 * updates has been reached"), before any worker sees it. Valid requests are far smaller (the typed client sends
 * at most 1 MiB; the contract's bounds keep a request under 256 KiB of content).
 */
export const MAX_UPDATE_PAYLOAD_BYTES = 1536 * 1024;

/** Dynamic config the hypervisor's dev server runs with (the cluster's: deploy/temporal/dynamicconfig/cluster.yaml). */
export const DEV_SERVER_DYNAMIC_CONFIG: Record<string, unknown> = {
  'history.maxInFlightUpdatePayloads': MAX_UPDATE_PAYLOAD_BYTES,
};

export interface DevServerOptions {
  ip?: string;
  port: number;
  uiPort: number;
  dbFile: string;
  namespace?: string;
  /** Where the server's own log goes; it stays out of the user's terminal. */
  logFile?: string;
  headless?: boolean;
}

export interface DevServer {
  address: string;
  uiUrl: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/** Every dev server this process started and has not stopped yet. */
const running = new Set<ChildProcess>();

/** Kills every dev server this process started (for a process that is being killed itself). */
export function killAllDevServers(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** True when something accepts TCP connections at host:port. */
export function portAnswers(address: string, timeoutMs = 500): Promise<boolean> {
  const [host, portText] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(portText) });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function splitAddress(address: string): [string, string] {
  const i = address.lastIndexOf(':');
  return [address.slice(0, i), address.slice(i + 1)];
}

/** True when a Temporal frontend answers a health check at the address (`tls`: the cluster's mutual TLS). */
export async function temporalAnswers(address: string, tls?: TLSConfig): Promise<boolean> {
  if (!(await portAnswers(address))) return false;
  try {
    const connection = await Connection.connect({ address, connectTimeout: 2000, tls });
    try {
      await connection.healthService.check({});
      return true;
    } finally {
      await connection.close();
    }
  } catch {
    return false;
  }
}

/** Waits for the condition, polling; fails with the message when the deadline passes. */
export async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Registers the project's search attributes that the namespace lacks. Flags
 * given at start only apply when the namespace is first created, so this also
 * covers a database file from an older version of the project.
 */
export async function registerSearchAttributes(
  address: string,
  namespace = 'default',
  tls?: TLSConfig,
): Promise<string[]> {
  const connection = await Connection.connect({ address, tls });
  try {
    const existing = await connection.operatorService.listSearchAttributes({ namespace });
    const known = new Set(Object.keys(existing.customAttributes ?? {}));
    const missing = SEARCH_ATTRIBUTES.filter((key) => !known.has(key.name));
    if (missing.length === 0) return [];
    const indexedValueType = temporal.api.enums.v1.IndexedValueType;
    const typeOf: Record<SearchAttributeType, number> = {
      [SearchAttributeType.TEXT]: indexedValueType.INDEXED_VALUE_TYPE_TEXT,
      [SearchAttributeType.KEYWORD]: indexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
      [SearchAttributeType.INT]: indexedValueType.INDEXED_VALUE_TYPE_INT,
      [SearchAttributeType.DOUBLE]: indexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
      [SearchAttributeType.BOOL]: indexedValueType.INDEXED_VALUE_TYPE_BOOL,
      [SearchAttributeType.DATETIME]: indexedValueType.INDEXED_VALUE_TYPE_DATETIME,
      [SearchAttributeType.KEYWORD_LIST]: indexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
    };
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((key) => [key.name, typeOf[key.type]])),
    });
    return missing.map((key) => key.name);
  } finally {
    await connection.close();
  }
}

/** Starts the dev server, waits until it answers, and registers the search attributes. */
export async function startDevServer(
  options: DevServerOptions,
  log: (line: string) => void = console.error,
): Promise<DevServer> {
  const cli = await ensureTemporalCli(log);
  const ip = options.ip ?? '127.0.0.1';
  const address = `${ip}:${options.port}`;
  if (await portAnswers(address))
    throw new Error(`port ${options.port} is already in use; set TEMPORAL_PORT to another port`);
  fs.mkdirSync(path.dirname(options.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(options.port),
    '--db-filename',
    options.dbFile,
    '--namespace',
    options.namespace ?? 'default',
    '--log-level',
    'warn',
    ...Object.entries(DEV_SERVER_DYNAMIC_CONFIG).flatMap(([key, value]) => [
      '--dynamic-config-value',
      `${key}=${JSON.stringify(value)}`,
    ]),
    ...(options.headless ? ['--headless'] : ['--ui-port', String(options.uiPort)]),
  ];
  const logFile = options.logFile ?? path.join(path.dirname(options.dbFile), 'server.log');
  const out = fs.openSync(logFile, 'a');
  // Its own process group: Ctrl-C reaches our process, which stops the worker first, then the server.
  const child = spawn(cli, args, { stdio: ['ignore', out, out], detached: true });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  running.add(child);
  child.once('exit', () => running.delete(child));
  fs.closeSync(out);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      resolve();
    }),
  );
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`the Temporal dev server exited (code ${exited.code}); see ${logFile}`);
        return temporalAnswers(address);
      },
      `the Temporal dev server at ${address} (log: ${logFile})`,
      60_000,
    );
    await registerSearchAttributes(address, options.namespace);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    address,
    uiUrl: `http://${ip}:${options.uiPort}`,
    process: child,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exitPromise;
      clearTimeout(timer);
    },
  };
}
