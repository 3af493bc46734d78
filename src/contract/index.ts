/**
 * The messages of the hypervisor's workflows, as zod schemas: the one source
 * of their TypeScript types and of the JSON Schemas in `contract/` that other
 * SDKs use. Every workflow input, signal and update is parsed with these.
 */
import { z } from 'zod';
import { DidSchema } from '../core/common';
import { OMEGA } from '../core/reversibility';
import { SessionConfigSchema } from '../core/session';
import { JoinInputSchema } from '../core/join';
import { DigestSchema, SessionIdSchema } from '../core/sagaContract';
import { isDidKey } from '../core/identity';
import { auth } from '../core/requestAuth';

export * from '../core/sagaContract';
export * from '../core/sagaRequests';
export * from '../core/sagaStart';

// ── Session messages ────────────────────────────────────────────────────────

/**
 * A session's start as recorded sessions were started: the workflow parses this, and applies the rules
 * added since (sessionStartRefusals) behind patches, so a session started before them replays as it ran.
 */
export const RecordedSessionInputSchema = z.strictObject({
  sessionId: SessionIdSchema,
  creatorDid: DidSchema,
  config: SessionConfigSchema.partial().strict().default({}),
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

/** A rule a session's start has had to satisfy since its patch (the workflow asks the patch only when it is broken). */
export interface StartRule {
  readonly patch: string;
  /** The refusals of this start, each naming its field; none: it holds. */
  readonly refusals: (v: z.output<typeof RecordedSessionInputSchema>) => { path: (string | number)[]; message: string }[];
}

/** The rules added to a session's start since sessions were recorded, each behind its patch. */
export const SESSION_START_RULES: readonly StartRule[] = [
  {
    // SPEC §11.9: an SRE's request is signed by the SRE in every identity mode, so an SRE that is no did:key could never act.
    patch: 'sre-requests-signed',
    refusals: (v) =>
      (v.config.identity === 'did:key' ? [] : (v.config.sreWitnesses ?? [])).flatMap((d, i) =>
        isDidKey(d) ? [] : [{ path: ['config', 'sreWitnesses', i], message: 'must be a did:key: an SRE signs its requests (slash, kill, quarantine, release, witness) in every identity mode' }],
      ),
  },
  {
    // Issue 24 N20: a value the runtime does not implement is refused, not ignored. Where a commitment is anchored
    // is the worker's setting (HV_ANCHOR_URL), the same for every session: a session cannot ask for it.
    patch: 'session-config-implemented',
    refusals: (v) =>
      v.config.externalCommitment === true
        ? [{ path: ['config', 'externalCommitment'], message: "true is not implemented per session: every session's commitment is anchored where the worker's HV_ANCHOR_URL says (else locally); leave it out or false" }]
        : [],
  },
];

/** A session's start: what a client sends (the typed client and `hv` check it before starting). */
export const SessionInputSchema = RecordedSessionInputSchema.superRefine((v, ctx) => {
  for (const rule of SESSION_START_RULES) for (const r of rule.refusals(v)) ctx.addIssue({ code: 'custom', ...r });
});
export type SessionInputRaw = z.input<typeof SessionInputSchema>;
export type SessionInput = z.output<typeof SessionInputSchema>;

/** Join: SPEC §3's handshake. σ: the lower of σ_raw and a configured trust scorer's; with neither, the manifest's hint, then 0.50. */
export const JoinRequestSchema = JoinInputSchema.omit({ scoredSigma: true }).extend({
  /** Delegation (SPEC §12): the parent agent that spawns this one; the child's ring is never more privileged than the parent's + 1. */
  delegatedBy: DidSchema.optional(),
  auth,
}).strict();
export type JoinRequest = z.input<typeof JoinRequestSchema>;
export type JoinRequestParsed = z.output<typeof JoinRequestSchema>;

export const AgentRequestSchema = z.strictObject({ agentDid: DidSchema, auth });
export type AgentRequest = z.infer<typeof AgentRequestSchema>;

export const VouchRequestSchema = z.strictObject({
  voucher: DidSchema,
  vouchee: DidSchema,
  bondPct: z.number().min(0).max(1).optional(),
  /** Epoch milliseconds after which the bond no longer counts. */
  expiresAt: z.number().int().positive().optional(),
  auth,
});
export type VouchRequest = z.infer<typeof VouchRequestSchema>;

/** Signed by the bond's voucher in a did:key session. */
export const ReleaseBondRequestSchema = z.strictObject({ bondId: z.string().min(1), reason: z.string().max(500).default('released'), auth });
export type ReleaseBondRequest = z.input<typeof ReleaseBondRequestSchema>;

export const CheckActionRequestSchema = z.strictObject({ agentDid: DidSchema, actionId: z.string().min(1), auth });
export type CheckActionRequest = z.infer<typeof CheckActionRequestSchema>;

export const SlashRequestSchema = z.strictObject({
  agentDid: DidSchema,
  reason: z.string().min(1, 'a slash needs a reason').max(500),
  omega: z.number().min(OMEGA.FULL.min).max(1).optional(),
  /** Slashing is a ring 0 action: it needs an SRE witness's co-sign (its signature, in a did:key session). */
  witnessDid: DidSchema,
  auth,
});
export type SlashRequest = z.input<typeof SlashRequestSchema>;

/** What a drift report measures: the agent, and the embeddings the verifier compares. */
export const DriftMeasureSchema = z.object({
  agentDid: DidSchema,
  claimedEmbedding: z.array(z.number()).max(4096).optional(),
  observedEmbedding: z.array(z.number()).max(4096).optional(),
});
/**
 * SPEC §11.9 (issue 24 N6): a drift report counts only when signed by `reporterDid`, one of the session's
 * config.driftReporters — in every identity mode (an unsigned report is refused and records nothing).
 */
export const DriftReportSchema = DriftMeasureSchema.extend({
  reporterDid: DidSchema.describe('The reporter (one of config.driftReporters) who signs the report'),
  auth,
}).strict();
export type DriftReport = z.infer<typeof DriftReportSchema>;

const VfsPath = z.string().min(1).max(1024);
export const VfsWriteRequestSchema = z.strictObject({ agentDid: DidSchema, path: VfsPath, content: z.string().max(256 * 1024), auth });
export const VfsPathRequestSchema = z.strictObject({ agentDid: DidSchema, path: VfsPath, auth });
/** allowedDids null opens the path to every participant again. */
export const VfsPermissionsRequestSchema = z.strictObject({ agentDid: DidSchema, path: VfsPath, allowedDids: z.array(DidSchema).min(1).nullable(), auth });
export const VfsSnapshotRequestSchema = z.strictObject({ agentDid: DidSchema, snapshotId: z.string().min(1).max(200).optional(), label: z.string().max(1024).optional(), auth });
export const VfsRestoreRequestSchema = z.strictObject({ agentDid: DidSchema, snapshotId: z.string().min(1).max(200), auth });


/**
 * Empty-argument updates (activate, terminate): nothing, null or {} — or, signed by the session's creator
 * or one of its SRE witnesses (required in a did:key session), {auth}. Anything else is refused.
 */
export const NoArgumentSchema = z.union([z.undefined(), z.null(), z.strictObject({ auth })]);

/** sagaEnded: a wake-up naming the saga whose outcome the session reads by id. */
export const SagaEndedSchema = z.strictObject({ sagaId: z.string().max(200) });
/** wake: a wake-up of a saga; sessionContinued when its session continued as new. */
export const WakeSchema = z.strictObject({ sessionContinued: z.boolean().optional() });
/** stepGate's argument: the step id whose gate to read. */
export const StepGateArgumentSchema = z.string().max(200);


// ── Controls (SPEC §12) ─────────────────────────────────────────────────────
// Quarantine, release and kill come from one of the session's SRE witnesses
// (config.sreWitnesses); elevation from the agent, approved by the quorum.

const Reason = z.string().min(1, 'must not be empty').max(500, 'must be at most 500 characters');

export const QuarantineRequestSchema = z.strictObject({
  agentDid: DidSchema,
  sreDid: DidSchema,
  reason: Reason,
  /** Default: the session's controls.quarantineTtlSeconds (300). */
  ttlSeconds: z.number().int().min(1).max(30 * 86_400).optional(),
  auth,
});
export type QuarantineRequest = z.input<typeof QuarantineRequestSchema>;

export const ReleaseRequestSchema = z.strictObject({ agentDid: DidSchema, sreDid: DidSchema, reason: Reason.optional(), auth });
export type ReleaseRequest = z.input<typeof ReleaseRequestSchema>;

export const KillRequestSchema = z.strictObject({
  agentDid: DidSchema,
  sreDid: DidSchema,
  reason: Reason,
  /** Who takes over the killed agent's remaining steps, each only if it passes the gate for it. */
  substituteDid: DidSchema.optional(),
  auth,
});
export type KillRequest = z.input<typeof KillRequestSchema>;

export const ElevationRequestSchema = z.strictObject({
  agentDid: DidSchema,
  ring: z.union([z.literal(1), z.literal(2)], { message: 'ring must be 1 or 2 (never 0)' }),
  /** Default: the session's controls.elevationTtlSeconds (300); at most 3,600. */
  ttlSeconds: z.number().int().min(1).max(3600, 'ttlSeconds must be ≤ 3600').optional(),
  justification: Reason,
  auth,
});
export type ElevationRequest = z.input<typeof ElevationRequestSchema>;

export const ElevationApprovalSchema = z.strictObject({
  agentDid: DidSchema,
  elevationId: z.string().min(1).max(200),
  digest: DigestSchema,
  approverDid: DidSchema,
  auth,
});
export type ElevationApproval = z.input<typeof ElevationApprovalSchema>;

/** By an SRE witness of the session, or the elevated agent itself. */
export const RevokeElevationRequestSchema = z.strictObject({ agentDid: DidSchema, byDid: DidSchema, reason: Reason.optional(), auth });
export type RevokeElevationRequest = z.input<typeof RevokeElevationRequestSchema>;
export * from './turns';
