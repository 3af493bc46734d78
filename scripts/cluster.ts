/**
 * `npm run cluster`: the hypervisor on a real Temporal cluster on this
 * machine — PostgreSQL, the Temporal server (built once from its Go module),
 * its Web UI, and N hypervisor workers (default 2) with the audit store on
 * the same PostgreSQL. Data lives in <HV_DATA_DIR>/cluster and survives a
 * restart. Each worker is supervised (worker/supervisor.ts), as compose's
 * `restart: unless-stopped` does: one that exits is started again after a
 * backoff (1 s, doubling to 30 s; reset after a minute's run), each restart
 * logged. Ctrl-C stops everything, workers first, by PID, and restarts nothing.
 *
 * The frontend speaks mutual TLS only (issue 24; worker/cluster.ts): the
 * certificates are in <HV_DATA_DIR>/cluster/tls. Workers connect with the
 * worker's (hv-worker), the Web UI with its read-only one (hv-ui); agents'
 * clients with hv-agent's — TEMPORAL_TLS_* variables (src/connectionTls.ts),
 * printed at start.
 *
 *   npm run cluster                       2 workers, frontend 7233, UI 8233
 *   npm run cluster -- --workers 4
 *   HV_DEPLOYMENT_NAME=hypervisor HV_BUILD_ID=v1 npm run cluster
 *                                         versioned workers, their version made current (docs/UPGRADES.md)
 *   TEMPORAL_PORT, TEMPORAL_UI_PORT, HV_CLUSTER_WORKERS, HV_METRICS_PORT (first worker's; the next get +1, …),
 *   HV_POSTGRES_PORT (default: a free port, printed at start)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { PROJECT_ROOT, loadConfig } from '../worker/config';
import { CLUSTER_CERTS, startCluster, type Cluster } from '../worker/cluster';
import { tlsEnv } from '../src/node/connectionTls';
import { Supervisor } from '../worker/supervisor';
import { setCurrentVersion } from '../worker/deployments';
import { goBuildLocal } from '../worker/goBuild';
import { portAnswers, waitFor } from '../worker/devServer';

function count(flag: string, env: string, fallback: number): number {
  const i = process.argv.indexOf(flag);
  const raw = i >= 0 ? process.argv[i + 1] : process.env[env];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new Error(`${flag} / ${env} must be a whole number, not "${raw}"`);
  return n;
}

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<void>;
  log: string;
}

function launch(name: string, file: string, args: string[], env: Record<string, string>, logFile: string): Child {
  const out = fs.openSync(logFile, 'a');
  // Its own process group: Ctrl-C reaches this script, which stops the children in order.
  const child = spawn(file, args, {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', out, out],
    detached: true,
  });
  fs.closeSync(out);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      if (!stopping) console.error(`${name} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); see ${logFile}`);
      resolve();
    }),
  );
  return { name, process: child, exited, log: logFile };
}

async function stopChild(c: Child, graceMs: number): Promise<void> {
  if (c.process.exitCode !== null || c.process.signalCode !== null) return;
  c.process.kill('SIGTERM');
  const timer = setTimeout(() => c.process.kill('SIGKILL'), graceMs);
  await c.exited;
  clearTimeout(timer);
}

let stopping = false;

async function main(): Promise<void> {
  const config = loadConfig();
  const workers = count('--workers', 'HV_CLUSTER_WORKERS', 2);
  const metricsPort = count('--metrics-port', 'HV_METRICS_PORT', 9464);
  const postgresPort = count('--postgres-port', 'HV_POSTGRES_PORT', 0) || undefined;
  const root = path.join(config.dataDir, 'cluster');
  const logs = path.join(root, 'logs');
  fs.mkdirSync(logs, { recursive: true });
  if (await portAnswers(config.address))
    throw new Error(`something already answers at ${config.address}; set TEMPORAL_PORT to another port`);

  const children: Child[] = [];
  const supervised: Array<{ name: string; supervisor: Supervisor; log: string }> = [];
  let cluster: Cluster | undefined;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    console.error('Stopping: workers, Web UI, Temporal server, PostgreSQL …');
    await Promise.all(supervised.map((w) => w.supervisor.stop(15_000)));
    await Promise.all(children.map((c) => stopChild(c, 5_000)));
    await cluster?.stop();
    console.error('Stopped.');
  };
  const stopped = new Promise<void>((resolve) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void stopAll().then(resolve));
  });

  try {
    cluster = await startCluster({ root, port: config.port, postgresPort, namespace: config.namespace });
    const ui = await goBuildLocal('temporal-ui', path.join(PROJECT_ROOT, 'tools', 'temporal-ui'));
    const uiTls = cluster.tls.client(CLUSTER_CERTS.ui);
    children.push(
      launch(
        'Web UI',
        ui,
        [
          '--address',
          cluster.address,
          '--port',
          String(config.uiPort),
          '--namespace',
          config.namespace,
          '--tls-cert',
          uiTls.cert,
          '--tls-key',
          uiTls.key,
          '--tls-ca',
          uiTls.ca,
          '--tls-server-name',
          uiTls.serverName!,
        ],
        {},
        path.join(logs, 'temporal-ui.log'),
      ),
    );
    await waitFor(() => portAnswers(`127.0.0.1:${config.uiPort}`), `the Web UI on port ${config.uiPort}`, 60_000);

    const workerEnv = (i: number): Record<string, string> => ({
      TEMPORAL_ADDRESS: cluster!.address,
      TEMPORAL_NAMESPACE: config.namespace,
      HV_TASK_QUEUE: config.taskQueue,
      HV_AUDIT_DATABASE_URL: cluster!.auditUrl,
      HV_METRICS_ADDRESS: `127.0.0.1:${metricsPort + i}`,
      ...tlsEnv(cluster!.tls.client(CLUSTER_CERTS.worker)),
    });
    const shell = (env: Record<string, string>) =>
      Object.entries(env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
    for (let i = 0; i < workers; i++) {
      const name = `worker ${i + 1}`;
      const log = path.join(logs, `worker-${i + 1}.log`);
      const supervisor = new Supervisor({
        name,
        file: process.execPath,
        args: ['--require', require.resolve('tsx/cjs'), path.join(PROJECT_ROOT, 'worker', 'main.ts')],
        cwd: PROJECT_ROOT,
        env: { ...process.env, ...workerEnv(i) },
        logFile: log,
      });
      supervised.push({ name, supervisor: supervisor.start(), log });
    }
    // Versioned workers (HV_DEPLOYMENT_NAME, HV_BUILD_ID) get no task until their version is current.
    if (config.deployment) {
      const connection = await Connection.connect({ address: cluster.address, tls: cluster.workerTls });
      try {
        await setCurrentVersion(connection, config.namespace, config.deployment, 120_000);
      } finally {
        await connection.close();
      }
    }
    const lines = [
      `Temporal server: ${cluster.address} (namespace ${config.namespace}; server log ${cluster.serverLog})`,
      `Web UI:          http://127.0.0.1:${config.uiPort}/namespaces/${config.namespace}/workflows`,
      `PostgreSQL:      ${cluster.postgres.base} (Temporal: temporal, temporal_visibility; audit store: ${cluster.auditUrl})`,
      ...supervised.map(
        (w, i) =>
          `${w.name.padEnd(16)} pid ${w.supervisor.pid}, metrics http://127.0.0.1:${metricsPort + i}/metrics, log ${w.log} (restarted when it exits)`,
      ),
      `More workers:    TEMPORAL_ADDRESS=${cluster.address} HV_AUDIT_DATABASE_URL=${cluster.auditUrl} ${shell(tlsEnv(cluster.tls.client(CLUSTER_CERTS.worker)))} npm run worker`,
      ...(config.deployment
        ? [
            `Deployment:      ${config.deployment.deploymentName}, current version ${config.deployment.buildId} (sagas pinned, sessions auto-upgrade). A rolling upgrade: start the new build's workers as above with HV_DEPLOYMENT_NAME=${config.deployment.deploymentName} HV_BUILD_ID=<new>, then ${shell(tlsEnv(cluster.tls.client(CLUSTER_CERTS.worker)))} temporal --address ${cluster.address} worker deployment set-current-version --deployment-name ${config.deployment.deploymentName} --build-id <new> (docs/UPGRADES.md)`,
          ]
        : []),
      `Agents' clients: TEMPORAL_ADDRESS=${cluster.address} ${shell(tlsEnv(cluster.tls.client(CLUSTER_CERTS.agent)))} hv …  (updates, signals, queries and plain session starts only)`,
      'Ctrl-C stops everything.',
    ];
    for (const l of lines) console.error(l);
    // For scripts and tests: one line that says the cluster is up, with the PIDs to watch.
    console.log(
      `READY ${JSON.stringify({ address: cluster.address, uiPort: config.uiPort, pids: [cluster.serverPid(), ...children.map((c) => c.process.pid), ...supervised.map((w) => w.supervisor.pid)] })}`,
    );
  } catch (err) {
    await stopAll();
    throw err;
  }
  await stopped;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
