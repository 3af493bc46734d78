/**
 * The saga workflow, a child of its session (SPEC §6, §11).
 *
 * - It starts from the view its session gave it (its start input, authentic
 *   because the session is its parent) and holds it; pushes (`restrict`) may
 *   only take privilege away.
 * - Each step is gated on the held view. When that is not enough (approvals,
 *   a witness, a raise since the start) it asks the session, from an
 *   activity, for its decision now: that answer is authentic and the session's.
 * - A step runs what its action declared at join (SPEC §11.4), as an activity
 *   with Temporal's own timeout and retry; every retry attempt is re-gated by
 *   the activity before it acts.
 * - On failure — or cancellation — the steps that may have acted are
 *   compensated in reverse, in a scope nothing cancels. A saga that did not
 *   complete ends as a failed workflow (SagaCompensated, SagaEscalated,
 *   SagaFailed) with its snapshot in the failure's details.
 */
import * as wf from '@temporalio/workflow';
import { RetryState } from '@temporalio/common';
import type { createActivities } from '../activities';
import { parse } from '../src/core/common';
import {
  RestrictionSchema, SagaWorkflowInputSchema, type ActionView, type AgentView, type SagaWorkflowInput,
} from '../src/core/sagaContract';
import { gateStep, UNDECLARED_ACTION, type GateDecision } from '../src/core/gate';
import { requiredRing } from '../src/core/rings';
import { ATTR, SPANS } from '../src/core/observability';
import {
  addStep, commitStep, compensateStep as markCompensated, compensationPlan, createSaga, failCompensation, failStep,
  finishSaga, markOutcomeUnknown, retryPolicyOf, startCompensation, startStep, startStepCompensation, type SagaState,
} from '../src/core/saga';
import { heldAgentQuery, restrictSignal, sagaEndedSignal, sagaStateQuery, sessionWorkflowId, stepGateQuery, wakeSignal } from './definitions';
import { MESSAGES } from '../src/contract/messages';
import { governed } from './failures';
import { HvPendingApprovals, HvSagaState, HvWaitingSince, pendingApprovalEntry } from '../src/contract/searchAttributes';
import { annotateRun, approvalWaited, compensated, gateDecided, sagaEnded, startSpan } from './observe';
import type { SagaSnapshot } from '../src/contract/sagaTypes';

type Activities = ReturnType<typeof createActivities>;
const { executeStep, compensateStep } = wf.proxyActivities<Activities>({ startToCloseTimeout: '5 minutes' });
const { readStepGrant } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '500 milliseconds', backoffCoefficient: 2 },
});

/** Steps heartbeat every second: a lost worker or a cancellation is noticed within this. */
const HEARTBEAT_TIMEOUT_SECONDS = 5;

/** Failure types the step activity raises that no retry can change. */
const NON_RETRYABLE = ['UnknownStepHandler', 'InvalidStep', 'HttpToolRejected', 'GateDenied'];

function describeFailure(err: unknown): string {
  if (err instanceof wf.ActivityFailure && err.cause) return describeFailure(err.cause);
  if (err instanceof wf.TimeoutFailure) return `timed out (${String(err.timeoutType).toLowerCase().replace(/_/g, '-')})`;
  if (err instanceof wf.CancelledFailure) return 'cancelled';
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The step may have acted (SPEC §6 [resolved]): it timed out, its worker was
 * lost or it was cancelled while running — or the step activity says so (an
 * earlier attempt, a request without an answer): see StepFailureDetails.
 */
function outcomeUnknown(err: unknown): boolean {
  const cause = err instanceof wf.ActivityFailure ? err.cause : err;
  if (cause instanceof wf.TimeoutFailure || cause instanceof wf.CancelledFailure) return true;
  const details = cause instanceof wf.ApplicationFailure ? (cause.details?.[0] as { mayHaveActed?: unknown } | undefined) : undefined;
  return details?.mayHaveActed === true;
}

function gateDeniedBy(err: unknown): string | null {
  const cause = err instanceof wf.ActivityFailure ? err.cause : undefined;
  return cause instanceof wf.ApplicationFailure && cause.type === 'GateDenied' ? cause.message : null;
}

/** How a saga refuses to run when a client started it directly: it says how to start one. */
function notFromSession(raw: unknown): never {
  const sessionId = typeof raw === 'object' && raw !== null && typeof (raw as { sessionId?: unknown }).sessionId === 'string'
    ? (raw as { sessionId: string }).sessionId : '<sessionId>';
  throw wf.ApplicationFailure.nonRetryable(
    `a saga runs only as a child of its session, which gates it: start it with the session's startSaga update, e.g. ` +
    `temporal workflow update execute -w ${sessionWorkflowId(sessionId)} --name startSaga --input '{"steps":[…]}'`,
    'SAGA_NOT_STARTED_BY_SESSION',
  );
}

export async function sagaWorkflow(raw: SagaWorkflowInput): Promise<SagaSnapshot> {
  const info = wf.workflowInfo();
  const claimed = (raw as { sessionId?: unknown } | null)?.sessionId;
  if (typeof claimed !== 'string' || info.parent?.workflowId !== sessionWorkflowId(claimed)) notFromSession(raw);
  const input = governed(() => parse(SagaWorkflowInputSchema, raw, 'saga input'));
  const { sessionId, sagaId } = input;
  annotateRun(() => ({ [ATTR.sessionId]: sessionId, [ATTR.sagaId]: sagaId }));
  const workflowId = info.workflowId;
  const specs = new Map(input.steps.map((s) => [s.stepId, s]));
  const agents = new Map<string, AgentView>(input.agents.map((a) => [a.did, a]));
  const actions = new Map<string, ActionView>(input.actions.map((a) => [a.actionId, a]));
  let sessionState = 'active';
  const saga: SagaState = governed(() => {
    const s = createSaga({ sagaId, sessionId, at: Date.now() });
    for (const spec of input.steps) {
      const action = actions.get(spec.actionId);
      addStep(s, {
        stepId: spec.stepId,
        actionId: spec.actionId,
        agentDid: spec.agentDid,
        executeApi: action?.executeApi ?? undefined,
        undoApi: action?.undoApi ?? undefined,
        timeoutSeconds: spec.timeoutSeconds,
        maxRetries: spec.retry.maximumAttempts - 1,
        initialIntervalMs: Math.round(spec.retry.initialIntervalSeconds * 1000),
        backoffCoefficient: spec.retry.backoffCoefficient,
        maximumIntervalMs: spec.retry.maximumIntervalSeconds ? Math.round(spec.retry.maximumIntervalSeconds * 1000) : undefined,
      }, Date.now());
    }
    return s;
  });

  const grants = new Map<string, { approvals: string[]; witness: string | null }>();
  const compensationOrder: string[] = [];
  let waiting: SagaSnapshot['waiting'] = null;
  let failedStepId: string | null = null;
  let error: string | null = null;
  let cancelled = false;
  let woken = false;
  /** The step running now, in a scope of its own: a kill of its agent cancels it. */
  let running: { stepId: string; agentDid: string; scope: wf.CancellationScope; killed: boolean } | null = null;
  /** Set when the session continued as new: its new run learns our end from a wake-up, then reads us by id. */
  let notifySessionOnEnd = false;

  const snapshot = (): SagaSnapshot => ({
    saga, workflowId, sessionId,
    digests: Object.fromEntries(input.steps.map((s) => [s.stepId, s.digest])),
    grants: Object.fromEntries(grants),
    waiting, compensationOrder, failedStepId, error, cancelled,
  });

  // SPEC §11.3: a push only takes away. Handlers are total: a bad push is ignored.
  wf.setHandler(restrictSignal, (raw) => {
    const parsed = RestrictionSchema.safeParse(raw);
    woken = true;
    if (!parsed.success) return;
    for (const pushed of parsed.data.agents) {
      const held = agents.get(pushed.did);
      if (!held) continue;
      const restriction = Math.max(held.restriction ?? 0, pushed.restriction ?? 0) as 0 | 1 | 2;
      // An elevation never grows; one the push no longer has ended now — kept as ended, so a denial can say why.
      const elevation = held.elevation
        ? { ring: Math.max(held.elevation.ring, pushed.elevation?.ring ?? 1) as 1 | 2, until: Math.min(held.elevation.until, pushed.elevation?.until ?? Date.now()) }
        : null;
      agents.set(pushed.did, {
        did: held.did,
        sigmaRaw: Math.min(held.sigmaRaw, pushed.sigmaRaw),
        bondSum: Math.min(held.bondSum, pushed.bondSum),
        ringCap: Math.max(held.ringCap, pushed.ringCap),
        active: held.active && pushed.active,
        ...(restriction > 0 ? { restriction } : {}),
        ...(elevation ? { elevation } : {}),
      });
    }
    if (parsed.data.sessionState) sessionState = parsed.data.sessionState;
    // SPEC §12: a killed agent's step in flight is cancelled (it heartbeats, so the cancellation reaches its tool).
    if (running && agents.get(running.agentDid)?.restriction === 2 && !running.killed) {
      running.killed = true;
      running.scope.cancel();
    }
  });
  wf.setHandler(wakeSignal, (raw) => {
    woken = true;
    if (typeof raw === 'object' && raw !== null && (raw as { sessionContinued?: unknown }).sessionContinued === true) notifySessionOnEnd = true;
  });
  wf.setHandler(heldAgentQuery, (did) => ({
    restriction: (typeof did === 'string' ? agents.get(did)?.restriction : undefined) ?? 0,
    runningStepId: running && running.agentDid === did ? running.stepId : null,
  }), { description: MESSAGES.heldAgent.description });
  wf.setHandler(sagaStateQuery, snapshot, { description: MESSAGES.sagaState.description });
  // Total: an unknown step is denied, never an error.
  wf.setHandler(stepGateQuery, (stepId) => (typeof stepId === 'string' && specs.has(stepId)
    ? decideOnHeldView(stepId)
    : gateStep({ agent: undefined, action: undefined, sessionState, hasConsensus: false, hasSreWitness: false })),
  { description: MESSAGES.stepGate.description });

  function publishDetails(): void {
    const rows = saga.steps.map((s) => `| ${s.stepId} | ${s.actionId} | ${s.agentDid} | ${s.state} | ${s.attempts} |`);
    // The Web UI's card can clip its last lines: what matters comes first.
    wf.setCurrentDetails([
      `## Saga ${sagaId} — ${saga.state}`,
      `Session \`${sessionId}\`${input.description ? ` · ${input.description}` : ''}`,
      ...(error ? ['', `**Failure:** ${error}`] : []),
      ...(waiting ? ['', `Waiting for ${waiting.waitFor} on ${waiting.stepId} (digest \`${input.steps.find((s) => s.stepId === waiting!.stepId)?.digest}\`)`] : []),
      ...(compensationOrder.length ? ['', `Compensated in order: ${compensationOrder.join(' → ')}`] : []),
      '', '| step | action | agent | state | attempts |', '|---|---|---|---|---|', ...rows,
    ].join('\n'));
  }

  const decideOnHeldView = (stepId: string): GateDecision => {
    const spec = specs.get(stepId)!;
    const granted = grants.get(stepId);
    return gateStep({
      agent: agents.get(spec.agentDid), action: actions.get(spec.actionId), sessionState,
      hasConsensus: granted !== undefined, hasSreWitness: granted?.witness != null, now: Date.now(),
    });
  };

  /** What a step's gate decided: the decision it rests on, the rule, and the reason when the step may not run. */
  interface Verdict { decision: GateDecision; rule: string; denied: string | null }
  const verdictOf = (decision: GateDecision): Verdict =>
    ({ decision, rule: decision.rule, denied: decision.allowed ? null : decision.reason });

  /**
   * What HvPendingApprovals holds for the waiting step (null: nothing). Upserted
   * only on a change, as each upsert is a history event: once when a wait
   * starts, once when it ends. Behind a patch, so a saga that was already
   * waiting when this shipped replays as it ran.
   */
  let pendingIndexed: string | null = null;
  function indexPending(entry: string | null, since?: number): void {
    if (entry === pendingIndexed || (entry !== null && pendingIndexed === null && !wf.patched('hv-pending-approvals'))) return;
    pendingIndexed = entry;
    wf.upsertSearchAttributes([
      { key: HvPendingApprovals, value: entry === null ? null : [entry] },
      { key: HvWaitingSince, value: entry === null || since === undefined ? null : new Date(since) },
    ]);
  }

  /**
   * The gate for a step: the held view first; when it is not enough, the
   * session's own decision now, read by an activity — waiting (durably, until
   * the step's deadline) for evidence when that is all that is missing.
   */
  async function gate(stepId: string): Promise<Verdict> {
    const spec = specs.get(stepId)!;
    const local = decideOnHeldView(stepId);
    // A step whose start the saga holds no lease for claims it from the session (rate, budget: SPEC §12).
    if ((local.allowed && spec.leased !== false) || sessionState !== 'active') return verdictOf(local);
    const deadline = Date.now() + spec.approvalDeadlineSeconds * 1000;
    let waited: { since: number; for: 'consensus' | 'witness' } | undefined;
    const decided = (verdict: Verdict): Verdict => {
      waiting = null;
      indexPending(null);
      if (waited) approvalWaited(waited.for, (Date.now() - waited.since) / 1000, verdict.denied === null);
      return verdict;
    };
    for (;;) {
      woken = false;
      const grant = await readStepGrant({ sessionId, sagaId, stepId, digest: spec.digest, ...(spec.leased === false ? { claim: true } : {}) });
      // Authentic (the session's answer to our own activity): it may raise what we hold.
      if (grant.agent) agents.set(grant.agent.did, grant.agent);
      if (grant.action) actions.set(grant.action.actionId, grant.action);
      // A kill handed the step to a substitute (SPEC §12): it runs as that agent, under the new digest.
      if (grant.step && grant.step.agentDid !== spec.agentDid) {
        handOff(stepId, grant.step);
        continue; // claimed afresh as the substitute
      }
      if (grant.decision.allowed) {
        if (spec.leased === false) spec.leased = true;
        grants.set(stepId, { approvals: grant.approvals, witness: grant.witness });
        return decided(verdictOf(grant.decision));
      }
      // The held view knew why: an elevation that ended (the session has forgotten it by now).
      if (grant.decision.waitFor === 'none') return decided(verdictOf(local.rule === 'elevation_expired' ? local : grant.decision));
      const left = deadline - Date.now();
      if (left <= 0) {
        const denied = `${grant.decision.reason}; deadline of ${spec.approvalDeadlineSeconds} s passed`;
        return decided({ decision: grant.decision, rule: 'deadline_passed', denied });
      }
      waited ??= { since: Date.now(), for: grant.decision.waitFor };
      waiting = { stepId, waitFor: grant.decision.waitFor === 'consensus' ? `${grant.quorum} approvals (has ${grant.approvals.length})` : 'an SRE witness', deadline };
      indexPending(pendingApprovalEntry({ stepId, digest: spec.digest, waitFor: grant.decision.waitFor, quorum: grant.quorum, sinceMs: waited.since, deadlineMs: deadline }), waited.since);
      publishDetails();
      // A wake-up (approval, rejection, witness, push) or the deadline: then ask again.
      await wf.condition(() => woken, left);
    }
  }

  function handOff(stepId: string, to: { agentDid: string; digest: string }): void {
    const spec = specs.get(stepId)!;
    spec.agentDid = to.agentDid;
    spec.digest = to.digest;
    spec.leased = false;
    const step = saga.steps.find((s) => s.stepId === stepId)!;
    step.agentDid = to.agentDid;
    grants.delete(stepId);
  }

  // ── Forward ───────────────────────────────────────────────────────────────
  publishDetails();
  const cancelRequested = () => wf.CancellationScope.current().consideredCancelled;
  /** Cancelled before the step started: it fails without having acted, and the walk back begins. */
  const cancelBefore = (stepId: string) => {
    cancelled = true;
    indexPending(null);
    startStep(saga, stepId, Date.now());
    failStep(saga, stepId, 'cancelled before it started', Date.now());
    failedStepId = stepId;
    error = 'the saga was cancelled';
  };
  const stepAttributes = (step: SagaState['steps'][number]) => () => ({
    [ATTR.sessionId]: sessionId, [ATTR.sagaId]: sagaId, [ATTR.stepId]: step.stepId,
    [ATTR.actionId]: step.actionId, [ATTR.agentDid]: step.agentDid,
    [ATTR.ringRequired]: requiredRing(actions.get(step.actionId) ?? UNDECLARED_ACTION),
  });

  /** The gate of a step, under a span of its own that lasts as long as any wait for evidence. */
  async function gateStepSpanned(step: SagaState['steps'][number]): Promise<Verdict> {
    const span = startSpan(SPANS.gate, stepAttributes(step));
    let verdict: Verdict;
    try {
      verdict = await span.run(() => gate(step.stepId));
    } catch (err) {
      span.end(err);
      throw err;
    }
    gateDecided('step', verdict.decision, verdict.rule, stepAttributes(step), span);
    return verdict;
  }

  /** Gates and runs one step; false when the saga goes no further. */
  async function forward(step: SagaState['steps'][number]): Promise<boolean> {
    const spec = specs.get(step.stepId)!;
    /** A run of this step was cancelled by its agent's kill: it may have acted, so it is compensated if nobody takes over. */
    let killedRun = false;
    const mayHaveActed = () => { if (killedRun) markOutcomeUnknown(saga, step.stepId); };
    for (;;) {
      let denied: string | null;
      try {
        denied = (await gateStepSpanned(step)).denied;
      } catch (err) {
        if (!wf.isCancellation(err)) throw err;
        if (step.state === 'executing') {
          cancelled = true;
          indexPending(null);
          failStep(saga, step.stepId, 'cancelled before it started again', Date.now());
          failedStepId = step.stepId;
          error = 'the saga was cancelled';
          mayHaveActed();
        } else {
          cancelBefore(step.stepId);
        }
        return false;
      }
      if (step.state === 'pending') startStep(saga, step.stepId, Date.now());
      if (denied) {
        failStep(saga, step.stepId, `RING_VIOLATION: ${denied}`, Date.now());
        failedStepId = step.stepId;
        error = `ring violation: ${denied}`;
        mayHaveActed();
        return false;
      }
      publishDetails();
      const action = actions.get(step.actionId)!;
      const scope = new wf.CancellationScope();
      running = { stepId: step.stepId, agentDid: spec.agentDid, scope, killed: false };
      const run = running;
      try {
        const { result, attempt } = await scope.run(() => executeStep.executeWithOptions({
          startToCloseTimeout: `${step.timeoutSeconds} seconds`,
          heartbeatTimeout: `${Math.min(step.timeoutSeconds, HEARTBEAT_TIMEOUT_SECONDS)} seconds`,
          // A cancelled saga waits for the running step to stop before it compensates it.
          cancellationType: wf.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
          retry: { ...retryPolicyOf(step), nonRetryableErrorTypes: NON_RETRYABLE },
          summary: `${step.actionId} by ${step.agentDid}`,
        }, [{
          sessionId, sagaId, stepId: step.stepId, digest: spec.digest, actionId: step.actionId, agentDid: step.agentDid,
          executeApi: action.executeApi!, undoApi: action.undoApi, readOnly: action.readOnly, input: spec.input,
        }]));
        commitStep(saga, step.stepId, result, Date.now());
        step.attempts = attempt;
        if (cancelRequested()) {
          // The step finished as the cancellation arrived: it committed, and is compensated with the rest.
          cancelled = true;
          error = 'the saga was cancelled while a step ran';
          return false;
        }
      } catch (err) {
        // Temporal ran every attempt the retry policy allows.
        if (err instanceof wf.ActivityFailure && err.retryState === RetryState.MAXIMUM_ATTEMPTS_REACHED) step.attempts = step.maxRetries + 1;
        // The step activity says which attempt failed (see StepFailureDetails).
        const failedAttempt = err instanceof wf.ActivityFailure && err.cause instanceof wf.ApplicationFailure
          ? (err.cause.details?.[0] as { attempt?: unknown } | undefined)?.attempt : undefined;
        if (typeof failedAttempt === 'number' && failedAttempt > step.attempts) step.attempts = failedAttempt;
        if (run.killed && !cancelRequested()) {
          // SPEC §12: its agent was killed while it ran. The gate decides again: the kill's substitute, or a denial.
          killedRun = true;
          continue;
        }
        const gateRefusal = gateDeniedBy(err);
        error = gateRefusal ? `ring violation: ${gateRefusal}` : describeFailure(err);
        failStep(saga, step.stepId, gateRefusal ? `RING_VIOLATION: ${gateRefusal}` : error, Date.now());
        failedStepId = step.stepId;
        if (wf.isCancellation(err)) {
          cancelled = true;
          error = 'the saga was cancelled while a step ran';
        }
        if (outcomeUnknown(err) || wf.isCancellation(err) || killedRun) markOutcomeUnknown(saga, step.stepId);
        return false;
      } finally {
        running = null;
      }
      publishDetails();
      return true;
    }
  }

  for (const step of saga.steps) {
    if (cancelRequested()) {
      cancelBefore(step.stepId);
      break;
    }
    // The step's span is the parent of its gate and of its attempts' activities.
    const span = startSpan(SPANS.step, stepAttributes(step));
    const goOn = await span.run(() => forward(step));
    span.set({ [ATTR.stepState]: step.state });
    span.end();
    if (!goOn) break;
  }

  // ── Backward: what may have acted, in reverse, and nothing cancels it ──────
  if ((failedStepId !== null || cancelled) && compensationPlan(saga).length > 0) {
    startCompensation(saga, Date.now(), error);
    publishDetails();
    await wf.CancellationScope.nonCancellable(async () => {
      for (const step of compensationPlan(saga)) {
        const spec = specs.get(step.stepId)!;
        const span = startSpan(SPANS.compensation, stepAttributes(step));
        if (!startStepCompensation(saga, step.stepId, Date.now())) {
          // It declares no undo: the compensation failed without an activity.
          compensated(span, false, step.error);
          continue;
        }
        try {
          await span.run(() => compensateStep.executeWithOptions({
            startToCloseTimeout: `${step.timeoutSeconds} seconds`,
            heartbeatTimeout: `${Math.min(step.timeoutSeconds, HEARTBEAT_TIMEOUT_SECONDS)} seconds`,
            retry: { ...retryPolicyOf(step), nonRetryableErrorTypes: ['NoUndo', 'HttpToolRejected', 'UnknownStepHandler'] },
            summary: `undo ${step.actionId} by ${step.agentDid}`,
          }, [{
            sessionId, sagaId, stepId: step.stepId, digest: spec.digest, actionId: step.actionId, agentDid: step.agentDid,
            executeApi: step.executeApi ?? '', undoApi: step.undoApi, input: spec.input, result: step.result,
          }]));
          markCompensated(saga, step.stepId, Date.now());
          compensationOrder.push(step.stepId);
          compensated(span, true);
        } catch (err) {
          failCompensation(saga, step.stepId, describeFailure(err), Date.now());
          compensated(span, false, err);
        }
        publishDetails();
      }
    });
  }

  finishSaga(saga, Date.now());
  sagaEnded(saga.state);
  waiting = null;
  indexPending(null);
  publishDetails();
  wf.upsertSearchAttributes([{ key: HvSagaState, value: saga.state }]);
  if (notifySessionOnEnd) {
    await wf.CancellationScope.nonCancellable(() => wf.getExternalWorkflowHandle(sessionWorkflowId(sessionId)).signal(sagaEndedSignal, { sagaId })).catch(() => undefined);
  }
  const snap = snapshot();
  if (saga.state === 'completed') return snap;
  // Ended, but not as asked: a failed workflow, so the Web UI, its filters and Temporal's metrics tell it apart.
  const type = saga.state === 'compensated' ? 'SagaCompensated' : saga.state === 'escalated' ? 'SagaEscalated' : 'SagaFailed';
  throw wf.ApplicationFailure.create({ type, message: `saga ${sagaId} ${saga.state}: ${error ?? 'a step failed'}`, nonRetryable: true, details: [snap] });
}
