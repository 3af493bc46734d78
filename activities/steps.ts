/**
 * Activities that run saga steps and their compensations. Timeouts, retries
 * and backoff are Temporal's (set by the saga workflow from the step
 * definition); these functions only do the work once per attempt.
 */
import { Context, ApplicationFailure, CancelledFailure } from '@temporalio/activity';
import type { Tracer } from '@opentelemetry/api';
import { stepHandler, type StepContext } from './handlers';
import { gateDecided } from './observe';
import type { GateDecision } from '../src/core/gate';
import { ATTR } from '../src/core/observability';
import { SAGA_WORKFLOW, SESSION_WORKFLOW, sagaWorkflowId } from '../src/contract/messages';
import { HTTP_TOOL_FAILURES, postToTool } from './httpTool';
import { NO_HTTP_TOOLS, type ToolPolicy } from './toolPolicy';
import { McpClients, NO_MCP_SERVERS } from './mcpClients';
import { callMcpTool, definitionChangeOf, MCP_MAY_HAVE_ACTED } from './mcpTool';
import type { ToolDefinitionChange } from '../src/core/toolDefinitions';
import { isMcpRef } from '../src/core/mcp';
import { checkDirectStep, type ReadGrant } from './turnSteps';
import type { z } from 'zod';
import {
  CompensationTaskSchema,
  parseTask,
  StepTaskSchema,
  withSagaIds,
  type CompensationTaskInput,
  type StepTaskInput,
} from './stepTask';

/**
 * One step as its saga hands it over, parsed (activities/stepTask.ts): what runs comes from the action's
 * registry entry, declared at join (SPEC §11.4) — `handler:<name>`, an http(s) endpoint at an origin the
 * session allows, or `mcp:<server>/<tool>#<pin>` at a server the worker configures.
 */
export type StepTask = z.infer<typeof StepTaskSchema>;
export type CompensationTask = z.infer<typeof CompensationTaskSchema>;

/** The gate every retry attempt passes before it acts (the saga's decision on the view it holds now). */
export type GateCheck = (sagaWorkflowId: string, task: StepTask) => Promise<GateDecision>;

/**
 * Whether a failed step may have acted — then its saga compensates it (SPEC §6).
 * Known not to have acted: a single attempt that failed with an answer (the
 * handler threw, the tool said 4xx, nothing to run). Anything else may have:
 * an earlier attempt (it may have timed out after acting), a request that got
 * no answer (network), a tool that answered 5xx.
 */
export interface StepFailureDetails {
  attempt: number;
  mayHaveActed: boolean;
  /** ToolDefinitionChanged: which MCP tool, and both hashes (its saga records them; its session quarantines the agent). */
  toolDefinition?: ToolDefinitionChange;
}

/**
 * HTTP tool failures after which the tool may have acted: a 5xx, a request
 * without a (complete) answer, a redirect (a POST answered 3xx may have done
 * its work first), an answer past the size limit (the tool answered 2xx).
 */
const MAY_HAVE_ACTED: ReadonlySet<string> = new Set([
  'HttpToolError',
  'StepResultTooLarge',
  HTTP_TOOL_FAILURES.noAnswer,
  HTTP_TOOL_FAILURES.redirect,
  HTTP_TOOL_FAILURES.tooLarge,
  ...MCP_MAY_HAVE_ACTED,
]);

function withActingDetails(err: unknown, attempt: number): unknown {
  const type = err instanceof ApplicationFailure ? (err.type ?? 'Error') : ((err as Error)?.name ?? 'Error');
  if (err instanceof CancelledFailure) return err;
  // A TypeError or an AbortError (the step's cancellation): the request may have reached the tool, with no answer back.
  const noAnswer = err instanceof TypeError || (err as Error)?.name === 'AbortError';
  const answered = err instanceof ApplicationFailure ? !MAY_HAVE_ACTED.has(type) : !noAnswer;
  const toolDefinition = err instanceof ApplicationFailure ? definitionChangeOf(err) : undefined;
  const details: StepFailureDetails = {
    attempt,
    mayHaveActed: attempt > 1 || !answered,
    ...(toolDefinition ? { toolDefinition } : {}),
  };
  return ApplicationFailure.create({
    message: (err as Error)?.message ?? String(err),
    type,
    nonRetryable: err instanceof ApplicationFailure ? (err.nonRetryable ?? false) : false,
    details: [details],
    cause: err instanceof Error ? err : undefined,
  });
}

/**
 * A step acts only for its own saga (N24): an attempt scheduled by any other workflow is refused before it acts
 * (its session may run only the undo of a saga that ended without an outcome, naming that saga: N7).
 * A worker stalled past the SDK's isolate timeout inside a saga's activation can leave that saga's continuations
 * to run inside the next activation of the same V8 context — another workflow's, e.g. its session's, which then
 * schedules the saga's step under its own id (a second key: the tool would act twice).
 */
function requireOwnSaga(ctx: Context, task: StepTask & { sagaWorkflowId?: string }, phase: 'execute' | 'undo'): void {
  const { workflowType, workflowExecution } = ctx.info;
  if (workflowType === SAGA_WORKFLOW) return;
  if (phase === 'undo' && workflowType === SESSION_WORKFLOW && task.sagaWorkflowId !== undefined) return;
  throw ApplicationFailure.nonRetryable(
    `step ${task.stepId} of saga ${task.sagaId} was scheduled by ${workflowType} ${workflowExecution?.workflowId ?? '?'}, not by its saga: a step acts only under its own saga`,
    'StepOutsideItsSaga',
  );
}

function stepContext(task: StepTask & { sagaWorkflowId?: string }, phase: 'execute' | 'undo'): StepContext {
  const ctx = Context.current();
  requireOwnSaga(ctx, task, phase);
  // The saga's own workflow id, which names its session too (N16): keys of two sessions never meet. A session
  // recovering a saga that ended without an outcome (N7) passes it, its activity being the session's.
  const workflowId =
    task.sagaWorkflowId ?? ctx.info.workflowExecution?.workflowId ?? sagaWorkflowId(task.sessionId, task.sagaId);
  return {
    // The workflow id and step id are the same on every attempt and every replay; an operator's retry (SPEC §14)
    // is a new round, with a key of its own.
    idempotencyKey: `${workflowId}/${task.stepId}/${phase}${task.round && task.round > 1 ? `/${task.round}` : ''}`,
    workflowId,
    sessionId: task.sessionId,
    sagaId: task.sagaId,
    stepId: task.stepId,
    actionId: task.actionId,
    agentDid: task.agentDid,
    attempt: ctx.info.attempt,
    activity: ctx,
  };
}

/**
 * POSTs JSON to an HTTP tool with an Idempotency-Key header, under the
 * worker's tool policy (activities/httpTool.ts: its origins, no private
 * addresses unless allowed, the address pinned, no redirects, a size limit);
 * 4xx other than 408/429 are not retried.
 */
async function callHttpTool(url: string, body: unknown, ctx: StepContext, policy: ToolPolicy): Promise<unknown> {
  const { status, text } = await postToTool(
    {
      url,
      body: JSON.stringify(body ?? null),
      headers: {
        'content-type': 'application/json',
        'idempotency-key': ctx.idempotencyKey,
        'x-hv-session-id': ctx.sessionId,
        'x-hv-agent-did': ctx.agentDid,
      },
      signal: ctx.activity.cancellationSignal,
    },
    policy,
  );
  if (status < 200 || status >= 300) {
    const message = `HTTP tool ${url} answered ${status}: ${text.slice(0, 200)}`;
    const permanent = status >= 400 && status < 500 && status !== 408 && status !== 429;
    throw permanent
      ? ApplicationFailure.nonRetryable(message, 'HttpToolRejected')
      : ApplicationFailure.retryable(message, 'HttpToolError');
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

const HANDLER_PREFIX = 'handler:';

/** Runs one declared API: a registered handler's execute or undo, an HTTP tool, or an MCP tool. */
async function runApi(
  api: string,
  phase: 'execute' | 'undo',
  task: CompensationTask,
  ctx: StepContext,
  toolPolicy: ToolPolicy,
  mcp: McpClients,
): Promise<unknown> {
  if (api.startsWith(HANDLER_PREFIX)) {
    const name = api.slice(HANDLER_PREFIX.length);
    const handler = stepHandler(name);
    if (!handler)
      throw ApplicationFailure.nonRetryable(
        `no step handler named "${name}" is registered with this worker`,
        'UnknownStepHandler',
      );
    if (task.readOnly && !handler.readOnly) {
      throw ApplicationFailure.nonRetryable(
        `action ${task.actionId} is declared read-only, but step handler "${name}" is not registered as read-only`,
        'InvalidStep',
      );
    }
    if (phase === 'execute') return (await handler.execute(task.input, ctx)) ?? null;
    if (!handler.undo) throw ApplicationFailure.nonRetryable(`step handler "${name}" has no undo`, 'NoUndo');
    return handler.undo(task.input, task.result, ctx);
  }
  if (/^https?:\/\//.test(api)) {
    // An HTTP tool's effects are unknown to the worker: it never runs for an action declared read-only.
    if (task.readOnly)
      throw ApplicationFailure.nonRetryable(
        `action ${task.actionId} is declared read-only: it cannot call an HTTP tool`,
        'InvalidStep',
      );
    return callHttpTool(
      api,
      phase === 'execute' ? { input: task.input ?? null } : { input: task.input ?? null, result: task.result ?? null },
      ctx,
      toolPolicy,
    );
  }
  if (isMcpRef(api)) {
    return callMcpTool(
      {
        api,
        phase,
        stepId: task.stepId,
        actionId: task.actionId,
        readOnly: task.readOnly ?? false,
        reversibility: task.reversibility,
        input: task.input,
        result: task.result,
      },
      ctx,
      mcp,
      toolPolicy,
    );
  }
  throw ApplicationFailure.nonRetryable(
    `step ${task.stepId}: "${api}" is neither handler:<name>, an http(s) URL nor mcp:<server>/<tool>#<pin>`,
    'InvalidStep',
  );
}

/** How often a running step tells Temporal it is alive; a lost worker is noticed within the heartbeat timeout. */
export const HEARTBEAT_INTERVAL_MS = 1000;

/**
 * Runs `work` while heartbeating, so a cancellation reaches the step (HTTP
 * tools abort their request on it). A step cancelled while it ran reports the
 * cancellation once its tool returns — it may have acted, so its saga
 * compensates it (SPEC §6) — never a result that would look like a commit.
 */
async function heartbeating<T>(ctx: StepContext, work: () => Promise<T>): Promise<T> {
  // No beat at the start: a step that ends within the interval never heartbeats.
  const beat = setInterval(() => ctx.activity.heartbeat(), HEARTBEAT_INTERVAL_MS);
  try {
    let result: T;
    try {
      result = await work();
    } catch (err) {
      // A tool call the cancellation aborted ends as the cancellation it is (the request may have acted).
      if (ctx.activity.cancellationSignal.aborted)
        throw new CancelledFailure(`step ${ctx.stepId} was cancelled while it ran`);
      throw err;
    }
    if (ctx.activity.cancellationSignal.aborted)
      throw new CancelledFailure(`step ${ctx.stepId} was cancelled while it ran`);
    return result;
  } finally {
    clearInterval(beat);
  }
}

/**
 * N8: a step's result is bounded: the saga keeps every result in its state and its own result, which
 * Temporal refuses past 2 MiB — 50 steps × 16 KiB stays well inside. A bigger one fails the step without
 * retries; the step acted, so the saga compensates it.
 */
export const MAX_STEP_RESULT_BYTES = 16 * 1024;

function boundedResult(task: StepTask, result: unknown): unknown {
  const bytes = Buffer.byteLength(JSON.stringify(result ?? null), 'utf8');
  if (bytes > MAX_STEP_RESULT_BYTES) {
    throw ApplicationFailure.nonRetryable(
      `step ${task.stepId} (${task.actionId}) returned ${bytes} bytes; a step result is at most ${MAX_STEP_RESULT_BYTES} bytes (keep large outputs in the tool and return a reference)`,
      'StepResultTooLarge',
    );
  }
  return result;
}

/**
 * The step activities. `checkGate` re-gates every retry attempt (SPEC §6:
 * every attempt is gated when it starts); `tracer`, when the worker traces,
 * gives that decision a span; `toolPolicy` is the worker's own rule for HTTP
 * tools (worker/config.ts) — by default none run; `mcp`, the clients of the
 * MCP servers it configures (HV_MCP_SERVERS) — by default none.
 */
export function stepActivities(
  checkGate: GateCheck,
  tracer?: Tracer,
  toolPolicy: ToolPolicy = NO_HTTP_TOOLS,
  mcp: McpClients = new McpClients(NO_MCP_SERVERS, toolPolicy),
  readGrant?: ReadGrant,
) {
  return {
    /** Runs one attempt of a step; returns what it produced and which attempt it was. */
    async executeStep(raw: StepTaskInput): Promise<{ result: unknown; attempt: number }> {
      let task: StepTask;
      try {
        task = parseTask(
          StepTaskSchema,
          withSagaIds(raw, Context.current().info.workflowExecution?.workflowId),
          'step task',
        );
      } catch (err) {
        throw withActingDetails(err, Context.current().info.attempt);
      }
      const ctx = stepContext(task, 'execute');
      try {
        // The first attempt was gated by the saga just before it was scheduled; a retry is gated here.
        // A turn's direct step is the session's only by its word: every attempt asks it (activities/turnSteps.ts).
        if (ctx.attempt > 1 || task.direct) {
          const gate = task.direct
            ? await checkDirectStep({ ...task, direct: task.direct }, ctx.attempt, readGrant)
            : await checkGate(ctx.workflowId, task);
          gateDecided(tracer, 'retry', gate, {
            [ATTR.sessionId]: task.sessionId,
            [ATTR.sagaId]: task.sagaId,
            [ATTR.stepId]: task.stepId,
            [ATTR.actionId]: task.actionId,
            [ATTR.agentDid]: task.agentDid,
          });
          if (!gate.allowed)
            throw ApplicationFailure.nonRetryable(`attempt ${ctx.attempt} denied: ${gate.reason}`, 'GateDenied');
        }
        const result = await heartbeating(ctx, () => runApi(task.executeApi, 'execute', task, ctx, toolPolicy, mcp));
        return { result: boundedResult(task, result), attempt: ctx.attempt };
      } catch (err) {
        throw withActingDetails(err, ctx.attempt);
      }
    },

    async compensateStep(raw: CompensationTaskInput): Promise<unknown> {
      const task = parseTask(
        CompensationTaskSchema,
        withSagaIds(raw, Context.current().info.workflowExecution?.workflowId),
        'compensation task',
      );
      const ctx = stepContext(task, 'undo');
      if (!task.undoApi)
        throw ApplicationFailure.nonRetryable(`step ${task.stepId} (${task.actionId}) declares no undo API`, 'NoUndo');
      const undoApi = task.undoApi;
      return heartbeating(ctx, () => runApi(undoApi, 'undo', task, ctx, toolPolicy, mcp));
    },
  };
}
