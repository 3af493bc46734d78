/**
 * The PostgreSQL audit store (HV_AUDIT_DATABASE_URL). Any number of processes
 * may open it: the schema is created or upgraded under a transaction-scoped
 * advisory lock, and each append runs in one transaction holding a per-session
 * advisory lock, so concurrent appends to one session are checked one after the
 * other; the rows are written by one multi-row INSERT … ON CONFLICT DO NOTHING,
 * and a row that was nonetheless already there is compared, never skipped blind.
 *
 * Nothing here waits without a bound (issue 24 N26: a worker frozen inside an
 * append held its session's lock "idle in transaction" for minutes, the other
 * worker's appends queued behind it until its pool was full, and then every
 * append failed, other sessions' too). Each connection is opened with
 * PostgreSQL's own timeouts as startup parameters — `lock_timeout` (a wait for
 * the session's advisory lock or a row lock), `statement_timeout` (any one
 * statement) and `idle_in_transaction_session_timeout` (the server ends the
 * session of a client that stalls inside a transaction, so its locks go) —
 * plus a client-side read timeout for a server that stops answering, and the
 * pool's wait for a connection is bounded. A timed-out append is cancelled by
 * the server, rolled back, and refused with AuditStoreTimeoutError: retryable
 * (the activity retries it), naming the session and the limit.
 */
import { Pool, type PoolClient, type PoolConfig, type QueryResult, type QueryResultRow } from 'pg';
import type { Delta } from '../core/audit';
import {
  checkBatch,
  checkContentHash,
  checkNow,
  checkOwner,
  checkReadRange,
  checkSessionId,
  checkUtf8Text,
  closedTrailError,
  newRows,
  ownerConflict,
  parseTreeHead,
  purgedError,
  sameSession,
  sessionConflict,
  sessionRecord,
  sessionText,
  sha256HexUtf8,
  treeHeadRows,
  type SessionText,
} from './common';
import type { MerkleAccumulator } from '../core/merkle';
import { LOCK_CLASS, migrate } from './postgresSchema';
import {
  POSTGRES_STORE_DEFAULTS,
  READ_TIMEOUT_MARGIN_MS,
  timeoutError,
  type PostgresAuditStoreOptions,
} from './postgresLimits';
import type { SignedTreeHead } from './treeHeads';
import { HypervisorError } from '../core/errors';
import type {
  AppendResult,
  AuditStore,
  ExpiryResult,
  LastTreeHead,
  SessionRecord,
  StoredDeltaRow,
  TrailHead,
} from './types';

export { AuditStoreTimeoutError, POSTGRES_STORE_DEFAULTS, type PostgresAuditStoreOptions } from './postgresLimits';

interface SessionRow {
  commitment: string;
  liability_snapshot: string;
  retain_until: string;
  deltas_purged_at: string | null;
}

export class PostgresAuditStore implements AuditStore {
  readonly kind = 'postgres' as const;
  private closed = false;

  private constructor(
    readonly location: string,
    private readonly pool: Pool,
    private readonly limits: Required<PostgresAuditStoreOptions>,
  ) {}

  /** Connect, and create or upgrade the schema. */
  static async open(url: string, options: PostgresAuditStoreOptions = {}): Promise<PostgresAuditStore> {
    const limits: Required<PostgresAuditStoreOptions> = { ...POSTGRES_STORE_DEFAULTS };
    for (const [key, value] of Object.entries(options) as Array<
      [keyof PostgresAuditStoreOptions, number | undefined]
    >) {
      if (value === undefined) continue;
      if (!Number.isInteger(value) || value < 0 || (key === 'max' && value < 1)) {
        throw new Error(
          `audit store: ${key} must be a whole number of ${key === 'max' ? 'connections (≥ 1)' : 'milliseconds (0: no limit)'}, not ${value}`,
        );
      }
      limits[key] = value;
    }
    const config: PoolConfig = {
      connectionString: url,
      max: limits.max,
      connectionTimeoutMillis: limits.connectionTimeoutMillis,
      // Startup parameters: every connection of the pool has them from its first statement on (0 sends none: the server's own).
      lock_timeout: limits.lockTimeoutMs,
      statement_timeout: limits.statementTimeoutMs,
      idle_in_transaction_session_timeout: limits.idleInTransactionTimeoutMs,
      query_timeout: limits.statementTimeoutMs === 0 ? undefined : limits.statementTimeoutMs + READ_TIMEOUT_MARGIN_MS,
      fallback_application_name: 'agent-hypervisor audit store',
    };
    const pool = new Pool(config);
    // An idle connection the server drops must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => {});
      throw err;
    }
    return new PostgresAuditStore(redactedUrl(url), pool, limits);
  }

  /** The limits this store runs with (the defaults, with the options given at open). */
  get timeouts(): Readonly<Required<PostgresAuditStoreOptions>> {
    return this.limits;
  }

  async append(sessionId: string, deltas: readonly Delta[], owner?: string): Promise<AppendResult> {
    this.open();
    const id = checkSessionId(sessionId);
    const by = owner === undefined ? undefined : checkOwner(owner);
    const batch = checkBatch(id, deltas);
    if (batch === null) return { appended: 0, lastTurn: await this.lastTurn(id) };
    return this.transaction(`append to session ${JSON.stringify(id)}`, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, id]);
      // FOR SHARE: an expiry of this session waits for this append (and then purges its rows too).
      const purged = await client.query<{ deltas_purged_at: string | null }>(
        'SELECT deltas_purged_at FROM audit_sessions WHERE session_id = $1 FOR SHARE',
        [id],
      );
      const purgedAt = purged.rows[0]?.deltas_purged_at ?? null;
      if (purgedAt !== null) throw purgedError(id, Number(purgedAt));
      const recorded = purged.rows.length > 0;
      await claim(client, id, by);
      const last = await client.query<{ last: string | null }>(
        'SELECT max(turn) AS last FROM audit_deltas WHERE session_id = $1',
        [id],
      );
      const storedLast = Number(last.rows[0]?.last ?? 0);
      const stored = new Map<number, string>();
      if (storedLast >= batch.firstTurn - 1) {
        const have = await client.query<{ turn: string; hash: string }>(
          'SELECT turn, hash FROM audit_deltas WHERE session_id = $1 AND turn BETWEEN $2 AND $3 ORDER BY turn',
          [id, batch.firstTurn - 1, batch.lastTurn],
        );
        for (const r of have.rows) stored.set(Number(r.turn), r.hash);
      }
      const fresh = newRows(id, batch, storedLast, stored);
      if (fresh.length > 0 && recorded) throw closedTrailError(id);
      if (fresh.length > 0) {
        const inserted = await client.query<{ turn: string }>(
          `INSERT INTO audit_deltas (session_id, turn, hash, json)
           SELECT $1, t.turn, t.hash, t.json FROM unnest($2::bigint[], $3::text[], $4::text[]) AS t(turn, hash, json)
           ON CONFLICT (session_id, turn) DO NOTHING RETURNING turn`,
          [id, fresh.map((r) => r.turn), fresh.map((r) => r.hash), fresh.map((r) => r.json)],
        );
        if (inserted.rowCount !== fresh.length) {
          // Only possible if a writer bypassed the session lock: compare what it wrote.
          const got = new Set(inserted.rows.map((r) => Number(r.turn)));
          const missing = fresh.filter((r) => !got.has(r.turn));
          const have = await client.query<{ turn: string; hash: string }>(
            'SELECT turn, hash FROM audit_deltas WHERE session_id = $1 AND turn = ANY($2::bigint[])',
            [id, missing.map((r) => r.turn)],
          );
          const byTurn = new Map(have.rows.map((r) => [Number(r.turn), r.hash]));
          const bad = missing.find((r) => byTurn.get(r.turn) !== r.hash);
          if (bad !== undefined) {
            throw new HypervisorError(
              'AUDIT_CONFLICT',
              `audit store: session ${JSON.stringify(id)} already has a different delta at turn ${bad.turn}`,
              { sessionId: id, turn: bad.turn },
            );
          }
        }
        return { appended: inserted.rowCount ?? 0, lastTurn: Math.max(storedLast, batch.lastTurn) };
      }
      return { appended: 0, lastTurn: Math.max(storedLast, batch.lastTurn) };
    });
  }

  async trailHead(sessionId: string): Promise<TrailHead> {
    this.open();
    const id = checkSessionId(sessionId);
    const head = await this.query<{ turn: string; hash: string }>(
      'trailHead',
      'SELECT turn, hash FROM audit_deltas WHERE session_id = $1 ORDER BY turn DESC LIMIT 1',
      [id],
    );
    const owner = await this.query<{ owner: string }>(
      'trailHead',
      'SELECT owner FROM audit_owners WHERE session_id = $1',
      [id],
    );
    const row = head.rows[0];
    return { turn: row ? Number(row.turn) : 0, hash: row?.hash ?? null, owner: owner.rows[0]?.owner ?? null };
  }

  async lastTurn(sessionId: string): Promise<number> {
    this.open();
    const r = await this.query<{ last: string | null }>(
      'lastTurn',
      'SELECT max(turn) AS last FROM audit_deltas WHERE session_id = $1',
      [checkSessionId(sessionId)],
    );
    return Number(r.rows[0]?.last ?? 0);
  }

  async readRows(sessionId: string, fromTurn?: number, limit?: number): Promise<StoredDeltaRow[]> {
    this.open();
    const range = checkReadRange(fromTurn, limit);
    const r = await this.query<{ turn: string; hash: string; json: string }>(
      'readRows',
      'SELECT turn, hash, json FROM audit_deltas WHERE session_id = $1 AND turn >= $2 ORDER BY turn LIMIT $3',
      [checkSessionId(sessionId), range.fromTurn, range.limit],
    );
    return r.rows.map((row) => ({ turn: Number(row.turn), hash: row.hash, json: row.json }));
  }

  async putSession(record: SessionRecord, owner?: string): Promise<void> {
    this.open();
    const { sessionId, text } = sessionText(record);
    const by = owner === undefined ? undefined : checkOwner(owner);
    await this.transaction(`store the record of session ${JSON.stringify(sessionId)}`, async (client) => {
      // The session's lock: a record and an append of the same session are decided one after the other.
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, sessionId]);
      await claim(client, sessionId, by);
      const inserted = await client.query(
        `INSERT INTO audit_sessions (session_id, commitment, liability_snapshot, retain_until, deltas_purged_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id) DO NOTHING`,
        [sessionId, text.commitment, text.liabilitySnapshot, text.retainUntil, text.deltasPurgedAt],
      );
      if (inserted.rowCount === 0) {
        const row = await this.sessionRow(sessionId, client);
        if (row === null || !sameSession(row, text)) throw sessionConflict(sessionId);
      }
      // The session's VFS is purged at termination: its file contents go with it (N13).
      await client.query('DELETE FROM audit_session_files WHERE session_id = $1', [sessionId]);
    });
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    this.open();
    const id = checkSessionId(sessionId);
    const row = await this.sessionRow(id);
    return row === null ? null : sessionRecord(id, row);
  }

  async putTreeHeads(sessionId: string, heads: readonly SignedTreeHead[], frontier?: MerkleAccumulator): Promise<void> {
    this.open();
    const id = checkSessionId(sessionId);
    const rows = treeHeadRows(id, heads, frontier);
    if (rows.length === 0) return;
    await this.query(
      'putTreeHeads',
      `INSERT INTO audit_tree_heads (session_id, final, size, json, frontier)
       SELECT $1, t.final, t.size, t.json, t.frontier FROM unnest($2::boolean[], $3::bigint[], $4::text[], $5::text[]) AS t(final, size, json, frontier)
       ON CONFLICT DO NOTHING`,
      [id, rows.map((r) => r.final), rows.map((r) => r.size), rows.map((r) => r.json), rows.map((r) => r.frontier)],
    );
  }

  async treeHeads(sessionId: string): Promise<SignedTreeHead[]> {
    this.open();
    const r = await this.query<{ json: string }>(
      'treeHeads',
      'SELECT json FROM audit_tree_heads WHERE session_id = $1 ORDER BY final, size',
      [checkSessionId(sessionId)],
    );
    return r.rows.map((row) => parseTreeHead(row.json));
  }

  async lastTreeHead(sessionId: string): Promise<LastTreeHead | null> {
    this.open();
    const r = await this.query<{ json: string; frontier: string | null }>(
      'lastTreeHead',
      'SELECT json, frontier FROM audit_tree_heads WHERE session_id = $1 AND NOT final ORDER BY size DESC LIMIT 1',
      [checkSessionId(sessionId)],
    );
    const row = r.rows[0];
    return row === undefined
      ? null
      : {
          signed: parseTreeHead(row.json),
          frontier: row.frontier === null ? null : (JSON.parse(row.frontier) as MerkleAccumulator),
        };
  }

  async putFile(sessionId: string, content: string, owner?: string): Promise<string> {
    this.open();
    const id = checkSessionId(sessionId);
    const by = owner === undefined ? undefined : checkOwner(owner);
    const text = checkUtf8Text(content, 'file content');
    const hash = sha256HexUtf8(text);
    await this.transaction(`store a file of session ${JSON.stringify(id)}`, async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, id]);
      await claim(client, id, by);
      const recorded = await client.query('SELECT 1 FROM audit_sessions WHERE session_id = $1', [id]);
      if ((recorded.rowCount ?? 0) > 0) throw closedTrailError(id);
      await client.query(
        'INSERT INTO audit_session_files (session_id, hash, content) VALUES ($1, $2, $3) ON CONFLICT (session_id, hash) DO NOTHING',
        [id, hash, Buffer.from(text, 'utf8')],
      );
    });
    return hash;
  }

  async getFile(sessionId: string, contentHash: string): Promise<string | null> {
    this.open();
    const hash = checkContentHash(contentHash);
    if (hash === null) return null;
    const r = await this.query<{ content: Buffer }>(
      'getFile',
      'SELECT content FROM audit_session_files WHERE session_id = $1 AND hash = $2',
      [checkSessionId(sessionId), hash],
    );
    const row = r.rows[0];
    return row === undefined ? null : row.content.toString('utf8');
  }

  async expire(now: number): Promise<ExpiryResult> {
    this.open();
    const at = checkNow(now);
    return this.transaction('expire', async (client) => {
      // Lock in one order, so two expiries running at once cannot deadlock.
      const due = await client.query<{ session_id: string }>(
        `SELECT session_id FROM audit_sessions WHERE retain_until <= $1 AND deltas_purged_at IS NULL
         ORDER BY session_id FOR UPDATE`,
        [at],
      );
      const sessions = due.rows.map((r) => r.session_id);
      if (sessions.length === 0) return { sessions, deltasPurged: 0 };
      await client.query('UPDATE audit_sessions SET deltas_purged_at = $1 WHERE session_id = ANY($2::text[])', [
        at,
        sessions,
      ]);
      const deleted = await client.query('DELETE FROM audit_deltas WHERE session_id = ANY($1::text[])', [sessions]);
      await client.query('DELETE FROM audit_session_files WHERE session_id = ANY($1::text[])', [sessions]);
      await client.query('DELETE FROM audit_tree_heads WHERE session_id = ANY($1::text[]) AND NOT final', [sessions]);
      return { sessions, deltasPurged: deleted.rowCount ?? 0 };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  /** In `client`'s transaction when given, else through the pool with the store's time limits. */
  private async sessionRow(sessionId: string, client?: PoolClient): Promise<SessionText | null> {
    const sql =
      'SELECT commitment, liability_snapshot, retain_until, deltas_purged_at FROM audit_sessions WHERE session_id = $1';
    const r = client
      ? await client.query<SessionRow>(sql, [sessionId])
      : await this.query<SessionRow>('getSession', sql, [sessionId]);
    const row = r.rows[0];
    if (row === undefined) return null;
    return {
      commitment: row.commitment,
      liabilitySnapshot: row.liability_snapshot,
      retainUntil: Number(row.retain_until),
      deltasPurgedAt: row.deltas_purged_at === null ? null : Number(row.deltas_purged_at),
    };
  }

  private async transaction<T>(what: string, fn: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw timeoutError(err, what, this.limits);
    }
    // While checked out, the pool does not listen for the connection's errors: one the server ends
    // (idle_in_transaction_session_timeout, a restart) between two statements must not crash the process.
    let lost: Error | undefined;
    const onError = (e: Error) => {
      lost ??= e;
    };
    client.on('error', onError);
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (err instanceof Error && err.message === 'Query read timeout') {
        // The server has not answered: a ROLLBACK would queue behind the lost statement. Drop the connection
        // (the server rolls back when it sees it gone, or when idle_in_transaction_session_timeout ends it).
        broken = err;
      } else {
        await client.query('ROLLBACK').catch((e: Error) => {
          broken = e;
        });
      }
      throw timeoutError(err, what, this.limits);
    } finally {
      client.removeListener('error', onError);
      // A connection whose rollback failed, or that the server ended, is in an unknown state: drop it rather than reuse it.
      client.release(broken ?? lost);
    }
  }

  /** pool.query, with its time limits reported as AuditStoreTimeoutError. */
  private async query<R extends QueryResultRow>(
    what: string,
    text: string,
    values: unknown[],
  ): Promise<QueryResult<R>> {
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw timeoutError(err, what, this.limits);
    }
  }

  private open(): void {
    if (this.closed) throw new Error('audit store: the PostgreSQL store is closed');
  }
}

/** Only the trail's owner writes it; the first owner to write claims it (under the session's lock). */
async function claim(client: PoolClient, sessionId: string, owner: string | undefined): Promise<void> {
  if (owner === undefined) return;
  await client.query(
    'INSERT INTO audit_owners (session_id, owner) VALUES ($1, $2) ON CONFLICT (session_id) DO NOTHING',
    [sessionId, owner],
  );
  const held = await client.query<{ owner: string }>('SELECT owner FROM audit_owners WHERE session_id = $1', [
    sessionId,
  ]);
  if (held.rows[0]?.owner !== owner) throw ownerConflict(sessionId);
}

/** The URL without its password, for messages and `location`. */
export function redactedUrl(url: string): string {
  try {
    const copy = new URL(url);
    if (copy.password !== '') copy.password = '***';
    return copy.href;
  } catch {
    return '(an unparsable URL)';
  }
}
