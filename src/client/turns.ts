/**
 * An agent's turn in the typed client (SPEC §13, docs/TURNS.md): the handle that appends, ends and aborts
 * it, and the wait for an appended step's answer in its saga's own state.
 */
import type { SagaSnapshot } from '../contract/sagaTypes';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import type { OutputOf, RequestOf } from '../contract/messages';
import type { TakeStepRequest } from '../contract/turns';
import type { SagaHandle, SendOptions, SessionHandle } from '.';

/** What an appended step came to: its result when it committed, else its error (SPEC §13). */
export interface StepAnswer {
  sagaId: string;
  stepId: string;
  digest: string;
  /** committed, failed — or compensated etc. when the turn ended before the agent read it; not-run: it never ran. */
  state: SagaSnapshot['saga']['steps'][number]['state'] | 'not-run';
  ok: boolean;
  result: unknown;
  error: string | null;
}

/** How often a direct step is brought to its saga before its answer is read from the saga's state instead. */
const TAKE_TRIES = 4;
const TAKE_RETRY_MS = 50;

/** How often a waiting append reads its saga (a step its saga reads itself): from 20 ms, doubling, to at most 500 ms. */
const ANSWER_POLL_MS = { first: 20, max: 500 };

/**
 * Waits for an appended step's outcome. A direct step (docs/TURNS.md) is brought to its saga (`takeStep`),
 * whose answer is the outcome; any other — or one the saga did not take that way — is read in its saga's state
 * (the saga's own word, a query: it records nothing) until it has one.
 */
export async function stepAnswer(
  saga: SagaHandle,
  appended: { sagaId: string; stepId: string; digest: string; direct?: TakeStepRequest },
): Promise<StepAnswer> {
  const { direct, ...step } = appended;
  // Brought again when not delivered (e.g. the saga's in-flight updates at Temporal's limit): a step runs once.
  for (let tries = 0, wait = TAKE_RETRY_MS; direct && tries < TAKE_TRIES; tries++, wait *= 2) {
    try {
      const answer = await saga.handle.executeUpdate<OutputOf<'takeStep'>, [TakeStepRequest]>('takeStep', {
        args: [direct],
      });
      return answer as StepAnswer;
    } catch (err) {
      // Refused by the saga (the turn is over): its state says what the step came to.
      if (err instanceof WorkflowUpdateFailedError) break;
      await new Promise((r) => setTimeout(r, wait));
    }
  }
  return polledAnswer(saga, step);
}

async function polledAnswer(
  saga: SagaHandle,
  appended: { sagaId: string; stepId: string; digest: string },
): Promise<StepAnswer> {
  for (let wait = ANSWER_POLL_MS.first; ; wait = Math.min(wait * 2, ANSWER_POLL_MS.max)) {
    const snap = await saga.state();
    const step = snap.saga.steps.find((s) => s.stepId === appended.stepId);
    const over = snap.saga.state !== 'running';
    if (step && step.state !== 'pending' && step.state !== 'executing')
      return {
        ...appended,
        state: step.state,
        ok: step.state === 'committed',
        result: step.state === 'committed' ? step.result : null,
        error: step.state === 'committed' ? null : (step.error ?? snap.error),
      };
    if (over && !step)
      return { ...appended, state: 'not-run', ok: false, result: null, error: snap.error ?? 'the turn ended first' };
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** An agent's open turn (SPEC §13): append steps, then end or abort it. Every request is signed as the agent. */
export class TurnHandle {
  readonly sagaId: string;
  readonly workflowId: string;
  readonly agentDid: string;
  /** Epoch ms when the turn ends by itself, compensating. */
  readonly deadline: number;
  constructor(
    readonly session: SessionHandle,
    opened: { sagaId: string; workflowId: string; agentDid: string; deadline: number },
    /** The turn's saga (its state, its final snapshot). */
    readonly saga: SagaHandle,
  ) {
    this.sagaId = opened.sagaId;
    this.workflowId = opened.workflowId;
    this.agentDid = opened.agentDid;
    this.deadline = opened.deadline;
  }

  /** Append one step and wait for its answer (see SessionHandle.appendStep). */
  append(step: Omit<RequestOf<'appendStep'>, 'sagaId' | 'agentDid'>, opts?: Pick<SendOptions, 'requestId'>) {
    return this.session.appendStep({ ...step, sagaId: this.sagaId, agentDid: this.agentDid }, opts);
  }
  /** End the turn: it completes once its steps ran. */
  end(opts?: SendOptions) {
    return this.session.endTurn({ sagaId: this.sagaId, agentDid: this.agentDid }, opts);
  }
  /** Abort the turn: every step that may have acted is compensated, in reverse. */
  abort(reason?: string, opts?: SendOptions) {
    return this.session.abortTurn(
      { sagaId: this.sagaId, agentDid: this.agentDid, ...(reason ? { reason } : {}) },
      opts,
    );
  }
  /** The turn's final snapshot, once it completed or compensated. */
  result(): Promise<SagaSnapshot> {
    return this.saga.result();
  }
}
