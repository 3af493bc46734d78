/**
 * Operator recovery and fork (SPEC §14): the requests an SRE sends to decide for a saga that awaits its
 * operator, the fork of a failed or compensated saga, and what the session and the saga answer. Each is a
 * request to the session (SPEC §11): evaluated, and recorded only if accepted.
 */
import { z } from 'zod';
import { DidSchema } from '../core/common';
import { auth } from '../core/requestAuth';
import { OPERATOR_DECISIONS } from '../core/operator';
import {
  DigestSchema,
  Id,
  OnFailureSchema,
  SAGA_MAX_STEPS,
  SAGA_REQUEST_MAX_BYTES,
  SagaStepSchema,
  jsonSize,
} from '../core/sagaContract';

/** A fork runs steps, one after another: never a parallel group (its branches are not forkable either). */
const ForkStepsSchema = z
  .array(SagaStepSchema)
  .min(1, 'a fork needs at least one step')
  .max(SAGA_MAX_STEPS, `a fork has at most ${SAGA_MAX_STEPS} steps`);

export const OperatorDecisionSchema = z.enum(OPERATOR_DECISIONS, {
  error: `decision must be one of ${OPERATOR_DECISIONS.join(', ')}`,
});

/**
 * decideSaga: an SRE of the session (sreDid, one of config.sreWitnesses, who signs in every identity mode)
 * decides for a saga awaiting its operator. `stepId`, when given, must be the step that awaits.
 */
export const OperatorDecisionRequestSchema = z.strictObject({
  sagaId: Id,
  stepId: Id.optional(),
  decision: OperatorDecisionSchema,
  sreDid: DidSchema,
  reason: z.string().max(500, 'reason must be at most 500 characters').optional(),
  auth,
});
export type OperatorDecisionRequest = z.input<typeof OperatorDecisionRequestSchema>;

export const OperatorDecisionAnswer = z.strictObject({
  sagaId: z.string(),
  stepId: z.string(),
  round: z.number().int().positive(),
  decision: OperatorDecisionSchema,
  by: DidSchema,
});
export type OperatorDecisionResult = z.output<typeof OperatorDecisionAnswer>;

/** What a saga reads back (the operatorDecision query, by its own activity): the decision for its round, or null. */
export const OperatorDecisionRefSchema = z.strictObject({ sagaId: Id, stepId: Id, round: z.number().int().positive() });
export const OperatorDecisionReadAnswer = z
  .strictObject({ decision: OperatorDecisionSchema, by: DidSchema })
  .nullable();
export type OperatorDecisionRead = z.output<typeof OperatorDecisionReadAnswer>;

/** A wake-up only: the saga awaits its operator; the session reads the saga by id (SPEC §11.2–§11.3). */
export const SagaAwaitingSchema = z.strictObject({ sagaId: Id });

/**
 * forkSaga: a new saga of the session from steps k…n of a failed or compensated one (SPEC §14). `steps` are
 * the original's from `fromStepId` on, as the original started them (the typed client reads them from its
 * history): each must hash to the original's digest, so a fork runs what was declared, under new digests.
 * Signed, like startSaga, by every agent of its steps: it acts in their names.
 */
export const ForkSagaRequestSchema = z
  .strictObject({
    sagaId: Id,
    fromStepId: Id,
    newSagaId: Id.optional(),
    description: z.string().max(500).optional(),
    steps: ForkStepsSchema,
    onFailure: OnFailureSchema.optional(),
    auth,
  })
  .refine((v) => jsonSize(v) <= SAGA_REQUEST_MAX_BYTES, `a fork request is at most ${SAGA_REQUEST_MAX_BYTES} bytes of JSON`);
export type ForkSagaRequest = z.input<typeof ForkSagaRequestSchema>;

export const ForkSagaResultAnswer = z.strictObject({
  sagaId: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  digests: z.record(z.string(), DigestSchema),
  forkedFrom: z.strictObject({ sagaId: z.string(), stepId: z.string() }),
});
export type ForkSagaResult = z.output<typeof ForkSagaResultAnswer>;

/** What the session keeps of a failed or compensated saga so it can be forked: each step's id, agent, digest. */
export const FORKABLE_SAGAS_KEPT = 5;
