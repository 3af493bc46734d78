/**
 * The plain saga's activities: no-ops returning a small object, like the
 * governed benchmark's 'bench.noop' step handler (bench/durable.ts).
 */
import { Context } from '@temporalio/activity';

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
