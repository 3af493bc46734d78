/**
 * Parallel groups (SPEC §14): a saga step that is a set of branches with a
 * policy — ALL, MAJORITY (more than half), ANY, or at least k. Pure rules
 * over the saga's state (src/core/saga.ts): when a group is decided, which
 * branches it keeps, and the order compensation walks back through groups.
 * The saga workflow runs the branches (workflows/saga/group.ts).
 */
import type { GroupPolicy, SagaGroup } from './sagaContract';
import {
  compensationPlan as sequentialPlan,
  getStep,
  failedMayHaveActed,
  transitionStep,
  type SagaState,
  type SagaStep,
} from './saga';

export type GroupStatus = 'pending' | 'running' | 'met' | 'failed';

/** A group as its saga holds it. */
export interface GroupState {
  groupId: string;
  policy: GroupPolicy;
  /** Branches that must commit for the group to be met. */
  needed: number;
  /** Its branches' step ids, in declared order. */
  branches: string[];
  state: GroupStatus;
  /** Branches in the order they ended (committed, failed, cancelled): compensation walks it backwards. */
  ended: string[];
  /** The branches that had committed when the group was met: its outcome. The rest no longer matter. */
  kept: string[];
  /** The branch whose end decided the group (null while open). */
  decidedBy: string | null;
  /** Why the group failed (null while it has not). */
  error: string | null;
}

/** How many of `size` branches must commit under the policy. */
export function neededBy(policy: GroupPolicy, size: number): number {
  if (policy === 'ALL') return size;
  if (policy === 'MAJORITY') return Math.floor(size / 2) + 1;
  if (policy === 'ANY') return 1;
  return policy.atLeast;
}

export const policyName = (policy: GroupPolicy): string =>
  typeof policy === 'string' ? policy : `at least ${policy.atLeast}`;

/** The groups of a saga's start input, as its state holds them. */
export function groupStates(groups: readonly SagaGroup[]): GroupState[] {
  return groups.map((g) => ({
    groupId: g.groupId,
    policy: g.policy,
    needed: neededBy(g.policy, g.branches.length),
    branches: [...g.branches],
    state: 'pending',
    ended: [],
    kept: [],
    decidedBy: null,
    error: null,
  }));
}

export const groupOf = (saga: SagaState, stepId: string): GroupState | undefined =>
  saga.groups?.find((g) => g.branches.includes(stepId));

/** A step that may have acted: committed, or failed (or skipped) after it may have, in any round (SPEC §6, §14). */
export const mayHaveActed = (s: SagaStep): boolean =>
  s.state === 'committed' || ((s.state === 'failed' || s.state === 'skipped') && failedMayHaveActed(s));

/**
 * A branch ended (committed or failed). While the group is open this may
 * decide it: met once `needed` branches committed; failed once too few can
 * still commit. Returns the group's state after.
 */
export function branchEnded(saga: SagaState, group: GroupState, stepId: string): GroupStatus {
  group.ended.push(stepId);
  if (group.state !== 'running') return group.state;
  const steps = group.branches.map((id) => getStep(saga, id));
  const committed = group.ended.filter((id) => getStep(saga, id).state === 'committed');
  const open = steps.filter((s) => !group.ended.includes(s.stepId)).length;
  if (committed.length >= group.needed) {
    group.state = 'met';
    group.decidedBy = stepId;
    group.kept = committed;
  } else if (committed.length + open < group.needed) {
    const failed = steps.filter((s) => group.ended.includes(s.stepId) && s.state !== 'committed').length;
    group.state = 'failed';
    group.decidedBy = stepId;
    group.error = `group ${group.groupId} cannot meet its policy ${policyName(group.policy)} (${group.needed} of ${steps.length}): ${failed} branches failed`;
  }
  return group.state;
}

/** Branches of a met group that no longer matter and may have acted: undone now, in reverse of their ending. */
export function losersToUndo(saga: SagaState, group: GroupState): SagaStep[] {
  return [...group.ended]
    .reverse()
    .filter((id) => !group.kept.includes(id))
    .map((id) => getStep(saga, id))
    .filter(mayHaveActed);
}

/** A loser's undo starts while the saga runs on (its group was met): committed | failed → compensating. */
export function startLoserUndo(saga: SagaState, stepId: string, at: number): SagaStep {
  const step = transitionStep(saga, stepId, 'compensating', at, 'its group was decided without it');
  step.compensationStartedAt = at;
  return step;
}

/**
 * What compensation undoes, in order (SPEC §14): back through the saga's
 * steps and groups in reverse; within a group, the branches that may have
 * acted in reverse of their ending. A saga without groups keeps its plan.
 */
export function compensationPlan(saga: SagaState): SagaStep[] {
  const groups = saga.groups ?? [];
  if (groups.length === 0) return sequentialPlan(saga);
  const plan: SagaStep[] = [];
  const walked = new Set<string>();
  for (let i = saga.steps.length - 1; i >= 0; i--) {
    const step = saga.steps[i]!;
    const group = groupOf(saga, step.stepId);
    if (!group) {
      if (mayHaveActed(step)) plan.push(step);
      continue;
    }
    if (walked.has(group.groupId)) continue;
    walked.add(group.groupId);
    for (const id of [...group.ended].reverse()) {
      const branch = getStep(saga, id);
      if (mayHaveActed(branch)) plan.push(branch);
    }
  }
  return plan;
}
