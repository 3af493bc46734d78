/**
 * Operator recovery (SPEC §14): the failure policy a step runs under, and what an operator's decision does to
 * the saga's state machine — pure rules over src/core/saga.ts.
 *
 * - retry: the failed step is pending again, under a new round (its idempotency key's: a tool that remembered
 *   the failure under the old key acts afresh); it is gated again when it starts.
 * - skip: the failed step is recorded skipped and the saga goes on. Only for an action declared `skippable`
 *   at join (a declaration, fixed like the rest of it: SPEC §11.8) — whether leaving an action out is
 *   acceptable is its declarer's word, never the operator's alone. A skipped step that may have acted is
 *   still compensated if the saga later walks back.
 * - compensate: the saga walks back, as without the policy.
 */
import { transitionStep, type SagaState, type SagaStep } from './saga';
import { OPERATOR_DEADLINE_DEFAULT_SECONDS, type OnFailure } from './sagaContract';

export const OPERATOR_DECISIONS = ['retry', 'skip', 'compensate'] as const;
export type OperatorDecision = (typeof OPERATOR_DECISIONS)[number];

/** What a step's failure leads to: the step's policy, else its saga's, else compensate. Null: compensate. */
export function awaitOperatorDeadlineMs(
  step: { onFailure?: OnFailure },
  saga: { onFailure?: OnFailure },
): number | null {
  const policy = step.onFailure ?? saga.onFailure ?? 'compensate';
  if (policy === 'compensate') return null;
  return Math.round((policy['await-operator'].deadlineSeconds ?? OPERATOR_DEADLINE_DEFAULT_SECONDS) * 1000);
}

/** The round a step runs in (1 until an operator retries it). */
export const roundOf = (step: Pick<SagaStep, 'round'>): number => step.round ?? 1;

/** failed → pending, in the next round: the operator's retry. */
export function retryStep(saga: SagaState, stepId: string, at: number, by: string): SagaStep {
  const step = transitionStep(saga, stepId, 'pending', at, `retried by operator ${by}`);
  // A round that may have acted is undone under its own key if the saga walks back, whatever later rounds do.
  if (step.outcomeUnknown) step.actedRounds = [...(step.actedRounds ?? []), roundOf(step)];
  delete step.outcomeUnknown;
  step.round = roundOf(step) + 1;
  step.attempts = 0;
  step.error = null;
  step.finishedAt = null;
  return step;
}

/**
 * The rounds whose undo a compensation runs, latest first (read before the step starts compensating): the last
 * round when it committed or may have acted, then each earlier round that may have acted.
 */
export function roundsToUndo(step: SagaStep): number[] {
  const last = step.state === 'committed' || step.outcomeUnknown ? [roundOf(step)] : [];
  return [...last, ...(step.actedRounds ?? []).slice().reverse()];
}

/** failed → skipped: the operator's skip (the caller checked the action allows it). */
export function skipStep(saga: SagaState, stepId: string, at: number, by: string): SagaStep {
  const step = transitionStep(saga, stepId, 'skipped', at, `skipped by operator ${by}`);
  step.finishedAt = at;
  return step;
}
