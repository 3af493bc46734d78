/**
 * Evidence (SPEC §11.5): approvals, rejections and witnesses, each bound to a step's digest.
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import { receiptChange } from '../../src/core/identity';
import { wakeSignal } from '../definitions';
import type { EvidenceResult, SagaRecord, StepEvidence } from '../../src/contract/sessionTypes';
import { type SessionContext, requireOpen, record, requireSre } from './context';
import { approverRefusal, countedApprovers } from './views';
import type { Handlers } from './door';
import { logDropped } from '../failures';

export function evidenceOf(
  ctx: SessionContext,
  ref: { sagaId: string; stepId: string; digest: string },
  doing: string,
): { saga: SagaRecord; step: StepEvidence } {
  const saga = ctx.sagas.get(ref.sagaId);
  if (!saga)
    throw new HypervisorError('SAGA_NOT_FOUND', `cannot ${doing}: session ${ctx.sessionId} has no saga ${ref.sagaId}`);
  if (saga.state !== 'running')
    throw new HypervisorError('SAGA_ENDED', `cannot ${doing}: saga ${ref.sagaId} is ${saga.state}`);
  const step = saga.steps.find((s) => s.stepId === ref.stepId);
  if (!step)
    throw new HypervisorError('STEP_NOT_FOUND', `cannot ${doing}: saga ${ref.sagaId} has no step ${ref.stepId}`);
  if (step.digest !== ref.digest && step.handedFrom?.digest !== ref.digest) {
    throw new HypervisorError(
      'DIGEST_MISMATCH',
      `cannot ${doing}: digest is not step ${ref.stepId}'s (${step.digest}); evidence is bound to what the step does`,
    );
  }
  return { saga, step };
}

/**
 * The step that new evidence (an approval, a rejection, a witness) is for: it counts only for the digest
 * it names (SPEC §11.5) — a step handed to a substitute after a kill is a new step, and evidence for
 * the killed agent's digest is refused — and only before the session granted the step's start.
 */
export function evidenceFor(
  ctx: SessionContext,
  ref: { sagaId: string; stepId: string; digest: string },
  doing: string,
): { saga: SagaRecord; step: StepEvidence } {
  const found = evidenceOf(ctx, ref, doing);
  const { step } = found;
  if (step.digest !== ref.digest) {
    throw new HypervisorError(
      'DIGEST_MISMATCH',
      `cannot ${doing}: step ${ref.stepId} was handed to ${step.agentDid} after a kill; its digest is now ${step.digest}, and evidence for the old one does not count`,
    );
  }
  if (step.started)
    throw new HypervisorError(
      'STEP_STARTED',
      `cannot ${doing}: step ${ref.stepId} of saga ${ref.sagaId} has started; its evidence was spent when the session granted it`,
    );
  return found;
}

export const evidenceResult = (ctx: SessionContext, saga: SagaRecord, step: StepEvidence): EvidenceResult => ({
  sagaId: saga.sagaId,
  stepId: step.stepId,
  digest: step.digest,
  approvals: countedApprovers(ctx, saga, step).length,
  quorum: ctx.st.session.config.consensusQuorum,
  rejected: step.rejectedBy !== null,
  witnessed: step.witness !== null,
});

export const approverRules = (
  ctx: SessionContext,
  r: { sagaId: string; stepId: string; digest: string; approverDid: string },
  doing: string,
) => {
  requireOpen(ctx, doing);
  const { saga, step } = evidenceFor(ctx, r, doing);
  // SPEC §11.9: the one approver rule (src/session.ts checkApprover); the request is the saga's start.
  const refusal = approverRefusal(ctx, r.approverDid, step.agentDid, saga.startedAt);
  if (refusal) throw refusal;
  if (step.approvers.includes(r.approverDid))
    throw new HypervisorError('DUPLICATE_APPROVAL', `${r.approverDid} already approved step ${r.stepId}`);
  if (step.rejectedBy)
    throw new HypervisorError('STEP_REJECTED', `step ${r.stepId} was rejected by ${step.rejectedBy.did}`);
  return step;
};

export const wakeSaga = (ctx: SessionContext, saga: SagaRecord) =>
  void wf
    .getExternalWorkflowHandle(saga.workflowId)
    .signal(wakeSignal, {})
    .catch(logDropped('a wake-up to a saga after new evidence (it asks again at its deadline)'));

/** Approve, reject (SPEC §11.5: an active participant other than the acting agent, bound to the step's digest). */
const approvals = {
  approve: {
    run(ctx, req, a) {
      const step = approverRules(ctx, req, a.name);
      const { saga } = evidenceFor(ctx, req, a.name);
      const signatures = a.accept();
      step.approvers.push(req.approverDid);
      // A signed approval is a receipt: the trail keeps what was signed, bound to this change (src/core/identity.ts).
      record(ctx, req.approverDid, [receiptChange(a.name, req)!], undefined, signatures);
      wakeSaga(ctx, saga);
      return evidenceResult(ctx, saga, step);
    },
    check: (ctx, r, name) => void approverRules(ctx, r, name),
  },
  reject: {
    run(ctx, req, a) {
      const step = approverRules(ctx, req, a.name);
      const { saga } = evidenceFor(ctx, req, a.name);
      const signatures = a.accept();
      step.rejectedBy = { did: req.approverDid, reason: req.reason };
      record(ctx, req.approverDid, [receiptChange(a.name, req)!], undefined, signatures);
      wakeSaga(ctx, saga);
      return evidenceResult(ctx, saga, step);
    },
    check: (ctx, r, name) => void approverRules(ctx, r, name),
  },
} satisfies Handlers;

export const witnessRules = (
  ctx: SessionContext,
  r: { sagaId: string; stepId: string; digest: string; witnessDid: string },
  doing: string,
) => {
  requireOpen(ctx, doing);
  const { step } = evidenceFor(ctx, r, doing);
  requireSre(ctx, r.witnessDid, doing);
  if (r.witnessDid === step.agentDid)
    throw new HypervisorError('SELF_APPROVAL', `witness ${r.witnessDid} is the step's acting agent`);
  if (step.witness)
    throw new HypervisorError('DUPLICATE_APPROVAL', `step ${r.stepId} is already witnessed by ${step.witness}`);
  return step;
};
/** Evidence for a step (SPEC §11.5), in the order the session sets their handlers. */
export const evidenceHandlers = {
  ...approvals,
  witness: {
    run(ctx, req, a) {
      const step = witnessRules(ctx, req, a.name);
      const { saga } = evidenceFor(ctx, req, a.name);
      const signatures = a.accept();
      step.witness = req.witnessDid;
      record(ctx, req.witnessDid, [receiptChange(a.name, req)!], undefined, signatures);
      wakeSaga(ctx, saga);
      return evidenceResult(ctx, saga, step);
    },
    check: witnessRules,
  },
} satisfies Handlers;
