/**
 * The PostgreSQL audit store (HV_AUDIT_DATABASE_URL). Any number of processes
 * may open it: the schema is created or upgraded under a transaction-scoped
 * advisory lock, and each append runs in one transaction holding a per-session
 * advisory lock, so concurrent appends to one session are checked one after the
 * other; the rows are written by one multi-row INSERT … ON CONFLICT DO NOTHING,
 * and a row that was nonetheless already there is compared, never skipped blind.
 */
import { Pool, type PoolClient, type PoolConfig } from 'pg';
import type { Delta } from '../audit';
import {
  SCHEMA_VERSION, checkBatch, checkContentHash, checkNow, checkOwner, checkReadRange, checkSessionId, checkUtf8Text, closedTrailError,
  newRows, ownerConflict, purgedError, sameSession, sessionConflict, sessionRecord, sessionText, sha256HexUtf8, type SessionText,
} from './common';
import { HypervisorError } from '../errors';
import type { AppendResult, AuditStore, ExpiryResult, SessionRecord, StoredDeltaRow, TrailHead } from './types';

/** The advisory-lock class of this store (the first key of the two-key form): "hvau". */
const LOCK_CLASS = 0x68766175;
/** The second key under LOCK_CLASS for the schema lock; session locks use hashtext(session id). */
const SCHEMA_LOCK = 0;

/** Migrations: MIGRATIONS[v] takes the schema from version v to v + 1. Every statement is idempotent. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE IF NOT EXISTS audit_deltas (
     session_id text NOT NULL,
     turn bigint NOT NULL,
     hash text NOT NULL,
     json text NOT NULL,
     PRIMARY KEY (session_id, turn)
   );
   CREATE TABLE IF NOT EXISTS audit_sessions (
     session_id text PRIMARY KEY,
     commitment text NOT NULL,
     liability_snapshot text NOT NULL,
     retain_until bigint NOT NULL,
     deltas_purged_at bigint
   );
   CREATE INDEX IF NOT EXISTS audit_sessions_retain ON audit_sessions (retain_until) WHERE deltas_purged_at IS NULL;
   CREATE TABLE IF NOT EXISTS audit_files (
     hash text PRIMARY KEY,
     content bytea NOT NULL
   );`,
  // Kept after expiry, like commitments: an owner's session id is never written by another workflow.
  `CREATE TABLE IF NOT EXISTS audit_owners (
     session_id text PRIMARY KEY,
     owner text NOT NULL
   );`,
];

export interface PostgresAuditStoreOptions {
  /** Connections in the pool (default 10). */
  max?: number;
  /** How long to wait for a connection, in ms (default 10 s). */
  connectionTimeoutMillis?: number;
}

interface SessionRow {
  commitment: string;
  liability_snapshot: string;
  retain_until: string;
  deltas_purged_at: string | null;
}

export class PostgresAuditStore implements AuditStore {
  readonly kind = 'postgres' as const;
  private closed = false;

  private constructor(private readonly pool: Pool) {}

  /** Connect, and create or upgrade the schema. */
  static async open(url: string, options: PostgresAuditStoreOptions = {}): Promise<PostgresAuditStore> {
    const config: PoolConfig = {
      connectionString: url,
      max: options.max ?? 10,
      connectionTimeoutMillis: options.connectionTimeoutMillis ?? 10_000,
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
    return new PostgresAuditStore(pool);
  }

  async append(sessionId: string, deltas: readonly Delta[], owner?: string): Promise<AppendResult> {
    this.open();
    const id = checkSessionId(sessionId);
    const by = owner === undefined ? undefined : checkOwner(owner);
    const batch = checkBatch(id, deltas);
    if (batch === null) return { appended: 0, lastTurn: await this.lastTurn(id) };
    return this.transaction(async (client) => {
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, id]);
      // FOR SHARE: an expiry of this session waits for this append (and then purges its rows too).
      const purged = await client.query<{ deltas_purged_at: string | null }>(
        'SELECT deltas_purged_at FROM audit_sessions WHERE session_id = $1 FOR SHARE', [id]);
      const purgedAt = purged.rows[0]?.deltas_purged_at ?? null;
      if (purgedAt !== null) throw purgedError(id, Number(purgedAt));
      const recorded = purged.rows.length > 0;
      await claim(client, id, by);
      const last = await client.query<{ last: string | null }>('SELECT max(turn) AS last FROM audit_deltas WHERE session_id = $1', [id]);
      const storedLast = Number(last.rows[0]?.last ?? 0);
      const stored = new Map<number, string>();
      if (storedLast >= batch.firstTurn - 1) {
        const have = await client.query<{ turn: string; hash: string }>(
          'SELECT turn, hash FROM audit_deltas WHERE session_id = $1 AND turn BETWEEN $2 AND $3 ORDER BY turn',
          [id, batch.firstTurn - 1, batch.lastTurn]);
        for (const r of have.rows) stored.set(Number(r.turn), r.hash);
      }
      const fresh = newRows(id, batch, storedLast, stored);
      if (fresh.length > 0 && recorded) throw closedTrailError(id);
      if (fresh.length > 0) {
        const inserted = await client.query<{ turn: string }>(
          `INSERT INTO audit_deltas (session_id, turn, hash, json)
           SELECT $1, t.turn, t.hash, t.json FROM unnest($2::bigint[], $3::text[], $4::text[]) AS t(turn, hash, json)
           ON CONFLICT (session_id, turn) DO NOTHING RETURNING turn`,
          [id, fresh.map((r) => r.turn), fresh.map((r) => r.hash), fresh.map((r) => r.json)]);
        if (inserted.rowCount !== fresh.length) {
          // Only possible if a writer bypassed the session lock: compare what it wrote.
          const got = new Set(inserted.rows.map((r) => Number(r.turn)));
          const missing = fresh.filter((r) => !got.has(r.turn));
          const have = await client.query<{ turn: string; hash: string }>(
            'SELECT turn, hash FROM audit_deltas WHERE session_id = $1 AND turn = ANY($2::bigint[])', [id, missing.map((r) => r.turn)]);
          const byTurn = new Map(have.rows.map((r) => [Number(r.turn), r.hash]));
          const bad = missing.find((r) => byTurn.get(r.turn) !== r.hash);
          if (bad !== undefined) {
            throw new HypervisorError('AUDIT_CONFLICT', `audit store: session ${JSON.stringify(id)} already has a different delta at turn ${bad.turn}`, { sessionId: id, turn: bad.turn });
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
    const head = await this.pool.query<{ turn: string; hash: string }>(
      'SELECT turn, hash FROM audit_deltas WHERE session_id = $1 ORDER BY turn DESC LIMIT 1', [id]);
    const owner = await this.pool.query<{ owner: string }>('SELECT owner FROM audit_owners WHERE session_id = $1', [id]);
    const row = head.rows[0];
    return { turn: row ? Number(row.turn) : 0, hash: row?.hash ?? null, owner: owner.rows[0]?.owner ?? null };
  }

  async lastTurn(sessionId: string): Promise<number> {
    this.open();
    const r = await this.pool.query<{ last: string | null }>('SELECT max(turn) AS last FROM audit_deltas WHERE session_id = $1', [checkSessionId(sessionId)]);
    return Number(r.rows[0]?.last ?? 0);
  }

  async readRows(sessionId: string, fromTurn?: number, limit?: number): Promise<StoredDeltaRow[]> {
    this.open();
    const range = checkReadRange(fromTurn, limit);
    const r = await this.pool.query<{ turn: string; hash: string; json: string }>(
      'SELECT turn, hash, json FROM audit_deltas WHERE session_id = $1 AND turn >= $2 ORDER BY turn LIMIT $3',
      [checkSessionId(sessionId), range.fromTurn, range.limit]);
    return r.rows.map((row) => ({ turn: Number(row.turn), hash: row.hash, json: row.json }));
  }

  async putSession(record: SessionRecord, owner?: string): Promise<void> {
    this.open();
    const { sessionId, text } = sessionText(record);
    const by = owner === undefined ? undefined : checkOwner(owner);
    await this.transaction(async (client) => {
      // The session's lock: a record and an append of the same session are decided one after the other.
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, sessionId]);
      await claim(client, sessionId, by);
      const inserted = await client.query(
        `INSERT INTO audit_sessions (session_id, commitment, liability_snapshot, retain_until, deltas_purged_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (session_id) DO NOTHING`,
        [sessionId, text.commitment, text.liabilitySnapshot, text.retainUntil, text.deltasPurgedAt]);
      if (inserted.rowCount === 0) {
        const row = await this.sessionRow(sessionId, client);
        if (row === null || !sameSession(row, text)) throw sessionConflict(sessionId);
      }
    });
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    this.open();
    const id = checkSessionId(sessionId);
    const row = await this.sessionRow(id);
    return row === null ? null : sessionRecord(id, row);
  }

  async putFile(content: string): Promise<string> {
    this.open();
    const text = checkUtf8Text(content, 'file content');
    const hash = sha256HexUtf8(text);
    await this.pool.query('INSERT INTO audit_files (hash, content) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING', [hash, Buffer.from(text, 'utf8')]);
    return hash;
  }

  async getFile(contentHash: string): Promise<string | null> {
    this.open();
    const hash = checkContentHash(contentHash);
    if (hash === null) return null;
    const r = await this.pool.query<{ content: Buffer }>('SELECT content FROM audit_files WHERE hash = $1', [hash]);
    const row = r.rows[0];
    return row === undefined ? null : row.content.toString('utf8');
  }

  async expire(now: number): Promise<ExpiryResult> {
    this.open();
    const at = checkNow(now);
    return this.transaction(async (client) => {
      // Lock in one order, so two expiries running at once cannot deadlock.
      const due = await client.query<{ session_id: string }>(
        `SELECT session_id FROM audit_sessions WHERE retain_until <= $1 AND deltas_purged_at IS NULL
         ORDER BY session_id FOR UPDATE`, [at]);
      const sessions = due.rows.map((r) => r.session_id);
      if (sessions.length === 0) return { sessions, deltasPurged: 0 };
      await client.query('UPDATE audit_sessions SET deltas_purged_at = $1 WHERE session_id = ANY($2::text[])', [at, sessions]);
      const deleted = await client.query('DELETE FROM audit_deltas WHERE session_id = ANY($1::text[])', [sessions]);
      return { sessions, deltasPurged: deleted.rowCount ?? 0 };
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async sessionRow(sessionId: string, client: Pool | PoolClient = this.pool): Promise<SessionText | null> {
    const r = await client.query<SessionRow>(
      'SELECT commitment, liability_snapshot, retain_until, deltas_purged_at FROM audit_sessions WHERE session_id = $1', [sessionId]);
    const row = r.rows[0];
    if (row === undefined) return null;
    return {
      commitment: row.commitment,
      liabilitySnapshot: row.liability_snapshot,
      retainUntil: Number(row.retain_until),
      deltasPurgedAt: row.deltas_purged_at === null ? null : Number(row.deltas_purged_at),
    };
  }

  private async transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
      throw err;
    } finally {
      // A connection whose rollback failed is in an unknown state: drop it rather than reuse it.
      client.release(broken);
    }
  }

  private open(): void {
    if (this.closed) throw new Error('audit store: the PostgreSQL store is closed');
  }
}

/** Only the trail's owner writes it; the first owner to write claims it (under the session's lock). */
async function claim(client: PoolClient, sessionId: string, owner: string | undefined): Promise<void> {
  if (owner === undefined) return;
  await client.query('INSERT INTO audit_owners (session_id, owner) VALUES ($1, $2) ON CONFLICT (session_id) DO NOTHING', [sessionId, owner]);
  const held = await client.query<{ owner: string }>('SELECT owner FROM audit_owners WHERE session_id = $1', [sessionId]);
  if (held.rows[0]?.owner !== owner) throw ownerConflict(sessionId);
}

/** Create or upgrade the schema under an advisory lock, in one transaction: two processes opening at once agree. */
async function migrate(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, SCHEMA_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS audit_schema_version (version integer NOT NULL)');
    const r = await client.query<{ version: number }>('SELECT version FROM audit_schema_version');
    const current = r.rows[0]?.version ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(`audit store: the database has schema version ${current}; this code knows up to ${SCHEMA_VERSION} (upgrade it)`);
    }
    for (let v = current; v < SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v]!);
    if (r.rows.length === 0) await client.query('INSERT INTO audit_schema_version (version) VALUES ($1)', [SCHEMA_VERSION]);
    else if (current !== SCHEMA_VERSION) await client.query('UPDATE audit_schema_version SET version = $1', [SCHEMA_VERSION]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
