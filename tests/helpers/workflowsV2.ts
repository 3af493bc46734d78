/**
 * Version 2 of the hypervisor's workflows, for the upgrade test (tests/workflows/upgrade.test.ts): the same
 * session, and a saga whose body was deliberately changed — it first writes its code version into its memo, a
 * command version 1 never issued. A saga that started on version 1 and were replayed by this code would fail
 * its workflow task (nondeterminism); pinned, it never is.
 */
import { setWorkflowOptions, upsertMemo } from '@temporalio/workflow';
import { sagaWorkflow as sagaWorkflowV1 } from '../../workflows/versioned';

export * from '../../workflows/versioned';

export async function sagaWorkflow(
  ...args: Parameters<typeof sagaWorkflowV1>
): Promise<Awaited<ReturnType<typeof sagaWorkflowV1>>> {
  upsertMemo({ codeVersion: 2 });
  return sagaWorkflowV1(...args);
}
setWorkflowOptions({ versioningBehavior: 'PINNED' }, sagaWorkflow);
