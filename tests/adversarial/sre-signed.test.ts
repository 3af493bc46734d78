/**
 * Issue 24: in `identity: "none"` sessions anyone naming an SRE DID acted as
 * that SRE — slashed, killed. SPEC §11.9: SRE requests (slash, kill,
 * quarantine, release, witness — and a revocation of an elevation by an SRE)
 * are signed by the SRE in every identity mode (the registry marks them
 * `alwaysSigned`). An outsider naming the SRE — unsigned, signed by its own key
 * in the SRE's name, or signing as itself — is refused and leaves nothing; the
 * SRE's own signed request works. A session whose SREs are no did:keys could
 * never be acted on by them: its start is refused, naming the field.
 */
import assert from 'node:assert/strict';
import { sha256Hex } from '../../src/core/hash';
import { generateDidKey, payloadJson, signPayloadHash, type DidKey } from '../../src/core/identity';
import {
  ATTACKER,
  SRE,
  expectNoTrace,
  expectSoundAudit,
  mark,
  openSession,
  rawClient,
  refused,
  sessionWorkflowId,
  uid,
  until,
  workflowTaskFailures,
  type RawSession,
} from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

let nonces = 0;
/** `request` with one `auth` entry in `signer`'s name, signed by `key` (an outsider's forgery when they differ). */
function forged(session: RawSession, update: string, request: Record<string, unknown>, signer: string, key: DidKey) {
  const nonce = `sre-test-nonce-${process.pid}-${++nonces}-xxxxxx`;
  const issuedAt = Date.now();
  const payloadHash = sha256Hex(payloadJson({ update, sessionId: session.id, request, nonce, issuedAt }));
  return { ...request, auth: [{ signer, nonce, issuedAt, signature: signPayloadHash(key.secretKey, payloadHash) }] };
}

describe('SRE requests are signed by the SRE in every identity mode (SPEC §11.9)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it('SRE requests signed: in an identity-"none" session an outsider naming the SRE is refused for slash, kill, quarantine, release, witness and revocation, with nothing recorded; the SRE\'s signed requests work', async () => {
    const outsider = generateDidKey();
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    touched.push(session.workflowId);
    // A ring 0 step waiting for its witness; gamma elevated; beta quarantined by the SRE (so there is something to release).
    const saga = await session.startSaga({
      steps: [{ actionId: 'reconfigure', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    touched.push(saga.workflowId);
    await until(
      () => session.sagaState(saga.sagaId),
      (s) => s.waiting?.stepId === 'step-1',
      'the saga to wait for its evidence',
    );
    const e = await session.update('requestElevation', { agentDid: gamma, ring: 1, justification: 'deploy' });
    for (const approverDid of [alpha, beta])
      await session.update('approveElevation', {
        agentDid: gamma,
        elevationId: e.elevationId,
        digest: e.digest,
        approverDid,
      });
    await session.asSre('quarantine', { agentDid: beta, sreDid: SRE, reason: 'odd', ttlSeconds: 600 });
    const step = { sagaId: saga.sagaId, stepId: 'step-1', digest: saga.digests['step-1'] };
    const witness = { ...step, witnessDid: SRE };
    const requests: [string, Record<string, unknown>][] = [
      ['slash', { agentDid: alpha, reason: 'framed', witnessDid: SRE }],
      ['kill', { agentDid: alpha, sreDid: SRE, reason: 'framed' }],
      ['quarantine', { agentDid: alpha, sreDid: SRE, reason: 'framed', ttlSeconds: 600 }],
      ['release', { agentDid: beta, sreDid: SRE }],
      ['witness', witness],
      ['revokeElevation', { agentDid: gamma, byDid: SRE, reason: 'framed' }],
    ];

    const m = await mark(session, [saga.workflowId]);
    for (const [update, request] of requests) {
      // What the finding's attacker sent: the SRE's DID, unsigned, as any client of the namespace can.
      await refused(session.update(update, request), 'SIGNATURE_REQUIRED', SRE);
      // Signed in the SRE's name with the outsider's key; signed by the outsider as itself.
      await refused(session.update(update, forged(session, update, request, SRE, outsider)), 'SIGNATURE_INVALID', SRE);
      await refused(
        session.update(update, forged(session, update, request, outsider.did, outsider)),
        'WRONG_SIGNER',
        outsider.did,
      );
    }
    // An SRE DID that is no did:key is no SRE of any session (none can be configured: see below).
    await refused(session.update('kill', { agentDid: alpha, sreDid: ATTACKER, reason: 'x' }), 'NOT_DID_KEY', ATTACKER);
    await expectNoTrace(m, {}, [ATTACKER, outsider.did]);
    const summary = await session.summary();
    assert.deepEqual(
      summary.controls.restricted.map((r: { did: string; kind: string }) => [r.did, r.kind]),
      [[beta, 'quarantine']],
      'only the SRE quarantine stands',
    );
    assert.equal((await session.participant(alpha)).sigmaRaw, 0.97, 'alpha is not slashed');
    assert.equal((await session.query('stepGrant', step)).witness, null, 'the step has no witness');
    assert.deepEqual(
      summary.controls.elevations.map((x: { agentDid: string; state: string }) => [x.agentDid, x.state]),
      [[gamma, 'active']],
      "gamma's elevation stands",
    );

    // The SRE's own signed requests work, and the trail keeps their signatures.
    assert.equal((await session.asSre('witness', witness)).witnessed, true);
    assert.equal((await session.query('stepGrant', step)).witness, SRE);
    await session.asSre('revokeElevation', { agentDid: gamma, byDid: SRE, reason: 'done' });
    await session.asSre('release', { agentDid: beta, sreDid: SRE });
    await session.asSre('quarantine', { agentDid: alpha, sreDid: SRE, reason: 'odd', ttlSeconds: 600 });
    const killed = await session.asSre('kill', { agentDid: alpha, sreDid: SRE, reason: 'compromised' });
    assert.equal(killed.kind, 'kill');
    const slashed = await session.asSre('slash', { agentDid: beta, reason: 'lied', witnessDid: SRE });
    assert.equal(slashed.outcome.slashes[0].vouchee, beta);
    const trail = await expectSoundAudit(session, [ATTACKER, outsider.did]);
    const bySre = trail.deltas.filter((d) => d.signatures?.some((s) => s.signer === SRE));
    assert.ok(bySre.length >= 6, `the SRE's signed requests are in the trail with its signature (${bySre.length})`);
  });

  it('SRE requests signed: a session whose SRE witnesses are no did:keys is refused at its start, naming the field', async () => {
    const { client, taskQueue } = await rawClient();
    const id = uid('sre-none');
    const handle = await client.workflow.start('sessionWorkflow', {
      taskQueue,
      workflowId: sessionWorkflowId(id),
      args: [{ sessionId: id, creatorDid: 'did:mesh:admin', config: { sreWitnesses: [SRE, 'did:mesh:sre'] } }],
    });
    touched.push(handle.workflowId);
    const failure = await refused(handle.result(), 'INVALID_INPUT', /config\.sreWitnesses\.1: must be a did:key/);
    assert.match(failure.message, /every identity mode/);
  });
});
