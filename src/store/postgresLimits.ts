/**
 * The PostgreSQL audit store's time limits (issue 24 N26): PostgreSQL's own
 * timeouts set on each connection, the client's read timeout and the pool's
 * wait, with their defaults, and the retryable error a call that hit one
 * becomes.
 */

export interface PostgresAuditStoreOptions {
  /** Connections in the pool (default 10). */
  max?: number;
  /** How long a call waits for a free connection of the pool (or for a new one to connect), in ms (default 10 s). */
  connectionTimeoutMillis?: number;
  /** PostgreSQL `lock_timeout`: how long an append waits for its session's lock or a row lock, in ms (default 5 s; 0: no limit). */
  lockTimeoutMs?: number;
  /** PostgreSQL `statement_timeout`: the longest any one statement may run, in ms (default 10 s; 0: no limit). */
  statementTimeoutMs?: number;
  /**
   * PostgreSQL `idle_in_transaction_session_timeout`: the server ends a connection of this store that sits idle
   * inside a transaction this long (its process frozen or stalled mid-append), releasing its locks, in ms
   * (default 15 s; 0: no limit).
   */
  idleInTransactionTimeoutMs?: number;
}

/**
 * The defaults: an append is a handful of short statements, done in milliseconds; the session's
 * audit activity has a 30 s start-to-close timeout (workflows/session/context.ts), so the pool wait, a lock
 * wait and the statements together end well inside one attempt, and a frozen holder's lock is freed
 * within 15 s rather than never.
 */
export const POSTGRES_STORE_DEFAULTS = {
  max: 10,
  connectionTimeoutMillis: 10_000,
  lockTimeoutMs: 5_000,
  statementTimeoutMs: 10_000,
  idleInTransactionTimeoutMs: 15_000,
} as const satisfies Required<PostgresAuditStoreOptions>;

/** How much longer than statement_timeout the client waits for an answer before it gives the connection up. */
export const READ_TIMEOUT_MARGIN_MS = 5_000;

/**
 * An audit store call that hit one of the store's time limits: retryable (a later attempt finds the lock
 * free, the pool drained or the server back). Its name is the failure type an activity reports.
 */
export class AuditStoreTimeoutError extends Error {
  override readonly name = 'AuditStoreTimeout';
  readonly retryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** PostgreSQL's SQLSTATEs for its time limits. */
const LOCK_NOT_AVAILABLE = '55P03';
const QUERY_CANCELED = '57014';
const IDLE_IN_TRANSACTION_TIMEOUT = '25P03';

/** The same error, or an AuditStoreTimeoutError saying which limit `what` hit. */
export function timeoutError(err: unknown, what: string, limits: Required<PostgresAuditStoreOptions>): unknown {
  if (!(err instanceof Error)) return err;
  const code = (err as { code?: string }).code;
  const say = (m: string) => new AuditStoreTimeoutError(`audit store: ${what} ${m}; retry later`, { cause: err });
  if (code === LOCK_NOT_AVAILABLE) {
    return say(
      `waited longer than lock_timeout (${limits.lockTimeoutMs} ms) for a lock another connection holds (another append of the session, or a stalled one)`,
    );
  }
  if (code === QUERY_CANCELED)
    return say(`ran longer than statement_timeout (${limits.statementTimeoutMs} ms) and was cancelled`);
  if (code === IDLE_IN_TRANSACTION_TIMEOUT)
    return say(
      `stalled inside its transaction past idle_in_transaction_session_timeout (${limits.idleInTransactionTimeoutMs} ms); the server ended it`,
    );
  if (err.message === 'Query read timeout') {
    return say(
      `got no answer from PostgreSQL within ${limits.statementTimeoutMs + READ_TIMEOUT_MARGIN_MS} ms; the connection was dropped`,
    );
  }
  if (/timeout exceeded when trying to connect/i.test(err.message)) {
    return say(
      `found no free connection within ${limits.connectionTimeoutMillis} ms (all ${limits.max} of the pool busy, or the server unreachable)`,
    );
  }
  return err;
}
