/**
 * The plain saga's activities: no-ops returning a small object, like the
 * governed benchmark's 'bench.noop' step handler (bench/durable.ts) — and, for
 * `npm run bench:tools`, the same registered step handler a governed step runs.
 */
import { Context } from '@temporalio/activity';
import { stepHandler } from '../../activities/handlers';

export interface PlainStepTask {
  stepId: string;
  actionId: string;
  agentDid: string;
  input?: unknown;
}

export async function plainStep(task: PlainStepTask): Promise<{ done: string; attempt: number }> {
  return { done: task.stepId, attempt: Context.current().info.attempt };
}

export async function plainUndo(task: PlainStepTask, _result: unknown): Promise<{ undone: string }> {
  return { undone: task.stepId };
}

/** The tool a governed step names (`handler:<name>`), called directly: no gate, no session. */
export async function plainTool(
  task: PlainStepTask & { handler: string },
): Promise<{ result: unknown; attempt: number }> {
  const ctx = Context.current();
  const workflowId = ctx.info.workflowExecution?.workflowId ?? 'plain';
  const handler = stepHandler(task.handler);
  if (!handler) throw new Error(`no step handler named "${task.handler}" is registered with this worker`);
  const result = await handler.execute(task.input, {
    idempotencyKey: `${workflowId}/${task.stepId}/execute`,
    workflowId,
    sessionId: 'plain',
    sagaId: 'plain',
    stepId: task.stepId,
    actionId: task.actionId,
    agentDid: task.agentDid,
    attempt: ctx.info.attempt,
    activity: ctx,
  });
  return { result, attempt: ctx.info.attempt };
}
