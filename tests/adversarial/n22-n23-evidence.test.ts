/**
 * N22 and N23 (issue 24): evidence counts only for the digest it names, and
 * only until the step starts (SPEC §11.5).
 *
 * - N22: a step handed to a substitute after a kill is a new step; an
 *   approval bound to the killed agent's digest does not count for it.
 * - N23: the session spends a step's evidence when it grants the step; an
 *   approval or rejection that arrives once the step has started is refused
 *   at once — not only after the session has processed the saga's end.
 */
import assert from 'node:assert/strict';
import { calls } from '../helpers/testHandlers';
import { SRE, openSession, refused, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const sub = 'did:mesh:substitute';

describe('N22, N23 — evidence is bound to one digest and spent when the step starts', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it('N23: once the session granted a step (it is running), an approval or a rejection for it is refused STEP_STARTED', async () => {
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 }, { consensusQuorum: 1 });
    // The step runs for a while: the evidence arrives while it is running, long before the saga ends.
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, input: { delayMs: 4_000 }, approvalDeadlineSeconds: 120 }],
    });
    touched.push(session.workflowId, saga.workflowId);
    const ref = { sagaId: saga.sagaId, stepId: 'step-1', digest: saga.digests['step-1']! };
    await until(
      () => session.sagaState(saga.sagaId),
      (s) => s.waiting !== null,
      'the step to wait for approval',
    );
    await session.update('approve', { ...ref, approverDid: beta });
    await until(
      async () => (calls[saga.workflowId] ?? []).filter((c) => c.phase === 'execute').length,
      (n) => n > 0,
      'the step to start',
    );
    await refused(session.update('approve', { ...ref, approverDid: gamma }), 'STEP_STARTED', 'has started');
    await refused(session.update('reject', { ...ref, approverDid: gamma, reason: 'too late' }), 'STEP_STARTED');
    const snap = await session.sagaResult(saga.sagaId);
    assert.equal(snap.saga.state, 'completed');
    assert.deepEqual(snap.grants['step-1'].approvals, [beta], 'the grant holds the evidence it was given, no more');
    // Once the session has recorded the saga's end, the refusal says so.
    await until(
      () => session.sagaRecords(),
      (r) => r.find((g) => g.sagaId === saga.sagaId)?.state === 'completed',
      'the session to record the end',
    );
    await refused(session.update('approve', { ...ref, approverDid: gamma }), 'SAGA_ENDED');
  });

  it("N22: an approval bound to the killed agent's digest does not count for the substitute's step; one for the new digest does", async () => {
    const session = await openSession(
      { [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8, [sub]: 0.97 },
      { consensusQuorum: 1 },
    );
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    touched.push(session.workflowId, saga.workflowId);
    const old = { sagaId: saga.sagaId, stepId: 'step-1', digest: saga.digests['step-1']! };
    await until(
      () => session.sagaState(saga.sagaId),
      (s) => s.waiting !== null,
      'the step to wait for approval',
    );
    const killed = await session.asSre('kill', {
      agentDid: alpha,
      sreDid: SRE,
      reason: 'compromised',
      substituteDid: sub,
    });
    const handed = killed.handedOff.find((h: { stepId: string }) => h.stepId === 'step-1');
    assert.ok(handed, 'the waiting step was handed to the substitute');
    assert.notEqual(handed.digest, old.digest);
    await refused(
      session.update('approve', { ...old, approverDid: beta }),
      'DIGEST_MISMATCH',
      'evidence for the old one does not count',
    );
    await refused(session.asSre('witness', { ...old, witnessDid: SRE }), 'DIGEST_MISMATCH');
    const grant = await session.query('stepGrant', { ...old, digest: handed.digest });
    assert.deepEqual(grant.approvals, [], "nothing counts for the substitute's step yet");
    await session.update('approve', { ...old, digest: handed.digest, approverDid: beta });
    const snap = await session.sagaResult(saga.sagaId);
    assert.equal(snap.saga.state, 'completed', JSON.stringify(snap.saga));
    const executes = (calls[saga.workflowId] ?? []).filter((c) => c.phase === 'execute');
    assert.deepEqual(
      executes.map((c) => c.agentDid),
      [sub],
      'the step ran once, as the substitute, on evidence for its own digest',
    );
  });
});
