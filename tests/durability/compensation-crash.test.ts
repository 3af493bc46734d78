/**
 * Issue 5, part 2: the worker process SIGKILLed during the reverse walk —
 * twice. Compensation resumes on the next worker where it stopped; no undo
 * acts twice for one key, and the order stays the reverse of commit.
 */
import assert from 'node:assert/strict';
import { verifyTrail } from '../../src/core/audit';
import { AGENTS, Lab, activeSession, toolStep, waitUntil, type ToolActionId } from './harness';

describe('durability: a worker process SIGKILLed during compensation', function () {
  this.timeout(300_000);
  const lab = Lab.forSuite();

  it('resumes the reverse walk on a new worker; each undo acts once per key', async () => {
    const { tool } = lab;
    const session = await activeSession(lab, 'crash-undo');
    const sagaCount = 4;
    const step = (actionId: ToolActionId, fail = false) =>
      toolStep(
        actionId,
        AGENTS.beta,
        { delayMs: 50, undoDelayMs: 1500, fail },
        {
          timeoutSeconds: 3,
          retry: { maximumAttempts: 6, initialIntervalSeconds: 0.5, backoffCoefficient: 1.5 },
        },
      );
    const sagas = await Promise.all(
      Array.from({ length: sagaCount }, (_, i) =>
        session.startSaga({
          sagaId: `u${i}`,
          steps: [step('draft'), step('reserve'), step('publish'), step('notify', true)],
        }),
      ),
    );
    const isUndo = (k: string) => k.endsWith('/undo');

    // First crash: while undos of the last committed steps act.
    await waitUntil(
      async () => tool.inFlight(isUndo),
      (n) => n >= 2,
      'two undos in flight',
    );
    const lostFirst = tool.runningKeys().filter(isUndo);
    // Another saga may still be retrying its failing step-4 at a kill: that attempt is cut off too.
    const cutOff = new Set(tool.runningKeys());
    assert.equal(await lab.killWorkers(), 1);
    await lab.startWorker();

    // Second crash: further down the walk, once some saga reached its step-1 (or step-2) undo.
    await waitUntil(
      async () => tool.runningKeys().filter((k) => isUndo(k) && !k.includes('/step-3/')),
      (ks) => ks.length >= 1,
      'an undo deeper in the walk in flight',
      60_000,
    );
    const lostSecond = tool.runningKeys().filter(isUndo);
    for (const key of tool.runningKeys()) cutOff.add(key);
    assert.equal(await lab.killWorkers(), 1);
    await lab.startWorker();

    const results = await Promise.all(sagas.map((s) => s.result()));
    for (const r of results) {
      assert.equal(r.saga.state, 'compensated', r.workflowId);
      assert.equal(r.failedStepId, 'step-4');
      // Step-4's tool refuses it with an answer, so its first attempt, if it ends, fails knowing it did not act.
      // An attempt a kill cut off — in flight at the tool, or not yet there, or answered but never reported —
      // leaves a later attempt to fail: the saga cannot know the lost one did not act, so step-4 is compensated
      // first (SPEC §6 [resolved], activities/steps.ts: any attempt after the first may have acted).
      const step4 = r.saga.steps[3]!;
      if (cutOff.has(`${r.workflowId}/step-4/execute`))
        assert.ok(
          step4.attempts > 1,
          `${r.workflowId}: step-4 was cut off at the tool, so it failed on a later attempt`,
        );
      const expected = step4.attempts > 1 ? ['step-4', 'step-3', 'step-2', 'step-1'] : ['step-3', 'step-2', 'step-1'];
      assert.deepEqual(
        r.compensationOrder,
        expected,
        `${r.workflowId}: compensation order ${JSON.stringify(r.compensationOrder)}, step-4 failed on attempt ${step4.attempts}`,
      );
      assert.ok(r.saga.steps.slice(0, 3).every((s) => s.state === 'compensated'));
    }

    const undone = new Map(results.map((r) => [r.workflowId, r.compensationOrder]));
    const expected = new Set<string>();
    for (let i = 0; i < sagaCount; i++) {
      const id = sagas[i]!.handle.workflowId;
      for (const s of ['step-1', 'step-2', 'step-3', 'step-4']) expected.add(`${id}/${s}/execute`);
      for (const s of undone.get(id) ?? []) expected.add(`${id}/${s}/undo`);
    }
    tool.assertActed(expected, results);
    assert.deepEqual(tool.doubleActs(), []);
    assert.deepEqual(tool.undosWithoutExecute(), []);
    // The tool saw each saga's undos in reverse order of commit, crashes notwithstanding.
    for (let i = 0; i < sagaCount; i++) {
      const id = sagas[i]!.handle.workflowId;
      const undos = tool.actOrder.filter((k) => k.startsWith(`${id}/`) && isUndo(k));
      assert.deepEqual(
        undos,
        (undone.get(id) ?? []).map((s) => `${id}/${s}/undo`),
      );
    }
    for (const key of [...lostFirst, ...lostSecond])
      assert.ok(tool.requests.get(key)! >= 2, `${key} was asked again after the crash`);

    await waitUntil(
      () => session.sagas(),
      (s) => s.length === sagaCount && s.every((g) => g.state === 'compensated'),
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
      `    ${sagaCount} sagas compensated across 2 kills; undos in flight at the kills: ${lostFirst.length} + ${lostSecond.length}; ${tool.actedCount(isUndo)} undos acted for ${tool.totalRequests(isUndo)} undo requests, ${tool.noopUndos.length} undos of never-run steps (no-ops)`,
    );
  });
});
