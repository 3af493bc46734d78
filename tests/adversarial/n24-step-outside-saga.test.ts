/**
 * N24: a step acts only under its own saga. A worker stalled past the SDK's isolate timeout inside a saga's
 * activation can leave the saga's continuations to run in the next activation of the same V8 context — another
 * workflow's (tests/adversarial/n24/evicted-continuation.repro.ts: its session scheduled the saga's step, which
 * acted a second time under the session's key). Whatever workflow schedules a step activity that is not the
 * step's saga (nor its session undoing a lost saga, N7) is refused before the step acts.
 */
import assert from 'node:assert/strict';
import { bundleWorkflowCode, Worker } from '@temporalio/worker';
import { WorkflowFailedError, ActivityFailure, ApplicationFailure } from '@temporalio/client';
import { createHypervisorWorker, quietBundlerLogger } from '../../worker/worker';
import { ownWorkerOptions, testEnv } from '../helpers/env';
import { calls } from '../helpers/testHandlers';
import { uid } from './raw';

describe('N24: a step acts only under its own saga', function () {
  this.timeout(180_000);

  it('a step activity scheduled by a workflow that is not its saga is refused StepOutsideItsSaga, and nothing acts', async () => {
    const env = await testEnv();
    const taskQueue = uid('hv-n24-rogue');
    const workflowBundle = await bundleWorkflowCode({
      workflowsPath: require.resolve('./n24/rogueWorkflows'),
      logger: quietBundlerLogger,
    });
    const worker: Worker = await createHypervisorWorker({
      ...ownWorkerOptions(env, taskQueue),
      workflowBundle,
    });
    const running = worker.run();
    try {
      const sessionId = uid('s-n24');
      const task = {
        sessionId,
        sagaId: 'saga-1',
        stepId: 'step-1',
        digest: 'a'.repeat(64),
        actionId: 'draft',
        agentDid: 'did:mesh:alpha',
        executeApi: 'handler:test.step',
        undoApi: 'handler:test.step',
        input: {},
      };
      const cases = [
        ['execute', task],
        ['undo', task],
        // The session's N7 path names the saga; from any other workflow, naming it changes nothing.
        ['undo', { ...task, sagaWorkflowId: `hv-saga-${sessionId}/saga-1` }],
      ] as const;
      for (const [phase, t] of cases) {
        const workflowId = uid('rogue');
        const err = await env.client.workflow
          .execute('rogueStepWorkflow', { taskQueue, workflowId, args: [phase, t] })
          .then(
            () => assert.fail(`the ${phase} was run`),
            (e: unknown) => e,
          );
        assert.ok(err instanceof WorkflowFailedError);
        assert.ok(err.cause instanceof ActivityFailure);
        assert.ok(err.cause.cause instanceof ApplicationFailure);
        assert.equal(err.cause.cause.type, 'StepOutsideItsSaga', `${phase}: ${err.cause.cause.message}`);
        assert.match(err.cause.cause.message, /scheduled by rogueStepWorkflow .*not by its saga/);
        assert.equal(calls[workflowId], undefined, `the ${phase} never reached the tool`);
        if ('sagaWorkflowId' in t) assert.equal(calls[t.sagaWorkflowId], undefined, 'nor under the saga it names');
      }
    } finally {
      worker.shutdown();
      await running;
    }
  });
});
