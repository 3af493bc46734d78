/**
 * Terminate (SPEC §7): close, release bonds, purge the VFS, commit the Merkle root, anchor, store, archive.
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import { collectGarbage, commitAudit } from '../../src/core/commitment';
import { liabilityMatrix } from '../../src/core/liability';
import { archive, beginTerminate } from '../../src/core/session';
import { restrictSignal } from '../definitions';
import {
  HYPERVISOR_DID,
  integrations,
  auditStore,
  contentHash,
  type SessionContext,
  record,
  requireState,
} from './context';
import { flushAll } from './trail';
import { runningSagas, refreshSearchAttributes } from './views';
import type { Handlers } from './door';
import { logDropped } from '../failures';

export const terminateRules = (ctx: SessionContext) => {
  requireState(ctx, 'terminate', ['handshaking', 'active']);
  if (ctx.closing)
    throw new HypervisorError('SESSION_CLOSED', `session ${ctx.sessionId} is already terminating`, {
      state: 'terminating',
    });
};
export const terminateHandlers = {
  terminate: {
    async run(ctx, _req, a) {
      const signatures = a.accept();
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
    },
    check: terminateRules,
  },
} satisfies Handlers;
