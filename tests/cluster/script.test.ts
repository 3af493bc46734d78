/**
 * `npm run cluster` as a user runs it: it brings up PostgreSQL, the Temporal
 * server, the Web UI and two workers, says READY with their PIDs, and on
 * Ctrl-C (SIGINT) stops every one of them. The frontend speaks mutual TLS
 * only: the test connects with the worker's certificate from the cluster's
 * folder, and the Web UI lists namespaces through its own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { freePort } from '../../worker/ports';
import { CLUSTER_CERTS, clusterTls } from '../../worker/cluster';
import { tlsConfig } from '../../src/node/connectionTls';
import { waitUntil } from '../durability/harness';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('cluster: npm run cluster', function () {
  this.timeout(600_000);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-cluster-script-'));
  after(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it('starts PostgreSQL, the Temporal server, the Web UI and 2 polling workers, and stops them all on Ctrl-C', async () => {
    fs.chmodSync(dataDir, 0o711); // PostgreSQL runs as the postgres user when we are root
    const [port, uiPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const child = spawn(
      process.execPath,
      ['--require', require.resolve('tsx/cjs'), 'scripts/cluster.ts', '--workers', '2'],
      {
        cwd: path.resolve(__dirname, '..', '..'),
        env: {
          ...process.env,
          HV_DATA_DIR: dataDir,
          TEMPORAL_PORT: String(port),
          TEMPORAL_UI_PORT: String(uiPort),
          HV_METRICS_PORT: String(metricsPort),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const ready = await waitUntil(
        async () => /READY (.*)/.exec(out)?.[1],
        (m) => m !== undefined || child.exitCode !== null,
        'READY',
        480_000,
      );
      assert.ok(ready, `no READY line; stderr:\n${err}`);
      const { address, pids } = JSON.parse(ready) as { address: string; pids: number[] };
      assert.equal(pids.length, 4, 'the Temporal server, the Web UI and 2 workers');

      const ui = await fetch(`http://127.0.0.1:${uiPort}/namespaces/default/workflows`);
      assert.equal(ui.status, 200);
      // The UI server reaches the frontend over mutual TLS with its own (read-only) certificate.
      const namespaces = await waitUntil(
        () =>
          fetch(`http://127.0.0.1:${uiPort}/api/v1/namespaces`).then(async (r) =>
            r.ok ? ((await r.json()) as { namespaces?: Array<{ namespaceInfo?: { name?: string } }> }) : undefined,
          ),
        (r) => r !== undefined,
        'the Web UI to list namespaces',
        60_000,
      );
      assert.ok(
        namespaces?.namespaces?.some((n) => n.namespaceInfo?.name === 'default'),
        JSON.stringify(namespaces),
      );
      // The frontend speaks mutual TLS only: the test connects as the worker, with the certificates the cluster wrote.
      const connection = await Connection.connect({
        address,
        tls: tlsConfig(clusterTls(path.join(dataDir, 'cluster', 'tls')).client(CLUSTER_CERTS.worker)),
      });
      try {
        const pollers = await waitUntil(
          () =>
            connection.workflowService
              .describeTaskQueue({
                namespace: 'default',
                taskQueue: { name: 'agent-hypervisor' },
                taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
              })
              .then((r) => new Set((r.pollers ?? []).map((p) => p.identity)).size),
          (n) => n === 2,
          'both workers to poll',
          120_000,
        );
        assert.equal(pollers, 2);
      } finally {
        await connection.close();
      }
      const postmaster = path.join(dataDir, 'cluster', 'postgres', 'data', 'postmaster.pid');
      assert.ok(fs.existsSync(postmaster), 'PostgreSQL runs from the cluster folder');

      child.kill('SIGINT');
      assert.equal(await exited, 0, `exit code; stderr:\n${err}`);
      assert.match(err, /Stopped\./);
      assert.deepEqual(pids.filter(alive), [], 'every child stopped');
      assert.equal(fs.existsSync(postmaster), false, 'PostgreSQL stopped');
      assert.equal(
        await fetch(`http://127.0.0.1:${uiPort}/`).then(
          () => 'answers',
          () => 'down',
        ),
        'down',
      );
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGINT');
        await exited;
      }
    }
  });
});
