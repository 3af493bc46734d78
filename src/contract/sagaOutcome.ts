/**
 * A saga's compact outcome (issue 20): what its session needs to settle it and nothing else — the saga's
 * end, and per step how it ended and the cost its result reported. A saga started with `format: 2` or `3`
 * answers this as its workflow result (and as details[0] of SagaCompensated / SagaEscalated / SagaFailed);
 * its full snapshot is the `sagaState` query, which a closed saga still answers. Digests are not sent: the
 * session holds them in its record. Format 2 names each step's agent and action; format 3 leaves out what
 * the session holds — each step's action, its agent unless a substitute ran it (SPEC §12), and null fields;
 * format 4 also the saga's id and the steps that committed plainly (SagaOutcome4Schema).
 */
import { z } from 'zod';
import { DidSchema } from '../core/common';
import { SAGA_STATES, STEP_STATES } from '../core/saga';
import type { SagaSnapshot } from './sagaTypes';
import { SAGA_OUTCOME_FORMAT, SAGA_OUTCOME_FORMAT_3, SAGA_OUTCOME_FORMAT_4 } from './sagaAnswer';

// What a saga builds its answer with, and how a client tells an outcome from a snapshot: ./sagaAnswer.
export {
  SAGA_OUTCOME_FORMAT,
  SAGA_OUTCOME_FORMAT_3,
  SAGA_OUTCOME_FORMAT_4,
  isCompactOutcome,
  sagaOutcome3Of,
  sagaOutcome4Of,
  sagaOutcomeOf,
  settledOutcome4Of,
  settledOutcomeOf,
} from './sagaAnswer';

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

/** Format 2: every step named with its agent and action, every field given. */
export const SagaOutcome2Schema = z.strictObject({
  format: z.literal(SAGA_OUTCOME_FORMAT),
  sagaId: z.string().min(1).max(128),
  state: z.enum(SAGA_STATES),
  finishedAt: z.number().nonnegative().nullable(),
  error: z.string().nullable(),
  failedStepId: z.string().nullable(),
  steps: z.array(SagaOutcomeStepSchema).max(1000),
});

/** Format 3's step: no action (its session holds it), its agent only when a substitute ran it, its error only when set. */
export const SagaOutcome3StepSchema = SagaOutcomeStepSchema.omit({ agentDid: true, actionId: true, error: true }).extend({
  /** Absent: the agent its session gave the step (or appended it for); present: the substitute it ran as (SPEC §12). */
  agentDid: DidSchema.optional(),
  error: z.string().optional(),
});

/** Format 3: format 2 without what the session holds or what is null. */
export const SagaOutcome3Schema = z.strictObject({
  format: z.literal(SAGA_OUTCOME_FORMAT_3),
  sagaId: z.string().min(1).max(128),
  state: z.enum(SAGA_STATES),
  finishedAt: z.number().nonnegative().optional(),
  error: z.string().optional(),
  failedStepId: z.string().optional(),
  steps: z.array(SagaOutcome3StepSchema).max(1000),
});

/**
 * Format 4: format 3 without the saga's id (its session started it under that id) and, for a saga of fixed
 * steps, without each step committed on its first attempt by its given agent with nothing to report — its
 * session's record holds those. A turn names every step it ran. `steps` absent: none to name.
 */
export const SagaOutcome4Schema = SagaOutcome3Schema.omit({ sagaId: true, steps: true }).extend({
  format: z.literal(SAGA_OUTCOME_FORMAT_4),
  steps: z.array(SagaOutcome3StepSchema).min(1).max(1000).optional(),
});

/** The saga workflow's compact answer, in the format its start input asked for. */
export const SagaOutcomeSchema = z.discriminatedUnion('format', [
  SagaOutcome2Schema,
  SagaOutcome3Schema,
  SagaOutcome4Schema,
]);

/** The outcome as its session settles it: every step with its agent and action (format 3's filled from its record). */
export type SettledOutcome = z.output<typeof SagaOutcome2Schema>;
export type SagaOutcomeStep = z.output<typeof SagaOutcomeStepSchema>;
export type SagaOutcome3 = z.output<typeof SagaOutcome3Schema>;
export type SagaOutcome4 = z.output<typeof SagaOutcome4Schema>;
export type SagaOutcome = z.output<typeof SagaOutcomeSchema>;

/** The saga workflow's answer: the compact outcome, or (a saga started before format 2) its full snapshot. */
export type SagaAnswer = SagaOutcome | SagaSnapshot;
