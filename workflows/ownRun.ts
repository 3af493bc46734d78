/**
 * N24: nothing a run leaves behind may act in another run, or take the worker down.
 *
 * The SDK ends an activation that overruns its isolate execution timeout (a worker paused inside it, then
 * resumed), but the promise continuations the activation had queued stay in the V8 context's microtask queue
 * and run after the next call into that context — on the SDK's reusable context, whichever run's that is. Every
 * workflow API they call then acts on that other run: a saga's continuation scheduled the saga's step in its
 * session's history (RELIABILITY.md N24). Or they run after their own run was disposed, outside any workflow
 * context, throw at the first workflow API, and a rejection with no handler kills the worker thread.
 *
 * Two guards, each on what only the run itself can know:
 * - Commands. Each run's interceptors (bundled into every hypervisor worker, innermost: worker/worker.ts) carry
 *   an AsyncLocalStorage of the run's own, entered by every way into the run (execute, signals, updates and
 *   their validators, queries); promise continuations keep it. A command whose caller is not inside the run's
 *   own storage — a continuation queued by another run — is parked: never sent, never settled, so the foreign
 *   code goes no further and rejects nothing.
 * - The synchronous APIs our code calls that change a run's history or its random stream (search attributes,
 *   patch markers, `uuid4`): each module instance belongs to one run (the reusable context keeps a module cache per run), so
 *   a module-level run id tells a continuation of this run from another run's activation it runs inside.
 *
 * Legitimate code always runs inside its own run's storage, live and on replay, so neither guard changes what a
 * history records. A workflow's own promise gets a handler as soon as it exists, so a termination before the
 * SDK attaches its own leaves nothing unhandled.
 */
import * as wf from '@temporalio/workflow';

/** This module instance's run: modules are evaluated afresh for each run (the SDK's per-run module cache). */
const OWN_RUN_ID: string | undefined = wf.inWorkflowContext() ? wf.workflowInfo().runId : undefined;

/** True when the code calling runs in the activation of the run it belongs to. */
export function inOwnRun(): boolean {
  return wf.inWorkflowContext() && wf.workflowInfo().runId === OWN_RUN_ID;
}

/** `wf.upsertSearchAttributes`, skipped for a continuation running in another run's activation. */
export function upsertSearchAttributes(attributes: Parameters<typeof wf.upsertSearchAttributes>[0]): void {
  if (inOwnRun()) wf.upsertSearchAttributes(attributes);
}

/**
 * `wf.patched`, which marks the running activation's history: only this run's own code marks it. A continuation
 * of another run takes the patched path (the newest code) and is parked at its next command.
 */
export function patched(patchId: string): boolean {
  return inOwnRun() ? wf.patched(patchId) : true;
}

/** The id an evicted run's continuation gets instead of drawing on another run's random stream. */
export const FOREIGN_RUN_UUID = '00000000-0000-4000-8000-000000000000';

/** `wf.uuid4`, which draws on the running activation's random stream: only this run's own code draws. */
export function uuid4(): string {
  return inOwnRun() ? wf.uuid4() : FOREIGN_RUN_UUID;
}

/**
 * A floating promise (started, never awaited): an error of this run's own code fails its workflow task as
 * before (rethrown, unhandled, which the SDK pins on this run); one thrown by a continuation outside this
 * run, after its eviction, is dropped rather than killing the worker thread.
 */
export function detach(promise: Promise<unknown>): void {
  promise.catch((err: unknown) => {
    if (inOwnRun()) throw err;
  });
}

/** A promise that never settles: what a command of a foreign continuation gets. */
function parked<T>(): Promise<T> {
  return new Promise<T>(() => undefined);
}

export const interceptors: wf.WorkflowInterceptorsFactory = () => {
  const own = new wf.AsyncLocalStorage<true>();
  const enter = <T>(fn: () => T): T => own.run(true, fn);
  const ours = (): boolean => own.getStore() === true;
  return {
    inbound: [
      {
        execute(input, next) {
          const result = enter(() => next(input));
          result.catch(() => undefined);
          return result;
        },
        handleSignal: (input, next) => enter(() => next(input)),
        handleUpdate: (input, next) => enter(() => next(input)),
        validateUpdate: (input, next) => enter(() => next(input)),
        handleQuery: (input, next) => enter(() => next(input)),
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => (ours() ? next(input) : parked()),
        scheduleLocalActivity: (input, next) => (ours() ? next(input) : parked()),
        startTimer: (input, next) => (ours() ? next(input) : parked()),
        startChildWorkflowExecution: (input, next) => (ours() ? next(input) : parked()),
        signalWorkflow: (input, next) => (ours() ? next(input) : parked()),
        continueAsNew: (input, next) => (ours() ? next(input) : parked()),
        startNexusOperation: (input, next) => (ours() ? next(input) : parked()),
      },
    ],
  };
};
