/**
 * Issue 13 on a real server: sessions, sagas and the steps waiting for
 * approvals, found from the visibility store by the typed client. A waiting
 * step is indexed (HvPendingApprovals, HvWaitingSince) while it waits and
 * not after, and a step allowed at once adds no event.
 */
import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import type { SagaHandle, SessionHandle } from '../../src/client';
import type { ApprovalRow } from '../../src/client/lists';
import { HvPendingApprovals, HvWaitingSince } from '../../src/contract/searchAttributes';
import { eventually, hypervisor, uniqueId } from '../helpers/hv';
import { activeSession } from '../helpers/sessions';

const EventType = temporal.api.enums.v1.EventType;

/** Polls the list until a row for the step shows; fails after `withinMs`. */
async function appears(
  session: SessionHandle,
  saga: SagaHandle,
  stepId: string,
  withinMs: number,
): Promise<ApprovalRow> {
  const hv = await hypervisor();
  const rows = await eventually(
    () => hv.listApprovals({ sessionId: session.sessionId }),
    (r) => r.some((x) => x.sagaId === saga.sagaId && x.stepId === stepId),
    `${saga.sagaId}/${stepId} in listApprovals`,
    withinMs,
  );
  return rows.find((x) => x.sagaId === saga.sagaId && x.stepId === stepId)!;
}

async function gone(session: SessionHandle, saga: SagaHandle): Promise<void> {
  const hv = await hypervisor();
  await eventually(
    () => hv.listApprovals({ sessionId: session.sessionId }),
    (r) => !r.some((x) => x.sagaId === saga.sagaId),
    `${saga.sagaId} to leave listApprovals`,
    10_000,
  );
}

/** The upserts of HvPendingApprovals in the saga's history: set, then cleared. */
async function pendingUpserts(saga: SagaHandle): Promise<string[]> {
  const history = await saga.handle.fetchHistory();
  return (history.events ?? [])
    .filter((e) => e.eventType === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    .map((e) => e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields ?? {})
    .filter((f) => HvPendingApprovals.name in f)
    .map((f) => {
      const data = f[HvPendingApprovals.name]!.data;
      const list = data && data.length ? (JSON.parse(Buffer.from(data).toString('utf8')) as string[] | null) : null;
      return list && list.length ? 'set' : 'cleared';
    });
}

describe('lists: sessions, sagas and waiting steps from the visibility store', function () {
  this.timeout(120_000);
  const ring1 = { 'did:mesh:alpha': 0.97, 'did:mesh:beta': 0.8, 'did:mesh:gamma': 0.8 };

  it('lists a waiting ring 1 step within 2 s, and drops it once the quorum approves it (the saga still running)', async () => {
    const session = await activeSession(ring1);
    const saga = await session.startSaga({
      steps: [
        { actionId: 'wire-money', agentDid: 'did:mesh:alpha', approvalDeadlineSeconds: 120 },
        { actionId: 'draft', agentDid: 'did:mesh:alpha', input: { delayMs: 3000 } },
      ],
    });
    const started = Date.now();
    const row = await appears(session, saga, 'step-1', 2000);
    assert.deepEqual(
      {
        sessionId: row.sessionId,
        sagaId: row.sagaId,
        digest: row.digest,
        waitFor: row.waitFor,
        quorum: row.quorum,
        workflowId: row.workflowId,
        runId: row.runId,
      },
      {
        sessionId: session.sessionId,
        sagaId: saga.sagaId,
        digest: saga.digests['step-1'],
        waitFor: 'consensus',
        quorum: 2,
        workflowId: saga.handle.workflowId,
        runId: (await saga.handle.describe()).runId,
      },
    );
    assert.ok(row.since >= started - 1000 && row.since <= Date.now(), 'since: when it began to wait');
    assert.ok(
      Math.abs(row.deadline - (row.since + 120_000)) < 5000,
      'the deadline is approvalDeadlineSeconds after the wait began',
    );

    await session.approve({ sagaId: saga.sagaId, stepId: 'step-1', approverDid: 'did:mesh:beta' });
    // One approval of two: still waiting, and the index did not change.
    assert.ok(
      (await (await hypervisor()).listApprovals({ sessionId: session.sessionId })).some(
        (r) => r.sagaId === saga.sagaId,
      ),
    );
    await session.approve({ sagaId: saga.sagaId, stepId: 'step-1', approverDid: 'did:mesh:gamma' });
    await gone(session, saga);
    assert.equal(
      (await saga.handle.describe()).status.name,
      'RUNNING',
      'dropped when the wait ended, not when the saga did',
    );
    assert.equal((await saga.result()).saga.state, 'completed');
    // One upsert when the wait began, one when it ended: approvals in between add none.
    assert.deepEqual(await pendingUpserts(saga), ['set', 'cleared']);
  });

  it('drops a waiting step once it is rejected', async () => {
    const session = await activeSession(ring1);
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: 'did:mesh:alpha', approvalDeadlineSeconds: 120 }],
    });
    await appears(session, saga, 'step-1', 2000);
    await session.reject({
      sagaId: saga.sagaId,
      stepId: 'step-1',
      approverDid: 'did:mesh:beta',
      reason: 'wrong account',
    });
    await gone(session, saga);
    assert.equal((await saga.result()).saga.state, 'failed');
    const attrs = (await saga.handle.describe()).typedSearchAttributes;
    assert.equal(attrs.get(HvWaitingSince), undefined, 'cleared, not only closed');
    assert.equal(attrs.get(HvPendingApprovals), undefined);
    assert.deepEqual(await pendingUpserts(saga), ['set', 'cleared']);
  });

  it('drops a waiting step once its approval deadline passes', async () => {
    const session = await activeSession(ring1);
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: 'did:mesh:alpha', approvalDeadlineSeconds: 3 }],
    });
    const row = await appears(session, saga, 'step-1', 2000);
    // The deadline is counted from the gate's first look, a moment before the wait began.
    assert.ok(
      row.deadline - row.since > 2000 && row.deadline - row.since <= 3000,
      "deadline − since: about the step's approvalDeadlineSeconds",
    );
    await gone(session, saga);
    const result = await saga.result();
    assert.equal(result.saga.state, 'failed');
    assert.match(result.error ?? '', /deadline of 3 s passed/);
    assert.ok(Date.now() >= row.deadline, 'listed until its deadline');
    assert.equal((await saga.handle.describe()).typedSearchAttributes.get(HvWaitingSince), undefined);
  });

  it('drops a waiting step once its saga is cancelled', async () => {
    const session = await activeSession(ring1);
    const saga = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: 'did:mesh:alpha', approvalDeadlineSeconds: 120 }],
    });
    await appears(session, saga, 'step-1', 2000);
    await saga.handle.cancel();
    await gone(session, saga);
    assert.equal((await saga.result()).cancelled, true);
    assert.equal((await saga.handle.describe()).typedSearchAttributes.get(HvWaitingSince), undefined);
    assert.deepEqual(await pendingUpserts(saga), ['set', 'cleared']);
  });

  it('indexes a step allowed at once with no event, and a completed saga (format 3) upserts nothing: its status says it', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: 'did:mesh:alpha' },
        { actionId: 'publish', agentDid: 'did:mesh:beta' },
      ],
    });
    assert.equal((await saga.result()).saga.state, 'completed');
    const history = await saga.handle.fetchHistory();
    const upserts = (history.events ?? []).filter(
      (e) => e.eventType === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES,
    );
    assert.equal(upserts.length, 0);
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
    assert.deepEqual(Object.keys(started.searchAttributes!.indexedFields!).sort(), ['HvAgentDids', 'HvSessionId']);
    const markers = (history.events ?? []).filter((e) => e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED);
    assert.equal(markers.length, 0, 'no patch marker either');
  });

  it('format 3: a completed saga, a running one and a terminated one list under the state they always did', async () => {
    const hv = await hypervisor();
    const session = await activeSession(ring1);
    const done = await session.startSaga({
      sagaId: 'done',
      steps: [{ actionId: 'draft', agentDid: 'did:mesh:alpha' }],
    });
    await done.result();
    const waiting = await session.startSaga({
      sagaId: 'waiting',
      steps: [{ actionId: 'wire-money', agentDid: 'did:mesh:alpha', approvalDeadlineSeconds: 120 }],
    });
    await appears(session, waiting, 'step-1', 5000);
    const gone_ = await session.startSaga({
      sagaId: 'terminated',
      steps: [{ actionId: 'wire-money', agentDid: 'did:mesh:alpha', approvalDeadlineSeconds: 120 }],
    });
    await appears(session, gone_, 'step-1', 5000);
    await gone_.handle.terminate('an operator ends it outright');
    const byState = async (state: string) =>
      (await hv.listSagas({ sessionId: session.sessionId, state })).map((r) => r.sagaId).sort();
    await eventually(
      () => hv.listSagas({ sessionId: session.sessionId }),
      (r) =>
        r.find((x) => x.sagaId === 'terminated')?.status === 'TERMINATED' &&
        r.some((x) => x.sagaId === 'done' && x.status === 'COMPLETED'),
      'the index to show the terminated and the completed saga',
    );
    assert.deepEqual(await byState('completed'), ['done']);
    // As before format 3: a terminated saga's HvSagaState stayed `running` (nothing wrote its end).
    assert.deepEqual(await byState('running'), ['terminated', 'waiting']);
    for (const state of ['failed', 'compensating', 'compensated', 'escalated'])
      assert.deepEqual(await byState(state), []);
    const rows = await hv.listSagas({ sessionId: session.sessionId });
    assert.deepEqual(rows.map((r) => [r.sagaId, r.state, r.status]).sort(), [
      ['done', 'completed', 'COMPLETED'],
      ['terminated', 'running', 'TERMINATED'],
      ['waiting', 'running', 'RUNNING'],
    ]);
    await waiting.handle.cancel();
    const ended = (await waiting.result()).saga.state;
    assert.notEqual(ended, 'running');
    await eventually(
      () => byState(ended),
      (ids) => ids.includes('waiting'),
      `a cancelled saga to list as ${ended} (its end, written)`,
    );
    assert.deepEqual(await byState('running'), ['terminated']);
  });

  it('lists sessions by state and agent (a DID with ":" quoted), newest first, within the limit', async () => {
    const hv = await hypervisor();
    const agent = `did:mesh:${uniqueId('lister')}`;
    const first = await activeSession({ [agent]: 0.8 });
    const second = await hv.createSession({ sessionId: uniqueId('s'), creatorDid: 'did:mesh:admin' });
    await second.join({ agentDid: agent, sigmaRaw: 0.7 });
    const third = await activeSession({ [agent]: 0.8 });
    await third.terminate();
    const ids = (rows: { sessionId: string }[]) => rows.map((r) => r.sessionId);

    const all = await eventually(
      () => hv.listSessions({ agentDid: agent }),
      (r) => r.length === 3 && r.some((x) => x.sessionId === third.sessionId && x.state === 'archived'),
      'three sessions of the agent',
    );
    // Open ones first, newest first; then the closed one.
    assert.deepEqual(ids(all), [second.sessionId, first.sessionId, third.sessionId]);
    assert.deepEqual(
      all.map((r) => r.state),
      ['handshaking', 'active', 'archived'],
    );
    assert.deepEqual(all[0]!.agentDids, [agent]);
    assert.equal(all[0]!.workflowId, second.handle.workflowId);
    assert.equal(all[0]!.closedAt, null);
    assert.ok(all[2]!.closedAt !== null && all[2]!.status === 'COMPLETED');
    assert.ok(all[0]!.startedAt >= all[1]!.startedAt);

    assert.deepEqual(ids(await hv.listSessions({ agentDid: agent, state: 'active' })), [first.sessionId]);
    assert.deepEqual(ids(await hv.listSessions({ agentDid: agent, limit: 1 })), [second.sessionId]);
    assert.deepEqual(
      await hv.listSessions({ agentDid: `${agent}'x` }),
      [],
      'a quote in a value is quoted, not part of the query',
    );
  });

  it('lists sagas by session, state and agent', async () => {
    const hv = await hypervisor();
    const session = await activeSession();
    const done = await session.startSaga({
      sagaId: 'done',
      steps: [{ actionId: 'draft', agentDid: 'did:mesh:alpha' }],
    });
    await done.result();
    const undone = await session.startSaga({
      sagaId: 'undone',
      steps: [
        { actionId: 'draft', agentDid: 'did:mesh:beta' },
        { actionId: 'publish', agentDid: 'did:mesh:beta', input: { failAttempts: -1 }, retry: { maximumAttempts: 1 } },
      ],
    });
    await undone.result();
    const rows = await eventually(
      () => hv.listSagas({ sessionId: session.sessionId }),
      (r) => r.length === 2 && r.every((x) => x.state !== 'running'),
      'both sagas ended in the index',
    );
    assert.deepEqual(
      rows.map((r) => [r.sagaId, r.state]),
      [
        ['undone', 'compensated'],
        ['done', 'completed'],
      ],
    );
    assert.deepEqual(rows[0]!.agentDids, ['did:mesh:beta']);
    assert.equal(rows[0]!.sessionId, session.sessionId);
    assert.equal(rows[0]!.status, 'FAILED');
    assert.deepEqual(
      (await hv.listSagas({ sessionId: session.sessionId, state: 'completed' })).map((r) => r.sagaId),
      ['done'],
    );
    assert.deepEqual(
      (await hv.listSagas({ sessionId: session.sessionId, agentDid: 'did:mesh:alpha' })).map((r) => r.sagaId),
      ['done'],
    );
  });

  it('refuses a filter with a control character, an unknown state or a bad limit, naming the field', async () => {
    const hv = await hypervisor();
    await assert.rejects(hv.listSessions({ agentDid: 'did:mesh:a\nOR 1=1' }), {
      code: 'INVALID_INPUT',
      message: /agentDid holds a control character \(U\+000a\)/,
    });
    await assert.rejects(hv.listSagas({ state: 'done' }), {
      code: 'INVALID_INPUT',
      message: /state must be a saga state \(running, completed/,
    });
    await assert.rejects(hv.listSessions({ limit: 0 }), {
      code: 'INVALID_INPUT',
      message: /limit must be an integer from 1 to 1000/,
    });
    await assert.rejects(hv.listApprovals({ sessionId: '' }), {
      code: 'INVALID_INPUT',
      message: /sessionId must not be empty/,
    });
  });
});
