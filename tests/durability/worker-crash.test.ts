/**
 * Issue 5, part 1: a worker process SIGKILLed while HTTP tool steps are in
 * flight. Temporal re-dispatches the lost attempts (start-to-close 3 s) to a
 * new worker process; the tool honours Idempotency-Key, so each side effect
 * happens once per key and every saga reaches its end state.
 */
import assert from 'node:assert/strict';
import { verifyTrail } from '../../src/audit';
import { sagaWorkflowId } from '../../workflows/definitions';
import { AGENTS, Lab, activeSession, waitUntil } from './harness';

describe('durability: a worker process SIGKILLed mid-step', function () {
  this.timeout(300_000);
  const lab = Lab.forSuite();

  it('re-runs the lost attempts on a new worker: one side effect per idempotency key, every saga at its end state', async () => {
    const { tool, hv } = lab;
    const session = await activeSession(hv, 'crash-exec');
    const sagaCount = 6;
    const failing = (i: number) => i % 3 === 2; // sagas 2 and 5 fail at step 3 and compensate
    const step = (actionId: string, fail = false) => ({
      actionId, agentDid: AGENTS.alpha,
      executeApi: tool.url('execute', { delay: 1500, fail }), undoApi: tool.url('undo', { delay: 200 }),
      timeoutSeconds: 3, retry: { maximumAttempts: 6, initialIntervalSeconds: 0.5, backoffCoefficient: 1.5 },
    });
    const sagas = await Promise.all(Array.from({ length: sagaCount }, (_, i) => session.startSaga({
      sagaId: `g${i}`, steps: [step('draft'), step('reserve'), step('publish', failing(i))],
    })));

    // Crash while at least three steps are acting and none has been answered.
    await waitUntil(async () => tool.inFlight((k) => k.endsWith('/execute')), (n) => n >= 3, 'three steps in flight');
    const lostKeys = tool.runningKeys();
    const [first] = lab.live();
    assert.equal(await lab.killWorkers(), 1);
    assert.equal(first!.exitInfo?.signal, 'SIGKILL');
    await lab.startWorker();

    const results = await Promise.all(sagas.map((s) => s.result()));

    // Every saga at its expected end state.
    results.forEach((r, i) => {
      if (failing(i)) {
        assert.equal(r.saga.state, 'compensated', `saga g${i}`);
        assert.equal(r.failedStepId, 'step-3');
        assert.deepEqual(r.compensationOrder, ['step-2', 'step-1']);
      } else {
        assert.equal(r.saga.state, 'completed', `saga g${i}`);
        assert.deepEqual(r.saga.commitOrder, ['step-1', 'step-2', 'step-3']);
      }
    });

    // Exactly the expected side effects, each once.
    const expected = new Set<string>();
    results.forEach((_, i) => {
      const id = sagaWorkflowId(session.sessionId, `g${i}`);
      for (const s of ['step-1', 'step-2', 'step-3']) expected.add(`${id}/${s}/execute`);
      if (failing(i)) for (const s of ['step-2', 'step-1']) expected.add(`${id}/${s}/undo`);
    });
    assert.deepEqual([...tool.acted.keys()].sort(), [...expected].sort());
    assert.deepEqual(tool.doubleActs(), []);

    // The crash really lost attempts: each key in flight at the kill was asked again, and answered from the store.
    assert.ok(lostKeys.length >= 3);
    for (const key of lostKeys) assert.ok(tool.requests.get(key)! >= 2, `${key} was retried after the crash`);
    const retriedSteps = results.flatMap((r) => r.saga.steps.filter((s) => s.attempts >= 2));
    assert.ok(retriedSteps.length >= lostKeys.length, 'the lost steps committed on a later attempt');

    // The session saw it all, and its audit chain holds.
    await waitUntil(() => session.sagas(), (s) => s.length === sagaCount && s.every((g) => g.state === 'completed' || g.state === 'compensated'), 'the session to learn every outcome');
    const audit = await session.audit();
    assert.equal(audit.verification.ok, true);
    assert.equal(verifyTrail(audit.trail).ok, true);
    assert.deepEqual(await lab.workflowTaskFailures([session.handle.workflowId, ...sagas.map((s) => s.handle.workflowId)]), []);
    console.log(`    ${sagaCount} sagas, ${lostKeys.length} steps in flight at the kill, ${tool.actedCount()} side effects for ${tool.totalRequests()} requests, ${tool.retriedKeys().length} keys retried`);
  });
});
