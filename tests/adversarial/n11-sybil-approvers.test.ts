/**
 * N11 (issue 24): sybil approvers. A σ 0.1 agent joined two fresh σ 0 DIDs
 * and had them approve its own elevation to ring 1. SPEC §11.9: an approver
 * of a step or of an elevation is an active participant of ring ≤ 2 that
 * joined before the request, is not restricted, and is not the requester —
 * one rule (src/session.ts checkApprover) for approve, reject and
 * approveElevation, applied when approving and when counting.
 */
import assert from 'node:assert/strict';
import { ATTACKER, expectNoTrace, mark, openSession, refused, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const sybils = ['did:mesh:mallory-sock-1', 'did:mesh:mallory-sock-2'];
const late = 'did:mesh:late-but-trusted';

describe('N11 — sybil approvers count for nothing', function () {
  this.timeout(120_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it("N11: fresh σ 0 DIDs cannot approve their maker's elevation to ring 1; nor can a trusted DID that joined after the request", async () => {
    const session = await openSession({ [ATTACKER]: 0.1, [beta]: 0.8, [gamma]: 0.8 });
    touched.push(session.workflowId);
    const e = await session.update('requestElevation', {
      agentDid: ATTACKER,
      ring: 1,
      ttlSeconds: 600,
      justification: 'urgent fix',
    });
    for (const did of sybils) await session.update('join', { agentDid: did, sigmaRaw: 0 });
    await session.update('join', { agentDid: late, sigmaRaw: 0.9 });
    const m = await mark(session);
    const approve = (approverDid: string) =>
      session.update('approveElevation', {
        agentDid: ATTACKER,
        elevationId: e.elevationId,
        digest: e.digest,
        approverDid,
      });
    for (const did of sybils) await refused(approve(did), 'NOT_ELIGIBLE_APPROVER', /ring 3/);
    await refused(approve(late), 'NOT_ELIGIBLE_APPROVER', /not before the request/);
    await refused(approve(ATTACKER), 'SELF_APPROVAL');
    await expectNoTrace(m, {}, []);
    const participant = await session.participant(ATTACKER);
    assert.equal(participant.ring, 3);
    assert.deepEqual(
      (await session.summary()).controls.elevations.map((v: { state: string; approvals: number }) => [
        v.state,
        v.approvals,
      ]),
      [['requested', 0]],
    );
    // Two eligible approvers make it active, as before.
    await approve(beta);
    const view = await approve(gamma);
    assert.equal(view.state, 'active');
  });

  it("N11: a step's approvals and rejections by ring-3 or late DIDs are refused; the quorum is met only by eligible approvers", async () => {
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8, [sybils[0]!]: 0 });
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    touched.push(session.workflowId, saga.workflowId);
    await session.update('join', { agentDid: late, sigmaRaw: 0.9 });
    const ref = { sagaId: saga.sagaId, stepId: 'step-1', digest: saga.digests['step-1']! };
    await until(
      () => session.sagaState(saga.sagaId),
      (s) => s.waiting !== null,
      'the step to wait for approvals',
    );
    const m = await mark(session, [saga.workflowId]);
    await refused(session.update('approve', { ...ref, approverDid: sybils[0] }), 'NOT_ELIGIBLE_APPROVER', /ring 3/);
    await refused(
      session.update('reject', { ...ref, approverDid: sybils[0], reason: 'griefing' }),
      'NOT_ELIGIBLE_APPROVER',
    );
    await refused(
      session.update('approve', { ...ref, approverDid: late }),
      'NOT_ELIGIBLE_APPROVER',
      /not before the request/,
    );
    await expectNoTrace(m, {}, []);
    assert.deepEqual((await session.query('stepGrant', ref)).approvals, []);
    await session.update('approve', { ...ref, approverDid: beta });
    await session.update('approve', { ...ref, approverDid: gamma });
    const snap = await session.sagaResult(saga.sagaId);
    assert.equal(snap.saga.state, 'completed');
    assert.deepEqual([...snap.grants['step-1'].approvals].sort(), [beta, gamma]);
  });
});
