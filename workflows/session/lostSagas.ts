/**
 * A saga that ended without an outcome (issue 24, N7; SPEC §6, §11.10): terminated or timed out, it
 * returned no snapshot, so nothing said what its steps did. That is a failure of unknown outcome: the
 * session reads the closed run's history from the server (an activity: the server is an authentic
 * source, SPEC §11.2) and finishes what the saga would have done — the steps that may have acted are
 * compensated in reverse by the saga's own rules (src/core/saga.ts), each with the undo the session's
 * registry declares for the step's action (never what the history names), under the saga's idempotency
 * key, so an undo the saga already asked for is not done twice by the tool. The result is a snapshot as
 * a saga's query shows it, which `settle` reads as its outcome (outcomes.ts): it charges the steps that
 * acted, records and reports the outcome, and a failed undo escalates (its agent slashed).
 */
import * as wf from '@temporalio/workflow';
import { undoOptions } from '../stepOptions';
import type { createActivities, StepInHistory } from '../../activities';
import {
  addStep,
  commitStep,
  compensateStep as markCompensated,
  createSaga,
  failCompensation,
  failStep,
  finishSaga,
  markOutcomeUnknown,
  startCompensation,
  startStep,
  startStepCompensation,
  transitionSaga,
  type SagaState,
  type SagaStep,
} from '../../src/core/saga';
import { compensationPlan, groupStates } from '../../src/core/groups';
import type { SagaSnapshot } from '../../src/contract/sagaTypes';
import type { SagaRecord } from '../../src/contract/sessionTypes';
import type { SessionContext } from './context';
import { actionView } from './views';

type Activities = ReturnType<typeof createActivities>;
/** The closed run's history: the outcome rests on it, so it is asked a little longer than an integration. */
const { readSagaHistory } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 10, initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
});
/** Timeouts and retries per step, as the saga runs an undo (its step's own, read from the history). */
const { compensateStep } = wf.proxyActivities<Activities>({ startToCloseTimeout: '5 minutes' });

/** Sagas whose recovery is under way in this run (their end may be read twice: a completion and a wake-up). */
const recovering = new WeakMap<SessionContext, Set<string>>();

/**
 * The outcome of a saga that ended without one, as its history shows it and the session finished it.
 * 'busy': its recovery is under way already. null: there is nothing to recover from (the workflow is not
 * this session's child, or its history could not be read): it stays lost.
 */
export async function recoverLostSaga(
  ctx: SessionContext,
  saga: SagaRecord,
  failure: string | null,
): Promise<SagaSnapshot | null | 'busy'> {
  const seen = recovering.get(ctx) ?? new Set<string>();
  recovering.set(ctx, seen);
  if (seen.has(saga.sagaId)) return 'busy';
  seen.add(saga.sagaId);
  const read = await readSagaHistory({
    workflowId: saga.workflowId,
    sessionWorkflowId: wf.workflowInfo().workflowId,
  }).catch((err) => {
    wf.log.warn('the history of a saga that ended without an outcome could not be read', {
      sagaId: saga.sagaId,
      error: String(err),
    });
    return null;
  });
  if (!read || read.status === 'RUNNING' || read.status === 'NOT_OURS') return null;
  const how = read.status.toLowerCase().replace(/_/g, ' ');
  const error = `the saga was ${how}${failure ? ` (${failure})` : ''} before it reached an outcome; the session compensated what its history shows`;
  try {
    return await finish(ctx, saga, new Map(read.steps.map((s) => [s.stepId, s])), how, error);
  } catch (err) {
    wf.log.error('a saga that ended without an outcome could not be recovered', {
      sagaId: saga.sagaId,
      error: String(err),
    });
    return null;
  }
}

/** The saga's steps as the session granted them, moved as far as the history shows, then walked back. */
async function finish(
  ctx: SessionContext,
  saga: SagaRecord,
  history: Map<string, StepInHistory>,
  how: string,
  error: string,
): Promise<SagaSnapshot> {
  const state = createSaga({ sagaId: saga.sagaId, sessionId: ctx.sessionId, at: saga.startedAt });
  const at = Date.now();
  // The session's record names the steps (and their agents, after a kill's hand-off); the history, what ran.
  for (const granted of saga.steps) {
    const ran = history.get(granted.stepId);
    const action = actionView(ctx, granted.actionId);
    const agentDid =
      ran && (ran.agentDid === granted.agentDid || ran.agentDid === granted.handedFrom?.agentDid)
        ? ran.agentDid
        : granted.agentDid;
    const interval = (ms: number) => Math.max(1, Math.round(ms));
    addStep(
      state,
      {
        stepId: granted.stepId,
        actionId: granted.actionId,
        agentDid,
        executeApi: action?.executeApi ?? undefined,
        undoApi: action?.undoApi ?? undefined,
        ...(ran && {
          timeoutSeconds: ran.timeoutSeconds > 0 ? ran.timeoutSeconds : undefined,
          maxRetries: Math.max(0, Math.floor(ran.retry.maximumAttempts) - 1),
          initialIntervalMs: interval(ran.retry.initialIntervalMs),
          backoffCoefficient: Math.max(1, ran.retry.backoffCoefficient),
          maximumIntervalMs: interval(ran.retry.maximumIntervalMs),
        }),
      },
      at,
    );
    if (!ran) continue;
    startStep(state, granted.stepId, at).attempts = ran.attempts;
    if (ran.execute === 'committed') commitStep(state, granted.stepId, ran.result, at);
    else if (ran.execute === 'failed') failStep(state, granted.stepId, ran.error ?? 'failed', at);
    else {
      failStep(state, granted.stepId, ran.error ?? `its saga was ${how} while it ran: it may have acted`, at);
      markOutcomeUnknown(state, granted.stepId);
    }
  }
  if (saga.groups?.length) walkBackThroughGroups(state, saga.groups, history);
  const failedStepId = state.steps.find((s) => s.state === 'failed')?.stepId ?? null;
  const compensationOrder: string[] = [];
  if (compensationPlan(state).length === 0) transitionSaga(state, 'failed', Date.now(), error);
  else {
    startCompensation(state, Date.now(), error);
    // What the saga's own walk back did already counts: an undo is asked once.
    for (const step of compensationPlan(state)) {
      const ran = history.get(step.stepId)!;
      if (ran.undo === 'none') continue;
      if (!startStepCompensation(state, step.stepId, Date.now())) continue;
      if (ran.undo === 'done') {
        markCompensated(state, step.stepId, Date.now());
        compensationOrder.push(step.stepId);
      } else failCompensation(state, step.stepId, ran.undoError ?? 'the undo failed', Date.now());
    }
    await wf.CancellationScope.nonCancellable(async () => {
      for (const step of compensationPlan(state)) {
        if (!startStepCompensation(state, step.stepId, Date.now())) continue; // no undo declared: it escalates
        try {
          await undo(ctx, saga, state, step, history.get(step.stepId)!);
          markCompensated(state, step.stepId, Date.now());
          compensationOrder.push(step.stepId);
        } catch (err) {
          failCompensation(state, step.stepId, describe(err), Date.now());
        }
      }
    });
    finishSaga(state, Date.now());
  }
  return {
    saga: state,
    workflowId: saga.workflowId,
    sessionId: ctx.sessionId,
    digests: Object.fromEntries(saga.steps.map((s) => [s.stepId, s.digest])),
    grants: {},
    waiting: null,
    compensationOrder,
    failedStepId,
    error,
    cancelled: false,
  };
}

/**
 * SPEC §14: a saga with parallel groups is walked back through them, each group's branches in reverse of the
 * order they ended, as the history shows it (a branch still in flight ended last). A saga without groups keeps
 * its plan (src/core/saga.ts).
 */
function walkBackThroughGroups(
  state: SagaState,
  groups: NonNullable<SagaRecord['groups']>,
  history: Map<string, StepInHistory>,
): void {
  state.groups = groupStates(groups);
  for (const group of state.groups) {
    const ran = group.branches.filter((id) => history.has(id));
    const endedAt = (id: string) => history.get(id)!.endedAt ?? Number.MAX_SAFE_INTEGER;
    group.ended = ran.sort((a, b) => endedAt(a) - endedAt(b));
    group.state = 'failed';
    group.error = 'its saga ended without an outcome';
  }
}

/** One undo, as the saga would have run it: its step's timeout and retries, under the saga's key. */
function undo(ctx: SessionContext, saga: SagaRecord, state: SagaState, step: SagaStep, ran: StepInHistory) {
  return compensateStep.executeWithOptions(
    undoOptions(step, `undo ${step.actionId} by ${step.agentDid} (saga ${state.sagaId} ended without an outcome)`),
    [
      {
        sessionId: ctx.sessionId,
        sagaId: saga.sagaId,
        stepId: step.stepId,
        digest: ran.digest,
        actionId: step.actionId,
        agentDid: step.agentDid,
        executeApi: step.executeApi ?? '',
        undoApi: step.undoApi,
        input: ran.input,
        result: step.result,
        sagaWorkflowId: saga.workflowId,
      },
    ],
  );
}

function describe(err: unknown): string {
  if (err instanceof wf.ActivityFailure && err.cause) return describe(err.cause);
  if (err instanceof wf.TimeoutFailure)
    return `timed out (${String(err.timeoutType).toLowerCase().replace(/_/g, '-')})`;
  return err instanceof Error ? err.message : String(err);
}
