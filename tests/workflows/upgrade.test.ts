/**
 * Upgrades with work in flight (issue 22): two deployment versions of the worker on one task queue, the second
 * with a deliberately changed saga body (tests/helpers/workflowsV2.ts). Worker Deployment Versioning keeps a saga
 * on the code it started on and moves sessions to the current version (workflows/index.ts, docs/UPGRADES.md).
 */
import assert from 'node:assert/strict';
import { bundleWorkflowCode, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { HypervisorClient } from '../../src/client';
import { createHypervisorWorker, workflowBundle } from '../../worker/worker';
import type { DeploymentVersion } from '../../worker/config';
import { testEnv, testToolPolicy } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';
import { ACTIONS, SRE_WITNESSES } from '../helpers/sessions';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

/** Makes `version` its deployment's current version, once the server has seen its worker poll. */
async function makeCurrent(client: Client, version: DeploymentVersion): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await client.workflowService.setWorkerDeploymentCurrentVersion({
        namespace: client.options.namespace,
        deploymentName: version.deploymentName,
        buildId: version.buildId,
        identity: 'upgrade-test',
      });
      return;
    } catch (err) {
      // NotFound until the version's first poll reaches the server.
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** The build a run is on, as the server records it, and its versioning behaviour. */
async function versionOf(handle: WorkflowHandle): Promise<{ buildId?: string; behavior?: unknown }> {
  const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
  return { buildId: info?.deploymentVersion?.buildId ?? undefined, behavior: info?.behavior ?? undefined };
}

async function workflowTaskFailures(handle: WorkflowHandle): Promise<number> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).length;
}

describe('upgrades: Worker Deployment Versioning', function () {
  this.timeout(300_000);

  it('a saga in flight finishes on version 1, a new saga runs on version 2, the session moves to version 2; no workflow task fails; each history replays on its code', async () => {
    const env = await testEnv();
    const taskQueue = uniqueId('hv-upgrade');
    const deploymentName = uniqueId('hv-deployment');
    const v1: DeploymentVersion = { deploymentName, buildId: 'v1' };
    const v2: DeploymentVersion = { deploymentName, buildId: 'v2' };
    const bundleV1 = await workflowBundle(false, true);
    const bundleV2 = await bundleWorkflowCode({
      workflowsPath: require.resolve('../helpers/workflowsV2'),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: console.error },
    });
    const workers: { worker: Worker; run: Promise<void> }[] = [];
    const start = async (deployment: DeploymentVersion, bundle: WorkflowBundle) => {
      const worker = await createHypervisorWorker({
        connection: env.nativeConnection,
        namespace: env.namespace,
        taskQueue,
        store: env.store,
        retentionSchedule: false,
        toolPolicy: testToolPolicy,
        identity: `upgrade-${deployment.buildId}`,
        deployment,
        workflowBundle: bundle,
      });
      workers.push({ worker, run: worker.run() });
    };
    try {
      await start(v1, bundleV1);
      await makeCurrent(env.client, v1);

      const hv = new HypervisorClient(env.client, taskQueue, env.store);
      const session = await hv.createSession({
        sessionId: uniqueId('s-upgrade'),
        creatorDid: 'did:mesh:admin',
        config: { sreWitnesses: SRE_WITNESSES },
        maxUpdatesPerRun: 10,
      });
      for (const [agentDid, sigmaRaw] of [
        [alpha, 0.97],
        [beta, 0.8],
        [gamma, 0.8],
      ] as const)
        await session.join({ agentDid, sigmaRaw, actions: ACTIONS });
      await session.activate();
      const firstRun = (await session.handle.describe()).runId;

      // A ring 1 step waits for its quorum: the saga is in flight on version 1 when version 2 becomes current.
      const inFlight = await session.startSaga({
        steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 300 }],
      });
      await eventually(
        () => inFlight.state(),
        (s) => s.waiting?.stepId === 'step-1',
        'the ring 1 step to wait for approvals',
      );
      assert.deepEqual(await versionOf(inFlight.handle), { buildId: 'v1', behavior: 1 /* PINNED */ });

      await start(v2, bundleV2);
      await makeCurrent(env.client, v2);

      const step = { sagaId: inFlight.sagaId, stepId: 'step-1' };
      await session.approve({ ...step, approverDid: beta });
      await session.approve({ ...step, approverDid: gamma });
      const finished = await inFlight.result();
      assert.equal(finished.saga.state, 'completed');
      assert.equal((await versionOf(inFlight.handle)).buildId, 'v1', 'the saga in flight finished on version 1');
      assert.equal((await inFlight.handle.describe()).memo?.codeVersion, undefined, "version 2's body never ran it");

      const fresh = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
      assert.equal((await fresh.result()).saga.state, 'completed');
      assert.equal((await versionOf(fresh.handle)).buildId, 'v2', 'a new saga runs on version 2');
      assert.equal((await fresh.handle.describe()).memo?.codeVersion, 2);

      // The session moved to version 2 at its next task, and continues as new there.
      assert.deepEqual(await versionOf(session.handle), { buildId: 'v2', behavior: 2 /* AUTO_UPGRADE */ });
      await eventually(
        async () => {
          await session.checkAction({ agentDid: alpha, actionId: 'draft' });
          return (await session.handle.describe()).runId;
        },
        (runId) => runId !== firstRun,
        'the session to continue as new',
        120_000,
      );
      await session.checkAction({ agentDid: alpha, actionId: 'draft' });
      assert.equal((await versionOf(session.handle)).buildId, 'v2', 'the continued session runs on version 2');

      const firstSessionRun = env.client.workflow.getHandle(session.handle.workflowId, firstRun);
      for (const h of [inFlight.handle, fresh.handle, firstSessionRun, session.handle])
        assert.equal(await workflowTaskFailures(h), 0, `no workflow task of ${h.workflowId} failed`);

      // Each history replays on the code it ran on; the in-flight saga could not have run on version 2.
      await Worker.runReplayHistory({ workflowBundle: bundleV1 }, await inFlight.handle.fetchHistory());
      await Worker.runReplayHistory({ workflowBundle: bundleV2 }, await fresh.handle.fetchHistory());
      await Worker.runReplayHistory({ workflowBundle: bundleV2 }, await firstSessionRun.fetchHistory());
      await assert.rejects(
        Worker.runReplayHistory({ workflowBundle: bundleV2 }, await inFlight.handle.fetchHistory()),
        /nondetermin|DeterminismViolation/i,
        "version 2's saga body cannot replay a saga started on version 1",
      );
    } finally {
      for (const w of workers) w.worker.shutdown();
      await Promise.all(workers.map((w) => w.run));
    }
  });
});
