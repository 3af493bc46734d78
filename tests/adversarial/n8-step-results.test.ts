/**
 * N8 (issue 24): step results had no size limit — two 1.1 MB results pushed
 * a saga past Temporal's 2 MiB result limit and the server terminated it. A
 * step's result is bounded (activities/steps.ts MAX_STEP_RESULT_BYTES): a
 * bigger one fails the step without retries, and as the step acted, the saga
 * compensates it; the saga ends as a saga (compensated), small.
 */
import assert from 'node:assert/strict';
import { registerStepHandler } from '../../activities/handlers';
import { MAX_STEP_RESULT_BYTES } from '../../activities/steps';
import { calls } from '../helpers/testHandlers';
import { ACTIONS, openSession, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';

describe('N8 — step results are bounded', function () {
  this.timeout(120_000);

  it('a step returning 1.1 MB fails without retries, is compensated with the steps before it, and the saga ends compensated and small', async () => {
    const executed: string[] = [];
    registerStepHandler('n8.big', {
      async execute(_input, ctx) {
        executed.push(`${ctx.workflowId}/${ctx.stepId}#${ctx.attempt}`);
        return { blob: 'x'.repeat(1_100_000) };
      },
      async undo() {
        return { undone: true };
      },
    });
    const big = {
      actionId: 'big-report',
      reversibility: 'FULL',
      executeApi: 'handler:n8.big',
      undoApi: 'handler:n8.big',
    };
    const session = await openSession({ [alpha]: { sigma: 0.85, actions: [...ACTIONS, big] } });
    const { sagaId, workflowId } = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'big-report', agentDid: alpha, retry: { maximumAttempts: 3 } },
      ],
    });
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'compensated', JSON.stringify({ state: snap.saga.state, error: snap.error }));
    assert.match(snap.error, new RegExp(`at most ${MAX_STEP_RESULT_BYTES} bytes`));
    assert.deepEqual(executed, [`${workflowId}/step-2#1`], 'not retried');
    assert.deepEqual(
      snap.compensationOrder,
      ['step-2', 'step-1'],
      'the step that acted is compensated, then the one before',
    );
    assert.ok(
      JSON.stringify(snap).length < 64 * 1024,
      `the saga's result stays small (${JSON.stringify(snap).length} bytes)`,
    );
    assert.equal((calls[workflowId] ?? []).filter((c) => c.phase === 'undo').length, 1, 'step-1 undone once');
    assert.deepEqual(await workflowTaskFailures([session.workflowId, workflowId]), []);
  });
});
