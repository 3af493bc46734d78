/**
 * The registry's names without its schemas: the workflows, their ids, each message's kind, and the
 * descriptions of the saga's own handlers. No zod: a saga run evaluates every module it imports afresh
 * (workflows/index.ts), and the registry (messages.ts) builds the whole contract's schemas — what a saga
 * needs of it is only these. messages.ts declares each message against this table (a kind that differs, or
 * a name missing on either side, does not compile).
 */

export const SESSION_WORKFLOW = 'sessionWorkflow';
export const SAGA_WORKFLOW = 'sagaWorkflow';
export type WorkflowName = typeof SESSION_WORKFLOW | typeof SAGA_WORKFLOW;

/** Readable workflow ids, the same from every client. */
export const sessionWorkflowId = (sessionId: string) => `hv-session-${sessionId}`;
/** The session a workflow id names, if it is a session's (sessionWorkflowId's inverse). */
export const sessionIdOfWorkflowId = (workflowId: string | undefined): string | undefined =>
  workflowId?.startsWith(sessionWorkflowId('')) ? workflowId.slice(sessionWorkflowId('').length) : undefined;
/**
 * A saga's workflow id: `hv-saga-<sessionId>/<sagaId>`. No id holds "/" (src/core/sagaContract.ts: Id), so the pair
 * is unambiguous (N16), and so are the step idempotency keys derived from it (`<workflowId>/<stepId>/<phase>`).
 * Readers take a saga's workflow id from its session (startSaga's answer, the saga's record), not from this.
 */
export const sagaWorkflowId = (sessionId: string, sagaId: string) => `hv-saga-${sessionId}/${sagaId}`;
/** The session and saga a saga's workflow id names (sagaWorkflowId's inverse); undefined: none, or the legacy form. */
export function sagaIdsOfWorkflowId(workflowId: string): { sessionId: string; sagaId: string } | undefined {
  const [sessionId, sagaId, ...more] = workflowId.startsWith('hv-saga-') ? workflowId.slice(8).split('/') : [];
  return sessionId && sagaId && more.length === 0 ? { sessionId, sagaId } : undefined;
}
/** The id sagas had before N16, ambiguous (ids hold "-"): a session recorded before keeps it for the sagas it starts then. */
export const legacySagaWorkflowId = (sessionId: string, sagaId: string) => `hv-saga-${sessionId}-${sagaId}`;

export type MessageKind = 'update' | 'signal' | 'query';

/** Every message of the registry, by name: its kind. */
export const MESSAGE_KINDS = {
  join: 'update',
  activate: 'update',
  leave: 'update',
  vouch: 'update',
  releaseBond: 'update',
  checkAction: 'update',
  reportDrift: 'update',
  slash: 'update',
  startSaga: 'update',
  approve: 'update',
  reject: 'update',
  witness: 'update',
  claimStep: 'update',
  decideSaga: 'update',
  forkSaga: 'update',
  sagaAwaiting: 'signal',
  operatorDecision: 'query',
  openTurn: 'update',
  appendStep: 'update',
  endTurn: 'update',
  abortTurn: 'update',
  quarantine: 'update',
  release: 'update',
  kill: 'update',
  requestElevation: 'update',
  approveElevation: 'update',
  revokeElevation: 'update',
  terminate: 'update',
  vfsWrite: 'update',
  vfsDelete: 'update',
  vfsSetPermissions: 'update',
  vfsSnapshot: 'update',
  vfsRestore: 'update',
  sagaEnded: 'signal',
  summary: 'query',
  participant: 'query',
  liabilityMatrix: 'query',
  auditHead: 'query',
  pendingAuditBatch: 'query',
  sagas: 'query',
  stepGrant: 'query',
  turnView: 'query',
  vfsRead: 'update',
  vfsList: 'query',
  vfsFile: 'query',
  restrict: 'signal',
  wake: 'signal',
  takeStep: 'update',
  sagaState: 'query',
  stepGate: 'query',
  heldAgent: 'query',
} as const satisfies Record<string, MessageKind>;

/** The saga's own messages: what its handlers say of themselves (and the registry's contract files). */
export const SAGA_MESSAGE_DESCRIPTIONS = {
  restrict: { description: 'A push that may only take privilege away (SPEC §11.3).' },
  wake: { description: 'A wake-up only: the saga asks its session again.' },
  takeStep: {
    description:
      "A turn's direct step, as its append answered it, brought to the turn's saga by its agent: the saga runs it, its activity checking it with the session on every attempt (a step the session did not append, lease and allow never acts). Unsigned: it grants nothing.",
    outputDescription: "The step's answer: its result when it committed, else its error.",
  },
  sagaState: {
    description:
      'The saga: its state, each step with attempts, errors, result and digest, grants and compensation order.',
  },
  stepGate: {
    description:
      'The gate for one step on the view the saga holds now (argument: the step id): what a retry attempt checks; an unknown step is denied.',
  },
  heldAgent: {
    description:
      'What the saga holds of one agent (argument: its DID): restriction 0 | 1 quarantined | 2 killed, and its step running now — what a kill waits for before it records (SPEC §12).',
  },
} as const;
