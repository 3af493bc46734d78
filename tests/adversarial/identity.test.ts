/**
 * Issue 12: in a did:key session an agent proves who it is. A plain Temporal
 * client can still send anything; every request it sends in another's name —
 * unsigned, signed by the wrong key, replayed, stale — is refused by the
 * update's validator, naming why, and leaves no history. Approvals are signed
 * receipts bound to a step digest; the trail keeps every signature and
 * verifies them offline.
 */
import assert from 'node:assert/strict';
import { sha256Hex } from '../../src/core/hash';
import { generateDidKey, payloadJson, signPayloadHash, type DidKey } from '../../src/core/identity';
import { verifyTrail } from '../../src/core/audit';
import { AuditHeadAnswer, SessionSummaryAnswer } from '../../src/contract/answers';
import {
  ACTIONS,
  expectNoTrace,
  mark,
  rawClient,
  RawSession,
  refused,
  sagaOutcome,
  sessionWorkflowId,
  uid,
  until,
  workflowTaskFailures,
  type StartedSaga,
} from './raw';

let nonces = 0;
/** Options for one signature: another key than the signer's, a chosen nonce or time. */
interface Forge {
  key?: DidKey;
  signer?: string;
  nonce?: string;
  issuedAt?: number;
}

/** `request` with `auth` by each key, as docs/CONTRACT.md says (what the typed client does for you). */
function sign(
  session: RawSession | string,
  update: string,
  request: Record<string, unknown>,
  keys: DidKey[],
  forge: Forge = {},
): Record<string, unknown> & { auth: { nonce: string }[] } {
  const sessionId = typeof session === 'string' ? session : session.id;
  const auth = keys.map((k) => {
    const nonce = forge.nonce ?? `test-nonce-${process.pid}-${++nonces}-xxxxxx`;
    const issuedAt = forge.issuedAt ?? Date.now();
    const payloadHash = sha256Hex(payloadJson({ update, sessionId, request, nonce, issuedAt }));
    return {
      signer: forge.signer ?? k.did,
      nonce,
      issuedAt,
      signature: signPayloadHash((forge.key ?? k).secretKey, payloadHash),
    };
  });
  return { ...request, auth };
}

const creator = generateDidKey();
const sre = generateDidKey();
const alpha = generateDidKey(); // σ 0.97: ring 1 steps
const beta = generateDidKey();
const gamma = generateDidKey();
const mallory = generateDidKey();

/** A did:key session with alpha, beta, gamma joined (signed) and activated by its creator. */
async function didKeySession(opts: { maxUpdatesPerRun?: number } = {}): Promise<RawSession> {
  const { client, taskQueue } = await rawClient();
  const id = uid('didkey');
  const handle = await client.workflow.start('sessionWorkflow', {
    taskQueue,
    workflowId: sessionWorkflowId(id),
    args: [
      {
        sessionId: id,
        creatorDid: creator.did,
        config: { identity: 'did:key', sreWitnesses: [sre.did] },
        ...(opts.maxUpdatesPerRun ? { maxUpdatesPerRun: opts.maxUpdatesPerRun } : {}),
      },
    ],
  });
  const session = new RawSession(id, handle, client);
  for (const [key, sigmaRaw] of [
    [alpha, 0.97],
    [beta, 0.8],
    [gamma, 0.8],
  ] as const) {
    await session.update('join', sign(session, 'join', { agentDid: key.did, sigmaRaw, actions: ACTIONS }, [key]));
  }
  await session.update('activate', sign(session, 'activate', {}, [creator]));
  return session;
}

/** A saga of one step, signed by its agent, waiting for approvals or a witness. */
async function waiting(session: RawSession, actionId: string, input: unknown = { amount: 100 }): Promise<StartedSaga> {
  const started: StartedSaga = await session.update(
    'startSaga',
    sign(session, 'startSaga', { steps: [{ actionId, agentDid: alpha.did, input, approvalDeadlineSeconds: 120 }] }, [
      alpha,
    ]),
  );
  await until(
    () => session.sagaState(started.sagaId),
    (s) => s.waiting?.stepId === 'step-1',
    'the saga to wait',
  );
  return started;
}

describe('adversarial: did:key sessions (issue 12)', function () {
  this.timeout(240_000);
  const touched: string[] = [];
  after(async () =>
    assert.deepEqual(
      await workflowTaskFailures(touched, { unhandledCommand: 'tally' }),
      [],
      "no workflow task failed (a signal racing continue-as-new is the server's benign UNHANDLED_COMMAND)",
    ),
  );

  it('a join, an approval and a witness — unsigned, signed by the wrong key, with a reused nonce or a stale issuedAt — are refused naming why, leaving no history', async () => {
    const session = await didKeySession();
    const ring1 = await waiting(session, 'wire-money');
    const ring0 = await waiting(session, 'reconfigure');
    touched.push(session.workflowId, ring1.workflowId, ring0.workflowId);
    const newcomer = generateDidKey();
    const requests: [string, Record<string, unknown>, DidKey][] = [
      ['join', { agentDid: newcomer.did, sigmaRaw: 0.8, actions: ACTIONS }, newcomer],
      [
        'approve',
        { sagaId: ring1.sagaId, stepId: 'step-1', digest: ring1.digests['step-1'], approverDid: beta.did },
        beta,
      ],
      [
        'witness',
        { sagaId: ring0.sagaId, stepId: 'step-1', digest: ring0.digests['step-1'], witnessDid: sre.did },
        sre,
      ],
    ];
    // A nonce each signer already used in an accepted request.
    const used = sign(session, 'checkAction', { agentDid: beta.did, actionId: 'draft' }, [beta]);
    await session.update('checkAction', used);
    const usedBySre = sign(session, 'slash', { agentDid: gamma.did, reason: 'test', witnessDid: sre.did, omega: 0.1 }, [
      sre,
    ]);
    await session.update('slash', usedBySre);
    const reused: Record<string, string | undefined> = { beta: used.auth[0]!.nonce, sre: usedBySre.auth[0]!.nonce };

    const m = await mark(session, [ring1.workflowId, ring0.workflowId]);
    for (const [update, request, key] of requests) {
      await refused(session.update(update, request), 'SIGNATURE_REQUIRED', key.did);
      await refused(
        session.update(update, sign(session, update, request, [key], { key: mallory })),
        'SIGNATURE_INVALID',
        key.did,
      );
      await refused(session.update(update, sign(session, update, request, [mallory])), 'WRONG_SIGNER', mallory.did);
      await refused(
        session.update(update, sign(session, update, request, [key], { issuedAt: Date.now() - 10 * 60_000 })),
        'ISSUED_AT_OUT_OF_WINDOW',
        key.did,
      );
      await refused(
        session.update(update, sign(session, update, request, [key], { issuedAt: Date.now() + 10 * 60_000 })),
        'ISSUED_AT_OUT_OF_WINDOW',
      );
      // Signed for another session, or as another update: the signature covers both.
      await refused(session.update(update, sign('another-session', update, request, [key])), 'SIGNATURE_INVALID');
      await refused(session.update(update, sign(session, 'reject', request, [key])), 'SIGNATURE_INVALID');
      const nonce = key === beta ? reused.beta : key === sre ? reused.sre : undefined;
      if (nonce)
        await refused(session.update(update, sign(session, update, request, [key], { nonce })), 'NONCE_REUSED', nonce);
    }
    // The newcomer's own replay: its first join is accepted later; a DID that is no did:key cannot join at all.
    await refused(
      session.update('join', { agentDid: 'did:mesh:alpha', sigmaRaw: 0.9, actions: ACTIONS }),
      'NOT_DID_KEY',
      'did:mesh:alpha',
    );
    // Huge or malformed signatures are refused by the schema, naming the field.
    const big = {
      ...requests[1]![1],
      auth: [{ signer: beta.did, nonce: 'n'.repeat(16), issuedAt: Date.now(), signature: 'f'.repeat(200_000) }],
    };
    await refused(session.update('approve', big), 'INVALID_INPUT', /auth\.0\.signature/);
    await expectNoTrace(m, {}, [mallory.did]);

    // Signed by the right keys, each is accepted; the same request again is a replay.
    const join = sign(session, 'join', requests[0]![1], [newcomer]);
    await session.update('join', join);
    await refused(session.update('join', join), 'NONCE_REUSED');
    const approval = sign(session, 'approve', requests[1]![1], [beta]);
    assert.equal((await session.update('approve', approval)).approvals, 1);
    await refused(session.update('approve', approval), 'NONCE_REUSED');
    await session.update('witness', sign(session, 'witness', requests[2]![1], [sre]));
    const trail = (await session.audit()).trail;
    const approvalDelta = trail.deltas.find((d) => d.changes.some((c) => c.path.endsWith(`/approvals/${beta.did}`)))!;
    assert.equal(approvalDelta.signatures?.[0]?.signer, beta.did);
    assert.deepEqual(
      (approvalDelta.signatures?.[0]?.payload?.request as { digest: string }).digest,
      ring1.digests['step-1'],
      'the trail keeps the signed receipt, bound to the digest',
    );
    assert.equal(verifyTrail(JSON.parse(JSON.stringify(trail))).ok, true);
  });

  it('an approval signed for step digest D does not count for a step whose input differs', async () => {
    const session = await didKeySession();
    // The step that runs moves a million; beta was shown, and signed for, a step that moves 100.
    const saga = await waiting(session, 'wire-money', { amount: 1_000_000 });
    touched.push(session.workflowId, saga.workflowId);
    const shown = sha256Hex(
      JSON.stringify({
        actionId: 'wire-money',
        agentDid: alpha.did,
        input: { amount: 100 },
        sagaId: saga.sagaId,
        sessionId: session.id,
        stepId: 'step-1',
      }),
    );
    assert.notEqual(shown, saga.digests['step-1']);
    const receipt = sign(
      session,
      'approve',
      { sagaId: saga.sagaId, stepId: 'step-1', digest: shown, approverDid: beta.did },
      [beta],
    );
    const m = await mark(session, [saga.workflowId]);
    await refused(session.update('approve', receipt), 'DIGEST_MISMATCH');
    // Pointing the signed receipt at the real digest breaks its signature.
    await refused(session.update('approve', { ...receipt, digest: saga.digests['step-1'] }), 'SIGNATURE_INVALID');
    await expectNoTrace(m);
    const grant = await session.query('stepGrant', {
      sagaId: saga.sagaId,
      stepId: 'step-1',
      digest: saga.digests['step-1'],
    });
    assert.deepEqual(grant.approvals, []);
    assert.equal((await session.sagaState(saga.sagaId)).saga.steps[0].state, 'pending');
  });

  it("a saga start is signed by every agent of its steps; SRE controls and the session's own controls by their keys", async () => {
    const session = await didKeySession();
    touched.push(session.workflowId);
    const steps = [
      { actionId: 'draft', agentDid: alpha.did },
      { actionId: 'draft', agentDid: beta.did },
    ];
    const m = await mark(session);
    // alpha cannot make beta act (and answer for it) by starting a saga in its name.
    await refused(
      session.update('startSaga', sign(session, 'startSaga', { steps }, [alpha])),
      'SIGNATURE_REQUIRED',
      beta.did,
    );
    await refused(
      session.update(
        'startSaga',
        sign(session, 'startSaga', { steps: [{ actionId: 'draft', agentDid: mallory.did }] }, [mallory]),
      ),
      'AGENT_NOT_FOUND',
      mallory.did,
    );
    await refused(
      session.update('slash', { agentDid: beta.did, reason: 'x', witnessDid: sre.did }),
      'SIGNATURE_REQUIRED',
      sre.did,
    );
    await refused(session.update('terminate'), 'SIGNATURE_REQUIRED', creator.did);
    await refused(session.update('terminate', sign(session, 'terminate', {}, [alpha])), 'WRONG_SIGNER');
    await refused(session.update('leave', sign(session, 'leave', { agentDid: beta.did }, [alpha])), 'WRONG_SIGNER');
    await refused(
      session.update('vfsWrite', { agentDid: beta.did, path: 'notes.txt', content: 'x' }),
      'SIGNATURE_REQUIRED',
    );
    await expectNoTrace(m);

    const started: StartedSaga = await session.update(
      'startSaga',
      sign(session, 'startSaga', { steps }, [alpha, beta]),
    );
    touched.push(started.workflowId);
    assert.equal((await sagaOutcome(session.saga(started.sagaId))).saga.state, 'completed');
    await session.update(
      'vfsWrite',
      sign(session, 'vfsWrite', { agentDid: beta.did, path: 'notes.txt', content: 'signed' }, [beta]),
    );
    // The answers of a did:key session hold to the contract too (its config, signed deltas not yet stored).
    SessionSummaryAnswer.parse(await session.summary());
    AuditHeadAnswer.parse(await session.query('auditHead'));
    const bond = await session.update(
      'vouch',
      sign(session, 'vouch', { voucher: beta.did, vouchee: gamma.did }, [beta]),
    );
    await refused(
      session.update('releaseBond', sign(session, 'releaseBond', { bondId: bond.bondId }, [gamma])),
      'WRONG_SIGNER',
      beta.did,
    );
    await session.update('releaseBond', sign(session, 'releaseBond', { bondId: bond.bondId }, [beta]));
    await session.update('terminate', sign(session, 'terminate', {}, [sre]));
    const { trail } = await session.audit();
    const signed = trail.deltas.filter((d) => d.signatures);
    assert.ok(
      signed.some((d) => d.changes.some((c) => c.path === `/sagas/${started.sagaId}`) && d.signatures!.length === 2),
      "the saga's delta keeps both agents' signatures",
    );
    assert.ok(
      signed.some((d) => d.changes.some((c) => c.path === '/state' && d.signatures![0]!.signer === sre.did)),
      "termination keeps the SRE's signature",
    );
    for (const d of trail.deltas)
      if (d.agentDid !== 'did:hv:hypervisor')
        assert.ok(
          d.signatures?.some((s) => s.signer === d.agentDid),
          `turn ${d.turn} is signed by its author`,
        );
    assert.equal(verifyTrail(JSON.parse(JSON.stringify(trail))).ok, true);
  });

  it("a session of 40 did:keys keeps running: the DIDs it indexes fit the server's search attribute limit", async () => {
    const { client, taskQueue } = await rawClient();
    const id = uid('didkey-many');
    const handle = await client.workflow.start('sessionWorkflow', {
      taskQueue,
      workflowId: sessionWorkflowId(id),
      args: [{ sessionId: id, creatorDid: creator.did, config: { identity: 'did:key', maxParticipants: 100 } }],
    });
    const session = new RawSession(id, handle, client);
    touched.push(session.workflowId);
    const keys = Array.from({ length: 40 }, () => generateDidKey());
    for (const k of keys) await session.update('join', sign(session, 'join', { agentDid: k.did, sigmaRaw: 0.5 }, [k]));
    const d = await handle.describe();
    assert.equal(d.status.name, 'RUNNING');
    const indexed = d.searchAttributes.HvAgentDids as string[];
    assert.ok(
      indexed.length > 0 && indexed.length < 40 && JSON.stringify(indexed).length <= 1900,
      `${indexed.length} DIDs indexed`,
    );
    assert.equal((await session.summary()).participants.length, 40);
  });

  it('the replay window crosses continue-as-new', async () => {
    const session = await didKeySession({ maxUpdatesPerRun: 10 });
    touched.push(session.workflowId);
    const first = sign(session, 'checkAction', { agentDid: beta.did, actionId: 'draft' }, [beta]);
    await session.update('checkAction', first);
    for (let i = 0; i < 8; i++)
      await session.update(
        'checkAction',
        sign(session, 'checkAction', { agentDid: gamma.did, actionId: 'draft' }, [gamma]),
      );
    await until(
      () => session.summary(),
      (s) => s.runs >= 2,
      'the session to continue as new',
    );
    await refused(session.update('checkAction', first), 'NONCE_REUSED');
  });
});
