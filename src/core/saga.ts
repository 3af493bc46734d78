/**
 * Sagas (SPEC §6): multi-step transactions whose committed steps are undone in
 * reverse commit order when a later step fails. Pure state machines over plain
 * JSON; the Temporal layer runs each step as an activity with the step's
 * timeout and retry policy, and reports the outcome through these functions.
 */
import type { ToolDefinitionChange } from './toolDefinitions';
import type { GroupState } from './groups';
import { z } from 'zod';
import { DidSchema, TimestampSchema, parse } from './common';
import { HypervisorError } from './errors';

export const STEP_STATES = [
  'pending',
  'executing',
  'committed',
  'failed',
  'compensating',
  'compensated',
  'compensation_failed',
  'skipped',
] as const;
export type StepStatus = (typeof STEP_STATES)[number];
export const SAGA_STATES = ['running', 'completed', 'failed', 'compensating', 'compensated', 'escalated'] as const;
export type SagaStatus = (typeof SAGA_STATES)[number];

/** The only step transitions there are (SPEC §6). */
export const STEP_TRANSITIONS: Readonly<Record<StepStatus, readonly StepStatus[]>> = {
  pending: ['executing'],
  executing: ['committed', 'failed'],
  committed: ['compensating'],
  compensating: ['compensated', 'compensation_failed'],
  /**
   * Only a step whose outcome is unknown (it may have acted) is compensated after failing (SPEC §6). SPEC §14:
   * an operator's retry makes it pending again (a new round), a skip records it skipped.
   */
  failed: ['compensating', 'pending', 'skipped'],
  compensated: [],
  compensation_failed: [],
  /** A skipped step that may have acted is compensated with the rest (SPEC §14). */
  skipped: ['compensating'],
};

/** The only saga transitions there are (SPEC §6; `compensated` is the [resolved] clean-rollback outcome). */
export const SAGA_TRANSITIONS: Readonly<Record<SagaStatus, readonly SagaStatus[]>> = {
  running: ['completed', 'failed', 'compensating'],
  compensating: ['compensated', 'failed', 'escalated'],
  completed: [],
  /** Only a step whose outcome is unknown (it may have acted) is compensated after failing (SPEC §6). */
  failed: ['compensating'],
  compensated: [],
  escalated: [],
};

/**
 * Retry defaults are Temporal's RetryPolicy defaults: first retry after 1 s,
 * backoff coefficient 2, at most 100 × the initial interval. The original
 * waited 1 s × attempt; coefficient 2 gives the same 1 s and 2 s for the first
 * two retries and is what a Temporal activity can express.
 */
export const DEFAULT_STEP_TIMEOUT_SECONDS = 300;
export const DEFAULT_MAX_RETRIES = 0;
export const DEFAULT_INITIAL_INTERVAL_MS = 1000;
export const DEFAULT_BACKOFF_COEFFICIENT = 2;

const IdSchema = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters');

export const StepDefinitionSchema = z.strictObject({
  stepId: IdSchema,
  actionId: IdSchema,
  agentDid: DidSchema,
  executeApi: z.string().min(1, 'must not be empty').optional(),
  undoApi: z.string().min(1, 'must not be empty').optional(),
  timeoutSeconds: z.number().positive('must be > 0').default(DEFAULT_STEP_TIMEOUT_SECONDS),
  maxRetries: z.number().int().min(0, 'must be ≥ 0').default(DEFAULT_MAX_RETRIES),
  initialIntervalMs: z.number().int().positive('must be > 0').default(DEFAULT_INITIAL_INTERVAL_MS),
  backoffCoefficient: z.number().min(1, 'must be ≥ 1').default(DEFAULT_BACKOFF_COEFFICIENT),
  /** Default: 100 × initialIntervalMs, as in Temporal. */
  maximumIntervalMs: z.number().int().positive('must be > 0').optional(),
});
export type StepDefinition = z.input<typeof StepDefinitionSchema>;

export const CreateSagaSchema = z.strictObject({ sagaId: IdSchema, sessionId: IdSchema, at: TimestampSchema });
export type CreateSagaInput = z.infer<typeof CreateSagaSchema>;

export interface SagaStep {
  stepId: string;
  actionId: string;
  agentDid: string;
  executeApi: string | null;
  undoApi: string | null;
  timeoutSeconds: number;
  maxRetries: number;
  initialIntervalMs: number;
  backoffCoefficient: number;
  maximumIntervalMs: number;
  state: StepStatus;
  /** Execution attempts made so far (1 once started). */
  attempts: number;
  /** The last error (of execution, or of compensation). */
  error: string | null;
  /** It failed after it may have acted (timed out, worker lost, cancelled while running): compensated first (SPEC §6). */
  outcomeUnknown?: boolean;
  /** SPEC §14: the operator's round (2 after the first retry an operator decided; absent: 1) — its idempotency key's. */
  round?: number;
  /** SPEC §14: the earlier rounds that failed after they may have acted: each is undone too, under its own key. */
  actedRounds?: number[];
  /**
   * Issue 21: the step was refused because its MCP tool's definition no longer hashes to the pin its
   * action declared (nothing was called); its session quarantines the step's agent.
   */
  toolDefinitionChanged?: ToolDefinitionChange;
  result: unknown;
  addedAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  compensationStartedAt: number | null;
  compensationFinishedAt: number | null;
}

export interface SagaTransition {
  at: number;
  subject: 'saga' | 'step';
  id: string;
  from: string;
  to: string;
  reason: string | null;
}

export interface SagaState {
  sagaId: string;
  sessionId: string;
  state: SagaStatus;
  steps: SagaStep[];
  /** Step ids in the order they committed: compensation walks it backwards. */
  commitOrder: string[];
  /** Its parallel groups (SPEC §14); absent in a saga without any. */
  groups?: GroupState[];
  log: SagaTransition[];
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

export function createSaga(input: unknown): SagaState {
  const { sagaId, sessionId, at } = parse(CreateSagaSchema, input, 'saga');
  return {
    sagaId,
    sessionId,
    state: 'running',
    steps: [],
    commitOrder: [],
    log: [],
    createdAt: at,
    updatedAt: at,
    finishedAt: null,
  };
}

function allowedText(allowed: readonly string[]): string {
  return allowed.length ? allowed.join(', ') : 'none (terminal)';
}

/** Move the saga to `to`, or throw INVALID_TRANSITION naming from, to and what is allowed. */
export function transitionSaga(saga: SagaState, to: SagaStatus, at: number, reason: string | null = null): void {
  const from = saga.state;
  const allowed = SAGA_TRANSITIONS[from];
  if (!allowed.includes(to)) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `saga ${saga.sagaId} cannot go from ${from} to ${to}; allowed from ${from}: ${allowedText(allowed)}`,
      { sagaId: saga.sagaId, from, to, allowed: [...allowed] },
    );
  }
  saga.state = to;
  saga.updatedAt = at;
  if (SAGA_TRANSITIONS[to].length === 0) saga.finishedAt = at;
  saga.log.push({ at, subject: 'saga', id: saga.sagaId, from, to, reason });
}

/** Move a step to `to`, or throw INVALID_TRANSITION naming from, to and what is allowed. */
export function transitionStep(
  saga: SagaState,
  stepId: string,
  to: StepStatus,
  at: number,
  reason: string | null = null,
): SagaStep {
  const step = getStep(saga, stepId);
  const from = step.state;
  const allowed = STEP_TRANSITIONS[from];
  if (!allowed.includes(to)) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `step ${stepId} of saga ${saga.sagaId} cannot go from ${from} to ${to}; allowed from ${from}: ${allowedText(allowed)}`,
      { sagaId: saga.sagaId, stepId, from, to, allowed: [...allowed] },
    );
  }
  step.state = to;
  saga.updatedAt = at;
  saga.log.push({ at, subject: 'step', id: stepId, from, to, reason });
  return step;
}

export function getStep(saga: SagaState, stepId: string): SagaStep {
  for (const step of saga.steps) if (step.stepId === stepId) return step;
  throw new HypervisorError('STEP_NOT_FOUND', `saga ${saga.sagaId} has no step ${stepId}`, {
    sagaId: saga.sagaId,
    stepId,
  });
}

function requireSagaState(saga: SagaState, state: SagaStatus, doing: string): void {
  if (saga.state !== state) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `saga ${saga.sagaId} is ${saga.state}: can ${doing} only while ${state}`,
      {
        sagaId: saga.sagaId,
        state: saga.state,
      },
    );
  }
}

/** Add a step (validated; defaults filled in). Only while the saga is running. */
export function addStep(saga: SagaState, definition: unknown, at: number): SagaStep {
  const d = parse(StepDefinitionSchema, definition, 'saga step');
  requireSagaState(saga, 'running', 'add steps');
  if (saga.steps.some((s) => s.stepId === d.stepId)) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `invalid saga step: stepId ${d.stepId} already exists in saga ${saga.sagaId}`,
    );
  }
  const step: SagaStep = {
    stepId: d.stepId,
    actionId: d.actionId,
    agentDid: d.agentDid,
    executeApi: d.executeApi ?? null,
    undoApi: d.undoApi ?? null,
    timeoutSeconds: d.timeoutSeconds,
    maxRetries: d.maxRetries,
    initialIntervalMs: d.initialIntervalMs,
    backoffCoefficient: d.backoffCoefficient,
    maximumIntervalMs: d.maximumIntervalMs ?? 100 * d.initialIntervalMs,
    state: 'pending',
    attempts: 0,
    error: null,
    result: null,
    addedAt: at,
    startedAt: null,
    finishedAt: null,
    compensationStartedAt: null,
    compensationFinishedAt: null,
  };
  saga.steps.push(step);
  saga.updatedAt = at;
  return step;
}

/** The step's retry policy in Temporal's RetryPolicy shape (durations in ms). */
export function retryPolicyOf(
  step: Pick<SagaStep, 'initialIntervalMs' | 'backoffCoefficient' | 'maximumIntervalMs' | 'maxRetries'>,
): {
  initialInterval: number;
  backoffCoefficient: number;
  maximumInterval: number;
  maximumAttempts: number;
} {
  return {
    initialInterval: step.initialIntervalMs,
    backoffCoefficient: step.backoffCoefficient,
    maximumInterval: step.maximumIntervalMs,
    maximumAttempts: step.maxRetries + 1,
  };
}

/** Delay before retry number `retry` (1-based): initial × coefficient^(retry−1), capped, as Temporal computes it. */
export function retryDelayMs(step: SagaStep, retry: number): number {
  return Math.min(step.maximumIntervalMs, step.initialIntervalMs * Math.pow(step.backoffCoefficient, retry - 1));
}

/** pending → executing: the first attempt starts. */
export function startStep(saga: SagaState, stepId: string, at: number): SagaStep {
  requireSagaState(saga, 'running', 'start steps');
  const step = transitionStep(saga, stepId, 'executing', at);
  step.attempts = 1;
  step.startedAt = at;
  return step;
}

/** An attempt failed. With retries left the step stays executing and the next is counted; else it fails. */
export function recordAttemptFailure(
  saga: SagaState,
  stepId: string,
  error: string,
  at: number,
): { retry: true; attempt: number; delayMs: number } | { retry: false } {
  const step = getStep(saga, stepId);
  if (step.state !== 'executing') {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `step ${stepId} of saga ${saga.sagaId} is ${step.state}: only an executing step has attempts`,
      {
        stepId,
        state: step.state,
      },
    );
  }
  step.error = error;
  if (step.attempts <= step.maxRetries) {
    const delayMs = retryDelayMs(step, step.attempts);
    step.attempts += 1;
    saga.updatedAt = at;
    return { retry: true, attempt: step.attempts, delayMs };
  }
  failStep(saga, stepId, error, at);
  return { retry: false };
}

/** executing → committed; the commit order is what compensation reverses. */
export function commitStep(saga: SagaState, stepId: string, result: unknown, at: number): SagaStep {
  const step = transitionStep(saga, stepId, 'committed', at);
  step.result = result === undefined ? null : result;
  step.error = null;
  step.finishedAt = at;
  saga.commitOrder.push(stepId);
  return step;
}

/** executing → failed, with the last error. */
export function failStep(saga: SagaState, stepId: string, error: string, at: number): SagaStep {
  const step = transitionStep(saga, stepId, 'failed', at, error);
  step.error = error;
  step.finishedAt = at;
  return step;
}

/** A failed step that may have acted: it is compensated too, first (SPEC §6 [resolved]). */
export function markOutcomeUnknown(saga: SagaState, stepId: string): SagaStep {
  const step = getStep(saga, stepId);
  if (step.state !== 'failed') {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `step ${stepId} is ${step.state}; only a failed step has an unknown outcome`,
      { stepId, state: step.state },
    );
  }
  step.outcomeUnknown = true;
  return step;
}

/** Notes that a failed step was refused for a changed tool definition (issue 21). */
export function markToolDefinitionChanged(saga: SagaState, stepId: string, change: ToolDefinitionChange): SagaStep {
  const step = getStep(saga, stepId);
  step.toolDefinitionChanged = { tool: change.tool, pinned: change.pinned, current: change.current };
  return step;
}

/** A step that did not commit may still have acted: in its last round, or in an earlier one an operator retried. */
export const failedMayHaveActed = (s: SagaStep) => s.outcomeUnknown === true || (s.actedRounds?.length ?? 0) > 0;

/** The steps still to undo: a failed step of unknown outcome first, then the committed ones, most recent first. */
export function compensationPlan(saga: SagaState): SagaStep[] {
  const plan = saga.steps.filter((s) => (s.state === 'failed' || s.state === 'skipped') && failedMayHaveActed(s));
  for (let i = saga.commitOrder.length - 1; i >= 0; i--) {
    const step = getStep(saga, saga.commitOrder[i] as string);
    if (step.state === 'committed') plan.push(step);
  }
  return plan;
}

/** running → compensating. */
export function startCompensation(saga: SagaState, at: number, reason: string | null = null): void {
  transitionSaga(saga, 'compensating', at, reason);
}

/** committed → compensating. True: run the undo API now; false: it has none (compensation_failed). */
export function startStepCompensation(saga: SagaState, stepId: string, at: number): boolean {
  requireSagaState(saga, 'compensating', 'compensate steps');
  const current = getStep(saga, stepId);
  if ((current.state === 'failed' || current.state === 'skipped') && !failedMayHaveActed(current)) {
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `step ${stepId} failed before it acted: there is nothing to compensate`,
      { stepId },
    );
  }
  const step = transitionStep(saga, stepId, 'compensating', at);
  step.compensationStartedAt = at;
  if (step.undoApi !== null) return true;
  failCompensation(saga, stepId, `step ${stepId} (${step.actionId}) has no undo API`, at);
  return false;
}

/**
 * committed → compensating → compensated, with no undo to run: a read-only step changed nothing (SPEC §2),
 * so there is nothing to compensate — and no failed compensation to escalate.
 */
export function compensateReadOnlyStep(saga: SagaState, stepId: string, at: number): SagaStep {
  requireSagaState(saga, 'compensating', 'compensate steps');
  const step = transitionStep(saga, stepId, 'compensating', at);
  step.compensationStartedAt = at;
  return compensateStep(saga, stepId, at);
}

/** compensating → compensated: the undo succeeded. */
export function compensateStep(saga: SagaState, stepId: string, at: number): SagaStep {
  const step = transitionStep(saga, stepId, 'compensated', at);
  step.compensationFinishedAt = at;
  return step;
}

/** compensating → compensation_failed: the undo threw or timed out. */
export function failCompensation(saga: SagaState, stepId: string, error: string, at: number): SagaStep {
  const step = transitionStep(saga, stepId, 'compensation_failed', at, error);
  step.error = error;
  step.compensationFinishedAt = at;
  return step;
}

/** A step whose compensation failed: its agent is to be slashed (SPEC §6). */
export interface Escalation {
  stepId: string;
  actionId: string;
  agentDid: string;
  error: string | null;
}

/**
 * Settle the saga's outcome:
 * - running, every step committed → completed;
 * - running, a step failed and nothing committed (nothing to undo) → failed;
 * - compensating, every committed step undone → compensated;
 * - compensating, any compensation failed → escalated, listing whom to slash.
 * Unfinished work (an executing step, a pending step of a saga that would
 * complete, a failed saga with commits not yet compensated, a compensation in
 * progress) is an INVALID_TRANSITION.
 */
export function finishSaga(saga: SagaState, at: number): { state: SagaStatus; escalations: Escalation[] } {
  if (saga.state === 'running') {
    const executing = saga.steps.find((s) => s.state === 'executing');
    if (executing) unfinished(saga, `step ${executing.stepId} is executing`);
    // A branch of a group that was met failed without failing the saga (SPEC §14).
    const failed = saga.steps.find(
      (s) => s.state === 'failed' && !saga.groups?.some((g) => g.state === 'met' && g.branches.includes(s.stepId)),
    );
    if (failed) {
      if (saga.commitOrder.length > 0 || failedMayHaveActed(failed))
        unfinished(saga, `step ${failed.stepId} failed; compensate the steps that may have acted first`);
      transitionSaga(saga, 'failed', at, `step ${failed.stepId} failed: ${failed.error ?? 'unknown error'}`);
      return { state: saga.state, escalations: [] };
    }
    const pending = saga.steps.find((s) => s.state === 'pending');
    if (pending) unfinished(saga, `step ${pending.stepId} is still pending`);
    transitionSaga(saga, 'completed', at);
    return { state: saga.state, escalations: [] };
  }
  if (saga.state === 'compensating') {
    const open = saga.steps.find(
      (s) =>
        s.state === 'committed' ||
        s.state === 'compensating' ||
        s.state === 'executing' ||
        ((s.state === 'failed' || s.state === 'skipped') && failedMayHaveActed(s)),
    );
    if (open) unfinished(saga, `step ${open.stepId} is ${open.state}`);
    const escalations: Escalation[] = saga.steps
      .filter((s) => s.state === 'compensation_failed')
      .map((s) => ({ stepId: s.stepId, actionId: s.actionId, agentDid: s.agentDid, error: s.error }));
    transitionSaga(
      saga,
      escalations.length ? 'escalated' : 'compensated',
      at,
      escalations.length ? `compensation failed for ${escalations.map((e) => e.stepId).join(', ')}` : null,
    );
    return { state: saga.state, escalations };
  }
  return unfinished(saga, `it is already ${saga.state}`);
}

/**
 * A turn its agent ended (SPEC §13): running → completed. A step that failed was the agent's answer (a tool's
 * error does not compensate by itself); only a step still executing is unfinished.
 */
export function completeTurn(saga: SagaState, at: number): void {
  const executing = saga.steps.find((s) => s.state === 'executing' || s.state === 'pending');
  if (executing) unfinished(saga, `step ${executing.stepId} is ${executing.state}`);
  transitionSaga(saga, 'completed', at, 'the agent ended its turn');
}

/** finishSaga's refusal: a module-level function, not a closure made on every call. */
function unfinished(saga: SagaState, why: string): never {
  throw new HypervisorError('INVALID_TRANSITION', `saga ${saga.sagaId} cannot finish: ${why}`, {
    sagaId: saga.sagaId,
    state: saga.state,
  });
}
