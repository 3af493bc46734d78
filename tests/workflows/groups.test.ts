/**
 * Parallel groups (issue 22, SPEC §14) on a real server: branches gated each
 * on its own and run concurrently; the group resolves as soon as its policy is
 * decided, cancelling what no longer matters (through the step's heartbeats)
 * and undoing what may have acted; a group that cannot meet its policy fails
 * the saga, which walks back through the group in reverse of its branches'
 * ending, then the earlier steps. An HTTP tool that honours Idempotency-Key
 * counts one effect per key.
 */
import assert from 'node:assert/strict';
import { IdempotentTool } from '../durability/harness';
import { allowTestToolOrigin } from '../helpers/env';
import { calls } from '../helpers/testHandlers';
import {
  ACTIONS,
  EventType,
  SRE,
  expectSoundAudit,
  handlerCalls,
  history,
  openSession,
  rawClient,
  refused,
  until,
  workflowTaskFailures,
  type RawSession,
} from '../adversarial/raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

describe('parallel groups: policies, cancellation, compensation', function () {
  this.timeout(240_000);
  const tool = new IdempotentTool();
  const touched: string[] = [];
  before(async () => {
    await tool.start();
    allowTestToolOrigin(tool.base);
  });
  after(async () => {
    await tool.stop();
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  /** A session whose agents declare `notify` (the HTTP tool) besides the test actions. */
  const open = async (agents: Record<string, number> = { [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8 }) => {
    const notify = {
      actionId: 'notify',
      reversibility: 'FULL',
      executeApi: tool.endpoint('execute'),
      undoApi: tool.endpoint('undo'),
    };
    const s = await openSession(
      Object.fromEntries(Object.entries(agents).map(([did, sigma]) => [did, { sigma, actions: [...ACTIONS, notify] }])),
      { allowedToolOrigins: [tool.base] },
    );
    touched.push(s.workflowId);
    return s;
  };
  const notify = (agentDid: string, input: Record<string, unknown> = {}) => ({ actionId: 'notify', agentDid, input });
  /** A branch that fails without acting (the test handler throws, answered). */
  const failing = (agentDid: string, delayMs = 0) => ({
    actionId: 'draft',
    agentDid,
    input: { failAttempts: -1, ...(delayMs ? { delayMs } : {}) },
  });
  const start = async (session: RawSession, steps: unknown[]) => {
    const started = await session.startSaga({ steps });
    touched.push(started.workflowId);
    return started;
  };
  const key = (workflowId: string, stepId: string, phase: 'execute' | 'undo') => `${workflowId}/${stepId}/${phase}`;
  const actedOnce = (keys: string[]) => {
    for (const k of keys) assert.equal(tool.acted.get(k), 1, `${k} acted once (acted ${tool.acted.get(k) ?? 0}×)`);
  };
  const actedKeysOf = (workflowId: string) =>
    [...tool.acted.keys()].filter((k) => k.startsWith(`${workflowId}/`)).sort();

  it('MAJORITY of 5 with two failures: met at the third success, and the saga continues after it', async () => {
    const session = await open();
    const { sagaId, workflowId, digests } = await start(session, [
      { actionId: 'draft', agentDid: alpha },
      {
        parallel: [
          notify(alpha),
          notify(beta, { delayMs: 300 }),
          failing(gamma),
          failing(alpha),
          notify(gamma, { delayMs: 1_500 }),
        ],
        policy: 'MAJORITY',
      },
      { actionId: 'publish', agentDid: beta },
    ]);
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', snap.error);
    const [group] = snap.saga.groups;
    assert.equal(group.state, 'met');
    assert.equal(group.needed, 3);
    assert.equal(group.decidedBy, 'g1.b5', 'the third success decided it');
    assert.deepEqual([...group.kept].sort(), ['g1.b1', 'g1.b2', 'g1.b5']);
    const step = (id: string) => snap.saga.steps.find((s: { stepId: string }) => s.stepId === id);
    assert.deepEqual(
      ['g1.b3', 'g1.b4'].map((id) => step(id).state),
      ['failed', 'failed'],
    );
    assert.ok(step('step-3').startedAt >= step('g1.b5').finishedAt, 'the saga went on after the group was met');
    assert.deepEqual(handlerCalls(workflowId).sort(), ['g1.b3', 'g1.b4', 'step-1', 'step-3']);
    actedOnce(['g1.b1', 'g1.b2', 'g1.b5'].map((b) => key(workflowId, b, 'execute')));
    assert.deepEqual(
      actedKeysOf(workflowId),
      ['g1.b1', 'g1.b2', 'g1.b5'].map((b) => key(workflowId, b, 'execute')),
    );
    assert.deepEqual(snap.compensationOrder, [], 'nothing was undone');
    // The session names each branch: its digest (what approvals bind to), its budget key, and the audit.
    assert.deepEqual(Object.keys(digests), ['step-1', 'g1.b1', 'g1.b2', 'g1.b3', 'g1.b4', 'g1.b5', 'step-3']);
    await until(
      async () => (await session.sagaRecords()).find((g) => g.sagaId === sagaId),
      (r) => r?.state === 'completed',
      'the session to learn the outcome',
    );
    const trail = await expectSoundAudit(session);
    const paths = trail.deltas.flatMap((d) => d.changes.map((c) => c.path));
    for (const b of ['g1.b1', 'g1.b5'])
      assert.ok(paths.includes(`/sagas/${sagaId}/steps/${b}`), `the audit names ${b}`);
  });

  it('MAJORITY of 5 with three failures: compensates — branches that acted undone once each, in reverse of their ending, then the earlier steps', async () => {
    const session = await open();
    const { sagaId, workflowId } = await start(session, [
      { actionId: 'draft', agentDid: alpha },
      {
        parallel: [notify(alpha), failing(beta), notify(gamma, { delayMs: 600 }), failing(alpha), failing(beta, 2_000)],
        policy: 'MAJORITY',
      },
      { actionId: 'publish', agentDid: beta },
    ]);
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'compensated', snap.error);
    const [group] = snap.saga.groups;
    assert.equal(group.state, 'failed');
    assert.equal(group.decidedBy, 'g1.b5', 'the third failure decided it');
    assert.match(snap.error, /group g1 cannot meet its policy MAJORITY \(3 of 5\): 3 branches failed/);
    assert.equal(snap.failedStepId, 'g1.b5');
    assert.deepEqual(snap.compensationOrder, ['g1.b3', 'g1.b1', 'step-1']);
    assert.deepEqual(handlerCalls(workflowId, 'undo'), ['step-1']);
    assert.ok(!handlerCalls(workflowId).includes('step-3'), 'the step after the group never ran');
    const acted = ['g1.b1', 'g1.b3'].flatMap((b) => [key(workflowId, b, 'execute'), key(workflowId, b, 'undo')]);
    actedOnce(acted);
    assert.deepEqual(actedKeysOf(workflowId), acted.sort());
    // A group's branches are not forkable (a fork runs steps one after another, outside the group's policy):
    // neither from a branch nor from a step before the group. The session decides on what it has learned.
    await until(
      async () => (await session.sagaRecords()).find((g) => g.sagaId === sagaId),
      (r) => r?.state === 'compensated',
      'the session to learn the outcome',
    );
    await refused(
      session.update('forkSaga', { sagaId, fromStepId: 'g1.b1', steps: [{ ...notify(alpha), stepId: 'g1.b1' }] }),
      'NOT_FORKABLE',
      'no step g1.b1',
    );
    await refused(
      session.update('forkSaga', {
        sagaId,
        fromStepId: 'step-1',
        steps: [
          { actionId: 'draft', agentDid: alpha, stepId: 'step-1' },
          { ...notify(alpha), stepId: 'g1.b1' },
        ],
      }),
      'NOT_FORKABLE',
    );
    await expectSoundAudit(session);
  });

  it('ANY: the first success decides; the slower branches are cancelled through their heartbeats and undone', async () => {
    const session = await open();
    const { sagaId, workflowId } = await start(session, [
      {
        parallel: [
          notify(beta, { delayMs: 10_000 }), // acts at once, answers late: it acted
          notify(alpha, { delayMs: 1_000 }),
          notify(gamma, { arriveAfterMs: 20_000 }), // never reaches the tool before its undo
        ],
        policy: 'ANY',
      },
      { actionId: 'publish', agentDid: beta },
    ]);
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', snap.error);
    const [group] = snap.saga.groups;
    assert.deepEqual(group.kept, ['g1.b2']);
    for (const id of ['g1.b1', 'g1.b3']) {
      const s = snap.saga.steps.find((x: { stepId: string }) => x.stepId === id);
      assert.equal(s.state, 'compensated', `${id}: ${s.error}`);
      assert.match(s.error ?? '', /cancelled while it ran: group g1 was met without it/);
    }
    assert.deepEqual([...snap.compensationOrder].sort(), ['g1.b1', 'g1.b3']);
    // The cancellation reached the running steps (the tool saw their requests aborted).
    const events = await history((await rawClient()).client, workflowId);
    assert.equal(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED).length, 2);
    assert.equal(events.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED).length, 2);
    const aborted = tool.aborts.map((a) => a.key);
    assert.ok(aborted.includes(key(workflowId, 'g1.b1', 'execute')), `aborted: ${aborted.join(', ')}`);
    // What acted was undone once; what never acted was a no-op undo, and can no longer act.
    actedOnce([
      key(workflowId, 'g1.b1', 'execute'),
      key(workflowId, 'g1.b1', 'undo'),
      key(workflowId, 'g1.b2', 'execute'),
    ]);
    assert.ok(tool.noopUndos.includes(key(workflowId, 'g1.b3', 'undo')));
    assert.ok(!tool.acted.has(key(workflowId, 'g1.b3', 'execute')));
    assert.ok(handlerCalls(workflowId).includes('step-2'), 'the saga went on after the group');
  });

  it('a saga cancelled while its group runs: the running branches are cancelled, and what may have acted is undone once', async () => {
    const session = await open();
    const { sagaId, workflowId } = await start(session, [
      { actionId: 'draft', agentDid: alpha },
      { parallel: [notify(beta), notify(gamma, { delayMs: 8_000 })], policy: 'ALL' },
    ]);
    await until(
      async () =>
        tool.acted.has(key(workflowId, 'g1.b2', 'execute')) && tool.acted.has(key(workflowId, 'g1.b1', 'execute')),
      (ok) => ok,
      'both branches to act',
    );
    await session.saga(sagaId).cancel();
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'compensated', snap.error);
    assert.equal(snap.cancelled, true);
    assert.equal(snap.error, 'the saga was cancelled while a group ran');
    assert.deepEqual(snap.compensationOrder, ['g1.b2', 'g1.b1', 'step-1']);
    const acted = ['g1.b1', 'g1.b2'].flatMap((b) => [key(workflowId, b, 'execute'), key(workflowId, b, 'undo')]);
    actedOnce(acted);
    assert.deepEqual(actedKeysOf(workflowId), acted.sort());
    assert.deepEqual(handlerCalls(workflowId, 'undo'), ['step-1']);
  });

  it('a saga terminated mid-group (SPEC §11.10): its session walks back through the group in reverse of its branches’ ending, each undo once', async () => {
    const session = await open();
    const { sagaId, workflowId } = await start(session, [
      { actionId: 'draft', agentDid: alpha },
      {
        parallel: [
          notify(alpha, { delayMs: 800 }), // declared first, ends second
          notify(beta),
          notify(gamma, { arriveAfterMs: 60_000 }), // in flight when the saga ends: never acted
        ],
        policy: 'ALL',
      },
    ]);
    const acted = (b: string) => tool.finishedAt.has(key(workflowId, b, 'execute'));
    await until(
      async () => acted('g1.b1') && acted('g1.b2'),
      (ok) => ok,
      'both branches to commit',
    );
    await until(
      () => session.sagaState(sagaId),
      (s) => s.saga.steps.filter((x: { state: string }) => x.state === 'committed').length === 3,
      'the saga to record both commits',
    );
    await (await rawClient()).client.workflow.getHandle(workflowId).terminate('terminated mid-group');
    const settled = await until(
      async () => (await session.sagaRecords()).find((g) => g.sagaId === sagaId),
      (r) => r?.state !== 'running',
      'the session to settle the saga',
    );
    assert.equal(settled.state, 'compensated', settled.error);
    const undos = tool.actOrder.filter((k) => k.startsWith(`${workflowId}/`) && k.endsWith('/undo'));
    assert.deepEqual(undos, [key(workflowId, 'g1.b1', 'undo'), key(workflowId, 'g1.b2', 'undo')]);
    assert.ok(
      tool.noopUndos.includes(key(workflowId, 'g1.b3', 'undo')),
      'the branch in flight was undone first (a no-op)',
    );
    assert.deepEqual(handlerCalls(workflowId, 'undo'), ['step-1']);
    for (const k of tool.acted.keys()) if (k.startsWith(`${workflowId}/`)) assert.equal(tool.acted.get(k), 1, k);
  });

  it('a branch needing approval waits while its siblings run; approved, the group completes', async () => {
    const session = await open({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const { sagaId, workflowId, digests } = await start(session, [
      {
        parallel: [
          { actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 },
          { actionId: 'draft', agentDid: beta, input: { delayMs: 300 } },
          { actionId: 'publish', agentDid: gamma },
        ],
        policy: 'ALL',
      },
    ]);
    const waiting = await until(
      () => session.sagaState(sagaId),
      (s) =>
        s.waiting?.stepId === 'g1.b1' &&
        ['g1.b2', 'g1.b3'].every(
          (id) => s.saga.steps.find((x: { stepId: string }) => x.stepId === id).state === 'committed',
        ),
      'the siblings to commit while g1.b1 waits for approvals',
    );
    assert.equal(waiting.saga.steps[0].state, 'pending');
    assert.deepEqual(handlerCalls(workflowId).sort(), ['g1.b2', 'g1.b3']);
    for (const approverDid of [beta, gamma])
      await session.update('approve', { sagaId, stepId: 'g1.b1', digest: digests['g1.b1'], approverDid });
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', snap.error);
    assert.deepEqual([...snap.saga.groups[0].ended].sort(), ['g1.b1', 'g1.b2', 'g1.b3'], 'every branch ended');
    assert.equal(snap.saga.groups[0].ended.at(-1), 'g1.b1', 'the approved branch ended last');
    assert.deepEqual([...snap.grants['g1.b1'].approvals].sort(), [beta, gamma]);
  });

  it('a branch still waiting for approvals when its group is decided stops waiting: cancelled before it ran', async () => {
    const session = await open({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const { sagaId, workflowId } = await start(session, [
      {
        parallel: [
          { actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 600 },
          { actionId: 'draft', agentDid: beta, input: { delayMs: 1_000 } },
        ],
        policy: 'ANY',
      },
      { actionId: 'publish', agentDid: gamma, input: { delayMs: 1_000 } },
    ]);
    const later = await until(
      () => session.sagaState(sagaId),
      (s) => s.saga.steps.find((x: { stepId: string }) => x.stepId === 'step-2').state === 'executing',
      'the step after the group to run',
    );
    assert.equal(later.waiting, null, 'no branch waits once its group was decided');
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', snap.error);
    assert.equal(snap.saga.steps[0].state, 'failed');
    assert.equal(snap.saga.steps[0].error, 'cancelled before it ran: group g1 was met without it');
    assert.deepEqual(handlerCalls(workflowId), ['g1.b2', 'step-2']);
  });

  it('a branch whose agent is killed mid-group is handed to the substitute; the group completes', async () => {
    const session = await open();
    const { sagaId, workflowId } = await start(session, [
      {
        parallel: [
          { actionId: 'draft', agentDid: alpha, input: { delayMs: 30_000, delayFor: alpha } },
          { actionId: 'publish', agentDid: beta },
        ],
        policy: 'ALL',
      },
    ]);
    await until(
      async () => (calls[workflowId] ?? []).filter((c) => c.stepId === 'g1.b1' && c.phase === 'execute').length,
      (n) => n > 0,
      "alpha's branch to start",
    );
    const killed = await session.asSre('kill', {
      agentDid: alpha,
      sreDid: SRE,
      reason: 'compromised',
      substituteDid: gamma,
    });
    assert.deepEqual(
      killed.handedOff.map((h: { stepId: string }) => h.stepId),
      ['g1.b1'],
    );
    assert.deepEqual(
      killed.sagasHolding,
      [sagaId],
      "the kill was recorded once the saga held it (alpha's branch cancelled)",
    );
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'completed', snap.error);
    const b1 = snap.saga.steps.find((s: { stepId: string }) => s.stepId === 'g1.b1');
    assert.equal(b1.agentDid, gamma);
    assert.equal(b1.state, 'committed');
    assert.deepEqual(
      (calls[workflowId] ?? []).filter((c) => c.stepId === 'g1.b1').map((c) => `${c.phase} ${c.agentDid}`),
      [`execute ${alpha}`, `cancelled ${alpha}`, `execute ${gamma}`],
    );
  });

  it('a branch whose agent is killed with no substitute: the group policy decides (ALL fails; what may have acted is undone)', async () => {
    const session = await open();
    const { sagaId, workflowId } = await start(session, [
      { actionId: 'draft', agentDid: gamma },
      {
        parallel: [
          { actionId: 'draft', agentDid: alpha, input: { delayMs: 30_000 } },
          { actionId: 'publish', agentDid: beta },
        ],
        policy: 'ALL',
      },
    ]);
    await until(
      async () => (calls[workflowId] ?? []).filter((c) => c.stepId === 'g1.b1' && c.phase === 'execute').length,
      (n) => n > 0,
      "alpha's branch to start",
    );
    await session.asSre('kill', { agentDid: alpha, sreDid: SRE, reason: 'compromised' });
    const snap = await session.sagaResult(sagaId);
    assert.equal(snap.saga.state, 'compensated', snap.error);
    assert.equal(snap.saga.groups[0].state, 'failed');
    assert.equal(snap.saga.groups[0].decidedBy, 'g1.b1');
    assert.deepEqual(snap.compensationOrder, ['g1.b1', 'g1.b2', 'step-1']);
    assert.deepEqual(handlerCalls(workflowId, 'undo'), ['g1.b1', 'g1.b2', 'step-1']);
  });
});
