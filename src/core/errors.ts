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
  },
  INVALID_TRANSITION: {
    means: 'the session, saga or step is not in a state that allows this request',
    details: 'state, allowed',
  },
  SESSION_NOT_FOUND: { means: 'no session workflow runs under this id' },
  SESSION_FULL: { means: 'the session has config.maxParticipants active participants' },
  DUPLICATE_AGENT: {
    means: 'the agent already joined this session (an agent that left may not rejoin)',
    details: 'did',
  },
  AGENT_NOT_FOUND: { means: 'the DID is not an (active) participant of the session', details: 'did' },
  AGENT_SLASHED: {
    means: 'the agent was slashed in this session: it may not vouch, approve, delegate or be elevated',
    details: 'did',
  },
  SIGMA_TOO_LOW: {
    means: "the agent's σ_eff is below the session's minSigmaEff for the ring it would get",
    details: 'did, sigmaEff, min, ring',
  },
  SELF_VOUCH: { means: 'an agent may not vouch for itself' },
  VOUCHER_SIGMA_TOO_LOW: { means: "the voucher's σ is below the minimum to vouch (SPEC §4)" },
  VOUCH_CYCLE: { means: 'the bond would close a cycle of vouching' },
  EXPOSURE_LIMIT: { means: "the bond would take the voucher's total exposure past its limit (SPEC §4)" },
  BOND_NOT_FOUND: { means: 'no bond of this session has this id' },
  DUPLICATE_BOND: { means: 'a bond with this id exists already', details: 'bondId' },
  RING_VIOLATION: {
    means: "the agent's ring does not allow the action (or a cap forbids the elevation)",
    details: 'did',
  },
  PERMISSION_DENIED: { means: 'a VFS path is restricted to other DIDs', details: 'path, agentDid' },
  FILE_NOT_FOUND: { means: 'no such file in the session VFS', details: 'path' },
  SNAPSHOT_NOT_FOUND: { means: 'no such VFS snapshot', details: 'snapshotId' },
  STEP_NOT_FOUND: { means: 'the saga has no step with this id', details: 'sagaId, stepId' },
  SAGA_NOT_FOUND: { means: 'the session has no saga with this id' },
  AUDIT_CHAIN_BROKEN: {
    means: 'an audit trail does not verify: the turn named in the message is where it breaks',
    details: 'turn',
  },
  SESSION_CLOSED: { means: 'the session is terminating or archived: it records nothing more', details: 'state' },
  NOT_SRE_WITNESS: {
    means: "the DID is not one of the session's SRE witnesses (config.sreWitnesses), or acts on itself",
    details: 'did',
  },
  TOOL_ORIGIN_NOT_ALLOWED: {
    means: "an HTTP tool's origin is not in the session's config.allowedToolOrigins",
    details: 'origin',
  },
  BOND_RELEASED: { means: 'the bond was released already' },
  DUPLICATE_SAGA: {
    means: 'a saga with this id exists in the session, or its workflow id is taken',
    details: 'sagaId',
  },
  SAGA_ENDED: { means: 'the saga has ended: no more evidence or claims for it' },
  DIGEST_MISMATCH: { means: "the evidence names another digest than the step's (or elevation's) current one" },
  SELF_APPROVAL: { means: 'the approver or witness is the acting agent' },
  DUPLICATE_APPROVAL: { means: 'this DID approved already (or the step is witnessed, the elevation active)' },
  STEP_REJECTED: { means: 'the step was rejected: it takes no more approvals' },
  STEP_STARTED: { means: "the session granted the step's start: its evidence is spent" },
  PAYLOAD_TOO_LARGE: { means: 'a request, file or list is over its bound (SPEC §11.6)', details: 'size / max' },
  SAGA_NOT_STARTED_BY_SESSION: { means: 'a saga workflow was started by something other than its session' },
  AUDIT_CONFLICT: {
    means: "the audit store holds another trail (or another owner's) under this session id, or the trail is closed",
    details: 'sessionId, turn when known',
  },
  AUDIT_GAP: { means: 'an append would leave a gap in the stored trail', details: 'sessionId, lastTurn, firstTurn' },
  AUDIT_BACKLOG: {
    means: 'too many deltas wait for the audit store: retry once it has caught up',
    details: 'waiting',
    retry: true,
  },
  SESSION_CONTINUING: {
    means: 'the session is handing over to its next run: send the same request again (the typed client does)',
    retry: true,
  },
  SIGNATURE_REQUIRED: {
    means: 'a did:key session needs this request signed by the DIDs it speaks for',
    details: 'missing, signers',
  },
  SIGNATURE_INVALID: { means: 'a signature does not verify over the request', details: 'signer' },
  NOT_DID_KEY: { means: 'the signer is not a did:key DID', details: 'signer' },
  WRONG_SIGNER: { means: 'the request is signed by a DID it does not speak for', details: 'signer' },
  NONCE_REUSED: { means: "the signature's nonce was used already (a replay)", details: 'signer, nonce' },
  ISSUED_AT_OUT_OF_WINDOW: {
    means: "the signature's issuedAt is too far from the session's clock",
    details: 'signer, issuedAt',
  },
  RATE_LIMITED: {
    means: "the agent's ring rate limit is reached",
    details: 'retryAfterMs (null: over the burst)',
    retry: true,
  },
  BUDGET_EXHAUSTED: { means: "the agent's or the session's call or cost budget is spent" },
  AGENT_QUARANTINED: {
    means: 'the agent is quarantined: read-only actions only, and it may not approve, vouch or delegate',
    details: 'did',
  },
  AGENT_KILLED: {
    means: 'the agent was killed in this session: it runs nothing more (a kill is final)',
    details: 'did',
  },
  NOT_QUARANTINED: { means: 'the agent is not quarantined: nothing to release', details: 'did' },
  ELEVATION_NOT_FOUND: { means: 'the agent has no such elevation' },
  ELEVATION_EXISTS: { means: 'the agent has an elevation already (one per agent)', details: 'elevationId' },
  NOT_ELIGIBLE_APPROVER: {
    means:
      'the approver may not approve: it must be an active, unrestricted participant of ring ≤ 2 that joined before the request, and not the requester',
    details: 'did',
  },
  REQUEST_ID_REUSED: {
    means: 'another request was sent under this request id (an id names one request)',
    details: 'requestId',
  },
  REQUEST_ALREADY_APPLIED: {
    means: "this request was applied already; its answer was too large to keep across the session's runs",
    details: 'requestId',
  },
  NOT_DRIFT_REPORTER: {
    means: "a drift report must come from one of the session's config.driftReporters, signed",
    details: 'did',
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
