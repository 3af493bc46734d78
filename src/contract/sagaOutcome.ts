/**
 * A saga's compact outcome (issue 20): what its session needs to settle it and nothing else — the saga's
 * end, and per step who acted, how it ended and the cost its result reported. A saga started with
 * `format: 2` answers this as its workflow result (and as details[0] of SagaCompensated / SagaEscalated /
 * SagaFailed); its full snapshot is the `sagaState` query, which a closed saga still answers. Digests are
 * not sent: the session holds them in its record.
 */
import { z } from 'zod';
import { DidSchema } from '../core/common';
import { reportedCost } from '../core/stepCost';
import { SAGA_STATES, STEP_STATES } from '../core/saga';
import { isToolDefinitionChange, type ToolDefinitionChange } from '../core/toolDefinitions';
import type { SagaSnapshot } from './sagaTypes';

/** The format of a saga's answer that the session asks for in its start input (SagaWorkflowInputSchema.format). */
export const SAGA_OUTCOME_FORMAT = 2;

const Hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex characters (SHA-256)');
const StepId = z.string().min(1).max(128);

export const SagaOutcomeStepSchema = z.strictObject({
  stepId: StepId,
  /** Its agent as the saga ran it: a killed agent's step is handed to a substitute (SPEC §12). */
  agentDid: DidSchema,
  actionId: z.string().min(1).max(128),
  state: z.enum(STEP_STATES),
  attempts: z.number().int().nonnegative(),
  error: z.string().nullable(),
  /** What its result reported as `costUnits` (SPEC §12); absent: none. */
  cost: z.number().nonnegative().finite().optional(),
  /** Issue 21: its MCP tool's definition changed since approval (its session quarantines the agent). */
  toolDefinitionChanged: z.strictObject({ tool: z.string().max(200), pinned: Hex64, current: Hex64 }).optional(),
});

export const SagaOutcomeSchema = z.strictObject({
  format: z.literal(SAGA_OUTCOME_FORMAT),
  sagaId: z.string().min(1).max(128),
  state: z.enum(SAGA_STATES),
  finishedAt: z.number().nonnegative().nullable(),
  error: z.string().nullable(),
  failedStepId: z.string().nullable(),
  steps: z.array(SagaOutcomeStepSchema).max(1000),
});

export type SagaOutcome = z.output<typeof SagaOutcomeSchema>;
export type SagaOutcomeStep = z.output<typeof SagaOutcomeStepSchema>;

/** The saga workflow's answer: the compact outcome, or (a saga started before format 2) its full snapshot. */
export type SagaAnswer = SagaOutcome | SagaSnapshot;

/** A compact outcome, not a full snapshot (which has `saga`). */
export const isCompactOutcome = (x: unknown): boolean =>
  typeof x === 'object' && x !== null && (x as { format?: unknown }).format === SAGA_OUTCOME_FORMAT;

/** The compact outcome of a snapshot: what the saga answers, and how a session reads an older saga's snapshot. */
export function sagaOutcomeOf(snap: SagaSnapshot): SagaOutcome {
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

const toolChange = (c: ToolDefinitionChange): ToolDefinitionChange => ({
  tool: c.tool,
  pinned: c.pinned,
  current: c.current,
});
