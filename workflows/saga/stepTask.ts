/**
 * A step's activity tasks, each declared once: the execute the forward walk and a group's branches schedule,
 * and the undo the backward walk and a met group's losers schedule (with the step's activity options).
 */
import { executeOptions, undoOptions } from '../stepOptions';
import { isMcpRef } from '../../src/core/mcp';
import { sagaWorkflowId } from '../../src/contract/messageNames';
import { compensateStep, executeStep, type SagaContext, type SagaStepState } from './context';

/**
 * The session's and saga's ids, unless the saga's workflow id names them (`hv-saga-<sessionId>/<sagaId>`): the
 * activity reads them from it then (activities/stepTask.ts: withSagaIds). A saga under the legacy id sends them.
 */
const sagaIds = (ctx: SagaContext): { sessionId?: string; sagaId?: string } =>
  ctx.workflowId === sagaWorkflowId(ctx.sessionId, ctx.sagaId) ? {} : { sessionId: ctx.sessionId, sagaId: ctx.sagaId };

/**
 * What executeStep is handed for a step, compact (activities/stepTask.ts puts back what is left out): the
 * digest is left out — the activity derives it from the step's own fields, and only a direct step's check
 * uses it; the undo API, which an execute uses only in that check; readOnly when false (its default); the
 * action's reversibility unless the step runs an MCP tool, the only executor that checks it. A direct step
 * carries its digest and undo API as ever, so a worker of any version checks it alike.
 */
export function executeTask(ctx: SagaContext, step: SagaStepState) {
  const spec = ctx.specs.get(step.stepId)!;
  const action = ctx.actions.get(step.actionId)!;
  const direct = ctx.directSteps.has(step.stepId);
  const executeApi = action.executeApi!;
  return {
    ...sagaIds(ctx),
    stepId: step.stepId,
    ...(direct ? { digest: spec.digest } : {}),
    actionId: step.actionId,
    agentDid: step.agentDid,
    executeApi,
    ...(direct ? { undoApi: action.undoApi } : {}),
    ...(action.readOnly ? { readOnly: true } : {}),
    ...(isMcpRef(executeApi) ? { reversibility: action.reversibility } : {}),
    input: spec.input,
    // SPEC §14: an operator's retry runs under a new round of the step's idempotency key.
    ...(step.round ? { round: step.round } : {}),
    // A turn's direct step: its activity checks it with the session on every attempt (docs/TURNS.md).
    ...(direct ? { direct: { timeoutSeconds: spec.timeoutSeconds, retry: spec.retry } } : {}),
  };
}

/**
 * What compensateStep is handed to undo one round of a step (SPEC §14: each round under its own key), compact:
 * an undo runs its undo API only, and derives the digest it does not use either (activities/stepTask.ts).
 */
export function undoTask(ctx: SagaContext, step: SagaStepState, round: number) {
  const spec = ctx.specs.get(step.stepId)!;
  return {
    ...sagaIds(ctx),
    stepId: step.stepId,
    actionId: step.actionId,
    agentDid: step.agentDid,
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
