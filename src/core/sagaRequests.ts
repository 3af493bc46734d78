/**
 * The session-side requests about sagas — startSaga's steps and parallel groups, approvals, rejections,
 * witnesses, a step's grant — and the resolved step a turn hands over: schemas a saga workflow never
 * parses, in a module it does not import (issue 20). Every saga run builds the modules it loads afresh
 * (workflows/index.ts), so these, with the request `auth` they carry, are built only by those who parse
 * them: the session, the client, the CLI. src/contract/index.ts re-exports all of it.
 */
import { z } from 'zod';
import { DidSchema, isRecord } from './common';
import { auth } from './requestAuth';
import {
  DigestSchema,
  GROUP_MAX_BRANCHES,
  GroupPolicySchema,
  Id,
  OnFailureSchema,
  SAGA_MAX_STEPS,
  SAGA_REQUEST_MAX_BYTES,
  SagaStepSchema,
  flattenEntries,
  jsonSize,
} from './sagaContract';

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

export const ResolvedStepSchema = SagaStepSchema.extend({
  stepId: Id,
  digest: DigestSchema,
  /** SPEC §12: its start holds a rate token and its budget; false: the saga claims it from the session at its time. Absent: leased. */
  leased: z.boolean().optional(),
});
