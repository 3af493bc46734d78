/**
 * Operator recovery and fork (SPEC §14), the session's side: it learns that a saga awaits its operator from
 * the saga itself (a wake-up, then a read by id: SPEC §11.2), takes an SRE's signed decision for it, records
 * it (a delta naming the operator, the saga, the step and the decision) and wakes the saga, which reads the
 * decision back for its round. A fork starts a new saga from steps k…n of a failed or compensated one.
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import { ownGet, parse } from '../../src/core/common';
import { participantOf } from '../../src/core/session';
import { FORKABLE_SAGAS_KEPT, OperatorDecisionRefSchema, SagaAwaitingSchema } from '../../src/contract/operator';
import type { StartSagaRequestParsed } from '../../src/contract';
import type { SagaRecord } from '../../src/contract/sessionTypes';
import { MESSAGES } from '../../src/contract/messages';
import { operatorDecisionQuery, sagaAwaitingSignal } from '../definitions';
import { logDropped, queryAnswer } from '../failures';
import {
  HYPERVISOR_DID,
  contentHash,
  integrations,
  record,
  requireOpen,
  requireSre,
  stepDigest,
  type SessionContext,
} from './context';
import type { Handlers, Request } from './door';
import { wakeSaga } from './evidence';
import { nextSagaId, startOneSaga, startSagaRules } from './sagas';
import { digestOf, type Settled } from './outcomes';

/** The saga's record, running and awaiting its operator at that step (when named): else refused, naming why. */
function awaitingSaga(
  ctx: SessionContext,
  r: Request<'decideSaga'>,
): { saga: SagaRecord; awaiting: NonNullable<SagaRecord['awaiting']> } {
  requireOpen(ctx, 'decide for a saga');
  requireSre(ctx, r.sreDid, 'operator');
  const saga = ctx.sagas.get(r.sagaId);
  if (!saga) throw new HypervisorError('SAGA_NOT_FOUND', `session ${ctx.sessionId} has no saga ${r.sagaId}`);
  const awaiting = saga.state === 'running' ? saga.awaiting : null;
  if (!awaiting)
    throw new HypervisorError('NOT_AWAITING_OPERATOR', `saga ${r.sagaId} is ${saga.state}, not awaiting its operator`, {
      sagaId: r.sagaId,
    });
  if (r.stepId !== undefined && r.stepId !== awaiting.stepId)
    throw new HypervisorError(
      'NOT_AWAITING_OPERATOR',
      `saga ${r.sagaId} awaits its operator for step ${awaiting.stepId}, not ${r.stepId}`,
      { sagaId: r.sagaId },
    );
  if (Date.now() >= awaiting.deadline)
    throw new HypervisorError('NOT_AWAITING_OPERATOR', `saga ${r.sagaId}'s operator deadline passed: it compensates`, {
      sagaId: r.sagaId,
    });
  if (r.decision === 'skip' && ownGet(ctx.st.session.registry.entries, awaiting.actionId)?.skippable !== true)
    throw new HypervisorError(
      'NOT_SKIPPABLE',
      `step ${awaiting.stepId} (${awaiting.actionId}) cannot be skipped: its action is not declared skippable`,
    );
  return { saga, awaiting };
}

/** What the session learns from the saga, read by id (authentic): the step awaiting, or nothing. */
async function learnAwaiting(ctx: SessionContext, sagaId: string): Promise<void> {
  const saga = ctx.sagas.get(sagaId);
  // Known to await already: nothing to learn until a decision ends the wait (a forged wake-up reads nothing).
  if (!saga || saga.state !== 'running' || saga.awaiting) return;
  ctx.background++;
  try {
    const read = await integrations.readSagaAwaiting({
      workflowId: saga.workflowId,
      sessionWorkflowId: wf.workflowInfo().workflowId,
    });
    if (
      saga.state === 'running' &&
      read &&
      !(saga.decided?.stepId === read.stepId && saga.decided.round === read.round)
    )
      saga.awaiting = read;
  } finally {
    ctx.background--;
  }
}

/** The sagaAwaiting wake-up and the operatorDecision query (what the saga reads back for its round). */
export function registerOperator(ctx: SessionContext): void {
  wf.setHandler(
    sagaAwaitingSignal,
    (raw) => {
      const parsed = SagaAwaitingSchema.safeParse(raw);
      if (parsed.success && ctx.sagas.has(parsed.data.sagaId))
        void learnAwaiting(ctx, parsed.data.sagaId).catch(
          logDropped(`the read of saga ${parsed.data.sagaId} awaiting its operator`),
        );
    },
    { description: MESSAGES.sagaAwaiting.description },
  );
  wf.setHandler(
    operatorDecisionQuery,
    // A malformed reference is refused naming its field, as every query's (INVALID_INPUT); none decided: null.
    queryAnswer((raw: unknown) => {
      const ref = parse(OperatorDecisionRefSchema, raw, 'operatorDecision');
      const decided = ctx.sagas.get(ref.sagaId)?.decided;
      if (!decided || decided.stepId !== ref.stepId || decided.round !== ref.round) return null;
      return { decision: decided.decision, by: decided.by };
    }),
    { description: MESSAGES.operatorDecision.description },
  );
}

/** SPEC §14: a failed or compensated saga keeps its steps' ids, agents and digests (the last few), to be forked. */
export function keepForkable(ctx: SessionContext, saga: SagaRecord, settled: Settled | null): void {
  if (!settled || (saga.state !== 'failed' && saga.state !== 'compensated')) return;
  // A parallel group's branches are not forkable: a fork would run them one after another, outside their policy.
  const branches = new Set((saga.groups ?? []).flatMap((g) => g.branches));
  saga.forkable = settled.outcome.steps
    .filter((s) => !branches.has(s.stepId))
    .map((s) => ({ stepId: s.stepId, agentDid: s.agentDid, digest: digestOf(saga, settled, s) }));
  const kept = [...ctx.sagas.values()].filter((s) => s.forkable);
  for (const old of kept.slice(0, Math.max(0, kept.length - FORKABLE_SAGAS_KEPT))) delete old.forkable;
}

/** The fork's rules that need no waiting: the original is forkable from that step, and these are its steps. */
function forkRules(ctx: SessionContext, r: Request<'forkSaga'>): void {
  startSagaRules(ctx, { sagaId: r.newSagaId, steps: r.steps });
  const original = ctx.sagas.get(r.sagaId);
  const refuse = (why: string) => {
    throw new HypervisorError('NOT_FORKABLE', `cannot fork saga ${r.sagaId}: ${why}`, { sagaId: r.sagaId });
  };
  if (!original) return refuse(`session ${ctx.sessionId} has no saga ${r.sagaId}`);
  if (original.state !== 'failed' && original.state !== 'compensated')
    return refuse(`it is ${original.state}; only a failed or compensated saga is forked`);
  if (!original.forkable)
    return refuse(`the session no longer holds its steps (it keeps the last ${FORKABLE_SAGAS_KEPT})`);
  const from = original.forkable.findIndex((s) => s.stepId === r.fromStepId);
  if (from < 0) return refuse(`it has no step ${r.fromStepId}`);
  const expected = original.forkable.slice(from);
  if (r.steps.length !== expected.length)
    return refuse(`steps ${r.fromStepId}… are ${expected.length}, the request has ${r.steps.length}`);
  r.steps.forEach((s, i) => {
    const e = expected[i]!;
    const digest = stepDigest({
      sessionId: ctx.sessionId,
      sagaId: r.sagaId,
      stepId: s.stepId ?? '',
      actionId: s.actionId,
      agentDid: s.agentDid,
      input: s.input,
    });
    if (s.stepId !== e.stepId || digest !== e.digest)
      refuse(`step ${i + 1} of the request is not the original's step ${e.stepId} as it started`);
  });
  if (ctx.identity === 'did:key' && r.steps.some((s) => !participantOf(ctx.st.session, s.agentDid)))
    refuse('a step agent is no longer a participant');
}

export const operatorHandlers = {
  decideSaga: {
    check: (ctx, r) => void awaitingSaga(ctx, r),
    run(ctx, r, a) {
      const { saga, awaiting } = awaitingSaga(ctx, r);
      const signatures = a.accept();
      const at = Date.now();
      saga.decided = { stepId: awaiting.stepId, round: awaiting.round, decision: r.decision, by: r.sreDid, at };
      saga.awaiting = null;
      const decided = {
        sagaId: saga.sagaId,
        stepId: awaiting.stepId,
        round: awaiting.round,
        decision: r.decision,
        by: r.sreDid,
      };
      record(
        ctx,
        r.sreDid,
        [
          {
            path: `/sagas/${saga.sagaId}/steps/${awaiting.stepId}/operator`,
            operation: 'add',
            contentHash: contentHash({ ...decided, reason: r.reason ?? null }),
          },
        ],
        at,
        signatures,
      );
      wakeSaga(ctx, saga);
      return decided;
    },
  },
  forkSaga: {
    check: forkRules,
    async run(ctx, r, a) {
      forkRules(ctx, r);
      const signatures = a.accept();
      const original = ctx.sagas.get(r.sagaId)!;
      const forkedFrom = { sagaId: r.sagaId, stepId: r.fromStepId };
      const req = {
        description: r.description ?? `fork of ${r.sagaId} from ${r.fromStepId}`,
        steps: r.steps,
        onFailure: r.onFailure,
      } as StartSagaRequestParsed;
      const started = await startOneSaga(ctx, req, r.newSagaId ?? nextSagaId(ctx), signatures, undefined, forkedFrom);
      if (!started.ok) throw started.error;
      original.forks = [...(original.forks ?? []), started.result.sagaId].slice(-20);
      record(ctx, HYPERVISOR_DID, [
        {
          path: `/sagas/${r.sagaId}/forks`,
          operation: 'modify',
          contentHash: contentHash({
            forks: original.forks,
            latest: { sagaId: started.result.sagaId, fromStepId: r.fromStepId },
          }),
        },
      ]);
      return { ...started.result, forkedFrom };
    },
  },
} satisfies Handlers;
