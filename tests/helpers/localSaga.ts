/**
 * A saga walked in process over the core's state machine (src/core/saga.ts):
 * what the unit tests drive to check the transitions end to end. The real walk
 * is the saga workflow's (workflows/saga/), with Temporal's timeouts and retries.
 */
import {
  commitStep,
  compensateStep,
  compensationPlan,
  failCompensation,
  finishSaga,
  recordAttemptFailure,
  startCompensation,
  startStep,
  startStepCompensation,
  type Escalation,
  type SagaState,
  type SagaStatus,
  type SagaStep,
} from '../../src/core/saga';

export type StepRunner = (step: SagaStep) => unknown;

export interface LocalSagaResult {
  state: SagaStatus;
  failedStepId: string | null;
  /** The last error of the failed step. */
  error: string | null;
  escalations: Escalation[];
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Run a saga in process, as the original's execute_step did: each pending
 * step in order, retried up to maxRetries (backoff delays are computed but not
 * waited: no clocks here; timeouts are the Temporal layer's job); on a failure
 * the committed steps are undone in reverse commit order. Every event is
 * stamped `at` (default: the saga's last update), so runs are deterministic.
 */
export async function runSagaLocally(
  saga: SagaState,
  executor: StepRunner,
  undoer: StepRunner = () => undefined,
  at: number = saga.updatedAt,
): Promise<LocalSagaResult> {
  let failed: SagaStep | null = null;
  for (const step of saga.steps) {
    if (step.state !== 'pending') continue;
    startStep(saga, step.stepId, at);
    for (;;) {
      let result: unknown;
      try {
        result = await executor(step);
      } catch (err) {
        if (recordAttemptFailure(saga, step.stepId, message(err), at).retry) continue;
        failed = step;
        break;
      }
      commitStep(saga, step.stepId, result, at);
      break;
    }
    if (failed) break;
  }
  if (failed && saga.commitOrder.length > 0) {
    startCompensation(saga, at, `step ${failed.stepId} failed`);
    for (const step of compensationPlan(saga)) {
      if (!startStepCompensation(saga, step.stepId, at)) continue;
      try {
        await undoer(step);
        compensateStep(saga, step.stepId, at);
      } catch (err) {
        failCompensation(saga, step.stepId, message(err), at);
      }
    }
  }
  const { state, escalations } = finishSaga(saga, at);
  return { state, failedStepId: failed ? failed.stepId : null, error: failed ? failed.error : null, escalations };
}
