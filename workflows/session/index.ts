/**
 * The session workflow: the source of truth for one session — participants
 * with their σ and ring, bonds, the reversibility registry, the VFS and the
 * audit chain — and the authority behind every grant (SPEC §11).
 *
 * - Every change arrives as an update, a request, through the door (door.ts):
 *   its validator applies every rule it can check without waiting, so a
 *   refused request leaves no history.
 * - Sagas are its children. Each starts from the view the session gives it;
 *   later pushes (`restrict`) may only take privilege away. A saga that needs
 *   more (approvals, a witness, a raise) reads `stepGrant` from an activity.
 * - The session learns a saga's outcome only from authentic sources: the
 *   child's completion, or reading the saga by id in an activity when the
 *   session has continued as new since it started it. Only those record
 *   step deltas or slash.
 *
 * The handlers live in their families (participants, sagas, evidence,
 * controls, terminate, vfs); this body holds the wiring and the lifetime.
 */
import * as wf from '@temporalio/workflow';
import { ownGet } from '../../src/core/common';
import { nextBondExpiry, pruneExpired } from '../../src/core/liability';
import { refreshRings } from '../../src/core/sessionRings';
import { ATTR } from '../../src/core/observability';
import { annotateRun } from '../observe';
import { asFailure } from '../failures';
import type { SessionWorkflowInput, TerminateResult } from '../../src/contract/sessionTypes';
import { contentHash, createContext, HYPERVISOR_DID, isOpen, record, type SessionContext } from './context';
import { wire } from './door';
import { armExpiry, controlHandlers } from './controls';
import { evidenceHandlers } from './evidence';
import { participantHandlers } from './participants';
import { registerQueries } from './queries';
import { grantHandlers } from './grants';
import { registerSagaEnded, sagaHandlers, wakeCarriedSagas } from './sagas';
import { endAtMaxDuration, terminateHandlers } from './terminate';
import { flushAll, startTrail, storeBeforeWindingDown } from './trail';
import { applyRingChanges, refreshSearchAttributes } from './views';
import { registerVfsQueries, vfsHandlers } from './vfs';
import { turnHandlers } from './turns';
import { detach, patched } from '../ownRun';
import { operatorHandlers, registerOperator } from './operator';

export { HYPERVISOR_DID, elevationDigest, handoffDigest, stepDigest } from './context';
export { AUDIT_BACKLOG_MAX } from './trail';

export async function sessionWorkflow(input: SessionWorkflowInput): Promise<TerminateResult> {
  const ctx = contextOrRefusal(input);
  annotateRun(() => ({ [ATTR.sessionId]: ctx.sessionId }));
  const proving = startTrail(ctx);

  // The order handlers are set in is the order requests that arrived with the start run: keep it.
  wire(ctx, { ...participantHandlers, ...sagaHandlers });
  registerSagaEnded(ctx);
  wire(ctx, { ...evidenceHandlers, ...grantHandlers });
  wire(ctx, controlHandlers);
  wire(ctx, terminateHandlers);
  wire(ctx, vfsHandlers);
  wire(ctx, turnHandlers);
  registerVfsQueries(ctx);
  registerQueries(ctx);
  // SPEC §14, set last: no earlier history holds these messages.
  wire(ctx, operatorHandlers);
  registerOperator(ctx);

  refreshSearchAttributes(ctx);
  // Controls a previous run carried over end by timers of this run.
  for (const t of [...ctx.controls.restrictions.values(), ...ctx.controls.elevations.values()].map((c) => c.until))
    if (t !== null) armExpiry(ctx, t);
  // Sagas a previous run started: their completion went to that run, so read them by id (once the carried state is proven).
  if (proving)
    detach(
      wf
        .condition(() => ctx.trailStarted || ctx.fatal !== undefined)
        .then(() => {
          if (!ctx.fatal) wakeCarriedSagas(ctx);
        }),
    );
  else if (input.carried) wakeCarriedSagas(ctx);
  // SPEC §3: the session ends itself at its maxDurationSeconds (N20).
  detach(endAtMaxDuration(ctx));

  await untilItEnds(ctx);
  return handOver(ctx);
}

/**
 * The session's context; for an input that cannot start a session, the start's error — failing the run, and
 * answering every update sent with the start (update-with-start) rather than leaving it "no handler" (issue 23).
 */
function contextOrRefusal(input: SessionWorkflowInput): SessionContext {
  try {
    return createContext(input);
  } catch (err) {
    const failure = asFailure(err);
    wf.setDefaultUpdateHandler(() => {
      throw failure;
    });
    throw failure;
  }
}

const wantsToEnd = (ctx: SessionContext) =>
  ctx.terminated !== undefined ||
  ctx.fatal !== undefined ||
  ctx.updatesThisRun >= ctx.maxUpdatesPerRun ||
  wf.workflowInfo().continueAsNewSuggested;

/** The run's life: SPEC §1's bond expiries take effect at their time, by a durable timer, until the run wants to end. */
async function untilItEnds(ctx: SessionContext): Promise<void> {
  for (;;) {
    const seen = ctx.bondsVersion;
    const next = isOpen(ctx) ? nextBondExpiry(ctx.st.liability, ctx.sessionId, Date.now()) : null;
    const wake = () => wantsToEnd(ctx) || ctx.bondsVersion !== seen;
    const woke =
      next === null
        ? await wf.condition(wake).then(() => true)
        : await wf.condition(wake, Math.max(1, next - Date.now()));
    if (wantsToEnd(ctx)) return;
    if (!woke && isOpen(ctx)) {
      ctx.bondsVersion++;
      const expired = pruneExpired(ctx.st.liability, ctx.sessionId, Date.now());
      for (const id of expired)
        record(ctx, HYPERVISOR_DID, [
          { path: `/bonds/${id}`, operation: 'delete', contentHash: contentHash({ expired: true }) },
        ]);
      const vouchees = expired.map((id) => ownGet(ctx.st.liability.bonds, id)!.vouchee);
      applyRingChanges(ctx, refreshRings(ctx.st.session, ctx.st.liability, Date.now()), 'bond expiry', vouchees);
    }
  }
}

const HAND_OVER_AFTER_OWN_SAGAS = 'hand-over-after-own-sagas';
/** How long a run handing over waits for its own sagas to end: those of seconds do; longer ones go on. */
const OWN_SAGAS_WAIT = '2 seconds';

/** Sagas this run started that have not ended (their completion comes to this run). */
const ownSagasRunning = (ctx: SessionContext) =>
  [...ctx.children].some((sagaId) => ctx.sagas.get(sagaId)?.state === 'running');

/**
 * The end of a run: terminated, failed, or continued as new. The next run carries the head and the
 * frontier, not the trail: store every delta, including those of requests that arrive meanwhile, and
 * continue with nothing in between the last check and the new run.
 */
async function handOver(ctx: SessionContext): Promise<TerminateResult> {
  // N27: while the store is down, keep serving (within bounds) rather than refuse everything until it is back.
  await storeBeforeWindingDown(ctx);
  ctx.windingDown = ctx.terminated === undefined;
  // A saga of this run that ends while the continue-as-new task runs fails that task (its completion is an
  // event the task did not see), and each next attempt replays the whole run (~4,000 events, seconds) while
  // more end: let the run's own sagas end first, for a moment at most (the next run reads the others by id).
  if (ctx.windingDown && ownSagasRunning(ctx) && patched(HAND_OVER_AFTER_OWN_SAGAS))
    await wf.condition(() => ctx.fatal !== undefined || !ownSagasRunning(ctx), OWN_SAGAS_WAIT);
  for (;;) {
    await wf.condition(() => ctx.fatal !== undefined || (wf.allHandlersFinished() && ctx.background === 0));
    if (ctx.fatal) throw ctx.fatal;
    if (ctx.terminated) return ctx.terminated;
    if (ctx.st.audit.deltas.length === 0 && !ctx.flushing) break;
    await flushAll(ctx);
  }
  const { st } = ctx;
  st.runs++;
  st.sagas = [...ctx.sagas.values()];
  st.nonces = [...ctx.nonces];
  st.controls = ctx.controls.toState();
  st.parents = [...ctx.parents];
  // Only once a request was remembered (a run before request ids hands over the state it always did).
  if (ctx.requests.size > 0) st.requests = [...ctx.requests.values()];
  else delete st.requests;
  return wf.continueAsNew<typeof sessionWorkflow>({
    sessionId: ctx.sessionId,
    creatorDid: ctx.input.creatorDid,
    maxUpdatesPerRun: ctx.maxUpdatesPerRun,
    carried: st,
  });
}
