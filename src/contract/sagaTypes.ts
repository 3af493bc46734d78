import type { SagaState } from '../core/saga';

/** What the saga's query, result and failure details show: the core saga record plus its gate state. */
export interface SagaSnapshot {
  saga: SagaState;
  workflowId: string;
  sessionId: string;
  /** Each step's digest: what approvals and witnesses are bound to (SPEC §11.5). */
  digests: Record<string, string>;
  /** Evidence the session held when it granted a step (approvers, witness), by step id. */
  grants: Record<string, { approvals: string[]; witness: string | null }>;
  /** The step waiting for approvals or a witness, and for which. */
  waiting: { stepId: string; waitFor: string; deadline: number } | null;
  /** Step ids in the order their compensation ran. */
  compensationOrder: string[];
  failedStepId: string | null;
  error: string | null;
  cancelled: boolean;
  /** SPEC §14: the step awaiting its operator (absent or null: none). */
  awaitingOperator?: { stepId: string; actionId: string; round: number; since: number; deadline: number } | null;
  /** SPEC §14: the saga and step this saga was forked from. */
  forkedFrom?: { sagaId: string; stepId: string };
}
