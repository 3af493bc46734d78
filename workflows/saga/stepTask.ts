/**
 * A step's activity tasks, each declared once: the execute the forward walk and a group's branches schedule,
 * and the undo the backward walk and a met group's losers schedule (with the step's activity options).
 */
import { executeOptions, undoOptions } from '../stepOptions';
import { compensateStep, executeStep, type SagaContext, type SagaStepState } from './context';

/** What executeStep is handed for a step: its action as the saga holds it now, its input, its round. */
export function executeTask(ctx: SagaContext, step: SagaStepState) {
  const spec = ctx.specs.get(step.stepId)!;
  const action = ctx.actions.get(step.actionId)!;
  return {
    sessionId: ctx.sessionId,
    sagaId: ctx.sagaId,
    stepId: step.stepId,
    digest: spec.digest,
    actionId: step.actionId,
    agentDid: step.agentDid,
    executeApi: action.executeApi!,
    undoApi: action.undoApi,
    readOnly: action.readOnly,
    reversibility: action.reversibility,
    input: spec.input,
    // SPEC §14: an operator's retry runs under a new round of the step's idempotency key.
    ...(step.round ? { round: step.round } : {}),
    // A turn's direct step: its activity checks it with the session on every attempt (docs/TURNS.md).
    ...(ctx.directSteps.has(step.stepId) ? { direct: { timeoutSeconds: spec.timeoutSeconds, retry: spec.retry } } : {}),
  };
}

/** What compensateStep is handed to undo one round of a step (SPEC §14: each round under its own key). */
export function undoTask(ctx: SagaContext, step: SagaStepState, round: number) {
  const spec = ctx.specs.get(step.stepId)!;
  return {
    sessionId: ctx.sessionId,
    sagaId: ctx.sagaId,
    stepId: step.stepId,
    digest: spec.digest,
    actionId: step.actionId,
    agentDid: step.agentDid,
    executeApi: step.executeApi ?? '',
    undoApi: step.undoApi,
    input: spec.input,
    result: step.result,
    // A step an operator never retried has one round, scheduled without it (as ever).
    ...(step.round ? { round } : {}),
  };
}

/** Runs one attempt chain of a step's execute, under the step's timeout and retries. */
export const runExecute = (ctx: SagaContext, step: SagaStepState) =>
  executeStep.executeWithOptions(executeOptions(step), [executeTask(ctx, step)]);

/** Runs the undo of one round of a step, under the step's timeout and retries. */
export const runUndo = (ctx: SagaContext, step: SagaStepState, round = 1) =>
  compensateStep.executeWithOptions(undoOptions(step), [undoTask(ctx, step, round)]);
