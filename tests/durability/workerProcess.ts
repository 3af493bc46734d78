/**
 * A hypervisor worker as a process of its own, so that a durability test can
 * SIGKILL it mid-step. Started by tests/durability/harness.ts with
 * `node --require tsx/cjs tests/durability/workerProcess.ts` and configured by
 * environment variables:
 *
 *   TEMPORAL_ADDRESS   the test's own dev server
 *   HV_TASK_QUEUE      the test's own task queue
 *   HV_BUNDLE_PATH     a prebuilt workflow bundle (optional; saves a webpack run per start)
 *   HV_DATA_DIR        where the audit store's SQLite file is (shared with the test; or HV_AUDIT_DATABASE_URL)
 *   HV_TOOL_ORIGINS, HV_TOOL_ALLOW_PRIVATE
 *                      the worker's HTTP tools (the harness's tool, on 127.0.0.1), read as worker/config.ts reads them
 *   TEMPORAL_TLS_*     on the cluster: the worker's certificate (src/connectionTls.ts)
 *   HV_DEPLOYMENT_NAME, HV_BUILD_ID
 *                      the worker's deployment version (worker/config.ts; default unversioned)
 *   HV_STICKY_QUEUE_TIMEOUT_MS
 *                      the sticky queue's schedule-to-start timeout (worker/config.ts; default the SDK's 10 s):
 *                      how soon a paused worker's runs move to another worker
 *
 * It prints READY on stdout once it polls. SIGTERM shuts it down gracefully;
 * SIGKILL is what the tests use to crash it.
 */
import { DefaultLogger, makeTelemetryFilterString, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { Client } from '@temporalio/client';
import { createActivities } from '../../activities';
import { deploymentOptions, workflowBundle } from '../../worker/worker';
import { openAuditStore } from '../../src/store';
import { toolPolicyFromEnv } from '../../activities/toolPolicy';
import { tlsFromEnv } from '../../src/node/connectionTls';
import { deploymentFromEnv, stickyQueueTimeoutFromEnv } from '../../worker/config';

async function main(): Promise<void> {
  const address = process.env.TEMPORAL_ADDRESS;
  const taskQueue = process.env.HV_TASK_QUEUE;
  if (!address || !taskQueue) throw new Error('TEMPORAL_ADDRESS and HV_TASK_QUEUE must be set');
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  const deployment = deploymentFromEnv();
  const bundle = process.env.HV_BUNDLE_PATH
    ? { codePath: process.env.HV_BUNDLE_PATH }
    : await workflowBundle(false, deployment !== undefined);
  const store = await openAuditStore();
  const toolPolicy = toolPolicyFromEnv(process.env);
  const stickyQueueTimeoutMs = stickyQueueTimeoutFromEnv();
  // The server may be restarting: connecting and creating the worker both fail until it answers.
  const deadline = Date.now() + 120_000;
  for (let attempt = 1; ; attempt++) {
    let connection: NativeConnection | undefined;
    try {
      connection = await NativeConnection.connect({ address, tls: tlsFromEnv() });
      const worker = await Worker.create({
        connection,
        namespace: process.env.TEMPORAL_NAMESPACE || 'default',
        taskQueue,
        workflowBundle: bundle,
        activities: createActivities(
          new Client({ connection, namespace: process.env.TEMPORAL_NAMESPACE || 'default' }),
          store,
          undefined,
          toolPolicy,
        ),
        identity: `durability-worker-${process.pid}`,
        ...(stickyQueueTimeoutMs ? { stickyQueueScheduleToStartTimeout: stickyQueueTimeoutMs } : {}),
        ...(deployment ? { workerDeploymentOptions: deploymentOptions(deployment) } : {}),
      });
      const running = worker.run();
      process.stdout.write(`READY ${process.pid}\n`);
      await running;
      await connection.close();
      return;
    } catch (err) {
      await connection?.close().catch(() => undefined);
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(2000, 200 * attempt)));
    }
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
