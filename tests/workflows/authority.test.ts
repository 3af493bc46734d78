/**
 * SPEC §6 and §11 on a real server: cancellation compensates and the session
 * learns it; a bond's expiry demotes mid-saga at its time; every retry
 * attempt is gated; approvals are evidence bound to one step's digest, with
 * the session's quorum.
 */
import assert from 'node:assert/strict';
import { isHypervisorError } from '../../src/core/errors';
import { sagaWorkflowId } from '../../src/contract/messages';
import { eventually, hypervisor, uniqueId } from '../helpers/hv';
import { ACTIONS, activeSession, asSre, SRE } from '../helpers/sessions';
import { calls } from '../helpers/testHandlers';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const executes = (workflowId: string) => (calls[workflowId] ?? []).filter((c) => c.phase === 'execute');

describe('authority: cancellation, time, retries and evidence', function () {
  this.timeout(120_000);

  it('a saga cancelled mid-step compensates the running step first, then the committed ones; the session learns it', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: alpha, input: { delayMs: 2500 } },
        { actionId: 'notify', agentDid: alpha },
      ],
    });
    await eventually(
      () => saga.state(),
      (s) => s.saga.steps[1]!.state === 'executing',
      'step 2 to run',
    );
    await saga.handle.cancel();
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated');
    assert.equal(result.cancelled, true);
    assert.deepEqual(
      result.compensationOrder,
      ['step-2', 'step-1'],
      'the step that may have acted first, then the commits in reverse',
    );
    assert.equal(result.saga.steps[2]!.state, 'pending', 'nothing runs after the cancellation');
    const undos = (calls[result.workflowId] ?? []).filter((c) => c.phase === 'undo');
    const step2Done = executes(result.workflowId).find((c) => c.stepId === 'step-2')!;
    assert.ok(undos[0]!.at >= step2Done.at, 'the running step is undone only after it stopped');
    const known = await eventually(
      () => session.sagas(),
      (s) => s[0]?.state === 'compensated',
      'the session to learn the outcome',
    );
    assert.equal(known[0]!.sagaId, saga.sagaId);
    const { trail } = await session.audit();
    assert.ok(trail.deltas.some((d) => d.changes.some((c) => c.path === `/sagas/${saga.sagaId}/state`)));
  });

  it('nothing cancels a compensation: cancelled while compensating, it finishes; a failed undo still escalates and slashes', async () => {
    const session = await activeSession({ [alpha]: 0.85, [beta]: 0.9 });
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { failUndo: true } },
        { actionId: 'reserve', agentDid: beta, input: { undoDelayMs: 1500 } },
        { actionId: 'publish', agentDid: beta, input: { failAttempts: -1 } },
      ],
    });
    await eventually(
      () => saga.state(),
      (s) => s.saga.state === 'compensating',
      'compensation to start',
    );
    await saga.handle.cancel();
    const result = await saga.result();
    assert.equal(result.saga.state, 'escalated');
    assert.deepEqual(
      result.saga.steps.map((s) => s.state),
      ['compensation_failed', 'compensated', 'failed'],
    );
    const slashed = await eventually(
      () => session.participant(alpha),
      (p) => p!.sigmaRaw === 0,
      'the session to slash alpha',
    );
    assert.equal(slashed!.slashed, true);
    assert.equal((await session.sagas())[0]!.state, 'escalated');
  });

  it('a bond that expires demotes its vouchee at the expiry time, mid-saga: the next step is denied', async () => {
    // ω of PARTIAL 0.65: 0.55 + 0.65 × 0.18 = 0.667 > 0.60 while the bond counts; 0.55 after.
    const session = await activeSession({ [alpha]: 0.55, [beta]: 0.9 });
    const expiresAt = Date.now() + 3000;
    await session.vouch({ voucher: beta, vouchee: alpha, expiresAt });
    const saga = await session.startSaga({
      steps: [
        { actionId: 'reserve', agentDid: alpha, input: { delayMs: 4500 } },
        { actionId: 'reserve', agentDid: alpha, stepId: 'again' },
      ],
    });
    const demoted = await eventually(
      () => session.participant(alpha),
      (p) => p!.ring === 3,
      'the expiry to demote alpha',
      10_000,
    );
    assert.ok(Date.now() >= expiresAt);
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated');
    assert.equal(result.failedStepId, 'again');
    assert.match(result.error ?? '', /ring violation.*σ_eff > 0.60; σ_eff is 0.550/);
    const { trail } = await session.audit();
    // The vouch promoted alpha (a ring delta); the expiry demoted it (the last one).
    const ringDelta = trail.deltas
      .filter((d) => d.changes.some((c) => c.path === `/participants/${alpha}/ring`))
      .at(-1);
    assert.ok(ringDelta, 'the demotion is in the audit');
    assert.ok(
      ringDelta.at >= expiresAt && ringDelta.at < expiresAt + 2000,
      `demoted at ${ringDelta.at - expiresAt} ms after the expiry`,
    );
    assert.equal(demoted!.ring, 3);
  });

  it('a retry attempt is gated: a demotion during the backoff denies attempt 2, and the tool is not called again', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        {
          actionId: 'draft',
          agentDid: alpha,
          input: { failAttempts: 1 },
          retry: { maximumAttempts: 3, initialIntervalSeconds: 3 },
        },
      ],
    });
    await eventually(
      async () => executes(saga.handle.workflowId).length,
      (n) => n === 1,
      'attempt 1',
    );
    await (await asSre(session)).slash({ agentDid: alpha, reason: 'caught mid-retry', witnessDid: SRE });
    const result = await saga.result();
    assert.match(result.error ?? '', /ring violation: attempt 2 denied/);
    assert.equal(executes(result.workflowId).length, 1, 'attempt 2 never reached the tool');
    // Attempt 1 may have acted before it failed: the step is undone, with its idempotency key (SPEC §6).
    assert.equal(result.saga.state, 'compensated');
    assert.deepEqual(result.compensationOrder, ['step-1']);
  });

  it("approvals are evidence for one digest: a changed input does not reuse them, a rejection denies at once, the quorum is the session's", async () => {
    const session = await activeSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 }, { consensusQuorum: 1 });
    const a = await session.startSaga({ steps: [{ actionId: 'wire-money', agentDid: alpha, input: { amount: 10 } }] });
    const b = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, input: { amount: 10_000 } }],
    });
    assert.notEqual(a.digests['step-1'], b.digests['step-1']);
    // A's evidence for B's step: refused, and nothing counts for B.
    await assert.rejects(
      session.approve({ sagaId: b.sagaId, stepId: 'step-1', digest: a.digests['step-1'], approverDid: beta }),
      (e) => isHypervisorError(e, 'DIGEST_MISMATCH'),
    );
    assert.deepEqual((await session.stepGrant({ sagaId: b.sagaId, stepId: 'step-1' })).approvals, []);
    // One approval is the quorum of this session (config consensusQuorum 1).
    await session.approve({ sagaId: a.sagaId, stepId: 'step-1', approverDid: beta });
    const done = await a.result();
    assert.equal(done.saga.state, 'completed');
    assert.deepEqual(done.grants['step-1']!.approvals, [beta]);
    // Spent when the session granted the step (N23): no more evidence for a step that ran — STEP_STARTED until the
    // session has recorded the saga's end, SAGA_ENDED after; never accepted.
    await assert.rejects(
      session.approve({ sagaId: a.sagaId, stepId: 'step-1', approverDid: gamma }),
      (e) => isHypervisorError(e, 'SAGA_ENDED') || isHypervisorError(e, 'STEP_STARTED'),
    );
    // A rejection denies B's step at once, long before its deadline.
    await eventually(
      () => b.state(),
      (s) => s.waiting !== null,
      'B to wait for approvals',
    );
    const rejectedAt = Date.now();
    await session.reject({ sagaId: b.sagaId, stepId: 'step-1', approverDid: gamma, reason: 'amount too high' });
    const denied = await b.result();
    assert.equal(denied.saga.state, 'failed');
    assert.match(denied.error ?? '', /rejected by did:mesh:gamma: amount too high/);
    assert.ok(Date.now() - rejectedAt < 10_000);
    assert.equal(executes(denied.workflowId).length, 0);
  });

  it('an approver who is slashed stops counting; a witness outside config.sreWitnesses is refused', async () => {
    const session = await activeSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 60 }],
    });
    const step = { sagaId: saga.sagaId, stepId: 'step-1' };
    await session.approve({ ...step, approverDid: beta });
    await (await asSre(session)).slash({ agentDid: beta, reason: 'compromised', witnessDid: SRE });
    await session.approve({ ...step, approverDid: gamma });
    const grant = await session.stepGrant(step);
    assert.deepEqual(grant.approvals, [gamma], 'the slashed approver no longer counts');
    assert.equal(grant.decision.allowed, false);
    assert.equal((await saga.state()).saga.steps[0]!.state, 'pending');
    // An SRE signs its witness in every identity mode (SPEC §11.9): a DID that is no did:key is no SRE witness.
    await assert.rejects(session.witness({ ...step, witnessDid: gamma }), (e) => isHypervisorError(e, 'NOT_DID_KEY'));
  });

  it('a session that continued as new while its saga ran learns the outcome by reading the saga by id', async () => {
    const hv = await hypervisor();
    // A small update budget, so the session continues as new mid-saga.
    const s = await hv.createSession({
      sessionId: uniqueId('can'),
      creatorDid: 'did:mesh:admin',
      maxUpdatesPerRun: 10,
    });
    await s.join({ agentDid: alpha, sigmaRaw: 0.85, actions: ACTIONS });
    await s.activate();
    const saga = await s.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 2000, failUndo: true } },
        { actionId: 'publish', agentDid: alpha, input: { failAttempts: -1 } },
      ],
    });
    for (let i = 0; i < 8; i++) await s.checkAction({ agentDid: alpha, actionId: 'draft' });
    await eventually(
      () => s.summary(),
      (x) => x.runs >= 2,
      'the session to continue as new',
    );
    const result = await saga.result();
    assert.equal(result.saga.state, 'escalated');
    const learned = await eventually(
      () => s.sagas(),
      (x) => x.find((g) => g.sagaId === saga.sagaId)?.state === 'escalated',
      'the new run to learn the outcome',
    );
    assert.ok(learned);
    const slashed = await eventually(
      () => s.participant(alpha),
      (p) => p!.sigmaRaw === 0,
      'the new run to slash for the escalation',
    );
    assert.equal(slashed!.slashed, true);
    assert.equal((await s.verifyAudit()).verification.ok, true);
  });

  it('a burst of 32 sagas through one session: none refused by the 10-in-flight-updates limit, all complete', async () => {
    const session = await activeSession();
    const started = await Promise.all(
      Array.from({ length: 32 }, (_, i) =>
        session.startSaga({ steps: [{ actionId: 'draft', agentDid: i % 2 ? alpha : beta }] }),
      ),
    );
    const results = await Promise.all(started.map((s) => s.result()));
    assert.deepEqual([...new Set(results.map((r) => r.saga.state))], ['completed']);
    const known = await eventually(
      () => session.sagas(),
      (x) => x.filter((g) => g.state === 'completed').length === 32,
      'the session to learn all 32',
    );
    assert.equal(known.length, 32);
  });

  it('a squatted saga id: an explicit one is refused by name with nothing recorded, an automatic one takes the next free id', async () => {
    const session = await activeSession();
    const hv = await hypervisor();
    // A client holds the workflow id the session will give its next automatic saga, on a queue no worker polls.
    const squatter = await hv.client.workflow.start('sagaWorkflow', {
      taskQueue: uniqueId('nobody'),
      workflowId: sagaWorkflowId(session.sessionId, 'saga-1'),
      args: [{}],
    });
    try {
      const deltas = (await session.audit()).trail.deltaCount;
      await assert.rejects(
        session.startSaga({ sagaId: 'saga-1', steps: [{ actionId: 'draft', agentDid: alpha }] }),
        (e) => isHypervisorError(e, 'DUPLICATE_SAGA') && /saga-1/.test((e as Error).message),
      );
      assert.equal((await session.audit()).trail.deltaCount, deltas, 'nothing recorded for a saga that did not start');
      const next = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
      assert.notEqual(next.sagaId, 'saga-1');
      assert.equal((await next.result()).saga.state, 'completed');
    } finally {
      await squatter.terminate().catch(() => undefined);
    }
  });
});
