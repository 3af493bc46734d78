/**
 * The gate before each step (SPEC §1 for one step, §11.5's evidence, §12):
 * the view the saga holds first; when that is not enough, the session's own
 * decision now, read by an activity — waiting durably, until the step's
 * deadline, for evidence when that is all that is missing. A kill that handed
 * the step to a substitute hands it over here.
 */
import * as wf from '@temporalio/workflow';
import { gateStep, UNDECLARED_ACTION, type EvidenceWait, type GateDecision } from '../../src/core/gate';
import { requiredRing } from '../../src/core/ringRules';
import { ATTR, SPANS } from '../../src/core/observability';
import { HvPendingApprovals, HvWaitingSince, pendingApprovalEntry } from '../../src/contract/searchAttributes';
import { approvalWaited, gateDecided, startSpan } from '../observe';
import {
  publishDetails,
  readStepGrant,
  runningSteps,
  type SagaContext,
  type SagaStepState,
  type StepRun,
} from './context';
import { logDropped } from '../failures';
import { patched, upsertSearchAttributes } from '../ownRun';

export const decideOnHeldView = (ctx: SagaContext, stepId: string): GateDecision => {
  const spec = ctx.specs.get(stepId)!;
  const granted = ctx.grants.get(stepId);
  return gateStep({
    agent: ctx.agents.get(spec.agentDid),
    action: ctx.actions.get(spec.actionId),
    sessionState: ctx.sessionState,
    hasConsensus: granted !== undefined,
    hasSreWitness: granted?.witness != null,
    now: Date.now(),
  });
};

/** What a step's gate decided: the decision it rests on, the rule, and the reason when the step may not run. */
export interface Verdict {
  decision: GateDecision;
  rule: string;
  denied: string | null;
}
export const verdictOf = (decision: GateDecision): Verdict => ({
  decision,
  rule: decision.rule,
  denied: decision.allowed ? null : decision.reason,
});

/**
 * What HvPendingApprovals holds for the waiting step (null: nothing). Upserted
 * only on a change, as each upsert is a history event: once when a wait
 * starts, once when it ends. Behind a patch, so a saga that was already
 * waiting when this shipped replays as it ran.
 */
export function indexPending(ctx: SagaContext, entry: string | null, since?: number): void {
  if (
    entry === ctx.pendingIndexed ||
    (entry !== null && ctx.pendingIndexed === null && !patched('hv-pending-approvals'))
  )
    return;
  ctx.pendingIndexed = entry;
  upsertSearchAttributes([
    { key: HvPendingApprovals, value: entry === null ? null : [entry] },
    { key: HvWaitingSince, value: entry === null || since === undefined ? null : new Date(since) },
  ]);
}

/**
 * The gate for a step: the held view first; when it is not enough, the
 * session's own decision now, read by an activity — waiting (durably, until
 * the step's deadline) for evidence when that is all that is missing.
 */
export async function gate(ctx: SagaContext, stepId: string): Promise<Verdict> {
  const spec = ctx.specs.get(stepId)!;
  const local = decideOnHeldView(ctx, stepId);
  // A step whose start the saga holds no lease for claims it from the session (rate, budget: SPEC §12).
  if (local.allowed && spec.leased !== false) return verdictOf(local);
  // N15: a pushed session state only makes the saga ask its session (a push that says "terminating" decides
  // nothing). The patch is asked only then: each first ask is a marker and a search-attribute upsert.
  if (ctx.sessionState !== 'active' && !patched('session-state-confirmed')) return verdictOf(local);
  const deadline = Date.now() + spec.approvalDeadlineSeconds * 1000;
  let waited: { since: number; for: EvidenceWait } | undefined;
  const decided = (verdict: Verdict): Verdict => {
    // A sibling branch may be the one waiting now (SPEC §14): only this step's wait ends here.
    if (ctx.waiting === null || ctx.waiting.stepId === stepId) {
      ctx.waiting = null;
      indexPending(ctx, null);
    }
    if (waited) approvalWaited(waited.for, (Date.now() - waited.since) / 1000, verdict.denied === null);
    return verdict;
  };
  for (;;) {
    ctx.woken = false;
    const wakes = ctx.wakes;
    const wokenSince = () => ctx.wakes !== wakes;
    const grant = await readStepGrant({
      sessionId: ctx.sessionId,
      sagaId: ctx.sagaId,
      stepId,
      digest: spec.digest,
      ...(spec.leased === false ? { claim: true } : {}),
    });
    // Authentic (the session's answer to our own activity): it may raise what we hold.
    if (grant.agent) ctx.agents.set(grant.agent.did, grant.agent);
    if (grant.action) ctx.actions.set(grant.action.actionId, grant.action);
    // A kill handed the step to a substitute (SPEC §12): it runs as that agent, under the new digest.
    if (grant.step && grant.step.agentDid !== spec.agentDid) {
      handOff(ctx, stepId, grant.step);
      continue; // claimed afresh as the substitute
    }
    if (grant.decision.allowed) {
      if (spec.leased === false) spec.leased = true;
      ctx.grants.set(stepId, { approvals: grant.approvals, witness: grant.witness });
      return decided(verdictOf(grant.decision));
    }
    // SPEC §12: over its ring's rate, the step waits (a durable timer) for the token the session says is next,
    // within the step's deadline, rather than fail the saga. The patch is asked only here (a marker each first time).
    if (
      grant.decision.rule === 'rate_limited' &&
      grant.retryAfterMs !== null &&
      Date.now() + grant.retryAfterMs < deadline &&
      patched('rate-limited-step-waits')
    ) {
      await wf.condition(wokenSince, Math.max(1, grant.retryAfterMs)); // a push (a kill) asks again at once
      continue;
    }
    // The held view knew why: an elevation that ended (the session has forgotten it by now).
    if (grant.decision.waitFor === 'none')
      return decided(verdictOf(local.rule === 'elevation_expired' ? local : grant.decision));
    const left = deadline - Date.now();
    if (left <= 0) {
      const denied = `${grant.decision.reason}; deadline of ${spec.approvalDeadlineSeconds} s passed`;
      return decided({ decision: grant.decision, rule: 'deadline_passed', denied });
    }
    waited ??= { since: Date.now(), for: grant.decision.waitFor };
    ctx.waiting = {
      stepId,
      waitFor:
        grant.decision.waitFor === 'consensus'
          ? `${grant.quorum} approvals (has ${grant.approvals.length})`
          : 'an SRE witness',
      deadline,
    };
    indexPending(
      ctx,
      pendingApprovalEntry({
        stepId,
        digest: spec.digest,
        waitFor: grant.decision.waitFor,
        quorum: grant.quorum,
        sinceMs: waited.since,
        deadlineMs: deadline,
      }),
      waited.since,
    );
    publishDetails(ctx);
    // A wake-up (approval, rejection, witness, push) or the deadline: then ask again.
    await wf.condition(wokenSince, left);
  }
}

export function handOff(ctx: SagaContext, stepId: string, to: { agentDid: string; digest: string }): void {
  const spec = ctx.specs.get(stepId)!;
  spec.agentDid = to.agentDid;
  spec.digest = to.digest;
  spec.leased = false;
  const step = ctx.saga.steps.find((s) => s.stepId === stepId)!;
  step.agentDid = to.agentDid;
  ctx.grants.delete(stepId);
}

export const stepAttributes = (ctx: SagaContext, step: SagaStepState) => () => ({
  [ATTR.sessionId]: ctx.sessionId,
  [ATTR.sagaId]: ctx.sagaId,
  [ATTR.stepId]: step.stepId,
  [ATTR.actionId]: step.actionId,
  [ATTR.agentDid]: step.agentDid,
  [ATTR.ringRequired]: requiredRing(ctx.actions.get(step.actionId) ?? UNDECLARED_ACTION),
});

/** The gate of a step, under a span of its own that lasts as long as any wait for evidence. */
export async function gateStepSpanned(ctx: SagaContext, step: SagaStepState): Promise<Verdict> {
  const span = startSpan(SPANS.gate, stepAttributes(ctx, step));
  let verdict: Verdict;
  try {
    verdict = await span.run(() => gate(ctx, step.stepId));
  } catch (err) {
    span.end(err);
    throw err;
  }
  gateDecided('step', verdict.decision, verdict.rule, stepAttributes(ctx, step), span);
  return verdict;
}

/**
 * N15: the session's word on a kill pushed to the running step's agent — the agent's restriction as the
 * session holds it, read by an activity (authentic). Only a kill the session recorded cancels the step.
 */
export async function confirmKill(ctx: SagaContext, run: StepRun): Promise<void> {
  const spec = ctx.specs.get(run.stepId)!;
  const grant = await wf.CancellationScope.nonCancellable(() =>
    readStepGrant({ sessionId: ctx.sessionId, sagaId: ctx.sagaId, stepId: run.stepId, digest: spec.digest }),
  ).catch(logDropped("a read of the session's word on a pushed kill (the step runs on)"));
  if (!runningSteps(ctx).includes(run) || run.killed) return;
  const handedOff = grant?.step && grant.step.agentDid !== run.agentDid;
  if (grant && (grant.agent?.restriction === 2 || handedOff)) {
    run.killed = true;
    run.scope.cancel();
  } else if (grant?.agent) {
    // Not killed by the session: the pushed restriction is not the session's; hold what the session says.
    ctx.agents.set(grant.agent.did, grant.agent);
  }
}
