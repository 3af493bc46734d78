/**
 * The lease of a step's start (SPEC §12): a rate token of its agent's ring and its budget reserved, taken
 * when a saga starts (the steps that fit, in order) or when a step claims its start from the session.
 */
import { HypervisorError } from '../../src/core/errors';
import { stepKey, type Refusal } from '../../src/core/controls';
import { participantOf } from '../../src/core/session';
import type { StepEvidence } from '../../src/contract/sessionTypes';
import { type SessionContext, costOf, actsBehind } from './context';
import { effectiveRing } from './views';

/** Whether one step start fits its agent's rate and the budgets now (null: yes, or not a participant — the gate denies that). */
export function leaseCheck(ctx: SessionContext, did: string, actionId: string): Refusal | null {
  if (!participantOf(ctx.st.session, did)?.active) return null;
  return (ctx.budgetsOn ? ctx.controls.checkBudget(did, costOf(ctx, actionId)) : null) ?? rateRefusal(ctx, did, false);
}

/**
 * N18: a session recorded before controls shipped started its steps with no rate limit. SPEC §12's default
 * rates (a ring the config names no rate for) refuse behind this patch, asked only when one would refuse, so
 * such a history replays as it ran; a rate the session's config names was always there.
 */
export const DEFAULT_RATES_PATCH = 'default-rate-limits';

/** A rate token for one step start of the agent, taken or only checked (null: it fits). */
function rateRefusal(ctx: SessionContext, did: string, take: boolean): Refusal | null {
  const ring = effectiveRing(ctx, did);
  const now = Date.now();
  const refusal = take ? ctx.controls.takeTokens(did, ring, 1, now) : ctx.controls.checkTokens(did, ring, 1, now);
  if (refusal && ctx.controls.ratedByDefault(ring) && !actsBehind(ctx, DEFAULT_RATES_PATCH)) return null;
  return refusal;
}
export const refused = (stepId: string, r: Refusal) =>
  new HypervisorError(r.code, `cannot start a saga: step ${stepId}: ${r.reason}`, { retryAfterMs: r.retryAfterMs });

/**
 * Leases one step start (SPEC §12): a rate token, and its budget reserved under the step's key. A step
 * leased already (a repeated claim) is not charged again. 'skip': its agent is not an active participant.
 */
export function leaseStep(
  ctx: SessionContext,
  saga: { sagaId: string; workflowId: string },
  step: StepEvidence,
): Refusal | 'skip' | null {
  if (step.leased) return null;
  if (!participantOf(ctx.st.session, step.agentDid)?.active) return 'skip';
  // The budget first: a token is taken only for a step that fits it (reserve cannot refuse after this check).
  const cost = costOf(ctx, step.actionId);
  const refusal =
    (ctx.budgetsOn ? ctx.controls.checkBudget(step.agentDid, cost) : null) ?? rateRefusal(ctx, step.agentDid, true);
  if (refusal) return refusal;
  if (ctx.budgetsOn)
    ctx.controls.reserve(stepKey(saga.workflowId, step.stepId), { agentDid: step.agentDid, sagaId: saga.sagaId, cost });
  step.leased = true;
  return null;
}
