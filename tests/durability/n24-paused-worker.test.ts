/**
 * N24 (issue 24): a worker SIGSTOPped for minutes and resumed crashed — a run
 * evicted from its cache resumed a continuation outside workflow context,
 * which touched the workflow metric meter (workflows/observe.ts) and took the
 * worker's workflow thread down. observe.ts now drops telemetry outside workflow context
 * (tests/unit/observe.test.ts); the crash itself is still reproducible, with that guard, by
 * tests/adversarial/n24/evicted-continuation.repro.ts (RELIABILITY.md, N24).
 *
 * Here the pause itself, with two worker processes on a dev server of the
 * test's own: worker A holds every session and saga while their ring-1 steps
 * wait at the gate for approvals; B is started and A frozen (SIGSTOP). The
 * approvals sent meanwhile reach the sessions through B once A's tasks time
 * out — its sticky queue's timeout is 1 s (HV_STICKY_QUEUE_TIMEOUT_MS)
 * instead of the SDK's 10 s, and a task already handed to one of A's frozen
 * polls waits for its own timeout (10 s for a workflow task). A is resumed
 * with its cache now stale and the approved sagas complete; then B is
 * stopped and the other sagas are approved: only A can serve them, so it
 * replays the sessions it held stale and carries on.
 *
 * The pause is idle (no activation running). An evicted run's continuation
 * can only run if it was queued when the run was evicted: a pause inside an
 * activation (the SDK's deadlock detector then fails that task and evicts the
 * run). This test does not force that, and passes without the observe.ts fix
 * too: that path is the unit test's.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { temporal } from '@temporalio/proto';
import type { SagaHandle, SessionHandle } from '../../src/client';
import { Lab, toolActions, waitUntil } from './harness';

const EventType = temporal.api.enums.v1.EventType;
const STICKY_MS = 1000;
const WORKER_ENV = { HV_STICKY_QUEUE_TIMEOUT_MS: String(STICKY_MS) };
const payer = 'did:mesh:payer';
const approvers = ['did:mesh:approver-1', 'did:mesh:approver-2'];
const SESSIONS = 3;

describe('durability: a worker paused past the sticky queue timeout while sagas wait at the gate (N24)', function () {
  this.timeout(300_000);
  const lab = Lab.forSuite('dev', 0);

  /** A session whose payer's `pay` (irreversible: ring 1) waits for two approvals. */
  async function paySession(sessionId: string): Promise<SessionHandle> {
    const session = await lab.hv.createSession({
      sessionId,
      creatorDid: 'did:mesh:admin',
      config: { allowedToolOrigins: [lab.tool.base] },
    });
    const actions = [
      ...toolActions(lab.tool),
      {
        actionId: 'pay',
        reversibility: 'NONE' as const,
        executeApi: lab.tool.endpoint('execute'),
        undoApi: lab.tool.endpoint('undo'),
      },
    ];
    await session.join({ agentDid: payer, sigmaRaw: 0.97, actions });
    for (const agentDid of approvers) await session.join({ agentDid, sigmaRaw: 0.8, actions });
    await session.activate();
    return session;
  }
  const pay = (sagaId: string) => ({
    sagaId,
    steps: [
      {
        actionId: 'pay',
        agentDid: payer,
        input: { delayMs: 100 },
        timeoutSeconds: 5,
        retry: { maximumAttempts: 5, initialIntervalSeconds: 0.5 },
        approvalDeadlineSeconds: 600,
      },
    ],
  });
  const approveAll = (session: SessionHandle, saga: SagaHandle) =>
    Promise.all(
      approvers.map((approverDid) =>
        session.approve({ sagaId: saga.sagaId, stepId: 'step-1', digest: saga.digests['step-1'], approverDid }),
      ),
    );
  /** The identities of the workers that completed a workflow's tasks, in order. */
  const completedBy = async (workflowId: string): Promise<string[]> =>
    ((await lab.client.workflow.getHandle(workflowId).fetchHistory()).events ?? [])
      .filter((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
      .map((e) => e.workflowTaskCompletedEventAttributes?.identity ?? '');
  const timedOutTasks = async (workflowId: string): Promise<number> =>
    ((await lab.client.workflow.getHandle(workflowId).fetchHistory()).events ?? []).filter(
      (e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    ).length;

  it('N24: every saga completes, 0 workflow task failures, and the resumed worker lives on and serves the runs it held', async () => {
    const a = await lab.startWorker(WORKER_ENV);
    const idA = `durability-worker-${a.pid}`;
    const sessions = await Promise.all(Array.from({ length: SESSIONS }, (_, i) => paySession(`n24-pause-${i}`)));
    const held = await Promise.all(sessions.map((s) => s.startSaga(pay('held'))));
    const later = await Promise.all(sessions.map((s) => s.startSaga(pay('later'))));
    const sagas = [...held, ...later];
    await waitUntil(
      () => Promise.all(sagas.map((s) => s.state())),
      (states) => states.every((st) => st.waiting !== null),
      'every ring-1 step to wait at its gate',
    );
    const workflowIds = [...sessions.map((s) => s.handle.workflowId), ...sagas.map((s) => s.handle.workflowId)];
    for (const id of workflowIds) assert.deepEqual([...new Set(await completedBy(id))], [idA], `${id}: A's so far`);

    // Frozen while idle, its cache full of waiting runs: the approvals reach the sessions through B.
    const b = await lab.startWorker(WORKER_ENV);
    const idB = `durability-worker-${b.pid}`;
    a.pause();
    const pausedAt = Date.now();
    await Promise.all(sessions.map((s, i) => approveAll(s, held[i]!)));
    const pausedMs = Date.now() - pausedAt;
    assert.ok(pausedMs > STICKY_MS, 'paused past the sticky queue timeout');
    for (const s of sessions)
      assert.ok((await completedBy(s.handle.workflowId)).includes(idB), `B took ${s.sessionId} over`);
    assert.equal(a.exitInfo, undefined, 'A is still there, frozen');

    // A resumes with stale runs, beside B: the held sagas complete and their sessions learn it.
    a.resume();
    const heldResults = await Promise.all(held.map((s) => s.result()));
    for (const r of heldResults) assert.equal(r.saga.state, 'completed', JSON.stringify(r.error));
    await waitUntil(
      () => Promise.all(sessions.map((s) => s.sagas())),
      (all) => all.every((list) => list.find((g) => g.sagaId === 'held')?.state === 'completed'),
      'every session to learn its held saga completed',
    );

    // With B gone every task is A's: it replays the runs it held stale and carries on.
    await b.stop();
    await Promise.all(sessions.map((s, i) => approveAll(s, later[i]!)));
    const laterResults = await Promise.all(later.map((s) => s.result()));
    for (const r of laterResults) assert.equal(r.saga.state, 'completed', JSON.stringify(r.error));
    for (const s of sessions) {
      await waitUntil(
        () => s.sagas(),
        (list) => list.every((g) => g.state === 'completed'),
        `session ${s.sessionId} to learn every outcome`,
      );
      await s.terminate();
    }
    for (const s of [...later, ...sessions])
      assert.equal((await completedBy(s.handle.workflowId)).at(-1), idA, `A served ${s.handle.workflowId} last`);

    // Nothing failed, nothing acted twice, and A is alive with nothing thrown outside a workflow.
    assert.deepEqual(await lab.workflowTaskFailures(workflowIds), []);
    const executes = sagas.map((s) => `${s.handle.workflowId}/step-1/execute`);
    lab.tool.assertActed(executes, [...heldResults, ...laterResults]);
    assert.deepEqual(lab.tool.doubleActs(), []);
    assert.equal(a.exitInfo, undefined, 'A did not exit');
    process.kill(a.pid, 0);
    const log = fs.readFileSync(a.logFile, 'utf8');
    assert.doesNotMatch(log, /IllegalStateError|UnhandledRejection|Workflow Context/, `A's log:\n${log.slice(-3000)}`);
    let timedOut = 0;
    for (const id of workflowIds) timedOut += await timedOutTasks(id);
    console.log(
      `    paused ${(pausedMs / 1000).toFixed(1)} s (sticky timeout ${STICKY_MS / 1000} s); ${timedOut} workflow tasks timed out on A; ${lab.unhandledCommandTasks} UNHANDLED_COMMAND tallied; ${lab.tool.retriedKeys().length} steps asked again`,
    );
  });
});
