/**
 * Every rejection the governance rules can make, as one error class with a
 * stable code. Workflows turn a HypervisorError into a non-retryable
 * ApplicationFailure whose type is the code, so any client SDK can branch on it.
 */
/** What a code means for the caller, and what its `details` carry (the failure's details[0] in any SDK). */
export interface ErrorCodeInfo {
  readonly means: string;
  /** The fields of `details` when there are any. */
  readonly details?: string;
  /** What to do about it: the CLI's hint, docs/CONTRACT.md's "what to do". */
  readonly hint: string;
  /** Whether the same request may succeed later without change (the session or the store moves on). */
  readonly retry?: boolean;
}

/**
 * Every rejection the rules can make: one table, so every map over the codes
 * (the CLI's hints, docs/CONTRACT.md's table) is exhaustive over it.
 */
export const ERRORS = {
  INVALID_INPUT: {
    means: 'the request does not parse: the message names the field and what was expected',
    details: 'field / issues when known',
    hint: 'fix the fields named in the message (see docs/CONTRACT.md)',
  },
  INVALID_TRANSITION: {
    means: 'the session, saga or step is not in a state that allows this request',
    details: 'state, allowed',
    hint: "`hv session show SESSION` shows the session's state (and `hv saga show` a saga's)",
  },
  SESSION_NOT_FOUND: {
    means: 'no session workflow runs under this id',
    hint: 'check the session id (and --namespace / --task-queue); create one with `hv session create --creator DID`',
  },
  SESSION_FULL: {
    means: 'the session has config.maxParticipants active participants',
    hint: 'raise maxParticipants when creating the session (`hv session create --max-participants N`), or have an agent leave first',
  },
  DUPLICATE_AGENT: {
    means: 'the agent already joined this session (an agent that left may not rejoin)',
    details: 'did',
    hint: 'join under another DID: an agent joins a session once',
  },
  AGENT_NOT_FOUND: {
    means: 'the DID is not an (active) participant of the session',
    details: 'did',
    hint: '`hv session show SESSION` lists the participants',
  },
  AGENT_SLASHED: {
    means: 'the agent was slashed in this session: it may not vouch, approve, delegate or be elevated',
    details: 'did',
    hint: 'nothing to retry: a slashed agent keeps that record for the session; another agent must act',
  },
  SIGMA_TOO_LOW: {
    means: "the agent's σ_eff is below the session's minSigmaEff for the ring it would get",
    details: 'did, sigmaEff, min, ring',
    hint: "the agent's σ_eff is below the session's minSigmaEff: have a trusted agent vouch for it, or let it join in ring 3",
  },
  SELF_VOUCH: { means: 'an agent may not vouch for itself', hint: 'another participant must vouch for the agent' },
  VOUCHER_SIGMA_TOO_LOW: {
    means: "the voucher's σ is below the minimum to vouch (SPEC §4)",
    hint: 'a more trusted agent must vouch (`hv session show SESSION` shows each σ)',
  },
  VOUCH_CYCLE: {
    means: 'the bond would close a cycle of vouching',
    hint: 'vouch the other way round, or through an agent outside the cycle',
  },
  EXPOSURE_LIMIT: {
    means: "the bond would take the voucher's total exposure past its limit (SPEC §4)",
    hint: "bond a smaller share, or release one of the voucher's bonds first",
  },
  BOND_NOT_FOUND: { means: 'no bond of this session has this id', hint: '`hv session show SESSION` lists the bonds' },
  DUPLICATE_BOND: {
    means: 'a bond with this id exists already',
    details: 'bondId',
    hint: 'the bond exists already: nothing to do',
  },
  RING_VIOLATION: {
    means: "the agent's ring does not allow the action (or a cap forbids the elevation)",
    details: 'did',
    hint: 'the agent needs a more privileged ring: raise its σ_eff (a vouch) or request an elevation',
  },
  PERMISSION_DENIED: {
    means: 'a VFS path is restricted to other DIDs',
    details: 'path, agentDid',
    hint: "ask an agent the path's permissions name, or one that may set them",
  },
  FILE_NOT_FOUND: {
    means: 'no such file in the session VFS',
    details: 'path',
    hint: 'check the path: `vfsList` lists the files',
  },
  SNAPSHOT_NOT_FOUND: {
    means: 'no such VFS snapshot',
    details: 'snapshotId',
    hint: 'check the snapshot id the snapshot returned',
  },
  STEP_NOT_FOUND: {
    means: 'the saga has no step with this id',
    details: 'sagaId, stepId',
    hint: 'check the step id: `hv saga show SESSION SAGA` lists the steps',
  },
  SAGA_NOT_FOUND: {
    means: 'the session has no saga with this id',
    hint: "check the saga id: `hv saga list --session SESSION` lists the session's sagas",
  },
  AUDIT_CHAIN_BROKEN: {
    means: 'an audit trail does not verify: the turn named in the message is where it breaks',
    details: 'turn',
    hint: 'treat the trail as tampered with from the turn named; compare with an exported copy',
  },
  SESSION_CLOSED: {
    means: 'the session is terminating or archived: it records nothing more',
    details: 'state',
    hint: 'the session has ended or is terminating: `hv session show SESSION` shows its commitment; start a new session',
  },
  NOT_SRE_WITNESS: {
    means: "the DID is not one of the session's SRE witnesses (config.sreWitnesses), or acts on itself",
    details: 'did',
    hint: "use one of the session's SRE witnesses (`hv session show SESSION --json`: config.sreWitnesses)",
  },
  TOOL_ORIGIN_NOT_ALLOWED: {
    means: "an HTTP tool's origin is not in the session's config.allowedToolOrigins",
    details: 'origin',
    hint: "add the origin to the session's config.allowedToolOrigins (and the worker's HV_TOOL_ORIGINS)",
  },
  BOND_RELEASED: { means: 'the bond was released already', hint: 'the bond is released already: nothing to do' },
  DUPLICATE_SAGA: {
    means: 'a saga with this id exists in the session, or its workflow id is taken',
    details: 'sagaId',
    hint: 'start the saga under a new id, or resend with the same request id to get the first answer',
  },
  SAGA_ENDED: {
    means: 'the saga has ended: no more evidence or claims for it',
    hint: 'the saga has ended: `hv saga show SESSION SAGA` shows how',
  },
  DIGEST_MISMATCH: {
    means: "the evidence names another digest than the step's (or elevation's) current one",
    hint: "approve the step's current digest: `hv saga show SESSION SAGA --json` (a step handed off after a kill has a new one)",
  },
  SELF_APPROVAL: {
    means: 'the approver or witness is the acting agent',
    hint: 'another participant must approve: an agent never approves or witnesses its own step',
  },
  DUPLICATE_APPROVAL: {
    means: 'this DID approved already (or the step is witnessed, the elevation active)',
    hint: '`hv saga show SESSION SAGA` shows who approved already',
  },
  STEP_REJECTED: {
    means: 'the step was rejected: it takes no more approvals',
    hint: 'the step will not run: start a new saga if it should',
  },
  STEP_STARTED: {
    means: "the session granted the step's start: its evidence is spent",
    hint: 'the step has started: its evidence is spent',
  },
  PAYLOAD_TOO_LARGE: {
    means: 'a request, file or list is over its bound (SPEC §11.6)',
    details: 'size / max',
    hint: 'send less: the message names the bound (store large content by reference)',
  },
  SAGA_NOT_STARTED_BY_SESSION: {
    means: 'a saga workflow was started by something other than its session',
    hint: "start sagas through the session's startSaga update (`hv saga start`), never directly",
  },
  AUDIT_CONFLICT: {
    means: "the audit store holds another trail (or another owner's) under this session id, or the trail is closed",
    details: 'sessionId, turn when known',
    hint: "the audit store already holds a trail under this session id (an earlier session's): create the session under a new id",
  },
  AUDIT_GAP: {
    means: 'an append would leave a gap in the stored trail',
    details: 'sessionId, lastTurn, firstTurn',
    hint: 'a bug or a store edited by hand: check the store, then retry',
  },
  AUDIT_BATCH_UNREAD: {
    means:
      "a batch of the trail sent by reference is not what its session holds: the turns are not pending there, or their deltas do not chain from the batch's parent to its head; nothing is stored",
    details: 'fromTurn, through',
    hint: 'nothing to do: the session sends that batch again with its deltas inline, and the store judges it',
  },
  AUDIT_BACKLOG: {
    means: 'too many deltas wait for the audit store: retry once it has caught up',
    details: 'waiting',
    retry: true,
    hint: 'retry once the audit store has caught up (check the store: HV_DATA_DIR or HV_AUDIT_DATABASE_URL)',
  },
  SESSION_CONTINUING: {
    means: 'the session is handing over to its next run: send the same request again (the typed client does)',
    retry: true,
    hint: 'send the same request again: the session is handing over to its next run',
  },
  SIGNATURE_REQUIRED: {
    means: 'a did:key session needs this request signed by the DIDs it speaks for',
    details: 'missing, signers',
    hint: 'sign with the key of each DID the request speaks for: --key FILE (docs/CONTRACT.md lists who signs what)',
  },
  SIGNATURE_INVALID: {
    means: 'a signature does not verify over the request',
    details: 'signer',
    hint: 'sign the request as sent, with the key of the DID it names (docs/CONTRACT.md, "Signed requests")',
  },
  NOT_DID_KEY: {
    means: 'the signer is not a did:key DID',
    details: 'signer',
    hint: 'a DID that signs must be a did:key (`hv keys new FILE`); an SRE signs its requests in every identity mode: name one of config.sreWitnesses and sign with --key FILE',
  },
  WRONG_SIGNER: {
    means: 'the request is signed by a DID it does not speak for',
    details: 'signer',
    hint: 'sign with the key of the DID the request speaks for (--key FILE)',
  },
  NONCE_REUSED: {
    means: "the signature's nonce was used already (a replay)",
    details: 'signer, nonce',
    hint: 'send a fresh request (the typed client signs each with a new nonce)',
  },
  ISSUED_AT_OUT_OF_WINDOW: {
    means: "the signature's issuedAt is too far from the session's clock",
    details: 'signer, issuedAt',
    hint: "check this machine's clock",
  },
  RATE_LIMITED: {
    means: "the agent's ring rate limit is reached",
    details: 'retryAfterMs (null: over the burst)',
    retry: true,
    hint: 'retry after the time the message names',
  },
  BUDGET_EXHAUSTED: {
    means: "the agent's or the session's call or cost budget is spent",
    hint: '`hv agent show SESSION --agent DID` shows what it spent; a new session starts a new budget',
  },
  AGENT_QUARANTINED: {
    means: 'the agent is quarantined: read-only actions only, and it may not approve, vouch or delegate',
    details: 'did',
    hint: '`hv agent show SESSION --agent DID` shows until when; an SRE may `hv agent release` it',
  },
  AGENT_KILLED: {
    means: 'the agent was killed in this session: it runs nothing more (a kill is final)',
    details: 'did',
    hint: 'a kill is final: `hv agent show SESSION --agent DID` shows who killed it and why',
  },
  NOT_QUARANTINED: {
    means: 'the agent is not quarantined: nothing to release',
    details: 'did',
    hint: 'nothing to release',
  },
  ELEVATION_NOT_FOUND: {
    means: 'the agent has no such elevation',
    hint: '`hv agent show SESSION --agent DID` shows its elevation, if any',
  },
  ELEVATION_EXISTS: {
    means: 'the agent has an elevation already (one per agent)',
    details: 'elevationId',
    hint: 'approve or revoke the elevation it has (`hv agent show SESSION --agent DID`)',
  },
  NOT_ELIGIBLE_APPROVER: {
    means:
      'the approver may not approve: it must be an active, unrestricted participant of ring ≤ 2 that joined before the request, and not the requester',
    details: 'did',
    hint: 'ask another participant: active, unrestricted, ring ≤ 2, joined before the request, not the requester',
  },
  REQUEST_ID_REUSED: {
    means: 'another request was sent under this request id (an id names one request)',
    details: 'requestId',
    hint: 'send a new request under a new request id',
  },
  REQUEST_ALREADY_APPLIED: {
    means: "this request was applied already; its answer was too large to keep across the session's runs",
    details: 'requestId',
    hint: 'the request was applied: read its effect (`hv session show`, `hv saga show`) rather than resend',
  },
  NOT_A_TURN: {
    means: 'the saga is a declared saga, not an open turn: steps cannot be appended to it (SPEC §13)',
    details: 'sagaId',
    hint: 'open a turn (`openTurn`) and append to its saga id',
  },
  NOT_TURN_AGENT: {
    means: "the turn is another agent's: only the agent that opened it appends to, ends or aborts it",
    details: 'sagaId, agentDid',
    hint: 'open a turn of your own (`openTurn`)',
  },
  TURN_NOT_OPEN: {
    means: 'the turn was ended or aborted, its deadline passed, or its saga ended: it takes no more steps',
    details: 'sagaId, state',
    hint: "open a new turn; `hv saga show` shows the turn's saga and what it did",
  },
  TURN_FULL: {
    means: "the turn holds as many steps as the session's config.turns.maxSteps allows (SPEC §11.6)",
    details: 'sagaId, maxSteps',
    hint: 'end this turn and open another, or create the session with a larger config.turns.maxSteps',
  },
  TOO_MANY_TURNS: {
    means: "the agent holds as many open turns as the session's config.turns.maxOpenPerAgent allows (SPEC §11.6)",
    details: 'did, maxOpenPerAgent',
    hint: 'end or abort one of its open turns first (`hv saga list --state running --agent DID` lists them)',
    retry: true,
  },
  TURN_BUSY: {
    means: 'the turn holds a step its saga has not taken yet: steps are appended one at a time',
    details: 'sagaId, stepId',
    hint: "wait for the previous step's answer (the typed client's appendStep does), then append",
    retry: true,
  },
  STEP_DENIED: {
    means:
      'the gate denied the step when it was appended (ring, quarantine, kill, undeclared action): the message says which rule; nothing ran',
    details: 'sagaId, stepId, rule',
    hint: 'the message names the rule: a more privileged ring (a vouch, an elevation), another action, or another agent',
  },
  NOT_DRIFT_REPORTER: {
    means: "a drift report must come from one of the session's config.driftReporters, signed",
    details: 'did',
    hint: "send the report as one of the session's config.driftReporters, signed with its key",
  },
  NOT_AWAITING_OPERATOR: {
    means: 'the saga (or the step named) is not awaiting its operator (SPEC §14): nothing to decide',
    details: 'sagaId',
    hint: '`hv approvals list` shows the sagas awaiting an operator (waitFor operator)',
  },
  NOT_SKIPPABLE: {
    means: "the step's action is not declared skippable: an operator may retry or compensate it, not skip it",
    hint: 'retry or compensate; an action is skippable only when declared `skippable: true` at join',
  },
  NOT_FORKABLE: {
    means:
      'only a failed or compensated saga the session still holds can be forked, from one of its steps, with its steps as they started',
    details: 'sagaId',
    hint: '`hv saga show SESSION SAGA` shows its state and steps; the typed client and `hv saga fork` read the steps for you',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERRORS;
export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

export class HypervisorError extends Error {
  override readonly name = 'HypervisorError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

export function isHypervisorError(err: unknown, code?: ErrorCode): err is HypervisorError {
  return err instanceof HypervisorError && (code === undefined || err.code === code);
}
