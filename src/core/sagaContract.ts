/**
 * The part of the contract a saga workflow reads — ids, steps, their groups,
 * a step's digest, the view a saga holds of its session — in a module of its
 * own: every workflow run builds the zod schemas of the modules it imports
 * afresh (workflows/index.ts), and a saga needs only these. The requests to
 * the session about sagas, which a saga never parses, are in sagaRequests.ts
 * (issue 20). src/contract/index.ts re-exports both.
 */
import { z } from 'zod';
import { DidSchema, SigmaSchema } from './common';
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
