/**
 * Issue 20: the compact saga outcome — what a saga's full snapshot comes to (an older saga's answer is read
 * this way, so a recorded session settles it as it ran), and how strictly the session reads a new one.
 */
import assert from 'node:assert/strict';
import { ApplicationFailure, ChildWorkflowFailure, RetryState } from '@temporalio/common';
import { addStep, commitStep, createSaga, failStep, startStep } from '../../src/core/saga';
import { SagaOutcomeSchema, sagaOutcomeOf } from '../../src/contract/sagaOutcome';
import type { SagaSnapshot } from '../../src/contract/sagaTypes';
import type { SagaRecord } from '../../src/contract/sessionTypes';
import { digestOf, endedWith, endedWithFailure } from '../../workflows/session/outcomes';

const A = 'did:mesh:alpha';
const B = 'did:mesh:beta';
const S = 'did:mesh:substitute';
const hex = (c: string) => c.repeat(64);
const PIN = { tool: 'search', pinned: hex('a'), current: hex('b') };

function snapshotOf(): SagaSnapshot {
  const saga = createSaga({ sagaId: 'g1', sessionId: 's1', at: 1 });
  addStep(saga, { stepId: 'step-1', actionId: 'draft', agentDid: A, executeApi: 'handler:x' }, 1);
  addStep(saga, { stepId: 'step-2', actionId: 'search', agentDid: B, executeApi: 'handler:x' }, 1);
  startStep(saga, 'step-1', 2);
  commitStep(saga, 'step-1', { body: 'x'.repeat(5000), costUnits: 0.5 }, 3);
  startStep(saga, 'step-2', 4);
  failStep(saga, 'step-2', 'the tool changed', 5);
  saga.steps[1]!.toolDefinitionChanged = PIN;
  return {
    saga,
    workflowId: 'hv-saga-s1/g1',
    sessionId: 's1',
    digests: { 'step-1': hex('1'), 'step-2': hex('2') },
    grants: {},
    waiting: null,
    compensationOrder: [],
    failedStepId: 'step-2',
    error: 'step-2 failed',
    cancelled: false,
  };
}

describe('the compact saga outcome (issue 20)', () => {
  it('keeps what the session settles by, and none of the results, digests or log', () => {
    const outcome = sagaOutcomeOf(snapshotOf());
    assert.deepEqual(outcome, {
      format: 2,
      sagaId: 'g1',
      state: 'running',
      finishedAt: null,
      error: 'step-2 failed',
      failedStepId: 'step-2',
      steps: [
        { stepId: 'step-1', agentDid: A, actionId: 'draft', state: 'committed', attempts: 1, error: null, cost: 0.5 },
        {
          stepId: 'step-2',
          agentDid: B,
          actionId: 'search',
          state: 'failed',
          attempts: 1,
          error: 'the tool changed',
          toolDefinitionChanged: PIN,
        },
      ],
    });
    assert.ok(SagaOutcomeSchema.safeParse(outcome).success);
    assert.ok(JSON.stringify(outcome).length < 600, 'a step result of kilobytes is not carried');
  });

  it('reads an older saga’s full snapshot as its outcome, its digests kept beside it', () => {
    const snap = snapshotOf();
    assert.deepEqual(endedWith(snap), {
      settled: { outcome: sagaOutcomeOf(snap), digests: snap.digests },
      failure: null,
    });
    const failed = new ChildWorkflowFailure(
      'ns',
      { workflowId: 'w', runId: 'r' },
      'sagaWorkflow',
      RetryState.NON_RETRYABLE_FAILURE,
      ApplicationFailure.create({ type: 'SagaCompensated', message: 'x', details: [snap] }),
    );
    assert.deepEqual(endedWithFailure(failed).settled?.digests, snap.digests);
    // No outcome at all: what the lost-saga path finishes (N7).
    assert.deepEqual(endedWith(null), { settled: null, failure: null });
    const terminated = new ChildWorkflowFailure(
      'ns',
      { workflowId: 'w', runId: 'r' },
      'sagaWorkflow',
      RetryState.TIMEOUT,
      undefined,
    );
    assert.equal(endedWithFailure(terminated).settled, null);
  });

  it('refuses a malformed compact outcome, naming what is wrong (it settles nothing)', () => {
    const good = sagaOutcomeOf(snapshotOf());
    const bad: [unknown, RegExp][] = [
      [{ ...good, digests: {} }, /digests/],
      [{ ...good, state: 'won' }, /state/],
      [{ ...good, steps: [{ ...good.steps[0], cost: -1 }] }, /steps\.0\.cost/],
      [{ ...good, steps: [{ ...good.steps[0], result: { costUnits: 9 } }] }, /steps\.0/],
      [{ ...good, steps: [{ ...good.steps[0], agentDid: 'nobody' }] }, /steps\.0\.agentDid/],
      [
        { ...good, steps: [{ ...good.steps[1], toolDefinitionChanged: { tool: 't', pinned: 'x', current: 'y' } }] },
        /pinned/,
      ],
      [JSON.parse(`{"format":2,"__proto__":{"state":"completed"}}`), /sagaId/],
      ['completed', /not an object/],
    ];
    for (const [answer, why] of bad) assert.throws(() => endedWith(answer), why, JSON.stringify(answer));
  });

  it('takes a step’s digest from the session’s record, as the saga ran it', () => {
    const evidence = { approvers: [], rejectedBy: null, witness: null };
    const saga = {
      steps: [
        { stepId: 'step-1', actionId: 'draft', agentDid: A, digest: hex('1'), ...evidence },
        // Handed from B to a substitute by a kill: the saga may or may not have learned it.
        {
          stepId: 'step-2',
          actionId: 'draft',
          agentDid: S,
          digest: hex('3'),
          handedFrom: { agentDid: B, digest: hex('2') },
          ...evidence,
        },
      ],
    } as unknown as SagaRecord;
    const outcome = sagaOutcomeOf(snapshotOf());
    const settled = { outcome };
    const step = (i: number, agentDid: string) => ({ ...outcome.steps[i]!, agentDid });
    assert.equal(digestOf(saga, settled, step(0, A)), hex('1'));
    assert.equal(digestOf(saga, settled, step(1, S)), hex('3'), 'it ran as the substitute');
    assert.equal(digestOf(saga, settled, step(1, B)), hex('2'), 'it never learned the hand-off');
    assert.equal(digestOf(saga, settled, step(1, 'did:mesh:other')), '');
    assert.equal(digestOf(saga, settled, { ...outcome.steps[0]!, stepId: 'step-9' }), '');
    assert.equal(digestOf(saga, { outcome, digests: { 'step-1': hex('f') } }, step(0, A)), hex('f'));
  });
});
