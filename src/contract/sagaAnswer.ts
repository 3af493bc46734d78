/**
 * How a saga builds its answer (issue 20) — its compact outcome of its snapshot — and how a session or client
 * tells an outcome from an older saga's snapshot. No schema here: a saga run evaluates its modules afresh
 * (workflows/index.ts), and parsing an outcome is its session's and clients' part (./sagaOutcome).
 */
import { reportedCost } from '../core/stepCost';
import { isToolDefinitionChange, type ToolDefinitionChange } from '../core/toolDefinitions';
import type { SagaOutcome, SagaOutcome3, SagaOutcome4, SettledOutcome } from './sagaOutcome';
import type { SagaSnapshot } from './sagaTypes';

/** The format of a saga's answer as its start input asked (SagaWorkflowInputSchema.format). */
export const SAGA_OUTCOME_FORMAT = 2;
export const SAGA_OUTCOME_FORMAT_3 = 3;
export const SAGA_OUTCOME_FORMAT_4 = 4;

/** A compact outcome, not a full snapshot (which has `saga`). */
export const isCompactOutcome = (x: unknown): x is SagaOutcome => {
  const format = typeof x === 'object' && x !== null ? (x as { format?: unknown }).format : undefined;
  return format === SAGA_OUTCOME_FORMAT || format === SAGA_OUTCOME_FORMAT_3 || format === SAGA_OUTCOME_FORMAT_4;
};

/** The compact outcome of a snapshot: what the saga answers, and how a session reads an older saga's snapshot. */
export function sagaOutcomeOf(snap: SagaSnapshot): SettledOutcome {
  return {
    format: SAGA_OUTCOME_FORMAT,
    sagaId: snap.saga.sagaId,
    state: snap.saga.state,
    finishedAt: snap.saga.finishedAt,
    error: snap.error,
    failedStepId: snap.failedStepId,
    steps: snap.saga.steps.map((s) => {
      const cost = reportedCost(s.result);
      const change: unknown = s.toolDefinitionChanged;
      return {
        stepId: s.stepId,
        agentDid: s.agentDid,
        actionId: s.actionId,
        state: s.state,
        attempts: s.attempts,
        error: s.error,
        ...(cost !== undefined ? { cost } : {}),
        ...(isToolDefinitionChange(change) ? { toolDefinitionChanged: toolChange(change) } : {}),
      };
    }),
  };
}

/**
 * Format 3's outcome of a snapshot: each step's agent only when it is not the one its start input (or its
 * append) gave it — `givenAgent` — and no nulls.
 */
export function sagaOutcome3Of(snap: SagaSnapshot, givenAgent: (stepId: string) => string | undefined): SagaOutcome3 {
  const full = sagaOutcomeOf(snap);
  const { finishedAt, error, failedStepId } = full;
  return {
    format: SAGA_OUTCOME_FORMAT_3,
    sagaId: full.sagaId,
    state: full.state,
    ...(finishedAt !== null ? { finishedAt } : {}),
    ...(error !== null ? { error } : {}),
    ...(failedStepId !== null ? { failedStepId } : {}),
    steps: full.steps.map(({ stepId, agentDid, actionId: _held, state, attempts, error: e, ...rest }) => ({
      stepId,
      ...(agentDid !== givenAgent(stepId) ? { agentDid } : {}),
      state,
      attempts,
      ...(e !== null ? { error: e } : {}),
      ...rest,
    })),
  };
}

/**
 * A format-3 outcome as its session settles it: each step's agent and action from the session's record of
 * the saga (an agent the outcome names is the substitute the step ran as). A step the record does not hold
 * makes the outcome malformed: the session never gave it.
 */
export function settledOutcomeOf(
  outcome: SagaOutcome3,
  held: (stepId: string) => { agentDid: string; actionId: string } | undefined,
): SettledOutcome {
  return {
    format: SAGA_OUTCOME_FORMAT,
    sagaId: outcome.sagaId,
    state: outcome.state,
    finishedAt: outcome.finishedAt ?? null,
    error: outcome.error ?? null,
    failedStepId: outcome.failedStepId ?? null,
    steps: outcome.steps.map(({ stepId, agentDid, state, attempts, error, ...rest }) => {
      const step = held(stepId);
      if (!step) throw new Error(`a saga's outcome is malformed: steps: ${stepId} is no step of the saga`);
      return { stepId, agentDid: agentDid ?? step.agentDid, actionId: step.actionId, state, attempts, error: error ?? null, ...rest };
    }),
  };
}

/** Format 4 leaves a step out when this is all it would say: committed on its first attempt, by its given agent. */
type Outcome3Step = SagaOutcome3['steps'][number];
const plainlyCommitted = (s: Outcome3Step): boolean =>
  s.state === 'committed' && s.attempts === 1 && Object.keys(s).length === 3; // stepId, state, attempts

/**
 * Format 4's outcome of a snapshot: format 3's without the saga's id (its session started it under that id)
 * and without the steps that committed plainly — unless `everyStep`: a turn names every step it ran, as its
 * session's record may hold a step the saga never read (SPEC §13). `steps` absent: none to name.
 */
export function sagaOutcome4Of(
  snap: SagaSnapshot,
  givenAgent: (stepId: string) => string | undefined,
  everyStep: boolean,
): SagaOutcome4 {
  const { sagaId: _started, steps, ...rest } = sagaOutcome3Of(snap, givenAgent);
  const named = everyStep ? steps : steps.filter((s) => !plainlyCommitted(s));
  return { ...rest, format: SAGA_OUTCOME_FORMAT_4, ...(named.length > 0 ? { steps: named } : {}) };
}

/**
 * A format-4 outcome as its session settles it, from its record of the saga: each step it names as format 3's
 * (a step the record does not hold makes it malformed), and — for a saga of fixed steps — every other step of
 * the record committed on its first attempt by its given agent. A turn's outcome names every step it ran.
 */
export function settledOutcome4Of(
  outcome: SagaOutcome4,
  saga: { sagaId: string; steps: readonly { stepId: string }[]; turn?: unknown },
  held: (stepId: string) => { agentDid: string; actionId: string } | undefined,
): SettledOutcome {
  const { format: _4, steps: named = [], ...rest } = outcome;
  const settled = settledOutcomeOf({ ...rest, format: SAGA_OUTCOME_FORMAT_3, sagaId: saga.sagaId, steps: named }, held);
  if (saga.turn !== undefined) return settled;
  const byId = new Map(settled.steps.map((s) => [s.stepId, s]));
  return {
    ...settled,
    steps: saga.steps.map(({ stepId }) => {
      const step = byId.get(stepId);
      if (step) return step;
      const given = held(stepId)!;
      return { stepId, ...given, state: 'committed' as const, attempts: 1, error: null };
    }),
  };
}

const toolChange = (c: ToolDefinitionChange): ToolDefinitionChange => ({
  tool: c.tool,
  pinned: c.pinned,
  current: c.current,
});
