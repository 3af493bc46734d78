/**
 * The saga workflow: steps run as activities with Temporal's own timeout,
 * retry and backoff taken from each step; before each step the gate checks
 * the acting agent's current ring against the session's ring view; on failure
 * the committed steps are compensated in reverse order of commit, in a scope
 * no cancellation can interrupt. A failed compensation escalates: the session
 * slashes the step's agent.
 */
import * as wf from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type * as activities from '../activities';
import { parse } from '../src/common';
import { SagaInputSchema, ApprovalSchema, WitnessSchema, RingViewSchema, type RingView, type SagaEvent, type SagaInputRaw, type SagaStep as StepSpec } from '../src/contract';
import { gateStep } from '../src/gate';
import {
  addStep, commitStep, compensateStep as markCompensated, compensationPlan, createSaga, failCompensation, failStep,
  finishSaga, retryPolicyOf, startCompensation, startStep, startStepCompensation, type SagaState,
} from '../src/saga';
import {
  approveSignal, ringViewSignal, sagaEscalatedSignal, sagaEventSignal, sagaStartedSignal, sagaStateQuery,
  sessionWorkflowId, witnessSignal,
} from './definitions';
import { governed } from './failures';
import { HvAgentDids, HvSagaState, HvSessionId } from './searchAttributes';
import type { SagaSnapshot } from './sagaTypes';

const { executeStep, compensateStep } = wf.proxyActivities<typeof activities>({ startToCloseTimeout: '5 minutes' });

/** How long a saga waits for its session to send the first ring view. */
const SESSION_ANSWER_TIMEOUT = '2 minutes';

export interface SagaWorkflowInput extends SagaInputRaw {
  /** Given by the session when it starts the saga as its child. */
  ringView?: RingView;
}

function describeFailure(err: unknown): string {
  if (err instanceof wf.ActivityFailure && err.cause) return describeFailure(err.cause);
  if (err instanceof wf.TimeoutFailure) return `timed out (${String(err.timeoutType).toLowerCase().replace(/_/g, '-')})`;
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Steps run only while the session is active: a terminated session denies the rest. */
function sessionClosed(state: string): ReturnType<typeof gateStep> {
  return {
    allowed: false, requiredRing: 3, agentRing: 3, sigmaEff: 0, reason: `the session is ${state}, not active`,
    requiresConsensus: false, requiresSreWitness: false, waitFor: 'none',
  };
}

export async function sagaWorkflow(raw: SagaWorkflowInput): Promise<SagaSnapshot> {
  const input = governed(() => parse(SagaInputSchema, raw, 'saga input'));
  const workflowId = wf.workflowInfo().workflowId;
  const sagaId = input.sagaId ?? workflowId;
  const specs: Record<string, StepSpec & { stepId: string }> = {};
  const saga: SagaState = governed(() => {
    const s = createSaga({ sagaId, sessionId: input.sessionId, at: Date.now() });
    input.steps.forEach((spec, i) => {
      const stepId = spec.stepId ?? `step-${i + 1}`;
      specs[stepId] = { ...spec, stepId };
      addStep(s, {
        stepId,
        actionId: spec.actionId,
        agentDid: spec.agentDid,
        executeApi: spec.executeApi ?? `handler:${spec.handler}`,
        // A handler's undo is known to the worker; an HTTP tool's must be given.
        undoApi: spec.handler ? `handler:${spec.handler}` : spec.undoApi,
        timeoutSeconds: spec.timeoutSeconds,
        maxRetries: spec.retry.maximumAttempts - 1,
        initialIntervalMs: Math.round(spec.retry.initialIntervalSeconds * 1000),
        backoffCoefficient: spec.retry.backoffCoefficient,
        maximumIntervalMs: spec.retry.maximumIntervalSeconds ? Math.round(spec.retry.maximumIntervalSeconds * 1000) : undefined,
      }, Date.now());
    });
    return s;
  });

  const session = wf.getExternalWorkflowHandle(sessionWorkflowId(input.sessionId));
  const agentDids = [...new Set(input.steps.map((s) => s.agentDid))].sort();
  // A ring view in the input is trusted only from the session itself (its parent); anyone else waits for the session's.
  const fromSession = wf.workflowInfo().parent?.workflowId === sessionWorkflowId(input.sessionId);
  let view: RingView | undefined = fromSession ? raw.ringView : undefined;
  const approvals: Record<string, string[]> = {};
  const witnesses: Record<string, string> = {};
  const compensationOrder: string[] = [];
  let failedStepId: string | null = null;
  let error: string | null = null;

  const snapshot = (): SagaSnapshot => ({
    saga, workflowId, ringViewVersion: view?.version ?? null, approvals, witnesses, compensationOrder, failedStepId, error,
  });

  wf.setHandler(ringViewSignal, (v) => {
    const parsed = RingViewSchema.safeParse(v);
    if (parsed.success && (!view || parsed.data.version >= view.version)) view = parsed.data;
  });
  wf.setHandler(approveSignal, (a) => {
    const parsed = ApprovalSchema.safeParse(a);
    if (!parsed.success) return;
    const { stepId, approverDid } = parsed.data;
    const step = specs[stepId];
    const approver = view?.participants[approverDid];
    // Consensus comes from other active participants, each counted once.
    if (!step || approverDid === step.agentDid || !approver?.active) return;
    const list = (approvals[stepId] ??= []);
    if (!list.includes(approverDid)) list.push(approverDid);
  });
  wf.setHandler(witnessSignal, (w) => {
    const parsed = WitnessSchema.safeParse(w);
    if (parsed.success && specs[parsed.data.stepId] && parsed.data.witnessDid !== specs[parsed.data.stepId]!.agentDid) {
      witnesses[parsed.data.stepId] = parsed.data.witnessDid;
    }
  });
  wf.setHandler(sagaStateQuery, snapshot, { description: 'The saga: its state, each step with attempts and errors, approvals and compensation order.' });

  const tellSession = (event: SagaEvent) =>
    session.signal(sagaEventSignal, event).catch(() => undefined);

  /** The saga state last indexed; an upsert is a history event, so only a change is upserted. */
  let indexed: string | undefined;
  function publishState(): void {
    if (saga.state !== indexed) {
      indexed = saga.state;
      // The session's id and agents too, so a saga started without them is still listed with its session.
      wf.upsertSearchAttributes([
        { key: HvSagaState, value: saga.state },
        { key: HvSessionId, value: input.sessionId },
        { key: HvAgentDids, value: agentDids },
      ]);
    }
    const rows = saga.steps.map((s) => `| ${s.stepId} | ${s.actionId} | ${s.agentDid} | ${s.state} | ${s.attempts} |`);
    // The Web UI's card can clip its last lines: what matters comes first.
    wf.setCurrentDetails([
      `## Saga ${sagaId} — ${saga.state}`,
      `Session \`${input.sessionId}\`${input.description ? ` · ${input.description}` : ''}`,
      ...(error ? ['', `**Failure:** ${error}`] : []),
      ...(compensationOrder.length ? ['', `Compensated in order: ${compensationOrder.join(' → ')}`] : []),
      '', '| step | action | agent | state | attempts |', '|---|---|---|---|---|', ...rows,
      '', `_${saga.steps.length} steps · updated by the saga workflow_`,
    ].join('\n'));
  }

  // Register with the session (also when started directly by a client) and get its ring view.
  publishState();
  try {
    await session.signal(sagaStartedSignal, { sagaId, workflowId, description: input.description });
  } catch {
    throw wf.ApplicationFailure.nonRetryable(`session ${input.sessionId} does not exist or has ended`, 'SESSION_NOT_FOUND');
  }
  if (!(await wf.condition(() => view !== undefined, SESSION_ANSWER_TIMEOUT))) {
    throw wf.ApplicationFailure.nonRetryable(`session ${input.sessionId} sent no ring view`, 'SESSION_NOT_FOUND');
  }

  async function gate(stepId: string): Promise<string | null> {
    const spec = specs[stepId]!;
    const decide = () => view!.sessionState !== 'active' ? sessionClosed(view!.sessionState) : gateStep({
      agent: view!.participants[spec.agentDid] as never,
      action: view!.actions[spec.actionId],
      hasConsensus: (approvals[stepId]?.length ?? 0) >= spec.quorum,
      hasSreWitness: witnesses[stepId] !== undefined,
    });
    let decision = decide();
    if (decision.waitFor !== 'none') {
      const what = decision.waitFor === 'consensus' ? `${spec.quorum} approvals` : 'an SRE witness';
      await tellSession({ sagaId, kind: 'ring_decision', stepId, agentDid: spec.agentDid, actionId: spec.actionId, allowed: false, detail: `waiting for ${what}` });
      // Durable wait: approvals or a witness arrive as signals; a demotion meanwhile re-decides.
      await wf.condition(() => decide().waitFor === 'none', `${spec.approvalDeadlineSeconds} seconds`);
      decision = decide();
      if (!decision.allowed && decision.waitFor !== 'none') decision = { ...decision, reason: `${decision.reason}; deadline of ${spec.approvalDeadlineSeconds} s passed` };
    }
    await tellSession({ sagaId, kind: 'ring_decision', stepId, agentDid: spec.agentDid, actionId: spec.actionId, allowed: decision.allowed, detail: decision.reason });
    return decision.allowed ? null : decision.reason;
  }

  // ── Forward ───────────────────────────────────────────────────────────────
  for (const step of saga.steps) {
    const spec = specs[step.stepId]!;
    const denied = await gate(step.stepId);
    startStep(saga, step.stepId, Date.now());
    if (denied) {
      failStep(saga, step.stepId, `RING_VIOLATION: ${denied}`, Date.now());
      failedStepId = step.stepId;
      error = `ring violation: ${denied}`;
      await tellSession({ sagaId, kind: 'step_failed', stepId: step.stepId, agentDid: step.agentDid, actionId: step.actionId, detail: error });
      break;
    }
    publishState();
    try {
      const { result, attempt } = await executeStep.executeWithOptions({
        startToCloseTimeout: `${step.timeoutSeconds} seconds`,
        retry: { ...retryPolicyOf(step), nonRetryableErrorTypes: ['UnknownStepHandler', 'InvalidStep', 'HttpToolRejected'] },
        summary: `${step.actionId} by ${step.agentDid}`,
      }, [{ sessionId: input.sessionId, sagaId, stepId: step.stepId, actionId: step.actionId, agentDid: step.agentDid, handler: spec.handler, executeApi: spec.executeApi, undoApi: spec.undoApi, input: spec.input }]);
      commitStep(saga, step.stepId, result, Date.now());
      step.attempts = attempt;
      await tellSession({ sagaId, kind: 'step_committed', stepId: step.stepId, agentDid: step.agentDid, actionId: step.actionId });
    } catch (err) {
      if (wf.isCancellation(err)) throw err;
      error = describeFailure(err);
      // Temporal ran every attempt the retry policy allows.
      if (err instanceof wf.ActivityFailure && err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED) step.attempts = step.maxRetries + 1;
      failStep(saga, step.stepId, error, Date.now());
      failedStepId = step.stepId;
      await tellSession({ sagaId, kind: 'step_failed', stepId: step.stepId, agentDid: step.agentDid, actionId: step.actionId, detail: error });
      break;
    }
    publishState();
  }

  // ── Backward: compensation in reverse order of commit ─────────────────────
  if (failedStepId !== null && saga.commitOrder.length > 0) {
    startCompensation(saga, Date.now(), error);
    publishState();
    await wf.CancellationScope.nonCancellable(async () => {
      for (const step of compensationPlan(saga)) {
        const spec = specs[step.stepId]!;
        if (!startStepCompensation(saga, step.stepId, Date.now())) {
          await tellSession({ sagaId, kind: 'step_compensation_failed', stepId: step.stepId, agentDid: step.agentDid, actionId: step.actionId, detail: step.error ?? 'no undo' });
          continue;
        }
        try {
          await compensateStep.executeWithOptions({
            startToCloseTimeout: `${step.timeoutSeconds} seconds`,
            retry: { ...retryPolicyOf(step), nonRetryableErrorTypes: ['NoUndo', 'HttpToolRejected'] },
            summary: `undo ${step.actionId} by ${step.agentDid}`,
          }, [{ sessionId: input.sessionId, sagaId, stepId: step.stepId, actionId: step.actionId, agentDid: step.agentDid, handler: spec.handler, executeApi: spec.executeApi, undoApi: spec.undoApi, input: spec.input, result: step.result }]);
          markCompensated(saga, step.stepId, Date.now());
          compensationOrder.push(step.stepId);
          await tellSession({ sagaId, kind: 'step_compensated', stepId: step.stepId, agentDid: step.agentDid, actionId: step.actionId });
        } catch (err) {
          failCompensation(saga, step.stepId, describeFailure(err), Date.now());
          await tellSession({ sagaId, kind: 'step_compensation_failed', stepId: step.stepId, agentDid: step.agentDid, actionId: step.actionId, detail: describeFailure(err) });
        }
        publishState();
      }
    });
  }

  const { escalations } = finishSaga(saga, Date.now());
  for (const e of escalations) {
    await session.signal(sagaEscalatedSignal, { sagaId, stepId: e.stepId, agentDid: e.agentDid, actionId: e.actionId, reason: e.error ?? 'compensation failed' }).catch(() => undefined);
  }
  await tellSession({ sagaId, kind: 'saga_state', sagaState: saga.state });
  publishState();
  return snapshot();
}
