/**
 * A saga step's grant (SPEC §11.2, §11.5): the session's decision for the step now, which a saga reads by an
 * activity (the stepGrant query), and the claim of a step its start did not lease (SPEC §12).
 */
import { parse } from '../../src/core/common';
import { gateStep, type GateDecision } from '../../src/core/gate';
import { StepRefSchema, type StepRef } from '../../src/contract';
import { governed } from '../failures';
import type { SagaRecord, StepEvidence, StepGrant } from '../../src/contract/sessionTypes';
import { type SessionContext, requireOpen } from './context';
import { agentView, actionView, countedApprovers } from './views';
import type { Handlers } from './door';
import { leaseStep } from './leases';
import { evidenceOf } from './evidence';
import { patched } from '../ownRun';

const turnOverReason = (turn: NonNullable<SagaRecord['turn']>): string | null =>
  turn.state === 'aborted'
    ? `the agent aborted its turn${turn.reason ? `: ${turn.reason}` : ''}`
    : Date.now() >= turn.deadline
      ? "the turn's deadline passed"
      : null;

/** The session's decision for a step now: what a saga's activity reads (SPEC §11.2). */
export function stepGrant(ctx: SessionContext, raw: StepRef): StepGrant {
  const ref = governed(() => parse(StepRefSchema, raw, 'stepGrant'));
  const { saga, step } = governed(() => evidenceOf(ctx, ref, 'grant a step'));
  const grant = grantFor(ctx, saga, step);
  // A turn's direct step (docs/TURNS.md): the step as appended and leased, which its activity runs and nothing else.
  const next = saga.turn?.direct ? saga.turn.next : null;
  return next && next.leased && step.leased && next.stepId === step.stepId && next.digest === step.digest
    ? { ...grant, turnStep: next }
    : grant;
}

export function grantFor(ctx: SessionContext, saga: SagaRecord, step: StepEvidence): StepGrant {
  const approvals = countedApprovers(ctx, saga, step);
  const quorum = ctx.st.session.config.consensusQuorum;
  const witness = step.witness && ctx.st.session.config.sreWitnesses.includes(step.witness) ? step.witness : null;
  const agent = agentView(ctx, step.agentDid) ?? null;
  const action = actionView(ctx, step.actionId) ?? null;
  let decision: GateDecision = gateStep({
    agent: agent ?? undefined,
    action: action ?? undefined,
    sessionState: ctx.st.session.state,
    hasConsensus: approvals.length >= quorum,
    hasSreWitness: witness !== null,
    now: Date.now(),
  });
  if (step.rejectedBy) {
    decision = {
      ...decision,
      allowed: false,
      waitFor: 'none',
      reason: `rejected by ${step.rejectedBy.did}: ${step.rejectedBy.reason}`,
      rule: 'rejected',
    };
  }
  // SPEC §13: a step of a turn its agent aborted, or whose deadline passed, does not start (it may wait for evidence).
  const turnOver = saga.turn && !step.started ? turnOverReason(saga.turn) : null;
  if (turnOver) decision = { ...decision, allowed: false, waitFor: 'none', reason: turnOver, rule: 'rejected' };
  return {
    decision,
    agent,
    action,
    approvals,
    quorum,
    witness,
    rejectedBy: step.rejectedBy,
    step: { agentDid: step.agentDid, digest: step.digest },
    retryAfterMs: null,
  };
}

/**
 * A saga's step its start did not lease: the session decides, and leases it when the gate allows (SPEC §12).
 *
 * Unsigned: the saga's own activity sends it, and any client can (issue 24 N21). It grants nothing the session
 * would not: it is decided by the session's own grant for the step — a step the gate denies changes nothing —
 * and for an allowed step it does only what the saga's claim does, once: a lease (a step leased already is
 * not charged again) and the step marked started. A claim that leases or starts its step is the hypervisor's
 * own bookkeeping and does not count toward the run's update budget (`maxUpdatesPerRun`, behind the patch
 * `claims-not-counted`); one that changes nothing counts as any other request, so repeating it cannot grow a
 * run's history without bound.
 */
export const claimRules = (ctx: SessionContext, r: StepRef) => {
  requireOpen(ctx, 'claim a step');
  evidenceOf(ctx, r, 'claim a step');
};

/** Claiming a step's start (SPEC §12) */
export const grantHandlers = {
  claimStep: {
    run(ctx, ref) {
      claimRules(ctx, ref);
      const { saga, step } = evidenceOf(ctx, ref, 'claim a step');
      // A turn's step is taken by its saga at its first claim: the turn may take the next (SPEC §13).
      if (saga.turn?.next?.stepId === step.stepId) saga.turn.taken = true;
      const grant = grantFor(ctx, saga, step);
      if (!grant.decision.allowed) return grant;
      const before = { leased: step.leased === true, started: step.started === true };
      const refusal = leaseStep(ctx, saga, step);
      if (refusal === null || refusal === 'skip') {
        // SPEC §11.5: the grant spends the step's evidence; from here no approval, rejection or witness is taken for it.
        if (patched('evidence-spent-at-start')) step.started = true;
        const changed = before.leased !== (step.leased === true) || before.started !== (step.started === true);
        if (changed && patched('claims-not-counted')) ctx.updatesThisRun--;
        return grant;
      }
      return {
        ...grant,
        retryAfterMs: refusal.retryAfterMs,
        decision: {
          ...grant.decision,
          allowed: false,
          waitFor: 'none',
          rule: refusal.code === 'RATE_LIMITED' ? 'rate_limited' : 'budget_exhausted',
          reason: refusal.reason,
        },
      };
    },
    check: claimRules,
  },
} satisfies Handlers;
