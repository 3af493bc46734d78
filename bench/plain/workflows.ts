/**
 * The baseline: a saga shaped like temporalio/samples-typescript's `saga`
 * sample — each step an activity, a stack of compensations pushed as steps
 * commit and undone in reverse on failure, inside a non-cancellable scope.
 * Its activity options are the governed saga's for a step with the defaults,
 * from the same definition (workflows/stepOptions.ts): start-to-close 300 s,
 * heartbeat 5 s, one attempt, the same non-retryable types, the execute's
 * cancellation type, a summary.
 */
import {
  allHandlersFinished,
  CancellationScope,
  condition,
  defineUpdate,
  proxyActivities,
  setHandler,
} from '@temporalio/workflow';
import {
  DEFAULT_BACKOFF_COEFFICIENT,
  DEFAULT_INITIAL_INTERVAL_MS,
  DEFAULT_MAX_RETRIES,
  DEFAULT_STEP_TIMEOUT_SECONDS,
} from '../../src/core/saga';
import { executeOptions, undoOptions, type StepTiming } from '../../workflows/stepOptions';
import type * as activities from './activities';
import type { PlainStepTask } from './activities';

const { plainStep, plainUndo, plainTool } = proxyActivities<typeof activities>({ startToCloseTimeout: '300 seconds' });

export interface PlainSagaInput {
  sagaId: string;
  steps: PlainStepTask[];
  /** The steps at once (Promise.all), as a hand-written fan-out would: the baseline of a parallel group of ALL. */
  parallel?: boolean;
}

export interface PlainSagaResult {
  sagaId: string;
  state: 'completed' | 'compensated';
  results: unknown[];
  error?: string;
}

/** Exactly what the governed saga gives a step's activities when the step keeps its defaults: the same definition. */
function timingOf(step: PlainStepTask): StepTiming {
  return {
    actionId: step.actionId,
    agentDid: step.agentDid,
    timeoutSeconds: DEFAULT_STEP_TIMEOUT_SECONDS,
    maxRetries: DEFAULT_MAX_RETRIES,
    initialIntervalMs: DEFAULT_INITIAL_INTERVAL_MS,
    backoffCoefficient: DEFAULT_BACKOFF_COEFFICIENT,
    maximumIntervalMs: 100 * DEFAULT_INITIAL_INTERVAL_MS,
  };
}

export async function plainSaga(input: PlainSagaInput): Promise<PlainSagaResult> {
  const compensations: Array<() => Promise<unknown>> = [];
  const results: unknown[] = [];
  try {
    if (input.parallel) {
      // Each step's undo is pushed as it commits; a failure undoes those, in reverse of their commit.
      const all = await Promise.all(
        input.steps.map(async (step) => {
          const result = await plainStep.executeWithOptions(executeOptions(timingOf(step)), [step]);
          compensations.unshift(() => plainUndo.executeWithOptions(undoOptions(timingOf(step)), [step, result]));
          return result;
        }),
      );
      return { sagaId: input.sagaId, state: 'completed', results: all };
    }
    for (const step of input.steps) {
      const result = await plainStep.executeWithOptions(executeOptions(timingOf(step)), [step]);
      results.push(result);
      compensations.unshift(() => plainUndo.executeWithOptions(undoOptions(timingOf(step)), [step, result]));
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

/**
 * The baseline of `npm run bench:tools`: an agent's turn on plain Temporal — each tool call an update that runs
 * the tool as one activity and answers its result; `endTurn` completes it. The bench passes the governed step's
 * own timing, so the activity options are the governed step's, from the same definition (workflows/stepOptions.ts).
 */
export const callToolUpdate = defineUpdate<unknown, [PlainStepTask & { handler: string }, StepTiming]>('callTool');
export const endTurnUpdate = defineUpdate<void>('endTurn');

export async function plainTurn(): Promise<number> {
  let calls = 0;
  let ended = false;
  setHandler(callToolUpdate, async (task, timing) => {
    calls++;
    return plainTool.executeWithOptions(executeOptions(timing), [task]);
  });
  setHandler(endTurnUpdate, () => {
    ended = true;
  });
  await condition(() => ended && allHandlersFinished());
  return calls;
}
