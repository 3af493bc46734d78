/**
 * The messages of the hypervisor's workflows, as zod schemas: the one source
 * of their TypeScript types and of the JSON Schemas in `contract/` that other
 * SDKs use. Every workflow input, signal and update is parsed with these.
 */
import { z } from 'zod';
import { DidSchema, SigmaSchema } from './common';
import { OMEGA } from './reversibility';
import { JoinInputSchema, SessionConfigSchema } from './session';

const Id = z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters')
  .regex(/^[A-Za-z0-9._:-]+$/, 'may contain only letters, digits, ".", "_", ":" and "-"');

export const SessionIdSchema = Id;

/** Temporal's retry policy for a step, in seconds (SPEC §6: maxRetries retries with backoff). */
export const StepRetrySchema = z.object({
  maximumAttempts: z.number().int().min(1, 'maximumAttempts must be ≥ 1 (1 = no retry)').max(100).default(1),
  initialIntervalSeconds: z.number().positive().max(3600).default(1),
  backoffCoefficient: z.number().min(1, 'backoffCoefficient must be ≥ 1').max(10).default(2),
  maximumIntervalSeconds: z.number().positive().max(86_400).optional(),
});
export type StepRetry = z.output<typeof StepRetrySchema>;

const HttpUrl = z.string().url('must be an http(s) URL').refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');

/** One saga step: who acts, which action, what runs, and Temporal's timeout and retry for it. */
export const SagaStepSchema = z
  .object({
    stepId: Id.optional(),
    actionId: z.string().min(1, 'actionId must not be empty'),
    agentDid: DidSchema,
    /** A step handler registered with the worker by name … */
    handler: z.string().min(1).optional(),
    /** … or an HTTP tool: POST to executeApi, compensate by POST to undoApi. */
    executeApi: HttpUrl.optional(),
    undoApi: HttpUrl.optional(),
    input: z.unknown().optional(),
    /** Start-to-close timeout of one attempt (SPEC §6 default 300 s). */
    timeoutSeconds: z.number().positive().max(86_400).default(300),
    retry: StepRetrySchema.default({ maximumAttempts: 1, initialIntervalSeconds: 1, backoffCoefficient: 2 }),
    /** Ring 1 steps wait for this many approvals from other participants, until the deadline. */
    quorum: z.number().int().min(1).max(100).default(2),
    approvalDeadlineSeconds: z.number().positive().max(30 * 86_400).default(3600),
  })
  .refine((s) => Boolean(s.handler) !== Boolean(s.executeApi), {
    message: 'a step names exactly one of handler or executeApi',
    path: ['handler'],
  });
export type SagaStepInput = z.input<typeof SagaStepSchema>;
export type SagaStep = z.output<typeof SagaStepSchema>;

export const SagaInputSchema = z.object({
  sessionId: SessionIdSchema,
  sagaId: Id.optional(),
  description: z.string().max(500).optional(),
  steps: z.array(SagaStepSchema).min(1, 'a saga needs at least one step').max(100),
});
export type SagaInputRaw = z.input<typeof SagaInputSchema>;
export type SagaInput = z.output<typeof SagaInputSchema>;

export const ApprovalSchema = z.object({ stepId: Id, approverDid: DidSchema });
export type Approval = z.infer<typeof ApprovalSchema>;

export const WitnessSchema = z.object({ stepId: Id, witnessDid: DidSchema });
export type Witness = z.infer<typeof WitnessSchema>;

/** What a saga needs of its session to gate a step: each participant's ring and σ_eff, and the actions. */
export const RingViewSchema = z.object({
  version: z.number().int().nonnegative(),
  participants: z.record(z.string(), z.object({ ring: z.number().int().min(0).max(3), sigmaEff: SigmaSchema, active: z.boolean() })),
  actions: z.record(z.string(), z.object({ readOnly: z.boolean(), admin: z.boolean(), reversibility: z.enum(['FULL', 'PARTIAL', 'NONE']) })),
  sessionState: z.string(),
});
export type RingView = z.infer<typeof RingViewSchema>;

// ── Session messages ────────────────────────────────────────────────────────

export const SessionInputSchema = z.object({
  sessionId: SessionIdSchema,
  creatorDid: DidSchema,
  config: SessionConfigSchema.partial().default({}),
  /** Updates per run before the session continues as new (Temporal's limit is 2,000). */
  maxUpdatesPerRun: z.number().int().min(10).max(1800).default(1000),
});
export type SessionInputRaw = z.input<typeof SessionInputSchema>;
export type SessionInput = z.output<typeof SessionInputSchema>;

/** Join: SPEC §3's handshake. σ: the lower of σ_raw and a configured trust scorer's; with neither, the manifest's hint, then 0.50. */
export const JoinRequestSchema = JoinInputSchema.omit({ scoredSigma: true });
export type JoinRequest = z.input<typeof JoinRequestSchema>;

export const AgentRequestSchema = z.object({ agentDid: DidSchema });
export type AgentRequest = z.infer<typeof AgentRequestSchema>;

export const VouchRequestSchema = z.object({
  voucher: DidSchema,
  vouchee: DidSchema,
  bondPct: z.number().min(0).max(1).optional(),
  /** Epoch milliseconds after which the bond no longer counts. */
  expiresAt: z.number().int().positive().optional(),
});
export type VouchRequest = z.infer<typeof VouchRequestSchema>;

export const ReleaseBondRequestSchema = z.object({ bondId: z.string().min(1), reason: z.string().max(500).default('released') });
export type ReleaseBondRequest = z.input<typeof ReleaseBondRequestSchema>;

export const CheckActionRequestSchema = z.object({ agentDid: DidSchema, actionId: z.string().min(1) });
export type CheckActionRequest = z.infer<typeof CheckActionRequestSchema>;

export const SlashRequestSchema = z.object({
  agentDid: DidSchema,
  reason: z.string().min(1, 'a slash needs a reason').max(500),
  omega: z.number().min(OMEGA.FULL.min).max(1).optional(),
  /** Slashing is a ring 0 action: it needs an SRE witness's co-sign. */
  witnessDid: DidSchema,
});
export type SlashRequest = z.input<typeof SlashRequestSchema>;

export const DriftReportSchema = z.object({
  agentDid: DidSchema,
  claimedEmbedding: z.array(z.number()).max(4096).optional(),
  observedEmbedding: z.array(z.number()).max(4096).optional(),
});
export type DriftReport = z.infer<typeof DriftReportSchema>;

const VfsPath = z.string().min(1).max(1024);
export const VfsWriteRequestSchema = z.object({ agentDid: DidSchema, path: VfsPath, content: z.string().max(256 * 1024) });
export const VfsPathRequestSchema = z.object({ agentDid: DidSchema, path: VfsPath });
/** allowedDids null opens the path to every participant again. */
export const VfsPermissionsRequestSchema = z.object({ agentDid: DidSchema, path: VfsPath, allowedDids: z.array(DidSchema).min(1).nullable() });
export const VfsSnapshotRequestSchema = z.object({ agentDid: DidSchema, snapshotId: z.string().min(1).max(200).optional(), label: z.string().max(1024).optional() });
export const VfsRestoreRequestSchema = z.object({ agentDid: DidSchema, snapshotId: z.string().min(1).max(200) });

export const StartSagaRequestSchema = SagaInputSchema.omit({ sessionId: true });
export type StartSagaRequest = z.input<typeof StartSagaRequestSchema>;

/** Signals from a saga to its session. */
export const SagaStartedSchema = z.object({ sagaId: z.string().min(1), workflowId: z.string().min(1), description: z.string().optional() });
export type SagaStarted = z.infer<typeof SagaStartedSchema>;

export const SagaEventSchema = z.object({
  sagaId: z.string().min(1),
  kind: z.enum(['step_committed', 'step_failed', 'step_compensated', 'step_compensation_failed', 'ring_decision', 'saga_state']),
  stepId: z.string().optional(),
  agentDid: DidSchema.optional(),
  actionId: z.string().optional(),
  sagaState: z.string().optional(),
  detail: z.string().max(2000).optional(),
  allowed: z.boolean().optional(),
});
export type SagaEvent = z.infer<typeof SagaEventSchema>;

export const SagaEscalationSchema = z.object({
  sagaId: z.string().min(1),
  stepId: z.string().min(1),
  agentDid: DidSchema,
  actionId: z.string(),
  reason: z.string().max(2000),
});
export type SagaEscalation = z.infer<typeof SagaEscalationSchema>;
