/**
 * Every rejection the governance rules can make, as one error class with a
 * stable code. Workflows turn a HypervisorError into a non-retryable
 * ApplicationFailure whose type is the code, so any client SDK can branch on it.
 */
export const ERROR_CODES = [
  'INVALID_INPUT',
  'INVALID_TRANSITION',
  'SESSION_NOT_FOUND',
  'SESSION_FULL',
  'DUPLICATE_AGENT',
  'AGENT_NOT_FOUND',
  'AGENT_SLASHED',
  'SIGMA_TOO_LOW',
  'SELF_VOUCH',
  'VOUCHER_SIGMA_TOO_LOW',
  'VOUCH_CYCLE',
  'EXPOSURE_LIMIT',
  'BOND_NOT_FOUND',
  'DUPLICATE_BOND',
  'RING_VIOLATION',
  'PERMISSION_DENIED',
  'FILE_NOT_FOUND',
  'SNAPSHOT_NOT_FOUND',
  'STEP_NOT_FOUND',
  'SAGA_NOT_FOUND',
  'AUDIT_CHAIN_BROKEN',
  // SPEC §11: authority
  'SESSION_CLOSED',
  'NOT_SRE_WITNESS',
  'TOOL_ORIGIN_NOT_ALLOWED',
  'BOND_RELEASED',
  'DUPLICATE_SAGA',
  'SAGA_ENDED',
  'DIGEST_MISMATCH',
  'SELF_APPROVAL',
  'DUPLICATE_APPROVAL',
  'STEP_REJECTED',
  'STEP_STARTED',
  'PAYLOAD_TOO_LARGE',
  'SAGA_NOT_STARTED_BY_SESSION',
  // SPEC §7: the audit store
  'AUDIT_CONFLICT',
  'AUDIT_GAP',
  'AUDIT_BACKLOG',
  'SESSION_CONTINUING',
  // Issue 12: signed requests (did:key)
  'SIGNATURE_REQUIRED',
  'SIGNATURE_INVALID',
  'NOT_DID_KEY',
  'WRONG_SIGNER',
  'NONCE_REUSED',
  'ISSUED_AT_OUT_OF_WINDOW',
  // Issue 13: controls (SPEC §12)
  'RATE_LIMITED',
  'BUDGET_EXHAUSTED',
  'AGENT_QUARANTINED',
  'AGENT_KILLED',
  'NOT_QUARANTINED',
  'ELEVATION_NOT_FOUND',
  'ELEVATION_EXISTS',
  // Issue 24 (N25): request ids
  'REQUEST_ID_REUSED',
  'REQUEST_ALREADY_APPLIED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

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
