/**
 * N24 (issue 24) on the real dev server: the continuations of an activation the SDK timed out act in no other
 * run and do not take the worker down (the own-run guard, workflows/ownRun.ts).
 *
 * A worker paused (SIGSTOP) inside an activation for more than 5 s is, once resumed, ended by the SDK's isolate
 * execution timeout: the workflow task fails and the run is evicted, but the promise continuations the
 * activation had queued stay in the VM context's microtask queue and run after the next call into that
 * context. The test worker bundles the test-only interceptors of ./n24/overrunInterceptors.ts, which make a
 * saga's first activation overrun that timeout at a chosen point (the watchdog always fires: no pause to time),
 * outside the hypervisor's own interceptors, as every worker bundles them.
 *
 * 1. After the activation, on the SDK's default reusable V8 context (the hypervisor's worker), with a query
 *    queued for the session meanwhile: the saga's continuation — gate decided, step started, saga ended — runs
 *    inside the SESSION's activation. Without the guard the session's history schedules the saga's executeStep
 *    (3 of 3 runs); with it, the continuation's commands are parked: the session schedules nothing, the saga's
 *    retried task runs its step once, no task of the session fails.
 * 2. In execute, on a context of the saga's own (reuseV8Context: false pins the next call to the run's dispose):
 *    the continuation runs with no workflow context and throws at its next workflow API into the workflow's
 *    promise, which the termination left without the SDK's handler. Without the guard the SDK kills the worker
 *    thread (UnhandledRejectionError … Workflow uninitialized) and the worker fails, every run; with it the
 *    promise was handled the moment it existed, and the worker lives on.
 */
import assert from 'node:assert/strict';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities } from '../../activities';
import { quietBundlerLogger, workflowInterceptorModules } from '../../worker/worker';
import { loadHypervisorKey } from '../../src/store/treeHeads';
import { testEnv, testToolPolicy } from '../helpers/env';
import { calls } from '../helpers/testHandlers';
import {
  ACTIONS,
  EventType,
  RawSession,
  SRE_WITNESSES,
  history,
  sessionWorkflowId,
  uid,
  until,
  workflowTaskFailures,
} from './raw';
import { OVERRUN_AFTER_ACTIVATE, OVERRUN_IN_EXECUTE } from './n24/overrunInterceptors';

const alpha = 'did:mesh:alpha';

describe('N24 — a continuation queued by an activation the SDK timed out', function () {
  this.timeout(120_000);
  let bundle: WorkflowBundle;

  before(async () => {
    bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../workflows'),
      // The overrun outermost, the hypervisor's own interceptors (the own-run guard innermost) as every worker has them.
      workflowInterceptorModules: [require.resolve('./n24/overrunInterceptors'), ...workflowInterceptorModules()],
      logger: quietBundlerLogger,
    });
  });

  /** A session on a worker of this test's own, and one single-step saga (ring 2, leased: its gate decides at once). */
  async function overrunSaga(sagaId: string, opts: { reuseV8Context: boolean }) {
    const env = await testEnv();
    const connection = await NativeConnection.connect({ address: env.address });
    const taskQueue = `${env.taskQueue}-${sagaId}`;
    const worker = await Worker.create({
      connection,
      namespace: env.namespace,
      taskQueue,
      workflowBundle: bundle,
      reuseV8Context: opts.reuseV8Context,
      activities: createActivities(
        env.client,
        env.store,
        undefined,
        testToolPolicy,
        loadHypervisorKey({ dataDir: env.dataDir }),
      ),
    });
    let failure: Error | undefined;
    const running = worker.run().catch((err: Error) => {
      failure = err;
    });
    const id = uid('n24');
    const handle = await env.client.workflow.start('sessionWorkflow', {
      taskQueue,
      workflowId: sessionWorkflowId(id),
      args: [{ sessionId: id, creatorDid: 'did:mesh:admin', config: { sreWitnesses: SRE_WITNESSES } }],
    });
    const session = new RawSession(id, handle, env.client);
    await session.update('join', { agentDid: alpha, sigmaRaw: 0.85, actions: ACTIONS });
    await session.update('activate');
    const started = await session.startSaga({ sagaId, steps: [{ actionId: 'draft', agentDid: alpha }] });
    // The saga's first activation is overrunning now: a query gives the session an activation queued behind it,
    // so the next call into the shared context is the session's, not the saga's dispose.
    const queried = session.summary();
    const ended = await until(
      async () => ({ failure: failure?.message, status: (await session.saga(sagaId).describe()).status.name }),
      (o) => o.failure !== undefined || o.status !== 'RUNNING',
      'the saga to end or the worker to fail',
      60_000,
    );
    await queried;
    const outcome = {
      failure: ended.failure,
      state: ended.failure === undefined ? (await session.sagaResult(sagaId)).saga.state : ended.status,
    };
    const stop = async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    };
    return { session, started, outcome, stop };
  }

  const scheduledSteps = async (workflowId: string) =>
    (await history((await testEnv()).client, workflowId)).filter(
      (e) =>
        e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED &&
        e.activityTaskScheduledEventAttributes?.activityType?.name === 'executeStep',
    ).length;

  it('overrun after the activation: the saga’s continuation acts from no other workflow, and its step acts once', async () => {
    const { session, started, outcome, stop } = await overrunSaga(OVERRUN_AFTER_ACTIVATE, { reuseV8Context: true });
    try {
      assert.equal(outcome.failure, undefined, 'the worker lives on');
      assert.equal(outcome.state, 'completed');
      const executes = Object.entries(calls)
        .filter(([workflowId]) => workflowId === started.workflowId || workflowId === session.workflowId)
        .flatMap(([, list]) => list.filter((c) => c.phase === 'execute').map((c) => c.key));
      assert.deepEqual(executes, [`${started.workflowId}/step-1/execute`], 'step-1 acted once, as the saga');
      assert.equal(await scheduledSteps(session.workflowId), 0, 'the session scheduled none of the saga’s steps');
      assert.deepEqual(await workflowTaskFailures([session.workflowId]), [], 'no workflow task of the session failed');
    } finally {
      await stop();
    }
  });

  it('overrun in execute: the continuation running outside any workflow context does not take the worker down', async () => {
    const { outcome, stop } = await overrunSaga(OVERRUN_IN_EXECUTE, { reuseV8Context: false });
    try {
      assert.equal(outcome.failure, undefined, 'the worker lives on');
      assert.equal(outcome.state, 'completed');
    } finally {
      await stop();
    }
  });
});
