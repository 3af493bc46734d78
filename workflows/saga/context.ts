/**
 * One saga run's context: what its session gave it (the input, the view it
 * holds of agents and actions), the saga's state machine (src/core/saga.ts),
 * and what the run keeps beside it. The walk, the gate and the compensation
 * are module functions over this one object.
 */
import * as wf from '@temporalio/workflow';
import type { createActivities } from '../../activities';
import { parse } from '../../src/core/common';
import { SessionIdSchema, type ActionView, type AgentView } from '../../src/core/sagaContract';
import {
  SAGA_START_FORMAT,
  SagaWorkflowInputSchema,
  newerStartFormat,
  resolveStartInput,
  type SagaStartInput,
  type SagaWorkflowInput,
} from '../../src/core/sagaStart';
import { addStep, createSaga, type SagaState } from '../../src/core/saga';
import { groupStates } from '../../src/core/groups';
import type { SagaSnapshot } from '../../src/contract/sagaTypes';
import { sessionWorkflowId } from '../definitions';
import { sessionIdOfWorkflowId } from '../../src/contract/messageNames';
import { governed } from '../failures';
import { notFromSession } from './failures';

type Activities = ReturnType<typeof createActivities>;
export const { executeStep, compensateStep } = wf.proxyActivities<Activities>({ startToCloseTimeout: '5 minutes' });
export const { readStepGrant, readTurn } = wf.proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '500 milliseconds', backoffCoefficient: 2 },
});

export type SagaStepState = SagaState['steps'][number];
/** A step's execution in flight: a kill of its agent cancels its scope (SPEC §12). */
export interface StepRun {
  stepId: string;
  agentDid: string;
  scope: wf.CancellationScope;
  killed: boolean;
}
/** Every step execution in flight: the sequential step's, or a group's branches'. */
export const runningSteps = (ctx: SagaContext): StepRun[] => [...(ctx.running ? [ctx.running] : []), ...ctx.branchRuns];
/** The start input as its schema parses it (defaults filled in), every step with its digest. */
export type SagaInput = SagaStartInput;

export interface SagaContext {
  readonly input: SagaInput;
  readonly sessionId: string;
  readonly sagaId: string;
  readonly workflowId: string;
  readonly specs: Map<string, SagaInput['steps'][number]>;
  /** The view the session gave, as pushes and the session's own answers have since changed it. */
  readonly agents: Map<string, AgentView>;
  readonly actions: Map<string, ActionView>;
  sessionState: string;
  readonly saga: SagaState;
  readonly grants: Map<string, { approvals: string[]; witness: string | null }>;
  readonly compensationOrder: string[];
  waiting: SagaSnapshot['waiting'];
  failedStepId: string | null;
  error: string | null;
  cancelled: boolean;
  woken: boolean;
  /** Wake-ups so far: a gate waits for one after its read (concurrent branches each see every wake-up). */
  wakes: number;
  /** The step running now, in a scope of its own: a kill of its agent cancels it. */
  running: StepRun | null;
  /** The branches of a parallel group running now (SPEC §14), each in a scope of its own like `running`. */
  readonly branchRuns: Set<StepRun>;
  /** Set when the session continued as new: its new run learns our end from a wake-up, then reads us by id. */
  notifySessionOnEnd: boolean;
  /** What HvPendingApprovals holds for the waiting step (null: nothing). */
  pendingIndexed: string | null;
  /** A turn (SPEC §13) its agent aborted, whose deadline passed or whose agent was killed: it compensates. */
  gaveUp: boolean;
  /** SPEC §14: the failed step awaiting its operator (operator.ts), null otherwise. */
  awaitingOperator: NonNullable<SagaSnapshot['awaitingOperator']> | null;
  /** A turn's direct steps (docs/TURNS.md, direct.ts): brought by `takeStep`, waiting to be taken. */
  readonly directQueue: SagaInput['steps'];
  /** The steps run as direct steps: their activity checks them with the session on every attempt. */
  readonly directSteps: Set<string>;
  /** Direct steps that did not run, and why: their `takeStep` answers so. */
  readonly notRun: Map<string, string>;
  /** Direct steps left to the session's word (the next read of the turn): not run by then, they did not run. */
  readonly deferred: Set<string>;
  /** The turn's walk is over: a `takeStep` still waiting answers with what its step came to. */
  walkOver: boolean;
}

/** A step of the saga's state machine from its spec and its action as declared. */
export function addSpecStep(saga: SagaState, spec: SagaInput['steps'][number], action: ActionView | undefined) {
  return addStep(
    saga,
    {
      stepId: spec.stepId,
      actionId: spec.actionId,
      agentDid: spec.agentDid,
      executeApi: action?.executeApi ?? undefined,
      undoApi: action?.undoApi ?? undefined,
      timeoutSeconds: spec.timeoutSeconds,
      maxRetries: spec.retry.maximumAttempts - 1,
      initialIntervalMs: Math.round(spec.retry.initialIntervalSeconds * 1000),
      backoffCoefficient: spec.retry.backoffCoefficient,
      maximumIntervalMs: spec.retry.maximumIntervalSeconds
        ? Math.round(spec.retry.maximumIntervalSeconds * 1000)
        : undefined,
    },
    Date.now(),
  );
}

/**
 * Its session's id — refused (SAGA_NOT_STARTED_BY_SESSION) unless that session is its parent. Format 4 on reads
 * it from its parent's workflow id (its history's start event, not its input); before it the input gave it,
 * checked against the parent.
 */
function sessionIdOf(raw: SagaWorkflowInput, info: wf.WorkflowInfo): string {
  const given = raw as { format?: unknown; sessionId?: unknown } | null;
  const parent = info.parent?.workflowId;
  const format = typeof given?.format === 'number' ? given.format : 1;
  const sessionId = format >= 4 ? sessionIdOfWorkflowId(parent) : given?.sessionId;
  if (typeof sessionId !== 'string' || parent !== sessionWorkflowId(sessionId)) notFromSession(raw);
  if (!SessionIdSchema.safeParse(sessionId).success) notFromSession(raw); // no session has that id
  return sessionId;
}

/** The saga's context from its start input — refused unless its session started it (its parent). */
export function createSagaContext(raw: SagaWorkflowInput): SagaContext {
  const info = wf.workflowInfo();
  const parentSessionId = sessionIdOf(raw, info);
  // Its session runs a newer build (old and new workers share the task queue in a rolling upgrade): failing
  // the workflow task, which Temporal retries, hands the saga to a worker that reads the format. Failing the
  // saga would lose a start its session granted. Only past the parent check: a forged start is refused above.
  const newer = newerStartFormat(raw);
  if (newer !== undefined)
    throw new Error(
      `saga ${info.workflowId}: its start input is format ${newer}, newer than this build reads (up to ${SAGA_START_FORMAT}); its workflow task is retried until a worker of a newer build runs it`,
    );
  const input = governed(() => resolveStartInput(parse(SagaWorkflowInputSchema, raw, 'saga input'), parentSessionId));
  const { sessionId, sagaId } = input;
  const actions = new Map<string, ActionView>(input.actions.map((a) => [a.actionId, a]));
  const saga: SagaState = governed(() => {
    const s = createSaga({ sagaId, sessionId, at: Date.now() });
    for (const spec of input.steps) addSpecStep(s, spec, actions.get(spec.actionId));
    if (input.groups?.length) s.groups = groupStates(input.groups);
    return s;
  });
  return {
    input,
    sessionId,
    sagaId,
    workflowId: info.workflowId,
    specs: new Map(input.steps.map((s) => [s.stepId, s])),
    agents: new Map<string, AgentView>(input.agents.map((a) => [a.did, a])),
    actions,
    sessionState: 'active',
    saga,
    grants: new Map(),
    compensationOrder: [],
    waiting: null,
    failedStepId: null,
    error: null,
    cancelled: false,
    woken: false,
    wakes: 0,
    running: null,
    branchRuns: new Set(),
    notifySessionOnEnd: false,
    pendingIndexed: null,
    gaveUp: false,
    awaitingOperator: null,
    directQueue: [],
    directSteps: new Set(),
    notRun: new Map(),
    deferred: new Set(),
    walkOver: false,
  };
}

export const snapshot = (ctx: SagaContext): SagaSnapshot => ({
  saga: ctx.saga,
  workflowId: ctx.workflowId,
  sessionId: ctx.sessionId,
  digests: Object.fromEntries(ctx.input.steps.map((s) => [s.stepId, s.digest])),
  grants: Object.fromEntries(ctx.grants),
  waiting: ctx.waiting,
  compensationOrder: ctx.compensationOrder,
  failedStepId: ctx.failedStepId,
  error: ctx.error,
  cancelled: ctx.cancelled,
  // SPEC §14, only when there is something to say: a snapshot of an earlier saga is what it was.
  ...(ctx.awaitingOperator ? { awaitingOperator: ctx.awaitingOperator } : {}),
  ...(ctx.input.forkedFrom ? { forkedFrom: ctx.input.forkedFrom } : {}),
});

export function publishDetails(ctx: SagaContext): void {
  const rows = ctx.saga.steps.map(
    (s) => `| ${s.stepId} | ${s.actionId} | ${s.agentDid} | ${s.state} | ${s.attempts} |`,
  );
  // The Web UI's card can clip its last lines: what matters comes first.
  wf.setCurrentDetails(
    [
      `## Saga ${ctx.sagaId} — ${ctx.saga.state}`,
      `Session \`${ctx.sessionId}\`${ctx.input.description ? ` · ${ctx.input.description}` : ''}`,
      ...(ctx.input.forkedFrom
        ? [`Forked from saga ${ctx.input.forkedFrom.sagaId} at ${ctx.input.forkedFrom.stepId}`]
        : []),
      ...(ctx.error ? ['', `**Failure:** ${ctx.error}`] : []),
      ...(ctx.waiting
        ? [
            '',
            `Waiting for ${ctx.waiting.waitFor} on ${ctx.waiting.stepId} (digest \`${ctx.input.steps.find((s) => s.stepId === ctx.waiting!.stepId)?.digest}\`)`,
          ]
        : []),
      ...(ctx.compensationOrder.length ? ['', `Compensated in order: ${ctx.compensationOrder.join(' → ')}`] : []),
      ...(ctx.saga.groups ?? []).map(
        (g) =>
          `\nGroup ${g.groupId} (${g.needed} of ${g.branches.length} needed): ${g.state}${g.kept.length ? `, kept ${g.kept.join(', ')}` : ''}`,
      ),
      '',
      '| step | action | agent | state | attempts |',
      '|---|---|---|---|---|',
      ...rows,
    ].join('\n'),
  );
}
