/**
 * N15 (issue 24): a push (`restrict`) carries no sender. Any client could push
 * restriction 2 for a running step's agent — the step was cancelled, then ran
 * again, and no kill was recorded — or push `sessionState: terminating` to
 * abort any saga. A push may only take privilege away from the next step, and
 * only after the saga has asked its session: cancelling a step in flight
 * happens on the session's own word.
 */
import assert from 'node:assert/strict';
import { calls } from '../helpers/testHandlers';
import { openSession, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const forgedKill = (did: string) => ({
  agents: [{ did, sigmaRaw: 0.85, bondSum: 0, ringCap: 0, active: true, restriction: 2 }],
});

describe('N15 — a forged push neither cancels a running step nor aborts a saga', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it("a forged kill of the running step's agent: the step is not cancelled, it acts exactly once, the saga completes", async () => {
    const session = await openSession({ [alpha]: 0.85, [beta]: 0.8 });
    const { sagaId, workflowId } = await session.startSaga({
      steps: [{ actionId: 'draft', agentDid: alpha, input: { delayMs: 3_000 } }],
    });
    touched.push(session.workflowId, workflowId);
    await until(
      async () => (calls[workflowId] ?? []).filter((c) => c.phase === 'execute').length,
      (n) => n > 0,
      'the step to start',
    );
    await session.saga(sagaId).signal('restrict', forgedKill(alpha));
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', JSON.stringify(snap.saga));
    const byKey = new Map<string, number>();
    for (const c of calls[workflowId] ?? []) if (c.phase === 'execute') byKey.set(c.key, (byKey.get(c.key) ?? 0) + 1);
    assert.deepEqual([...byKey.values()], [1], 'one effect per idempotency key');
    assert.equal(
      (calls[workflowId] ?? []).filter((c) => c.phase === 'cancelled').length,
      0,
      'the step was never cancelled',
    );
    assert.deepEqual((await session.summary()).controls.restricted, [], 'no kill was recorded');
  });

  it('a forged "terminating": the saga asks its session, which is active, and every step runs', async () => {
    const session = await openSession({ [alpha]: 0.85, [beta]: 0.8 });
    const { sagaId, workflowId } = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 1_500 } },
        { actionId: 'publish', agentDid: beta },
      ],
    });
    touched.push(session.workflowId, workflowId);
    await until(
      async () => (calls[workflowId] ?? []).filter((c) => c.phase === 'execute').length,
      (n) => n > 0,
      'the first step to start',
    );
    await session.saga(sagaId).signal('restrict', { agents: [], sessionState: 'terminating' });
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', JSON.stringify(snap.saga));
    assert.deepEqual(
      (calls[workflowId] ?? []).filter((c) => c.phase === 'execute').map((c) => c.stepId),
      ['step-1', 'step-2'],
    );
  });
});
