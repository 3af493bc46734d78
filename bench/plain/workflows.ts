/**
 * The baseline: a saga shaped like temporalio/samples-typescript's `saga`
 * sample — each step an activity, a stack of compensations pushed as steps
 * commit and undone in reverse on failure, inside a non-cancellable scope.
 * Its activity options are the governed saga's for a step with the defaults
 * (start-to-close 300 s, one attempt, the same retry fields, a summary).
 */
import { CancellationScope, proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type * as activities from './activities';
import type { PlainStepTask } from './activities';

const { plainStep, plainUndo } = proxyActivities<typeof activities>({ startToCloseTimeout: '300 seconds' });

export interface PlainSagaInput {
  sagaId: string;
  steps: PlainStepTask[];
}

export interface PlainSagaResult {
  sagaId: string;
  state: 'completed' | 'compensated';
  results: unknown[];
  error?: string;
}

/** What the governed saga gives a step's activity when the step keeps its defaults. */
function optionsFor(step: PlainStepTask, undo: boolean): ActivityOptions {
  return {
    startToCloseTimeout: '300 seconds',
    retry: {
      initialInterval: 1000,
      backoffCoefficient: 2,
      maximumInterval: 100_000,
      maximumAttempts: 1,
      nonRetryableErrorTypes: undo
        ? ['NoUndo', 'HttpToolRejected']
        : ['UnknownStepHandler', 'InvalidStep', 'HttpToolRejected'],
    },
    summary: `${undo ? 'undo ' : ''}${step.actionId} by ${step.agentDid}`,
  };
}

export async function plainSaga(input: PlainSagaInput): Promise<PlainSagaResult> {
  const compensations: Array<() => Promise<unknown>> = [];
  const results: unknown[] = [];
  try {
    for (const step of input.steps) {
      const result = await plainStep.executeWithOptions(optionsFor(step, false), [step]);
      results.push(result);
      compensations.unshift(() => plainUndo.executeWithOptions(optionsFor(step, true), [step, result]));
    }
    return { sagaId: input.sagaId, state: 'completed', results };
  } catch (err) {
    await CancellationScope.nonCancellable(async () => {
      for (const undo of compensations) {
        try {
          await undo();
        } catch {
          // The sample logs and goes on with the next compensation.
        }
      }
    });
    return {
      sagaId: input.sagaId,
      state: 'compensated',
      results,
      error: err instanceof Error ? err.message : String(err),
    };
  }
}
