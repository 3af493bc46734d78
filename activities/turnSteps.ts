/**
 * A turn's direct step (SPEC §13, docs/TURNS.md): its agent brings it to the saga (`takeStep`), which no one
 * signs — so before every attempt acts, the step's own activity asks the session (a query: authentic, it
 * records nothing) and acts only for the step the session appended, leased and allows now: the same digest
 * (so the same action, agent and input), the same options, the action as declared now.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { canonicalJson } from '../src/core/hash';
import { STEP_NOT_APPENDED, stepDigest } from '../src/core/sagaContract';
import type { GateDecision } from '../src/core/gate';
import type { StepGrant } from '../src/contract/sessionTypes';
import type { StepTask } from './steps';

/** The options a direct step was scheduled with, as its saga took them from `takeStep`. */
export interface DirectOptions {
  timeoutSeconds: number;
  retry: unknown;
}
export type DirectStepTask = StepTask & { direct: DirectOptions };
/** Reads the session's grant for a step (the stepGrant query). */
export type ReadGrant = (task: StepTask) => Promise<StepGrant>;

/**
 * The session's decision for this attempt of a direct step, once it is sure the step is the session's. A
 * step the session does not hold as this turn's direct step is refused before it acts — on a first attempt
 * as not appended (nothing acted), on a later one as a denial (an earlier attempt may have acted).
 */
export async function checkDirectStep(
  task: DirectStepTask,
  attempt: number,
  readGrant: ReadGrant | undefined,
): Promise<GateDecision> {
  const refuse = (why: string) =>
    ApplicationFailure.nonRetryable(
      `step ${task.stepId} of turn ${task.sagaId} ${attempt === 1 ? 'was not run' : `attempt ${attempt} denied`}: ${why}`,
      attempt === 1 ? STEP_NOT_APPENDED : 'GateDenied',
    );
  if (!readGrant) throw refuse('this worker cannot ask the session');
  let grant: StepGrant;
  try {
    grant = await readGrant(task);
  } catch (err) {
    throw refuse(`the session did not grant it: ${(err as Error)?.message ?? String(err)}`);
  }
  const held = grant.turnStep;
  if (!held)
    throw refuse('the session holds it as no direct step of the turn (not appended and leased, or the turn moved on)');
  const digest = stepDigest({ ...task, input: task.input });
  if (digest !== task.digest || digest !== held.digest)
    throw refuse(
      `its action, agent or input is not what was appended (digest ${digest}, the session's ${held.digest})`,
    );
  const options = (s: DirectOptions) => canonicalJson({ timeoutSeconds: s.timeoutSeconds, retry: s.retry });
  if (options(task.direct) !== options(held))
    throw refuse(`its timeout or retries are not what was appended (${options(held)})`);
  const a = grant.action;
  if (
    !a ||
    a.executeApi !== task.executeApi ||
    (a.undoApi ?? null) !== task.undoApi ||
    !!a.readOnly !== !!task.readOnly
  )
    throw refuse(`action ${task.actionId} is not declared as its saga holds it`);
  return grant.decision;
}
