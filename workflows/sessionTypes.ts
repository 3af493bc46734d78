/** Shapes the session workflow returns and carries across continue-as-new. */
import type { AuditState } from '../src/audit';
import type { Commitment } from '../src/commitment';
import type { LiabilityMatrix, LiabilityState } from '../src/liability';
import type { SessionState, RingChange } from '../src/session';
import type { SlashOutcome } from '../src/slashing';
import type { DriftDecision, DriftHistoryState, TrustCache } from '../src/adapters';
import type { VfsState } from '../src/vfs';
import type { ActionView, AgentView, SessionInput } from '../src/contract';
import type { GateDecision } from '../src/gate';
import type { NonceWindow } from '../src/identity';

/** Approvals, a rejection and a witness the session holds for one step (SPEC §11.5). */
export interface StepEvidence {
  stepId: string;
  actionId: string;
  agentDid: string;
  digest: string;
  approvers: string[];
  rejectedBy: { did: string; reason: string } | null;
  witness: string | null;
}

export interface SagaRecord {
  sagaId: string;
  workflowId: string;
  description: string | null;
  /** running, then the saga's own outcome: completed | failed | compensated | escalated (or lost: it ended without one). */
  state: string;
  startedAt: number;
  endedAt: number | null;
  agentDids: string[];
  /** While running: each step's digest and evidence. Dropped when the saga ends. */
  steps: StepEvidence[];
  error: string | null;
}

/** Everything a session holds; plain JSON, so it crosses continue-as-new whole. */
export interface SessionWorkflowState {
  session: SessionState;
  liability: LiabilityState;
  audit: AuditState;
  vfs: VfsState;
  trustCache: TrustCache;
  drift: DriftHistoryState;
  /** Sagas by id; carried as a list (client-chosen ids key a Map in the run). */
  sagas: SagaRecord[];
  sagaCount: number;
  decisions: number;
  slashes: number;
  /** Learned from the first join: whether a trust scorer answers (task outcomes are reported only then). */
  scorerConfigured: boolean;
  commitment: Commitment | null;
  runs: number;
  /** Replay windows of the DIDs that signed accepted requests (src/identity.ts); absent in state carried by older runs. */
  nonces?: Array<[string, NonceWindow]>;
}

export interface SessionWorkflowInput extends Partial<SessionInput> {
  /** Set when the session continues as new. */
  carried?: SessionWorkflowState;
}

export interface SessionSummary {
  sessionId: string;
  state: SessionState['state'];
  consistency: SessionState['config']['consistency'];
  config: SessionState['config'];
  participants: {
    did: string; ring: number; sigmaRaw: number; sigmaEff: number; active: boolean; historyStatus: string; slashed: boolean; ringCap: number;
  }[];
  activeBonds: number;
  deltaCount: number;
  merkleRoot: string | null;
  sagas: SagaRecord[];
  files: number;
  runs: number;
  commitment: Commitment | null;
}

/** What the session decides for a step now (the stepGrant query). */
export interface StepGrant {
  decision: GateDecision;
  /** The acting agent and the action as the session holds them now: authentic when read by an activity. */
  agent: AgentView | null;
  action: ActionView | null;
  approvals: string[];
  quorum: number;
  witness: string | null;
  rejectedBy: { did: string; reason: string } | null;
}

/** The answer to approve, reject and witness. */
export interface EvidenceResult {
  sagaId: string;
  stepId: string;
  digest: string;
  approvals: number;
  quorum: number;
  rejected: boolean;
  witnessed: boolean;
}

export interface SlashResult {
  outcome: SlashOutcome;
  ringChanges: RingChange[];
}

export interface DriftOutcome {
  decision: DriftDecision;
  slash: SlashResult | null;
  ringChanges: RingChange[];
}

export interface TerminateResult {
  commitment: Commitment;
  releasedBonds: number;
  purgedFiles: number;
  retainUntil: number;
  /** Who vouched for whom when the session closed (SPEC §7: kept with the trail). */
  liabilitySnapshot: LiabilityMatrix;
}
