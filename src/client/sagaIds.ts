/**
 * Where a saga is: the workflow id its session gave it (N16). Readers take it from the session, never build it: a
 * session recorded before N16 gave `hv-saga-<sessionId>-<sagaId>`, one after gives `hv-saga-<sessionId>/<sagaId>`.
 */
import type { Client } from '@temporalio/client';
import { WorkflowNotFoundError } from '@temporalio/common';
import { legacySagaWorkflowId, sagaWorkflowId, sessionWorkflowId } from '../contract/messages';

/**
 * The saga's workflow id: of the forms a session gives, the one held by a workflow the session started as its
 * child (Temporal records the parent; a client squatting the id has none), so no worker need answer; else what the
 * session's record of the saga names (`records`: its `sagas` query). Undefined when neither has it.
 */
export async function sagaWorkflowIdOf(
  client: Client,
  sessionId: string,
  sagaId: string,
  records: () => Promise<readonly { sagaId: string; workflowId: string }[]>,
): Promise<string | undefined> {
  for (const workflowId of [sagaWorkflowId(sessionId, sagaId), legacySagaWorkflowId(sessionId, sagaId)]) {
    const parent = await client.workflow
      .getHandle(workflowId)
      .describe()
      .then(
        (d) => d.parentExecution?.workflowId,
        (err: unknown) => {
          if (err instanceof WorkflowNotFoundError) return undefined;
          throw err;
        },
      );
    if (parent === sessionWorkflowId(sessionId)) return workflowId;
  }
  return (await records()).find((s) => s.sagaId === sagaId)?.workflowId;
}
