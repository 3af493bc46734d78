/**
 * The message registry: every update, signal and query of the session and saga
 * workflows, declared once — its kind, the workflow that takes it, the schema
 * of what is sent and of what comes back, who must sign it, who may send it,
 * and its description. Everything else is derived from here: the Temporal
 * definitions (workflows/definitions.ts), the typed client's signing
 * (src/client/keys.ts, src/client/index.ts), contract/*.schema.json (src/contract/schemas.ts)
 * and the handlers' descriptions. The names and kinds, and the saga's handler
 * descriptions, are also in messageNames.ts without any schema (what a saga run
 * loads); each message here must match its entry there, or this does not compile.
 *
 * zod and pure src modules only: the workflows import it inside the sandbox.
 */
import type { z } from 'zod';
import * as c from '.';
import * as a from './answers';
import * as t from './turns';
import * as o from './operator';
import { SagaOutcomeSchema } from './sagaOutcome';
import { AuditBatchSchema, AuditTurnsSchema, type AuditTurns } from './auditBatch';
import type { Signers } from '../core/identity';

import {
  SAGA_MESSAGE_DESCRIPTIONS as SAGA,
  SAGA_WORKFLOW,
  SESSION_WORKFLOW,
  type MESSAGE_KINDS,
  type MessageKind,
  type WorkflowName,
} from './messageNames';

export {
  SAGA_WORKFLOW,
  SESSION_WORKFLOW,
  legacySagaWorkflowId,
  sagaWorkflowId,
  sessionWorkflowId,
  type MessageKind,
  type WorkflowName,
} from './messageNames';

/**
 * Who may send a message (SPEC §11.2): an agent speaking for itself (a
 * voucher, a parent, every agent of a saga), one of the session's SRE
 * witnesses, the creator (or an SRE), another participant approving; one of
 * the session's drift reporters (reportDrift, SPEC §11.9); the hypervisor's
 * own workflows and activities (wake-ups, pushes that only take away, a saga's
 * claim); or any reader (queries).
 */
export type Authority = 'agent' | 'sre' | 'creator' | 'approver' | 'reporter' | 'session-internal' | 'query';

/** What a signer rule may need beyond the request: facts the session holds. */
export interface SignerContext {
  /** Who may activate or terminate: the session's creator and its SRE witnesses. */
  readonly controllers: readonly string[];
  /** The voucher of a bond, by id (releaseBond). */
  voucherOf(bondId: string): string;
}

const all = (...dids: string[]): Signers => ({ all: dids });

/** An SRE's word (SPEC §11.9): signed by the SRE in every identity mode. */
const sreRequest = { alwaysSigned: true, authority: 'sre' } as const;

/**
 * Who must sign, from the request alone (parsed by its schema): the session's
 * validators and handlers and the typed client use these same functions. A
 * did:key session refuses a request without every signature named here.
 */
/** A step, or a parallel group of steps (the branches' agents sign too). */
type SagaEntryLike = { agentDid: string; stepId?: string } | { parallel: readonly { agentDid: string; stepId?: string }[]; groupId?: string; policy: c.GroupPolicy };

export const signedBy = {
  /** A delegated join speaks for the child and its parent: both sign. */
  join: (r: { agentDid: string; delegatedBy?: string }): Signers => (r.delegatedBy !== undefined ? all(r.agentDid, r.delegatedBy) : all(r.agentDid)),
  agent: (r: { agentDid: string }): Signers => all(r.agentDid),
  vouch: (r: { voucher: string }): Signers => all(r.voucher),
  /** Every agent of the saga's steps. */
  startSaga: (r: { steps: readonly SagaEntryLike[] }): Signers => ({ all: [...new Set(c.flattenEntries(r.steps).steps.map((s) => s.agentDid))] }),
  approver: (r: { approverDid: string }): Signers => all(r.approverDid),
  witness: (r: { witnessDid: string }): Signers => all(r.witnessDid),
  /** Quarantine, release, kill: the SRE witness who asks, never the agent. */
  sre: (r: { sreDid: string }): Signers => all(r.sreDid),
  /** An SRE witness, or the elevated agent itself. */
  revoker: (r: { byDid: string }): Signers => all(r.byDid),
  /** A drift report: the reporter it names (one of config.driftReporters), in every identity mode. */
  reporter: (r: { reporterDid: string }): Signers => all(r.reporterDid),
} as const;

/** Activate and terminate: exactly one of the creator and the SRE witnesses. */
const controller = (_r: unknown, ctx: SignerContext): Signers => ({ anyOf: ctx.controllers });

/** One message. `A` is the tuple of arguments a Temporal client sends (a phantom: never set). */
export interface Message<A extends unknown[] = unknown[]> {
  readonly kind: MessageKind;
  readonly workflow: WorkflowName;
  /** The schema of the argument, when it has a contract file (`<name>.schema.json`). */
  readonly input?: z.ZodType;
  /** The schema of the update's result or the query's answer. */
  readonly output?: z.ZodType;
  /** Who must sign it in a did:key session; absent: not signed. */
  readonly signers?: (request: never, ctx: SignerContext) => Signers;
  /**
   * Signed by `signers` in every identity mode, not only in a did:key session (SPEC §11.9): a request
   * whose authority is a configured DID's word (an SRE's, a drift reporter's), which naming the DID must
   * not be enough to give. A function: for the requests it returns true for (a revocation by an SRE, not
   * by the elevated agent itself).
   */
  readonly alwaysSigned?: true | ((request: never) => boolean);
  readonly authority: Authority;
  /** What it does: the handler's description, and the contract file's. */
  readonly description: string;
  /** What the output is (the `.result` or `.answer` contract file). */
  readonly outputDescription?: string;
  readonly __args?: A;
}

type Fields = Omit<Message, 'kind' | 'workflow' | 'input' | 'output' | '__args' | 'signers'>;
type Session = { workflow?: WorkflowName };

/** An update taking one request. */
function update<I extends z.ZodType, O extends z.ZodType>(
  input: I, output: O, m: Fields & Session & { signers?: (request: z.output<I>, ctx: SignerContext) => Signers },
): Message<[z.input<I>]> & { kind: 'update'; input: I; output: O } {
  return { kind: 'update', workflow: SESSION_WORKFLOW, input, output, ...m, signers: m.signers as Message['signers'] };
}
/** An update without argument (or with only its signatures: `{auth}`). */
function bareUpdate<O extends z.ZodType>(output: O, m: Fields & Session & { signers?: (request: unknown, ctx: SignerContext) => Signers }): Message<[]> & { kind: 'update'; input: typeof c.NoArgumentSchema; output: O } {
  return { kind: 'update', workflow: SESSION_WORKFLOW, input: c.NoArgumentSchema, output, ...m };
}
/** An update to a saga (SPEC §13: a turn's direct step): unsigned, it grants nothing. */
function sagaUpdate<I extends z.ZodType, O extends z.ZodType>(
  input: I, output: O, m: Fields,
): Message<[z.input<I>]> & { kind: 'update'; input: I; output: O } {
  return { kind: 'update', workflow: SAGA_WORKFLOW, input, output, ...m };
}
function signal<A extends unknown[]>(workflow: WorkflowName, input: z.ZodType, m: Fields): Message<A> & { kind: 'signal' } {
  return { kind: 'signal', workflow, input, ...m };
}
function query<A extends unknown[], O extends z.ZodType>(workflow: WorkflowName, output: O, m: Fields & { input?: z.ZodType }): Message<A> & { kind: 'query'; output: O } {
  return { kind: 'query', workflow, output, ...m };
}

const evidence = 'The evidence the session now holds for the step.';
const vfsChange = 'The change recorded in the audit trail.';

/** Every message, by the name any SDK sends. */
export const MESSAGES = {
  // ── Session: participants ─────────────────────────────────────────────────
  join: update(c.JoinRequestSchema, a.JoinResultAnswer, {
    signers: signedBy.join, authority: 'agent',
    description: 'Join an agent (SPEC §3 handshake); returns its ring and σ_eff. With delegatedBy, a child of that parent (SPEC §12), who co-signs.',
    outputDescription: 'The joined agent\'s ring, σ and history status.',
  }),
  activate: bareUpdate(a.SessionSummaryAnswer, {
    signers: controller, authority: 'creator',
    description: 'Move the session from handshaking to active (needs a participant). No argument (or null, or {}); signed by the creator or an SRE witness.',
    outputDescription: 'The session summary, now active.',
  }),
  leave: update(c.AgentRequestSchema, a.ParticipantAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Mark a participant inactive (it stays in the record).',
    outputDescription: 'The participant, now inactive.',
  }),
  vouch: update(c.VouchRequestSchema, a.BondAnswer, {
    signers: signedBy.vouch, authority: 'agent',
    description: 'A voucher bonds part of its σ for a vouchee (SPEC §4).',
    outputDescription: 'The bond made.',
  }),
  releaseBond: update(c.ReleaseBondRequestSchema, a.BondAnswer, {
    signers: (r, ctx) => all(ctx.voucherOf(r.bondId)), authority: 'agent',
    description: 'Release a bond before the session ends (signed by its voucher).',
    outputDescription: 'The bond, released.',
  }),
  checkAction: update(c.CheckActionRequestSchema, a.GateDecisionAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'May this agent run this action now (no approvals counted)? Records the decision.',
    outputDescription: 'The gate\'s decision.',
  }),
  reportDrift: update(c.DriftReportSchema, a.DriftOutcomeAnswer, {
    signers: signedBy.reporter, alwaysSigned: true, authority: 'reporter',
    description: 'Check an agent for behavioural drift: high → slash, medium → demote for the rest of the session (SPEC §9). Signed by reporterDid, one of config.driftReporters, in every identity mode (SPEC §11.9); anything else is refused and records nothing.',
    outputDescription: 'The drift decision, the slash it caused (if any) and ring changes.',
  }),
  slash: update(c.SlashRequestSchema, a.SlashResultAnswer, {
    signers: signedBy.witness, ...sreRequest,
    description: 'Slash an agent at the request of an SRE witness of the session (config.sreWitnesses; ring 0), who signs it in every identity mode (SPEC §11.9); cascades to its vouchers.',
    outputDescription: 'The slashes (cascade included) and ring changes.',
  }),

  // ── Session: sagas and their evidence ─────────────────────────────────────
  startSaga: update(c.StartSagaRequestSchema, a.StartSagaResultAnswer, {
    signers: signedBy.startSaga, authority: 'agent',
    description: 'Start a saga of this session (a child workflow that starts from the session\'s view), signed by every agent of its steps.',
    outputDescription: 'The saga id, its workflow id and each step\'s digest.',
  }),
  approve: update(c.ApprovalRequestSchema, a.EvidenceResultAnswer, {
    signers: signedBy.approver, authority: 'approver',
    description: 'Approve a step (bound to its digest, SPEC §11.5) as another active participant; the quorum is the session\'s.',
    outputDescription: evidence,
  }),
  reject: update(c.RejectionRequestSchema, a.EvidenceResultAnswer, {
    signers: signedBy.approver, authority: 'approver',
    description: 'Reject a step (bound to its digest): it is denied at once.',
    outputDescription: evidence,
  }),
  witness: update(c.WitnessRequestSchema, a.EvidenceResultAnswer, {
    signers: signedBy.witness, ...sreRequest,
    description: 'Co-sign a ring 0 step as one of the session\'s SRE witnesses (config.sreWitnesses), who signs it in every identity mode (SPEC §11.9).',
    outputDescription: evidence,
  }),
  claimStep: update(c.StepRefSchema, a.StepGrantAnswer, {
    authority: 'session-internal',
    description: 'A saga\'s activity claims a step its start did not lease (rate token, budget): the session\'s grant, leased when allowed; never raises privilege.',
    outputDescription: 'The session\'s grant for the step, leased when allowed.',
  }),

  // ── Session: operator recovery and fork (SPEC §14) ───────────────────────
  decideSaga: update(o.OperatorDecisionRequestSchema, o.OperatorDecisionAnswer, {
    signers: signedBy.sre, ...sreRequest,
    description: 'An SRE of the session (sreDid, one of config.sreWitnesses, who signs in every identity mode) decides for a saga awaiting its operator (SPEC §14): retry (the step runs again, gated again, under a new round of its idempotency key), skip (only for an action declared skippable) or compensate. Audited.',
    outputDescription: 'The decision recorded: saga, step, round, decision and the SRE.',
  }),
  forkSaga: update(o.ForkSagaRequestSchema, o.ForkSagaResultAnswer, {
    signers: signedBy.startSaga, authority: 'agent',
    description: 'Start a new saga of this session from steps k…n of a failed or compensated one (SPEC §14): the steps as the original started them (each must hash to its digest there), under new digests, gated afresh; both sagas\' records and the trail link them. Signed, like startSaga, by every agent of its steps.',
    outputDescription: 'The new saga id, workflow id, run, each step\'s digest, and the saga and step it was forked from.',
  }),
  sagaAwaiting: signal<[{ sagaId: string }]>(SESSION_WORKFLOW, o.SagaAwaitingSchema, {
    authority: 'session-internal',
    description: 'A wake-up only: a saga awaits its operator; the session reads the saga by id (SPEC §11.2).',
  }),
  operatorDecision: query<[{ sagaId: string; stepId: string; round: number }], typeof o.OperatorDecisionReadAnswer>(SESSION_WORKFLOW, o.OperatorDecisionReadAnswer, {
    input: o.OperatorDecisionRefSchema, authority: 'query',
    description: 'The operator\'s decision the session recorded for a saga\'s step in that round, or null (argument: {sagaId, stepId, round}): what the saga\'s activity reads.',
  }),

  // ── Session: turns, open sagas (SPEC §13) ────────────────────────────────
  openTurn: update(t.OpenTurnRequestSchema, t.OpenTurnResultAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Open a turn of this agent: a saga whose steps it appends one at a time (SPEC §13), until it ends or aborts the turn or the turn\'s deadline passes (default and bound: config.turns).',
    outputDescription: 'The turn\'s saga id, workflow id and run, and its deadline.',
  }),
  appendStep: update(t.AppendStepRequestSchema, t.AppendStepResultAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Append a step to the agent\'s own open turn: gated now (ring, controls, rate, budget) and again when it runs, approved when its ring needs it, run by the saga. The step\'s result or error is in the saga\'s state (the typed client\'s appendStep waits for it).',
    outputDescription: 'The step appended: its saga, id and digest (what approvals are bound to).',
  }),
  endTurn: update(t.EndTurnRequestSchema, t.TurnEndResultAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'End the agent\'s turn: once its appended steps ran, the saga completes (a step\'s error was its answer, and compensates nothing).',
    outputDescription: 'The turn, ended.',
  }),
  abortTurn: update(t.AbortTurnRequestSchema, t.TurnEndResultAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Abort the agent\'s turn: every step that may have acted is compensated, in reverse, once each.',
    outputDescription: 'The turn, aborted.',
  }),

  // ── Session: controls (SPEC §12) ──────────────────────────────────────────
  quarantine: update(c.QuarantineRequestSchema, a.ControlResultAnswer, {
    signers: signedBy.sre, ...sreRequest,
    description: 'An SRE (sreDid, who signs, in every identity mode) quarantines an agent for a TTL: read-only actions only; released at the TTL by a timer, or by release (SPEC §12).',
    outputDescription: 'The restriction imposed and the running sagas it reaches.',
  }),
  release: update(c.ReleaseRequestSchema, a.ControlResultAnswer, {
    signers: signedBy.sre, ...sreRequest,
    description: 'An SRE (sreDid, who signs, in every identity mode) releases a quarantined agent before its TTL (a kill is final).',
    outputDescription: 'The agent, released.',
  }),
  kill: update(c.KillRequestSchema, a.ControlResultAnswer, {
    signers: signedBy.sre, ...sreRequest,
    description: 'An SRE (sreDid, who signs, in every identity mode) kills an agent: it runs nothing more; its step in flight is cancelled; its remaining steps go to the substitute if it passes the gate, else the saga compensates (SPEC §12).',
    outputDescription: 'The kill, the sagas that hold it, and the steps handed to the substitute.',
  }),
  requestElevation: update(c.ElevationRequestSchema, a.ElevationViewAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'An agent asks for ring 1 or 2 for a TTL (≤ 3,600 s); active once the quorum approves it (approveElevation), until the TTL or a revocation (SPEC §12).',
    outputDescription: 'The elevation requested, with the digest approvals are bound to.',
  }),
  approveElevation: update(c.ElevationApprovalSchema, a.ElevationViewAnswer, {
    signers: signedBy.approver, authority: 'approver',
    description: 'Approve an elevation (bound to its digest) as another active participant (approverDid, who signs); the quorum is the session\'s.',
    outputDescription: 'The elevation, with its approvals; active once the quorum approved.',
  }),
  revokeElevation: update(c.RevokeElevationRequestSchema, a.ElevationViewAnswer, {
    signers: signedBy.revoker, alwaysSigned: (r: { agentDid: string; byDid: string }) => r.byDid !== r.agentDid, authority: 'sre',
    description: 'Revoke an elevation (byDid, who signs: an SRE — in every identity mode — or the agent itself): it ends at once, mid-saga too.',
    outputDescription: 'The elevation, revoked.',
  }),

  terminate: bareUpdate(a.TerminateResultAnswer, {
    signers: controller, authority: 'creator',
    description: 'Terminate: close the session, release bonds, purge the VFS, commit the Merkle root, anchor it, archive. No argument (or null, or {}); signed by the creator or an SRE witness.',
    outputDescription: 'The commitment, bonds released, files purged, retention and liability snapshot.',
  }),

  // ── Session: the VFS (SPEC §3) ────────────────────────────────────────────
  vfsWrite: update(c.VfsWriteRequestSchema, a.VfsChangeAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Write a file in the session VFS (its contents go to the audit store).',
    outputDescription: vfsChange,
  }),
  vfsDelete: update(c.VfsPathRequestSchema, a.VfsChangeAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Delete a file from the session VFS.',
    outputDescription: vfsChange,
  }),
  vfsSetPermissions: update(c.VfsPermissionsRequestSchema, a.VfsChangeAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Restrict a path to some DIDs (null opens it).',
    outputDescription: vfsChange,
  }),
  vfsSnapshot: update(c.VfsSnapshotRequestSchema, a.SnapshotSummaryAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Snapshot the files and permissions.',
    outputDescription: 'The snapshot taken.',
  }),
  vfsRestore: update(c.VfsRestoreRequestSchema, a.VfsRestoreResultAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Restore a snapshot.',
    outputDescription: 'The changes recorded in the audit trail.',
  }),

  // ── Session: a wake-up, and queries ───────────────────────────────────────
  sagaEnded: signal<[{ sagaId: string }]>(SESSION_WORKFLOW, c.SagaEndedSchema, {
    authority: 'session-internal',
    description: 'A wake-up only: the session reads the saga\'s outcome by id.',
  }),
  summary: query<[], typeof a.SessionSummaryAnswer>(SESSION_WORKFLOW, a.SessionSummaryAnswer, {
    authority: 'query',
    description: 'The session: state, config, participants with ring and σ_eff, bonds, deltas, Merkle root, sagas, commitment.',
  }),
  participant: query<[string], typeof a.ParticipantQueryAnswer>(SESSION_WORKFLOW, a.ParticipantQueryAnswer, {
    authority: 'query',
    description: 'One participant by DID (argument: the DID); null when no such agent joined.',
  }),
  liabilityMatrix: query<[], typeof a.LiabilityMatrixAnswer>(SESSION_WORKFLOW, a.LiabilityMatrixAnswer, {
    authority: 'query',
    description: 'Who vouches for whom, exposure per voucher, cascade paths.',
  }),
  auditHead: query<[], typeof a.AuditHeadAnswer>(SESSION_WORKFLOW, a.AuditHeadAnswer, {
    authority: 'query',
    description: 'The trail\'s count, head hash and Merkle root, and the deltas not yet in the audit store (turns stored+1 …); the rest is in the store.',
  }),
  pendingAuditBatch: query<[AuditTurns], typeof AuditBatchSchema>(SESSION_WORKFLOW, AuditBatchSchema, {
    input: AuditTurnsSchema, authority: 'query',
    description: 'The wire form of deltas not yet in the audit store (argument: {fromTurn, through}): what the appendAuditDeltas activity reads for a batch the session sent by reference. Refused (AUDIT_BATCH_UNREAD) unless every turn named is pending. The same deltas auditHead answers whole.',
  }),
  sagas: query<[], typeof a.SagasAnswer>(SESSION_WORKFLOW, a.SagasAnswer, {
    authority: 'query',
    description: 'The sagas of this session and their states.',
  }),
  stepGrant: query<[c.StepRef], typeof a.StepGrantAnswer>(SESSION_WORKFLOW, a.StepGrantAnswer, {
    input: c.StepRefSchema, authority: 'query',
    description: 'The session\'s decision for a step now, with the approvals and witness it holds (argument: {sagaId, stepId, digest}).',
  }),
  turnView: query<[t.TurnRef], typeof t.TurnViewAnswer>(SESSION_WORKFLOW, t.TurnViewAnswer, {
    input: t.TurnRefSchema, authority: 'query',
    description: 'A turn as the session holds it (argument: {sagaId}): its state, deadline, the step not yet taken, and the view to gate it — what the turn\'s saga reads.',
  }),
  vfsRead: update(c.VfsPathRequestSchema, a.VfsFileAnswer, {
    signers: signedBy.agent, authority: 'agent',
    description: 'Read a file as the signing agent (did:key sessions: the vfsFile query cannot say who asks): its path, size and content hash; records nothing.',
    outputDescription: 'The file as the agent may see it; the contents are in the audit store under the session and that hash.',
  }),
  vfsList: query<[], typeof a.VfsListAnswer>(SESSION_WORKFLOW, a.VfsListAnswer, {
    authority: 'query',
    description: 'The files and snapshots in the session VFS.',
  }),
  vfsFile: query<[string, string], typeof a.VfsFileAnswer>(SESSION_WORKFLOW, a.VfsFileAnswer, {
    authority: 'query',
    description: 'A file as an agent may see it (arguments: path, agentDid): its path, size and content hash; the contents are in the audit store under that hash. Refused in did:key sessions (a query cannot be signed): use vfsRead.',
  }),

  // ── Saga: pushes that only take away, a wake-up, and its state ────────────
  restrict: signal<[c.Restriction]>(SAGA_WORKFLOW, c.RestrictionSchema, {
    authority: 'session-internal',
    description: SAGA.restrict.description,
  }),
  wake: signal<[{ sessionContinued?: boolean } | undefined]>(SAGA_WORKFLOW, c.WakeSchema, {
    authority: 'session-internal',
    description: SAGA.wake.description,
  }),
  takeStep: sagaUpdate(t.TakeStepRequestSchema, t.StepAnswerAnswer, {
    authority: 'agent',
    description: SAGA.takeStep.description,
    outputDescription: SAGA.takeStep.outputDescription,
  }),
  sagaState: query<[], typeof a.SagaSnapshotAnswer>(SAGA_WORKFLOW, a.SagaSnapshotAnswer, {
    authority: 'query',
    description: SAGA.sagaState.description,
  }),
  stepGate: query<[string], typeof a.GateDecisionAnswer>(SAGA_WORKFLOW, a.GateDecisionAnswer, {
    input: c.StepGateArgumentSchema, authority: 'query',
    description: SAGA.stepGate.description,
  }),
  heldAgent: query<[string], typeof a.HeldAgentAnswer>(SAGA_WORKFLOW, a.HeldAgentAnswer, {
    authority: 'query',
    description: SAGA.heldAgent.description,
  }),
} as const satisfies Record<string, Message>;

// Each message of the registry is the one of that name and kind in messageNames.ts, and no other is there.
type Holds<T extends true> = T;
export type KindsMatch = Holds<
  { [N in keyof typeof MESSAGES]: (typeof MESSAGES)[N]['kind'] } extends typeof MESSAGE_KINDS
    ? typeof MESSAGE_KINDS extends { [N in keyof typeof MESSAGES]: (typeof MESSAGES)[N]['kind'] }
      ? true
      : false
    : false
>;

export type MessageName = keyof typeof MESSAGES;
type Of<K extends MessageKind> = { [N in MessageName]: (typeof MESSAGES)[N]['kind'] extends K ? N : never }[MessageName];
/** The session's updates: its requests, through its door. */
export type UpdateName = Exclude<Of<'update'>, SagaUpdateName>;
/** The saga's own update (SPEC §13): a turn's direct step, checked with the session by its activity. */
export type SagaUpdateName = 'takeStep';
export type SignalName = Of<'signal'>;
export type QueryName = Of<'query'>;
/** The arguments a Temporal client sends with a message. */
export type ArgsOf<N extends MessageName> = Exclude<(typeof MESSAGES)[N]['__args'], undefined>;
/** What an update returns or a query answers (never for a signal). */
export type OutputOf<N extends MessageName> = (typeof MESSAGES)[N] extends { output: infer S extends z.ZodType } ? z.output<S> : never;
/** The request of an update taking one. */
export type RequestOf<N extends UpdateName> = ArgsOf<N> extends [infer R] ? R : undefined;

/** The workflows themselves: what starts them and what they end with. */
export const WORKFLOWS = {
  sessionWorkflow: {
    input: c.SessionInputSchema,
    description: 'Start a session (workflow id hv-session-<sessionId>).',
    output: a.TerminateResultAnswer,
    outputDescription: 'What the session returns once terminated (the terminate update\'s result).',
  },
  sagaWorkflow: {
    input: c.SagaWorkflowInputSchema,
    description: 'Given by the session only: a saga runs only as the child of its session (start one with startSaga). Workflow id hv-saga-<sessionId>/<sagaId>.',
    output: SagaOutcomeSchema,
    outputDescription: 'The compact outcome of a completed saga, in the format its start input asked for (4 today, for a start input of format 4 or 5; 2 or 3 for a saga started in those): its state, error, failed step and each step\'s state, attempts, error and reported cost — what its session settles it by; format 2 also names each step\'s agent and action, format 3 leaves out what the session holds (the action; the agent unless a substitute ran the step) and null fields, format 4 also the saga id and, for a saga of fixed steps, each step that committed on its first attempt with nothing else to report (steps absent: none left to name; a turn names every step). Its full snapshot (steps\' results, digests, log, grants) is the sagaState query, which a closed saga answers too. A saga that did not complete ends as a failed workflow instead: an ApplicationFailure of type SagaCompensated, SagaEscalated or SagaFailed whose details[0] is this same outcome. A saga started before format 2 answered its full snapshot (sagaState.answer.schema.json) in both places.',
  },
} as const satisfies Record<WorkflowName, { input: z.ZodType; description: string; output: z.ZodType; outputDescription: string }>;

/** The message of that name, or undefined (`name` may come from anywhere: own keys only). */
export function messageOf(name: string): Message | undefined {
  return Object.hasOwn(MESSAGES, name) ? (MESSAGES as Record<string, Message>)[name] : undefined;
}

/**
 * Who must sign this request of that update, by its registry rule, or
 * undefined for an update nobody signs. `request` must be parsed by the
 * update's input schema.
 */
export function signersFor(name: string, request: unknown, ctx: SignerContext): Signers | undefined {
  const m = messageOf(name);
  return m?.signers ? (m.signers as (r: unknown, ctx: SignerContext) => Signers)(request, ctx) : undefined;
}

/**
 * Whether this request of that update is signed in every identity mode, not only in a did:key session
 * (SPEC §11.9: an SRE's or a drift reporter's word). `request` must be parsed by the update's input schema.
 */
export function signedInEveryMode(name: string, request: unknown): boolean {
  const rule = messageOf(name)?.alwaysSigned;
  return rule === true || (typeof rule === 'function' && (rule as (r: unknown) => boolean)(request));
}
