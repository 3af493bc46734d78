/** Shapes the session workflow returns and carries across continue-as-new. */
import type { AuditState } from '../src/audit';
import type { Commitment } from '../src/commitment';
import type { LiabilityState } from '../src/liability';
import type { SessionState, RingChange } from '../src/session';
import type { SlashOutcome } from '../src/slashing';
import type { DriftDecision, DriftHistoryState, TrustCache } from '../src/adapters';
import type { VfsState } from '../src/vfs';
import type { SessionInput } from '../src/contract';

export interface SagaRecord {
  sagaId: string;
  workflowId: string;
  description: string | null;
  state: string;
  startedAt: number;
}

/** Everything a session holds; plain JSON, so it crosses continue-as-new whole. */
export interface SessionWorkflowState {
  session: SessionState;
  liability: LiabilityState;
  audit: AuditState;
  vfs: VfsState;
  trustCache: TrustCache;
  drift: DriftHistoryState;
  sagas: Record<string, SagaRecord>;
  /** Bumped on every ring or σ change; sagas ignore an older view than the one they hold. */
  ringViewVersion: number;
  decisions: number;
  slashes: number;
  commitment: Commitment | null;
  runs: number;
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
    did: string; ring: number; sigmaRaw: number; sigmaEff: number; active: boolean; historyStatus: string;
  }[];
  activeBonds: number;
  deltaCount: number;
  merkleRoot: string | null;
  sagas: SagaRecord[];
  files: number;
  runs: number;
  commitment: Commitment | null;
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
}
