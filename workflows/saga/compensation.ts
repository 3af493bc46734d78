/**
 * The backward walk (SPEC §6): what may have acted, in reverse, in a scope
 * nothing cancels; each undo once; a failed undo is recorded (the session
 * escalates it to a slash).
 */
import * as wf from '@temporalio/workflow';
import {
  compensateReadOnlyStep,
  compensateStep as markCompensated,
  failCompensation,
  startCompensation,
  startStepCompensation,
} from '../../src/core/saga';
import { compensationPlan } from '../../src/core/groups';
import { SPANS } from '../../src/core/observability';
import { compensated, startSpan } from '../observe';
import { publishDetails, type SagaContext } from './context';
import { runUndo } from './stepTask';
import { describeFailure } from './failures';
import { stepAttributes } from './gate';
import { patched } from '../ownRun';
import { roundsToUndo } from '../../src/core/operator';

/** Asked only when a read-only step would be compensated: a saga recorded before failed its compensation. */
export const READ_ONLY_STEPS_NOT_COMPENSATED = 'read-only-steps-not-compensated';

/** Compensates, when a step failed or the saga was cancelled and something may have acted. */
export async function compensate(ctx: SagaContext): Promise<void> {
  // A turn that gave up (SPEC §13) walks back even when nothing may have acted: it ends compensated, not completed.
  if (ctx.gaveUp || ((ctx.failedStepId !== null || ctx.cancelled) && compensationPlan(ctx.saga).length > 0)) {
    startCompensation(ctx.saga, Date.now(), ctx.error);
    publishDetails(ctx);
    await wf.CancellationScope.nonCancellable(async () => {
      for (const step of compensationPlan(ctx.saga)) {
        const span = startSpan(SPANS.compensation, stepAttributes(ctx, step));
        // SPEC §2: a read-only step changed nothing — nothing to undo, nothing to escalate. Behind a patch: a
        // saga recorded before it failed such a step's compensation (no command either way; its outcome differs).
        if (
          ctx.actions.get(step.actionId)?.readOnly &&
          step.undoApi === null &&
          patched(READ_ONLY_STEPS_NOT_COMPENSATED)
        ) {
          compensateReadOnlyStep(ctx.saga, step.stepId, Date.now());
          compensated(span, true);
          publishDetails(ctx);
          continue;
        }
        const rounds = roundsToUndo(step);
        if (!startStepCompensation(ctx.saga, step.stepId, Date.now())) {
          // It declares no undo: the compensation failed without an activity.
          compensated(span, false, step.error);
          continue;
        }
        try {
          // SPEC §14: each round that may have acted is undone under its own key, latest first (one round: as ever).
          for (const round of rounds) await span.run(() => runUndo(ctx, step, round));
          markCompensated(ctx.saga, step.stepId, Date.now());
          ctx.compensationOrder.push(step.stepId);
          compensated(span, true);
        } catch (err) {
          failCompensation(ctx.saga, step.stepId, describeFailure(err), Date.now());
          compensated(span, false, err);
        }
        publishDetails(ctx);
      }
    });
  }
}
