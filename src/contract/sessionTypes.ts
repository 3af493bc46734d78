/** Shapes the session workflow returns and carries across continue-as-new. */
import type { AuditState } from '../core/audit';
import type { Commitment } from '../core/commitment';
import type { LiabilityMatrix, LiabilityState } from '../core/liability';
import type { SessionState } from '../core/session';
import type { RingChange } from '../core/sessionRings';
import type { SlashOutcome } from '../core/slashing';
import type { DriftDecision, DriftHistoryState, TrustCache } from '../core/adapters';
import type { VfsState } from '../core/vfs';
import type { ActionView, AgentView, SagaGroup, SessionInput } from '.';
import type { GateDecision } from '../core/gate';
import type { NonceWindow } from '../core/identity';
import type { ControlsState, Restriction, RestrictionKind, Usage } from '../core/controls';
import type { TurnRecord } from './turns';

/** Approvals, a rejection and a witness the session holds for one step (SPEC §11.5). */
export interface StepEvidence {
  stepId: string;
  actionId: string;
  agentDid: string;
  digest: string;
  approvers: string[];
  rejectedBy: { did: string; reason: string } | null;
  witness: string | null;
  /**
   * A killed agent's step handed to a substitute (SPEC §12): who and which digest it had before; `given`, on a
   * step handed on again, the agent its saga was given it for (a format-3 outcome leaves that agent out).
   */
  handedFrom?: { agentDid: string; digest: string; given?: string } | null;
  /** Its start holds a rate token and its budget reservation (SPEC §12): leased with the saga, or claimed. */
  leased?: boolean;
  /** The session granted its start (a claim): its evidence is spent, and no more is taken (SPEC §11.5). */
  started?: boolean;
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
  /** An open saga, an agent's turn (SPEC §13): its agent, state, deadline and the step not yet taken. */
  turn?: TurnRecord;
  /** SPEC §14: the step that awaits its operator, as the session read it from the saga (by id); null once decided. */
  awaiting?: { stepId: string; actionId: string; round: number; since: number; deadline: number } | null;
  /** SPEC §14: the operator's last decision, which the saga reads back for its round. */
  decided?: { stepId: string; round: number; decision: 'retry' | 'skip' | 'compensate'; by: string; at: number } | null;
  /** SPEC §14: this saga is a fork of that saga, from that step. */
  forkedFrom?: { sagaId: string; stepId: string };
  /** SPEC §14: the sagas forked from this one. */
  forks?: string[];
  /** SPEC §14: a failed or compensated saga's steps (id, agent, digest), kept so it can be forked. */
  forkable?: { stepId: string; agentDid: string; digest: string }[];
  /** Its parallel groups (SPEC §14), while running: a saga that ends without an outcome is walked back by them. */
  groups?: SagaGroup[];
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
  /** Replay windows of the DIDs that signed accepted requests (src/core/identity.ts); absent in state carried by older runs. */
  nonces?: Array<[string, NonceWindow]>;
  /** Quarantines, kills, elevations, buckets, budgets, breaker logs (src/core/controls.ts); absent in state carried by older runs. */
  controls?: ControlsState;
  /** Delegations: child DID → parent DID (SPEC §12). */
  parents?: Array<[string, string]>;
  /** The last requests accepted, by request id, oldest first (workflows/session/requests.ts); absent when none. */
  requests?: RequestRecord[];
}

/** A request the session accepted, remembered so that a resend with its id gets the first answer (N25). */
export interface RequestRecord {
  /** Its Temporal update id. */
  id: string;
  name: string;
  /** SHA-256 of the canonical JSON of {name, request}: the argument without its signatures (`auth`). */
  hash: string;
  /** The answer (a saga start: its ids) was kept. */
  kept: boolean;
  answer?: unknown;
  /** It failed: its error's code and message. */
  error?: { type: string; message: string; details?: unknown };
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
  controls: ControlsSummary;
}

/** The controls in force (SPEC §12): who is restricted or elevated, and what budgets have spent. */
export interface ControlsSummary {
  restricted: (Restriction & { did: string })[];
  elevations: ElevationView[];
  delegations: { child: string; parent: string }[];
  spent: { session: Usage; agents: { did: string; spent: Usage; reserved: Usage }[] };
}

/** An elevation as the session holds it: requested (activeFrom null) or active until `until`. */
export interface ElevationView {
  elevationId: string;
  agentDid: string;
  ring: 1 | 2;
  ttlSeconds: number;
  justification: string;
  digest: string;
  requestedAt: number;
  approvals: number;
  quorum: number;
  activeFrom: number | null;
  until: number | null;
  /** requested | active | revoked */
  state: 'requested' | 'active' | 'revoked';
}

/** The answer to quarantine, release and kill. */
export interface ControlResult {
  agentDid: string;
  kind: RestrictionKind | 'released';
  until: number | null;
  /** Running sagas that hold the restriction now (a kill waits for them). */
  sagasHolding: string[];
  /** A kill's hand-offs: steps now the substitute's (they run only if it passes the gate). */
  handedOff: { sagaId: string; stepId: string; agentDid: string; digest: string }[];
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
  /** The step as the session holds it now: a kill may have handed it to a substitute, with a new digest. */
  step: { agentDid: string; digest: string };
  /** A rate-limited claim: when to try again. */
  retryAfterMs: number | null;
  /** A turn's direct step, as appended and leased (SPEC §13): what its activity runs, and nothing else. */
  turnStep?: TurnRecord['next'];
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
