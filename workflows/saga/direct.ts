/**
 * `takeStep` (SPEC §13, docs/TURNS.md): a direct step of a turn, brought to its saga by its agent with what
 * the append answered. Unsigned, it grants nothing: the walk (turn.ts) runs it only as the session holds it
 * — its activity asks the session before every attempt acts — and a step the session does not hold leaves
 * nothing in the saga. The update answers with what the step came to; its wait is bounded by the step's own
 * timeout and retries and by the turn's deadline (no timer of its own: a timer is two events per step).
 */
import * as wf from '@temporalio/workflow';
import { parse } from '../../src/core/common';
import { HypervisorError } from '../../src/core/errors';
import { governed } from '../failures';
import type { z } from 'zod';
import type * as Turns from '../../src/contract/turns';
import { takeStepUpdate } from '../definitions';
import { SAGA_MESSAGE_DESCRIPTIONS as MESSAGES } from '../../src/contract/messageNames';
import type { SagaContext } from './context';

/** What a step came to, once it did (null: not yet). */
function answerOf(ctx: SagaContext, stepId: string, digest: string): Turns.StepAnswer | null {
  const step = ctx.saga.steps.find((s) => s.stepId === stepId);
  const base = { sagaId: ctx.sagaId, stepId, digest: ctx.specs.get(stepId)?.digest ?? digest };
  if (step && ((step.state !== 'pending' && step.state !== 'executing') || ctx.walkOver)) {
    const ok = step.state === 'committed';
    return {
      ...base,
      state: step.state,
      ok,
      result: ok ? step.result : null,
      error: ok ? null : (step.error ?? ctx.error),
    };
  }
  if (step) return null;
  const notRun = (error: string): Turns.StepAnswer => ({ ...base, state: 'not-run', ok: false, result: null, error });
  // The walk is over: a step it did not take never runs.
  if (ctx.walkOver) return notRun(ctx.notRun.get(stepId) ?? ctx.error ?? 'the turn ended first');
  const queued = ctx.directQueue.some((s) => s.stepId === stepId) || ctx.deferred.has(stepId);
  const why = ctx.notRun.get(stepId);
  return why !== undefined && !queued ? notRun(why) : null;
}

/**
 * takeStep's schema, built when a step is brought: only a turn's saga takes one, and every saga run builds the
 * modules it loads afresh (workflows/index.ts) — the turns contract is not worth building for the others.
 */
function takeStepRequest(raw: unknown): z.output<typeof Turns.TakeStepRequestSchema> {
  const { TakeStepRequestSchema } = require('../../src/contract/turns') as typeof Turns;
  return parse(TakeStepRequestSchema, raw, takeStepUpdate.name);
}

export function registerTakeStep(ctx: SagaContext): void {
  wf.setHandler(
    takeStepUpdate,
    async (raw) => {
      const spec = governed(() => takeStepRequest(raw));
      const known =
        ctx.specs.has(spec.stepId) ||
        ctx.deferred.has(spec.stepId) ||
        ctx.directQueue.some((s) => s.stepId === spec.stepId);
      if (!known) {
        ctx.notRun.delete(spec.stepId); // brought again: one that did not run may run now
        ctx.directQueue.push(spec);
      }
      await wf.condition(() => answerOf(ctx, spec.stepId, spec.digest) !== null);
      return answerOf(ctx, spec.stepId, spec.digest)!;
    },
    {
      description: MESSAGES.takeStep.description,
      // Refused here, a request leaves no history.
      validator: (raw) =>
        governed(() => {
          const spec = takeStepRequest(raw);
          const turn = ctx.input.turn;
          if (!turn?.direct)
            throw new HypervisorError('NOT_A_TURN', `saga ${ctx.sagaId} is not a turn that takes direct steps`);
          if (spec.agentDid !== turn.agentDid)
            throw new HypervisorError(
              'NOT_TURN_AGENT',
              `turn ${ctx.sagaId} is ${turn.agentDid}'s, not ${spec.agentDid}'s`,
            );
          if (ctx.walkOver || ctx.saga.state !== 'running')
            throw new HypervisorError('TURN_NOT_OPEN', `turn ${ctx.sagaId} is over: it takes no more steps`);
        }),
    },
  );
}
