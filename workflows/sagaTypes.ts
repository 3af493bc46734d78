import type { SagaState } from '../src/saga';

/** What the saga's query and result show: the core saga record plus its gate state. */
export interface SagaSnapshot {
  saga: SagaState;
  workflowId: string;
  ringViewVersion: number | null;
  approvals: Record<string, string[]>;
  witnesses: Record<string, string>;
  /** Step ids in the order their compensation ran. */
  compensationOrder: string[];
  failedStepId: string | null;
  error: string | null;
}
