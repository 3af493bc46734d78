/**
 * N24 (issue 24), reproduced on the real dev server — and NOT fixed by the observe.ts telemetry guard. This
 * file is outside every suite (not a *.test.ts) because it fails today: it is the acceptance test for a real
 * fix (RELIABILITY.md, N24). Run it by hand:
 *
 *   npx mocha --require tsx/cjs --require tests/helpers/globalHooks.ts tests/adversarial/n24/evicted-continuation.repro.ts
 *
 * A worker paused (SIGSTOP) inside an activation for more than 5 s is, once resumed, ended by the SDK's isolate
 * execution timeout: the workflow task fails and the run is evicted, but the promise continuations the
 * activation had queued stay in the VM context's microtask queue and run after the next call into that
 * context. The test worker bundles the test-only interceptors of ./overrunInterceptors.ts, which make a saga's
 * first activation overrun that timeout at a chosen point (the watchdog always fires: no pause to time).
 *
 * 1. After the activation, on the SDK's default reusable V8 context (the hypervisor's worker): the next call
 *    into the shared context is whichever comes first. When it is the session's (its ChildWorkflowExecutionStarted
 *    task arrived during the overrun — 8 of the 9 traced runs here) the saga's continuation — gate decided, step
 *    started, saga ended — runs inside the SESSION's run: the session's history schedules the saga's executeStep,
 *    the tool acts under the session's key, and the saga's retried task acts again under its own. When it is the
 *    saga's dispose, the continuation throws at its first workflow API and the error is handled: it passes.
 * 2. In execute, on a context of the saga's own (reuseV8Context: false pins the next call to the run's dispose):
 *    the continuation runs with no workflow context; with the telemetry skipped it throws at the next workflow
 *    API (Date.now() in forward.ts) into the workflow's promise, which the termination left without a handler;
 *    the SDK kills the workflow thread (UnhandledRejectionError … Workflow uninitialized) and the worker fails.
 *    Deterministic: every run, with the fix and without it (then at `wf.patched` in forward.ts's catch).
 */
import assert from 'node:assert/strict';
import { bundleWorkflowCode, NativeConnection, Worker, type WorkflowBundle } from '@temporalio/worker';
import { createActivities } from '../../../activities';
import { quietBundlerLogger } from '../../../worker/worker';
import { loadHypervisorKey } from '../../../src/store/treeHeads';
import { testEnv, testToolPolicy } from '../../helpers/env';
import { calls } from '../../helpers/testHandlers';
import { ACTIONS, EventType, RawSession, SRE_WITNESSES, history, sessionWorkflowId, uid, until } from '../raw';
import { OVERRUN_AFTER_ACTIVATE, OVERRUN_IN_EXECUTE } from './overrunInterceptors';

const alpha = 'did:mesh:alpha';

describe('N24 (reproduction, open) — a continuation queued by an activation the SDK timed out', function () {
  this.timeout(120_000);
  let bundle: WorkflowBundle;

  before(async () => {
    bundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('../../../workflows'),
      workflowInterceptorModules: [require.resolve('./overrunInterceptors')],
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
    const ended = await until(
      async () => ({ failure: failure?.message, status: (await session.saga(sagaId).describe()).status.name }),
      (o) => o.failure !== undefined || o.status !== 'RUNNING',
      'the saga to end or the worker to fail',
      60_000,
    );
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
