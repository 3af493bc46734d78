/**
 * The activity options of a saga step's execute and of its undo — one
 * definition, used by the saga's forward and backward walks, by the session
 * when it recovers a saga that ended without an outcome, and by the bench's
 * plain Temporal saga, so the baseline runs exactly what a governed step runs.
 */
import * as wf from '@temporalio/workflow';
import { retryPolicyOf, type SagaStep } from '../src/core/saga';

/** Steps heartbeat every second: a lost worker or a cancellation is noticed within this. */
export const HEARTBEAT_TIMEOUT_SECONDS = 5;

/** Failure types the step activity raises that no retry can change. */
export const EXECUTE_NON_RETRYABLE = [
  'UnknownStepHandler',
  'InvalidStep',
  'HttpToolRejected',
  'GateDenied',
  'StepResultTooLarge',
];
/** Failure types of an undo that no retry can change. */
export const UNDO_NON_RETRYABLE = ['NoUndo', 'HttpToolRejected', 'UnknownStepHandler'];

/** What the options depend on: the step's timing and retries, and who does what (the summary). */
export type StepTiming = Pick<
  SagaStep,
  | 'actionId'
  | 'agentDid'
  | 'timeoutSeconds'
  | 'maxRetries'
  | 'initialIntervalMs'
  | 'backoffCoefficient'
  | 'maximumIntervalMs'
>;

const timing = (step: StepTiming) => ({
  startToCloseTimeout: `${step.timeoutSeconds} seconds` as const,
  heartbeatTimeout: `${Math.min(step.timeoutSeconds, HEARTBEAT_TIMEOUT_SECONDS)} seconds` as const,
});

export function executeOptions(step: StepTiming): wf.ActivityOptions {
  return {
    ...timing(step),
    // A cancelled saga waits for the running step to stop before it compensates it.
    cancellationType: wf.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { ...retryPolicyOf(step), nonRetryableErrorTypes: EXECUTE_NON_RETRYABLE },
    summary: `${step.actionId} by ${step.agentDid}`,
  };
}

export function undoOptions(
  step: StepTiming,
  summary = `undo ${step.actionId} by ${step.agentDid}`,
): wf.ActivityOptions {
  return {
    ...timing(step),
    retry: { ...retryPolicyOf(step), nonRetryableErrorTypes: UNDO_NON_RETRYABLE },
    summary,
  };
}
