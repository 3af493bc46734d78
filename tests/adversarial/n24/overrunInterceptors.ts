/**
 * Test-only workflow interceptors, bundled only by tests/adversarial/n24-evicted-continuation.test.ts (never
 * by a hypervisor worker): a saga's first workflow task overruns the SDK's isolate execution timeout (5 s,
 * @temporalio/worker lib/workflow/reusable-vm.js), as it does when a worker is paused (SIGSTOP) inside that
 * activation and resumed. The SDK's watchdog terminates the call into the VM; promise continuations the
 * activation had queued stay in the context's microtask queue and run in the next call into it.
 *
 * Where it overruns is the saga's id:
 * - OVERRUN_AFTER_ACTIVATE: after every job of the activation ran (all of the workflow's sync code returned);
 * - OVERRUN_IN_EXECUTE: right after the workflow function returned its promise, before the SDK attaches its
 *   handlers (a termination there — e.g. at `untrackPromise(p)` in @temporalio/workflow lib/logs.js
 *   executeWithLifecycleLogging, the next interrupt check — leaves that promise with none).
 */
import { workflowInfo, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

export const OVERRUN_AFTER_ACTIVATE = 'overrun-after-activate';
export const OVERRUN_IN_EXECUTE = 'overrun-in-execute';

/** A first workflow task's history: WorkflowExecutionStarted, WorkflowTaskScheduled, WorkflowTaskStarted (its retry's is longer). */
const FIRST_TASK_HISTORY_LENGTH = 3;

function overrunsHere(mark: string): boolean {
  const info = workflowInfo();
  return (
    info.workflowType === 'sagaWorkflow' &&
    info.workflowId.endsWith(`/${mark}`) &&
    info.historyLength === FIRST_TASK_HISTORY_LENGTH
  );
}

/** Runs until the SDK's watchdog terminates the activation. */
function overrun(): never {
  for (;;);
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [
    {
      execute(input, next) {
        const result = next(input);
        if (overrunsHere(OVERRUN_IN_EXECUTE)) overrun();
        return result;
      },
    },
  ],
  internals: [
    {
      activate(input, next) {
        next(input);
        if (overrunsHere(OVERRUN_AFTER_ACTIVATE)) overrun();
      },
    },
  ],
});
