/**
 * The saga workflow, a child of its session (SPEC §6, §11).
 *
 * - It starts from the view its session gave it (its start input, authentic
 *   because the session is its parent) and holds it; pushes (`restrict`) may
 *   only take privilege away.
 * - Each step is gated on the held view. When that is not enough (approvals,
 *   a witness, a raise since the start) it asks the session, from an
 *   activity, for its decision now: that answer is authentic and the session's.
 * - A step runs what its action declared at join (SPEC §11.4), as an activity
 *   with Temporal's own timeout and retry; every retry attempt is re-gated by
 *   the activity before it acts.
 * - On failure — or cancellation — the steps that may have acted are
 *   compensated in reverse, in a scope nothing cancels. A saga that did not
 *   complete ends as a failed workflow (SagaCompensated, SagaEscalated,
 *   SagaFailed) with its answer in the failure's details.
 * - Its answer (result or details) is its compact outcome when its session
 *   asked for format 2 on (issue 20: the session needs no more, and the
 *   bytes are written twice); its full snapshot is the `sagaState` query.
 * - Format 3 on: HvSagaState only when its workflow status cannot say it (its
 *   session starts it without one; it writes its end unless it completed).
 */
import * as wf from '@temporalio/workflow';
import { completeTurn, finishSaga } from '../../src/core/saga';
import { ATTR } from '../../src/core/observability';
import { HvSagaState } from '../../src/contract/searchAttributes';
import type { SagaWorkflowInput } from '../../src/core/sagaStart';
import { sagaOutcome3Of, sagaOutcome4Of, sagaOutcomeOf } from '../../src/contract/sagaAnswer';
import type { SagaAnswer } from '../../src/contract/sagaOutcome';
import { sagaEndedSignal, sessionWorkflowId } from '../definitions';
import { annotateRun, sagaEnded } from '../observe';
import { compensate } from './compensation';
import { createSagaContext, publishDetails, snapshot } from './context';
import { sagaFailure } from './failures';
import { indexPending } from './gate';
import { walkForward } from './forward';
import { walkTurn } from './turn';
import { registerSagaHandlers } from './handlers';
import { logDropped } from '../failures';
import { upsertSearchAttributes } from '../ownRun';

export async function sagaWorkflow(raw: SagaWorkflowInput): Promise<SagaAnswer> {
  const ctx = createSagaContext(raw);
  annotateRun(() => ({ [ATTR.sessionId]: ctx.sessionId, [ATTR.sagaId]: ctx.sagaId }));
  registerSagaHandlers(ctx);

  publishDetails(ctx);
  if (ctx.input.turn) await walkTurn(ctx);
  else await walkForward(ctx);
  await compensate(ctx);

  // A turn its agent ended completes: a step's error was the agent's answer, and undoes nothing (SPEC §13).
  // A direct turn's takeStep still waiting answers with what its step came to before the saga ends.
  if (ctx.input.turn?.direct) await wf.CancellationScope.nonCancellable(() => wf.condition(wf.allHandlersFinished));
  if (ctx.input.turn && ctx.saga.state === 'running') completeTurn(ctx.saga, Date.now());
  else finishSaga(ctx.saga, Date.now());
  sagaEnded(ctx.saga.state);
  ctx.waiting = null;
  indexPending(ctx, null);
  publishDetails(ctx);
  // Format 3 on: a completed saga's state is its workflow status (src/client/lists.ts); any other end is written.
  if ((ctx.input.format ?? 1) < 3 || ctx.saga.state !== 'completed')
    upsertSearchAttributes([{ key: HvSagaState, value: ctx.saga.state }]);
  if (ctx.notifySessionOnEnd) {
    await wf.CancellationScope.nonCancellable(() =>
      wf.getExternalWorkflowHandle(sessionWorkflowId(ctx.sessionId)).signal(sagaEndedSignal, { sagaId: ctx.sagaId }),
    ).catch(logDropped('the wake-up to the session that this saga ended (its new run reads the saga by id anyway)'));
  }
  const snap = snapshot(ctx);
  // A saga started before format 2 answers its snapshot, as its history recorded.
  const givenAgent = (stepId: string) => ctx.specs.get(stepId)?.agentDid;
  // Format 5 (its input without undoApis that repeat executeApis) answers format 4's outcome.
  const answer =
    (ctx.input.format ?? 1) >= 4
      ? sagaOutcome4Of(snap, givenAgent, ctx.input.turn !== undefined)
      : ctx.input.format === 3
        ? sagaOutcome3Of(snap, givenAgent)
        : ctx.input.format === 2
          ? sagaOutcomeOf(snap)
          : snap;
  if (ctx.saga.state === 'completed') return answer;
  // Ended, but not as asked: a failed workflow, so the Web UI, its filters and Temporal's metrics tell it apart.
  throw sagaFailure(ctx.sagaId, ctx.saga.state, answer, ctx.error);
}
