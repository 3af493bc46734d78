/**
 * Operator recovery (SPEC §14): a step that failed (after its retries) under the `await-operator` policy does
 * not walk the saga back at once. The saga waits — durably, a condition with the policy's deadline — for an
 * SRE of its session to decide: retry, skip or compensate. The decision is the session's (SPEC §11): the
 * saga tells its session it awaits (a wake-up; the session reads the saga by id), and reads the decision for
 * its own round back by an activity (authentic). A push decides nothing; the deadline compensates.
 */
import * as wf from '@temporalio/workflow';
import type { createActivities } from '../../activities';
import { awaitOperatorDeadlineMs, retryStep, roundOf, skipStep, type OperatorDecision } from '../../src/core/operator';
import { pendingApprovalEntry } from '../../src/contract/searchAttributes';
import { sagaAwaitingSignal, sessionWorkflowId } from '../definitions';
import { logDropped } from '../failures';
import { publishDetails, type SagaContext, type SagaStepState } from './context';
import { indexPending } from './gate';

type Activities = ReturnType<typeof createActivities>;
const { readOperatorDecision } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '500 milliseconds', backoffCoefficient: 2 },
});

/** A step that failed under the await-operator policy (not a cancellation, not a turn) awaits its operator. */
export function awaitsOperator(ctx: SagaContext, step: SagaStepState): boolean {
  if (step.state !== 'failed' || ctx.cancelled || ctx.input.turn || ctx.saga.state !== 'running') return false;
  return awaitOperatorDeadlineMs(ctx.specs.get(step.stepId)!, ctx.input) !== null;
}

/**
 * After a step failed: while it awaits its operator, the operator's decision — a retry runs the step again
 * (`forward`, gated again) and may fail again; a skip goes on; compensate, the deadline or a cancellation ends
 * the walk. True when the saga goes on.
 */
export async function recoverByOperator(
  ctx: SagaContext,
  step: SagaStepState,
  forward: (ctx: SagaContext, step: SagaStepState) => Promise<boolean>,
): Promise<boolean> {
  while (awaitsOperator(ctx, step)) {
    const decided = await awaitDecision(ctx, step);
    if (decided.decision === 'compensate') {
      ctx.error = `${ctx.error ?? `step ${step.stepId} failed`}; ${decided.why}`;
      return false;
    }
    ctx.failedStepId = null;
    ctx.error = null;
    if (decided.decision === 'skip') {
      skipStep(ctx.saga, step.stepId, Date.now(), decided.by);
      publishDetails(ctx);
      return true;
    }
    retryStep(ctx.saga, step.stepId, Date.now(), decided.by);
    // Gated again, by the session itself: the step claims its start afresh (its grant, its evidence).
    ctx.specs.get(step.stepId)!.leased = false;
    ctx.grants.delete(step.stepId);
    publishDetails(ctx);
    if (await forward(ctx, step)) return true;
  }
  return false;
}

async function awaitDecision(
  ctx: SagaContext,
  step: SagaStepState,
): Promise<{ decision: OperatorDecision; by: string; why: string }> {
  const since = Date.now();
  const deadline = since + awaitOperatorDeadlineMs(ctx.specs.get(step.stepId)!, ctx.input)!;
  const round = roundOf(step);
  const spec = ctx.specs.get(step.stepId)!;
  ctx.awaitingOperator = { stepId: step.stepId, actionId: step.actionId, round, since, deadline };
  ctx.waiting = { stepId: step.stepId, waitFor: 'an operator (retry, skip or compensate)', deadline };
  indexPending(
    ctx,
    pendingApprovalEntry({
      stepId: step.stepId,
      digest: spec.digest,
      waitFor: 'operator',
      quorum: 1,
      sinceMs: since,
      deadlineMs: deadline,
    }),
    since,
  );
  publishDetails(ctx);
  const done = (d: { decision: OperatorDecision; by: string; why: string }) => {
    ctx.awaitingOperator = null;
    ctx.waiting = null;
    indexPending(ctx, null);
    return d;
  };
  // A wake-up only: the session reads this saga by id to learn what awaits (SPEC §11.2).
  await wf
    .getExternalWorkflowHandle(sessionWorkflowId(ctx.sessionId))
    .signal(sagaAwaitingSignal, { sagaId: ctx.sagaId })
    .catch(logDropped('the wake-up telling the session that this saga awaits its operator'));
  for (;;) {
    ctx.woken = false;
    const left = deadline - Date.now();
    try {
      if (left > 0) await wf.condition(() => ctx.woken, left);
    } catch (err) {
      if (!wf.isCancellation(err)) throw err;
      ctx.cancelled = true;
      return done({
        decision: 'compensate',
        by: 'cancellation',
        why: 'the saga was cancelled while it awaited its operator',
      });
    }
    // The session's word, for this round: read by our own activity (a push decides nothing).
    const read = await wf.CancellationScope.nonCancellable(() =>
      readOperatorDecision({ sessionId: ctx.sessionId, sagaId: ctx.sagaId, stepId: step.stepId, round }),
    );
    if (read) return done({ decision: read.decision, by: read.by, why: `operator ${read.by} decided to compensate` });
    if (Date.now() >= deadline)
      return done({
        decision: 'compensate',
        by: 'deadline',
        why: `no operator decided within ${Math.round((deadline - since) / 1000)} s`,
      });
  }
}
