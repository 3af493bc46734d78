/**
 * How the session reads a saga's answer (issue 20): a saga started with format 2, 3 or 4 answers its compact
 * outcome (src/contract/sagaOutcome.ts), parsed strictly — format 3's steps named from the session's own
 * record of the saga, format 4's also its id and the steps it left out (committed plainly); one started before answered its full snapshot, read as its compact outcome with the
 * same result, so a recorded session history settles it as it ran. Either comes from an authentic source
 * only: the child's completion to this run, or an activity's read by id.
 */
import * as wf from '@temporalio/workflow';
import {
  SagaOutcomeSchema,
  isCompactOutcome,
  sagaOutcomeOf,
  settledOutcome4Of,
  settledOutcomeOf,
  type SettledOutcome,
  type SagaOutcomeStep,
} from '../../src/contract/sagaOutcome';
import type { SagaSnapshot } from '../../src/contract/sagaTypes';
import type { SagaRecord } from '../../src/contract/sessionTypes';

/** What settle reads: the saga's compact outcome; `digests` only from a full snapshot (else the record's). */
export interface Settled {
  outcome: SettledOutcome;
  digests?: ReadonlyMap<string, string>;
}

/** What a saga's end told the session: its outcome, or (none) why not. */
export interface Ended {
  settled: Settled | null;
  failure: string | null;
}

/** A full snapshot, as an older saga answers it, read as its compact outcome (its digests kept beside it). */
export const settledFromSnapshot = (snap: SagaSnapshot): Settled => ({
  outcome: sagaOutcomeOf(snap),
  // A Map: an older saga's step ids are client-chosen ("__proto__" is an id).
  digests: new Map(Object.entries(snap.digests)),
});

/**
 * A saga's answer, as its workflow result or a failure's details[0]. Nothing (null): no outcome. An answer that
 * is no outcome is refused with what was wrong: the session records nothing from it, as a malformed snapshot
 * never settled a saga (nor is it recovered as lost: its history says it ended).
 */
export function endedWith(answer: unknown, saga: SagaRecord | undefined): Ended {
  if (!answer) return { settled: null, failure: null };
  if (typeof answer !== 'object') throw new Error(`a saga's outcome is malformed: ${typeof answer}, not an object`);
  if (!isCompactOutcome(answer)) return { settled: settledFromSnapshot(answer as SagaSnapshot), failure: null };
  const parsed = SagaOutcomeSchema.safeParse(answer);
  if (!parsed.success)
    throw new Error(
      `a saga's outcome is malformed: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  const outcome = parsed.data;
  if (outcome.format === 2) return { settled: { outcome }, failure: null };
  const held = (id: string) => givenStep(saga, id);
  if (outcome.format === 3) return { settled: { outcome: settledOutcomeOf(outcome, held) }, failure: null };
  if (!saga) throw new Error(`a saga's outcome is malformed: format 4 names a saga this session holds no record of`);
  return { settled: { outcome: settledOutcome4Of(outcome, saga, held) }, failure: null };
}

/** A step as the session gave it to its saga: its action, and the agent it was given for (before any hand-off). */
function givenStep(saga: SagaRecord | undefined, stepId: string): { agentDid: string; actionId: string } | undefined {
  const held = saga?.steps.find((s) => s.stepId === stepId);
  if (!held) return undefined;
  const from = held.handedFrom;
  return { agentDid: from ? (from.given ?? from.agentDid) : held.agentDid, actionId: held.actionId };
}

/** The saga ended as a failed workflow (compensated, escalated, failed): its answer is in the failure's details. */
export function endedWithFailure(err: unknown, saga: SagaRecord | undefined): Ended {
  let cause: unknown = err;
  while (
    cause instanceof wf.ChildWorkflowFailure ||
    (cause instanceof wf.TemporalFailure && !(cause instanceof wf.ApplicationFailure) && cause.cause)
  ) {
    cause = (cause as wf.TemporalFailure).cause;
  }
  if (
    cause instanceof wf.ApplicationFailure &&
    cause.type &&
    ['SagaCompensated', 'SagaEscalated', 'SagaFailed'].includes(cause.type)
  ) {
    const answer: unknown = cause.details?.[0];
    if (answer && typeof answer === 'object') return endedWith(answer, saga);
  }
  return { settled: null, failure: (cause as Error)?.message ?? String(err) };
}

/**
 * The digest a step of the outcome ran under, from the session's record (taken before its steps are cleared):
 * the record's, or — a kill handed the step on and the saga never learned it — the one it had before.
 */
export function digestOf(saga: SagaRecord, settled: Settled, step: SagaOutcomeStep): string {
  if (settled.digests) return settled.digests.get(step.stepId) ?? '';
  const held = saga.steps.find((s) => s.stepId === step.stepId);
  if (!held) return '';
  if (held.agentDid === step.agentDid) return held.digest;
  return held.handedFrom?.agentDid === step.agentDid ? held.handedFrom.digest : '';
}
