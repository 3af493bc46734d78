/**
 * The workflows as a versioned worker hosts them (Worker Deployment Versioning, docs/UPGRADES.md): the same
 * functions, each with its versioning behaviour. A saga finishes on the code it started on (PINNED: its steps,
 * gate and compensation are never replayed by other code); a session and the retention workflow move to the
 * deployment's current version at their next task (AUTO_UPGRADE: their code replays every older history,
 * behind patches, as the replay fixtures check). A separate entry because the server refuses a versioning
 * behaviour from an unversioned worker.
 */
import { setWorkflowOptions } from '@temporalio/workflow';
import { auditRetentionWorkflow, sagaWorkflow, sessionWorkflow } from '.';

export * from '.';

setWorkflowOptions({ versioningBehavior: 'PINNED' }, sagaWorkflow);
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, sessionWorkflow);
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, auditRetentionWorkflow);
