/**
 * A parallel group (SPEC §14): its branches gated each on its own (their
 * agent, ring, approvals, lease) and run concurrently, each in a cancellation
 * scope of its own. The group resolves as soon as its policy is decided
 * (src/core/groups.ts); the branches still open are cancelled then — a running
 * step hears it at its next heartbeat — and, when the group was met, those that
 * may have acted are undone at once, in reverse of their ending. A group that
 * cannot meet its policy fails the saga, which compensates (compensation.ts).
 */
import * as wf from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import {
  commitStep,
  compensateStep as markCompensated,
  failCompensation,
  failStep,
  getStep,
  markOutcomeUnknown,
  markToolDefinitionChanged,
  startStep,
} from '../../src/core/saga';
import { branchEnded, losersToUndo, startLoserUndo, type GroupState } from '../../src/core/groups';
import { ATTR, SPANS } from '../../src/core/observability';
import { compensated, startSpan } from '../observe';
import { publishDetails, type SagaContext, type SagaStepState, type StepRun } from './context';
import { runExecute, runUndo } from './stepTask';
import { describeFailure, gateDeniedBy, outcomeUnknown, toolDefinitionChanged } from './failures';
import { confirmKill, gateStepSpanned, indexPending, stepAttributes } from './gate';

/** Runs a group to its decision; false when the saga goes no further (the group failed, or the saga was cancelled). */
export async function runGroup(ctx: SagaContext, group: GroupState): Promise<boolean> {
  const sagaScope = wf.CancellationScope.current();
  group.state = 'running';
  const status = (): GroupState['state'] => group.state;
  publishDetails(ctx);
  const open = new Map<string, wf.CancellationScope>();
  const runs = group.branches.map((stepId) => {
    const step = getStep(ctx.saga, stepId);
    const scope = new wf.CancellationScope();
    open.set(stepId, scope);
    const span = startSpan(SPANS.step, stepAttributes(ctx, step));
    return scope
      .run(() => span.run(() => runBranch(ctx, group, step, scope)))
      .then(() => {
        span.set({ [ATTR.stepState]: step.state });
        span.end();
        open.delete(stepId);
        branchEnded(ctx.saga, group, stepId);
        publishDetails(ctx);
      });
  });
  // A branch that throws (a broken rule, not a failed step) fails the workflow task, as a sequential step would.
  const all = Promise.all(runs);
  // Every branch ended decides the group, so this ends; a cancelled saga's wait ends at once (its branches too).
  await Promise.race([wf.condition(() => status() !== 'running'), all]).catch((err: unknown) => {
    if (!wf.isCancellation(err)) throw err;
  });
  // Decided (or the saga was cancelled): the branches still open no longer matter.
  for (const scope of open.values()) scope.cancel();
  await all;
  if (status() === 'met' && !(await undoLosers(ctx, group))) return false;
  if (status() === 'failed') {
    ctx.failedStepId = group.decidedBy;
    ctx.error = group.error;
  }
  if (sagaScope.consideredCancelled) {
    ctx.cancelled = true;
    ctx.error = 'the saga was cancelled while a group ran';
    return false;
  }
  publishDetails(ctx);
  return status() === 'met';
}

/** Cancelled before the group started: its branches fail without having acted, and the walk back begins. */
export function cancelGroupBefore(ctx: SagaContext, group: GroupState): void {
  for (const id of group.branches) {
    startStep(ctx.saga, id, Date.now());
    failStep(ctx.saga, id, 'cancelled before it started', Date.now());
    group.ended.push(id);
  }
  group.state = 'failed';
  group.decidedBy = group.branches[0]!;
  group.error = 'the saga was cancelled';
  ctx.cancelled = true;
  ctx.failedStepId = group.branches[0]!;
  ctx.error = 'the saga was cancelled';
}

/** The reason a branch stopped on its scope's cancellation. */
const cancelReason = (group: GroupState) =>
  group.state === 'running' ? 'the saga was cancelled' : `group ${group.groupId} was ${group.state} without it`;

/**
 * One branch: gated, then run as the step activity in a scope of its own (a kill of its agent cancels that
 * scope and the gate decides again: the kill's substitute, or a denial). It ends committed or failed; the
 * group decides what that means.
 */
async function runBranch(
  ctx: SagaContext,
  group: GroupState,
  step: SagaStepState,
  branchScope: wf.CancellationScope,
): Promise<void> {
  const spec = ctx.specs.get(step.stepId)!;
  /** A run of this branch was cancelled by its agent's kill: it may have acted. */
  let killedRun = false;
  const fail = (error: string, mayHaveActed = killedRun) => {
    if (step.state === 'pending') startStep(ctx.saga, step.stepId, Date.now());
    failStep(ctx.saga, step.stepId, error, Date.now());
    if (mayHaveActed) markOutcomeUnknown(ctx.saga, step.stepId);
  };
  for (;;) {
    let denied: string | null;
    try {
      denied = (await gateStepSpanned(ctx, step)).denied;
    } catch (err) {
      if (wf.isCancellation(err)) {
        // It was waiting at its gate (approvals, a witness): that wait is over.
        if (ctx.waiting?.stepId === step.stepId) {
          ctx.waiting = null;
          indexPending(ctx, null);
        }
        return fail(`cancelled before it ran: ${cancelReason(group)}`);
      }
      return fail(`the session could not decide step ${step.stepId}: ${describeFailure(err)}`);
    }
    if (denied) return fail(`RING_VIOLATION: ${denied}`);
    if (step.state === 'pending') startStep(ctx.saga, step.stepId, Date.now());
    publishDetails(ctx);
    const run: StepRun = {
      stepId: step.stepId,
      agentDid: spec.agentDid,
      scope: new wf.CancellationScope(),
      killed: false,
    };
    ctx.branchRuns.add(run);
    try {
      const { result, attempt } = await run.scope.run(() => runExecute(ctx, step));
      commitStep(ctx.saga, step.stepId, result, Date.now());
      step.attempts = attempt;
      return;
    } catch (err) {
      if (err instanceof wf.ActivityFailure && err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED)
        step.attempts = step.maxRetries + 1;
      const failedAttempt =
        err instanceof wf.ActivityFailure && err.cause instanceof wf.ApplicationFailure
          ? (err.cause.details?.[0] as { attempt?: unknown } | undefined)?.attempt
          : undefined;
      if (typeof failedAttempt === 'number' && failedAttempt > step.attempts) step.attempts = failedAttempt;
      // A retry the gate refused because its agent was killed: the session's word decides (hand-off or not).
      if (!run.killed && ctx.agents.get(run.agentDid)?.restriction === 2) await confirmKill(ctx, run);
      if (run.killed && !branchScope.consideredCancelled) {
        // SPEC §12: its agent was killed while it ran. The gate decides again: the kill's substitute, or a denial.
        killedRun = true;
        continue;
      }
      const gateRefusal = gateDeniedBy(err);
      const cancelled = wf.isCancellation(err);
      const error = gateRefusal
        ? `RING_VIOLATION: ${gateRefusal}`
        : cancelled
          ? `cancelled while it ran: ${cancelReason(group)}`
          : describeFailure(err);
      failStep(ctx.saga, step.stepId, error, Date.now());
      const changed = toolDefinitionChanged(err);
      if (changed) markToolDefinitionChanged(ctx.saga, step.stepId, changed);
      if (outcomeUnknown(err) || cancelled || killedRun) markOutcomeUnknown(ctx.saga, step.stepId);
      return;
    } finally {
      ctx.branchRuns.delete(run);
    }
  }
}

/**
 * A met group's branches that no longer matter and may have acted are undone now, in reverse of their ending,
 * each once, in a scope nothing cancels. A failed undo fails the group: the saga compensates and escalates.
 */
async function undoLosers(ctx: SagaContext, group: GroupState): Promise<boolean> {
  const losers = losersToUndo(ctx.saga, group);
  if (losers.length === 0) return true;
  await wf.CancellationScope.nonCancellable(async () => {
    for (const step of losers) {
      const span = startSpan(SPANS.compensation, stepAttributes(ctx, step));
      startLoserUndo(ctx.saga, step.stepId, Date.now());
      if (ctx.actions.get(step.actionId)?.readOnly && step.undoApi === null) {
        markCompensated(ctx.saga, step.stepId, Date.now());
        compensated(span, true);
        continue;
      }
      if (step.undoApi === null) {
        const error = `step ${step.stepId} (${step.actionId}) has no undo API`;
        failCompensation(ctx.saga, step.stepId, error, Date.now());
        compensated(span, false, error);
        continue;
      }
      try {
        await span.run(() => runUndo(ctx, step));
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
  const failedUndo = losers.find((s) => s.state === 'compensation_failed');
  if (!failedUndo) return true;
  group.state = 'failed';
  group.decidedBy = failedUndo.stepId;
  group.error = `group ${group.groupId}: the undo of ${failedUndo.stepId}, which no longer mattered, failed: ${failedUndo.error}`;
  ctx.failedStepId = failedUndo.stepId;
  ctx.error = group.error;
  return false;
}
