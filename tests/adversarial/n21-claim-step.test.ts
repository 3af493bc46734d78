/**
 * N21 (issue 24): `claimStep` is unsigned and counted toward
 * `maxUpdatesPerRun`. It is the hypervisor's own request (the saga's activity
 * claims a step its start did not lease), so:
 *
 * - a claim that leases or starts its step does not count toward the run's
 *   update budget (a saga of many claimed steps does not push its session to
 *   continue as new); a claim that changes nothing counts as any request;
 * - any client can send it, and it grants nothing the session would not: an
 *   outsider's claim of a step the gate denies changes nothing (no lease, no
 *   budget, no start, no delta; the step still takes evidence), and a claim of
 *   an allowed step does only what the saga's own claim does — the step runs
 *   once and is charged once.
 */
import assert from 'node:assert/strict';
import { executedSteps, expectSoundAudit, mark, openSession, sagaOutcome, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

describe("N21 — claimStep: the hypervisor's own request, which grants nothing", function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () =>
    assert.deepEqual(
      await workflowTaskFailures(touched, { unhandledCommand: 'tally' }),
      [],
      "no workflow task failed (a signal racing continue-as-new is the server's benign UNHANDLED_COMMAND)",
    ),
  );

  it("N21: the claims of a saga's steps do not count toward maxUpdatesPerRun", async () => {
    // Burst 1: only the first step is leased at the start; each of the other eight claims its lease when reached.
    const session = await openSession(
      { [beta]: 0.8 },
      { controls: { rateLimits: { ring2: { perSecond: 1000, burst: 1 } } } },
      { maxUpdatesPerRun: 10 },
    );
    const steps = Array.from({ length: 9 }, () => ({ actionId: 'draft', agentDid: beta }));
    const saga = await session.startSaga({ steps });
    touched.push(session.workflowId, saga.workflowId);
    const snap = await sagaOutcome(session.saga(saga.sagaId));
    assert.equal(snap.saga.state, 'completed', JSON.stringify(snap.error));
    const summary = await until(
      () => session.summary(),
      (s) => s.sagas.every((g: { state: string }) => g.state === 'completed'),
      'the session to record the end',
    );
    // join + activate + startSaga = 3 counted updates, 8 claims not: the session is still in its first run.
    assert.equal(summary.runs, 1, 'eight claims did not make the session continue as new');
  });

  it("N21: an outsider's claim of a denied step changes nothing; of an allowed step, only what the saga's claim does", async () => {
    const session = await openSession(
      { [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 },
      { controls: { rateLimits: { ring2: { perSecond: 1000, burst: 1 } }, budgets: { agentCalls: 10 } } },
    );
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: beta, input: { delayMs: 3_000 } },
        { actionId: 'publish', agentDid: beta },
        { actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 },
      ],
    });
    touched.push(session.workflowId, saga.workflowId);
    const ref = (stepId: string) => ({ sagaId: saga.sagaId, stepId, digest: saga.digests[stepId] });
    await until(
      () => session.sagaState(saga.sagaId),
      (s) => s.saga.steps[0].state === 'executing',
      'step 1 to run',
    );

    // Denied (ring 1, no approvals): the claim answers the denial and changes nothing.
    const m = await mark(session);
    const denied = await session.update('claimStep', ref('step-3'));
    assert.equal(denied.decision.allowed, false);
    const usage = (await session.summary()).controls.spent.agents.find((a: { did: string }) => a.did === alpha);
    assert.equal(usage, undefined, 'alpha holds no lease and no budget');
    // The claim is answered (an accepted update with the denial), and records nothing.
    const { trail } = await session.audit();
    assert.equal(trail.deltaCount, m.deltaCount, 'no delta was recorded');
    await expectSoundAudit(session, []);

    // Allowed (step 2, ring 2, not leased at the start): the outsider claims it before the saga reaches it.
    const allowed = await session.update('claimStep', ref('step-2'));
    assert.equal(allowed.decision.allowed, true);
    await session.update('claimStep', ref('step-2')); // again: leased already, charged once
    const reserved = (await session.summary()).controls.spent.agents.find((a: { did: string }) => a.did === beta);
    assert.deepEqual(
      reserved.reserved.calls + reserved.spent.calls,
      2,
      'beta holds two leases: step 1 (at the start) and step 2 (claimed once)',
    );

    // The denied step still takes its evidence: nothing was spent by the outsider's claim.
    await session.update('approve', { ...ref('step-3'), approverDid: beta });
    await session.update('approve', { ...ref('step-3'), approverDid: gamma });
    const snap = await sagaOutcome(session.saga(saga.sagaId));
    assert.equal(snap.saga.state, 'completed', JSON.stringify(snap.error));
    assert.deepEqual(await executedSteps(saga.workflowId), ['step-1', 'step-2', 'step-3'], 'each step ran once');
    const summary = await until(
      () => session.summary(),
      (s) => s.sagas.every((g: { state: string }) => g.state === 'completed'),
      'the session to record the end',
    );
    const spent = summary.controls.spent.agents.find((a: { did: string }) => a.did === beta);
    assert.deepEqual([spent.spent.calls, spent.reserved.calls], [2, 0], 'beta was charged once per step');
  });
});
