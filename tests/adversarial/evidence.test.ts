/**
 * Attacks 4 and 5: witnesses and approvals are evidence the session weighs
 * (SPEC §11.5), bound to a step's digest. A witness must be one of the
 * config's SRE DIDs and never lifts a ring; the quorum is the session's;
 * approvals count once, from active, unslashed participants other than the
 * acting agent, for that digest only; a rejection denies at once.
 */
import assert from 'node:assert/strict';
import { KeyRing, signRequest } from '../../src/client/keys';
import { generateDidKey } from '../../src/core/identity';
import {
  ATTACKER,
  SRE,
  executedSteps,
  expectNoTrace,
  expectSoundAudit,
  freshSagaCompletes,
  handlerCalls,
  mark,
  openSession,
  refused,
  sagaOutcome,
  stepDigest,
  until,
  workflowTaskFailures,
  type RawSession,
  type StartedSaga,
} from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const delta = 'did:mesh:delta';
const sandbox = 'did:mesh:sandbox';

/** A saga of one ring 1 step (wire-money) by alpha (σ 0.97), waiting for the session's quorum. */
async function waitingSaga(
  session: RawSession,
  deadline = 120,
): Promise<StartedSaga & { ref: (approverDid: string) => Record<string, string> }> {
  const started = await session.startSaga({
    steps: [{ actionId: 'wire-money', agentDid: alpha, input: { amount: 100 }, approvalDeadlineSeconds: deadline }],
  });
  await until(
    () => session.sagaState(started.sagaId),
    (s) => s.waiting?.stepId === 'step-1',
    'the saga to wait for approvals',
  );
  return {
    ...started,
    ref: (approverDid) => ({
      sagaId: started.sagaId,
      stepId: 'step-1',
      digest: started.digests['step-1']!,
      approverDid,
    }),
  };
}

const grant = (session: RawSession, s: StartedSaga, stepId = 'step-1') =>
  session.query('stepGrant', { sagaId: s.sagaId, stepId, digest: s.digests[stepId] });

describe('adversarial: witnesses (SPEC §11.5, §1 [resolved])', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it('4. a witness that is not one of config.sreWitnesses is refused, leaving no history', async () => {
    // The acting agent is an SRE witness of this session too (a did:key, as every SRE): it still may not witness its own step.
    const actor = generateDidKey();
    const outsider = generateDidKey();
    const session = await openSession(
      { [actor.did]: 0.97, [beta]: 0.8, [gamma]: 0.8 },
      { sreWitnesses: [SRE, actor.did] },
    );
    const saga = await session.startSaga({
      steps: [{ actionId: 'reconfigure', agentDid: actor.did, approvalDeadlineSeconds: 120 }],
    });
    touched.push(session.workflowId, saga.workflowId);
    await until(
      () => session.sagaState(saga.sagaId),
      (s) => s.waiting !== null,
      'the saga to wait',
    );
    const m = await mark(session, [saga.workflowId]);
    const ref = { sagaId: saga.sagaId, stepId: 'step-1', digest: saga.digests['step-1'] };
    // An SRE signs its witness (SPEC §11.9): a DID that is no did:key is no SRE of any session.
    for (const witnessDid of [beta, ATTACKER, 'did:mesh:sre-impostor', 'did:hv:hypervisor']) {
      await refused(session.update('witness', { ...ref, witnessDid }), 'NOT_DID_KEY', witnessDid);
    }
    const signed = (key: typeof actor) =>
      signRequest(new KeyRing([key]), 'witness', session.id, { ...ref, witnessDid: key.did });
    await refused(session.update('witness', signed(outsider)), 'NOT_SRE_WITNESS', outsider.did);
    await refused(session.update('witness', signed(actor)), 'SELF_APPROVAL');
    await expectNoTrace(m, {}, [ATTACKER, outsider.did]);
    assert.equal((await grant(session, saga)).witness, null);
  });

  it('4. a witness never lifts a ring 2 agent to ring 0, even with a quorum; a ring 1 agent with a witness still waits for consensus', async () => {
    const session = await openSession({ [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8, [delta]: 0.97 });
    // Step 2 is a ring 0 step of a ring 2 agent; step 1 holds the saga while the evidence comes in.
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 3000 } },
        { actionId: 'reconfigure', agentDid: beta, approvalDeadlineSeconds: 120 },
      ],
    });
    touched.push(session.workflowId, saga.workflowId);
    const ref = { sagaId: saga.sagaId, stepId: 'step-2', digest: saga.digests['step-2'] };
    await session.asSre('witness', { ...ref, witnessDid: SRE });
    for (const approverDid of [alpha, gamma]) await session.update('approve', { ...ref, approverDid });
    const g = await grant(session, saga, 'step-2');
    assert.equal(g.decision.allowed, false);
    assert.equal(g.decision.requiredRing, 0);
    const snap = await sagaOutcome(session.saga(saga.sagaId));
    assert.equal(snap.saga.state, 'compensated');
    assert.equal(snap.failedStepId, 'step-2');
    assert.match(snap.error, /ring 0 needs an agent in ring 1 \(σ_eff > 0\.95\)/);
    assert.deepEqual(await executedSteps(saga.workflowId), ['step-1']);

    // A ring 1 agent (σ 0.97) with the witness but no quorum: waits, then is denied at its deadline.
    const lone = await session.startSaga({
      steps: [{ actionId: 'reconfigure', agentDid: delta, approvalDeadlineSeconds: 4 }],
    });
    touched.push(lone.workflowId);
    await session.asSre('witness', {
      sagaId: lone.sagaId,
      stepId: 'step-1',
      digest: lone.digests['step-1'],
      witnessDid: SRE,
    });
    const denied = await sagaOutcome(session.saga(lone.sagaId));
    assert.equal(denied.saga.state, 'failed');
    assert.match(denied.error, /consensus.*deadline/);
    assert.deepEqual(await executedSteps(lone.workflowId), []);
    await expectSoundAudit(session);
  });
});

describe('adversarial: approvals (SPEC §11.5)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it("5. a saga request cannot set its quorum; the session's consensusQuorum holds", async () => {
    const session = await openSession(
      { [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8, [delta]: 0.8 },
      { consensusQuorum: 3 },
    );
    touched.push(session.workflowId);
    const m = await mark(session);
    const step = { actionId: 'wire-money', agentDid: alpha };
    await refused(session.startSaga({ steps: [step], quorum: 1 }), 'INVALID_INPUT', /quorum/);
    await refused(session.startSaga({ steps: [{ ...step, quorum: 1 }] }), 'INVALID_INPUT', /steps\.0.*quorum/);
    await refused(session.startSaga({ steps: [{ ...step, consensusQuorum: 0 }] }), 'INVALID_INPUT', /consensusQuorum/);
    await refused(session.startSaga({ steps: [step], config: { consensusQuorum: 1 } }), 'INVALID_INPUT', /config/);
    await expectNoTrace(m);

    const saga = await waitingSaga(session);
    touched.push(saga.workflowId);
    for (const approverDid of [beta, gamma]) {
      const r = await session.update('approve', saga.ref(approverDid));
      assert.equal(r.quorum, 3);
    }
    const g = await grant(session, saga);
    assert.deepEqual(
      [g.approvals.length, g.quorum, g.decision.allowed, g.decision.waitFor],
      [2, 3, false, 'consensus'],
    );
    assert.equal(
      (await session.sagaState(saga.sagaId)).saga.steps[0].state,
      'pending',
      "two approvals are not the session's quorum of 3",
    );
    await session.update('approve', saga.ref(delta));
    const snap = await sagaOutcome(session.saga(saga.sagaId));
    assert.equal(snap.saga.state, 'completed');
    assert.deepEqual([...snap.grants['step-1'].approvals].sort(), [beta, delta, gamma]);
  });

  it('5. approvers who are slashed or leave stop counting; a sandboxed one never counts (SPEC §11.9); any other active participant of ring ≤ 2 counts', async () => {
    const epsilon = 'did:mesh:epsilon';
    const session = await openSession({
      [alpha]: 0.97,
      [beta]: 0.8,
      [gamma]: 0.8,
      [delta]: 0.8,
      [sandbox]: 0.3,
      [epsilon]: 0.8,
    });
    const saga = await waitingSaga(session);
    touched.push(session.workflowId, saga.workflowId);
    await session.update('approve', saga.ref(beta));
    await session.asSre('slash', { agentDid: beta, reason: 'compromised', witnessDid: SRE });
    assert.deepEqual((await grant(session, saga)).approvals, [], 'the slashed approver no longer counts');
    await session.update('approve', saga.ref(gamma));
    await session.update('leave', { agentDid: gamma });
    assert.deepEqual((await grant(session, saga)).approvals, [], 'the approver who left no longer counts');
    await session.update('approve', saga.ref(delta));
    const g = await grant(session, saga);
    assert.deepEqual([g.approvals, g.decision.allowed], [[delta], false]);
    assert.equal(
      (await session.sagaState(saga.sagaId)).saga.steps[0].state,
      'pending',
      'one counted approval of two: still waiting',
    );
    assert.deepEqual(handlerCalls(saga.workflowId), []);
    await refused(session.update('approve', saga.ref(sandbox)), 'NOT_ELIGIBLE_APPROVER', 'ring 3');
    await session.update('approve', saga.ref(epsilon));
    const snap = await sagaOutcome(session.saga(saga.sagaId));
    assert.equal(snap.saga.state, 'completed');
    assert.deepEqual([...snap.grants['step-1'].approvals].sort(), [delta, epsilon]);
    await expectSoundAudit(session);
  });

  it('5. an approval bound to another digest is refused (DIGEST_MISMATCH), leaving no history', async () => {
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const saga = await session.startSaga({
      steps: [
        { actionId: 'wire-money', agentDid: alpha, input: { amount: 100 }, approvalDeadlineSeconds: 120 },
        { actionId: 'wire-money', agentDid: alpha, input: { amount: 1_000_000 }, approvalDeadlineSeconds: 120 },
      ],
    });
    touched.push(session.workflowId, saga.workflowId);
    await until(
      () => session.sagaState(saga.sagaId),
      (s) => s.waiting?.stepId === 'step-1',
      'the saga to wait',
    );
    const m = await mark(session, [saga.workflowId]);
    const ids = {
      sessionId: session.id,
      sagaId: saga.sagaId,
      stepId: 'step-1',
      actionId: 'wire-money',
      agentDid: alpha,
    };
    const others = [
      stepDigest({ ...ids, input: { amount: 1_000_000 } }), // the same step with another input
      stepDigest({ ...ids, input: { amount: 100, to: 'mallory' } }),
      stepDigest({ ...ids, input: undefined }),
      stepDigest({ ...ids, actionId: 'draft', input: { amount: 100 } }),
      stepDigest({ ...ids, agentDid: beta, input: { amount: 100 } }),
      stepDigest({ ...ids, sessionId: 'other', input: { amount: 100 } }),
      saga.digests['step-2']!, // another step's digest
    ];
    assert.equal(stepDigest({ ...ids, input: { amount: 100 } }), saga.digests['step-1'], "the digest is SPEC §11.5's");
    for (const digest of others) {
      await refused(
        session.update('approve', { sagaId: saga.sagaId, stepId: 'step-1', digest, approverDid: beta }),
        'DIGEST_MISMATCH',
        'step-1',
      );
      await refused(
        session.asSre('witness', { sagaId: saga.sagaId, stepId: 'step-1', digest, witnessDid: SRE }),
        'DIGEST_MISMATCH',
      );
      await refused(
        session.update('reject', { sagaId: saga.sagaId, stepId: 'step-1', digest, approverDid: beta, reason: 'no' }),
        'DIGEST_MISMATCH',
      );
    }
    await expectNoTrace(m);
    assert.deepEqual((await grant(session, saga)).approvals, []);
  });

  it('5. a rejection denies the step at once', async () => {
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const saga = await waitingSaga(session, 600);
    touched.push(session.workflowId, saga.workflowId);
    await session.update('approve', saga.ref(gamma));
    const at = Date.now();
    await session.update('reject', { ...saga.ref(beta), reason: 'not this transfer' });
    const snap = await sagaOutcome(session.saga(saga.sagaId));
    assert.ok(Date.now() - at < 15_000, 'denied at once, not at the 600 s deadline');
    assert.equal(snap.saga.state, 'failed');
    assert.match(snap.error, /rejected by did:mesh:beta: not this transfer/);
    assert.deepEqual(await executedSteps(saga.workflowId), []);
    await until(
      () => session.sagaRecords(),
      (r) => r[0]?.state === 'failed',
      'the session to learn the outcome',
    );
    const m = await mark(session, [saga.workflowId]);
    await refused(session.update('approve', saga.ref(beta)), 'SAGA_ENDED');
    await expectNoTrace(m);
    await expectSoundAudit(session);
  });

  it('afterwards the same worker runs a fresh saga to completion', async () => {
    await freshSagaCompletes();
  });
});
