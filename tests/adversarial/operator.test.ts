/**
 * Issue 22, SPEC §14: operator recovery and fork, on a real server — attacks first.
 *
 * A saga under `onFailure: {"await-operator": …}` whose step fails waits for an SRE of its session: visible
 * in `hv approvals list` (HvPendingApprovals) within 2 s; a decision that is unsigned, not an SRE's, for a
 * saga or step not awaiting, a skip of an action not declared skippable, or a replay is refused and leaves
 * no trace; the SRE's signed retry (after the tool is fixed) completes the saga with one effect per
 * idempotency key (the retry is a new round of the key); a skip goes on; the deadline compensates. A fork
 * of a compensated saga from step 3 runs steps 3…n as a new saga linked in both records and the trail; a fork
 * of a running or completed saga, or of steps that are not the original's, is refused.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateDidKey, payloadJson, signPayloadHash, type DidKey } from '../../src/core/identity';
import { sha256Hex } from '../../src/core/hash';
import { HypervisorClient } from '../../src/client';
import { allowTestToolOrigin, testEnv } from '../helpers/env';
import {
  ACTIONS,
  SRE,
  expectNoTrace,
  expectSoundAudit,
  mark,
  openSession,
  refused,
  until,
  workflowTaskFailures,
} from './raw';
import { bySre } from '../helpers/sre';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KeyRing, writeNewKeyFile } from '../../src/client/keys';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { ACTIONS as CLIENT_ACTIONS } from '../helpers/sessions';
import { RawSession, rawClient, uid } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

/** An HTTP tool that fails (503, no effect) while broken, and counts its effects by idempotency key. */
async function flakyTool() {
  const effects = new Map<string, number>();
  const undos = new Map<string, number>();
  const state = { broken: true };
  const server = http.createServer((req, res) => {
    const key = String(req.headers['idempotency-key'] ?? '');
    req.resume();
    req.on('end', () => {
      if (req.url === '/undo') {
        undos.set(key, (undos.get(key) ?? 0) + 1);
        return res.writeHead(200, { 'content-type': 'application/json' }).end('{"undone":true}');
      }
      if (state.broken) return res.writeHead(503).end('down');
      // An idempotent tool: a key it has seen acts no more.
      if (!effects.has(key)) effects.set(key, 1);
      else effects.set(key, effects.get(key)! + 0);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ key }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  allowTestToolOrigin(base);
  return {
    base,
    state,
    effects,
    undos,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

type Tool = Awaited<ReturnType<typeof flakyTool>>;
const toolActions = (tool: Tool) => [
  ...ACTIONS,
  { actionId: 'call-tool', reversibility: 'FULL', executeApi: `${tool.base}/act`, undoApi: `${tool.base}/undo` },
  {
    actionId: 'notify',
    reversibility: 'FULL',
    executeApi: `${tool.base}/act`,
    undoApi: `${tool.base}/undo`,
    skippable: true,
  },
];

async function toolSession(tool: Tool): Promise<RawSession> {
  const actions = toolActions(tool);
  return openSession(
    { [alpha]: { sigma: 0.9, actions }, [beta]: { sigma: 0.85, actions } },
    { allowedToolOrigins: [tool.base] },
  );
}

const awaitOperator = (deadlineSeconds = 120) => ({ 'await-operator': { deadlineSeconds } });

async function awaiting(session: RawSession, sagaId: string, stepId: string) {
  const snap = await until(
    () => session.sagaState(sagaId),
    (s) => s.awaitingOperator?.stepId === stepId,
    `saga ${sagaId} to await its operator at ${stepId}`,
  );
  await until(
    () => session.sagaRecords(),
    (rs) => rs.find((r) => r.sagaId === sagaId)?.awaiting?.stepId === stepId,
    'the session to learn that the saga awaits',
  );
  return snap;
}

let nonces = 0;
function signedAs(session: RawSession, update: string, request: Record<string, unknown>, key: DidKey) {
  const nonce = `operator-test-${process.pid}-${++nonces}-xxxxxxxx`;
  const issuedAt = Date.now();
  const payloadHash = sha256Hex(payloadJson({ update, sessionId: session.id, request, nonce, issuedAt }));
  return {
    ...request,
    auth: [{ signer: key.did, nonce, issuedAt, signature: signPayloadHash(key.secretKey, payloadHash) }],
  };
}

describe('operator recovery and fork (issue 22, SPEC §14)', function () {
  this.timeout(240_000);
  const touched: string[] = [];
  const tools: Tool[] = [];
  after(async () => {
    for (const t of tools) await t.close();
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  it("await-operator: a failing step waits, listed in `hv approvals list` within 2 s; unsigned, non-SRE, wrong-saga, wrong-step, not-skippable and replayed decisions are refused with no trace; the SRE's retry after the fix completes the saga with one effect per key", async () => {
    const tool = await flakyTool();
    tools.push(tool);
    const session = await toolSession(tool);
    touched.push(session.workflowId);
    const saga = await session.startSaga({
      sagaId: 'with-operator',
      onFailure: awaitOperator(),
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'call-tool', agentDid: alpha, input: { n: 1 } },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    touched.push(saga.workflowId);
    // Visible where approvals are, polled from the start: the typed client's listApprovals is `hv approvals list`.
    const env = await testEnv();
    const hv = new HypervisorClient(env.client, env.taskQueue, env.store);
    const rows = await until(
      () => hv.listApprovals({ sessionId: session.id }),
      (r) => r.some((x) => x.sagaId === saga.sagaId && x.waitFor === 'operator'),
      'the awaiting saga in hv approvals list',
    );
    const seen = Date.now();
    const row = rows.find((x) => x.sagaId === saga.sagaId)!;
    assert.equal(row.stepId, 'step-2');
    const snap = await awaiting(session, saga.sagaId, 'step-2');
    assert.equal(row.since, snap.awaitingOperator.since);
    assert.ok(seen - snap.awaitingOperator.since <= 2_000, `listed within 2 s of the wait (${seen - row.since} ms)`);
    assert.equal(snap.saga.steps[1].state, 'failed');
    assert.equal(snap.saga.state, 'running', 'it waits instead of compensating');

    // A saga that does not await (running at its gate, or completed) and a step that does not.
    const other = await session.startSaga({ sagaId: 'done', steps: [{ actionId: 'draft', agentDid: beta }] });
    touched.push(other.workflowId);
    await until(
      () => session.sagaRecords(),
      (rs) => rs.find((r) => r.sagaId === 'done')?.state === 'completed',
      'saga done to complete',
    );

    const outsider = generateDidKey();
    const m = await mark(session, [saga.workflowId]);
    const retry = { sagaId: saga.sagaId, decision: 'retry', sreDid: SRE };
    await refused(session.update('decideSaga', retry), 'SIGNATURE_REQUIRED', SRE);
    await refused(
      session.update('decideSaga', signedAs(session, 'decideSaga', { ...retry, sreDid: outsider.did }, outsider)),
      'NOT_SRE_WITNESS',
      outsider.did,
    );
    await refused(session.asSre('decideSaga', { ...retry, sagaId: 'done' }), 'NOT_AWAITING_OPERATOR', 'done');
    await refused(session.asSre('decideSaga', { ...retry, sagaId: 'no-such' }), 'SAGA_NOT_FOUND');
    await refused(session.asSre('decideSaga', { ...retry, stepId: 'step-1' }), 'NOT_AWAITING_OPERATOR', 'step-2');
    await refused(session.asSre('decideSaga', { ...retry, decision: 'skip' }), 'NOT_SKIPPABLE', 'call-tool');
    await expectNoTrace(m, {}, [outsider.did]);
    assert.equal((await session.sagaState(saga.sagaId)).awaitingOperator.stepId, 'step-2', 'still awaiting');

    // The tool is fixed; the SRE retries. Its signed request sent again is refused: it acts once.
    tool.state.broken = false;
    const signed = bySre('decideSaga', session.id, { ...retry, stepId: 'step-2', reason: 'tool fixed' });
    const decided = await session.update('decideSaga', signed);
    assert.deepEqual(decided, { sagaId: saga.sagaId, stepId: 'step-2', round: 1, decision: 'retry', by: SRE });
    await refused(session.update('decideSaga', signed), 'NONCE_REUSED');
    // A second decision, freshly signed: the wait ended with the first.
    await refused(session.asSre('decideSaga', { ...retry, decision: 'compensate' }), 'NOT_AWAITING_OPERATOR');

    const done = await session.sagaResult(saga.sagaId);
    assert.equal(done.saga.state, 'completed');
    const step2 = done.saga.steps[1];
    assert.equal(step2.state, 'committed');
    assert.equal(step2.round, 2);
    // One effect per key, and the retry's key is a new round of the step's.
    const keys = [...tool.effects.keys()];
    assert.deepEqual(keys, [`${saga.workflowId}/step-2/execute/2`]);
    assert.deepEqual([...tool.effects.values()], [1]);
    assert.equal(tool.undos.size, 0);

    // Audited: a delta by the SRE naming the saga, the step and the decision.
    const trail = await expectSoundAudit(session, [outsider.did]);
    const delta = trail.deltas.find((d) =>
      d.changes.some((c) => c.path === `/sagas/${saga.sagaId}/steps/step-2/operator`),
    );
    assert.ok(delta, 'the decision is in the trail');
    assert.equal(delta.agentDid, SRE);
    const after = await hv.listApprovals({ sessionId: session.id });
    assert.equal(after.filter((r) => r.sagaId === saga.sagaId).length, 0, 'no longer listed');
  });

  it('await-operator: skip continues past a skippable step; the deadline compensates', async () => {
    const tool = await flakyTool();
    tools.push(tool);
    const session = await toolSession(tool);
    touched.push(session.workflowId);
    const skipping = await session.startSaga({
      sagaId: 'skipping',
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'notify', agentDid: alpha, onFailure: awaitOperator() },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    touched.push(skipping.workflowId);
    await awaiting(session, 'skipping', 'step-2');
    await session.asSre('decideSaga', { sagaId: 'skipping', decision: 'skip', sreDid: SRE });
    const skipped = await session.sagaResult('skipping');
    assert.equal(skipped.saga.state, 'completed');
    assert.deepEqual(
      skipped.saga.steps.map((s: { state: string }) => s.state),
      ['committed', 'skipped', 'committed'],
    );

    const late = await session.startSaga({
      sagaId: 'late',
      onFailure: awaitOperator(2),
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'call-tool', agentDid: alpha },
      ],
    });
    touched.push(late.workflowId);
    const ended = await session.sagaResult('late');
    assert.equal(ended.saga.state, 'compensated');
    assert.match(ended.error, /no operator decided within 2 s/);
    assert.deepEqual(ended.compensationOrder, ['step-2', 'step-1']);
    await refused(
      session.asSre('decideSaga', { sagaId: 'late', decision: 'retry', sreDid: SRE }),
      'NOT_AWAITING_OPERATOR',
    );
  });

  it('a retry that fails again awaits again, in the next round; compensated then, each round of the step that may have acted is undone under its own key, latest first', async () => {
    const tool = await flakyTool();
    tools.push(tool);
    const session = await toolSession(tool);
    touched.push(session.workflowId);
    const saga = await session.startSaga({
      sagaId: 'twice',
      onFailure: awaitOperator(),
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'call-tool', agentDid: alpha },
      ],
    });
    touched.push(saga.workflowId);
    await awaiting(session, 'twice', 'step-2');
    const first = await session.asSre('decideSaga', { sagaId: 'twice', decision: 'retry', sreDid: SRE });
    assert.equal(first.round, 1);
    // Still broken: round 2 fails and waits again.
    const again = await until(
      () => session.sagaState('twice'),
      (s) => s.awaitingOperator?.round === 2,
      'the saga to await its operator in round 2',
    );
    assert.equal(again.saga.steps[1].round, 2);
    await until(
      () => session.sagaRecords(),
      (rs) => rs.find((r) => r.sagaId === 'twice')?.awaiting?.round === 2,
      'the session to learn round 2',
    );
    const second = await session.asSre('decideSaga', {
      sagaId: 'twice',
      stepId: 'step-2',
      decision: 'compensate',
      sreDid: SRE,
    });
    assert.equal(second.round, 2);
    const ended = await session.sagaResult('twice');
    assert.equal(ended.saga.state, 'compensated');
    assert.match(ended.error, new RegExp(`operator ${SRE} decided to compensate`));
    assert.deepEqual(ended.compensationOrder, ['step-2', 'step-1']);
    // A 503 may have acted, in either round: step-2 is undone under each round's key, the last first; nothing acted.
    assert.deepEqual([...tool.undos.keys()], [`${saga.workflowId}/step-2/undo/2`, `${saga.workflowId}/step-2/undo`]);
    assert.equal(tool.effects.size, 0);
    const trail = await expectSoundAudit(session);
    assert.equal(
      trail.deltas.filter((d) => d.changes.some((c) => c.path === '/sagas/twice/steps/step-2/operator')).length,
      2,
    );
  });

  it('a session that continues as new while its saga awaits carries the wait: the SRE decides in the new run and the saga completes', async () => {
    const tool = await flakyTool();
    tools.push(tool);
    const actions = toolActions(tool);
    const session = await openSession(
      { [alpha]: { sigma: 0.9, actions } },
      { allowedToolOrigins: [tool.base] },
      { maxUpdatesPerRun: 10 },
    );
    touched.push(session.workflowId);
    const saga = await session.startSaga({
      sagaId: 'across',
      onFailure: awaitOperator(),
      steps: [{ actionId: 'call-tool', agentDid: alpha }],
    });
    touched.push(saga.workflowId);
    await awaiting(session, 'across', 'step-1');
    const firstRun = (await session.handle.describe()).runId;
    for (let i = 0; (await session.handle.describe()).runId === firstRun; i++) {
      assert.ok(i < 20, 'the session continued as new');
      await session
        .update('checkAction', { agentDid: alpha, actionId: 'draft' })
        .catch((e: Error) => assert.match(e.message, /closing workflow/));
    }
    const carried = await until(
      () => session.sagaRecords(),
      (rs) => rs.length > 0,
      'the new run to answer',
    );
    assert.equal(carried.find((r) => r.sagaId === 'across')?.awaiting?.stepId, 'step-1', 'the wait is carried');
    tool.state.broken = false;
    await session.asSre('decideSaga', { sagaId: 'across', decision: 'retry', sreDid: SRE });
    const done = await session.sagaResult('across');
    assert.equal(done.saga.state, 'completed');
    assert.deepEqual([...tool.effects.keys()], [`${saga.workflowId}/step-1/execute/2`]);
    await until(
      () => session.sagaRecords(),
      (rs) => rs.find((r) => r.sagaId === 'across')?.state === 'completed',
      'the new run to learn the outcome',
    );
  });

  it("fork: refused for a running or completed saga and for steps that are not the original's; from step 3 of a compensated saga it runs steps 3…n as a new saga linked in both records and the trail", async () => {
    const tool = await flakyTool();
    tools.push(tool);
    const session = await toolSession(tool);
    touched.push(session.workflowId);
    const steps = [
      { stepId: 'step-1', actionId: 'draft', agentDid: alpha },
      { stepId: 'step-2', actionId: 'publish', agentDid: alpha },
      { stepId: 'step-3', actionId: 'call-tool', agentDid: alpha, input: { to: 'x' } },
      { stepId: 'step-4', actionId: 'publish', agentDid: beta },
    ];
    const original = await session.startSaga({ sagaId: 'original', steps });
    touched.push(original.workflowId);
    assert.equal((await session.sagaResult('original')).saga.state, 'compensated');
    const waiting = await session.startSaga({ sagaId: 'still-running', onFailure: awaitOperator(), steps });
    touched.push(waiting.workflowId);
    await awaiting(session, 'still-running', 'step-3');
    const completed = await session.startSaga({ sagaId: 'completed', steps: [steps[0]!] });
    touched.push(completed.workflowId);
    await session.sagaResult('completed');
    await until(
      () => session.sagaRecords(),
      (rs) =>
        rs.find((r) => r.sagaId === 'completed')?.state === 'completed' &&
        rs.find((r) => r.sagaId === 'original')?.state === 'compensated',
      'both outcomes recorded (the session forks on what it has learned)',
    );

    const fork = (over: Record<string, unknown>) => ({
      sagaId: 'original',
      fromStepId: 'step-3',
      steps: steps.slice(2),
      ...over,
    });
    const m = await mark(session, [original.workflowId]);
    await refused(session.update('forkSaga', fork({ sagaId: 'still-running' })), 'NOT_FORKABLE', 'running');
    await refused(
      session.update('forkSaga', fork({ sagaId: 'completed', fromStepId: 'step-1', steps: [steps[0]] })),
      'NOT_FORKABLE',
      'completed',
    );
    // An outsider's steps in the original's name: another agent, another input, a step left out.
    const mallory = 'did:mesh:mallory';
    await refused(
      session.update('forkSaga', fork({ steps: [steps[2], { ...steps[3]!, agentDid: mallory }] })),
      'NOT_FORKABLE',
      'step-4',
    );
    await refused(
      session.update('forkSaga', fork({ steps: [{ ...steps[2]!, input: { to: 'mallory' } }, steps[3]] })),
      'NOT_FORKABLE',
      'step-3',
    );
    await refused(session.update('forkSaga', fork({ steps: [steps[2]] })), 'NOT_FORKABLE', 'step-3');
    await expectNoTrace(m);

    tool.state.broken = false;
    const env = await testEnv();
    const hv = new HypervisorClient(env.client, env.taskQueue, env.store).session(session.id);
    const forked = await hv.forkSaga({ sagaId: 'original', fromStepId: 'step-3', newSagaId: 'forked' });
    touched.push(forked.handle.workflowId);
    assert.deepEqual(forked.forkedFrom, { sagaId: 'original', stepId: 'step-3' });
    const result = await forked.result();
    assert.equal(result.saga.state, 'completed');
    assert.deepEqual(
      result.saga.steps.map((s) => s.stepId),
      ['step-3', 'step-4'],
    );
    assert.deepEqual(result.forkedFrom, { sagaId: 'original', stepId: 'step-3' });
    assert.notEqual(result.digests['step-3'], original.digests['step-3'], 'new digests');
    assert.deepEqual([...tool.effects.keys()], [`${forked.handle.workflowId}/step-3/execute`]);

    const records = await until(
      () => session.sagaRecords(),
      (rs) => rs.find((r) => r.sagaId === 'forked')?.state === 'completed',
      'the fork recorded',
    );
    assert.deepEqual(records.find((r) => r.sagaId === 'forked').forkedFrom, { sagaId: 'original', stepId: 'step-3' });
    assert.deepEqual(records.find((r) => r.sagaId === 'original').forks, ['forked']);
    const trail = await expectSoundAudit(session);
    assert.ok(trail.deltas.some((d) => d.changes.some((c) => c.path === '/sagas/original/forks')));
    assert.ok(trail.deltas.some((d) => d.changes.some((c) => c.path === '/sagas/forked')));
  });

  it("in a did:key session: an operator's decision signed by an agent, and a fork unsigned, signed by an outsider or by only some of its steps' agents, are refused with no trace; signed by every agent of its steps it starts", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-operator-'));
    const names = ['creator', 'sre', 'alpha', 'beta', 'outsider'] as const;
    const did = Object.fromEntries(names.map((n) => [n, writeNewKeyFile(path.join(dir, `${n}.key`)).did])) as Record<
      (typeof names)[number],
      string
    >;
    const env = await testEnv();
    const as = (...keys: (typeof names)[number][]) =>
      new HypervisorClient(
        env.client,
        env.taskQueue,
        env.store,
        KeyRing.fromFiles(keys.map((k) => path.join(dir, `${k}.key`))),
      );
    const refusedAs = (p: Promise<unknown>, code: ErrorCode) =>
      assert.rejects(p, (e) => isHypervisorError(e, code) || assert.fail(`expected ${code}, got ${String(e)}`));
    const id = uid('op-didkey');
    await as('creator').createSession({
      sessionId: id,
      creatorDid: did.creator,
      config: { identity: 'did:key', sreWitnesses: [did.sre] },
    });
    await as('alpha').session(id).join({ agentDid: did.alpha, sigmaRaw: 0.9, actions: CLIENT_ACTIONS });
    await as('beta').session(id).join({ agentDid: did.beta, sigmaRaw: 0.85, actions: CLIENT_ACTIONS });
    await as('creator').session(id).activate();
    const { client } = await rawClient();
    const raw = new RawSession(id, client.workflow.getHandle(`hv-session-${id}`), client);
    touched.push(raw.workflowId);
    const agents = as('alpha', 'beta').session(id);
    const saga = await agents.startSaga({
      sagaId: 'd1',
      onFailure: awaitOperator(),
      steps: [
        { actionId: 'draft', agentDid: did.alpha },
        { actionId: 'publish', agentDid: did.alpha, input: { failAttempts: -1 } },
        { actionId: 'draft', agentDid: did.beta },
      ],
    });
    touched.push(saga.handle.workflowId);
    await awaiting(raw, 'd1', 'step-2');

    const m = await mark(raw, [saga.handle.workflowId]);
    await refusedAs(
      as('alpha').session(id).decideSaga({ sagaId: 'd1', decision: 'retry', sreDid: did.alpha }),
      'NOT_SRE_WITNESS',
    );
    await refusedAs(
      as('outsider').session(id).decideSaga({ sagaId: 'd1', decision: 'retry', sreDid: did.sre }),
      'SIGNATURE_REQUIRED',
    );
    await expectNoTrace(m, {}, [did.outsider]);

    await as('sre').session(id).decideSaga({ sagaId: 'd1', decision: 'compensate', sreDid: did.sre });
    assert.equal((await saga.result()).saga.state, 'compensated');
    await until(
      () => raw.sagaRecords(),
      (rs) => rs.find((r) => r.sagaId === 'd1')?.state === 'compensated',
      'the outcome recorded',
    );

    const m2 = await mark(raw, [saga.handle.workflowId]);
    const fork = { sagaId: 'd1', fromStepId: 'step-2', newSagaId: 'd2' };
    await refusedAs(as('outsider').session(id).forkSaga(fork), 'SIGNATURE_REQUIRED');
    await refusedAs(as('alpha').session(id).forkSaga(fork), 'SIGNATURE_REQUIRED');
    await expectNoTrace(m2, {}, [did.outsider]);
    const forked = await agents.forkSaga(fork);
    touched.push(forked.handle.workflowId);
    const result = await forked.result();
    assert.deepEqual(
      result.saga.steps.map((s) => s.stepId),
      ['step-2', 'step-3'],
    );
    assert.deepEqual(result.forkedFrom, { sagaId: 'd1', stepId: 'step-2' });
  });
});
