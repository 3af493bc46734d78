/**
 * N9 (issue 24): when the saga's read of its session's grant failed after its
 * retries (the session closed while a step waited to claim its start), the
 * saga workflow failed and its committed steps were never undone. Every
 * failure path of a saga ends in the backward walk.
 */
import assert from 'node:assert/strict';
import { calls } from '../helpers/testHandlers';
import { openSession, until } from './raw';

const alpha = 'did:mesh:alpha';

describe('N9 — a saga whose session cannot answer compensates what it did', function () {
  this.timeout(180_000);

  it('the session ends while step 2 waits to claim its start: the saga compensates step 1 and ends compensated, not failed', async () => {
    // One token at ring 2: step 1 holds it; step 2 claims its own start from the session when its turn comes.
    const session = await openSession(
      { [alpha]: 0.85 },
      { controls: { rateLimits: { ring2: { perSecond: 0.01, burst: 1 } } } },
    );
    const { sagaId, workflowId } = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 2_000 } },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    await until(
      async () => (calls[workflowId] ?? []).filter((c) => c.phase === 'execute').length,
      (n) => n > 0,
      'step 1 to start',
    );
    // The session ends under the saga (an operator's terminate): its claim of step 2 can no longer be answered.
    await session.handle.terminate('test: the session goes away mid-saga');
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'compensated', JSON.stringify({ state: snap.saga.state, error: snap.error }));
    assert.match(snap.error, /could not decide step step-2/);
    assert.deepEqual(
      (calls[workflowId] ?? []).filter((c) => c.phase === 'undo').map((c) => c.stepId),
      ['step-1'],
      'step 1 undone once',
    );
  });
});
