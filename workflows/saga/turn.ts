/**
 * An open saga's walk (SPEC §13): an agent's turn, whose steps arrive one at a time. The saga reads its
 * turn from its session (an activity: the session's own answer), takes the step appended there, gates it
 * and runs it as any saga step (forward.ts: the claim, approvals, the re-gate of every attempt, a kill's
 * cancellation) — and waits durably for the next, until the agent ends the turn (it completes), aborts it,
 * its deadline passes or its agent is killed (it compensates). A wake-up only makes it read again.
 */
import * as wf from '@temporalio/workflow';
import { ATTR, SPANS } from '../../src/core/observability';
import type { TurnView } from '../../src/contract/turns';
import { startSpan } from '../observe';
import { addSpecStep, publishDetails, readTurn, type SagaContext, type SagaInput } from './context';
import { describeFailure } from './failures';
import { cancelRequested, forward } from './forward';
import { stepAttributes } from './gate';

/** The turn is over without its agent ending it: what may have acted is compensated. */
function giveUp(ctx: SagaContext, why: string): void {
  ctx.gaveUp = true;
  ctx.error = why;
}

/** The turn, step by step, until it ends (the saga completes) or is given up (it compensates). */
export async function walkTurn(ctx: SagaContext): Promise<void> {
  const { agentDid, deadline } = ctx.input.turn!;
  const deadlinePassed = () => giveUp(ctx, `the turn's deadline passed (${new Date(deadline).toISOString()})`);
  for (;;) {
    if (cancelRequested()) {
      ctx.cancelled = true;
      return giveUp(ctx, 'the saga was cancelled');
    }
    ctx.woken = false; // a wake-up from here on is read again below
    let view: TurnView;
    try {
      view = await readTurn({ sessionId: ctx.sessionId, sagaId: ctx.sagaId });
    } catch (err) {
      if (wf.isCancellation(err)) ctx.cancelled = true;
      return giveUp(ctx, `the session could not be asked for turn ${ctx.sagaId}: ${describeFailure(err)}`);
    }
    // Authentic (the session's answer to our own activity): it may raise what we hold.
    if (view.agent) ctx.agents.set(view.agent.did, view.agent);
    if (view.action) ctx.actions.set(view.action.actionId, view.action);
    if (view.sessionState !== 'active') {
      ctx.sessionState = view.sessionState;
      return giveUp(ctx, `session ${ctx.sessionId} is ${view.sessionState}`);
    }
    if (!view.agent || view.agent.restriction === 2) return giveUp(ctx, `agent ${agentDid} was killed`);
    if (view.turn.state === 'aborted')
      return giveUp(ctx, `the agent aborted its turn${view.turn.reason ? `: ${view.turn.reason}` : ''}`);
    if (Date.now() >= deadline) return deadlinePassed();
    const next = view.turn.next;
    if (next && !ctx.specs.has(next.stepId)) {
      await runStep(ctx, next, deadline);
      if (ctx.cancelled) return giveUp(ctx, ctx.error ?? 'the saga was cancelled');
      continue;
    }
    if (view.turn.state === 'ended') return;
    if (!(await wf.condition(() => ctx.woken, Math.max(1, deadline - Date.now())))) return deadlinePassed();
  }
}

/** One appended step, run as a declared saga's step; its error is the agent's answer, not the turn's end. */
async function runStep(ctx: SagaContext, next: SagaInput['steps'][number], deadline: number): Promise<void> {
  // A step waits for evidence no longer than its turn lasts.
  const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
  const spec = { ...next, leased: false, approvalDeadlineSeconds: Math.min(next.approvalDeadlineSeconds, left) };
  ctx.input.steps.push(spec);
  ctx.specs.set(spec.stepId, spec);
  const step = addSpecStep(ctx.saga, spec, ctx.actions.get(spec.actionId));
  publishDetails(ctx);
  const span = startSpan(SPANS.step, stepAttributes(ctx, step));
  const goOn = await span.run(() => forward(ctx, step));
  span.set({ [ATTR.stepState]: step.state });
  span.end();
  if (!goOn && !ctx.cancelled) {
    // The step failed or was denied: its error is on the step, for the agent; the turn goes on.
    ctx.failedStepId = null;
    ctx.error = null;
  }
  publishDetails(ctx);
}
