import assert from 'node:assert/strict';
import {
  addStep,
  commitStep,
  compensationPlan,
  createSaga,
  failStep,
  finishSaga,
  markOutcomeUnknown,
  startCompensation,
  startStep,
} from '../../src/core/saga';
import { awaitOperatorDeadlineMs, retryStep, roundOf, roundsToUndo, skipStep } from '../../src/core/operator';
import { OnFailureSchema } from '../../src/core/sagaContract';
import { StartSagaRequestSchema } from '../../src/core/sagaRequests';

const did = 'did:mesh:alpha';
function saga() {
  const s = createSaga({ sagaId: 'g', sessionId: 's', at: 1 });
  for (const stepId of ['a', 'b', 'c']) addStep(s, { stepId, actionId: 'act', agentDid: did }, 1);
  return s;
}

describe('operator recovery: the failure policy and the decisions (SPEC §14)', () => {
  it("the policy is the step's, else the saga's, else compensate; the deadline defaults to 1 h", () => {
    const wait = (deadlineSeconds?: number) =>
      OnFailureSchema.parse({ 'await-operator': deadlineSeconds ? { deadlineSeconds } : {} });
    assert.equal(awaitOperatorDeadlineMs({}, {}), null);
    assert.equal(awaitOperatorDeadlineMs({}, { onFailure: wait() }), 3_600_000);
    assert.equal(awaitOperatorDeadlineMs({ onFailure: 'compensate' }, { onFailure: wait() }), null);
    assert.equal(awaitOperatorDeadlineMs({ onFailure: wait(5) }, {}), 5_000);
  });

  it('refuses a policy of another shape, naming it', () => {
    for (const bad of ['await-operator', 'retry', { 'await-operator': { deadlineSeconds: -1 } }, { compensate: {} }]) {
      const r = StartSagaRequestSchema.safeParse({ steps: [{ actionId: 'x', agentDid: did }], onFailure: bad });
      assert.equal(r.success, false, JSON.stringify(bad));
      assert.match(JSON.stringify(r.error!.issues), /onFailure|deadlineSeconds/);
    }
  });

  it('retry makes a failed step pending in the next round; skip records it skipped and the saga completes', () => {
    const s = saga();
    startStep(s, 'a', 2);
    commitStep(s, 'a', null, 2);
    startStep(s, 'b', 3);
    failStep(s, 'b', 'down', 3);
    assert.equal(roundOf(s.steps[1]!), 1);
    retryStep(s, 'b', 4, 'did:key:sre');
    assert.equal(s.steps[1]!.state, 'pending');
    assert.equal(s.steps[1]!.round, 2);
    startStep(s, 'b', 5);
    failStep(s, 'b', 'down again', 5);
    skipStep(s, 'b', 6, 'did:key:sre');
    startStep(s, 'c', 7);
    commitStep(s, 'c', null, 7);
    assert.equal(finishSaga(s, 8).state, 'completed');
    assert.deepEqual(
      s.steps.map((x) => x.state),
      ['committed', 'skipped', 'committed'],
    );
    assert.match(s.log.find((l) => l.to === 'skipped')!.reason!, /did:key:sre/);
  });

  it('a skipped step that may have acted is compensated if the saga walks back; one that did not is not', () => {
    const s = saga();
    startStep(s, 'a', 2);
    failStep(s, 'a', 'timed out', 2);
    markOutcomeUnknown(s, 'a');
    skipStep(s, 'a', 3, 'did:key:sre');
    startStep(s, 'b', 4);
    failStep(s, 'b', 'refused', 4);
    assert.deepEqual(
      compensationPlan(s).map((x) => x.stepId),
      ['a'],
    );
    startCompensation(s, 5);
    assert.throws(() => retryStep(s, 'c', 6, 'x'), /cannot go from pending to pending/);
  });

  it('undoes every round that may have acted, latest first, and only those', () => {
    const s = saga();
    startStep(s, 'a', 2);
    failStep(s, 'a', '503', 3);
    markOutcomeUnknown(s, 'a'); // round 1 may have acted
    retryStep(s, 'a', 4, 'did:mesh:sre');
    startStep(s, 'a', 5);
    failStep(s, 'a', 'refused before acting', 6); // round 2 did not act
    retryStep(s, 'a', 7, 'did:mesh:sre');
    startStep(s, 'a', 8);
    commitStep(s, 'a', { ok: true }, 9); // round 3 acted
    assert.deepEqual(roundsToUndo(s.steps[0]!), [3, 1]);
    startStep(s, 'b', 10);
    failStep(s, 'b', 'refused before acting', 11);
    assert.deepEqual(roundsToUndo(s.steps[1]!), [], 'a step that never acted has nothing to undo');
    retryStep(s, 'b', 12, 'did:mesh:sre');
    startStep(s, 'b', 13);
    failStep(s, 'b', 'timed out', 14);
    markOutcomeUnknown(s, 'b');
    assert.deepEqual(roundsToUndo(s.steps[1]!), [2]);
    startCompensation(s, 15);
    assert.deepEqual(
      compensationPlan(s).map((x) => x.stepId),
      ['b', 'a'],
    );
  });
});
