/**
 * Test-only workflows, bundled only by tests/adversarial/n24-step-outside-saga.test.ts: the hypervisor's
 * workflows, plus one that is neither a saga nor a session and schedules the step activities itself — what a
 * saga's continuation leaked into another workflow's activation does (RELIABILITY.md, N24).
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createActivities } from '../../../activities';

type Activities = ReturnType<typeof createActivities>;

export * from '../../../workflows';

const { executeStep, compensateStep } = proxyActivities<Activities>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 1 },
});

export async function rogueStepWorkflow(
  phase: 'execute' | 'undo',
  task: Parameters<Activities['executeStep']>[0] & { sagaWorkflowId?: string },
): Promise<unknown> {
  return phase === 'execute' ? executeStep(task) : compensateStep({ ...task, result: null });
}
