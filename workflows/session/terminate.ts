/**
 * Terminate (SPEC §7): close, release bonds, purge the VFS, commit the Merkle root, anchor, store, archive.
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import { collectGarbage, commitAudit } from '../../src/core/commitment';
import { liabilityMatrix } from '../../src/core/liability';
import { archive, beginTerminate, isOverDuration } from '../../src/core/session';
import { restrictSignal } from '../definitions';
import {
  HYPERVISOR_DID,
  integrations,
  auditStore,
  contentHash,
  isOpen,
  type SessionContext,
  record,
  requireState,
} from './context';
import { flushAll } from './trail';
import { runningSagas, refreshSearchAttributes } from './views';
import type { Handlers } from './door';
import { logDropped } from '../failures';
import type { ChangeInput } from '../../src/core/audit';
import type { DeltaSignature } from '../../src/core/identity';
import type { TerminateResult } from '../../src/contract/sessionTypes';
import { patched } from '../ownRun';

export const terminateRules = (ctx: SessionContext) => {
  requireState(ctx, 'terminate', ['handshaking', 'active']);
  if (ctx.closing)
    throw new HypervisorError('SESSION_CLOSED', `session ${ctx.sessionId} is already terminating`, {
      state: 'terminating',
    });
};
export const terminateHandlers = {
  terminate: {
    run: (ctx, _req, a) => terminateSession(ctx, a.accept()),
    check: terminateRules,
  },
} satisfies Handlers;

/**
 * The session's one termination path: a terminate request's (with its signature), or the session's own when its
 * maxDurationSeconds has passed (`because`: the close's delta says so).
 */
async function terminateSession(
  ctx: SessionContext,
  signatures: DeltaSignature[],
  because?: ChangeInput,
): Promise<TerminateResult> {
  // No new saga from here; the ones starting finish starting, so the close reaches every one of them.
  ctx.closing = true;
  await wf.condition(() => ctx.startsInFlight === 0);
  const now = Date.now();
  // Close first (SPEC §7 [resolved]): from here on every request that would add a delta is refused.
  const liabilitySnapshot = liabilityMatrix(ctx.st.liability, ctx.sessionId, now);
  const releasedBonds = beginTerminate(ctx.st.session, ctx.st.liability, now);
  const { report } = collectGarbage({
    vfs: ctx.st.vfs,
    audit: ctx.st.audit,
    liabilitySnapshot: JSON.parse(JSON.stringify(liabilitySnapshot)),
    now,
    retentionDays: ctx.st.session.config.retentionDays,
  });
  record(
    ctx,
    HYPERVISOR_DID,
    [
      { path: '/state', operation: 'modify', contentHash: contentHash('terminating') },
      ...(because ? [because] : []),
      ...releasedBonds.map((id) => ({ path: `/bonds/${id}`, operation: 'delete' as const })),
    ],
    undefined,
    signatures,
  );
  const commitment = commitAudit(ctx.st.audit, Object.keys(ctx.st.session.participants), now);
  ctx.st.commitment = commitment;
  refreshSearchAttributes(ctx);
  // Running sagas learn at once that their session is closed: their next steps are denied.
  for (const saga of runningSagas(ctx))
    void wf
      .getExternalWorkflowHandle(saga.workflowId)
      .signal(restrictSignal, { agents: [], sessionState: 'terminating' })
      .catch(logDropped("the push of the session's end to a saga (its next read of the grant says so)"));
  const anchor = await integrations.anchorCommitment({ ...commitment });
  commitment.anchorTarget = anchor.anchorTarget;
  commitment.anchorTxId = anchor.anchorTxId;
  // The trail and what termination leaves go to the store before the session archives (SPEC §7).
  await flushAll(ctx);
  if (ctx.fatal) throw ctx.fatal;
  await auditStore.storeSessionRecord({
    chain: ctx.chain,
    sessionId: ctx.sessionId,
    commitment,
    liabilitySnapshot: JSON.parse(JSON.stringify(liabilitySnapshot)),
    retainUntil: report.retainUntil,
    deltasPurgedAt: null,
  });
  archive(ctx.st.session, Date.now());
  ctx.terminated = {
    commitment,
    releasedBonds: releasedBonds.length,
    purgedFiles: report.vfsFilesPurged,
    retainUntil: report.retainUntil,
    liabilitySnapshot,
  };
  refreshSearchAttributes(ctx);
  return ctx.terminated;
}

/** A durable timer is re-armed at most this far ahead (a maxDurationSeconds of years stays one timer a year). */
const MAX_TIMER_MS = 365 * 86_400_000;

/**
 * SPEC §3 (issue 24 N20): a session lasts at most config.maxDurationSeconds, counted from its creation — across
 * continue-as-new, since the carried state keeps `createdAt` — then ends itself through terminateSession: closed,
 * committed, anchored and stored as a terminate would, with the hypervisor as its author. A durable timer, so a
 * worker restart or a continue-as-new does not reset it. A session recorded before replays without the timer
 * (the patch `session-max-duration`, asked once per run, before the timer).
 */
export async function endAtMaxDuration(ctx: SessionContext): Promise<void> {
  const session = ctx.st.session;
  if (!isOpen(ctx) || !patched('session-max-duration')) return;
  const deadline = session.createdAt + session.config.maxDurationSeconds * 1000;
  const stopped = () => !isOpen(ctx) || ctx.fatal !== undefined;
  for (;;) {
    const wait = Math.min(MAX_TIMER_MS, Math.max(1, deadline - Date.now()));
    if (await wf.condition(stopped, wait)) return;
    if (isOverDuration(session, Date.now())) break;
  }
  // A run handing over to the next leaves it to the next: its timer fires at once.
  if (ctx.windingDown) return;
  ctx.background++;
  try {
    await wf.condition(() => ctx.trailStarted || ctx.fatal !== undefined);
    if (ctx.fatal || !isOpen(ctx)) return;
    terminateRules(ctx);
    await terminateSession(ctx, [], {
      path: '/maxDurationSeconds',
      operation: 'add',
      contentHash: contentHash({ maxDurationSeconds: session.config.maxDurationSeconds, deadline }),
    });
  } catch (err) {
    // As a failed terminate request: the session stays as it is (its store's failure is ctx.fatal).
    logDropped('the end of the session at its maxDurationSeconds')(err);
  } finally {
    ctx.background--;
  }
}
