/**
 * Issue 5, part 1: a worker process SIGKILLed while HTTP tool steps are in
 * flight. Temporal re-dispatches the lost attempts (start-to-close 3 s) to a
 * new worker process; the tool honours Idempotency-Key, so each side effect
 * happens once per key and every saga reaches its end state.
 *
 * A step whose last attempt is lost (worker gone, or timed out) has an
 * unknown outcome: the saga compensates it too, with its undo key. The tool
 * undoes what it did (after the execute, if that is still running) and
 * treats an undo of what it never did as a no-op.
 */
import assert from 'node:assert/strict';
import { verifyTrail } from '../../src/core/audit';
import { AGENTS, Lab, activeSession, ofSagas, stepKey, toolStep, waitUntil, type ToolActionId } from './harness';

describe('durability: a worker process SIGKILLed mid-step', function () {
  this.timeout(300_000);
  const lab = Lab.forSuite();

  it('re-runs the lost attempts on a new worker: one side effect per idempotency key, every saga at its end state', async () => {
    const { tool } = lab;
    const session = await activeSession(lab, 'crash-exec');
    const sagaCount = 6;
    const failing = (i: number) => i % 3 === 2; // sagas 2 and 5 fail at step 3 and compensate
    const step = (actionId: ToolActionId, fail = false) =>
      toolStep(
        actionId,
        AGENTS.alpha,
        { delayMs: 1500, undoDelayMs: 200, fail },
        {
          timeoutSeconds: 3,
          retry: { maximumAttempts: 6, initialIntervalSeconds: 0.5, backoffCoefficient: 1.5 },
        },
      );
    const sagas = await Promise.all(
      Array.from({ length: sagaCount }, (_, i) =>
        session.startSaga({
          sagaId: `g${i}`,
          steps: [step('draft'), step('reserve'), step('publish', failing(i))],
        }),
      ),
    );

    // Crash while at least three steps are acting and none has been answered.
    await waitUntil(
      async () => tool.inFlight((k) => k.endsWith('/execute')),
      (n) => n >= 3,
      'three steps in flight',
    );
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
      const id = sagas[i]!.handle.workflowId;
      for (const s of ['step-1', 'step-2', 'step-3']) expected.add(`${id}/${s}/execute`);
      if (failing(i)) for (const s of ['step-2', 'step-1']) expected.add(`${id}/${s}/undo`);
    });
    tool.assertActed(expected, results);
    assert.deepEqual(tool.doubleActs(), []);
    assert.deepEqual(tool.undosWithoutExecute(), []);

    // The crash really lost attempts: each key in flight at the kill was asked again, and answered from the store.
    assert.ok(lostKeys.length >= 3);
    for (const key of lostKeys) assert.ok(tool.requests.get(key)! >= 2, `${key} was retried after the crash`);
    const retriedSteps = results.flatMap((r) => r.saga.steps.filter((s) => s.attempts >= 2));
    assert.ok(retriedSteps.length >= lostKeys.length, 'the lost steps committed on a later attempt');

    // The session saw it all, and its audit chain holds.
    await waitUntil(
      () => session.sagas(),
      (s) => s.length === sagaCount && s.every((g) => g.state === 'completed' || g.state === 'compensated'),
      'the session to learn every outcome',
    );
    const audit = await session.audit();
    assert.equal(audit.verification.ok, true);
    assert.equal(verifyTrail(audit.trail).ok, true);
    assert.deepEqual(
      await lab.workflowTaskFailures([session.handle.workflowId, ...sagas.map((s) => s.handle.workflowId)]),
      [],
    );
    console.log(
      `    ${sagaCount} sagas, ${lostKeys.length} steps in flight at the kill, ${tool.actedCount()} side effects for ${tool.totalRequests()} requests, ${tool.retriedKeys().length} keys retried, ${tool.noopUndos.length} undos of never-run steps (no-ops)`,
    );
  });

  const once = { timeoutSeconds: 3, retry: { maximumAttempts: 1 } };

  it('compensates a step lost with its worker and no retry left (outcome unknown): its undo acts once, after its execute', async () => {
    const { tool } = lab;
    const session = await activeSession(lab, 'lost-once');
    const ids = ['l0', 'l1'];
    const sagas = await Promise.all(
      ids.map((sagaId) =>
        session.startSaga({
          sagaId,
          steps: [
            toolStep('draft', AGENTS.alpha, { delayMs: 100, undoDelayMs: 100 }, once),
            toolStep('reserve', AGENTS.alpha, { delayMs: 2000, undoDelayMs: 100 }, once),
            toolStep('publish', AGENTS.alpha, {}, once),
          ],
        }),
      ),
    );
    const step2 = sagas.map((s) => stepKey(s, 'step-2', 'execute'));
    await waitUntil(
      async () => tool.runningKeys(),
      (ks) => step2.every((k) => ks.includes(k)),
      'both step-2 executes in flight',
    );
    assert.equal(await lab.killWorkers(), 1);
    await lab.startWorker();

    const results = await Promise.all(sagas.map((s) => s.result()));
    for (const [i, r] of results.entries()) {
      assert.equal(r.saga.state, 'compensated', r.workflowId);
      assert.equal(r.failedStepId, 'step-2');
      assert.match(r.error ?? '', /timed out/);
      assert.deepEqual(r.compensationOrder, ['step-2', 'step-1']);
      assert.deepEqual(
        r.saga.steps.map((s) => s.state),
        ['compensated', 'compensated', 'pending'],
      );
      const k = (stepId: string, phase: 'execute' | 'undo') => stepKey(sagas[i]!, stepId, phase);
      // No retry: the lost attempt was asked once, and undone after it had finished acting.
      assert.equal(tool.requests.get(k('step-2', 'execute')), 1);
      assert.ok(
        tool.startedAt.get(k('step-2', 'undo'))! >= tool.finishedAt.get(k('step-2', 'execute'))!,
        'the undo acted after the execute',
      );
    }
    const expected = sagas.flatMap((s) =>
      ['step-1/execute', 'step-2/execute', 'step-2/undo', 'step-1/undo'].map((x) => `${s.handle.workflowId}/${x}`),
    );
    tool.assertActed(expected, results, ofSagas(sagas));
    assert.deepEqual(tool.doubleActs(), []);
    assert.deepEqual(tool.undosWithoutExecute(), []);

    // The session learned it; nobody was slashed (every undo succeeded); the chain holds.
    await waitUntil(
      () => session.sagas(),
      (s) => s.length === ids.length && s.every((g) => g.state === 'compensated'),
      'the session to learn every outcome',
    );
    assert.ok((await session.summary()).participants.every((p) => !p.slashed));
    const audit = await session.audit();
    assert.equal(audit.verification.ok, true);
    assert.equal(verifyTrail(audit.trail).ok, true);
    assert.deepEqual(
      await lab.workflowTaskFailures([session.handle.workflowId, ...sagas.map((s) => s.handle.workflowId)]),
      [],
    );
    console.log(
      `    ${ids.length} sagas compensated after losing step-2 with its worker (no retry): ${tool.actedCount((k) => ofSagas(sagas)(k) && k.endsWith('/undo'))} undos acted`,
    );
  });

  it('compensates a step that timed out: an undo waits for an execute still running, an undo of an execute never seen is a no-op', async () => {
    const { tool } = lab;
    const session = await activeSession(lab, 'timed-out');
    const steps = (second: Parameters<typeof toolStep>[2]) => [
      toolStep('draft', AGENTS.beta, {}, once),
      toolStep('reserve', AGENTS.beta, second, once),
      toolStep('publish', AGENTS.beta, {}, once),
    ];
    // slow: the tool is still acting when the attempt times out. late: the request reaches the tool after the saga gave up.
    const [slow, late] = await Promise.all([
      session.startSaga({ sagaId: 'slow', steps: steps({ delayMs: 4500 }) }),
      session.startSaga({ sagaId: 'late', steps: steps({ arriveAfterMs: 8000 }) }),
    ]);
    const results = await Promise.all([slow!.result(), late!.result()]);
    for (const r of results) {
      assert.equal(r.saga.state, 'compensated', r.workflowId);
      assert.equal(r.failedStepId, 'step-2');
      assert.deepEqual(r.compensationOrder, ['step-2', 'step-1']);
    }
    const k = (sagaId: 'slow' | 'late', stepId: string, phase: 'execute' | 'undo') =>
      stepKey({ slow, late }[sagaId]!, stepId, phase);

    // slow: the undo came while the execute ran, waited for it, then acted once.
    assert.equal(tool.acted.get(k('slow', 'step-2', 'undo')), 1);
    assert.ok(
      tool.startedAt.get(k('slow', 'step-2', 'undo'))! >= tool.finishedAt.get(k('slow', 'step-2', 'execute'))!,
      'the undo waited for the execute',
    );

    // late: the undo found nothing done (a no-op, not a side effect); the execute that arrived afterwards was refused.
    assert.ok(tool.noopUndos.includes(k('late', 'step-2', 'undo')));
    assert.equal(tool.acted.has(k('late', 'step-2', 'undo')), false);
    await waitUntil(
      async () => tool.requests.get(k('late', 'step-2', 'execute')) ?? 0,
      (n) => n >= 1,
      'the late execute to reach the tool',
      30_000,
    );
    await waitUntil(
      async () => tool.runningKeys().includes(k('late', 'step-2', 'execute')),
      (running) => !running,
      'the late execute to be answered',
      30_000,
    );
    assert.equal(tool.acted.has(k('late', 'step-2', 'execute')), false, 'the late execute did not act');
    assert.equal(tool.acted.get(k('late', 'step-1', 'undo')), 1);

    const expected = [
      ...['step-1/execute', 'step-2/execute', 'step-2/undo', 'step-1/undo'].map(
        (x) => `${slow!.handle.workflowId}/${x}`,
      ),
      ...['step-1/execute', 'step-1/undo'].map((x) => `${late!.handle.workflowId}/${x}`),
    ];
    tool.assertActed(expected, results, ofSagas([slow!, late!]));
    assert.deepEqual(tool.doubleActs(), []);
    assert.deepEqual(tool.undosWithoutExecute(), []);
    await waitUntil(
      () => session.sagas(),
      (s) => s.length === 2 && s.every((g) => g.state === 'compensated'),
      'the session to learn every outcome',
    );
    const audit = await session.audit();
    assert.equal(audit.verification.ok, true);
    assert.deepEqual(
      await lab.workflowTaskFailures([session.handle.workflowId, slow!.handle.workflowId, late!.handle.workflowId]),
      [],
    );
  });
});
