/**
 * Sagas (SPEC §6, §11.2, §12): start a saga as a child, lease its steps, learn its outcome from authentic
 * sources only (its completion, or a read by id). A step's grant and claim are in grants.ts.
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import { riskWeight } from '../../src/core/reversibility';
import { isToolDefinitionChange } from '../../src/core/toolDefinitions';
import { RESTRICTION, stepKey } from '../../src/core/controls';
import { participantOf } from '../../src/core/session';
import { type DeltaSignature } from '../../src/core/identity';
import { SLASH_CAUSE } from '../../src/core/observability';
import {
  flattenEntries,
  SAGA_START_FORMAT,
  requestedStep,
  startActionView,
  startAgentView,
  startQuorum,
  withoutDefaultIds,
  type ActionView,
  type AgentView,
  type SagaWorkflowInput,
  type StartSagaRequestParsed,
} from '../../src/contract';
import { legacySagaWorkflowId, sagaEndedSignal, sagaWorkflowId, wakeSignal } from '../definitions';
import { MESSAGES } from '../../src/contract/messages';
import { logDropped } from '../failures';
import { HvAgentDids, HvSessionId, indexedAgentDids } from '../../src/contract/searchAttributes';
import { sagaWorkflow } from '../saga';
import type { SagaOutcomeStep } from '../../src/contract/sagaOutcome';
import type { SagaRecord } from '../../src/contract/sessionTypes';
import {
  HYPERVISOR_DID,
  integrations,
  contentHash,
  stepDigest,
  type SessionContext,
  isOpen,
  record,
  requireState,
} from './context';
import { agentView, actionView, runningSagas, currentDetails } from './views';
import type { Handlers } from './door';
import { leaseCheck, leaseStep, refused } from './leases';
import { slashAgent } from './participants';
import { impose, noteRequests } from './controls';
import { recoverLostSaga } from './lostSagas';
import { patched } from '../ownRun';
import { keepForkable } from './operator';
import { endedWith, endedWithFailure, settledFromSnapshot, type Ended } from './outcomes';

/** Finished sagas kept in the session's record (older ones are in the audit trail and their own histories). */
const FINISHED_SAGAS_KEPT = 100;

export const startSagaRules = (ctx: SessionContext, req: Pick<StartSagaRequestParsed, 'sagaId' | 'steps'>) => {
  // A group's branches are steps of the saga like any other (SPEC §14).
  const r = { sagaId: req.sagaId, steps: flattenEntries(req.steps).steps };
  requireState(ctx, 'start a saga', ['active']);
  if (ctx.closing)
    throw new HypervisorError('SESSION_CLOSED', `cannot start a saga: session ${ctx.sessionId} is terminating`, {
      state: 'terminating',
    });
  if (r.sagaId !== undefined && ctx.sagas.has(r.sagaId))
    throw new HypervisorError('DUPLICATE_SAGA', `saga ${r.sagaId} already exists in session ${ctx.sessionId}`, {
      sagaId: r.sagaId,
    });
  // Only members sign in a did:key session (so the replay windows it keeps are the members' alone).
  if (ctx.identity === 'did:key') {
    const stranger = r.steps.find((s) => !participantOf(ctx.st.session, s.agentDid));
    if (stranger)
      throw new HypervisorError(
        'AGENT_NOT_FOUND',
        `cannot start a saga: step agent ${stranger.agentDid} is not a participant of session ${ctx.sessionId}`,
        { did: stranger.agentDid },
      );
  }
  // SPEC §12: the first step must fit its agent's rate and budget now, or the start is refused with when to retry.
  const first = r.steps[0]!;
  const refusal = leaseCheck(ctx, first.agentDid, first.actionId);
  if (refusal) throw refused(first.stepId, refusal);
};

export function nextSagaId(ctx: SessionContext): string {
  let id: string;
  do id = `saga-${++ctx.st.sagaCount}`;
  while (ctx.sagas.has(id));
  return id;
}

export async function startOneSaga(
  ctx: SessionContext,
  req: StartSagaRequestParsed,
  sagaId: string,
  signatures: DeltaSignature[],
  /** An open saga, an agent's turn (SPEC §13): no steps yet; they arrive through the session (turns.ts). */
  turn?: { agentDid: string; deadline: number; direct?: true },
  /** SPEC §14: a fork of that saga from that step (operator.ts). */
  forkedFrom?: { sagaId: string; stepId: string },
) {
  // N16: an unambiguous id, and so unambiguous idempotency keys; a session recorded before keeps the old one.
  const workflowId = patched('n16-unambiguous-saga-ids')
    ? sagaWorkflowId(ctx.sessionId, sagaId)
    : legacySagaWorkflowId(ctx.sessionId, sagaId);
  const { steps: flat, groups } = flattenEntries(req.steps);
  const steps = flat.map((s) => {
    const stepId = s.stepId;
    return {
      ...s,
      stepId,
      digest: stepDigest({
        sessionId: ctx.sessionId,
        sagaId,
        stepId,
        actionId: s.actionId,
        agentDid: s.agentDid,
        input: s.input,
      }),
    };
  });
  const agentDids = turn ? [turn.agentDid] : [...new Set(steps.map((s) => s.agentDid))].sort();
  const actionIds = [...new Set(steps.map((s) => s.actionId))];
  // The saga's view, taken before the leases below (as it always was).
  const agents = agentDids.map((d) => agentView(ctx, d)).filter((v): v is AgentView => v !== undefined);
  const actions = actionIds.map((a) => actionView(ctx, a)).filter((v): v is ActionView => v !== undefined);
  const record_: SagaRecord = {
    sagaId,
    workflowId,
    description: req.description ?? null,
    state: 'running',
    startedAt: Date.now(),
    endedAt: null,
    agentDids,
    steps: steps.map((s) => ({
      stepId: s.stepId,
      actionId: s.actionId,
      agentDid: s.agentDid,
      digest: s.digest,
      approvers: [],
      rejectedBy: null,
      witness: null,
    })),
    error: null,
    ...(turn ? { turn: { ...turn, state: 'open' as const, reason: null, next: null, taken: false } } : {}),
    ...(forkedFrom ? { forkedFrom } : {}),
    ...(groups.length ? { groups } : {}),
  };
  // SPEC §12: the saga holds a lease of the steps that fit now, in order; the rest claim at their time.
  for (const [i, step] of record_.steps.entries()) {
    const refusal = leaseStep(ctx, record_, step);
    if (refusal === null) continue;
    if (i === 0 && refusal !== 'skip') throw refused(step.stepId, refusal);
    break;
  }
  // Format 5 (issue 20): steps as requested, their digests the saga's to compute — the same stepDigest of
  // the same values, so the ones recorded above — and what the saga derives left out, the session id (it reads
  // its parent's workflow id) and an undoApi that is the executeApi included. Temporal never compares a child's
  // input, search attributes or user metadata on replay (replay.test.ts: session-format-2).
  const sagaInput: SagaWorkflowInput = {
    format: SAGA_START_FORMAT,
    sagaId,
    ...(req.description !== undefined ? { description: req.description } : {}),
    steps: withoutDefaultIds(
      flat.map((s, i) => requestedStep(s, record_.steps[i]!.leased === true)),
      groups,
    ),
    agents: agents.map(startAgentView),
    actions: actions.map((a) => startActionView(a, SAGA_START_FORMAT)),
    ...startQuorum(ctx.st.session.config.consensusQuorum),
    ...(turn ? { turn } : {}),
    // SPEC §14, only when asked for.
    ...(req.onFailure ? { onFailure: req.onFailure } : {}),
    ...(forkedFrom ? { forkedFrom } : {}),
    ...(groups.length ? { groups } : {}),
  };
  ctx.sagas.set(sagaId, record_);
  ctx.startsInFlight++;
  let child: wf.ChildWorkflowHandle<typeof sagaWorkflow>;
  try {
    child = await wf.startChild(sagaWorkflow, {
      workflowId,
      args: [sagaInput],
      // The session continues as new while sagas run: they go on, and the new run reads their outcome by id.
      parentClosePolicy: 'ABANDON',
      // Its steps' table is its current details (with their states), not static ones written twice to history;
      // its summary only what its workflow id does not say (hv-saga-<session>/<saga>), which is written twice too.
      ...sagaSummary(ctx, sagaId, turn, req.description),
      // No HvSagaState: while it runs its workflow status says so (src/client/lists.ts); it writes its end's.
      typedSearchAttributes: [
        { key: HvSessionId, value: ctx.sessionId },
        { key: HvAgentDids, value: indexedAgentDids(agentDids) },
      ],
    });
  } catch (err) {
    // Its workflow id is taken (a client squatted it): the saga never ran, and nothing is recorded.
    ctx.sagas.delete(sagaId);
    for (const key of ctx.controls.reservationsOf(sagaId)) ctx.controls.settle(key, false);
    return {
      ok: false as const,
      error: new HypervisorError(
        'DUPLICATE_SAGA',
        `saga ${sagaId} could not be started in session ${ctx.sessionId}: ${(err as Error).message}`,
      ),
    };
  } finally {
    ctx.startsInFlight--;
  }
  ctx.children.add(sagaId);
  // Terminate waits for starts in flight (it closes only once every started saga can hear it).
  record(
    ctx,
    HYPERVISOR_DID,
    [
      {
        path: `/sagas/${sagaId}`,
        operation: 'add',
        contentHash: contentHash(
          turn
            ? { sagaId, workflowId, turn }
            : {
                sagaId,
                workflowId,
                steps: steps.map((s) => s.digest),
                ...(forkedFrom ? { forkedFrom } : {}),
                ...(groups.length ? { groups } : {}),
              },
        ),
      },
    ],
    undefined,
    signatures,
  );
  // Not awaited: the session continues as new while sagas run (a later run reads the outcome by id).
  child
    .result()
    .then(
      (answer) => settleSaga(ctx, sagaId, endedWith(answer, ctx.sagas.get(sagaId))),
      (err) => settleSaga(ctx, sagaId, endedWithFailure(err, ctx.sagas.get(sagaId))),
    )
    .catch((err) => wf.log.error('saga outcome not recorded', { sagaId, error: String(err) }));
  // The run id pins the saga a client waits on: a later workflow reusing the id is not this saga.
  return {
    ok: true as const,
    result: {
      sagaId,
      workflowId,
      runId: child.firstExecutionRunId,
      digests: Object.fromEntries(steps.map((s) => [s.stepId, s.digest])),
    },
  };
}

/** The Web UI's summary of a saga when it says more than its workflow id: whose turn it is, its description. */
function sagaSummary(
  ctx: SessionContext,
  sagaId: string,
  turn: { agentDid: string } | undefined,
  description: string | undefined,
) {
  if (!turn && !description) return {};
  const what = `${turn ? `Turn of ${turn.agentDid}, saga` : 'Saga'} ${sagaId} of session ${ctx.sessionId}`;
  return { staticSummary: `${what}${description ? `: ${description}` : ''}` };
}

/**
 * A saga's outcome, from an authentic source only (its completion to this
 * run, or an activity's read by id). Records one delta for its steps, then
 * slashes the agents of failed compensations (SPEC §6), then tells the trust
 * scorer the step outcomes (SPEC §9).
 */
export async function settleSaga(ctx: SessionContext, sagaId: string, ended: Ended): Promise<void> {
  const saga = ctx.sagas.get(sagaId);
  if (!saga || saga.state !== 'running') return;
  ctx.background++;
  try {
    await settle(ctx, saga, ended);
  } finally {
    ctx.background--;
  }
}

export async function settle(ctx: SessionContext, saga: SagaRecord, ended: Ended): Promise<void> {
  const sagaId = saga.sagaId;
  let settled = ended.settled;
  // N7: a saga that ended without an outcome (terminated, timed out) is finished from its own history.
  if (!settled && patched('n7-lost-sagas-recovered')) {
    const recovered = await recoverLostSaga(ctx, saga, ended.failure);
    if (recovered === 'busy') return;
    settled = recovered && settledFromSnapshot(recovered);
  }
  const outcome = settled?.outcome;
  saga.state = outcome ? outcome.state : 'lost';
  saga.endedAt = outcome?.finishedAt ?? Date.now();
  saga.error = outcome ? outcome.error : ended.failure;
  saga.awaiting = undefined;
  keepForkable(ctx, saga, settled); // before the record's steps (and their digests) are cleared
  saga.steps = [];
  delete saga.groups;
  if (saga.turn) saga.turn.next = null;
  trimFinished(ctx);
  if (!isOpen(ctx)) {
    for (const key of ctx.controls.reservationsOf(sagaId)) ctx.controls.settle(key, false);
    return; // closed: the committed root is final; the saga's own history keeps its outcome.
  }
  const steps = outcome?.steps ?? [];
  // SPEC §12: a step that acted is charged once (its key), with the cost its result reported; the rest are released.
  const charged = new Map<string, { calls: number; cost: number }>();
  for (const s of steps) {
    const acted =
      s.state === 'committed' ||
      s.state === 'compensating' ||
      s.state === 'compensated' ||
      s.state === 'compensation_failed';
    const charge = ctx.controls.settle(stepKey(saga.workflowId, s.stepId), acted, s.cost);
    if (charge) charged.set(s.agentDid, ctx.controls.usage(s.agentDid).spent);
  }
  for (const key of ctx.controls.reservationsOf(sagaId)) ctx.controls.settle(key, false);
  record(
    ctx,
    HYPERVISOR_DID,
    [
      {
        path: `/sagas/${sagaId}/state`,
        operation: 'modify',
        contentHash: contentHash({ state: saga.state, error: saga.error }),
      },
      ...steps.map((s) => ({
        path: `/sagas/${sagaId}/steps/${s.stepId}`,
        operation: 'modify' as const,
        contentHash: contentHash({
          state: s.state,
          agentDid: s.agentDid,
          actionId: s.actionId,
          attempts: s.attempts,
          error: s.error,
        }),
      })),
      ...[...charged].map(([did, spent]) => ({
        path: `/budgets/${did}`,
        operation: 'modify' as const,
        contentHash: contentHash(spent),
      })),
    ],
    saga.endedAt ?? Date.now(),
  );
  wf.setCurrentDetails(currentDetails(ctx));
  for (const s of steps) quarantineForChangedTool(ctx, sagaId, s);
  for (const s of steps.filter((x) => x.state === 'compensation_failed')) {
    if (!isOpen(ctx) || !participantOf(ctx.st.session, s.agentDid)) continue;
    ctx.outcomeTime = saga.endedAt ?? undefined;
    const slashed = slashAgent(
      ctx,
      s.agentDid,
      `saga ${sagaId} escalated at step ${s.stepId}: ${s.error ?? 'compensation failed'}`,
      riskWeight(ctx.st.session.registry, s.actionId),
      HYPERVISOR_DID,
      SLASH_CAUSE.compensationFailed,
    );
    ctx.outcomeTime = undefined;
    await slashed;
  }
  if (ctx.st.scorerConfigured) {
    const outcomes = steps
      .filter((s) => s.state !== 'pending')
      .map((s) => ({
        agentDid: s.agentDid,
        kind: 'outcome' as const,
        reason: `step ${s.stepId} (${s.actionId}) ${s.state}`,
      }));
    for (const o of outcomes)
      await integrations.reportToTrustScorer(o).catch(logDropped('a step outcome reported to the trust scorer'));
  }
}

/** Asked only when an agent is quarantined for a changed tool: no earlier history holds one. */
export const TOOL_DEFINITION_QUARANTINE = 'tool-definition-quarantine';

/**
 * Issue 21: a step refused because its MCP tool's definition changed since it was approved (a "rug pull")
 * quarantines the step's agent — a delta whose record names the tool and both hashes. The saga's own
 * outcome is the source (its completion to this run), never a request.
 */
function quarantineForChangedTool(ctx: SessionContext, sagaId: string, s: SagaOutcomeStep): void {
  const change = s.toolDefinitionChanged;
  if (!isToolDefinitionChange(change) || !isOpen(ctx) || !participantOf(ctx.st.session, s.agentDid)) return;
  const now = Date.now();
  if (ctx.controls.level(s.agentDid, now) === 2) return; // a kill is final
  if (!patched(TOOL_DEFINITION_QUARANTINE)) return;
  impose(
    ctx,
    s.agentDid,
    {
      kind: RESTRICTION.quarantine,
      since: now,
      until: now + ctx.controls.config.quarantineTtlSeconds * 1000,
      reason: `MCP tool ${change.tool} changed its definition since it was approved (pinned ${change.pinned}, now ${change.current}): saga ${sagaId} step ${s.stepId} was refused`,
      by: HYPERVISOR_DID,
      substitute: null,
    },
    HYPERVISOR_DID,
  );
}

export function trimFinished(ctx: SessionContext): void {
  const finished = [...ctx.sagas.values()].filter((s) => s.state !== 'running');
  for (const s of finished.slice(0, Math.max(0, finished.length - FINISHED_SAGAS_KEPT))) ctx.sagas.delete(s.sagaId);
}

/** A saga this run did not start (the session continued as new since): read its outcome by id. */
export async function readOutcome(ctx: SessionContext, sagaId: string, ended = false): Promise<void> {
  const saga = ctx.sagas.get(sagaId);
  if (!saga || saga.state !== 'running' || ctx.children.has(sagaId)) return;
  ctx.background++;
  try {
    // A saga that says it ended signals just before it closes: the read waits a moment for the close.
    const read = await integrations.readSagaOutcome({
      workflowId: saga.workflowId,
      sessionWorkflowId: wf.workflowInfo().workflowId,
      waitMs: ended ? 10_000 : 0,
    });
    // Its wake-up and this run's read of it can both find it closed: the first settles it, the second has nothing to do.
    if (read.status === 'closed' && saga.state === 'running')
      await settleSaga(
        ctx,
        sagaId,
        read.snapshot ? endedWith(read.snapshot, saga) : { settled: null, failure: read.failure },
      );
  } finally {
    ctx.background--;
  }
}

/** `sagaEnded` is a wake-up, not a fact: the outcome is read by id (SPEC §11.2–§11.3). */
export function registerSagaEnded(ctx: SessionContext): void {
  wf.setHandler(
    sagaEndedSignal,
    (raw) => {
      const sagaId = typeof raw === 'object' && raw !== null && typeof raw.sagaId === 'string' ? raw.sagaId : undefined;
      if (sagaId !== undefined && ctx.sagas.has(sagaId))
        void readOutcome(ctx, sagaId, true).catch(logDropped(`the read of saga ${sagaId}'s outcome after its wake-up`));
    },
    { description: MESSAGES.sagaEnded.description },
  );
}

/** Sagas a previous run started: their completion went to that run, so this run reads them by id. */
export function wakeCarriedSagas(ctx: SessionContext): void {
  for (const saga of runningSagas(ctx)) {
    // Ask each to wake this run when it ends; then read it, which finds whoever ended before the ask.
    void wf
      .getExternalWorkflowHandle(saga.workflowId)
      .signal(wakeSignal, { sessionContinued: true })
      .catch(logDropped(`the wake-up asking saga ${saga.sagaId} to tell this run its end`))
      .then(() => readOutcome(ctx, saga.sagaId))
      .catch(logDropped(`the read of saga ${saga.sagaId}'s outcome`));
  }
}

/** Starting a saga (SPEC §6, §11.2) */
export const sagaHandlers = {
  /**
   * A saga acts in the name of every agent of its steps — their rate, budget and liability (a failed undo
   * slashes the step's agent) — so each of them signs its start (the registry's rule), not only whoever asks.
   */
  startSaga: {
    async run(ctx, parsed, a) {
      const req = parsed as StartSagaRequestParsed;
      startSagaRules(ctx, req);
      const signatures = a.accept();
      // Each step is a request of its agent for its action's ring (the breach detector's input).
      const byAgent = new Map<string, string[]>();
      for (const s of flattenEntries(req.steps).steps)
        byAgent.set(s.agentDid, [...(byAgent.get(s.agentDid) ?? []), s.actionId]);
      for (const [did, actionIds] of byAgent) noteRequests(ctx, did, actionIds);
      // An automatic id skips ids whose workflow someone else already holds (a squatter): a few tries.
      for (let tries = 1; ; tries++) {
        const started = await startOneSaga(ctx, req, req.sagaId ?? nextSagaId(ctx), signatures);
        if (started.ok) return started.result;
        if (req.sagaId !== undefined || tries >= 5) throw started.error;
      }
    },
    check: startSagaRules,
  },
} satisfies Handlers;
