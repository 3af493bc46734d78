/**
 * The hypervisor's workflows and a stand-in for a session of a newer build (tests/workflows/start-format-newer.test.ts):
 * under a session's workflow id, it starts a saga with a start input of a format this build does not read yet, as
 * a newer build's session would in a rolling upgrade whose old and new workers share a task queue.
 */
import { startChild } from '@temporalio/workflow';

export * from '../../workflows';

export async function newerBuildSession(sagaWorkflowId: string, input: unknown): Promise<void> {
  await startChild('sagaWorkflow', { workflowId: sagaWorkflowId, args: [input], parentClosePolicy: 'ABANDON' });
}
