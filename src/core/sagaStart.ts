/**
 * A saga's start input: what its session gives it (only its session: the saga checks its parent before it
 * reads a byte of it), written twice to history — in the session's StartChildWorkflowExecutionInitiated and
 * in the saga's WorkflowExecutionStarted — so it says what the saga cannot know and no more (issue 20).
 *
 * Format 2 (`format: 2`): each step as requested — a field at its schema's default is left out and the
 * saga's parse puts it back — with no digest: the saga computes it with `stepDigest`, the session's own
 * function of the same values, so it is the digest the session recorded and approvals bind to (SPEC §11.5);
 * `leased` only when false (absent: leased, as it always read). A view leaves out its fields at their
 * defaults (an agent's bondSum 0, ringCap 0, active; an action's readOnly and admin false); and the saga
 * answers a compact outcome, not its snapshot. Format 3 (`format: 3`) leaves out, beside that, what the saga
 * derives: a step's id when it is the one the session assigns by default (`step-<n>` of its entry), an action's
 * omega when it is its reversibility's default; the saga's answer leaves out what its session holds (agents,
 * actions, nulls), and its HvSagaState is written only when the workflow's status cannot say it (listing reads
 * a missing one from the status: src/client/lists.ts). Format 4 (`format: 4`) leaves out, beside that, the
 * session id (the saga reads it from its parent's workflow id), and the saga's answer its id and the steps that
 * committed plainly (src/contract/sagaOutcome.ts: SagaOutcome4Schema). Format 5 (`format: 5`) leaves out,
 * beside that, an action's undoApi when it is its executeApi (a handler that both does and undoes); it answers
 * format 4's outcome.
 * Format 1 (no `format`: every recorded history before it) gives
 * every field and each step's digest, and the saga uses them as given and answers its full snapshot.
 */
import { z } from 'zod';
import { DidSchema, parseContext } from './common';
import { OMEGA } from './ringRules';
import {
  ActionViewSchema,
  AgentViewSchema,
  DigestSchema,
  Id,
  OnFailureSchema,
  SAGA_MAX_STEPS,
  SagaGroupSchema,
  SagaStepSchema,
  SessionIdSchema,
  StepRetrySchema,
  stepDigest,
  type ActionView,
  type AgentView,
  type SagaGroup,
  type SagaStep,
} from './sagaContract';

/** A step of the start input, its id settled. Format 1 gives its digest; format 2 leaves it to the saga. */
export const StartStepSchema = SagaStepSchema.extend({
  /** Format 3 leaves it out when it is its entry's default, `step-<n>` (a group's branches always give theirs). */
  stepId: Id.optional(),
  digest: DigestSchema.optional(),
  /** SPEC §12: its start holds a rate token and its budget; false: the saga claims it from the session at its time. Absent: leased. */
  leased: z.boolean().optional(),
});

/**
 * An agent's view in the start input: absent, bondSum and ringCap are 0 and active is true (format 2 leaves
 * them out then), as an absent restriction is 0 — a view only its session writes (the saga checks its parent).
 */
export const StartAgentViewSchema = AgentViewSchema.extend({
  bondSum: AgentViewSchema.shape.bondSum.default(0),
  ringCap: AgentViewSchema.shape.ringCap.default(0),
  active: z.boolean().default(true),
});

/** An action's view in the start input: absent, readOnly and admin are false (format 2 leaves them out then). */
export const StartActionViewSchema = ActionViewSchema.extend({
  readOnly: z.boolean().default(false),
  admin: z.boolean().default(false),
  /** Format 3 leaves it out when it is its reversibility's default. */
  omega: ActionViewSchema.shape.omega.optional(),
  /** Format 5 leaves it out when it is the executeApi (null, none, is always given). */
  undoApi: ActionViewSchema.shape.undoApi.optional(),
});

/** The start input format this build's sessions write; it reads it and those before (format 1 gives none). */
export const SAGA_START_FORMAT = 5;
export const SAGA_START_FORMATS = [2, 3, 4, SAGA_START_FORMAT] as const;

/**
 * A format newer than this build reads: the input of a session on a newer build (a rolling upgrade whose old and
 * new workers share a task queue). Not a bad input: a worker of that build reads it.
 */
export function newerStartFormat(raw: unknown): number | undefined {
  const format = typeof raw === 'object' && raw !== null ? (raw as { format?: unknown }).format : undefined;
  return typeof format === 'number' && Number.isInteger(format) && format > SAGA_START_FORMAT ? format : undefined;
}

/**
 * The saga workflow's start input. Only its session gives it (the saga checks
 * its parent): the view it starts from is the session's, at the start.
 */
export const SagaWorkflowInputSchema = z
  .strictObject({
    /**
     * Format 2: steps as requested, digests computed by the saga, and the saga answers a compact outcome
     * (src/contract/sagaOutcome.ts; its full snapshot is its `sagaState` query). Absent: format 1, a saga started
     * before, which answers its full snapshot, so its history replays as it ran. The session always sends it:
     * Temporal does not compare a child's input on replay.
     */
    format: z.union(SAGA_START_FORMATS.map((f) => z.literal(f))).optional(),
    /** Format 4 leaves it out: the saga reads it from its parent's workflow id (its history's start event). */
    sessionId: SessionIdSchema.optional(),
    sagaId: Id,
    description: z.string().max(500).optional(),
    steps: z.array(StartStepSchema).max(SAGA_MAX_STEPS),
    agents: z.array(StartAgentViewSchema).max(SAGA_MAX_STEPS),
    actions: z.array(StartActionViewSchema).max(SAGA_MAX_STEPS),
    /** Format 3 leaves it out when it is the session config's default (START_QUORUM_DEFAULT). */
    quorum: z.number().int().min(1).max(100).optional(),
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
  })
  .refine((v) => v.turn !== undefined || v.steps.length >= 1, {
    path: ['steps'],
    message: 'a saga needs at least one step',
  })
  .superRefine((v, ctx) => {
    const format = v.format ?? 1;
    const before3 = format < 3;
    if (format >= 4 && v.sessionId !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['sessionId'],
        message: `format ${format} gives no session id: the saga reads it from its parent's workflow id`,
      });
    if (format < 4 && v.sessionId === undefined)
      ctx.addIssue({ code: 'custom', path: ['sessionId'], message: `format ${v.format ?? 1} gives the session id` });
    v.steps.forEach((s, i) => {
      if (v.format !== undefined && s.digest !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'digest'],
          message: `format ${v.format} gives no digest: the saga computes each step's`,
        });
      if (before3 && s.stepId === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'stepId'],
          message: 'only format 3 on leaves a step id out',
        });
      if (v.format === undefined && s.digest === undefined)
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'digest'], message: 'format 1 gives each step its digest' });
    });
    if (before3 && v.quorum === undefined)
      ctx.addIssue({ code: 'custom', path: ['quorum'], message: 'only format 3 on leaves the quorum out' });
    v.actions.forEach((a, i) => {
      if (before3 && a.omega === undefined)
        ctx.addIssue({ code: 'custom', path: ['actions', i, 'omega'], message: 'only format 3 on leaves omega out' });
      if (format < 5 && a.undoApi === undefined)
        ctx.addIssue({ code: 'custom', path: ['actions', i, 'undoApi'], message: 'only format 5 leaves undoApi out' });
    });
    const ids = stepIdsOf(v.steps, v.groups);
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
export type StartStep = z.input<typeof StartStepSchema>;
export type StartActionView = z.input<typeof StartActionViewSchema>;
export type StartAgentView = z.input<typeof StartAgentViewSchema>;

/**
 * The session config's default consensusQuorum (src/core/session.ts; a unit test holds them equal): format 3
 * leaves a quorum at it out. Not imported, so a saga's run does not evaluate the session config's schemas.
 */
export const START_QUORUM_DEFAULT = 2;

/** Format 3: the quorum unless it is the default the saga puts back. */
export const startQuorum = (quorum: number): { quorum?: number } => (quorum === START_QUORUM_DEFAULT ? {} : { quorum });

type ParsedStartInput = z.output<typeof SagaWorkflowInputSchema>;
/** The start input as the saga holds it: every step with its id and digest, every action with its omega and undoApi. */
export type SagaStartInput = Omit<ParsedStartInput, 'sessionId' | 'steps' | 'actions' | 'quorum'> & {
  sessionId: string;
  quorum: number;
  steps: (ParsedStartInput['steps'][number] & { stepId: string; digest: string })[];
  actions: (ParsedStartInput['actions'][number] & { omega: number; undoApi: string | null })[];
};

/**
 * Where each step stands among its request's entries (flattenEntries), where a group (its branches, contiguous,
 * always named) is one entry: the entry's index for a step of its own, undefined for a group's branch.
 */
function entryIndexes(steps: readonly { stepId?: string }[], groups: readonly SagaGroup[]): (number | undefined)[] {
  const firstBranch = new Set(groups.map((g) => g.branches[0]!));
  const branch = new Set(groups.flatMap((g) => g.branches));
  let entry = 0;
  return steps.map((s) => {
    if (s.stepId !== undefined && branch.has(s.stepId)) {
      if (firstBranch.has(s.stepId)) entry++;
      return undefined;
    }
    return entry++;
  });
}

/** The id the session gives a step the request left unnamed, from its entry's place (flattenEntries). */
const defaultStepId = (entryIndex: number) => `step-${entryIndex + 1}`;

/** Each step's id, format 3's left-out ones put back as the session assigns them: `step-<n>` of its entry. */
export function stepIdsOf(steps: readonly { stepId?: string }[], groups: readonly SagaGroup[] = []): string[] {
  const entries = entryIndexes(steps, groups);
  return steps.map((s, i) => s.stepId ?? defaultStepId(entries[i]!));
}

/** The parsed start input with format 2's on digests computed (and what they left out put back): what format 1 gave. */
export function resolveStartInput(input: ParsedStartInput, parentSessionId?: string): SagaStartInput {
  // The schema refuses an input of format 1–3 without it; format 4's is its parent's (workflows/saga/context.ts).
  const sessionId = parentSessionId ?? input.sessionId;
  if (sessionId === undefined) throw new Error('a saga start input without its session id');
  const { sagaId } = input;
  if (input.format === undefined) return input as SagaStartInput; // format 1: the digests are the session's, given
  const ids = stepIdsOf(input.steps, input.groups);
  return {
    ...input,
    sessionId,
    quorum: input.quorum ?? START_QUORUM_DEFAULT,
    actions: input.actions.map((a) => ({
      ...a,
      omega: a.omega ?? OMEGA[a.reversibility].default,
      undoApi: a.undoApi === undefined ? a.executeApi : a.undoApi,
    })),
    steps: input.steps.map((s, i) => ({
      ...s,
      stepId: ids[i]!,
      digest: stepDigest({
        sessionId,
        sagaId,
        stepId: ids[i]!,
        actionId: s.actionId,
        agentDid: s.agentDid,
        input: s.input,
      }),
      leased: s.leased ?? true,
    })),
  };
}

// The defaults a format-2 step leaves out, as the schema fills them in.
const TIMEOUT_DEFAULT = SagaStepSchema.shape.timeoutSeconds.parse(undefined, parseContext);
const APPROVAL_DEADLINE_DEFAULT = SagaStepSchema.shape.approvalDeadlineSeconds.parse(undefined, parseContext);
const RETRY_DEFAULT = SagaStepSchema.shape.retry.parse(undefined, parseContext);
const RETRY_FIELD_DEFAULTS: Record<string, unknown> = StepRetrySchema.parse({}, parseContext);
const sameRetry = (a: SagaStep['retry'], b: SagaStep['retry']) =>
  a.maximumAttempts === b.maximumAttempts &&
  a.initialIntervalSeconds === b.initialIntervalSeconds &&
  a.backoffCoefficient === b.backoffCoefficient &&
  a.maximumIntervalSeconds === b.maximumIntervalSeconds;

/** Format 2: a parsed step as requested — what is at its default left out — and its lease only when it has none. */
export function requestedStep(step: SagaStep & { stepId: string }, leased: boolean): StartStep {
  const { stepId, actionId, agentDid, input, timeoutSeconds, retry, approvalDeadlineSeconds, onFailure } = step;
  // A retry left out is the step's default; one given fills the fields it leaves out with the retry's own.
  const retryGiven = Object.fromEntries(
    Object.entries(retry).filter(([k, v]) => v !== undefined && v !== RETRY_FIELD_DEFAULTS[k]),
  );
  return {
    stepId,
    actionId,
    agentDid,
    ...(input !== undefined ? { input } : {}),
    ...(timeoutSeconds !== TIMEOUT_DEFAULT ? { timeoutSeconds } : {}),
    ...(sameRetry(retry, RETRY_DEFAULT) ? {} : { retry: retryGiven }),
    ...(approvalDeadlineSeconds !== APPROVAL_DEADLINE_DEFAULT ? { approvalDeadlineSeconds } : {}),
    ...(onFailure !== undefined ? { onFailure } : {}),
    ...(leased ? {} : { leased: false }),
  };
}

/** Format 3: the steps without the ids the saga puts back (stepIdsOf): a step's that is its entry's default. */
export function withoutDefaultIds(steps: readonly StartStep[], groups: readonly SagaGroup[] = []): StartStep[] {
  const entries = entryIndexes(steps, groups);
  return steps.map((s, i) => {
    const entry = entries[i];
    if (entry === undefined || s.stepId !== defaultStepId(entry)) return s;
    const { stepId: _default, ...rest } = s;
    return rest;
  });
}

/**
 * Format 2: an action's view without readOnly and admin when they are false (their defaults); format 3 on also
 * without omega when it is its reversibility's default; format 5 also without undoApi when it is the executeApi.
 */
export function startActionView(view: ActionView, format: 2 | 3 | 4 | 5 = 2): StartActionView {
  const { actionId, readOnly, admin, reversibility, omega, executeApi, undoApi } = view;
  return {
    actionId,
    ...(readOnly ? { readOnly } : {}),
    ...(admin ? { admin } : {}),
    reversibility,
    ...(format >= 3 && omega === OMEGA[reversibility].default ? {} : { omega }),
    executeApi,
    ...(format >= 5 && undoApi !== null && undoApi === executeApi ? {} : { undoApi }),
  };
}

/** Format 2: an agent's view without bondSum, ringCap and active at their defaults (0, 0, true). */
export function startAgentView(view: AgentView): StartAgentView {
  const { did, sigmaRaw, bondSum, ringCap, active, restriction, elevation } = view;
  return {
    did,
    sigmaRaw,
    ...(bondSum !== 0 ? { bondSum } : {}),
    ...(ringCap !== 0 ? { ringCap } : {}),
    ...(active ? {} : { active }),
    ...(restriction !== undefined ? { restriction } : {}),
    ...(elevation !== undefined ? { elevation } : {}),
  };
}
