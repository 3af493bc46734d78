/**
 * Issue 20: a saga answers its compact outcome — its workflow result, or the details of the failure it ends
 * with — and the session's history holds that outcome, not the saga's full snapshot a second time. The
 * snapshot stays available to people: the sagaState query, which SagaHandle.result() reads for a closed saga.
 */
import assert from 'node:assert/strict';
import { temporal } from '@temporalio/proto';
import type { WorkflowHandle } from '@temporalio/client';
import { activeSession } from '../helpers/sessions';
import { eventually } from '../helpers/hv';
import { SagaOutcome4Schema } from '../../src/contract/sagaOutcome';

const EventType = temporal.api.enums.v1.EventType;
type Payload = temporal.api.common.v1.IPayload;
const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

/** A 3-step saga's outcome as it is stored: at most this many bytes (its full snapshot was ~2.8 KB; format 2's ~530 B, 3's ~200 B). */
const MAX_OUTCOME_BYTES = 400;

/** The one payload an event of that type holds (its result or its failure's first detail), with its size. */
async function storedPayload(handle: WorkflowHandle, type: number): Promise<{ value: unknown; bytes: number }> {
  const events = (await handle.fetchHistory()).events ?? [];
  const event = events.find((e) => e.eventType === type);
  assert.ok(event, `the history of ${handle.workflowId} has an event of type ${EventType[type]}`);
  const payload: Payload | null | undefined =
    event.workflowExecutionCompletedEventAttributes?.result?.payloads?.[0] ??
    event.childWorkflowExecutionCompletedEventAttributes?.result?.payloads?.[0] ??
    event.workflowExecutionFailedEventAttributes?.failure?.applicationFailureInfo?.details?.payloads?.[0] ??
    event.childWorkflowExecutionFailedEventAttributes?.failure?.applicationFailureInfo?.details?.payloads?.[0];
  assert.ok(payload?.data, `the ${EventType[type]} event carries a payload`);
  return { value: JSON.parse(Buffer.from(payload.data).toString('utf8')), bytes: payload.data.length };
}

function assertCompact(stored: { value: unknown; bytes: number }, where: string) {
  const parsed = SagaOutcome4Schema.safeParse(stored.value);
  assert.ok(parsed.success, `${where}: the compact outcome, format 4 (${JSON.stringify(stored.value)})`);
  assert.ok(
    stored.bytes < MAX_OUTCOME_BYTES,
    `${where}: ${stored.bytes} bytes, expected < ${MAX_OUTCOME_BYTES}: ${JSON.stringify(stored.value)}`,
  );
  return parsed.data;
}

describe('a saga answers a compact outcome; its snapshot is a query (issue 20)', function () {
  this.timeout(120_000);

  it('a completed saga: its result and its session’s child completion are the compact outcome', async () => {
    const session = await activeSession(undefined, { controls: { budgets: { agentCost: 100 } } });
    const saga = await session.startSaga({
      sagaId: 'three',
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { to: 'board@example.com', costUnits: 0.25 } },
        { actionId: 'reserve', agentDid: beta, input: { amount: 1200 } },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    const snapshot = await saga.result();
    // The full snapshot, as ever, for people: results, digests, the log.
    assert.equal(snapshot.saga.state, 'completed');
    assert.deepEqual(snapshot.digests, saga.digests);
    assert.deepEqual(snapshot.saga.steps[0]!.result, { done: 'step-1', costUnits: 0.25 });
    assert.ok(snapshot.saga.log.length > 0);

    const result = assertCompact(
      await storedPayload(saga.handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED),
      'the saga’s WorkflowExecutionCompleted',
    );
    assert.equal(result.state, 'completed');
    // Format 4: no action, no agent (the session holds both: no substitute ran a step), no nulls, no saga id,
    // and only the step with something to say: its cost. Steps 2 and 3 committed plainly.
    assert.deepEqual(result.steps, [{ stepId: 'step-1', state: 'committed', attempts: 1, cost: 0.25 }]);
    assert.deepEqual(Object.keys(result), ['format', 'state', 'finishedAt', 'steps']);
    assert.deepEqual(await saga.outcome(), result, 'the typed client reads the workflow’s answer as stored');

    const sagas = await eventually(
      () => session.sagas(),
      (s) => s[0]?.state === 'completed',
      'the session to settle the saga',
    );
    assert.equal(sagas[0]!.error, null);
    const settled = assertCompact(
      await storedPayload(session.handle, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_COMPLETED),
      'the session’s ChildWorkflowExecutionCompleted',
    );
    assert.deepEqual(settled, result);
    // The cost the step's result reported is charged once (SPEC §12), and the steps the outcome left out count:
    // alpha's two calls are step 1's (named) and step 3's (committed plainly, read from the session's record).
    const summary = await eventually(
      () => session.summary(),
      (s) => s.controls.spent.agents.some((a) => a.did === alpha && a.spent.calls === 2),
      'the session to charge the steps',
    );
    assert.deepEqual(summary.controls.spent.agents.find((a) => a.did === alpha)!.spent, { calls: 2, cost: 0.25 });
  });

  it('a compensated saga: the failure’s details are the compact outcome, and its steps stay forkable', async () => {
    const session = await activeSession();
    const saga = await session.startSaga({
      sagaId: 'undone',
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { to: 'board@example.com' } },
        { actionId: 'reserve', agentDid: beta, input: { amount: 1200 } },
        { actionId: 'publish', agentDid: alpha, input: { failAttempts: -1 }, retry: { maximumAttempts: 2 } },
      ],
    });
    const snapshot = await saga.result();
    assert.equal(snapshot.saga.state, 'compensated');
    assert.deepEqual(snapshot.compensationOrder, ['step-3', 'step-2', 'step-1']);
    assert.deepEqual(snapshot.digests, saga.digests);

    const details = assertCompact(
      await storedPayload(saga.handle, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED),
      'the saga’s WorkflowExecutionFailed details',
    );
    assert.equal(details.state, 'compensated');
    assert.equal(details.failedStepId, 'step-3');
    assert.match(details.error ?? '', /attempt 2 failed on purpose/);
    assert.deepEqual(
      details.steps?.map((s) => [s.stepId, s.state, s.attempts]),
      [
        ['step-1', 'compensated', 1],
        ['step-2', 'compensated', 1],
        ['step-3', 'compensated', 2],
      ],
    );

    const sagas = await eventually(
      () => session.sagas(),
      (s) => s[0]?.state === 'compensated',
      'the session to settle the saga',
    );
    assertCompact(
      await storedPayload(session.handle, EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_FAILED),
      'the session’s ChildWorkflowExecutionFailed details',
    );
    // The digests the session kept to fork it are its own record's (the outcome carries none).
    assert.deepEqual(
      sagas[0]!.forkable,
      ['step-1', 'step-2', 'step-3'].map((stepId, i) => ({
        stepId,
        agentDid: i === 1 ? beta : alpha,
        digest: saga.digests[stepId],
      })),
    );
  });
});
