/**
 * N25 (issue 24), the cheap half on a real server: a request's id is its
 * Temporal update id, and a resend with that id gets the first answer — in
 * the same run (Temporal's own dedupe) and after the session continued as new
 * (the session remembers the last requests it applied). The id names one
 * request: the same id with another argument is refused. The server-restart
 * half is tests/durability/n25-resend-after-outage.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { generateDidKey } from '../../src/core/identity';
import { KeyRing, signRequest } from '../../src/client/keys';
import {
  ACTIONS,
  expectSoundAudit,
  handlerCalls,
  openSession,
  rawClient,
  RawSession,
  refused,
  sessionWorkflowId,
  uid,
  until,
  workflowTaskFailures,
} from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

async function runIdOf(session: RawSession): Promise<string> {
  return (await session.handle.describe()).runId;
}

/** Sends harmless updates (each a new request) until the session has continued as new at least once since `runId`. */
async function continueAsNew(session: RawSession, runId: string, request: () => unknown): Promise<void> {
  for (let i = 0; i < 20 && (await runIdOf(session)) === runId; i++) {
    await session.update('checkAction', request()).catch(() => undefined);
  }
  await until(
    () => runIdOf(session),
    (r) => r !== runId,
    'the session to continue as new',
  );
}

describe('N25 — a resent request with its request id gets the first answer', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () =>
    assert.deepEqual(
      await workflowTaskFailures(touched, { unhandledCommand: 'tally' }),
      [],
      "no workflow task failed (a signal racing continue-as-new is the server's benign UNHANDLED_COMMAND)",
    ),
  );

  it('N25: a startSaga resent with its update id, in the same run and after continue-as-new, returns the first saga; its step acts once', async () => {
    const session = await openSession({ [alpha]: 0.85, [beta]: 0.8 }, {}, { maxUpdatesPerRun: 10 });
    touched.push(session.workflowId);
    const runBefore = await runIdOf(session);
    const req = {
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: beta },
      ],
    };
    const requestId = `n25-${randomUUID()}`;
    const first = await session.updateWithId('startSaga', requestId, req);
    touched.push(first.workflowId);
    const again = await session.updateWithId('startSaga', requestId, req);
    assert.deepEqual(again, first, 'the same run: the first answer');

    await continueAsNew(session, runBefore, () => ({ agentDid: alpha, actionId: 'draft' }));
    // The id names one request: in a run that has not seen it, the session refuses another argument under it.
    const other = { steps: [{ actionId: 'draft', agentDid: beta }] };
    await refused(session.updateWithId('startSaga', requestId, other), 'REQUEST_ID_REUSED', requestId);
    await refused(
      session.updateWithId('checkAction', requestId, { agentDid: alpha, actionId: 'draft' }),
      'REQUEST_ID_REUSED',
    );
    const afterCan = await session.updateWithId('startSaga', requestId, req);
    assert.deepEqual(afterCan, first, 'after continue-as-new: the first answer (same saga id, run id and digests)');
    // Once this run accepted it, Temporal answers the id itself, whatever is sent under it: still the first answer.
    assert.deepEqual(await session.updateWithId('startSaga', requestId, other), first);

    // A new id is a new request: a second saga.
    const second = await session.updateWithId('startSaga', `n25-${randomUUID()}`, req);
    touched.push(second.workflowId);
    assert.notEqual(second.sagaId, first.sagaId);

    for (const saga of [first, second]) await session.sagaResult(saga.sagaId);
    const records = await until(
      () => session.sagaRecords(),
      (r) => r.every((s) => s.state !== 'running'),
      'the session to learn the outcomes',
    );
    assert.deepEqual(
      records.map((s) => s.sagaId).sort(),
      [first.sagaId, second.sagaId].sort(),
      'exactly one saga per request',
    );
    for (const saga of [first, second]) {
      assert.deepEqual(handlerCalls(saga.workflowId).sort(), ['step-1', 'step-2'], 'each step acted once');
    }
    const starts = (await session.audit()).trail.deltas
      .flatMap((d) => d.changes)
      .filter((c) => /^\/sagas\/[^/]+$/.test(c.path));
    assert.equal(starts.length, 2, 'two saga starts recorded, one per request');
    await expectSoundAudit(session);
  });

  it('N25: a signed request (did:key) resent after continue-as-new, as sent or signed again, gets its first answer, not NONCE_REUSED', async () => {
    const a = generateDidKey();
    const b = generateDidKey();
    const creator = generateDidKey();
    const ring = new KeyRing([a, b, creator]);
    const { client, taskQueue } = await rawClient();
    const id = uid('n25');
    const handle = await client.workflow.start('sessionWorkflow', {
      taskQueue,
      workflowId: sessionWorkflowId(id),
      args: [{ sessionId: id, creatorDid: creator.did, config: { identity: 'did:key' }, maxUpdatesPerRun: 10 }],
    });
    const session = new RawSession(id, handle, client);
    touched.push(session.workflowId);
    for (const k of [a, b])
      await session.update(
        'join',
        signRequest(ring, 'join', session.id, { agentDid: k.did, sigmaRaw: 0.85, actions: ACTIONS }),
      );
    await session.update('activate', signRequest(ring, 'activate', session.id, undefined, creator.did));
    const runBefore = await runIdOf(session);
    const signed = signRequest(ring, 'startSaga', session.id, { steps: [{ actionId: 'draft', agentDid: a.did }] });
    const requestId = `n25-signed-${randomUUID()}`;
    const first = await session.updateWithId('startSaga', requestId, signed);
    touched.push(first.workflowId);
    // A request the validator refused leaves nothing: its resend is decided afresh (here: refused the same way).
    const dupId = `n25-dup-${randomUUID()}`;
    const dup = signRequest(ring, 'startSaga', session.id, {
      sagaId: first.sagaId,
      steps: [{ actionId: 'draft', agentDid: a.did }],
    });
    await refused(session.updateWithId('startSaga', dupId, dup), 'DUPLICATE_SAGA');

    await continueAsNew(session, runBefore, () =>
      signRequest(ring, 'checkAction', session.id, { agentDid: a.did, actionId: 'draft' }),
    );
    await refused(session.updateWithId('startSaga', dupId, dup), 'DUPLICATE_SAGA');
    // Signed again (a new process sending the same request: new nonces), it is the same request: the first answer.
    const resigned = signRequest(ring, 'startSaga', session.id, { steps: [{ actionId: 'draft', agentDid: a.did }] });
    assert.deepEqual(
      await session.updateWithId('startSaga', requestId, resigned),
      first,
      'the first answer, signed again',
    );
    assert.deepEqual(
      await session.updateWithId('startSaga', requestId, signed),
      first,
      'the first answer, with the same signatures',
    );
    // Without its id the same signed request is a new request: its nonce is spent.
    await refused(session.update('startSaga', signed), 'NONCE_REUSED');
    await session.sagaResult(first.sagaId);
    await until(
      () => session.sagaRecords(),
      (r) => r.every((s) => s.state !== 'running'),
      'the session to learn the outcome',
    );
    assert.deepEqual(
      (await session.sagaRecords()).map((s) => s.sagaId),
      [first.sagaId],
    );
    assert.deepEqual(handlerCalls(first.workflowId), ['step-1']);
  });
});
