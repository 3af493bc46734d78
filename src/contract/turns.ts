/**
 * An agent's turn (SPEC §13 "Open saga"): a saga whose steps arrive one at a time. The agent opens it,
 * appends steps, ends or aborts it — each a request to the session, signed by the agent (SPEC §11). The
 * saga reads each appended step from its session (the `turnView` query, by an activity), never from a push.
 */
import { z } from 'zod';
import { DidSchema } from '../core/common';
import { auth } from '../core/requestAuth';
import { TURN_DEADLINE_LIMIT_SECONDS } from '../core/session';
import {
  ActionViewSchema,
  AgentViewSchema,
  DigestSchema,
  Id,
  SagaStepSchema,
  jsonSize,
} from '../core/sagaContract';
import { ResolvedStepSchema } from '../core/sagaRequests';

/** SPEC §11.6: one append is one step; its request stays small. */
export const TURN_STEP_REQUEST_MAX_BYTES = 32 * 1024;

/** openTurn: a turn of this agent — a saga with no steps yet, until a deadline (the session's config bounds it). */
export const OpenTurnRequestSchema = z.strictObject({
  agentDid: DidSchema,
  sagaId: Id.optional(),
  description: z.string().max(500).optional(),
  /** Seconds until the turn ends by itself, compensating; default and bound: the session's config.turns. */
  deadlineSeconds: z
    .number()
    .int('deadlineSeconds must be a whole number of seconds')
    .positive('deadlineSeconds must be > 0')
    .max(TURN_DEADLINE_LIMIT_SECONDS)
    .optional(),
  auth,
});
export type OpenTurnRequest = z.input<typeof OpenTurnRequestSchema>;

/** appendStep: one step of the agent's turn — what a declared saga's step says, and the turn's saga id. */
export const AppendStepRequestSchema = SagaStepSchema.extend({ sagaId: Id, auth }).refine(
  (v) => jsonSize(v) <= TURN_STEP_REQUEST_MAX_BYTES,
  `an appended step is at most ${TURN_STEP_REQUEST_MAX_BYTES} bytes of JSON`,
);
export type AppendStepRequest = z.input<typeof AppendStepRequestSchema>;

/** endTurn: the agent is done; the turn completes once its appended steps ran. */
export const EndTurnRequestSchema = z.strictObject({ agentDid: DidSchema, sagaId: Id, auth });
export type EndTurnRequest = z.input<typeof EndTurnRequestSchema>;

/** abortTurn: the agent gives up; every step that may have acted is compensated, in reverse. */
export const AbortTurnRequestSchema = z.strictObject({
  agentDid: DidSchema,
  sagaId: Id,
  reason: z.string().min(1).max(500).optional(),
  auth,
});
export type AbortTurnRequest = z.input<typeof AbortTurnRequestSchema>;

/** The turnView query's argument: which saga. */
export const TurnRefSchema = z.strictObject({ sagaId: Id });
export type TurnRef = z.infer<typeof TurnRefSchema>;

export const TURN_STATES = ['open', 'ended', 'aborted'] as const;
export type TurnState = (typeof TURN_STATES)[number];

/** What the session holds of a turn, in the saga's record. */
export const TurnRecordSchema = z.strictObject({
  agentDid: DidSchema,
  state: z.enum(TURN_STATES),
  /** Epoch ms (workflow time) when the turn ends by itself. */
  deadline: z.number().int().nonnegative(),
  /** Why it was aborted. */
  reason: z.string().nullable(),
  /** The last step appended, which the saga reads; kept until the next append replaces it. */
  next: ResolvedStepSchema.nullable(),
  /**
   * Its saga claimed it (any claim, SPEC §12): the turn may take another. Until then an append is refused
   * (TURN_BUSY): steps arrive one at a time. The claim is unsigned (issue 24 N21), so an outsider's may set
   * this early: an agent that waits for each step's answer before the next (the typed client does) loses nothing.
   */
  taken: z.boolean(),
  /**
   * Opened with direct steps (docs/TURNS.md): a step the gate allows when appended is leased then and taken at
   * once; its agent brings it to the saga (`takeStep`), and the step's activity checks it with the session on
   * every attempt. A turn opened before that shipped has none.
   */
  direct: z.literal(true).optional(),
});
export type TurnRecord = z.infer<typeof TurnRecordSchema>;

/** The session's word on a turn, which the saga reads by an activity: its state, next step and the view to gate it. */
export const TurnViewAnswer = z.strictObject({
  sagaId: z.string(),
  turn: TurnRecordSchema,
  sessionState: z.string(),
  agent: AgentViewSchema.nullable(),
  /** The next step's action, as declared (null: no next step, or undeclared). */
  action: ActionViewSchema.nullable(),
});
export type TurnView = z.infer<typeof TurnViewAnswer>;

export const OpenTurnResultAnswer = z.strictObject({
  sagaId: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  agentDid: DidSchema,
  deadline: z.number().int().nonnegative(),
});
export type OpenTurnResult = z.infer<typeof OpenTurnResultAnswer>;

export const AppendStepResultAnswer = z.strictObject({
  sagaId: z.string(),
  workflowId: z.string(),
  stepId: z.string(),
  digest: DigestSchema,
  /** The step as appended, leased and taken: its agent brings it to the saga (`takeStep`). Absent: the saga reads it. */
  direct: ResolvedStepSchema.optional(),
});
export type AppendStepResult = z.infer<typeof AppendStepResultAnswer>;

export const TurnEndResultAnswer = z.strictObject({
  sagaId: z.string(),
  workflowId: z.string(),
  state: z.enum(TURN_STATES),
});
export type TurnEndResult = z.infer<typeof TurnEndResultAnswer>;

/**
 * takeStep (to the turn's saga): a direct step, as its append answered it, brought by its agent. It grants
 * nothing: the saga runs it only as its session holds it — the step's activity asks the session on every
 * attempt and acts only for the step appended, leased and allowed there, with this digest and these options.
 */
export const TakeStepRequestSchema = ResolvedStepSchema.refine(
  (v) => jsonSize(v) <= TURN_STEP_REQUEST_MAX_BYTES,
  `a step is at most ${TURN_STEP_REQUEST_MAX_BYTES} bytes of JSON`,
);
export type TakeStepRequest = z.input<typeof TakeStepRequestSchema>;

/** What an appended step came to (SPEC §13): its result when it committed, else its error. */
export const StepAnswerAnswer = z.strictObject({
  sagaId: z.string(),
  stepId: z.string(),
  digest: DigestSchema,
  /** committed, failed — or compensated etc. when the turn ended first; not-run: it never ran. */
  state: z.string(),
  ok: z.boolean(),
  result: z.unknown(),
  error: z.string().nullable(),
});
export type StepAnswer = z.infer<typeof StepAnswerAnswer>;
