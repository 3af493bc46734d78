/**
 * Upgrades with work in flight (issue 22), on whichever server the caller runs: two deployment versions of the
 * worker on one task queue, the second with a deliberately changed saga body (tests/helpers/workflowsV2.ts).
 * Worker Deployment Versioning keeps a saga on the code it started on and moves sessions to the current version
 * (workflows/versioned.ts, docs/UPGRADES.md). Used by tests/workflows/upgrade.test.ts (dev server, in-process
 * workers) and tests/cluster/upgrade.test.ts (the cluster, worker processes).
 */
import assert from 'node:assert/strict';
import { bundleWorkflowCode, Worker, type WorkflowBundle } from '@temporalio/worker';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { HypervisorClient } from '../../src/client';
import type { AuditStore } from '../../src/store';
import { quietBundlerLogger, workflowBundle } from '../../worker/worker';
import type { DeploymentVersion } from '../../worker/config';
import { setCurrentVersion } from '../../worker/deployments';
import { eventually, uniqueId } from './hv';
import { ACTIONS, SRE_WITNESSES } from './sessions';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

/** Version 1 (the project's workflows, versioned) and version 2 (a changed saga body), bundled. */
export async function upgradeBundles(): Promise<{ v1: WorkflowBundle; v2: WorkflowBundle }> {
  return {
    v1: await workflowBundle(false, true),
    v2: await bundleWorkflowCode({
      workflowsPath: require.resolve('./workflowsV2'),
      logger: quietBundlerLogger,
    }),
  };
}

/** The build a run is on, as the server records it, and its versioning behaviour (1 PINNED, 2 AUTO_UPGRADE). */
async function versionOf(handle: WorkflowHandle): Promise<{ buildId?: string; behavior?: unknown }> {
  const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
  return { buildId: info?.deploymentVersion?.buildId ?? undefined, behavior: info?.behavior ?? undefined };
}

async function workflowTaskFailures(handle: WorkflowHandle): Promise<number> {
  const history = await handle.fetchHistory();
  return (history.events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).length;
}

export interface UpgradeLab {
  client: Client;
  store: AuditStore;
  taskQueue: string;
  /** Starts a worker of `version` running `bundle` on the task queue; resolves once it polls. */
  startWorker(version: DeploymentVersion, bundle: WorkflowBundle): Promise<void>;
  /**
   * What the agents declare at join — at least `draft` (ring 2) and `wire-money` (ring 1) — and what the session's
   * config adds (e.g. the tool's origin); default: the test handlers' actions.
   */
  actions?: unknown[];
  config?: Record<string, unknown>;
}

/**
 * A session and a ring 1 saga waiting for approvals start on version 1; version 2 becomes current. The saga in
 * flight completes on version 1, a new saga runs on version 2, the session moves to version 2 and continues as
 * new there; no workflow task fails; each history replays on its own build's code, and the in-flight saga's
 * does not replay on version 2's (what pinning spared it).
 */
export async function runUpgrade(lab: UpgradeLab, bundles: { v1: WorkflowBundle; v2: WorkflowBundle }): Promise<void> {
  const deploymentName = uniqueId('hv-deployment');
  const v1: DeploymentVersion = { deploymentName, buildId: 'v1' };
  const v2: DeploymentVersion = { deploymentName, buildId: 'v2' };
  await lab.startWorker(v1, bundles.v1);
  await setCurrentVersion(lab.client.connection, lab.client.options.namespace, v1);

  const hv = new HypervisorClient(lab.client, lab.taskQueue, lab.store);
  const session = await hv.createSession({
    sessionId: uniqueId('s-upgrade'),
    creatorDid: 'did:mesh:admin',
    config: { sreWitnesses: SRE_WITNESSES, ...lab.config },
    maxUpdatesPerRun: 10,
  });
  for (const [agentDid, sigmaRaw] of [
    [alpha, 0.97],
    [beta, 0.8],
    [gamma, 0.8],
  ] as const)
    await session.join({ agentDid, sigmaRaw, actions: (lab.actions ?? ACTIONS) as typeof ACTIONS });
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
  assert.deepEqual(await versionOf(inFlight.handle), { buildId: 'v1', behavior: 1 });

  await lab.startWorker(v2, bundles.v2);
  await setCurrentVersion(lab.client.connection, lab.client.options.namespace, v2);

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
  assert.deepEqual(await versionOf(session.handle), { buildId: 'v2', behavior: 2 });
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

  const firstSessionRun = lab.client.workflow.getHandle(session.handle.workflowId, firstRun);
  for (const h of [inFlight.handle, fresh.handle, firstSessionRun, session.handle])
    assert.equal(await workflowTaskFailures(h), 0, `no workflow task of ${h.workflowId} failed`);

  await Worker.runReplayHistory({ workflowBundle: bundles.v1 }, await inFlight.handle.fetchHistory());
  await Worker.runReplayHistory({ workflowBundle: bundles.v2 }, await fresh.handle.fetchHistory());
  await Worker.runReplayHistory({ workflowBundle: bundles.v2 }, await firstSessionRun.fetchHistory());
  await assert.rejects(
    Worker.runReplayHistory({ workflowBundle: bundles.v2 }, await inFlight.handle.fetchHistory()),
    /nondetermin|DeterminismViolation/i,
    "version 2's saga body cannot replay a saga started on version 1",
  );
}
