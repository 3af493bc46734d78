/**
 * What a closed saga's own history shows of its steps (issue 24, N7): read
 * from the server, an authentic source (SPEC §11.2), for a session whose saga
 * ended without an outcome — terminated or timed out — so it can compensate
 * the steps that may have acted.
 */
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { stepDigest } from '../src/core/sagaContract';

/** One step as the history shows it: its last run, whether it may have acted, whether its undo ran. */
export interface StepInHistory {
  stepId: string;
  actionId: string;
  agentDid: string;
  digest: string;
  input: unknown;
  /**
   * committed: its execute completed. failed: every run failed with an answer, without acting.
   * unknown: it may have acted (no close — the saga ended while it ran —, timed out, cancelled, or the
   * step activity said so, see StepFailureDetails).
   */
  execute: 'committed' | 'failed' | 'unknown';
  result: unknown;
  attempts: number;
  error: string | null;
  /** As the saga scheduled it: its undo runs under the same. */
  timeoutSeconds: number;
  retry: { maximumAttempts: number; initialIntervalMs: number; backoffCoefficient: number; maximumIntervalMs: number };
  /** done: its undo completed in that run. failed: it failed after its retries. none: not asked, or in flight. */
  undo: 'none' | 'done' | 'failed';
  undoError: string | null;
  /** The event that closed its last execute (absent: still in flight): the order its steps ended in (SPEC §14). */
  endedAt?: number;
}

export interface SagaHistoryRead {
  /** The run's close (TERMINATED, TIMED_OUT, FAILED, …), RUNNING, or NOT_OURS: not a child of the session. */
  status: string;
  /** In the order the steps were first scheduled. */
  steps: StepInHistory[];
}

type Payloads = { payloads?: unknown[] | null } | null | undefined;
type Duration = { seconds?: unknown; nanos?: number | null } | null | undefined;

const valueOf = (p: Payloads): any => {
  try {
    const first = p?.payloads?.[0];
    return first ? defaultPayloadConverter.fromPayload(first as never) : undefined;
  } catch {
    return undefined;
  }
};
const msOf = (d: Duration): number | undefined => {
  if (!d) return undefined;
  const s = d.seconds as { toNumber?: () => number } | number | string | null | undefined;
  const seconds = typeof s === 'object' && s?.toNumber ? s.toNumber() : Number(s ?? 0);
  return seconds * 1000 + Math.round((d.nanos ?? 0) / 1e6);
};

export function sagaHistoryActivities(client: Client) {
  return {
    /** Only a saga of this session is read (its parent is the session's workflow). */
    async readSagaHistory(args: { workflowId: string; sessionWorkflowId: string }): Promise<SagaHistoryRead> {
      const handle = client.workflow.getHandle(args.workflowId);
      const description = await handle.describe();
      if (description.parentExecution?.workflowId !== args.sessionWorkflowId) return { status: 'NOT_OURS', steps: [] };
      if (description.status.name === 'RUNNING') return { status: 'RUNNING', steps: [] };
      const events = (await handle.fetchHistory()).events ?? [];
      const scheduled = new Map<string, { type: string; stepId: string }>();
      const steps = new Map<string, StepInHistory>();
      /** A run of the step that may have acted, before its last run (a kill cancelled it): it stays unknown unless one committed. */
      const actedBefore = new Set<string>();
      for (const e of events) {
        const a = e.activityTaskScheduledEventAttributes;
        if (a) {
          const type = a.activityType?.name ?? '';
          const task = valueOf(a.input);
          if ((type !== 'executeStep' && type !== 'compensateStep') || typeof task?.stepId !== 'string') continue;
          scheduled.set(String(e.eventId), { type, stepId: task.stepId });
          if (type !== 'executeStep') continue;
          const prior = steps.get(task.stepId);
          if (prior?.execute === 'unknown') actedBefore.add(task.stepId);
          const retry = a.retryPolicy;
          const initialIntervalMs = msOf(retry?.initialInterval) ?? 1000;
          steps.set(task.stepId, {
            stepId: task.stepId,
            actionId: String(task.actionId),
            agentDid: String(task.agentDid),
            // A compact task (workflows/saga/stepTask.ts) leaves its digest out: the step's own fields give it.
            digest: typeof task.digest === 'string' ? task.digest : stepDigest({ ...task, input: task.input }),
            input: task.input ?? null,
            execute: 'unknown',
            result: null,
            attempts: 1,
            error: null,
            timeoutSeconds: (msOf(a.startToCloseTimeout) ?? 300_000) / 1000,
            retry: {
              maximumAttempts: retry?.maximumAttempts || 1,
              initialIntervalMs,
              backoffCoefficient: retry?.backoffCoefficient || 2,
              maximumIntervalMs: msOf(retry?.maximumInterval) ?? 100 * initialIntervalMs,
            },
            undo: prior?.undo ?? 'none',
            undoError: prior?.undoError ?? null,
          });
          continue;
        }
        const closed =
          e.activityTaskCompletedEventAttributes ??
          e.activityTaskFailedEventAttributes ??
          e.activityTaskTimedOutEventAttributes ??
          e.activityTaskCanceledEventAttributes;
        const run = closed && scheduled.get(String(closed.scheduledEventId));
        const step = run && steps.get(run.stepId);
        if (!run || !step) continue;
        const completed = e.activityTaskCompletedEventAttributes;
        const failure = e.activityTaskFailedEventAttributes?.failure ?? e.activityTaskTimedOutEventAttributes?.failure;
        if (run.type === 'compensateStep') {
          if (completed) step.undo = 'done';
          else if (failure) {
            step.undo = 'failed';
            step.undoError = failure.message ?? 'the undo failed';
          }
          continue;
        }
        step.endedAt = Number(e.eventId);
        if (completed) {
          const out = valueOf(completed.result) as { result?: unknown; attempt?: unknown } | undefined;
          step.execute = 'committed';
          step.result = out?.result ?? null;
          step.attempts = typeof out?.attempt === 'number' ? out.attempt : 1;
          step.error = null;
          continue;
        }
        // The step activity says whether a failed attempt may have acted; anything else may have.
        const details = valueOf(failure?.applicationFailureInfo?.details) as
          { attempt?: unknown; mayHaveActed?: unknown } | undefined;
        const answered = !!e.activityTaskFailedEventAttributes && details?.mayHaveActed === false;
        step.execute = answered && !actedBefore.has(step.stepId) ? 'failed' : 'unknown';
        if (typeof details?.attempt === 'number') step.attempts = details.attempt;
        step.error = failure?.message ?? (e.activityTaskCanceledEventAttributes ? 'cancelled' : 'timed out');
      }
      return { status: description.status.name, steps: [...steps.values()] };
    },
  };
}
