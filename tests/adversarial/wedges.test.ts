/**
 * Attack 6: no input can wedge the system (SPEC §11.6). Ids that are names of
 * Object.prototype members, path tricks, huge requests and wrong types are
 * refused naming the field, or processed correctly — never a failed workflow
 * task, never shared worker state, never a later payload over the limits.
 */
import assert from 'node:assert/strict';
import { Client, Connection } from '@temporalio/client';
import { testEnv } from '../helpers/env';
import { HypervisorClient } from '../../src/client';
import { jsonSize } from '../../src/contract';
import { isHypervisorError } from '../../src/core/errors';
import {
  ACTIONS,
  ATTACKER,
  SRE,
  expectNoTrace,
  expectSoundAudit,
  freshSagaCompletes,
  mark,
  openSession,
  rawClient,
  refusal,
  refused,
  sagaOutcome,
  sessionWorkflowId,
  until,
  workflowTaskFailures,
} from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const MEMBER_NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];
const DIGEST = 'ab'.repeat(32);

async function typedClient(): Promise<HypervisorClient> {
  const { client, taskQueue } = await rawClient();
  return new HypervisorClient(client, taskQueue, (await testEnv()).store);
}

/** `send` through a connection of its own without the SDK's retries: each request goes to the server once. */
async function sentOnce<T>(send: (client: Client) => Promise<T>): Promise<T> {
  const { address, namespace } = await testEnv();
  const connection = await Connection.connect({ address, interceptors: [] });
  try {
    return await send(new Client({ connection, namespace }));
  } finally {
    await connection.close();
  }
}

/** A HypervisorError with this code from the typed client (thrown at once, or as a rejected promise). */
async function clientRefuses(call: () => Promise<unknown>, code: string, names?: RegExp): Promise<void> {
  let err: unknown;
  try {
    await call();
  } catch (e) {
    err = e;
  }
  assert.ok(isHypervisorError(err), `the typed client refused (got ${String(err)})`);
  assert.equal(err.code, code, err.message);
  if (names) assert.match(err.message, names);
}

describe('adversarial: wedges (SPEC §11.6)', function () {
  this.timeout(300_000);
  const touched: string[] = [];
  after(async () =>
    assert.deepEqual(
      await workflowTaskFailures(touched, { unhandledCommand: 'tally' }),
      [],
      "no workflow task failed (a signal racing continue-as-new is the server's benign UNHANDLED_COMMAND)",
    ),
  );

  it('6. approve / witness / reject / stepGrant naming sagas and steps constructor, __proto__, toString: refused by name, no history', async () => {
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    touched.push(session.workflowId, saga.workflowId);
    await until(
      () => session.sagaState(saga.sagaId),
      (s) => s.waiting !== null,
      'the saga to wait',
    );
    const m = await mark(session, [saga.workflowId]);
    for (const name of MEMBER_NAMES) {
      const bySaga = { sagaId: name, stepId: 'step-1', digest: DIGEST };
      const byStep = { sagaId: saga.sagaId, stepId: name, digest: DIGEST };
      await refused(session.update('approve', { ...bySaga, approverDid: beta }), 'SAGA_NOT_FOUND', name);
      await refused(session.update('reject', { ...bySaga, approverDid: beta, reason: 'x' }), 'SAGA_NOT_FOUND', name);
      await refused(session.asSre('witness', { ...bySaga, witnessDid: SRE }), 'SAGA_NOT_FOUND', name);
      await refused(session.update('approve', { ...byStep, approverDid: beta }), 'STEP_NOT_FOUND', name);
      await refused(session.update('reject', { ...byStep, approverDid: beta, reason: 'x' }), 'STEP_NOT_FOUND', name);
      await refused(session.asSre('witness', { ...byStep, witnessDid: SRE }), 'STEP_NOT_FOUND', name);
      for (const ref of [bySaga, byStep]) {
        const err = await session.query('stepGrant', ref).then(
          () => undefined,
          (e: Error) => e,
        );
        assert.ok(
          err instanceof Error && err.message.includes(name),
          `stepGrant ${JSON.stringify(ref)} is refused naming ${name}: ${String(err)}`,
        );
      }
      assert.equal(await session.query('participant', name), null);
    }
    await expectNoTrace(m);
    assert.equal((await session.sagaState(saga.sagaId)).saga.state, 'running');
  });

  it('6. sagas and steps with ids __proto__, constructor, toString, hasOwnProperty are processed correctly', async () => {
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    touched.push(session.workflowId);
    const ids: string[] = [];
    for (const sagaId of MEMBER_NAMES.slice(0, 4)) {
      const steps = [
        { stepId: '__proto__', actionId: 'draft', agentDid: beta },
        { stepId: 'constructor', actionId: 'publish', agentDid: beta },
        {
          stepId: sagaId === 'toString' ? 'hasOwnProperty' : 'toString',
          actionId: 'wire-money',
          agentDid: alpha,
          approvalDeadlineSeconds: 120,
        },
      ];
      const started = await session.startSaga({ sagaId, steps });
      assert.equal(started.sagaId, sagaId);
      assert.deepEqual(
        Object.keys(started.digests),
        steps.map((s) => s.stepId),
      );
      touched.push(started.workflowId);
      ids.push(sagaId);
      const last = steps[2]!.stepId;
      await until(
        () => session.sagaState(sagaId),
        (s) => s.waiting?.stepId === last,
        `saga ${sagaId} to wait at ${last}`,
      );
      for (const approverDid of [beta, gamma]) {
        const r = await session.update('approve', { sagaId, stepId: last, digest: started.digests[last], approverDid });
        assert.equal(r.sagaId, sagaId);
      }
      const snap = await sagaOutcome(session.saga(sagaId));
      assert.equal(snap.saga.state, 'completed', `${sagaId}: ${snap.error}`);
      assert.deepEqual(
        snap.saga.steps.map((s: { stepId: string; state: string }) => [s.stepId, s.state]),
        steps.map((s) => [s.stepId, 'committed']),
      );
      assert.ok(Object.hasOwn(snap.digests, '__proto__'), 'digests keep __proto__ as an own key');
      assert.ok(Object.hasOwn(snap.grants, last));
    }
    const records = await until(
      () => session.sagaRecords(),
      (r) => r.length === ids.length && r.every((g) => g.state === 'completed'),
      'the session to learn every outcome',
    );
    assert.deepEqual(records.map((r) => r.sagaId).sort(), [...ids].sort());
    await refused(
      session.startSaga({ sagaId: '__proto__', steps: [{ actionId: 'draft', agentDid: beta }] }),
      'DUPLICATE_SAGA',
      '__proto__',
    );
    const summary = await session.summary();
    assert.equal(summary.sagas.length, ids.length);
    await expectSoundAudit(session);
    await freshSagaCompletes();
  });

  it('6. a join declaring actions named constructor, toString, __proto__: σ_eff stays finite, the summary parses, sagas run, across continue-as-new', async () => {
    const session = await openSession({ [beta]: 0.8, [gamma]: 0.8 }, {}, { activate: false, maxUpdatesPerRun: 10 });
    touched.push(session.workflowId);
    const named = MEMBER_NAMES.map((actionId) => ({
      actionId,
      reversibility: 'FULL',
      executeApi: 'handler:test.step',
      undoApi: 'handler:test.step',
    }));
    const joined = await session.update('join', { agentDid: alpha, sigmaRaw: 0.85, actions: named });
    assert.ok(Number.isFinite(joined.sigmaEff), `σ_eff ${joined.sigmaEff}`);
    assert.equal(joined.ring, 2);
    // Another agent declaring the same names differently is refused (SPEC §11.8: the first declaration is fixed); the same declaration is fine.
    await refused(
      session.update('join', {
        agentDid: 'did:mesh:delta',
        sigmaRaw: 0.8,
        actions: MEMBER_NAMES.map((actionId) => ({
          actionId,
          reversibility: 'PARTIAL',
          executeApi: 'handler:test.step',
          undoApi: 'handler:test.step',
        })),
      }),
      'INVALID_INPUT',
      'first declaration of an action is fixed',
    );
    await session.update('join', { agentDid: 'did:mesh:delta', sigmaRaw: 0.8, actions: named });
    await session.update('activate');
    const check = await session.update('checkAction', { agentDid: alpha, actionId: 'constructor' });
    assert.ok(Number.isFinite(check.sigmaEff));
    for (let i = 0; i < 10; i++)
      await session.update('checkAction', { agentDid: beta, actionId: MEMBER_NAMES[i % MEMBER_NAMES.length] });
    const summary = await until(
      () => session.summary(),
      (s) => s.runs >= 2,
      'the session to continue as new',
    );
    const json = JSON.parse(JSON.stringify(summary));
    for (const p of json.participants)
      assert.ok(Number.isFinite(p.sigmaEff) && Number.isFinite(p.ring), JSON.stringify(p));
    const saga = await session.startSaga({ steps: MEMBER_NAMES.map((actionId) => ({ actionId, agentDid: alpha })) });
    touched.push(saga.workflowId);
    const snap = await sagaOutcome(session.saga(saga.sagaId));
    assert.equal(snap.saga.state, 'completed', snap.error);
    await expectSoundAudit(session);
    await freshSagaCompletes();
  });

  it('6. session ids ".", "..", ".x": refused by the client; started raw, the workflow fails cleanly with INVALID_INPUT', async () => {
    const hv = await typedClient();
    const { client, taskQueue } = await rawClient();
    for (const sessionId of ['.', '..', '.x', '', '../x', 'a/b']) {
      await clientRefuses(
        () => hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' }),
        'INVALID_INPUT',
        /sessionId/,
      );
      const workflowId = sessionWorkflowId(sessionId) + (sessionId === '' ? `-${process.pid}-${Date.now()}` : '');
      const handle = await client.workflow.start('sessionWorkflow', {
        taskQueue,
        workflowId,
        args: [{ sessionId, creatorDid: 'did:mesh:admin' }],
      });
      touched.push(workflowId);
      const failure = await refusal(handle.result());
      assert.equal(failure.type, 'INVALID_INPUT', failure.message);
      assert.match(failure.message, /sessionId/);
    }
  });

  it('6. a join declaring 70,000 actions: the typed client refuses it before sending (PAYLOAD_TOO_LARGE); raw, it is refused and leaves nothing', async () => {
    const session = await openSession({ [alpha]: 0.85 });
    touched.push(session.workflowId);
    // 3.2 MB: over the client's 1 MiB and the server's 2 MiB blob limit, under gRPC's 4 MiB message limit.
    const actions = Array.from({ length: 70_000 }, (_, i) => ({ actionId: `a-${i}`, reversibility: 'FULL' }));
    const req = { agentDid: ATTACKER, sigmaRaw: 1, actions };
    assert.ok(jsonSize(req) > 1024 * 1024);
    const m = await mark(session);
    const typed = (await typedClient()).session(session.id);
    await clientRefuses(() => typed.join(req as never), 'PAYLOAD_TOO_LARGE', /join/);
    await expectNoTrace(m);
    // Raw, past the client, sent once as an attacker's own gRPC client sends it (the SDK's default retry
    // interceptor would send it again for about 40 s on RESOURCE_EXHAUSTED, each time refused the same way).
    // Refused all the same, with no history and no failed task.
    const raw = await sentOnce((client) =>
      client.workflow.getHandle(session.workflowId).executeUpdate('join', { args: [req] }),
    ).then(
      () => 'accepted',
      (e: Error) => e,
    );
    assert.ok(raw instanceof Error, 'the raw 70,000-action join is refused');
    // Under the server's limits, the validator names the field.
    await refused(
      session.update('join', { ...req, actions: actions.slice(0, 10_000) }),
      'INVALID_INPUT',
      /actions: .*at most 32/,
    );
    await refused(session.update('join', { ...req, actions: actions.slice(0, 33) }), 'INVALID_INPUT', /actions/);
    await expectNoTrace(m);
    assert.equal(await session.participant(ATTACKER), null);
    const saga = await session.startSaga({ steps: [{ actionId: 'draft', agentDid: alpha }] });
    touched.push(saga.workflowId);
    assert.equal((await sagaOutcome(session.saga(saga.sagaId))).saga.state, 'completed');
  });

  it('6. a duplicate join, and activate / terminate with a garbage argument: refused, no history', async () => {
    const session = await openSession({ [alpha]: 0.85 });
    touched.push(session.workflowId);
    const m = await mark(session);
    await refused(session.update('join', { agentDid: alpha, sigmaRaw: 1, actions: ACTIONS }), 'DUPLICATE_AGENT', alpha);
    await refused(session.update('join', { agentDid: alpha, sigmaRaw: 0.1 }), 'DUPLICATE_AGENT', alpha);
    // As JSON arrives: "__proto__" is an own key.
    for (const garbage of [
      '{"x":1}',
      '"x"',
      '42',
      '[]',
      '[1]',
      '{"__proto__":{"state":"archived"}}',
      '{"constructor":{}}',
      '{"sessionId":"other"}',
      'true',
      '""',
    ]) {
      await refused(session.update('activate', JSON.parse(garbage)), 'INVALID_INPUT', /activate/);
      await refused(session.update('terminate', JSON.parse(garbage)), 'INVALID_INPUT', /terminate/);
    }
    await refused(session.update('activate'), 'INVALID_TRANSITION', /active/);
    await expectNoTrace(m);
    assert.equal((await session.summary()).state, 'active');
  });

  it('6. a 3 MB VFS write is refused by the typed client before sending; a 300 KB one by the validator naming content', async () => {
    const session = await openSession({ [alpha]: 0.85 });
    touched.push(session.workflowId);
    const m = await mark(session);
    const typed = (await typedClient()).session(session.id);
    await clientRefuses(
      () => typed.vfsWrite({ agentDid: alpha, path: 'big.txt', content: 'x'.repeat(3 * 1024 * 1024) }),
      'PAYLOAD_TOO_LARGE',
      /vfsWrite/,
    );
    await clientRefuses(
      () => typed.vfsWrite({ agentDid: alpha, path: 'big.txt', content: 'x'.repeat(300 * 1024) }),
      'INVALID_INPUT',
      /content/,
    );
    await refused(
      session.update('vfsWrite', { agentDid: alpha, path: 'big.txt', content: 'é'.repeat(300 * 1024) }),
      'INVALID_INPUT',
      /content/,
    );
    await expectNoTrace(m);
    const ok = await session.update('vfsWrite', { agentDid: alpha, path: 'small.txt', content: 'x'.repeat(1024) });
    assert.equal(ok.operation, 'add');
  });

  it('6. VFS requests refused for what the file table says (missing file or snapshot, a permission, the bounds) leave no history', async () => {
    const session = await openSession({ [alpha]: 0.85, [beta]: 0.8 });
    touched.push(session.workflowId);
    await session.update('vfsWrite', { agentDid: alpha, path: 'private.txt', content: 'mine' });
    await session.update('vfsSetPermissions', { agentDid: alpha, path: 'private.txt', allowedDids: [alpha] });
    await session.update('vfsSnapshot', { agentDid: alpha, snapshotId: 'snap-1' });
    const m = await mark(session);
    await refused(
      session.update('vfsDelete', { agentDid: alpha, path: 'missing.txt' }),
      'FILE_NOT_FOUND',
      /missing\.txt/,
    );
    await refused(
      session.update('vfsRestore', { agentDid: alpha, snapshotId: 'no-such-snapshot' }),
      'SNAPSHOT_NOT_FOUND',
      /no-such-snapshot/,
    );
    await refused(
      session.update('vfsWrite', { agentDid: beta, path: 'private.txt', content: 'theirs' }),
      'PERMISSION_DENIED',
      /may not write/,
    );
    await refused(
      session.update('vfsDelete', { agentDid: beta, path: 'private.txt' }),
      'PERMISSION_DENIED',
      /may not delete/,
    );
    await refused(
      session.update('vfsSnapshot', { agentDid: alpha, snapshotId: 'snap-1' }),
      'INVALID_INPUT',
      /already exists/,
    );
    await refused(
      session.update('vfsWrite', { agentDid: alpha, path: 'lone.txt', content: 'a\ud800b' }),
      'INVALID_INPUT',
      /unpaired surrogate/,
    );
    await refused(
      session.update('vfsWrite', { agentDid: alpha, path: 'big.txt', content: 'é'.repeat(140 * 1024) }),
      'PAYLOAD_TOO_LARGE',
      /at most 262144 bytes/,
    );
    await expectNoTrace(m);
    // What was refused changed nothing: the owner still reads its file, from the audit store.
    const typed = (await typedClient()).session(session.id);
    assert.equal(await typed.vfsFile('private.txt', alpha), 'mine');
    await clientRefuses(() => typed.vfsFile('private.txt', beta), 'PERMISSION_DENIED', /may not read/);
  });

  it('6. checkAction by a non-participant records nothing (no delta attributed to it)', async () => {
    const session = await openSession({ [alpha]: 0.85 });
    touched.push(session.workflowId);
    const m = await mark(session);
    const answer = await session.update('checkAction', { agentDid: ATTACKER, actionId: 'draft' }).then(
      (d) => d,
      (e: Error) => e,
    );
    if (!(answer instanceof Error)) assert.equal(answer.allowed, false);
    await expectNoTrace(m);
  });

  it('afterwards the same worker runs a fresh saga to completion', async () => {
    await freshSagaCompletes();
  });
});
