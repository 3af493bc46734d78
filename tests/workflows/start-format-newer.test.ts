/**
 * A saga whose start input is of a format newer than its worker's build reads: in a rolling upgrade whose old and
 * new workers share a task queue, a session already on the new build may start a saga an old worker picks up.
 * That worker fails the saga's workflow task — Temporal retries it, on whichever worker polls — and never the
 * saga, which its session granted; a forged start of any format is still refused at once (tests/adversarial/pushes.test.ts).
 */
import assert from 'node:assert/strict';
import { bundleWorkflowCode, type Worker } from '@temporalio/worker';
import {
  createHypervisorWorker,
  quietBundlerLogger,
  sharedWorkflowModules,
  workflowInterceptorModules,
} from '../../worker/worker';
import { SAGA_START_FORMAT } from '../../src/core/sagaStart';
import { sagaWorkflowId, sessionWorkflowId } from '../../workflows/definitions';
import { ownWorkerOptions, testEnv } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';

describe('a saga start input of a newer format (a rolling upgrade without versioning)', function () {
  this.timeout(120_000);

  it("fails the saga's workflow task, not the saga: it stays running for a worker of the build that reads it", async () => {
    const env = await testEnv();
    const taskQueue = uniqueId('hv-newer');
    const worker: Worker = await createHypervisorWorker({
      ...ownWorkerOptions(env, taskQueue),
      workflowBundle: await bundleWorkflowCode({
        workflowsPath: require.resolve('../helpers/workflowsNewerSession'),
        workflowInterceptorModules: workflowInterceptorModules(),
        preloadModules: sharedWorkflowModules(),
        logger: quietBundlerLogger,
      }),
    });
    const running = worker.run();
    const sessionId = uniqueId('newer');
    const sagaId = 'from-the-future';
    const saga = env.client.workflow.getHandle(sagaWorkflowId(sessionId, sagaId));
    try {
      const newer = SAGA_START_FORMAT + 1;
      await env.client.workflow.execute('newerBuildSession', {
        taskQueue,
        workflowId: sessionWorkflowId(sessionId),
        args: [saga.workflowId, { format: newer, sagaId, steps: [], agents: [], actions: [], whatComesNext: true }],
      });
      const failed = await eventually(
        async () =>
          ((await saga.fetchHistory()).events ?? []).filter((e) => e.workflowTaskFailedEventAttributes).length,
        (n) => n >= 1,
        "the saga's first workflow task to fail",
      );
      const events = (await saga.fetchHistory()).events ?? [];
      const message = events.find((e) => e.workflowTaskFailedEventAttributes)!.workflowTaskFailedEventAttributes!
        .failure?.message;
      assert.match(
        message ?? '',
        new RegExp(`format ${newer}, newer than this build reads \\(up to ${SAGA_START_FORMAT}\\)`),
      );
      assert.ok(failed >= 1);
      assert.equal((await saga.describe()).status.name, 'RUNNING', 'the saga is not failed: it waits');
      assert.ok(!events.some((e) => e.activityTaskScheduledEventAttributes), 'it ran nothing (no step scheduled)');
    } finally {
      await saga.terminate('test over').catch(() => undefined);
      worker.shutdown();
      await running;
    }
  });
});
