/**
 * The JSON Schemas of every workflow input, update and signal, generated from
 * the zod schemas in contract.ts. `npm run contract` writes them to
 * contract/; a test fails when the committed files are stale.
 */
import { z } from 'zod';
import * as c from './contract';

/** Message name → [kind, schema]. Names are the ones any SDK sends. */
export const MESSAGES: Record<string, { kind: 'workflow input' | 'update' | 'signal'; workflow: 'sessionWorkflow' | 'sagaWorkflow'; schema: z.ZodType; description: string }> = {
  sessionWorkflow: { kind: 'workflow input', workflow: 'sessionWorkflow', schema: c.SessionInputSchema, description: 'Start a session (workflow id hv-session-<sessionId>).' },
  sagaWorkflow: { kind: 'workflow input', workflow: 'sagaWorkflow', schema: c.SagaInputSchema, description: 'Start a saga on an existing session (workflow id hv-saga-<sessionId>-<sagaId>).' },
  join: { kind: 'update', workflow: 'sessionWorkflow', schema: c.JoinRequestSchema, description: 'Join an agent: the SPEC §3 handshake. Returns ring and σ_eff.' },
  activate: { kind: 'update', workflow: 'sessionWorkflow', schema: z.tuple([]), description: 'handshaking → active. No argument.' },
  leave: { kind: 'update', workflow: 'sessionWorkflow', schema: c.AgentRequestSchema, description: 'Mark a participant inactive.' },
  vouch: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VouchRequestSchema, description: 'Bond part of the voucher\'s σ for a vouchee.' },
  releaseBond: { kind: 'update', workflow: 'sessionWorkflow', schema: c.ReleaseBondRequestSchema, description: 'Release a bond.' },
  checkAction: { kind: 'update', workflow: 'sessionWorkflow', schema: c.CheckActionRequestSchema, description: 'Check an action for an agent; records the decision.' },
  reportDrift: { kind: 'update', workflow: 'sessionWorkflow', schema: c.DriftReportSchema, description: 'Behavioural drift check: slash, demote or pass.' },
  slash: { kind: 'update', workflow: 'sessionWorkflow', schema: c.SlashRequestSchema, description: 'Slash an agent (needs an SRE witness DID).' },
  startSaga: { kind: 'update', workflow: 'sessionWorkflow', schema: c.StartSagaRequestSchema, description: 'Start a saga as a child of the session.' },
  terminate: { kind: 'update', workflow: 'sessionWorkflow', schema: z.tuple([]), description: 'Terminate: returns the commitment with the Merkle root. No argument.' },
  vfsWrite: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsWriteRequestSchema, description: 'Write a file in the session VFS.' },
  vfsDelete: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsPathRequestSchema, description: 'Delete a file.' },
  vfsSetPermissions: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsPermissionsRequestSchema, description: 'Restrict a path to some DIDs.' },
  vfsSnapshot: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsSnapshotRequestSchema, description: 'Snapshot the VFS.' },
  vfsRestore: { kind: 'update', workflow: 'sessionWorkflow', schema: c.VfsRestoreRequestSchema, description: 'Restore a snapshot.' },
  approve: { kind: 'signal', workflow: 'sagaWorkflow', schema: c.ApprovalSchema, description: 'Approve a ring 1 step (consensus).' },
  witness: { kind: 'signal', workflow: 'sagaWorkflow', schema: c.WitnessSchema, description: 'Co-sign a ring 0 step as SRE witness.' },
  ringView: { kind: 'signal', workflow: 'sagaWorkflow', schema: c.RingViewSchema, description: 'Internal: the session\'s ring view, sent to its sagas.' },
  sagaStarted: { kind: 'signal', workflow: 'sessionWorkflow', schema: c.SagaStartedSchema, description: 'Internal: a saga registers with its session.' },
  sagaEvent: { kind: 'signal', workflow: 'sessionWorkflow', schema: c.SagaEventSchema, description: 'Internal: a saga reports a step or state change.' },
  sagaEscalated: { kind: 'signal', workflow: 'sessionWorkflow', schema: c.SagaEscalationSchema, description: 'Internal: a failed compensation; the session slashes the agent.' },
};

/** file name → JSON text, exactly as committed under contract/. */
export function contractFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [name, m] of Object.entries(MESSAGES)) {
    const schema = z.toJSONSchema(m.schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
    const doc = { $id: `agent-hypervisor/${name}.schema.json`, title: name, description: `${m.kind} of ${m.workflow}. ${m.description}`, ...schema };
    files[`${name}.schema.json`] = JSON.stringify(doc, null, 2) + '\n';
  }
  return files;
}
