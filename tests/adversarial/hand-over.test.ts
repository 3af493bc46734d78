/**
 * The hand-over to the next run (issue 20, the long-lived session): a run continuing as new lets its own
 * sagas end first, for a moment at most. A saga that ended while the continue-as-new task ran would fail
 * that task (its completion is an event the task did not see), and each retry replays the whole run.
 *
 * The wait is a timer a saga controls (SPEC §11: every new timer is an input path): a saga that does not end
 * — one waiting for approvals — must not hold the session's hand-over, and with it every request, open.
 */
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import {
  EventType,
  continueAsNew,
  expectSoundAudit,
  openSession,
  rawClient,
  runHistories,
  until,
  workflowTaskFailures,
} from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

type Events = Awaited<ReturnType<typeof runHistories>>[number];

/** The session's first run, once it has continued as new. */
async function firstRun(client: Client, workflowId: string): Promise<Events> {
  const runs = await runHistories(client, workflowId);
  assert.ok(runs.length >= 2, `the session continued as new (${runs.length} run)`);
  return runs[0]!;
}

const named = (events: Events, type: number) => events.filter((e) => e.eventType === type);

describe('adversarial: the hand-over to the next run waits for the run’s own sagas, for a moment at most', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () =>
    assert.deepEqual(await workflowTaskFailures(touched, { unhandledCommand: 'fail' }), [], 'no workflow task failed'),
  );

  it('a saga of the run that ends within the moment ends into that run, before it continues as new', async () => {
    const { client } = await rawClient();
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8 }, {}, { maxUpdatesPerRun: 10 });
    touched.push(session.workflowId);
    // One step of ~1 s: running when the run reaches its continue-as-new point.
    const { sagaId, workflowId } = await session.startSaga({
      steps: [{ actionId: 'draft', agentDid: alpha, input: { delayMs: 1_000 } }],
    });
    touched.push(workflowId);
    await continueAsNew(session, beta);
    const run = await firstRun(client, session.workflowId);
    const completed = named(run, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED);
    assert.equal(completed.length, 1, 'the saga ended into the first run');
    assert.equal(
      named(run, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW).length,
      1,
      'the first run continued as new',
    );
    // The next run carried it settled: it reads nothing by id.
    const records = await session.sagaRecords();
    assert.equal(records.find((s) => s.sagaId === sagaId)?.state, 'completed');
    const latest = (await client.workflow.getHandle(session.workflowId).fetchHistory()).events ?? [];
    assert.deepEqual(
      named(latest, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        .map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name)
        .filter((n) => n === 'readSagaOutcome'),
      [],
      'the next run read no saga by id',
    );
    await expectSoundAudit(session);
  });

  it('a saga that does not end (it waits for approvals) holds the hand-over no longer than the moment', async () => {
    const { client } = await rawClient();
    const session = await openSession({ [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 }, {}, { maxUpdatesPerRun: 10 });
    touched.push(session.workflowId);
    const { sagaId, workflowId, digests } = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    touched.push(workflowId);
    await until(
      () => session.sagaState(sagaId),
      (s) => s.waiting?.stepId === 'step-1',
      'the saga to wait for approvals',
    );
    await continueAsNew(session, beta);
    // The run waited its moment — a timer that fired — and handed over with the saga still running.
    const run = await firstRun(client, session.workflowId);
    const started = named(run, EventType.EVENT_TYPE_TIMER_STARTED).map((e) => e.timerStartedEventAttributes);
    const fired = new Set(
      named(run, EventType.EVENT_TYPE_TIMER_FIRED).map((e) => String(e.timerFiredEventAttributes?.timerId)),
    );
    const moment = started.filter((t) => Number(t?.startToFireTimeout?.seconds) === 2);
    assert.equal(moment.length, 1, 'one wait of 2 s');
    assert.ok(fired.has(String(moment[0]!.timerId)), 'the wait ran out: the saga did not hold the run');
    assert.equal(named(run, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED).length, 0);
    assert.equal((await session.sagaRecords()).find((s) => s.sagaId === sagaId)?.state, 'running');
    // The next run reads its outcome by id once it ends.
    for (const approverDid of [beta, gamma])
      await session.update('approve', { sagaId, stepId: 'step-1', digest: digests['step-1'], approverDid });
    await until(
      () => session.sagaRecords(),
      (r) => r.find((s) => s.sagaId === sagaId)?.state === 'completed',
      'the next run to learn the outcome',
    );
    await expectSoundAudit(session);
  });
});
