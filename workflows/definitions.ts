/**
 * The names and types of every workflow message. Other SDKs use the same
 * names with the JSON documented in contract/ (generated from src/contract.ts).
 *
 * Authority (SPEC §11): updates to the session are requests it evaluates;
 * signals carry no authority — `sagaEnded`, `restrict` and `wake` only make a
 * workflow re-read authentic state or take privilege away.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  AgentRequest, ApprovalRequest, CheckActionRequest, DriftReport, JoinRequest, RejectionRequest, ReleaseBondRequest,
  Restriction, SlashRequest, StartSagaRequest, StepRef, VouchRequest, WitnessRequest,
  QuarantineRequest, ReleaseRequest, KillRequest, ElevationRequest, ElevationApproval, RevokeElevationRequest,
} from '../src/contract';
import type { GateDecision } from '../src/gate';
import type { Bond, LiabilityMatrix } from '../src/liability';
import type { JoinResult, Participant } from '../src/session';
import type { AuditHead } from '../src/audit';
import type {
  EvidenceResult, SessionSummary, SagaRecord, StepGrant, TerminateResult, DriftOutcome, SlashResult,
  ControlResult, ElevationView,
} from './sessionTypes';
import type { SagaSnapshot } from './sagaTypes';

export const SESSION_WORKFLOW = 'sessionWorkflow';
export const SAGA_WORKFLOW = 'sagaWorkflow';

/** Readable workflow ids, the same from every client. */
export const sessionWorkflowId = (sessionId: string) => `hv-session-${sessionId}`;
export const sagaWorkflowId = (sessionId: string, sagaId: string) => `hv-saga-${sessionId}-${sagaId}`;

// Session: updates (requests)
export const joinUpdate = defineUpdate<JoinResult, [JoinRequest]>('join');
export const activateUpdate = defineUpdate<SessionSummary, []>('activate');
export const leaveUpdate = defineUpdate<Participant, [AgentRequest]>('leave');
export const vouchUpdate = defineUpdate<Bond, [VouchRequest]>('vouch');
export const releaseBondUpdate = defineUpdate<Bond, [ReleaseBondRequest]>('releaseBond');
export const checkActionUpdate = defineUpdate<GateDecision, [CheckActionRequest]>('checkAction');
export const reportDriftUpdate = defineUpdate<DriftOutcome, [DriftReport]>('reportDrift');
export const slashUpdate = defineUpdate<SlashResult, [SlashRequest]>('slash');
export const startSagaUpdate = defineUpdate<{ sagaId: string; workflowId: string; runId: string; digests: Record<string, string> }, [StartSagaRequest]>('startSaga');
export const approveUpdate = defineUpdate<EvidenceResult, [ApprovalRequest]>('approve');
export const rejectUpdate = defineUpdate<EvidenceResult, [RejectionRequest]>('reject');
export const witnessUpdate = defineUpdate<EvidenceResult, [WitnessRequest]>('witness');
export const terminateUpdate = defineUpdate<TerminateResult, []>('terminate');

// Session: controls (SPEC §12)
export const quarantineUpdate = defineUpdate<ControlResult, [QuarantineRequest]>('quarantine');
export const releaseUpdate = defineUpdate<ControlResult, [ReleaseRequest]>('release');
export const killUpdate = defineUpdate<ControlResult, [KillRequest]>('kill');
export const requestElevationUpdate = defineUpdate<ElevationView, [ElevationRequest]>('requestElevation');
export const approveElevationUpdate = defineUpdate<ElevationView, [ElevationApproval]>('approveElevation');
export const revokeElevationUpdate = defineUpdate<ElevationView, [RevokeElevationRequest]>('revokeElevation');
/**
 * A saga's own activity claims a step its start did not lease (rate tokens and budget, SPEC §12):
 * the session decides from its state, reserves under the step's key (a repeat is not charged again)
 * and answers with its grant. Anyone may ask; it never raises privilege.
 */
export const claimStepUpdate = defineUpdate<StepGrant, [StepRef]>('claimStep');

// Session: a wake-up from a saga whose session continued as new (it re-reads the saga by id).
export const sagaEndedSignal = defineSignal<[{ sagaId: string }]>('sagaEnded');

// Session: queries
export const summaryQuery = defineQuery<SessionSummary>('summary');
export const participantQuery = defineQuery<Participant | null, [string]>('participant');
export const liabilityQuery = defineQuery<LiabilityMatrix>('liabilityMatrix');
export const auditQuery = defineQuery<AuditHead>('auditHead');
export const sagasQuery = defineQuery<SagaRecord[]>('sagas');
/** The session's decision for a step now, with the evidence it holds (read by the saga's own activities). */
export const stepGrantQuery = defineQuery<StepGrant, [StepRef]>('stepGrant');

// Saga: pushes that only take away, a wake-up, and its state
export const restrictSignal = defineSignal<[Restriction]>('restrict');
export const wakeSignal = defineSignal<[{ sessionContinued?: boolean } | undefined]>('wake');
export const sagaStateQuery = defineQuery<SagaSnapshot>('sagaState');
/** The saga's gate for one of its steps on the view it holds now: what a retry attempt checks before it acts. */
export const stepGateQuery = defineQuery<GateDecision, [string]>('stepGate');
/** What the saga holds of one agent now (argument: its DID): what a kill waits for before it records (SPEC §12). */
export const heldAgentQuery = defineQuery<{ restriction: 0 | 1 | 2; runningStepId: string | null }, [string]>('heldAgent');
