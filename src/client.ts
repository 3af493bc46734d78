/**
 * A typed client for the hypervisor: sessions and sagas by their SPEC names.
 * Rule rejections come back as HypervisorError with the rule's code, whether
 * the update's validator or its handler refused.
 */
import { Client, Connection, WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, WorkflowNotFoundError } from '@temporalio/common';
import { ERROR_CODES, HypervisorError, type ErrorCode } from './errors';
import { parse } from './common';
import {
  SagaInputSchema, SessionInputSchema, type AgentRequest, type CheckActionRequest, type DriftReport, type JoinRequest,
  type ReleaseBondRequest, type SagaInputRaw, type SessionInputRaw, type SlashRequest, type StartSagaRequest, type VouchRequest,
} from './contract';
import { verifyTrail } from './audit';
import {
  activateUpdate, approveSignal, auditQuery, checkActionUpdate, joinUpdate, leaveUpdate, liabilityQuery, participantQuery,
  releaseBondUpdate, reportDriftUpdate, sagasQuery, sagaStateQuery, sagaWorkflowId, sessionWorkflowId, slashUpdate,
  startSagaUpdate, summaryQuery, terminateUpdate, vouchUpdate, witnessSignal, SAGA_WORKFLOW, SESSION_WORKFLOW,
} from '../workflows/definitions';
import { HvAgentDids, HvSessionId } from '../workflows/searchAttributes';
import type { sagaWorkflow } from '../workflows/saga';
import { sagaStaticDetails } from '../workflows/sagaDetails';
import type { sessionWorkflow } from '../workflows/session';

export const DEFAULT_TASK_QUEUE = 'agent-hypervisor';

/** Turn a Temporal failure carrying a rule's code into a HypervisorError; anything else passes through. */
export function toHypervisorError(err: unknown, sessionId?: string): unknown {
  // An update to an ended session comes back as WorkflowNotFoundError too: it exists, it has ended.
  if (err instanceof Error && /workflow execution already completed/i.test(err.message) && sessionId) {
    return new HypervisorError('INVALID_TRANSITION', `session ${sessionId} has ended`);
  }
  if (err instanceof WorkflowNotFoundError) {
    return new HypervisorError('SESSION_NOT_FOUND', sessionId ? `session ${sessionId} does not exist` : err.message);
  }
  const cause = err instanceof WorkflowUpdateFailedError || err instanceof WorkflowFailedError ? err.cause : err;
  if (cause instanceof ApplicationFailure && ERROR_CODES.includes(cause.type as ErrorCode)) {
    return new HypervisorError(cause.type as ErrorCode, cause.message, (cause.details?.[0] as Record<string, unknown>) ?? {});
  }
  return err;
}

async function mapped<T>(call: () => Promise<T>, sessionId?: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw toHypervisorError(err, sessionId);
  }
}

export class SessionHandle {
  constructor(readonly sessionId: string, readonly handle: WorkflowHandle<typeof sessionWorkflow>, private readonly hv: HypervisorClient) {}

  join(req: JoinRequest) { return mapped(() => this.handle.executeUpdate(joinUpdate, { args: [req] }), this.sessionId); }
  activate() { return mapped(() => this.handle.executeUpdate(activateUpdate), this.sessionId); }
  leave(req: AgentRequest) { return mapped(() => this.handle.executeUpdate(leaveUpdate, { args: [req] }), this.sessionId); }
  vouch(req: VouchRequest) { return mapped(() => this.handle.executeUpdate(vouchUpdate, { args: [req] }), this.sessionId); }
  releaseBond(req: ReleaseBondRequest) { return mapped(() => this.handle.executeUpdate(releaseBondUpdate, { args: [req] }), this.sessionId); }
  checkAction(req: CheckActionRequest) { return mapped(() => this.handle.executeUpdate(checkActionUpdate, { args: [req] }), this.sessionId); }
  reportDrift(req: DriftReport) { return mapped(() => this.handle.executeUpdate(reportDriftUpdate, { args: [req] }), this.sessionId); }
  slash(req: SlashRequest) { return mapped(() => this.handle.executeUpdate(slashUpdate, { args: [req] }), this.sessionId); }
  terminate() { return mapped(() => this.handle.executeUpdate(terminateUpdate), this.sessionId); }

  /** Start a saga through the session (a child workflow that sees the session's ring view). */
  async startSaga(req: StartSagaRequest): Promise<SagaHandle> {
    const { sagaId } = await mapped(() => this.handle.executeUpdate(startSagaUpdate, { args: [req] }), this.sessionId);
    return this.hv.saga(this.sessionId, sagaId);
  }

  summary() { return mapped(() => this.handle.query(summaryQuery), this.sessionId); }
  participant(did: string) { return mapped(() => this.handle.query(participantQuery, did), this.sessionId); }
  liability() { return mapped(() => this.handle.query(liabilityQuery), this.sessionId); }
  audit() { return mapped(() => this.handle.query(auditQuery), this.sessionId); }
  sagas() { return mapped(() => this.handle.query(sagasQuery), this.sessionId); }

  /** Fetch the trail and verify it here, with nothing but the trail: chain and Merkle root. */
  async verifyAudit() {
    const { trail } = await this.audit();
    return { trail, verification: verifyTrail(trail) };
  }
}

export class SagaHandle {
  constructor(readonly sessionId: string, readonly sagaId: string, readonly handle: WorkflowHandle<typeof sagaWorkflow>) {}
  approve(stepId: string, approverDid: string) { return mapped(() => this.handle.signal(approveSignal, { stepId, approverDid })); }
  witness(stepId: string, witnessDid: string) { return mapped(() => this.handle.signal(witnessSignal, { stepId, witnessDid })); }
  state() { return mapped(() => this.handle.query(sagaStateQuery)); }
  /** The saga's final snapshot, once it has completed, compensated, failed or escalated. */
  result() { return mapped(() => this.handle.result()); }
}

export interface HypervisorClientOptions {
  address?: string;
  namespace?: string;
  taskQueue?: string;
}

export class HypervisorClient {
  constructor(readonly client: Client, readonly taskQueue: string = DEFAULT_TASK_QUEUE) {}

  static async connect(options: HypervisorClientOptions = {}): Promise<HypervisorClient> {
    const connection = await Connection.connect({ address: options.address ?? process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233' });
    const client = new Client({ connection, namespace: options.namespace ?? process.env.TEMPORAL_NAMESPACE ?? 'default' });
    return new HypervisorClient(client, options.taskQueue ?? process.env.HV_TASK_QUEUE ?? DEFAULT_TASK_QUEUE);
  }

  async close(): Promise<void> {
    await this.client.connection.close();
  }

  /** Create a session: starts its workflow (created → handshaking). */
  async createSession(input: SessionInputRaw): Promise<SessionHandle> {
    const v = parse(SessionInputSchema, input, 'session input');
    const handle = await mapped(() => this.client.workflow.start<typeof sessionWorkflow>(SESSION_WORKFLOW, {
      taskQueue: this.taskQueue,
      workflowId: sessionWorkflowId(v.sessionId),
      args: [input],
      staticSummary: `Session ${v.sessionId} created by ${v.creatorDid}`,
      typedSearchAttributes: [{ key: HvSessionId, value: v.sessionId }],
    }));
    return new SessionHandle(v.sessionId, handle, this);
  }

  session(sessionId: string): SessionHandle {
    return new SessionHandle(sessionId, this.client.workflow.getHandle(sessionWorkflowId(sessionId)), this);
  }

  /** Start a saga directly (as any SDK can): it registers with its session and is governed the same. */
  async startSaga(input: SagaInputRaw & { sagaId: string }): Promise<SagaHandle> {
    const v = parse(SagaInputSchema, input, 'saga input');
    const workflowId = sagaWorkflowId(v.sessionId, input.sagaId);
    await mapped(() => this.client.workflow.start<typeof sagaWorkflow>(SAGA_WORKFLOW, {
      taskQueue: this.taskQueue,
      workflowId,
      args: [input],
      staticSummary: `Saga ${input.sagaId} of session ${v.sessionId}${v.description ? `: ${v.description}` : ''}`,
      staticDetails: sagaStaticDetails(input.steps),
      typedSearchAttributes: [
        { key: HvSessionId, value: v.sessionId },
        { key: HvAgentDids, value: [...new Set(v.steps.map((s) => s.agentDid))].sort() },
      ],
    }));
    return this.saga(v.sessionId, input.sagaId);
  }

  saga(sessionId: string, sagaId: string): SagaHandle {
    return new SagaHandle(sessionId, sagaId, this.client.workflow.getHandle(sagaWorkflowId(sessionId, sagaId)));
  }
}
