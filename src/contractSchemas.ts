/**
 * The JSON Schemas of every workflow input, update, signal and query argument
 * (from the zod schemas in contract.ts), and of everything the workflows send
 * back: every query answer, workflow result and update result (from
 * contractAnswers.ts). `npm run contract` writes them to contract/; a test
 * fails when the committed files are stale.
 *
 * Files: `<name>.schema.json` for what a client sends, `<query>.answer.schema.json`
 * for a query's answer, `<workflow>.result.schema.json` and `<update>.result.schema.json`
 * for what a workflow or an update returns.
 */
import { z } from 'zod';
import * as c from './contract';
import * as a from './contractAnswers';

/** Message name → [kind, schema]. Names are the ones any SDK sends. */
export const MESSAGES: Record<string, { kind: 'workflow input' | 'update' | 'signal' | 'query'; workflow: 'sessionWorkflow' | 'sagaWorkflow'; schema: z.ZodType; description: string }> = {
  sessionWorkflow: { kind: 'workflow input', workflow: 'sessionWorkflow', schema: c.SessionInputSchema, description: 'Start a session (workflow id hv-session-<sessionId>).' },
  sagaWorkflow: { kind: 'workflow input', workflow: 'sagaWorkflow', schema: c.SagaWorkflowInputSchema, description: 'Given by the session only: a saga runs only as the child of its session (start one with startSaga). Workflow id hv-saga-<sessionId>-<sagaId>.' },
  join: { kind: 'update', workflow: 'sessionWorkflow', schema: c.JoinRequestSchema, description: 'Join an agent: the SPEC §3 handshake. Returns ring and σ_eff.' },
  activate: { kind: 'update', workflow: 'sessionWorkflow', schema: c.NoArgumentSchema, description: 'handshaking → active. No argument (or null, or {}).' },
  leave: { kind: 'update', workflow: 'sessionWorkflow', schema: c.AgentRequestSchema, description: 'Mark a participant inactive.' },
  vouch: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VouchRequestSchema, description: 'Bond part of the voucher\'s σ for a vouchee.' },
  releaseBond: { kind: 'update', workflow: 'sessionWorkflow', schema: c.ReleaseBondRequestSchema, description: 'Release a bond.' },
  checkAction: { kind: 'update', workflow: 'sessionWorkflow', schema: c.CheckActionRequestSchema, description: 'Check an action for an agent (no approvals counted); records the decision.' },
  reportDrift: { kind: 'update', workflow: 'sessionWorkflow', schema: c.DriftReportSchema, description: 'Behavioural drift check: slash, demote or pass.' },
  slash: { kind: 'update', workflow: 'sessionWorkflow', schema: c.SlashRequestSchema, description: 'Slash an agent at the request of one of the session\'s SRE witnesses (config.sreWitnesses).' },
  startSaga: { kind: 'update', workflow: 'sessionWorkflow', schema: c.StartSagaRequestSchema, description: 'Start a saga as a child of the session. Returns {sagaId, workflowId, runId, digests}.' },
  approve: { kind: 'update', workflow: 'sessionWorkflow', schema: c.ApprovalRequestSchema, description: 'Approve a step, bound to its digest (SPEC §11.5).' },
  reject: { kind: 'update', workflow: 'sessionWorkflow', schema: c.RejectionRequestSchema, description: 'Reject a step, bound to its digest: it is denied at once.' },
  witness: { kind: 'update', workflow: 'sessionWorkflow', schema: c.WitnessRequestSchema, description: 'Co-sign a ring 0 step as one of the session\'s SRE witnesses.' },
  quarantine: { kind: 'update', workflow: 'sessionWorkflow', schema: c.QuarantineRequestSchema, description: 'An SRE quarantines an agent for a TTL: read-only actions only (SPEC §12).' },
  release: { kind: 'update', workflow: 'sessionWorkflow', schema: c.ReleaseRequestSchema, description: 'An SRE releases a quarantined agent before its TTL (a kill is final).' },
  kill: { kind: 'update', workflow: 'sessionWorkflow', schema: c.KillRequestSchema, description: 'An SRE kills an agent: its step in flight is cancelled; its remaining steps go to the substitute if it passes the gate, else its sagas compensate.' },
  requestElevation: { kind: 'update', workflow: 'sessionWorkflow', schema: c.ElevationRequestSchema, description: 'An agent asks for ring 1 or 2 for a TTL (≤ 3,600 s); active once the quorum approves it.' },
  approveElevation: { kind: 'update', workflow: 'sessionWorkflow', schema: c.ElevationApprovalSchema, description: 'Approve an elevation, bound to its digest.' },
  revokeElevation: { kind: 'update', workflow: 'sessionWorkflow', schema: c.RevokeElevationRequestSchema, description: 'Revoke an elevation (an SRE, or the agent itself).' },
  claimStep: { kind: 'update', workflow: 'sessionWorkflow', schema: c.StepRefSchema, description: 'A saga\'s own activity claims a step its start did not lease (rate token, budget); never raises privilege.' },
  terminate: { kind: 'update', workflow: 'sessionWorkflow', schema: c.NoArgumentSchema, description: 'Terminate: returns the commitment with the Merkle root and the liability snapshot. No argument (or null, or {}).' },
  vfsWrite: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsWriteRequestSchema, description: 'Write a file in the session VFS.' },
  vfsDelete: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsPathRequestSchema, description: 'Delete a file.' },
  vfsSetPermissions: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsPermissionsRequestSchema, description: 'Restrict a path to some DIDs.' },
  vfsSnapshot: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsSnapshotRequestSchema, description: 'Snapshot the VFS.' },
  vfsRestore: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsRestoreRequestSchema, description: 'Restore a snapshot.' },
  stepGrant: { kind: 'query', workflow: 'sessionWorkflow', schema: c.StepRefSchema, description: 'The session\'s decision for a step now, with the evidence it holds.' },
  stepGate: { kind: 'query', workflow: 'sagaWorkflow', schema: z.string().max(200), description: 'The step id whose gate to read.' },
  sagaEnded: { kind: 'signal', workflow: 'sessionWorkflow', schema: z.strictObject({ sagaId: z.string().max(200) }), description: 'A wake-up only: the session reads the saga\'s outcome by id.' },
  restrict: { kind: 'signal', workflow: 'sagaWorkflow', schema: c.RestrictionSchema, description: 'A push that may only take privilege away (SPEC §11.3).' },
  wake: { kind: 'signal', workflow: 'sagaWorkflow', schema: z.strictObject({ sessionContinued: z.boolean().optional() }), description: 'A wake-up only: the saga asks its session again.' },
};

type Workflow = 'sessionWorkflow' | 'sagaWorkflow';
interface Answer { workflow: Workflow; schema: z.ZodType; description: string }

/** Query name → the schema of its answer. */
export const QUERY_ANSWERS: Record<string, Answer> = {
  summary: { workflow: 'sessionWorkflow', schema: a.SessionSummaryAnswer, description: 'The session: state, config, participants with ring and σ_eff, bonds, deltas, Merkle root, sagas, commitment.' },
  participant: { workflow: 'sessionWorkflow', schema: a.ParticipantQueryAnswer, description: 'One participant by DID (argument: the DID); null when no such agent joined.' },
  liabilityMatrix: { workflow: 'sessionWorkflow', schema: a.LiabilityMatrixAnswer, description: 'Who vouches for whom, exposure per voucher, cascade paths.' },
  auditHead: { workflow: 'sessionWorkflow', schema: a.AuditHeadAnswer, description: 'The trail\'s count, head hash and Merkle root, and the deltas not yet in the audit store (turns stored+1 …); the rest is in the store.' },
  sagas: { workflow: 'sessionWorkflow', schema: a.SagasAnswer, description: 'The sagas of this session and their states.' },
  stepGrant: { workflow: 'sessionWorkflow', schema: a.StepGrantAnswer, description: 'The session\'s decision for a step now, with the evidence it holds (argument: stepGrant.schema.json).' },
  vfsList: { workflow: 'sessionWorkflow', schema: a.VfsListAnswer, description: 'The files and snapshots in the session VFS.' },
  vfsFile: { workflow: 'sessionWorkflow', schema: a.VfsFileAnswer, description: 'A file as an agent may see it (arguments: path, agentDid): path, size, and the hash of its contents in the audit store.' },
  stepGate: { workflow: 'sagaWorkflow', schema: a.GateDecisionAnswer, description: 'The gate for one step on the view the saga holds now (argument: the step id); an unknown step is denied.' },
  heldAgent: { workflow: 'sagaWorkflow', schema: a.HeldAgentAnswer, description: 'What the saga holds of one agent (argument: its DID): restriction 0 | 1 quarantined | 2 killed, and its step running now.' },
  sagaState: { workflow: 'sagaWorkflow', schema: a.SagaSnapshotAnswer, description: 'The saga: its state, each step with attempts, errors and result, digests, grants, compensation order.' },
};

const SAGA_ENDING = 'A saga that did not complete ends as a failed workflow instead: an ApplicationFailure of type SagaCompensated, SagaEscalated or SagaFailed whose details[0] is this same snapshot.';

/** Workflow type → the schema of its result. */
export const WORKFLOW_RESULTS: Record<Workflow, Answer> = {
  sessionWorkflow: { workflow: 'sessionWorkflow', schema: a.TerminateResultAnswer, description: 'What the session returns once terminated (the terminate update\'s result).' },
  sagaWorkflow: { workflow: 'sagaWorkflow', schema: a.SagaSnapshotAnswer, description: `The final snapshot of a completed saga. ${SAGA_ENDING}` },
};

/** Update name → the schema of its result. */
export const UPDATE_RESULTS: Record<string, Answer> = {
  join: { workflow: 'sessionWorkflow', schema: a.JoinResultAnswer, description: 'The joined agent\'s ring, σ and history status.' },
  activate: { workflow: 'sessionWorkflow', schema: a.SessionSummaryAnswer, description: 'The session summary, now active.' },
  leave: { workflow: 'sessionWorkflow', schema: a.ParticipantAnswer, description: 'The participant, now inactive.' },
  vouch: { workflow: 'sessionWorkflow', schema: a.BondAnswer, description: 'The bond made.' },
  releaseBond: { workflow: 'sessionWorkflow', schema: a.BondAnswer, description: 'The bond, released.' },
  checkAction: { workflow: 'sessionWorkflow', schema: a.GateDecisionAnswer, description: 'The gate\'s decision.' },
  reportDrift: { workflow: 'sessionWorkflow', schema: a.DriftOutcomeAnswer, description: 'The drift decision, the slash it caused (if any) and ring changes.' },
  slash: { workflow: 'sessionWorkflow', schema: a.SlashResultAnswer, description: 'The slashes (cascade included) and ring changes.' },
  startSaga: { workflow: 'sessionWorkflow', schema: a.StartSagaResultAnswer, description: 'The saga id, its workflow id and each step\'s digest.' },
  approve: { workflow: 'sessionWorkflow', schema: a.EvidenceResultAnswer, description: 'The evidence the session now holds for the step.' },
  reject: { workflow: 'sessionWorkflow', schema: a.EvidenceResultAnswer, description: 'The evidence the session now holds for the step.' },
  witness: { workflow: 'sessionWorkflow', schema: a.EvidenceResultAnswer, description: 'The evidence the session now holds for the step.' },
  quarantine: { workflow: 'sessionWorkflow', schema: a.ControlResultAnswer, description: 'The restriction imposed and the running sagas it reaches.' },
  release: { workflow: 'sessionWorkflow', schema: a.ControlResultAnswer, description: 'The agent, released.' },
  kill: { workflow: 'sessionWorkflow', schema: a.ControlResultAnswer, description: 'The kill, the sagas that hold it, and the steps handed to the substitute.' },
  requestElevation: { workflow: 'sessionWorkflow', schema: a.ElevationViewAnswer, description: 'The elevation requested, with the digest approvals are bound to.' },
  approveElevation: { workflow: 'sessionWorkflow', schema: a.ElevationViewAnswer, description: 'The elevation, with its approvals; active once the quorum approved.' },
  revokeElevation: { workflow: 'sessionWorkflow', schema: a.ElevationViewAnswer, description: 'The elevation, revoked.' },
  claimStep: { workflow: 'sessionWorkflow', schema: a.StepGrantAnswer, description: 'The session\'s grant for the step, leased when allowed.' },
  terminate: { workflow: 'sessionWorkflow', schema: a.TerminateResultAnswer, description: 'The commitment, bonds released, files purged, retention and liability snapshot.' },
  vfsWrite: { workflow: 'sessionWorkflow', schema: a.VfsChangeAnswer, description: 'The change recorded in the audit trail.' },
  vfsDelete: { workflow: 'sessionWorkflow', schema: a.VfsChangeAnswer, description: 'The change recorded in the audit trail.' },
  vfsSetPermissions: { workflow: 'sessionWorkflow', schema: a.VfsChangeAnswer, description: 'The change recorded in the audit trail.' },
  vfsSnapshot: { workflow: 'sessionWorkflow', schema: a.SnapshotSummaryAnswer, description: 'The snapshot taken.' },
  vfsRestore: { workflow: 'sessionWorkflow', schema: a.VfsRestoreResultAnswer, description: 'The changes recorded in the audit trail.' },
};

function schemaFile(file: string, title: string, description: string, schema: z.ZodType, io: 'input' | 'output'): string {
  const json = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return JSON.stringify({ $id: `agent-hypervisor/${file}`, title, description, ...json }, null, 2) + '\n';
}

/** file name → JSON text, exactly as committed under contract/. */
export function contractFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  const add = (file: string, title: string, description: string, schema: z.ZodType, io: 'input' | 'output') => {
    if (file in files) throw new Error(`two contract schemas would be written to ${file}`);
    files[file] = schemaFile(file, title, description, schema, io);
  };
  for (const [name, m] of Object.entries(MESSAGES)) {
    const what = m.kind === 'query' ? 'query argument' : m.kind;
    add(`${name}.schema.json`, name, `${what} of ${m.workflow}. ${m.description}`, m.schema, 'input');
  }
  for (const [name, r] of Object.entries(QUERY_ANSWERS)) {
    add(`${name}.answer.schema.json`, `${name} answer`, `answer of the ${name} query of ${r.workflow}. ${r.description}`, r.schema, 'output');
  }
  for (const [name, r] of Object.entries(WORKFLOW_RESULTS)) {
    add(`${name}.result.schema.json`, `${name} result`, `result of ${name}. ${r.description}`, r.schema, 'output');
  }
  for (const [name, r] of Object.entries(UPDATE_RESULTS)) {
    add(`${name}.result.schema.json`, `${name} result`, `result of the ${name} update of ${r.workflow}. ${r.description}`, r.schema, 'output');
  }
  return files;
}
