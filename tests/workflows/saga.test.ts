import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import { calls } from '../helpers/testHandlers';
import { activeSession } from '../helpers/sessions';
import { eventually } from '../helpers/hv';

const EventType = temporal.api.enums.v1.EventType;
const alpha = 'did:mesh:alpha';

describe('saga workflow: Temporal runs each step with its own timeout, retry and backoff', function () {
  this.timeout(120_000);

  it('completes a saga whose steps all commit', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'completed');
    assert.deepEqual(result.saga.commitOrder, ['step-1', 'step-2']);
    const sagas = await eventually(
      () => session.sagas(),
      (s) => s[0]?.state === 'completed',
      'the session to learn the saga completed',
    );
    assert.equal(sagas.length, 1);
  });

  it('retries a failing step with exponential backoff N times, then fails it', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        {
          actionId: 'draft',
          agentDid: alpha,
          input: { failAttempts: -1 },
          retry: { maximumAttempts: 4, initialIntervalSeconds: 0.2, backoffCoefficient: 2 },
        },
      ],
    });
    const result = await saga.result();
    // An earlier attempt may have acted (it could have timed out after acting): the step is compensated (SPEC §6).
    assert.equal(result.saga.state, 'compensated');
    assert.deepEqual(result.compensationOrder, ['step-1']);
    assert.match(result.error ?? '', /attempt 4 failed on purpose/);
    const made = calls[result.workflowId]!.filter((c) => c.phase === 'execute');
    assert.deepEqual(
      made.map((c) => c.attempt),
      [1, 2, 3, 4],
    );
    assert.equal(result.saga.steps[0]!.attempts, 4);
    // Temporal waits initial × coefficient^(k−1) before retry k: 200, 400, 800 ms at least.
    const gaps = made.slice(1).map((c, i) => c.at - made[i]!.at);
    [200, 400, 800].forEach((min, i) =>
      assert.ok(gaps[i]! >= min, `gap ${i + 1} was ${gaps[i]} ms, expected ≥ ${min} ms`),
    );
    // One idempotency key for every attempt.
    assert.equal(new Set(made.map((c) => c.key)).size, 1);
  });

  it('retries a step that then succeeds', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        {
          actionId: 'draft',
          agentDid: alpha,
          input: { failAttempts: 2 },
          retry: { maximumAttempts: 5, initialIntervalSeconds: 0.1 },
        },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'completed');
    assert.deepEqual(
      calls[result.workflowId]!.map((c) => c.attempt),
      [1, 2, 3],
    );
    assert.equal(result.saga.steps[0]!.attempts, 3);
  });

  it("times a step out with Temporal's start-to-close timeout", async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [{ actionId: 'draft', agentDid: alpha, input: { delayMs: 10_000 }, timeoutSeconds: 1 }],
    });
    const result = await saga.result();
    // It may have acted before it timed out: its outcome is unknown, so it is compensated (SPEC §6).
    assert.equal(result.saga.state, 'compensated');
    assert.match(result.error ?? '', /timed out/);
    assert.deepEqual(result.compensationOrder, ['step-1']);
    const history = await saga.handle.fetchHistory();
    const timedOut = history.events!.filter((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT);
    assert.equal(timedOut.length, 1);
    assert.equal(
      timedOut[0]!.activityTaskTimedOutEventAttributes!.failure!.timeoutFailureInfo!.timeoutType,
      temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_START_TO_CLOSE,
    );
    // No timer of our own: the only timers in the history would be hand-made ones.
    assert.equal(history.events!.filter((e) => e.eventType === EventType.EVENT_TYPE_TIMER_STARTED).length, 0);
  });

  it('compensates the committed steps in reverse order of commit', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'reserve', agentDid: alpha },
        { actionId: 'publish', agentDid: alpha },
        { actionId: 'notify', agentDid: alpha, input: { failAttempts: -1 } },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated');
    assert.equal(result.failedStepId, 'step-4');
    assert.deepEqual(result.compensationOrder, ['step-3', 'step-2', 'step-1']);
    const undos = calls[result.workflowId]!.filter((c) => c.phase === 'undo').map((c) => c.stepId);
    assert.deepEqual(undos, ['step-3', 'step-2', 'step-1']);
    assert.deepEqual(
      result.saga.steps.map((s) => s.state),
      ['compensated', 'compensated', 'compensated', 'failed'],
    );
  });
});
