/**
 * The forward walk (SPEC §6): each step gated, then run as an activity with
 * Temporal's own timeout and retry (every retry attempt is re-gated by the
 * activity before it acts); a kill of its agent cancels the running step and
 * the gate decides again. Returns false when the saga goes no further.
 */
import * as wf from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import { commitStep, failStep, markOutcomeUnknown, markToolDefinitionChanged, startStep } from '../../src/core/saga';
import { ATTR, SPANS } from '../../src/core/observability';
import { startSpan } from '../observe';
import { publishDetails, type SagaContext, type SagaStepState } from './context';
import { runExecute } from './stepTask';
import { describeFailure, gateDeniedBy, notAppended, outcomeUnknown, toolDefinitionChanged } from './failures';
import { confirmKill, gateStepSpanned, indexPending, stepAttributes } from './gate';
import { patched } from '../ownRun';
import { recoverByOperator } from './operator';
import { cancelGroupBefore, runGroup } from './group';
import { groupOf } from '../../src/core/groups';

export const cancelRequested = () => wf.CancellationScope.current().consideredCancelled;
/** Cancelled before the step started: it fails without having acted, and the walk back begins. */
export const cancelBefore = (ctx: SagaContext, stepId: string) => {
  ctx.cancelled = true;
  indexPending(ctx, null);
  startStep(ctx.saga, stepId, Date.now());
  failStep(ctx.saga, stepId, 'cancelled before it started', Date.now());
  ctx.failedStepId = stepId;
  ctx.error = 'the saga was cancelled';
};

/** Gates and runs one step; false when the saga goes no further. */
export async function forward(ctx: SagaContext, step: SagaStepState): Promise<boolean> {
  const spec = ctx.specs.get(step.stepId)!;
  /** A run of this step was cancelled by its agent's kill: it may have acted, so it is compensated if nobody takes over. */
  let killedRun = false;
  const mayHaveActed = () => {
    if (killedRun) markOutcomeUnknown(ctx.saga, step.stepId);
  };
  for (;;) {
    let denied: string | null;
    try {
      denied = (await gateStepSpanned(ctx, step)).denied;
    } catch (err) {
      if (!wf.isCancellation(err)) {
        // N9: the session could not be asked (its read failed after every retry): the step does not run,
        // and the saga walks back over what may have acted rather than failing with it unundone.
        if (!patched('gate-failure-compensates')) throw err;
        ctx.error = `the session could not decide step ${step.stepId}: ${describeFailure(err)}`;
        ctx.waiting = null;
        indexPending(ctx, null);
        if (step.state === 'pending') startStep(ctx.saga, step.stepId, Date.now());
        failStep(ctx.saga, step.stepId, ctx.error, Date.now());
        ctx.failedStepId = step.stepId;
        mayHaveActed();
        return false;
      }
      if (step.state === 'executing') {
        ctx.cancelled = true;
        indexPending(ctx, null);
        failStep(ctx.saga, step.stepId, 'cancelled before it started again', Date.now());
        ctx.failedStepId = step.stepId;
        ctx.error = 'the saga was cancelled';
        mayHaveActed();
      } else {
        cancelBefore(ctx, step.stepId);
      }
      return false;
    }
    if (step.state === 'pending') startStep(ctx.saga, step.stepId, Date.now());
    if (denied) {
      failStep(ctx.saga, step.stepId, `RING_VIOLATION: ${denied}`, Date.now());
      ctx.failedStepId = step.stepId;
      ctx.error = `ring violation: ${denied}`;
      mayHaveActed();
      return false;
    }
    publishDetails(ctx);
    const scope = new wf.CancellationScope();
    ctx.running = { stepId: step.stepId, agentDid: spec.agentDid, scope, killed: false };
    const run = ctx.running;
    try {
      const { result, attempt } = await scope.run(() => runExecute(ctx, step));
      commitStep(ctx.saga, step.stepId, result, Date.now());
      step.attempts = attempt;
      if (cancelRequested()) {
        // The step finished as the cancellation arrived: it committed, and is compensated with the rest.
        ctx.cancelled = true;
        ctx.error = 'the saga was cancelled while a step ran';
        return false;
      }
    } catch (err) {
      // A direct step its session does not hold as appended did not act: its saga forgets it (turn.ts).
      if (ctx.directSteps.has(step.stepId) && notAppended(err)) {
        ctx.notRun.set(step.stepId, describeFailure(err));
        return false;
      }
      // Temporal ran every attempt the retry policy allows.
      if (err instanceof wf.ActivityFailure && err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED)
        step.attempts = step.maxRetries + 1;
      // The step activity says which attempt failed (see StepFailureDetails).
      const failedAttempt =
        err instanceof wf.ActivityFailure && err.cause instanceof wf.ApplicationFailure
          ? (err.cause.details?.[0] as { attempt?: unknown } | undefined)?.attempt
          : undefined;
      if (typeof failedAttempt === 'number' && failedAttempt > step.attempts) step.attempts = failedAttempt;
      // N15: a retry the gate refused because its agent was killed: the session's word decides (hand-off or not).
      if (!run.killed && ctx.agents.get(run.agentDid)?.restriction === 2 && patched('kill-confirmed-by-session'))
        await confirmKill(ctx, run);
      if (run.killed && !cancelRequested()) {
        // SPEC §12: its agent was killed while it ran. The gate decides again: the kill's substitute, or a denial.
        killedRun = true;
        continue;
      }
      const gateRefusal = gateDeniedBy(err);
      ctx.error = gateRefusal ? `ring violation: ${gateRefusal}` : describeFailure(err);
      failStep(ctx.saga, step.stepId, gateRefusal ? `RING_VIOLATION: ${gateRefusal}` : ctx.error, Date.now());
      // Issue 21: which tool changed and both hashes, for its session (a failure no earlier history holds).
      const changed = toolDefinitionChanged(err);
      if (changed) markToolDefinitionChanged(ctx.saga, step.stepId, changed);
      ctx.failedStepId = step.stepId;
      if (wf.isCancellation(err)) {
        ctx.cancelled = true;
        ctx.error = 'the saga was cancelled while a step ran';
      }
      if (outcomeUnknown(err) || wf.isCancellation(err) || killedRun) markOutcomeUnknown(ctx.saga, step.stepId);
      return false;
    } finally {
      ctx.running = null;
    }
    publishDetails(ctx);
    return true;
  }
}

/** Walks the steps forward until one fails, is denied or the saga is cancelled. */
export async function walkForward(ctx: SagaContext): Promise<void> {
  for (const step of ctx.saga.steps) {
    // A parallel group runs as one step of the walk, from its first branch (SPEC §14).
    const group = groupOf(ctx.saga, step.stepId);
    if (group && group.state !== 'pending') continue;
    if (cancelRequested()) {
      if (group) cancelGroupBefore(ctx, group);
      else cancelBefore(ctx, step.stepId);
      break;
    }
    if (group) {
      if (!(await runGroup(ctx, group))) break;
      continue;
    }
    // The step's span is the parent of its gate and of its attempts' activities.
    const span = startSpan(SPANS.step, stepAttributes(ctx, step));
    // SPEC §14: under the await-operator policy a failed step waits for its operator's decision.
    const goOn = await span.run(async () => (await forward(ctx, step)) || recoverByOperator(ctx, step, forward));
    span.set({ [ATTR.stepState]: step.state });
    span.end();
    if (!goOn) break;
  }
}
