/**
 * Issue 20: the compact saga outcome — what a saga's full snapshot comes to (an older saga's answer is read
 * this way, so a recorded session settles it as it ran), and how strictly the session reads a new one.
 */
import assert from 'node:assert/strict';
import { ApplicationFailure, ChildWorkflowFailure, RetryState } from '@temporalio/common';
import { addStep, commitStep, createSaga, failStep, startStep } from '../../src/core/saga';
import { SagaOutcomeSchema, sagaOutcome3Of, sagaOutcome4Of, sagaOutcomeOf } from '../../src/contract/sagaOutcome';
import { sessionIdOfWorkflowId, sessionWorkflowId } from '../../src/contract/messageNames';
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
    assert.deepEqual(endedWith(snap, undefined), {
      settled: { outcome: sagaOutcomeOf(snap), digests: new Map(Object.entries(snap.digests)) },
      failure: null,
    });
    const failed = new ChildWorkflowFailure(
      'ns',
      { workflowId: 'w', runId: 'r' },
      'sagaWorkflow',
      RetryState.NON_RETRYABLE_FAILURE,
      ApplicationFailure.create({ type: 'SagaCompensated', message: 'x', details: [snap] }),
    );
    assert.deepEqual(endedWithFailure(failed, undefined).settled?.digests, new Map(Object.entries(snap.digests)));
    // No outcome at all: what the lost-saga path finishes (N7).
    assert.deepEqual(endedWith(null, undefined), { settled: null, failure: null });
    const terminated = new ChildWorkflowFailure(
      'ns',
      { workflowId: 'w', runId: 'r' },
      'sagaWorkflow',
      RetryState.TIMEOUT,
      undefined,
    );
    assert.equal(endedWithFailure(terminated, undefined).settled, null);
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
    for (const [answer, why] of bad) assert.throws(() => endedWith(answer, undefined), why, JSON.stringify(answer));
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
    assert.equal(digestOf(saga, { outcome, digests: new Map([['step-1', hex('f')]]) }, step(0, A)), hex('f'));
  });

  describe('format 3: no action, no agent unless a substitute ran it, no nulls', () => {
    const given = { 'step-1': A, 'step-2': B } as Record<string, string>;
    const evidence = { approvers: [], rejectedBy: null, witness: null };
    const record = (step2: Record<string, unknown>) =>
      ({
        steps: [
          { stepId: 'step-1', actionId: 'draft', agentDid: A, digest: hex('1'), ...evidence },
          { stepId: 'step-2', actionId: 'search', agentDid: B, digest: hex('2'), ...evidence, ...step2 },
        ],
      }) as unknown as SagaRecord;

    it('is what format 2 was, less what the session holds, and the session reads it back to the same', () => {
      const snap = snapshotOf();
      const outcome = sagaOutcome3Of(snap, (id) => given[id]);
      assert.deepEqual(outcome, {
        format: 3,
        sagaId: 'g1',
        state: 'running',
        error: 'step-2 failed',
        failedStepId: 'step-2',
        steps: [
          { stepId: 'step-1', state: 'committed', attempts: 1, cost: 0.5 },
          { stepId: 'step-2', state: 'failed', attempts: 1, error: 'the tool changed', toolDefinitionChanged: PIN },
        ],
      });
      assert.ok(SagaOutcomeSchema.safeParse(outcome).success);
      const wire = JSON.parse(JSON.stringify(outcome)) as unknown;
      assert.deepEqual(endedWith(wire, record({})), { settled: { outcome: sagaOutcomeOf(snap) }, failure: null });
    });

    it('names the substitute a step ran as; absent, the agent the saga was given it for, however often handed on', () => {
      const snap = snapshotOf();
      snap.saga.steps[1]!.agentDid = S; // the saga learned the hand-off
      const learned = sagaOutcome3Of(snap, (id) => given[id]);
      assert.equal(learned.steps[1]!.agentDid, S);
      const handed = record({ agentDid: S, handedFrom: { agentDid: B, digest: hex('2') } });
      assert.equal(endedWith(learned, handed).settled?.outcome.steps[1]!.agentDid, S);
      // It never learned it: it ran as B, the agent it was given — once handed on, or twice (B, then S, then T).
      const unlearned = sagaOutcome3Of(snapshotOf(), (id) => given[id]);
      assert.equal(unlearned.steps[1]!.agentDid, undefined);
      assert.equal(endedWith(unlearned, handed).settled?.outcome.steps[1]!.agentDid, B);
      const twice = record({ agentDid: 'did:mesh:t', handedFrom: { agentDid: S, digest: hex('3'), given: B } });
      assert.equal(endedWith(unlearned, twice).settled?.outcome.steps[1]!.agentDid, B);
    });

    it('refuses one naming a step the session never gave, or carrying what format 3 leaves out', () => {
      const good = sagaOutcome3Of(snapshotOf(), (id) => given[id]);
      const bad: [unknown, RegExp][] = [
        [{ ...good, steps: [{ ...good.steps[0], stepId: 'step-9' }] }, /step-9 is no step of the saga/],
        [{ ...good, steps: [{ ...good.steps[0], actionId: 'draft' }] }, /steps\.0/],
        [{ ...good, error: null }, /error/],
        [{ ...good, steps: [{ ...good.steps[0], agentDid: 'nobody' }] }, /steps\.0\.agentDid/],
      ];
      for (const [answer, why] of bad) assert.throws(() => endedWith(answer, record({})), why, JSON.stringify(answer));
    });
  });
  describe('format 4: format 3 without the saga id and the steps that committed plainly', () => {
    const given = { 'step-1': A, 'step-2': B, 'step-3': A } as Record<string, string>;
    const evidence = { approvers: [], rejectedBy: null, witness: null };
    const held = (stepId: string, actionId: string, agentDid: string) => ({
      stepId,
      actionId,
      agentDid,
      digest: hex('1'),
      ...evidence,
    });
    const record = (extra: Record<string, unknown> = {}) =>
      ({
        sagaId: 'g1',
        steps: [held('step-1', 'draft', A), held('step-2', 'search', B), held('step-3', 'draft', A)],
        ...extra,
      }) as unknown as SagaRecord;
    function completed(): SagaSnapshot {
      const snap = snapshotOf();
      snap.saga.steps = [];
      for (const [id, action, agent] of [
        ['step-1', 'draft', A],
        ['step-2', 'search', B],
        ['step-3', 'draft', A],
      ] as const) {
        addStep(snap.saga, { stepId: id, actionId: action, agentDid: agent, executeApi: 'handler:x' }, 1);
        startStep(snap.saga, id, 2);
        commitStep(snap.saga, id, { ok: true }, 3);
      }
      snap.saga.state = 'completed';
      snap.saga.finishedAt = 9;
      return { ...snap, error: null, failedStepId: null };
    }

    it('a saga whose steps all committed plainly answers its state and end alone; its session reads every step back', () => {
      const snap = completed();
      const outcome = sagaOutcome4Of(snap, (id) => given[id], false);
      assert.deepEqual(outcome, { format: 4, state: 'completed', finishedAt: 9 });
      assert.ok(SagaOutcomeSchema.safeParse(outcome).success);
      assert.deepEqual(endedWith(JSON.parse(JSON.stringify(outcome)), record()), {
        settled: { outcome: sagaOutcomeOf(snap) },
        failure: null,
      });
    });

    it('names a step with anything to say (a retry, a cost, a substitute, a failure), the rest filled in in order', () => {
      const snap = completed();
      snap.saga.steps[1]!.attempts = 2;
      snap.saga.steps[2]!.result = { costUnits: 0.5 };
      const outcome = sagaOutcome4Of(snap, (id) => given[id], false);
      assert.deepEqual(outcome.steps, [
        { stepId: 'step-2', state: 'committed', attempts: 2 },
        { stepId: 'step-3', state: 'committed', attempts: 1, cost: 0.5 },
      ]);
      assert.deepEqual(endedWith(outcome, record()).settled?.outcome, sagaOutcomeOf(snap));
      const failed = sagaOutcome4Of(snapshotOf(), (id) => given[id], false);
      assert.deepEqual(
        failed.steps?.map((s) => s.stepId),
        ['step-1', 'step-2'],
        'step-1 reported a cost; step-2 failed',
      );
    });

    it('a turn names every step it ran: its session fills in none (its record may hold a step the saga never read)', () => {
      const snap = completed();
      snap.saga.steps.pop();
      const outcome = sagaOutcome4Of(snap, (id) => given[id], true);
      assert.equal(outcome.steps?.length, 2);
      const turn = record({ turn: { agentDid: A, state: 'open' } });
      assert.deepEqual(
        endedWith(outcome, turn).settled?.outcome.steps.map((s) => s.stepId),
        ['step-1', 'step-2'],
        'step-3, appended but never read, is not taken for committed',
      );
    });

    it('refuses one naming a step the session never gave, carrying the saga id, or naming no step in an empty list', () => {
      const good = sagaOutcome4Of(snapshotOf(), (id) => given[id], false);
      const bad: [unknown, RegExp][] = [
        [{ ...good, steps: [{ ...good.steps![0], stepId: 'step-9' }] }, /step-9 is no step of the saga/],
        [{ ...good, sagaId: 'g1' }, /sagaId/],
        [{ ...good, steps: [] }, /steps/],
      ];
      for (const [answer, why] of bad) assert.throws(() => endedWith(answer, record()), why, JSON.stringify(answer));
      assert.throws(() => endedWith(good, undefined), /holds no record/);
    });

    it("the saga reads its session id from its parent's workflow id (a session's, or none)", () => {
      assert.equal(sessionIdOfWorkflowId(sessionWorkflowId('s-1')), 's-1');
      assert.equal(sessionIdOfWorkflowId('hv-saga-s-1/g'), undefined);
      assert.equal(sessionIdOfWorkflowId(undefined), undefined, 'no parent');
    });
  });
});
