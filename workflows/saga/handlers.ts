/**
 * The saga's signals and queries (SPEC §11.3): a push only takes away, a
 * wake-up makes it ask its session again, and the queries read its state.
 * Handlers are total: a bad push or argument is ignored or denied, never an error.
 */
import * as wf from '@temporalio/workflow';
import { RestrictionSchema } from '../../src/core/sagaContract';
import { gateStep } from '../../src/core/gate';
import { parseContext } from '../../src/core/common';
import { SAGA_MESSAGE_DESCRIPTIONS as MESSAGES } from '../../src/contract/messageNames';
import { heldAgentQuery, restrictSignal, sagaStateQuery, stepGateQuery, wakeSignal } from '../definitions';
import { runningSteps, snapshot, type SagaContext } from './context';
import { confirmKill, decideOnHeldView } from './gate';
import { detach, patched } from '../ownRun';
import { registerTakeStep } from './direct';

export function registerSagaHandlers(ctx: SagaContext): void {
  // SPEC §11.3: a push only takes away. Handlers are total: a bad push is ignored.
  wf.setHandler(restrictSignal, (raw) => {
    const parsed = RestrictionSchema.safeParse(raw, parseContext);
    ctx.woken = true;
    ctx.wakes++;
    if (!parsed.success) return;
    for (const pushed of parsed.data.agents) {
      const held = ctx.agents.get(pushed.did);
      if (!held) continue;
      const restriction = Math.max(held.restriction ?? 0, pushed.restriction ?? 0) as 0 | 1 | 2;
      // An elevation never grows; one the push no longer has ended now — kept as ended, so a denial can say why.
      const elevation = held.elevation
        ? {
            ring: Math.max(held.elevation.ring, pushed.elevation?.ring ?? 1) as 1 | 2,
            until: Math.min(held.elevation.until, pushed.elevation?.until ?? Date.now()),
          }
        : null;
      ctx.agents.set(pushed.did, {
        did: held.did,
        sigmaRaw: Math.min(held.sigmaRaw, pushed.sigmaRaw),
        bondSum: Math.min(held.bondSum, pushed.bondSum),
        ringCap: Math.max(held.ringCap, pushed.ringCap),
        active: held.active && pushed.active,
        ...(restriction > 0 ? { restriction } : {}),
        ...(elevation ? { elevation } : {}),
      });
    }
    if (parsed.data.sessionState) ctx.sessionState = parsed.data.sessionState;
    // SPEC §12: a killed agent's step in flight is cancelled (it heartbeats, so the cancellation reaches its tool).
    // Every step in flight: the sequential step's, or a parallel group's branches' (SPEC §14).
    for (const run of runningSteps(ctx)) {
      if (ctx.agents.get(run.agentDid)?.restriction !== 2 || run.killed) continue;
      // N15: a push only takes away from the next step. A step in flight is cancelled on the session's own
      // word: the kill it recorded, read back by an activity (an outsider's push changes nothing here).
      if (patched('kill-confirmed-by-session')) detach(confirmKill(ctx, run));
      else {
        run.killed = true;
        run.scope.cancel();
      }
    }
  });
  wf.setHandler(wakeSignal, (raw) => {
    ctx.woken = true;
    ctx.wakes++;
    if (typeof raw === 'object' && raw !== null && (raw as { sessionContinued?: unknown }).sessionContinued === true)
      ctx.notifySessionOnEnd = true;
  });
  wf.setHandler(
    heldAgentQuery,
    (did) => {
      const held = (typeof did === 'string' ? ctx.agents.get(did)?.restriction : undefined) ?? 0;
      const runs = runningSteps(ctx).filter((r) => r.agentDid === did);
      // A kill is held once the agent's steps in flight are cancelled (N15: on the session's word, read back):
      // until then the session's kill waits, so nothing of the agent retries after the kill is recorded.
      const restriction = held === 2 && runs.some((r) => !r.killed) ? 1 : held;
      return { restriction, runningStepId: runs[0]?.stepId ?? null };
    },
    { description: MESSAGES.heldAgent.description },
  );
  wf.setHandler(sagaStateQuery, () => snapshot(ctx), { description: MESSAGES.sagaState.description });
  // Total: an unknown step is denied, never an error.
  wf.setHandler(
    stepGateQuery,
    (stepId) =>
      typeof stepId === 'string' && ctx.specs.has(stepId)
        ? decideOnHeldView(ctx, stepId)
        : gateStep({
            agent: undefined,
            action: undefined,
            sessionState: ctx.sessionState,
            hasConsensus: false,
            hasSreWitness: false,
          }),
    { description: MESSAGES.stepGate.description },
  );
  registerTakeStep(ctx);
}
