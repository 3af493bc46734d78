/**
 * Activities that read workflows by id: what SPEC §11.2 counts as authentic.
 * A saga asks its session for a step's grant; a session that continued as new
 * reads the outcome of a saga an earlier run started.
 */
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure as CommonApplicationFailure } from '@temporalio/common';
import { sessionWorkflowId, stepGateQuery, stepGrantQuery } from '../workflows/definitions';
import type { StepRef } from '../src/contract';
import type { StepGrant } from '../workflows/sessionTypes';
import type { GateDecision } from '../src/gate';

export interface SagaOutcomeRead {
  status: 'running' | 'closed';
  snapshot: unknown | null;
  failure: string | null;
}

export function sessionActivities(client: Client) {
  async function readStepGrant(ref: StepRef & { sessionId: string }): Promise<StepGrant> {
    const { sessionId, ...step } = ref;
    return client.workflow.getHandle(sessionWorkflowId(sessionId)).query(stepGrantQuery, step);
  }

  return {
    readStepGrant,

    async readSagaOutcome(args: { workflowId: string; sessionWorkflowId: string; waitMs?: number }): Promise<SagaOutcomeRead> {
      const handle = client.workflow.getHandle(args.workflowId);
      let description = await handle.describe();
      if (description.status.name === 'RUNNING' && args.waitMs) {
        // It said it ended: give its close a moment (a forged wake-up just costs this wait).
        await Promise.race([handle.result().catch(() => undefined), new Promise((r) => setTimeout(r, args.waitMs))]);
        description = await handle.describe();
      }
      // Only a saga this session started is believed.
      if (description.parentExecution?.workflowId !== args.sessionWorkflowId) {
        return { status: 'closed', snapshot: null, failure: `workflow ${args.workflowId} is not a saga of ${args.sessionWorkflowId}` };
      }
      if (description.status.name === 'RUNNING') return { status: 'running', snapshot: null, failure: null };
      try {
        return { status: 'closed', snapshot: await handle.result(), failure: null };
      } catch (err) {
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        if (cause instanceof CommonApplicationFailure && cause.details?.[0]) return { status: 'closed', snapshot: cause.details[0], failure: null };
        return { status: 'closed', snapshot: null, failure: (cause ?? (err as Error)).message };
      }
    },

    /**
     * The gate a retry attempt passes: its saga's decision on the view it holds
     * now — the session's view at the start, every restriction pushed since,
     * and the evidence the session granted. Read from the saga, which is idle
     * while its step runs, not from the session, which may be busy.
     */
    async checkStepGate(sagaWorkflowId: string, stepId: string): Promise<GateDecision> {
      return client.workflow.getHandle(sagaWorkflowId).query(stepGateQuery, stepId);
    },
  };
}
