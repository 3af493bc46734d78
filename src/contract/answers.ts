/**
 * What the workflows send back, as zod schemas: the answer of every query, the
 * result of every workflow (a saga that did not complete ends as a failed
 * workflow with the same snapshot in its failure's details) and the result of
 * every update. `npm run contract` turns them into the `*.answer.schema.json`
 * and `*.result.schema.json` files of contract/, so another SDK can check what
 * it gets back.
 *
 * Each schema is written out by hand to mirror a TypeScript type the workflows
 * return; `mirrors<T>()` makes the build fail when the two drift apart, in
 * either direction (a field added, dropped, renamed, made nullable or optional,
 * or given another type). Objects are strict, so a field the schema does not
 * know about fails validation too. Refinements (integers, ranges, patterns)
 * only add what the code guarantees beyond its types.
 */
import { z } from 'zod';
import { DidSchema, RingSchema } from '../core/common';
import {
  ActionViewSchema,
  AgentViewSchema,
  DigestSchema,
  GroupPolicySchema,
  ResolvedStepSchema,
  SagaGroupSchema,
} from '.';
import { ChangeOperationSchema, DeltaSchema, type AuditHead, type ChainVerification } from '../core/audit';
import type { Commitment } from '../core/commitment';
import { GATE_RULES, GATE_WAITS, type GateDecision } from '../core/gate';
import { HistoryStatusSchema } from '../core/history';
import type { Bond, LiabilityMatrix } from '../core/liability';
import { SAGA_STATES, STEP_STATES, type SagaState, type SagaStep, type SagaTransition } from '../core/saga';
import type { GroupState } from '../core/groups';
import {
  ConsistencySchema,
  SessionLifecycleSchema,
  TurnsConfigSchema,
  type Participant,
  type SessionConfig,
} from '../core/session';
import { type RingChange } from '../core/sessionRings';
import { type JoinResult } from '../core/join';
import type { SlashOutcome, SlashRecord, VoucherClip } from '../core/slashing';
import type { DriftDecision } from '../core/adapters';
import type { FileRef, SnapshotSummary, VfsChange } from '../core/vfs';
import type {
  DriftOutcome, EvidenceResult, SagaRecord, SessionSummary, SlashResult, StepEvidence, StepGrant, TerminateResult,
  ControlResult, ControlsSummary, ElevationView,
} from './sessionTypes';
import { RESTRICTION_KINDS, type Usage } from '../core/controls';
import { ControlsConfigSchema } from '../core/controlsConfig';
import type { SagaSnapshot } from './sagaTypes';
import { TurnRecordSchema } from './turns';

/** Exactly the same type, both ways (`[…]` keeps unions from distributing). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;

/**
 * Returns the schema unchanged; fails to compile unless the schema's output
 * type and T are the same type. Usage: `mirrors<Bond>()(z.strictObject({…}))`.
 */
function mirrors<T>() {
  return <S extends z.ZodType>(schema: S & (Same<z.output<S>, T> extends true ? unknown : { __drift: [T, 'differs from', z.output<S>] })): S => schema;
}

// ── Building blocks ─────────────────────────────────────────────────────────

/** Epoch milliseconds, as Date.now() gives them. */
const Time = z.number().int().nonnegative();
const Count = z.number().int().nonnegative();
const Sigma = z.number().min(0).max(1);
const Hex64 = z.string().regex(/^[0-9a-f]{64}$/);

export const SessionConfigAnswer = mirrors<SessionConfig>()(z.strictObject({
  consistency: ConsistencySchema,
  maxParticipants: z.number().int().positive(),
  maxDurationSeconds: z.number().int().positive(),
  minSigmaEff: Sigma,
  auditEnabled: z.boolean(),
  externalCommitment: z.boolean(),
  consensusQuorum: z.number().int().min(1),
  sreWitnesses: z.array(DidSchema),
  allowedToolOrigins: z.array(z.string()),
  retentionDays: z.number().int().positive(),
  identity: z.enum(['none', 'did:key']).optional(),
  controls: ControlsConfigSchema.optional(),
  turns: TurnsConfigSchema.optional(),
}));

export const CommitmentAnswer = mirrors<Commitment>()(z.strictObject({
  sessionId: z.string(),
  merkleRoot: Hex64.nullable(),
  participantDids: z.array(DidSchema),
  deltaCount: Count,
  committedAt: Time,
  anchorTarget: z.string(),
  anchorTxId: z.string().nullable(),
}));

export const ParticipantAnswer = mirrors<Participant>()(z.strictObject({
  did: DidSchema,
  sigmaRaw: Sigma,
  sigmaEff: Sigma,
  riskWeight: z.number().min(0).max(1),
  ring: RingSchema,
  active: z.boolean(),
  joinedAt: Time,
  leftAt: Time.nullable(),
  historyStatus: HistoryStatusSchema,
  actions: z.array(z.string()),
  slashed: z.boolean(),
  ringCap: RingSchema,
}));

export const BondAnswer = mirrors<Bond>()(z.strictObject({
  bondId: z.string(),
  sessionId: z.string(),
  voucher: DidSchema,
  vouchee: DidSchema,
  voucherSigma: Sigma,
  bondPct: z.number().min(0).max(1),
  amount: z.number().nonnegative(),
  createdAt: Time,
  expiresAt: Time.nullable(),
  releasedAt: Time.nullable(),
  releaseReason: z.string().nullable(),
}));

export const LiabilityMatrixAnswer = mirrors<LiabilityMatrix>()(z.strictObject({
  sessionId: z.string(),
  bonds: z.array(z.strictObject({ bondId: z.string(), voucher: DidSchema, vouchee: DidSchema, amount: z.number().nonnegative(), expiresAt: Time.nullable() })),
  vouchesFor: z.record(DidSchema, z.array(DidSchema)),
  exposure: z.record(DidSchema, z.number().nonnegative()),
  cascadePaths: z.array(z.array(DidSchema)),
  hasCycle: z.boolean(),
}));

export const ChainVerificationAnswer = mirrors<ChainVerification>()(z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), count: Count }),
  z.strictObject({ ok: z.literal(false), brokenAt: Count, deltaId: z.string(), reason: z.string() }),
]));

export const GateDecisionAnswer = mirrors<GateDecision>()(z.strictObject({
  allowed: z.boolean(),
  requiredRing: RingSchema,
  agentRing: RingSchema,
  sigmaEff: Sigma,
  reason: z.string(),
  rule: z.enum(GATE_RULES),
  requiresConsensus: z.boolean(),
  requiresSreWitness: z.boolean(),
  waitFor: z.enum(GATE_WAITS),
}));

const RejectedBy = z.strictObject({ did: DidSchema, reason: z.string() }).nullable();

export const StepEvidenceAnswer = mirrors<StepEvidence>()(z.strictObject({
  stepId: z.string(),
  actionId: z.string(),
  agentDid: DidSchema,
  digest: DigestSchema,
  approvers: z.array(DidSchema),
  rejectedBy: RejectedBy,
  witness: DidSchema.nullable(),
  handedFrom: z
    .strictObject({ agentDid: DidSchema, digest: DigestSchema, given: DidSchema.optional() })
    .nullable()
    .optional(),
  leased: z.boolean().optional(),
  started: z.boolean().optional(),
}));

export const SagaRecordAnswer = mirrors<SagaRecord>()(z.strictObject({
  sagaId: z.string(),
  workflowId: z.string(),
  description: z.string().nullable(),
  state: z.string().describe(`running, then the saga's outcome: ${SAGA_STATES.filter((s) => s !== 'running').join(' | ')}, or lost (it ended without one)`),
  startedAt: Time,
  endedAt: Time.nullable(),
  agentDids: z.array(DidSchema),
  steps: z.array(StepEvidenceAnswer),
  error: z.string().nullable(),
  turn: TurnRecordSchema.optional(),
  awaiting: z.strictObject({ stepId: z.string(), actionId: z.string(), round: z.number().int().positive(), since: Time, deadline: Time }).nullable().optional(),
  decided: z.strictObject({ stepId: z.string(), round: z.number().int().positive(), decision: z.enum(['retry', 'skip', 'compensate']), by: DidSchema, at: Time }).nullable().optional(),
  forkedFrom: z.strictObject({ sagaId: z.string(), stepId: z.string() }).optional(),
  forks: z.array(z.string()).optional(),
  forkable: z.array(z.strictObject({ stepId: z.string(), agentDid: DidSchema, digest: DigestSchema })).optional(),
  groups: z.array(SagaGroupSchema).optional(),
}));

export const SnapshotSummaryAnswer = mirrors<SnapshotSummary>()(z.strictObject({
  snapshotId: z.string(),
  agentDid: DidSchema,
  at: Time,
  label: z.string().nullable(),
  fileCount: Count,
}));

export const VfsChangeAnswer = mirrors<VfsChange>()(z.strictObject({
  path: z.string(),
  operation: ChangeOperationSchema,
  contentHash: z.string().optional(),
  previousHash: z.string().optional(),
  agentDid: DidSchema,
}));

export const SagaStepAnswer = mirrors<SagaStep>()(z.strictObject({
  stepId: z.string(),
  actionId: z.string(),
  agentDid: DidSchema,
  executeApi: z.string().nullable(),
  undoApi: z.string().nullable(),
  timeoutSeconds: z.number().positive(),
  maxRetries: Count,
  initialIntervalMs: z.number().int().positive(),
  backoffCoefficient: z.number().min(1),
  maximumIntervalMs: z.number().int().positive(),
  state: z.enum(STEP_STATES),
  attempts: Count,
  error: z.string().nullable(),
  outcomeUnknown: z.boolean().optional(),
  /** SPEC §14: the operator's round (absent: 1). */
  round: z.number().int().positive().optional(),
  /** Issue 21: refused because its MCP tool's definition no longer hashes to the declared pin (SHA-256 hex). */
  toolDefinitionChanged: z.strictObject({ tool: z.string(), pinned: z.string(), current: z.string() }).optional(),
  /** What the step's executor returned (any JSON; null when it returned nothing or has not run). */
  result: z.unknown(),
  addedAt: Time,
  startedAt: Time.nullable(),
  finishedAt: Time.nullable(),
  compensationStartedAt: Time.nullable(),
  compensationFinishedAt: Time.nullable(),
}));

export const SagaTransitionAnswer = mirrors<SagaTransition>()(z.strictObject({
  at: Time,
  subject: z.enum(['saga', 'step']),
  id: z.string(),
  from: z.string(),
  to: z.string(),
  reason: z.string().nullable(),
}));

export const GroupStateAnswer = mirrors<GroupState>()(z.strictObject({
  groupId: z.string(),
  policy: GroupPolicySchema,
  needed: Count,
  branches: z.array(z.string()),
  state: z.enum(['pending', 'running', 'met', 'failed']),
  ended: z.array(z.string()).describe('Its branches in the order they ended: compensation walks it backwards.'),
  kept: z.array(z.string()).describe('The branches committed when the group was met: its outcome. Later ones were undone.'),
  decidedBy: z.string().nullable().describe('The branch whose end decided the group.'),
  error: z.string().nullable(),
}));

export const SagaStateAnswer = mirrors<SagaState>()(z.strictObject({
  sagaId: z.string(),
  sessionId: z.string(),
  state: z.enum(SAGA_STATES),
  steps: z.array(SagaStepAnswer),
  commitOrder: z.array(z.string()),
  groups: z.array(GroupStateAnswer).optional().describe('Its parallel groups (SPEC §14); absent when it has none.'),
  log: z.array(SagaTransitionAnswer),
  createdAt: Time,
  updatedAt: Time,
  finishedAt: Time.nullable(),
}));

export const RingChangeAnswer = mirrors<RingChange>()(z.strictObject({
  did: DidSchema,
  from: RingSchema,
  to: RingSchema,
  kind: z.enum(['demotion', 'promotion']),
  sigmaEff: Sigma,
}));

const VoucherClipAnswer = mirrors<VoucherClip>()(z.strictObject({
  voucher: DidSchema,
  before: Sigma,
  after: Sigma,
  omega: z.number().min(0).max(1),
  bondId: z.string(),
  bondIds: z.array(z.string()),
}));

const SlashRecordAnswer = mirrors<SlashRecord>()(z.strictObject({
  slashId: z.string(),
  sessionId: z.string(),
  vouchee: DidSchema,
  reason: z.string(),
  depth: Count,
  at: Time,
  sigmaBefore: Sigma,
  sigmaAfter: Sigma,
  clips: z.array(VoucherClipAnswer),
  causedBy: z.string().nullable(),
  forfeitedBonds: z.array(z.string()),
}));

const SlashOutcomeAnswer = mirrors<SlashOutcome>()(z.strictObject({
  slashes: z.array(SlashRecordAnswer),
  touched: z.array(DidSchema),
}));

const DriftDecisionAnswer = mirrors<DriftDecision>()(z.strictObject({
  drift: z.number().min(0).max(1),
  severity: z.enum(['none', 'low', 'medium', 'high', 'critical']),
  action: z.enum(['pass', 'demote', 'slash']),
  passed: z.boolean(),
  slashOmega: z.number().min(0).max(1).nullable(),
  reportSeverity: z.enum(['critical', 'high']).nullable(),
}));

// ── Controls (SPEC §12) ─────────────────────────────────────────────────────

const RestrictionKindAnswer = z.enum(RESTRICTION_KINDS);
const UsageAnswer = mirrors<Usage>()(z.strictObject({ calls: z.number().nonnegative(), cost: z.number().nonnegative() }));

export const ElevationViewAnswer = mirrors<ElevationView>()(z.strictObject({
  elevationId: z.string(),
  agentDid: DidSchema,
  ring: z.union([z.literal(1), z.literal(2)]),
  ttlSeconds: z.number().int().positive(),
  justification: z.string(),
  digest: DigestSchema,
  requestedAt: Time,
  approvals: Count,
  quorum: z.number().int().min(1),
  activeFrom: Time.nullable(),
  until: Time.nullable(),
  state: z.enum(['requested', 'active', 'revoked']),
}));

export const ControlsSummaryAnswer = mirrors<ControlsSummary>()(z.strictObject({
  restricted: z.array(z.strictObject({
    did: DidSchema, kind: RestrictionKindAnswer, since: Time, until: Time.nullable(), reason: z.string(), by: DidSchema, substitute: DidSchema.nullable(),
  })),
  elevations: z.array(ElevationViewAnswer),
  delegations: z.array(z.strictObject({ child: DidSchema, parent: DidSchema })),
  spent: z.strictObject({
    session: UsageAnswer,
    agents: z.array(z.strictObject({ did: DidSchema, spent: UsageAnswer, reserved: UsageAnswer })),
  }),
}));

export const HeldAgentAnswer = mirrors<{ restriction: 0 | 1 | 2; runningStepId: string | null }>()(z.strictObject({
  restriction: z.union([z.literal(0), z.literal(1), z.literal(2)]),
  runningStepId: z.string().nullable(),
}));

export const ControlResultAnswer = mirrors<ControlResult>()(z.strictObject({
  agentDid: DidSchema,
  kind: z.enum([...RESTRICTION_KINDS, 'released']),
  until: Time.nullable(),
  sagasHolding: z.array(z.string()),
  handedOff: z.array(z.strictObject({ sagaId: z.string(), stepId: z.string(), agentDid: DidSchema, digest: DigestSchema })),
}));

// ── Query answers ───────────────────────────────────────────────────────────

export const SessionSummaryAnswer = mirrors<SessionSummary>()(z.strictObject({
  sessionId: z.string(),
  state: SessionLifecycleSchema,
  consistency: ConsistencySchema,
  config: SessionConfigAnswer,
  participants: z.array(z.strictObject({
    did: DidSchema,
    ring: z.number().int().min(0).max(3),
    sigmaRaw: Sigma,
    sigmaEff: Sigma,
    active: z.boolean(),
    historyStatus: z.string().describe(HistoryStatusSchema.options.join(' | ')),
    slashed: z.boolean(),
    ringCap: z.number().int().min(0).max(3),
  })),
  activeBonds: Count,
  deltaCount: Count,
  merkleRoot: Hex64.nullable(),
  sagas: z.array(SagaRecordAnswer),
  files: Count,
  runs: Count,
  commitment: CommitmentAnswer.nullable(),
  controls: ControlsSummaryAnswer,
}));

/** participant: null for a DID that never joined. */
export const ParticipantQueryAnswer = mirrors<Participant | null>()(ParticipantAnswer.nullable());

export const AuditHeadAnswer = mirrors<AuditHead>()(z.strictObject({
  sessionId: z.string(),
  deltaCount: Count,
  merkleRoot: Hex64.nullable(),
  head: Hex64.nullable(),
  stored: Count,
  pending: z.array(DeltaSchema),
}));

export const SagasAnswer = mirrors<SagaRecord[]>()(z.array(SagaRecordAnswer));

export const StepGrantAnswer = mirrors<StepGrant>()(z.strictObject({
  decision: GateDecisionAnswer,
  agent: AgentViewSchema.nullable(),
  action: ActionViewSchema.nullable(),
  approvals: z.array(DidSchema),
  quorum: z.number().int().min(1),
  witness: DidSchema.nullable(),
  rejectedBy: RejectedBy,
  step: z.strictObject({ agentDid: DidSchema, digest: DigestSchema }),
  retryAfterMs: z.number().int().nonnegative().nullable(),
  /** A turn's direct step, as appended and leased (SPEC §13): what its activity runs, and nothing else. */
  turnStep: ResolvedStepSchema.nullable().optional(),
}));

export const VfsListAnswer = mirrors<{ files: string[]; snapshots: SnapshotSummary[] }>()(z.strictObject({
  files: z.array(z.string()),
  snapshots: z.array(SnapshotSummaryAnswer),
}));

/** vfsFile: where the file is, its size and the hash its contents have in the audit store. */
export const VfsFileAnswer = mirrors<FileRef>()(z.strictObject({ path: z.string(), contentHash: Hex64, size: Count }));

/** sagaState, the saga workflow's result, and details[0] of the failure it ends with when it did not complete. */
export const SagaSnapshotAnswer = mirrors<SagaSnapshot>()(z.strictObject({
  saga: SagaStateAnswer,
  workflowId: z.string(),
  sessionId: z.string(),
  digests: z.record(z.string(), DigestSchema),
  grants: z.record(z.string(), z.strictObject({ approvals: z.array(DidSchema), witness: DidSchema.nullable() })),
  waiting: z.strictObject({ stepId: z.string(), waitFor: z.string(), deadline: z.number().nonnegative() }).nullable(),
  compensationOrder: z.array(z.string()),
  failedStepId: z.string().nullable(),
  error: z.string().nullable(),
  cancelled: z.boolean(),
  awaitingOperator: z.strictObject({ stepId: z.string(), actionId: z.string(), round: z.number().int().positive(), since: Time, deadline: Time }).nullable().optional(),
  forkedFrom: z.strictObject({ sagaId: z.string(), stepId: z.string() }).optional(),
}));

// ── Update results ──────────────────────────────────────────────────────────

export const JoinResultAnswer = mirrors<JoinResult>()(z.strictObject({
  did: DidSchema,
  ring: RingSchema,
  sigmaRaw: Sigma,
  sigmaEff: Sigma,
  historyStatus: HistoryStatusSchema,
  consistency: ConsistencySchema,
  consistencyChanged: z.boolean(),
}));

export const StartSagaResultAnswer = mirrors<{ sagaId: string; workflowId: string; runId: string; digests: Record<string, string> }>()(z.strictObject({
  sagaId: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  digests: z.record(z.string(), DigestSchema),
}));

export const EvidenceResultAnswer = mirrors<EvidenceResult>()(z.strictObject({
  sagaId: z.string(),
  stepId: z.string(),
  digest: DigestSchema,
  approvals: Count,
  quorum: z.number().int().min(1),
  rejected: z.boolean(),
  witnessed: z.boolean(),
}));

export const SlashResultAnswer = mirrors<SlashResult>()(z.strictObject({
  outcome: SlashOutcomeAnswer,
  ringChanges: z.array(RingChangeAnswer),
}));

export const DriftOutcomeAnswer = mirrors<DriftOutcome>()(z.strictObject({
  decision: DriftDecisionAnswer,
  slash: SlashResultAnswer.nullable(),
  ringChanges: z.array(RingChangeAnswer),
}));

/** terminate's result and the session workflow's result. */
export const TerminateResultAnswer = mirrors<TerminateResult>()(z.strictObject({
  commitment: CommitmentAnswer,
  releasedBonds: Count,
  purgedFiles: Count,
  retainUntil: Time,
  liabilitySnapshot: LiabilityMatrixAnswer,
}));

export const VfsRestoreResultAnswer = mirrors<VfsChange[]>()(z.array(VfsChangeAnswer));
