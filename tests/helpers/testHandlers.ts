/**
 * Step handlers the workflow tests use. The worker runs in the test process,
 * so each handler records what it did (per saga and step) for the test to read.
 */
import { ApplicationFailure, sleep } from '@temporalio/activity';
import { registerStepHandler } from '../../activities/handlers';

export interface Call {
  key: string;
  stepId: string;
  /** cancelled: a run that stopped on its cancellation without acting. */
  phase: 'execute' | 'undo' | 'cancelled';
  agentDid?: string;
  attempt: number;
  at: number;
}

/** Every call made, in order, keyed by the saga's workflow id. */
export const calls: Record<string, Call[]> = {};

function note(workflowId: string, call: Call): void {
  (calls[workflowId] ??= []).push(call);
}

interface TestInput {
  /** Fail attempts 1..failAttempts (retryable); later attempts succeed. Infinity = always fail. */
  failAttempts?: number;
  /** Sleep this long before answering (to exceed a start-to-close timeout). */
  delayMs?: number;
  /** Only when this agent acts (a step handed to a substitute then runs at once). */
  delayFor?: string;
  /** The undo fails every time. */
  failUndo?: boolean;
  /** The undo sleeps this long first. */
  undoDelayMs?: number;
}

export function registerTestHandlers(): void {
  registerStepHandler('test.step', {
    async execute(input, ctx) {
      const opts = (input ?? {}) as TestInput;
      note(ctx.workflowId, {
        key: ctx.idempotencyKey,
        stepId: ctx.stepId,
        phase: 'execute',
        agentDid: ctx.agentDid,
        attempt: ctx.attempt,
        at: Date.now(),
      });
      if (opts.delayMs && (opts.delayFor === undefined || opts.delayFor === ctx.agentDid)) {
        try {
          await sleep(opts.delayMs); // the activity's sleep: it ends on cancellation (delivered with a heartbeat)
        } catch (err) {
          note(ctx.workflowId, {
            key: ctx.idempotencyKey,
            stepId: ctx.stepId,
            phase: 'cancelled',
            agentDid: ctx.agentDid,
            attempt: ctx.attempt,
            at: Date.now(),
          });
          throw err;
        }
      }
      const failAttempts = opts.failAttempts === -1 ? Infinity : (opts.failAttempts ?? 0);
      if (ctx.attempt <= failAttempts)
        throw ApplicationFailure.retryable(`attempt ${ctx.attempt} failed on purpose`, 'TestFailure');
      return {
        done: ctx.stepId,
        ...((input as { costUnits?: number } | null)?.costUnits !== undefined
          ? { costUnits: (input as { costUnits: number }).costUnits }
          : {}),
      };
    },
    async undo(input, _result, ctx) {
      note(ctx.workflowId, {
        key: ctx.idempotencyKey,
        stepId: ctx.stepId,
        phase: 'undo',
        attempt: ctx.attempt,
        at: Date.now(),
      });
      if ((input as TestInput | null)?.undoDelayMs) await sleep((input as TestInput).undoDelayMs!);
      if ((input as TestInput | null)?.failUndo)
        throw ApplicationFailure.retryable('undo failed on purpose', 'TestUndoFailure');
      return { undone: ctx.stepId };
    },
  });
  registerStepHandler('test.read', {
    readOnly: true,
    async execute(_input, ctx) {
      note(ctx.workflowId, {
        key: ctx.idempotencyKey,
        stepId: ctx.stepId,
        phase: 'execute',
        attempt: ctx.attempt,
        at: Date.now(),
      });
      return { read: ctx.stepId };
    },
  });
  registerStepHandler('test.no-undo', {
    async execute(_input, ctx) {
      note(ctx.workflowId, {
        key: ctx.idempotencyKey,
        stepId: ctx.stepId,
        phase: 'execute',
        attempt: ctx.attempt,
        at: Date.now(),
      });
      return null;
    },
  });
}
