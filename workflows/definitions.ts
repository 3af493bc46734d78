/**
 * The names and types of every workflow message. Other SDKs use the same
 * names with the JSON documented in contract/ (generated from src/contract.ts).
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  AgentRequest, Approval, CheckActionRequest, DriftReport, JoinRequest, ReleaseBondRequest, RingView,
  SagaEscalation, SagaEvent, SagaStarted, SlashRequest, StartSagaRequest, VouchRequest, Witness,
} from '../src/contract';
import type { ActionCheckResult } from '../src/rings';
import type { Bond, LiabilityMatrix } from '../src/liability';
import type { JoinResult, Participant } from '../src/session';
import type { AuditTrail, ChainVerification } from '../src/audit';
import type { SessionSummary, SagaRecord, TerminateResult, DriftOutcome, SlashResult } from './sessionTypes';
import type { SagaSnapshot } from './sagaTypes';

export const SESSION_WORKFLOW = 'sessionWorkflow';
export const SAGA_WORKFLOW = 'sagaWorkflow';

/** Readable workflow ids, the same from every client. */
export const sessionWorkflowId = (sessionId: string) => `hv-session-${sessionId}`;
export const sagaWorkflowId = (sessionId: string, sagaId: string) => `hv-saga-${sessionId}-${sagaId}`;

// Session: updates
export const joinUpdate = defineUpdate<JoinResult, [JoinRequest]>('join');
export const activateUpdate = defineUpdate<SessionSummary, []>('activate');
export const leaveUpdate = defineUpdate<Participant, [AgentRequest]>('leave');
export const vouchUpdate = defineUpdate<Bond, [VouchRequest]>('vouch');
export const releaseBondUpdate = defineUpdate<Bond, [ReleaseBondRequest]>('releaseBond');
export const checkActionUpdate = defineUpdate<ActionCheckResult, [CheckActionRequest]>('checkAction');
export const reportDriftUpdate = defineUpdate<DriftOutcome, [DriftReport]>('reportDrift');
export const slashUpdate = defineUpdate<SlashResult, [SlashRequest]>('slash');
export const startSagaUpdate = defineUpdate<{ sagaId: string; workflowId: string }, [StartSagaRequest]>('startSaga');
export const terminateUpdate = defineUpdate<TerminateResult, []>('terminate');

// Session: signals from its sagas
export const sagaStartedSignal = defineSignal<[SagaStarted]>('sagaStarted');
export const sagaEventSignal = defineSignal<[SagaEvent]>('sagaEvent');
export const sagaEscalatedSignal = defineSignal<[SagaEscalation]>('sagaEscalated');

// Session: queries
export const summaryQuery = defineQuery<SessionSummary>('summary');
export const participantQuery = defineQuery<Participant | null, [string]>('participant');
export const liabilityQuery = defineQuery<LiabilityMatrix>('liabilityMatrix');
export const auditQuery = defineQuery<{ trail: AuditTrail; verification: ChainVerification }>('auditTrail');
export const sagasQuery = defineQuery<SagaRecord[]>('sagas');

// Saga: signals and queries
export const ringViewSignal = defineSignal<[RingView]>('ringView');
export const approveSignal = defineSignal<[Approval]>('approve');
export const witnessSignal = defineSignal<[Witness]>('witness');
export const sagaStateQuery = defineQuery<SagaSnapshot>('sagaState');
