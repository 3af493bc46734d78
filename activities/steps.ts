/**
 * Activities that run saga steps and their compensations. Timeouts, retries
 * and backoff are Temporal's (set by the saga workflow from the step
 * definition); these functions only do the work once per attempt.
 */
import { Context, ApplicationFailure } from '@temporalio/activity';
import { stepHandler, type StepContext } from './handlers';

export interface StepTask {
  sessionId: string;
  sagaId: string;
  stepId: string;
  actionId: string;
  agentDid: string;
  /** A registered handler name … */
  handler?: string;
  /** … or an HTTP tool. */
  executeApi?: string;
  undoApi?: string;
  input?: unknown;
}

export interface CompensationTask extends StepTask {
  /** What the step returned when it committed, handed to its undo. */
  result?: unknown;
}

function stepContext(task: StepTask, phase: 'execute' | 'undo'): StepContext {
  const ctx = Context.current();
  const workflowId = ctx.info.workflowExecution?.workflowId ?? task.sagaId;
  return {
    // The workflow id and step id are the same on every attempt and every replay.
    idempotencyKey: `${workflowId}/${task.stepId}/${phase}`,
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

/** POSTs JSON to an HTTP tool with an Idempotency-Key header; 4xx other than 408/429 are not retried. */
async function callHttpTool(url: string, body: unknown, ctx: StepContext): Promise<unknown> {
  const response = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'idempotency-key': ctx.idempotencyKey,
      'x-hv-session-id': ctx.sessionId,
      'x-hv-agent-did': ctx.agentDid,
    },
    body: JSON.stringify(body ?? null),
    signal: ctx.activity.cancellationSignal,
  });
  const text = await response.text();
  if (!response.ok) {
    const message = `HTTP tool ${url} answered ${response.status}: ${text.slice(0, 200)}`;
    const permanent = response.status >= 400 && response.status < 500 && response.status !== 408 && response.status !== 429;
    throw permanent ? ApplicationFailure.nonRetryable(message, 'HttpToolRejected') : ApplicationFailure.retryable(message, 'HttpToolError');
  }
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Runs one attempt of a step; returns what it produced and which attempt it was. */
export async function executeStep(task: StepTask): Promise<{ result: unknown; attempt: number }> {
  const ctx = stepContext(task, 'execute');
  if (task.handler) {
    const handler = stepHandler(task.handler);
    if (!handler) throw ApplicationFailure.nonRetryable(`no step handler named "${task.handler}" is registered with this worker`, 'UnknownStepHandler');
    return { result: (await handler.execute(task.input, ctx)) ?? null, attempt: ctx.attempt };
  }
  if (task.executeApi) return { result: await callHttpTool(task.executeApi, { input: task.input ?? null }, ctx), attempt: ctx.attempt };
  throw ApplicationFailure.nonRetryable(`step ${task.stepId} names neither a handler nor an executeApi`, 'InvalidStep');
}

export async function compensateStep(task: CompensationTask): Promise<unknown> {
  const ctx = stepContext(task, 'undo');
  if (task.handler) {
    const handler = stepHandler(task.handler);
    if (!handler?.undo) throw ApplicationFailure.nonRetryable(`step handler "${task.handler}" has no undo`, 'NoUndo');
    return handler.undo(task.input, task.result, ctx);
  }
  if (task.undoApi) return callHttpTool(task.undoApi, { input: task.input ?? null, result: task.result ?? null }, ctx);
  throw ApplicationFailure.nonRetryable(`step ${task.stepId} has no undo API`, 'NoUndo');
}
