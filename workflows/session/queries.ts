/**
 * The session's queries: its summary, one participant, the liability matrix,
 * the trail's head and the deltas not yet stored (whole, or a batch's wire
 * form for the audit activity), its sagas, a step's grant.
 * A query reads state; it never changes it.
 */
import * as wf from '@temporalio/workflow';
import { auditMerkleRoot } from '../../src/core/audit';
import { liabilityMatrix } from '../../src/core/liability';
import { participantOf } from '../../src/core/session';
import { MESSAGES } from '../../src/contract/messages';
import {
  auditQuery,
  liabilityQuery,
  pendingAuditBatchQuery,
  participantQuery,
  sagasQuery,
  stepGrantQuery,
  summaryQuery,
  turnQuery,
} from '../definitions';
import { queryAnswer } from '../failures';
import type { SessionContext } from './context';
import { stepGrant } from './grants';
import { summary } from './views';
import { turnView } from './turns';
import { pendingAuditBatch } from './trail';

export function registerQueries(ctx: SessionContext): void {
  const { st, sessionId } = ctx;
  wf.setHandler(summaryQuery, () => summary(ctx), { description: MESSAGES.summary.description });
  wf.setHandler(
    participantQuery,
    (did) => (typeof did === 'string' ? (participantOf(st.session, did) ?? null) : null),
    { description: MESSAGES.participant.description },
  );
  wf.setHandler(liabilityQuery, () => liabilityMatrix(st.liability, sessionId, Date.now()), {
    description: MESSAGES.liabilityMatrix.description,
  });
  wf.setHandler(
    auditQuery,
    () => ({
      sessionId,
      deltaCount: st.audit.turn,
      merkleRoot: auditMerkleRoot(st.audit),
      head: st.audit.head,
      stored: st.audit.stored,
      pending: st.audit.deltas.slice(),
    }),
    { description: MESSAGES.auditHead.description },
  );
  wf.setHandler(
    pendingAuditBatchQuery,
    queryAnswer((raw) => pendingAuditBatch(ctx, raw)),
    { description: MESSAGES.pendingAuditBatch.description },
  );
  wf.setHandler(sagasQuery, () => [...ctx.sagas.values()], { description: MESSAGES.sagas.description });
  wf.setHandler(
    stepGrantQuery,
    queryAnswer((raw) => stepGrant(ctx, raw)),
    { description: MESSAGES.stepGrant.description },
  );
  wf.setHandler(
    turnQuery,
    queryAnswer((raw) => turnView(ctx, raw)),
    { description: MESSAGES.turnView.description },
  );
}
