/**
 * The bench's workers: the hypervisor's (its task queue) and plain Temporal's
 * (its own), in this process — and, with `--workers N`, the same pair in N−1
 * more processes (bench/workerProcess.ts) polling the same queues, so a
 * capacity point with more worker processes is measured the same way for both
 * sides (CAPACITY.md).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { TLSConfig } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { registerStepHandler } from '../activities/handlers';
import { createHypervisorWorker } from '../worker/worker';
import { openAuditStore, type AuditStore } from '../src/store';
import * as plainActivities from './plain/activities';

export const NOOP_HANDLER = 'bench.noop';
/** The long-lived session's slow step (bench/longSession.ts): waits, so its saga is in flight across continue-as-new. */
export const SLOW_HANDLER = 'bench.slow';
export const SLOW_STEP_MS = 20_000;

/** The governed steps' handlers: the no-op, which does nothing, as plain's activities do nothing; and the slow one. */
export function registerNoopHandler(): void {
  registerStepHandler(SLOW_HANDLER, {
    async execute(_input, ctx) {
      await new Promise((r) => setTimeout(r, SLOW_STEP_MS));
      return { done: ctx.stepId };
    },
    async undo(_input, _result, ctx) {
      return { undone: ctx.stepId };
    },
  });
  registerStepHandler(NOOP_HANDLER, {
    async execute(_input, ctx) {
      return { done: ctx.stepId };
    },
    async undo(_input, _result, ctx) {
      return { undone: ctx.stepId };
    },
  });
}

/** What a worker process needs to poll the bench's queues (passed to children as JSON in BENCH_WORKER). */
export interface WorkerSpec {
  address: string;
  namespace: string;
  hvQueue: string;
  plainQueue: string;
  /** PEM strings (the cluster's frontend speaks mutual TLS). */
  tls?: { crt: string; key: string; ca: string; serverName?: string };
  /** The audit store: a database URL, or the SQLite folder. */
  store: { url: string } | { dataDir: string };
}

export function specTls(tls: TLSConfig | undefined): WorkerSpec['tls'] {
  if (!tls || typeof tls !== 'object' || !tls.clientCertPair || !tls.serverRootCACertificate) return undefined;
  return {
    crt: tls.clientCertPair.crt.toString(),
    key: tls.clientCertPair.key.toString(),
    ca: tls.serverRootCACertificate.toString(),
    ...(tls.serverNameOverride ? { serverName: tls.serverNameOverride } : {}),
  };
}

function tlsOf(spec: WorkerSpec): TLSConfig | undefined {
  if (!spec.tls) return undefined;
  return {
    clientCertPair: { crt: Buffer.from(spec.tls.crt), key: Buffer.from(spec.tls.key) },
    serverRootCACertificate: Buffer.from(spec.tls.ca),
    ...(spec.tls.serverName ? { serverNameOverride: spec.tls.serverName } : {}),
  };
}

/**
 * The plain workers' bundle: the sandbox's stack depth as the hypervisor's bundle sets it (workflows/stackFrames.ts),
 * so both sides pay the SDK's per-promise stack trace alike.
 */
export const plainBundlerOptions = { preloadModules: [require.resolve('../workflows/stackFrames')] };

/** The pair of workers of one process, running; `stop` shuts them down and closes what they opened. */
export async function runWorkerPair(spec: WorkerSpec): Promise<{ store: AuditStore; stop(): Promise<void> }> {
  const connection = await NativeConnection.connect({ address: spec.address, tls: tlsOf(spec) });
  const store = await openAuditStore(spec.store);
  const workers = [
    await createHypervisorWorker({ connection, namespace: spec.namespace, taskQueue: spec.hvQueue, store }),
    await Worker.create({
      connection,
      namespace: spec.namespace,
      taskQueue: spec.plainQueue,
      workflowsPath: require.resolve('./plain/workflows'),
      bundlerOptions: plainBundlerOptions,
      activities: plainActivities,
    }),
  ];
  const runs = workers.map((w) => w.run());
  return {
    store,
    async stop() {
      for (const w of workers) w.shutdown();
      await Promise.allSettled(runs);
      await store.close().catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

/** N−1 more worker processes for `spec`, each ready (polling) when this resolves. */
export async function spawnWorkerProcesses(
  spec: WorkerSpec,
  extra: number,
  log: (line: string) => void,
): Promise<{ stop(): Promise<void> }> {
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGTERM');
            setTimeout(() => c.kill('SIGKILL'), 20_000).unref();
          }),
      ),
    );
  };
  try {
    for (let i = 0; i < extra; i++) {
      const child = spawn(process.execPath, [require.resolve('tsx/cli'), path.join(__dirname, 'workerProcess.ts')], {
        env: { ...process.env, BENCH_WORKER: JSON.stringify(spec) },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('ready')) resolve();
        });
        child.once('exit', (code) =>
          reject(new Error(`bench worker process ${i + 2} exited (${code}) before it was ready`)),
        );
      });
      log(`worker process ${i + 2} of ${extra + 1} polling (pid ${child.pid})`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { stop };
}
