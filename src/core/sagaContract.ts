/**
 * The part of the contract a saga workflow reads — ids, steps, the evidence
 * bound to a step, the view a saga holds of its session and its start input —
 * in a module of its own: every workflow run builds the zod schemas of the
 * modules it imports afresh (workflows/index.ts), and a saga needs only these.
 * src/contract/index.ts re-exports all of it.
 */
import { z } from 'zod';
import { DidSchema, SigmaSchema } from './common';
import { auth } from './requestAuth';
import { canonicalJson, sha256Hex } from './hash';

/**
 * A client-chosen id (session, saga, step). It names workflows and paths, so
 * it may not start with "." (no ".", "..", ".x") and uses a plain alphabet.
 */
export const Id = z
  .string()
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters')
  .regex(
    /^[A-Za-z0-9_:-][A-Za-z0-9._:-]*$/,
    'may contain only letters, digits, ".", "_", ":" and "-", and may not start with "."',
  );

/** An action id as declared at join (SPEC §2). */
export const ActionId = z.string().min(1, 'must not be empty').max(128, 'must be at most 128 characters');

/** SHA-256 hex: a step digest (SPEC §11.5). */
export const DigestSchema = z
  .string()
  .regex(/^[0-9a-f]{64}$/, 'must be a step digest: 64 lowercase hex characters (SHA-256)');

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

/** SPEC §14: how long a saga awaits its operator by default (1 h), and at most (30 days). */
export const OPERATOR_DEADLINE_DEFAULT_SECONDS = 3600;
export const OPERATOR_DEADLINE_MAX_SECONDS = 30 * 86_400;

/**
 * SPEC §14, failure policy: `"compensate"` (the default: a failed step walks the saga back) or
 * `{ "await-operator": { deadlineSeconds } }`: the saga waits for an SRE of its session to decide — retry,
 * skip or compensate — and compensates when the deadline passes. Per saga, and per step (the step's wins).
 */
export const OnFailureSchema = z.union(
  [
    z.literal('compensate'),
    z.strictObject({
      'await-operator': z.strictObject({
        deadlineSeconds: z
          .number()
          .positive('deadlineSeconds must be > 0')
          .max(OPERATOR_DEADLINE_MAX_SECONDS, `deadlineSeconds must be at most ${OPERATOR_DEADLINE_MAX_SECONDS}`)
          .default(OPERATOR_DEADLINE_DEFAULT_SECONDS),
      }),
    }),
  ],
  { error: 'onFailure must be "compensate" or {"await-operator": {"deadlineSeconds": n}}' },
);
export type OnFailure = z.output<typeof OnFailureSchema>;

/**
 * One saga step: who acts, which action, with what input, and Temporal's
 * timeout and retry for it. What runs is the action's executor as declared
 * at join (SPEC §11.4), never named here: unknown keys are refused.
 */
export const SagaStepSchema = z.strictObject({
  stepId: Id.optional(),
  actionId: ActionId,
  agentDid: DidSchema,
  input: z
    .unknown()
    .optional()
    .refine((v) => jsonSize(v) <= STEP_INPUT_MAX_BYTES, `must be at most ${STEP_INPUT_MAX_BYTES} bytes of JSON`),
  /** Start-to-close timeout of one attempt (SPEC §6 default 300 s). */
  timeoutSeconds: z.number().positive().max(86_400).default(300),
  retry: StepRetrySchema.default({ maximumAttempts: 1, initialIntervalSeconds: 1, backoffCoefficient: 2 }),
  /** How long a ring 1 or ring 0 step waits for approvals or a witness. */
  approvalDeadlineSeconds: z
    .number()
    .positive()
    .max(30 * 86_400)
    .default(3600),
  /** SPEC §14: what happens when this step fails after its retries (absent: the saga's policy). */
  onFailure: OnFailureSchema.optional(),
});
export type SagaStepInput = z.input<typeof SagaStepSchema>;
export type SagaStep = z.output<typeof SagaStepSchema>;

// ── Parallel groups (SPEC §14) ──────────────────────────────────────────────

/** SPEC §11.6: a parallel group holds at most this many branches (every branch is a step: SAGA_MAX_STEPS bounds them all). */
export const GROUP_MAX_BRANCHES = 16;

/** When a group is done: every branch, more than half, one, or at least k of them. */
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const POLICIES = 'must be "ALL", "MAJORITY", "ANY" or {atLeast: k}';
export const GroupPolicySchema = z.union(
  [
    z.enum(['ALL', 'MAJORITY', 'ANY']),
    z.strictObject({
      atLeast: z
        .number()
        .int()
        .min(1, 'atLeast must be ≥ 1')
        .max(GROUP_MAX_BRANCHES, `atLeast must be ≤ ${GROUP_MAX_BRANCHES}`),
    }),
  ],
  // An object is an {atLeast} that went wrong: say how; anything else is not a policy.
  {
    error: (issue) => {
      const inner = (issue as { errors?: { path: PropertyKey[]; message: string }[][] }).errors?.[1]?.[0];
      return isRecord(issue.input) && inner ? `${inner.path.map(String).join('.')}: ${inner.message}` : POLICIES;
    },
  },
);
export type GroupPolicy = z.infer<typeof GroupPolicySchema>;

/**
 * A parallel group: branches (each one step, gated and run on its own, concurrently) and the policy that
 * decides the group. Groups do not nest. Branch ids default to `<groupId>.b<n>`; the group id to `g<n>`.
 */
export const ParallelGroupSchema = z
  .strictObject({
    groupId: Id.optional(),
    parallel: z
      .array(SagaStepSchema)
      .min(1, 'a parallel group needs at least one branch')
      .max(GROUP_MAX_BRANCHES, `a parallel group has at most ${GROUP_MAX_BRANCHES} branches`),
    policy: GroupPolicySchema,
  })
  .superRefine((g, ctx) => {
    if (typeof g.policy === 'object' && g.policy.atLeast > g.parallel.length)
      ctx.addIssue({
        code: 'custom',
        path: ['policy', 'atLeast'],
        message: `atLeast ${g.policy.atLeast} is more than the group's ${g.parallel.length} branches`,
      });
  });
export type ParallelGroup = z.output<typeof ParallelGroupSchema>;

/** A union's refusal says what was wrong with the entry it was meant to be (a step or a group), not "invalid input". */
function entryRefusal(issue: {
  input?: unknown;
  errors?: readonly (readonly { path: PropertyKey[]; message: string }[])[];
}) {
  const input = issue.input;
  const asGroup = isRecord(input) && Object.hasOwn(input, 'parallel');
  if (asGroup && Array.isArray(input.parallel)) {
    const nested = input.parallel.findIndex((b) => isRecord(b) && Object.hasOwn(b, 'parallel'));
    if (nested >= 0) return `parallel.${nested}: groups do not nest: a branch is one step`;
  }
  const first = issue.errors?.[asGroup ? 1 : 0]?.[0];
  const what = asGroup ? 'parallel group' : 'step';
  if (!first) return `must be a step {actionId, agentDid, …} or a parallel group {parallel: […], policy}`;
  return `invalid ${what}: ${first.path.length ? `${first.path.map(String).join('.')}: ` : ''}${first.message}`;
}

/** One entry of a saga's step list: a step, or a parallel group of steps. */
export const SagaEntrySchema = z.union([SagaStepSchema, ParallelGroupSchema], { error: entryRefusal });
export type SagaEntry = z.output<typeof SagaEntrySchema>;
export type SagaEntryInput = z.input<typeof SagaEntrySchema>;

export const isParallelGroup = (e: SagaEntry | SagaEntryInput): e is ParallelGroup =>
  Object.hasOwn(e as object, 'parallel');

/** A group as its saga runs it: its id, policy and the ids of its branches (contiguous in the saga's steps). */
export const SagaGroupSchema = z.strictObject({
  groupId: Id,
  policy: GroupPolicySchema,
  branches: z.array(Id).min(1).max(GROUP_MAX_BRANCHES),
});
export type SagaGroup = z.infer<typeof SagaGroupSchema>;

/**
 * The steps of a saga's entries, in order, with their ids settled — a step at index i is `step-<i+1>`, as
 * before groups — and the groups they form. Branches become steps named like their group (`g1.b2`), so
 * digests, approvals, budgets and the audit name the branch.
 */
export function flattenEntries<S extends { stepId?: string }>(
  entries: readonly (S | { groupId?: string; parallel: readonly S[]; policy: GroupPolicy })[],
): { steps: (S & { stepId: string })[]; groups: SagaGroup[] } {
  const steps: (S & { stepId: string })[] = [];
  const groups: SagaGroup[] = [];
  entries.forEach((e, i) => {
    if (!Object.hasOwn(e, 'parallel')) {
      const s = e as S;
      steps.push({ ...s, stepId: s.stepId ?? `step-${i + 1}` });
      return;
    }
    const g = e as { groupId?: string; parallel: readonly S[]; policy: GroupPolicy };
    const groupId = g.groupId ?? `g${groups.length + 1}`;
    const branches = g.parallel.map((b, j) => ({ ...b, stepId: b.stepId ?? `${groupId}.b${j + 1}` }));
    steps.push(...branches);
    groups.push({ groupId, policy: g.policy, branches: branches.map((b) => b.stepId) });
  });
  return { steps, groups };
}

export const SagaStepsSchema = z
  .array(SagaEntrySchema)
  .min(1, 'a saga needs at least one step')
  .max(SAGA_MAX_STEPS, `a saga has at most ${SAGA_MAX_STEPS} steps`)
  .superRefine((entries, ctx) => {
    const { steps, groups } = flattenEntries(entries);
    if (steps.length > SAGA_MAX_STEPS)
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `a saga has at most ${SAGA_MAX_STEPS} steps, branches of its groups included (has ${steps.length})`,
      });
    // Ids are unique across steps, groups and branches (a branch id names its step everywhere).
    const seen = new Set<string>();
    const note = (id: string, path: PropertyKey[]) => {
      if (seen.has(id)) ctx.addIssue({ code: 'custom', path, message: `duplicate step id ${id}` });
      seen.add(id);
    };
    let k = 0;
    let g = 0;
    entries.forEach((e, i) => {
      if (!isParallelGroup(e)) return note(steps[k++]!.stepId, [i, 'stepId']);
      const group = groups[g++]!;
      note(group.groupId, [i, 'groupId']);
      group.branches.forEach((id, j) => note(id, [i, 'parallel', j, 'stepId']));
      k += group.branches.length;
    });
  });

/** startSaga: a saga of this session, started by the session as its child. */
export const StartSagaRequestSchema = z
  .strictObject({
    sagaId: Id.optional(),
    description: z.string().max(500).optional(),
    steps: SagaStepsSchema,
    /** SPEC §14: the saga's failure policy (absent: compensate). */
    onFailure: OnFailureSchema.optional(),
    auth,
  })
  .refine(
    (v) => jsonSize(v) <= SAGA_REQUEST_MAX_BYTES,
    `a saga request is at most ${SAGA_REQUEST_MAX_BYTES} bytes of JSON`,
  );
export type StartSagaRequest = z.input<typeof StartSagaRequestSchema>;
export type StartSagaRequestParsed = z.output<typeof StartSagaRequestSchema>;

// ── Evidence: approvals, rejections, witnesses (SPEC §11.5) ─────────────────
// Requests to the session, bound to the step's digest; the session decides
// whether they count.

export const ApprovalRequestSchema = z.strictObject({
  sagaId: Id,
  stepId: Id,
  digest: DigestSchema,
  approverDid: DidSchema,
  auth,
});
export type ApprovalRequest = z.infer<typeof ApprovalRequestSchema>;

export const RejectionRequestSchema = z.strictObject({
  sagaId: Id,
  stepId: Id,
  digest: DigestSchema,
  approverDid: DidSchema,
  reason: z.string().min(1, 'a rejection needs a reason').max(500),
  auth,
});
export type RejectionRequest = z.infer<typeof RejectionRequestSchema>;

export const WitnessRequestSchema = z.strictObject({
  sagaId: Id,
  stepId: Id,
  digest: DigestSchema,
  witnessDid: DidSchema,
  auth,
});
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
  /** SPEC §12: 1 quarantined (read-only actions only), 2 killed (nothing); absent or 0: neither. */
  restriction: z.union([z.literal(0), z.literal(1), z.literal(2)]).optional(),
  /** An active elevation (SPEC §12): the ring it grants until `until` (epoch ms, workflow time). */
  elevation: z
    .strictObject({ ring: z.union([z.literal(1), z.literal(2)]), until: z.number() })
    .nullable()
    .optional(),
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

/** A step as the session hands it to its saga: ids settled and its digest (SPEC §11.5). */
export type ResolvedStep = Omit<SagaStep, 'stepId'> & { stepId: string; digest: string };
/** leased: its start holds a rate token and its budget (SPEC §12); false: the saga claims it from the session at its time. Absent: leased. */
/** SPEC §11.5: what approvals and witnesses of a step are bound to — and what a turn's direct step is checked by. */
export function stepDigest(step: {
  sessionId: string;
  sagaId: string;
  stepId: string;
  actionId: string;
  agentDid: string;
  input: unknown;
}): string {
  const { sessionId, sagaId, stepId, actionId, agentDid, input } = step;
  return sha256Hex(canonicalJson({ sessionId, sagaId, stepId, actionId, agentDid, input: input ?? null }));
}

/** The failure of a turn's direct step the session does not hold as appended (docs/TURNS.md): it did not act. */
export const STEP_NOT_APPENDED = 'StepNotAppended';

export const ResolvedStepSchema = SagaStepSchema.extend({
  stepId: Id,
  digest: DigestSchema,
  leased: z.boolean().optional(),
});

/**
 * The saga workflow's start input. Only its session gives it (the saga checks
 * its parent): the view it starts from is the session's, at the start.
 */
export const SagaWorkflowInputSchema = z
  .strictObject({
    sessionId: SessionIdSchema,
    sagaId: Id,
    description: z.string().max(500).optional(),
    steps: z.array(ResolvedStepSchema).max(SAGA_MAX_STEPS),
    agents: z.array(AgentViewSchema).max(SAGA_MAX_STEPS),
    actions: z.array(ActionViewSchema).max(SAGA_MAX_STEPS),
    quorum: z.number().int().min(1).max(100),
    /**
     * An open saga (SPEC §13): an agent's turn, whose steps arrive one at a time through the session. Its steps
     * start empty; the saga reads each appended step from its session. `deadline`: epoch ms (workflow time).
     * `direct`: its steps may be brought by its agent (`takeStep`), each checked with the session by the
     * step's own activity (docs/TURNS.md); a turn opened before that shipped reads every step.
     */
    turn: z
      .strictObject({
        agentDid: DidSchema,
        deadline: z.number().int().nonnegative(),
        direct: z.literal(true).optional(),
      })
      .optional(),
    /** SPEC §14: the saga's failure policy (absent: compensate). */
    onFailure: OnFailureSchema.optional(),
    /** SPEC §14: a fork — the saga and step it continues from. */
    forkedFrom: z.strictObject({ sagaId: Id, stepId: Id }).optional(),
    /** Its parallel groups (SPEC §14): each names its branches, contiguous steps of `steps`. Absent: none. */
    groups: z.array(SagaGroupSchema).max(SAGA_MAX_STEPS).optional(),
    /**
     * Format 2: the saga answers a compact outcome (src/contract/sagaOutcome.ts; its full snapshot is its
     * `sagaState` query). Absent: a saga started before, which answers its full snapshot, so its history
     * replays as it ran. The session always sends it: Temporal does not compare a child's input on replay.
     */
    format: z.literal(2).optional(),
  })
  .refine((v) => v.turn !== undefined || v.steps.length >= 1, {
    path: ['steps'],
    message: 'a saga needs at least one step',
  })
  .superRefine((v, ctx) => {
    const ids = v.steps.map((s) => s.stepId);
    const grouped = new Set<string>();
    (v.groups ?? []).forEach((g, i) => {
      const first = ids.indexOf(g.branches[0]!);
      const contiguous = first >= 0 && g.branches.every((b, j) => ids[first + j] === b && !grouped.has(b));
      if (!contiguous)
        ctx.addIssue({
          code: 'custom',
          path: ['groups', i],
          message: `group ${g.groupId}: its branches must be contiguous steps of no other group`,
        });
      for (const b of g.branches) grouped.add(b);
    });
  });
export type SagaWorkflowInput = z.input<typeof SagaWorkflowInputSchema>;
