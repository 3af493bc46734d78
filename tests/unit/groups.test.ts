/** Parallel groups' pure rules (src/core/groups.ts, SPEC §14): policies, decisions, the reverse walk. */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  addStep,
  commitStep,
  createSaga,
  failStep,
  finishSaga,
  markOutcomeUnknown,
  startStep,
  type SagaState,
} from '../../src/core/saga';
import {
  branchEnded,
  compensationPlan,
  groupStates,
  losersToUndo,
  neededBy,
  type GroupState,
} from '../../src/core/groups';
import { flattenEntries, type GroupPolicy } from '../../src/core/sagaContract';

const A = 'did:mesh:alpha';
type Step = { actionId: string; agentDid: string; stepId?: string };

/** A saga of `before` sequential steps, then one group of `size` branches under `policy`. */
function sagaWithGroup(size: number, policy: GroupPolicy, before = 1): { saga: SagaState; group: GroupState } {
  const { steps, groups } = flattenEntries<Step>([
    ...Array.from({ length: before }, () => ({ actionId: 'draft', agentDid: A })),
    { parallel: Array.from({ length: size }, () => ({ actionId: 'draft', agentDid: A })), policy },
  ]);
  const saga = createSaga({ sagaId: 's', sessionId: 'x', at: 0 });
  for (const s of steps) addStep(saga, { stepId: s.stepId, actionId: 'draft', agentDid: A, undoApi: 'handler:u' }, 0);
  saga.groups = groupStates(groups);
  for (let i = 0; i < before; i++) {
    startStep(saga, `step-${i + 1}`, 0);
    commitStep(saga, `step-${i + 1}`, null, 0);
  }
  saga.groups[0]!.state = 'running';
  return { saga, group: saga.groups[0]! };
}
const commit = (saga: SagaState, group: GroupState, id: string) => {
  startStep(saga, id, 0);
  commitStep(saga, id, null, 0);
  return branchEnded(saga, group, id);
};
const fail = (saga: SagaState, group: GroupState, id: string, mayHaveActed = false) => {
  startStep(saga, id, 0);
  failStep(saga, id, 'no', 0);
  if (mayHaveActed) markOutcomeUnknown(saga, id);
  return branchEnded(saga, group, id);
};

describe('parallel groups: the rules', () => {
  it('names steps as before groups, and branches after their group', () => {
    const { steps, groups } = flattenEntries<Step>([
      { actionId: 'a', agentDid: A },
      {
        parallel: [
          { actionId: 'b', agentDid: A },
          { actionId: 'c', agentDid: A, stepId: 'mine' },
        ],
        policy: 'ANY',
      },
      { actionId: 'd', agentDid: A },
      { groupId: 'fan', parallel: [{ actionId: 'e', agentDid: A }], policy: 'ALL' },
    ]);
    assert.deepEqual(
      steps.map((s) => s.stepId),
      ['step-1', 'g1.b1', 'mine', 'step-3', 'fan.b1'],
    );
    assert.deepEqual(groups, [
      { groupId: 'g1', policy: 'ANY', branches: ['g1.b1', 'mine'] },
      { groupId: 'fan', policy: 'ALL', branches: ['fan.b1'] },
    ]);
  });

  it('needs all, more than half, one, or k', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => neededBy('MAJORITY', n)),
      [1, 2, 2, 3, 3],
    );
    assert.equal(neededBy('ALL', 5), 5);
    assert.equal(neededBy('ANY', 5), 1);
    assert.equal(neededBy({ atLeast: 4 }, 5), 4);
  });

  it('MAJORITY of 5: met at the third commit; failed at the third failure', () => {
    const met = sagaWithGroup(5, 'MAJORITY');
    assert.equal(fail(met.saga, met.group, 'g1.b3'), 'running');
    assert.equal(commit(met.saga, met.group, 'g1.b1'), 'running');
    assert.equal(fail(met.saga, met.group, 'g1.b4'), 'running');
    assert.equal(commit(met.saga, met.group, 'g1.b2'), 'running');
    assert.equal(commit(met.saga, met.group, 'g1.b5'), 'met');
    assert.deepEqual(met.group.kept, ['g1.b1', 'g1.b2', 'g1.b5']);
    assert.equal(met.group.decidedBy, 'g1.b5');
    assert.equal(finishSaga(met.saga, 1).state, 'completed', "a met group's failed branches do not fail the saga");

    const failed = sagaWithGroup(5, 'MAJORITY');
    commit(failed.saga, failed.group, 'g1.b1');
    fail(failed.saga, failed.group, 'g1.b2');
    commit(failed.saga, failed.group, 'g1.b3');
    fail(failed.saga, failed.group, 'g1.b4');
    assert.equal(fail(failed.saga, failed.group, 'g1.b5'), 'failed');
    assert.match(failed.group.error!, /cannot meet its policy MAJORITY \(3 of 5\): 3 branches failed/);
    // Back through the group in reverse of its branches' ending, then the step before it.
    assert.deepEqual(
      compensationPlan(failed.saga).map((s) => s.stepId),
      ['g1.b3', 'g1.b1', 'step-1'],
    );
  });

  it('decides once: a branch ending after the decision changes nothing, and a met group undoes it if it may have acted', () => {
    const { saga, group } = sagaWithGroup(3, 'ANY');
    assert.equal(commit(saga, group, 'g1.b2'), 'met');
    assert.equal(commit(saga, group, 'g1.b3'), 'met');
    assert.equal(fail(saga, group, 'g1.b1', true), 'met');
    assert.deepEqual(group.kept, ['g1.b2']);
    assert.deepEqual(
      losersToUndo(saga, group).map((s) => s.stepId),
      ['g1.b1', 'g1.b3'],
    );
  });

  it('any order of endings: the group is decided exactly when its policy is, and the plan holds each branch that may have acted once', () => {
    const policies: GroupPolicy[] = ['ALL', 'MAJORITY', 'ANY', { atLeast: 2 }];
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }).chain((size) =>
          fc.record({
            size: fc.constant(size),
            policy: fc.constantFrom(...policies),
            order: fc.shuffledSubarray(
              Array.from({ length: size }, (_, i) => i + 1),
              { minLength: size, maxLength: size },
            ),
            outcomes: fc.array(fc.constantFrom('commit', 'fail', 'unknown'), { minLength: size, maxLength: size }),
          }),
        ),
        ({ size, policy, order, outcomes }) => {
          if (typeof policy === 'object' && policy.atLeast > size) return;
          const { saga, group } = sagaWithGroup(size, policy);
          let commits = 0;
          let decidedAt = -1;
          order.forEach((b, i) => {
            const id = `g1.b${b}`;
            const outcome = outcomes[i]!;
            const before = group.state;
            const after = outcome === 'commit' ? commit(saga, group, id) : fail(saga, group, id, outcome === 'unknown');
            if (outcome === 'commit' && before === 'running') commits++;
            if (before === 'running' && after !== 'running') decidedAt = i;
            const left = size - i - 1;
            const needed = neededBy(policy, size);
            if (before === 'running')
              assert.equal(
                after,
                commits >= needed ? 'met' : commits + left < needed ? 'failed' : 'running',
                `after ${id}`,
              );
          });
          assert.notEqual(decidedAt, -1, 'every branch ended decides the group');
          const plan = compensationPlan(saga).map((s) => s.stepId);
          assert.equal(new Set(plan).size, plan.length, 'each undo once');
          const acted = order.filter((_, i) => outcomes[i] !== 'fail').map((b) => `g1.b${b}`);
          assert.deepEqual(plan, [...acted].reverse().concat('step-1'), 'in reverse of their ending');
        },
      ),
      { numRuns: 300 },
    );
  });
});
