/**
 * An open saga's walk (SPEC §13): an agent's turn, whose steps arrive one at a time. The saga reads its
 * turn from its session (an activity: the session's own answer), takes the step appended there, gates it
 * and runs it as any saga step (forward.ts: the claim, approvals, the re-gate of every attempt, a kill's
 * cancellation) — and waits durably for the next, until the agent ends the turn (it completes), aborts it,
 * its deadline passes or its agent is killed (it compensates). A wake-up only makes it read again.
 *
 * A direct turn (docs/TURNS.md) also takes the steps its agent brings (`takeStep`, direct.ts) without reading
 * the turn first: such a step runs only as its session holds it, its activity asking the session on every
 * attempt; one the saga cannot gate on the view it holds is left to the session's word (the next read).
 */
import * as wf from '@temporalio/workflow';
import { gateStep } from '../../src/core/gate';
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

/** The turn as the session holds it, or null once the turn was given up (the reason is on ctx). */
async function readTheTurn(ctx: SagaContext, deadline: number): Promise<TurnView | null> {
  const { agentDid } = ctx.input.turn!;
  ctx.woken = false; // a wake-up from here on is read again
  let view: TurnView;
  try {
    view = await readTurn({ sessionId: ctx.sessionId, sagaId: ctx.sagaId });
  } catch (err) {
    if (wf.isCancellation(err)) ctx.cancelled = true;
    giveUp(ctx, `the session could not be asked for turn ${ctx.sagaId}: ${describeFailure(err)}`);
    return null;
  }
  // Authentic (the session's answer to our own activity): it may raise what we hold.
  if (view.agent) ctx.agents.set(view.agent.did, view.agent);
  if (view.action) ctx.actions.set(view.action.actionId, view.action);
  if (view.sessionState !== 'active') {
    ctx.sessionState = view.sessionState;
    giveUp(ctx, `session ${ctx.sessionId} is ${view.sessionState}`);
  } else if (!view.agent || view.agent.restriction === 2) giveUp(ctx, `agent ${agentDid} was killed`);
  else if (view.turn.state === 'aborted')
    giveUp(ctx, `the agent aborted its turn${view.turn.reason ? `: ${view.turn.reason}` : ''}`);
  else if (Date.now() >= deadline) giveUp(ctx, deadlinePassed(deadline));
  else return view;
  return null;
}

const deadlinePassed = (deadline: number) => `the turn's deadline passed (${new Date(deadline).toISOString()})`;

/** The turn, step by step, until it ends (the saga completes) or is given up (it compensates). */
export async function walkTurn(ctx: SagaContext): Promise<void> {
  try {
    await walk(ctx);
  } finally {
    ctx.walkOver = true;
  }
}

async function walk(ctx: SagaContext): Promise<void> {
  const { deadline, direct } = ctx.input.turn!;
  // A direct turn waits under one timer for the rest of the turn, set at its first wait (a timer per wait is
  // two events per step).
  let passed = false;
  let timer = false;
  for (;;) {
    if (cancelRequested()) {
      ctx.cancelled = true;
      return giveUp(ctx, 'the saga was cancelled');
    }
    const view = await readTheTurn(ctx, deadline);
    if (!view) return;
    const next = view.turn.next;
    if (next && !ctx.specs.has(next.stepId)) {
      await runStep(ctx, next, deadline);
      leftToTheSession(ctx);
      if (ctx.cancelled) return giveUp(ctx, ctx.error ?? 'the saga was cancelled');
      continue;
    }
    leftToTheSession(ctx);
    if (view.turn.state === 'ended') return;
    if (!direct) {
      if (!(await wf.condition(() => ctx.woken, Math.max(1, deadline - Date.now()))))
        return giveUp(ctx, deadlinePassed(deadline));
      continue;
    }
    // Direct steps until a wake-up (an end, an abort, a push), the deadline or a cancellation: then read again.
    if (!timer) {
      timer = true;
      void wf.sleep(Math.max(1, deadline - Date.now())).then(
        () => void (passed = true),
        () => undefined, // cancelled with the saga: the walk notices the cancellation itself
      );
    }
    for (;;) {
      try {
        await wf.condition(() => ctx.woken || passed || ctx.directQueue.length > 0 || cancelRequested());
      } catch (err) {
        if (!wf.isCancellation(err)) throw err;
      }
      if (ctx.woken || passed || cancelRequested()) break;
      await takeDirect(ctx, ctx.directQueue.shift()!, deadline);
      if (ctx.cancelled) return giveUp(ctx, ctx.error ?? 'the saga was cancelled');
    }
  }
}

/** Direct steps left to the session's word that its read did not bring: they did not run. */
function leftToTheSession(ctx: SagaContext): void {
  for (const stepId of ctx.deferred)
    if (!ctx.specs.has(stepId))
      ctx.notRun.set(stepId, `turn ${ctx.sagaId} holds no step ${stepId} to run now (its session's word)`);
  ctx.deferred.clear();
}

/**
 * A step its agent brought (`takeStep`): run at once when the view the saga holds allows it — its activity
 * then asks the session before every attempt acts — else left to the session's word, read next.
 */
async function takeDirect(ctx: SagaContext, spec: SagaInput['steps'][number], deadline: number): Promise<void> {
  if (ctx.specs.has(spec.stepId)) return; // taken already: its takeStep answers with what it came to
  const held = gateStep({
    agent: ctx.agents.get(spec.agentDid),
    action: ctx.actions.get(spec.actionId),
    sessionState: ctx.sessionState,
    hasConsensus: false,
    hasSreWitness: false,
    now: Date.now(),
  });
  if (!held.allowed) {
    ctx.deferred.add(spec.stepId);
    ctx.woken = true;
    return;
  }
  await runStep(ctx, spec, deadline, true);
}

/** One appended step, run as a declared saga's step; its error is the agent's answer, not the turn's end. */
async function runStep(
  ctx: SagaContext,
  next: SagaInput['steps'][number],
  deadline: number,
  direct = false,
): Promise<void> {
  // A step waits for evidence no longer than its turn lasts. A direct step was leased when it was appended.
  const left = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
  const spec = { ...next, leased: direct, approvalDeadlineSeconds: Math.min(next.approvalDeadlineSeconds, left) };
  if (direct) ctx.directSteps.add(spec.stepId);
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
  if (direct && ctx.notRun.has(spec.stepId)) forget(ctx, spec.stepId, spec.actionId);
  publishDetails(ctx);
}

/**
 * A direct step its session does not hold as appended: it did not act, and the saga keeps nothing of it —
 * nor the view of its action, which may be stale: the next step of that action is read from the session.
 */
function forget(ctx: SagaContext, stepId: string, actionId: string): void {
  const drop = <T extends { stepId: string }>(list: T[]) => {
    const i = list.findIndex((s) => s.stepId === stepId);
    if (i >= 0) list.splice(i, 1);
  };
  drop(ctx.saga.steps);
  drop(ctx.input.steps);
  ctx.specs.delete(stepId);
  ctx.directSteps.delete(stepId);
  ctx.actions.delete(actionId);
}
