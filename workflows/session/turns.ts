/**
 * Turns (SPEC §13 "Open saga"): an agent's saga whose steps arrive one at a time. Each request — open,
 * append, end, abort — is the agent's own, signed by it (SPEC §11), and decided on the session's state:
 * an appended step is gated as a declared saga's step is (ring, controls, rate, budget), recorded, and
 * the turn's saga woken. The saga reads the step from the session (the `turnView` query, by an activity) and
 * claims it through the claim path (grants.ts); a wake-up is only that.
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import { gateStep, type GateDecision } from '../../src/core/gate';
import { parse } from '../../src/core/common';
import { participantOf, turnsOf, type TurnsConfig } from '../../src/core/session';
import { TurnRefSchema, type TurnView } from '../../src/contract/turns';
import type { SagaRecord, StepEvidence } from '../../src/contract/sessionTypes';
import type { StartSagaRequestParsed } from '../../src/contract';
import { wakeSignal } from '../definitions';
import { logDropped } from '../failures';
import { contentHash, record, requireState, stepDigest, type SessionContext } from './context';
import { actionView, agentView } from './views';
import type { Handlers } from './door';
import { leaseCheck, leaseStep } from './leases';
import { noteRequests } from './controls';
import { nextSagaId, startOneSaga } from './sagas';
import { patched } from '../ownRun';

/** A turn opened from here on takes direct steps (docs/TURNS.md); asked once per turn, at its opening. */
export const TURN_DIRECT_STEPS = 'turn-direct-steps';

export const turnsConfig = (ctx: SessionContext): TurnsConfig => turnsOf(ctx.st.session.config.turns);

/** No new turn, step or end while the session is not active or is terminating. */
function requireActive(ctx: SessionContext, doing: string): void {
  requireState(ctx, doing, ['active']);
  if (ctx.closing)
    throw new HypervisorError('SESSION_CLOSED', `cannot ${doing}: session ${ctx.sessionId} is terminating`, {
      state: 'terminating',
    });
}

export const openTurnRules = (
  ctx: SessionContext,
  r: { agentDid: string; sagaId?: string; deadlineSeconds?: number },
) => {
  requireActive(ctx, 'open a turn');
  if (r.sagaId !== undefined && ctx.sagas.has(r.sagaId))
    throw new HypervisorError('DUPLICATE_SAGA', `saga ${r.sagaId} already exists in session ${ctx.sessionId}`, {
      sagaId: r.sagaId,
    });
  if (!participantOf(ctx.st.session, r.agentDid)?.active)
    throw new HypervisorError(
      'AGENT_NOT_FOUND',
      `cannot open a turn: ${r.agentDid} is not an active participant of session ${ctx.sessionId}`,
      { did: r.agentDid },
    );
  const { maxDeadlineSeconds, maxOpenPerAgent } = turnsConfig(ctx);
  const open = [...ctx.sagas.values()].filter((g) => g.state === 'running' && g.turn?.agentDid === r.agentDid);
  if (open.length >= maxOpenPerAgent)
    throw new HypervisorError(
      'TOO_MANY_TURNS',
      `cannot open a turn: ${r.agentDid} holds ${open.length} open turns, the most config.turns.maxOpenPerAgent allows`,
      { did: r.agentDid, maxOpenPerAgent },
    );
  if (r.deadlineSeconds !== undefined && r.deadlineSeconds > maxDeadlineSeconds)
    throw new HypervisorError(
      'INVALID_INPUT',
      `invalid openTurn: deadlineSeconds: must be at most ${maxDeadlineSeconds} (the session's config.turns.maxDeadlineSeconds)`,
      { field: 'deadlineSeconds' },
    );
};

/** The agent's own open turn, or the refusal that says why not. */
function ownOpenTurn(ctx: SessionContext, r: { sagaId: string; agentDid: string }, doing: string) {
  const saga = ctx.sagas.get(r.sagaId);
  if (!saga)
    throw new HypervisorError('SAGA_NOT_FOUND', `cannot ${doing}: session ${ctx.sessionId} has no saga ${r.sagaId}`);
  const turn = saga.turn;
  if (!turn)
    throw new HypervisorError('NOT_A_TURN', `cannot ${doing}: saga ${r.sagaId} is a declared saga, not a turn`, {
      sagaId: r.sagaId,
    });
  if (turn.agentDid !== r.agentDid)
    throw new HypervisorError(
      'NOT_TURN_AGENT',
      `cannot ${doing}: turn ${r.sagaId} is ${turn.agentDid}'s, not ${r.agentDid}'s`,
      { sagaId: r.sagaId, agentDid: r.agentDid },
    );
  const state =
    saga.state !== 'running'
      ? `its saga is ${saga.state}`
      : turn.state !== 'open'
        ? `it was ${turn.state}`
        : Date.now() >= turn.deadline
          ? 'its deadline passed'
          : null;
  if (state)
    throw new HypervisorError('TURN_NOT_OPEN', `cannot ${doing}: turn ${r.sagaId} is not open: ${state}`, {
      sagaId: r.sagaId,
      state: saga.state !== 'running' ? saga.state : turn.state,
    });
  return { saga, turn };
}

const stepIdOf = (saga: SagaRecord, r: { stepId?: string }) => r.stepId ?? `step-${saga.steps.length + 1}`;

export const appendRules = (
  ctx: SessionContext,
  r: { sagaId: string; agentDid: string; actionId: string; stepId?: string },
) => {
  requireActive(ctx, 'append a step');
  const found = ownOpenTurn(ctx, r, 'append a step');
  const { saga, turn } = found;
  const { maxSteps } = turnsConfig(ctx);
  if (saga.steps.length >= maxSteps)
    throw new HypervisorError(
      'TURN_FULL',
      `cannot append a step: turn ${r.sagaId} has ${saga.steps.length} steps, the most config.turns.maxSteps allows`,
      { sagaId: r.sagaId, maxSteps },
    );
  if (turn.next && !turn.taken)
    throw new HypervisorError(
      'TURN_BUSY',
      `cannot append a step: turn ${r.sagaId} holds step ${turn.next.stepId}, not yet taken by its saga`,
      { sagaId: r.sagaId, stepId: turn.next.stepId },
    );
  const stepId = stepIdOf(saga, r);
  if (saga.steps.some((s) => s.stepId === stepId))
    throw new HypervisorError(
      'INVALID_INPUT',
      `invalid appendStep: stepId: turn ${r.sagaId} has a step ${stepId} already`,
      { field: 'stepId' },
    );
  const refusal = leaseCheck(ctx, r.agentDid, r.actionId);
  if (refusal)
    throw new HypervisorError(refusal.code, `cannot append step ${stepId}: ${refusal.reason}`, {
      retryAfterMs: refusal.retryAfterMs,
    });
  return { ...found, stepId };
};

/**
 * SPEC §1, §12: the gate on the session's own view now; a step that waits for evidence is appended and waits.
 * Decided in the handler, once the breach detector has counted the request: an agent whose appends aim above
 * its ring is quarantined by the breaker, as one whose sagas' steps do.
 */
function gateAppend(
  ctx: SessionContext,
  r: { sagaId: string; agentDid: string; actionId: string },
  stepId: string,
): GateDecision {
  const decision = gateStep({
    agent: agentView(ctx, r.agentDid),
    action: actionView(ctx, r.actionId),
    sessionState: ctx.st.session.state,
    hasConsensus: false,
    hasSreWitness: false,
    now: Date.now(),
  });
  if (!decision.allowed && decision.waitFor === 'none')
    throw new HypervisorError('STEP_DENIED', `step ${stepId} (${r.actionId}) denied: ${decision.reason}`, {
      sagaId: r.sagaId,
      stepId,
      rule: decision.rule,
    });
  return decision;
}

const endRules = (ctx: SessionContext, r: { sagaId: string; agentDid: string }) => {
  requireState(ctx, 'end a turn', ['active', 'terminating']);
  return ownOpenTurn(ctx, r, 'end a turn');
};

/** The wake-up that makes the turn's saga read its turn again (not awaited: it carries nothing). */
function wakeTurn(ctx: SessionContext, saga: SagaRecord): void {
  void wf
    .getExternalWorkflowHandle(saga.workflowId)
    .signal(wakeSignal, {})
    .catch(logDropped(`the wake-up of turn ${saga.sagaId} (it reads its turn at its deadline anyway)`));
}

/** What the turn's saga reads of its turn (the `turnView` query): the session's own state. */
export function turnView(ctx: SessionContext, raw: unknown): TurnView {
  const { sagaId } = parse(TurnRefSchema, raw, 'turnView');
  const saga = ctx.sagas.get(sagaId);
  if (!saga) throw new HypervisorError('SAGA_NOT_FOUND', `session ${ctx.sessionId} has no saga ${sagaId}`);
  if (!saga.turn) throw new HypervisorError('NOT_A_TURN', `saga ${sagaId} is not a turn`, { sagaId });
  const { turn } = saga;
  return {
    sagaId,
    turn,
    sessionState: ctx.closing && ctx.st.session.state === 'active' ? 'terminating' : ctx.st.session.state,
    agent: agentView(ctx, turn.agentDid) ?? null,
    action: turn.next ? (actionView(ctx, turn.next.actionId) ?? null) : null,
  };
}

/** An agent's turns (SPEC §13) */
export const turnHandlers = {
  openTurn: {
    async run(ctx, req, a) {
      openTurnRules(ctx, req);
      const signatures = a.accept();
      const deadline = Date.now() + (req.deadlineSeconds ?? turnsConfig(ctx).defaultDeadlineSeconds) * 1000;
      // A turn opened from here on takes direct steps (docs/TURNS.md); one opened before reads every step.
      const direct = patched(TURN_DIRECT_STEPS);
      const start = { description: req.description, steps: [] } as unknown as StartSagaRequestParsed;
      for (let tries = 1; ; tries++) {
        const sagaId = req.sagaId ?? nextSagaId(ctx);
        const started = await startOneSaga(ctx, start, sagaId, signatures, {
          agentDid: req.agentDid,
          deadline,
          ...(direct ? { direct: true as const } : {}),
        });
        if (started.ok)
          return {
            sagaId,
            workflowId: started.result.workflowId,
            runId: started.result.runId,
            agentDid: req.agentDid,
            deadline,
          };
        if (req.sagaId !== undefined || tries >= 5) throw started.error;
      }
    },
    check: openTurnRules,
  },
  appendStep: {
    run(ctx, req, a) {
      const { saga, turn, stepId } = appendRules(ctx, req);
      const signatures = a.accept();
      noteRequests(ctx, req.agentDid, [req.actionId]);
      const decision = gateAppend(ctx, req, stepId);
      const { sagaId, ...spec } = req;
      const digest = stepDigest({
        sessionId: ctx.sessionId,
        sagaId,
        stepId,
        actionId: req.actionId,
        agentDid: req.agentDid,
        input: req.input,
      });
      const evidence: StepEvidence = {
        stepId,
        actionId: req.actionId,
        agentDid: req.agentDid,
        digest,
        approvers: [],
        rejectedBy: null,
        witness: null,
        leased: false,
      };
      // A direct step (docs/TURNS.md): allowed now, it is leased now (rate, budget: SPEC §12) and taken at once —
      // its agent brings it to the saga. Any other is claimed by the saga when it takes it, as a declared saga's later steps.
      const direct = turn.direct === true && decision.allowed;
      if (direct) {
        const refusal = leaseStep(ctx, saga, evidence);
        // appendRules checked the same lease in this activation: it fits.
        if (refusal !== null && refusal !== 'skip')
          throw new HypervisorError(refusal.code, `cannot append step ${stepId}: ${refusal.reason}`, {
            retryAfterMs: refusal.retryAfterMs,
          });
      }
      saga.steps.push(evidence);
      turn.next = { ...spec, stepId, digest, leased: direct };
      turn.taken = direct;
      record(
        ctx,
        req.agentDid,
        [
          {
            path: `/sagas/${sagaId}/steps/${stepId}`,
            operation: 'add',
            contentHash: contentHash({ actionId: req.actionId, agentDid: req.agentDid, digest }),
          },
        ],
        undefined,
        signatures,
      );
      if (direct) return { sagaId, workflowId: saga.workflowId, stepId, digest, direct: turn.next };
      wakeTurn(ctx, saga);
      return { sagaId, workflowId: saga.workflowId, stepId, digest };
    },
    check: appendRules,
  },
  endTurn: {
    run(ctx, req, a) {
      const { saga, turn } = endRules(ctx, req);
      return closeTurn(ctx, saga, turn, 'ended', null, a.accept());
    },
    check: endRules,
  },
  abortTurn: {
    run(ctx, req, a) {
      const { saga, turn } = endRules(ctx, req);
      return closeTurn(ctx, saga, turn, 'aborted', req.reason ?? null, a.accept());
    },
    check: endRules,
  },
} satisfies Handlers;

function closeTurn(
  ctx: SessionContext,
  saga: SagaRecord,
  turn: NonNullable<SagaRecord['turn']>,
  state: 'ended' | 'aborted',
  reason: string | null,
  signatures: ReturnType<Parameters<NonNullable<Handlers['endTurn']>['run']>[2]['accept']>,
) {
  turn.state = state;
  turn.reason = reason;
  // An aborted turn runs nothing more: the step its saga has not taken never runs.
  if (state === 'aborted') turn.next = null;
  record(
    ctx,
    turn.agentDid,
    [{ path: `/sagas/${saga.sagaId}/turn`, operation: 'modify', contentHash: contentHash({ state, reason }) }],
    undefined,
    signatures,
  );
  wakeTurn(ctx, saga);
  return { sagaId: saga.sagaId, workflowId: saga.workflowId, state };
}
