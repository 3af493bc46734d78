/**
 * Test-only workflow interceptor: a session's live activations see workflow
 * time LIVE_CLOCK_AHEAD_MS ahead of the time its history gives, which is what
 * a replay sees. This is how the live clock can differ from a replay's: the SDK
 * core never moves workflow time back, and a refused update's speculative task
 * moves it forward without a trace in history. Here it happens on every live
 * activation, so each delta a replay recomputes differs from the one recorded live.
 */
import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { getActivator } from '@temporalio/workflow/lib/global-attributes';

export const LIVE_CLOCK_AHEAD_MS = 1_500;

export const interceptors: WorkflowInterceptorsFactory = () => ({
  internals: [
    {
      activate(input, next) {
        if (
          input.batchIndex === 0 &&
          !input.activation.isReplaying &&
          workflowInfo().workflowType === 'sessionWorkflow'
        ) {
          getActivator().now += LIVE_CLOCK_AHEAD_MS;
        }
        return next(input);
      },
    },
  ],
});
