/**
 * The Temporal definitions of every workflow message, built from the message
 * registry (src/contract/definitions.ts): its names, kinds, argument and result
 * types. Other SDKs use the same names with the JSON documented in contract/.
 *
 * Authority (SPEC §11): updates to the session are requests it evaluates;
 * signals carry no authority — `sagaEnded`, `restrict` and `wake` only make a
 * workflow re-read authentic state or take privilege away.
 */
import { definitions } from '../src/contract/definitions';

export { definitions } from '../src/contract/definitions';
export {
  SAGA_WORKFLOW,
  SESSION_WORKFLOW,
  legacySagaWorkflowId,
  sagaWorkflowId,
  sessionWorkflowId,
} from '../src/contract/messageNames';

// The names the workflows, activities and tests use.
// Session: updates (requests)
export const joinUpdate = definitions.join;
export const activateUpdate = definitions.activate;
export const leaveUpdate = definitions.leave;
export const vouchUpdate = definitions.vouch;
export const releaseBondUpdate = definitions.releaseBond;
export const checkActionUpdate = definitions.checkAction;
export const reportDriftUpdate = definitions.reportDrift;
export const slashUpdate = definitions.slash;
export const startSagaUpdate = definitions.startSaga;
export const approveUpdate = definitions.approve;
export const rejectUpdate = definitions.reject;
export const witnessUpdate = definitions.witness;
export const terminateUpdate = definitions.terminate;
export const claimStepUpdate = definitions.claimStep;
// Session: controls (SPEC §12)
export const quarantineUpdate = definitions.quarantine;
export const releaseUpdate = definitions.release;
export const killUpdate = definitions.kill;
export const requestElevationUpdate = definitions.requestElevation;
export const approveElevationUpdate = definitions.approveElevation;
export const revokeElevationUpdate = definitions.revokeElevation;
// Session: the VFS
export const vfsWriteUpdate = definitions.vfsWrite;
export const vfsDeleteUpdate = definitions.vfsDelete;
export const vfsSetPermissionsUpdate = definitions.vfsSetPermissions;
export const vfsSnapshotUpdate = definitions.vfsSnapshot;
export const vfsRestoreUpdate = definitions.vfsRestore;
export const vfsListQuery = definitions.vfsList;
export const vfsFileQuery = definitions.vfsFile;
// Session: a wake-up, and queries
export const sagaEndedSignal = definitions.sagaEnded;
export const summaryQuery = definitions.summary;
export const participantQuery = definitions.participant;
export const liabilityQuery = definitions.liabilityMatrix;
export const auditQuery = definitions.auditHead;
export const pendingAuditBatchQuery = definitions.pendingAuditBatch;
export const sagasQuery = definitions.sagas;
export const stepGrantQuery = definitions.stepGrant;
export const turnQuery = definitions.turnView;
// Session: operator recovery (SPEC §14)
export const sagaAwaitingSignal = definitions.sagaAwaiting;
export const operatorDecisionQuery = definitions.operatorDecision;
// Saga: pushes that only take away, a wake-up, and its state
export const restrictSignal = definitions.restrict;
export const wakeSignal = definitions.wake;
export const sagaStateQuery = definitions.sagaState;
export const stepGateQuery = definitions.stepGate;
// Saga: a turn's direct step, brought by its agent (docs/TURNS.md)
export const takeStepUpdate = definitions.takeStep;
export const heldAgentQuery = definitions.heldAgent;
