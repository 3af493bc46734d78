/**
 * A step's activity input as its saga hands it over, parsed, with what the saga leaves out put back. The saga
 * sends a compact task (workflows/saga/stepTask.ts): only what the activity cannot derive and uses, defaults
 * left out — its session and saga ids too, which its workflow id names. A task an older saga scheduled, with
 * every field, parses to the same task (a rollout).
 */
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import { parse } from '../src/core/common';
import { stepDigest } from '../src/core/sagaContract';
import { sagaIdsOfWorkflowId } from '../src/contract/messageNames';

const Text = z.string().min(1).max(2048);

const StepFields = {
  /** Absent (both): the saga's own, from the workflow id that scheduled the task (withSagaIds). */
  sessionId: Text,
  sagaId: Text,
  stepId: Text,
  /** Absent: the digest of the step's own fields (stepDigest), which is what the saga holds for it. */
  digest: z.string().max(128).optional(),
  actionId: Text,
  agentDid: Text,
  executeApi: z.string().max(2048),
  /** Absent: none (an execute uses it only to check a direct step, whose task always carries it). */
  undoApi: z.string().max(2048).nullable().default(null),
  /** The action is declared read-only (ring 3): only a read-only handler may run for it. Absent: false. */
  readOnly: z.boolean().default(false),
  /** The action's declared level, which an MCP tool's annotations must not loosen (sent for an MCP tool only). */
  reversibility: z.enum(['FULL', 'PARTIAL', 'NONE']).optional(),
  input: z.unknown().optional(),
  /** SPEC §14: the operator's round (absent: 1); a later round acts under its own idempotency key. */
  round: z.number().int().min(1).optional(),
  /** A turn's direct step (activities/turnSteps.ts): every attempt, the first included, is checked with the session. */
  direct: z.object({ timeoutSeconds: z.number(), retry: z.unknown() }).optional(),
};

const withDigest = <
  T extends {
    digest?: string;
    sessionId: string;
    sagaId: string;
    stepId: string;
    actionId: string;
    agentDid: string;
    input?: unknown;
  },
>(
  t: T,
) => ({ ...t, digest: t.digest ?? stepDigest({ ...t, input: t.input }) });

export const StepTaskSchema = z.object(StepFields).transform(withDigest);

export const CompensationTaskSchema = z
  .object({
    ...StepFields,
    /** An undo runs its undoApi only: the execute API is not needed (absent: none). */
    executeApi: z.string().max(2048).default(''),
    /** What the step returned when it committed, handed to its undo. */
    result: z.unknown().optional(),
    /**
     * N7: the saga's workflow id, when its session runs the undo because the saga can no longer (it was
     * terminated or timed out): the idempotency key is the saga's, as if the saga had run it.
     */
    sagaWorkflowId: z.string().max(2048).optional(),
  })
  .transform(withDigest);

/**
 * A task's session and saga ids put back from the workflow id of the saga that scheduled it (Temporal's, not the
 * task's: `hv-saga-<sessionId>/<sagaId>`), when the task leaves both out — what a saga does under that id form.
 */
export function withSagaIds(raw: unknown, workflowId: string | undefined): unknown {
  if (typeof raw !== 'object' || raw === null || 'sessionId' in raw || 'sagaId' in raw) return raw;
  const ids = workflowId === undefined ? undefined : sagaIdsOfWorkflowId(workflowId);
  return ids ? { ...raw, ...ids } : raw;
}

/** Its ids optional: withSagaIds puts them back from the saga's workflow id. */
type IdsFromWorkflow<T> = Omit<T, 'sessionId' | 'sagaId'> & { sessionId?: string; sagaId?: string };
/** What a saga may send (compact or full). */
export type StepTaskInput = IdsFromWorkflow<z.input<typeof StepTaskSchema>>;
export type CompensationTaskInput = IdsFromWorkflow<z.input<typeof CompensationTaskSchema>>;

/** A task that does not parse is refused before anything acts, naming what was wrong; no retry changes it. */
export function parseTask<S extends z.ZodType>(schema: S, raw: unknown, what: string): z.infer<S> {
  try {
    return parse(schema, raw, what);
  } catch (err) {
    throw ApplicationFailure.nonRetryable((err as Error).message, 'InvalidStep');
  }
}
