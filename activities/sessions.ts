/**
 * Activities that read workflows by id: what SPEC §11.2 counts as authentic.
 * A saga asks its session for a step's grant; a session that continued as new
 * reads the outcome of a saga an earlier run started.
 */
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure as CommonApplicationFailure } from '@temporalio/common';
import { Context } from '@temporalio/activity';
import { definitions } from '../src/contract/definitions';
import { sessionWorkflowId } from '../src/contract/messages';

const {
  claimStep: claimStepUpdate,
  heldAgent: heldAgentQuery,
  stepGate: stepGateQuery,
  stepGrant: stepGrantQuery,
  turnView: turnQuery,
  operatorDecision: operatorDecisionQuery,
  sagaState: sagaStateQuery,
} = definitions;
import type { StepRef } from '../src/contract';
import type { TurnView } from '../src/contract/turns';
import type { StepGrant } from '../src/contract/sessionTypes';
import type { GateDecision } from '../src/core/gate';
import type { OperatorDecisionRead } from '../src/contract/operator';
import type { SagaSnapshot } from '../src/contract/sagaTypes';

export interface SagaOutcomeRead {
  status: 'running' | 'closed';
  /** The saga's answer (its compact outcome; a saga before format 2: its snapshot — the name recorded histories hold). */
  snapshot: unknown | null;
  failure: string | null;
}

export function sessionActivities(client: Client) {
  /**
   * The session's grant for a step. `claim`: the step's start is not leased yet — the session claims it
   * (an update: it reserves). Otherwise a read (a query) while the step waits; once that read allows a
   * step that holds evidence, the step is claimed too, so the session spends its evidence before it starts
   * (SPEC §11.5: no approval counts for a step that started).
   */
  async function readStepGrant(ref: StepRef & { sessionId: string; claim?: boolean }): Promise<StepGrant> {
    const { sessionId, claim, ...step } = ref;
    const session = client.workflow.getHandle(sessionWorkflowId(sessionId));
    if (claim) return session.executeUpdate(claimStepUpdate, { args: [step] });
    const read = await session.query(stepGrantQuery, step);
    const holdsEvidence = read.approvals.length > 0 || read.witness !== null;
    return read.decision.allowed && holdsEvidence ? session.executeUpdate(claimStepUpdate, { args: [step] }) : read;
  }

  return {
    readStepGrant,

    /** The session's grant for a step, read only (a query): what a turn's direct step is checked by. */
    async queryStepGrant(ref: StepRef & { sessionId: string }): Promise<StepGrant> {
      const { sessionId, ...step } = ref;
      return client.workflow.getHandle(sessionWorkflowId(sessionId)).query(stepGrantQuery, step);
    },

    /** The session's word on a turn (SPEC §13): its state, the step appended and not yet taken, the view to gate it. */
    async readTurn(ref: { sessionId: string; sagaId: string }): Promise<TurnView> {
      return client.workflow.getHandle(sessionWorkflowId(ref.sessionId)).query(turnQuery, { sagaId: ref.sagaId });
    },

    async readSagaOutcome(args: {
      workflowId: string;
      sessionWorkflowId: string;
      waitMs?: number;
    }): Promise<SagaOutcomeRead> {
      const handle = client.workflow.getHandle(args.workflowId);
      let description = await handle.describe();
      if (description.status.name === 'RUNNING' && args.waitMs) {
        // It said it ended: give its close a moment (a forged wake-up just costs this wait).
        await Promise.race([handle.result().catch(() => undefined), new Promise((r) => setTimeout(r, args.waitMs))]);
        description = await handle.describe();
      }
      // Only a saga this session started is believed.
      if (description.parentExecution?.workflowId !== args.sessionWorkflowId) {
        return {
          status: 'closed',
          snapshot: null,
          failure: `workflow ${args.workflowId} is not a saga of ${args.sessionWorkflowId}`,
        };
      }
      if (description.status.name === 'RUNNING') return { status: 'running', snapshot: null, failure: null };
      try {
        return { status: 'closed', snapshot: await handle.result(), failure: null };
      } catch (err) {
        const cause = err instanceof WorkflowFailedError ? err.cause : undefined;
        if (cause instanceof CommonApplicationFailure && cause.details?.[0])
          return { status: 'closed', snapshot: cause.details[0], failure: null };
        return { status: 'closed', snapshot: null, failure: (cause ?? (err as Error)).message };
      }
    },

    /** SPEC §14: the operator's decision the session recorded for this saga's step and round (null: none yet). */
    async readOperatorDecision(ref: {
      sessionId: string;
      sagaId: string;
      stepId: string;
      round: number;
    }): Promise<OperatorDecisionRead> {
      const { sessionId, ...rest } = ref;
      return client.workflow.getHandle(sessionWorkflowId(sessionId)).query(operatorDecisionQuery, rest);
    },

    /**
     * SPEC §14: the step a saga of this session awaits its operator for, read from the saga by id (SPEC §11.2):
     * null when it is not a running child of this session, or awaits nothing.
     */
    async readSagaAwaiting(args: {
      workflowId: string;
      sessionWorkflowId: string;
    }): Promise<SagaSnapshot['awaitingOperator'] | null> {
      const handle = client.workflow.getHandle(args.workflowId);
      const description = await handle.describe();
      if (description.parentExecution?.workflowId !== args.sessionWorkflowId) return null;
      if (description.status.name !== 'RUNNING') return null;
      return ((await handle.query(sagaStateQuery)) as SagaSnapshot).awaitingOperator ?? null;
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

    /**
     * Waits until every running saga named holds the kill of `did` (SPEC §12): once a saga's query
     * answers restriction 2, the task that took it in has completed — its step in flight was asked to
     * cancel, and it starts no step of that agent again. A saga that closed holds it trivially.
     * Returns the workflow ids that hold it.
     */
    async awaitHold(args: { workflowIds: string[]; did: string }): Promise<string[]> {
      const pending = new Set(args.workflowIds);
      const held: string[] = [];
      for (let wait = 20; pending.size > 0; wait = Math.min(wait * 2, 500)) {
        for (const workflowId of [...pending]) {
          const handle = client.workflow.getHandle(workflowId);
          const status = (await handle.describe()).status.name;
          const holds = status !== 'RUNNING' || (await handle.query(heldAgentQuery, args.did)).restriction === 2;
          if (holds) {
            pending.delete(workflowId);
            held.push(workflowId);
          }
        }
        if (pending.size === 0) break;
        Context.current().heartbeat(held.length);
        await Context.current().sleep(wait);
      }
      return held;
    },
  };
}
