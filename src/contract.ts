/**
 * The messages of the hypervisor's workflows, as zod schemas: the one source
 * of their TypeScript types and of the JSON Schemas in `contract/` that other
 * SDKs use. Every workflow input, signal and update is parsed with these.
 */
import { z } from 'zod';
import { DidSchema, SigmaSchema } from './common';
import { OMEGA } from './reversibility';
import { JoinInputSchema, SessionConfigSchema } from './session';
import { isDidKey, RequestAuthSchema } from './identity';

/** Signatures of an agent request (issue 12): required in a did:key session, checked whenever present. */
const auth = RequestAuthSchema.optional();

/**
 * A client-chosen id (session, saga, step). It names workflows and paths, so
 * it may not start with "." (no ".", "..", ".x") and uses a plain alphabet.
 */
const Id = z.string().min(1, 'must not be empty').max(200, 'must be at most 200 characters')
  .regex(/^[A-Za-z0-9_:-][A-Za-z0-9._:-]*$/, 'may contain only letters, digits, ".", "_", ":" and "-", and may not start with "."');

/** An action id as declared at join (SPEC §2). */
const ActionId = z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters');

/** SHA-256 hex: a step digest (SPEC §11.5). */
export const DigestSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a step digest: 64 lowercase hex characters (SHA-256)');

/** Bytes of JSON a value takes; for bounds on free-form inputs. */
export function jsonSize(value: unknown): number {
  try {
    return new TextEncoder().encode(JSON.stringify(value ?? null)).length;
  } catch {
    return Infinity;
  }
}

/** SPEC §11.6: a step's input is free-form JSON, bounded so a saga's start input stays small. */
export const STEP_INPUT_MAX_BYTES = 16 * 1024;
export const SAGA_REQUEST_MAX_BYTES = 256 * 1024;
export const SAGA_MAX_STEPS = 50;

export const SessionIdSchema = Id;

/** Temporal's retry policy for a step, in seconds (SPEC §6: maxRetries retries with backoff). */
export const StepRetrySchema = z.object({
  maximumAttempts: z.number().int().min(1, 'maximumAttempts must be ≥ 1 (1 = no retry)').max(100).default(1),
  initialIntervalSeconds: z.number().positive().max(3600).default(1),
  backoffCoefficient: z.number().min(1, 'backoffCoefficient must be ≥ 1').max(10).default(2),
  maximumIntervalSeconds: z.number().positive().max(86_400).optional(),
});
export type StepRetry = z.output<typeof StepRetrySchema>;

/**
 * One saga step: who acts, which action, with what input, and Temporal's
 * timeout and retry for it. What runs is the action's executor as declared
 * at join (SPEC §11.4), never named here: unknown keys are refused.
 */
export const SagaStepSchema = z
  .strictObject({
    stepId: Id.optional(),
    actionId: ActionId,
    agentDid: DidSchema,
    input: z.unknown().optional().refine((v) => jsonSize(v) <= STEP_INPUT_MAX_BYTES, `must be at most ${STEP_INPUT_MAX_BYTES} bytes of JSON`),
    /** Start-to-close timeout of one attempt (SPEC §6 default 300 s). */
    timeoutSeconds: z.number().positive().max(86_400).default(300),
    retry: StepRetrySchema.default({ maximumAttempts: 1, initialIntervalSeconds: 1, backoffCoefficient: 2 }),
    /** How long a ring 1 or ring 0 step waits for approvals or a witness. */
    approvalDeadlineSeconds: z.number().positive().max(30 * 86_400).default(3600),
  });
export type SagaStepInput = z.input<typeof SagaStepSchema>;
export type SagaStep = z.output<typeof SagaStepSchema>;

const SagaStepsSchema = z.array(SagaStepSchema).min(1, 'a saga needs at least one step')
  .max(SAGA_MAX_STEPS, `a saga has at most ${SAGA_MAX_STEPS} steps`)
  .superRefine((steps, ctx) => {
    const seen = new Set<string>();
    steps.forEach((s, i) => {
      const id = s.stepId ?? `step-${i + 1}`;
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path: [i, 'stepId'], message: `duplicate step id ${id}` });
      seen.add(id);
    });
  });

/** startSaga: a saga of this session, started by the session as its child. */
export const StartSagaRequestSchema = z.strictObject({
  sagaId: Id.optional(),
  description: z.string().max(500).optional(),
  steps: SagaStepsSchema,
  auth,
}).refine((v) => jsonSize(v) <= SAGA_REQUEST_MAX_BYTES, `a saga request is at most ${SAGA_REQUEST_MAX_BYTES} bytes of JSON`);
export type StartSagaRequest = z.input<typeof StartSagaRequestSchema>;
export type StartSagaRequestParsed = z.output<typeof StartSagaRequestSchema>;



// ── Evidence: approvals, rejections, witnesses (SPEC §11.5) ─────────────────
// Requests to the session, bound to the step's digest; the session decides
// whether they count.

export const ApprovalRequestSchema = z.strictObject({ sagaId: Id, stepId: Id, digest: DigestSchema, approverDid: DidSchema, auth });
export type ApprovalRequest = z.infer<typeof ApprovalRequestSchema>;

export const RejectionRequestSchema = z.strictObject({
  sagaId: Id, stepId: Id, digest: DigestSchema, approverDid: DidSchema, reason: z.string().min(1, 'a rejection needs a reason').max(500), auth,
});
export type RejectionRequest = z.infer<typeof RejectionRequestSchema>;

export const WitnessRequestSchema = z.strictObject({ sagaId: Id, stepId: Id, digest: DigestSchema, witnessDid: DidSchema, auth });
export type WitnessRequest = z.infer<typeof WitnessRequestSchema>;

/** The step a grant is asked for (the stepGrant query; the saga's own activities ask it). */
export const StepRefSchema = z.strictObject({ sagaId: Id, stepId: Id, digest: DigestSchema });
export type StepRef = z.infer<typeof StepRefSchema>;

// ── What a saga holds of its session (SPEC §11.2–§11.3) ─────────────────────

/** What the gate needs of one agent; σ_eff for an action is min(1, σ_raw + ω × bondSum). */
export const AgentViewSchema = z.strictObject({
  did: DidSchema,
  sigmaRaw: SigmaSchema,
  bondSum: z.number().min(0).max(1),
  /** The least privileged ring this agent may be placed in (drift cap, untrustworthy history). */
  ringCap: z.number().int().min(0).max(3),
  active: z.boolean(),
});
export type AgentView = z.infer<typeof AgentViewSchema>;

/** One declared action as the gate checks it, with the executor declared for it (SPEC §11.4). */
export const ActionViewSchema = z.strictObject({
  actionId: ActionId,
  readOnly: z.boolean(),
  admin: z.boolean(),
  reversibility: z.enum(['FULL', 'PARTIAL', 'NONE']),
  omega: z.number().min(0).max(1),
  executeApi: z.string().max(2048).nullable(),
  undoApi: z.string().max(2048).nullable(),
});
export type ActionView = z.infer<typeof ActionViewSchema>;

/**
 * A push from the session to a running saga. It may only take privilege away
 * (SPEC §11.3): merged into the held view as σ_raw and bondSum = the lower,
 * ringCap = the larger, active = both; a closed session state closes the saga's gate.
 */
export const RestrictionSchema = z.strictObject({
  agents: z.array(AgentViewSchema).max(SAGA_MAX_STEPS),
  sessionState: z.enum(['terminating', 'archived']).optional(),
});
export type Restriction = z.infer<typeof RestrictionSchema>;

// ── Session messages ────────────────────────────────────────────────────────

export const SessionInputSchema = z.object({
  sessionId: SessionIdSchema,
  creatorDid: DidSchema,
  config: SessionConfigSchema.partial().default({}),
  /** Updates per run before the session continues as new (Temporal's limit is 2,000). */
  maxUpdatesPerRun: z.number().int().min(10).max(1800).default(1000),
}).superRefine((v, ctx) => {
  // In a did:key session activate and terminate are signed by the creator or an SRE, and witnesses sign: each must be able to.
  if (v.config.identity !== 'did:key') return;
  if (!isDidKey(v.creatorDid)) ctx.addIssue({ code: 'custom', path: ['creatorDid'], message: 'must be a did:key in a did:key session (it signs activate and terminate)' });
  (v.config.sreWitnesses ?? []).forEach((d, i) => {
    if (!isDidKey(d)) ctx.addIssue({ code: 'custom', path: ['config', 'sreWitnesses', i], message: 'must be a did:key in a did:key session (witnesses sign)' });
  });
});
export type SessionInputRaw = z.input<typeof SessionInputSchema>;
export type SessionInput = z.output<typeof SessionInputSchema>;

/** Join: SPEC §3's handshake. σ: the lower of σ_raw and a configured trust scorer's; with neither, the manifest's hint, then 0.50. */
export const JoinRequestSchema = JoinInputSchema.omit({ scoredSigma: true }).extend({ auth });
export type JoinRequest = z.input<typeof JoinRequestSchema>;

export const AgentRequestSchema = z.object({ agentDid: DidSchema, auth });
export type AgentRequest = z.infer<typeof AgentRequestSchema>;

export const VouchRequestSchema = z.object({
  voucher: DidSchema,
  vouchee: DidSchema,
  bondPct: z.number().min(0).max(1).optional(),
  /** Epoch milliseconds after which the bond no longer counts. */
  expiresAt: z.number().int().positive().optional(),
  auth,
});
export type VouchRequest = z.infer<typeof VouchRequestSchema>;

/** Signed by the bond's voucher in a did:key session. */
export const ReleaseBondRequestSchema = z.object({ bondId: z.string().min(1), reason: z.string().max(500).default('released'), auth });
export type ReleaseBondRequest = z.input<typeof ReleaseBondRequestSchema>;

export const CheckActionRequestSchema = z.object({ agentDid: DidSchema, actionId: z.string().min(1), auth });
export type CheckActionRequest = z.infer<typeof CheckActionRequestSchema>;

export const SlashRequestSchema = z.object({
  agentDid: DidSchema,
  reason: z.string().min(1, 'a slash needs a reason').max(500),
  omega: z.number().min(OMEGA.FULL.min).max(1).optional(),
  /** Slashing is a ring 0 action: it needs an SRE witness's co-sign (its signature, in a did:key session). */
  witnessDid: DidSchema,
  auth,
});
export type SlashRequest = z.input<typeof SlashRequestSchema>;

export const DriftReportSchema = z.object({
  agentDid: DidSchema,
  claimedEmbedding: z.array(z.number()).max(4096).optional(),
  observedEmbedding: z.array(z.number()).max(4096).optional(),
});
export type DriftReport = z.infer<typeof DriftReportSchema>;

const VfsPath = z.string().min(1).max(1024);
export const VfsWriteRequestSchema = z.object({ agentDid: DidSchema, path: VfsPath, content: z.string().max(256 * 1024), auth });
export const VfsPathRequestSchema = z.object({ agentDid: DidSchema, path: VfsPath, auth });
/** allowedDids null opens the path to every participant again. */
export const VfsPermissionsRequestSchema = z.object({ agentDid: DidSchema, path: VfsPath, allowedDids: z.array(DidSchema).min(1).nullable(), auth });
export const VfsSnapshotRequestSchema = z.object({ agentDid: DidSchema, snapshotId: z.string().min(1).max(200).optional(), label: z.string().max(1024).optional(), auth });
export const VfsRestoreRequestSchema = z.object({ agentDid: DidSchema, snapshotId: z.string().min(1).max(200), auth });


/**
 * Empty-argument updates (activate, terminate): nothing, null or {} — or, signed by the session's creator
 * or one of its SRE witnesses (required in a did:key session), {auth}. Anything else is refused.
 */
export const NoArgumentSchema = z.union([z.undefined(), z.null(), z.strictObject({ auth })]);

/** A step as the session hands it to its saga: ids settled and its digest (SPEC §11.5). */
export type ResolvedStep = Omit<SagaStep, 'stepId'> & { stepId: string; digest: string };

/**
 * The saga workflow's start input. Only its session gives it (the saga checks
 * its parent): the view it starts from is the session's, at the start.
 */
export const SagaWorkflowInputSchema = z.strictObject({
  sessionId: SessionIdSchema,
  sagaId: Id,
  description: z.string().max(500).optional(),
  steps: z.array(SagaStepSchema.extend({ stepId: Id, digest: DigestSchema })).min(1).max(SAGA_MAX_STEPS),
  agents: z.array(AgentViewSchema).max(SAGA_MAX_STEPS),
  actions: z.array(ActionViewSchema).max(SAGA_MAX_STEPS),
  quorum: z.number().int().min(1).max(100),
});
export type SagaWorkflowInput = z.input<typeof SagaWorkflowInputSchema>;
