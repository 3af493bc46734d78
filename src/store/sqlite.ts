/**
 * The embedded audit store: one SQLite file (WAL, so readers never block the
 * writer), opened by any number of processes. Every append is one IMMEDIATE
 * transaction — the write lock is taken before the store is read, so two
 * writers never decide on the same stale view; a writer that finds the lock
 * held waits (busy timeout) rather than failing.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { Delta } from '../core/audit';
import {
  SCHEMA_VERSION,
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
  type CheckedBatch,
  type SessionText,
} from './common';
import type {
  AppendResult,
  AuditStore,
  ExpiryResult,
  LastTreeHead,
  SessionRecord,
  StoredDeltaRow,
  TrailHead,
} from './types';
import type { MerkleAccumulator } from '../core/merkle';
import type { SignedTreeHead } from './treeHeads';

/** Migrations: MIGRATIONS[v] takes the schema from version v to v + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit_deltas (
     session_id TEXT NOT NULL,
     turn INTEGER NOT NULL,
     hash TEXT NOT NULL,
     json TEXT NOT NULL,
     PRIMARY KEY (session_id, turn)
   ) WITHOUT ROWID;
   CREATE TABLE audit_sessions (
     session_id TEXT PRIMARY KEY,
     commitment TEXT NOT NULL,
     liability_snapshot TEXT NOT NULL,
     retain_until INTEGER NOT NULL,
     deltas_purged_at INTEGER
   );
   CREATE INDEX audit_sessions_retain ON audit_sessions (retain_until) WHERE deltas_purged_at IS NULL;
   CREATE TABLE audit_files (
     hash TEXT PRIMARY KEY,
     content BLOB NOT NULL
   );`,
  // Kept after expiry, like commitments: an owner's session id is never written by another workflow.
  `CREATE TABLE audit_owners (
     session_id TEXT PRIMARY KEY,
     owner TEXT NOT NULL
   ) WITHOUT ROWID;`,
  // 2 → 3: another branch's (VFS files); its statement replaces this one when merged. Every later one is idempotent.
  // N13: file contents belong to their session (deleted with its VFS at termination, and at expiry).
  `CREATE TABLE IF NOT EXISTS audit_session_files (
     session_id TEXT NOT NULL,
     hash TEXT NOT NULL,
     content BLOB NOT NULL,
     PRIMARY KEY (session_id, hash)
   ) WITHOUT ROWID;`,
  // The hypervisor's signed tree heads (issue 24, N14): one per stored turn and a final one; not the key, which is the worker's.
  `CREATE TABLE IF NOT EXISTS audit_tree_heads (
     session_id TEXT NOT NULL,
     final INTEGER NOT NULL,
     size INTEGER NOT NULL,
     json TEXT NOT NULL,
     frontier TEXT,
     PRIMARY KEY (session_id, final, size)
   ) WITHOUT ROWID;`,
];

export interface SqliteAuditStoreOptions {
  /** How long a writer waits for another connection's write lock, in ms (default 30 s). */
  busyTimeoutMs?: number;
}

interface SessionRow {
  commitment: string;
  liability_snapshot: string;
  retain_until: number;
  deltas_purged_at: number | null;
}

export class SqliteAuditStore implements AuditStore {
  readonly kind = 'sqlite' as const;
  readonly file: string;
  readonly location: string;
  private readonly db: Database.Database;
  private readonly stmt;
  private readonly appendTx: Database.Transaction<
    (sessionId: string, batch: CheckedBatch, owner: string | undefined) => AppendResult
  >;
  private readonly expireTx: Database.Transaction<(now: number) => ExpiryResult>;
  private closed = false;
  private readonly claim: (sessionId: string, owner: string | undefined) => void;

  constructor(file: string, options: SqliteAuditStoreOptions = {}) {
    this.file = file;
    this.location = file === ':memory:' ? file : path.resolve(file);
    if (file !== ':memory:') fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    this.db = new Database(file, { timeout: options.busyTimeoutMs ?? 30_000 });
    try {
      this.db.pragma('journal_mode = WAL');
      // Each committed append survives a power cut, not only a crash of the process.
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      migrate(this.db);
    } catch (err) {
      this.db.close();
      throw err;
    }
    const db = this.db;
    this.stmt = {
      lastTurn: db.prepare<[string], { last: number | null }>(
        'SELECT max(turn) AS last FROM audit_deltas WHERE session_id = ?',
      ),
      hashesBetween: db.prepare<[string, number, number], { turn: number; hash: string }>(
        'SELECT turn, hash FROM audit_deltas WHERE session_id = ? AND turn BETWEEN ? AND ? ORDER BY turn',
      ),
      insertDelta: db.prepare<[string, number, string, string]>(
        'INSERT INTO audit_deltas (session_id, turn, hash, json) VALUES (?, ?, ?, ?)',
      ),
      readRows: db.prepare<[string, number, number], StoredDeltaRow>(
        'SELECT turn, hash, json FROM audit_deltas WHERE session_id = ? AND turn >= ? ORDER BY turn LIMIT ?',
      ),
      purgedAt: db.prepare<[string], { deltas_purged_at: number | null }>(
        'SELECT deltas_purged_at FROM audit_sessions WHERE session_id = ?',
      ),
      insertSession: db.prepare<[string, string, string, number, number | null]>(
        `INSERT INTO audit_sessions (session_id, commitment, liability_snapshot, retain_until, deltas_purged_at)
         VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING`,
      ),
      getSession: db.prepare<[string], SessionRow>(
        'SELECT commitment, liability_snapshot, retain_until, deltas_purged_at FROM audit_sessions WHERE session_id = ?',
      ),
      insertFile: db.prepare<[string, string, Buffer]>(
        'INSERT INTO audit_session_files (session_id, hash, content) VALUES (?, ?, ?) ON CONFLICT (session_id, hash) DO NOTHING',
      ),
      getFile: db.prepare<[string, string], { content: Buffer }>(
        'SELECT content FROM audit_session_files WHERE session_id = ? AND hash = ?',
      ),
      deleteFiles: db.prepare<[string]>('DELETE FROM audit_session_files WHERE session_id = ?'),
      expiring: db.prepare<[number], { session_id: string }>(
        'SELECT session_id FROM audit_sessions WHERE retain_until <= ? AND deltas_purged_at IS NULL ORDER BY session_id',
      ),
      markPurged: db.prepare<[number, string]>('UPDATE audit_sessions SET deltas_purged_at = ? WHERE session_id = ?'),
      deleteDeltas: db.prepare<[string]>('DELETE FROM audit_deltas WHERE session_id = ?'),
      getOwner: db.prepare<[string], { owner: string }>('SELECT owner FROM audit_owners WHERE session_id = ?'),
      insertOwner: db.prepare<[string, string]>('INSERT INTO audit_owners (session_id, owner) VALUES (?, ?)'),
      headRow: db.prepare<[string], { turn: number; hash: string }>(
        'SELECT turn, hash FROM audit_deltas WHERE session_id = ? ORDER BY turn DESC LIMIT 1',
      ),
      hasSession: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM audit_sessions WHERE session_id = ?'),
      insertHead: db.prepare<[string, number, number, string, string | null]>(
        'INSERT INTO audit_tree_heads (session_id, final, size, json, frontier) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      heads: db.prepare<[string], { json: string }>(
        'SELECT json FROM audit_tree_heads WHERE session_id = ? ORDER BY final, size',
      ),
      lastHead: db.prepare<[string], { json: string; frontier: string | null }>(
        'SELECT json, frontier FROM audit_tree_heads WHERE session_id = ? AND final = 0 ORDER BY size DESC LIMIT 1',
      ),
      deleteHeads: db.prepare<[string]>('DELETE FROM audit_tree_heads WHERE session_id = ? AND final = 0'),
    };
    /** Only the trail's owner writes it; the first owner to write claims it. */
    const claim = (sessionId: string, owner: string | undefined) => {
      if (owner === undefined) return;
      const held = this.stmt.getOwner.get(sessionId)?.owner;
      if (held === undefined) this.stmt.insertOwner.run(sessionId, owner);
      else if (held !== owner) throw ownerConflict(sessionId);
    };
    this.claim = claim;

    this.appendTx = db.transaction(
      (sessionId: string, batch: CheckedBatch, owner: string | undefined): AppendResult => {
        const purged = this.stmt.purgedAt.get(sessionId)?.deltas_purged_at ?? null;
        if (purged !== null) throw purgedError(sessionId, purged);
        claim(sessionId, owner);
        const storedLast = this.stmt.lastTurn.get(sessionId)?.last ?? 0;
        const stored = new Map<number, string>();
        if (storedLast >= batch.firstTurn - 1) {
          for (const r of this.stmt.hashesBetween.all(sessionId, batch.firstTurn - 1, batch.lastTurn))
            stored.set(r.turn, r.hash);
        }
        const fresh = newRows(sessionId, batch, storedLast, stored);
        if (fresh.length > 0 && this.stmt.hasSession.get(sessionId) !== undefined) throw closedTrailError(sessionId);
        for (const row of fresh) this.stmt.insertDelta.run(sessionId, row.turn, row.hash, row.json);
        return { appended: fresh.length, lastTurn: Math.max(storedLast, batch.lastTurn) };
      },
    );

    this.expireTx = db.transaction((now: number): ExpiryResult => {
      const sessions = this.stmt.expiring.all(now).map((r) => r.session_id);
      let deltasPurged = 0;
      for (const id of sessions) {
        deltasPurged += this.stmt.deleteDeltas.run(id).changes;
        this.stmt.deleteFiles.run(id);
        this.stmt.deleteHeads.run(id);
        this.stmt.markPurged.run(now, id);
      }
      return { sessions, deltasPurged };
    });
  }

  async append(sessionId: string, deltas: readonly Delta[], owner?: string): Promise<AppendResult> {
    this.open();
    const id = checkSessionId(sessionId);
    const by = owner === undefined ? undefined : checkOwner(owner);
    const batch = checkBatch(id, deltas);
    if (batch === null) return { appended: 0, lastTurn: await this.lastTurn(id) };
    // IMMEDIATE: take the write lock before reading, so the checks hold at commit.
    return this.appendTx.immediate(id, batch, by);
  }

  async trailHead(sessionId: string): Promise<TrailHead> {
    this.open();
    const id = checkSessionId(sessionId);
    const head = this.stmt.headRow.get(id);
    return { turn: head?.turn ?? 0, hash: head?.hash ?? null, owner: this.stmt.getOwner.get(id)?.owner ?? null };
  }

  async lastTurn(sessionId: string): Promise<number> {
    this.open();
    return this.stmt.lastTurn.get(checkSessionId(sessionId))?.last ?? 0;
  }

  async readRows(sessionId: string, fromTurn?: number, limit?: number): Promise<StoredDeltaRow[]> {
    this.open();
    const range = checkReadRange(fromTurn, limit);
    return this.stmt.readRows
      .all(checkSessionId(sessionId), range.fromTurn, range.limit ?? -1)
      .map((r) => ({ turn: r.turn, hash: r.hash, json: r.json }));
  }

  async putSession(record: SessionRecord, owner?: string): Promise<void> {
    this.open();
    const { sessionId, text } = sessionText(record);
    const by = owner === undefined ? undefined : checkOwner(owner);
    const put = this.db.transaction(() => {
      this.claim(sessionId, by);
      const inserted = this.stmt.insertSession.run(
        sessionId,
        text.commitment,
        text.liabilitySnapshot,
        text.retainUntil,
        text.deltasPurgedAt,
      ).changes;
      if (inserted === 0 && !sameSession(toText(this.stmt.getSession.get(sessionId)!), text))
        throw sessionConflict(sessionId);
      // The session's VFS is purged at termination: its file contents go with it (N13).
      this.stmt.deleteFiles.run(sessionId);
    });
    put.immediate();
  }

  async getSession(sessionId: string): Promise<SessionRecord | null> {
    this.open();
    const id = checkSessionId(sessionId);
    const row = this.stmt.getSession.get(id);
    return row === undefined ? null : sessionRecord(id, toText(row));
  }

  async putTreeHeads(sessionId: string, heads: readonly SignedTreeHead[], frontier?: MerkleAccumulator): Promise<void> {
    this.open();
    const id = checkSessionId(sessionId);
    const rows = treeHeadRows(id, heads, frontier);
    this.db
      .transaction(() => {
        for (const r of rows) this.stmt.insertHead.run(id, r.final ? 1 : 0, r.size, r.json, r.frontier);
      })
      .immediate();
  }

  async treeHeads(sessionId: string): Promise<SignedTreeHead[]> {
    this.open();
    return this.stmt.heads.all(checkSessionId(sessionId)).map((r) => parseTreeHead(r.json));
  }

  async lastTreeHead(sessionId: string): Promise<LastTreeHead | null> {
    this.open();
    const row = this.stmt.lastHead.get(checkSessionId(sessionId));
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
    this.db
      .transaction(() => {
        this.claim(id, by);
        if (this.stmt.hasSession.get(id) !== undefined) throw closedTrailError(id);
        this.stmt.insertFile.run(id, hash, Buffer.from(text, 'utf8'));
      })
      .immediate();
    return hash;
  }

  async getFile(sessionId: string, contentHash: string): Promise<string | null> {
    this.open();
    const hash = checkContentHash(contentHash);
    if (hash === null) return null;
    const row = this.stmt.getFile.get(checkSessionId(sessionId), hash);
    return row === undefined ? null : row.content.toString('utf8');
  }

  async expire(now: number): Promise<ExpiryResult> {
    this.open();
    const at = checkNow(now);
    return this.expireTx.immediate(at);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  private open(): void {
    if (this.closed) throw new Error('audit store: the SQLite store is closed');
  }
}

function toText(row: SessionRow): SessionText {
  return {
    commitment: row.commitment,
    liabilitySnapshot: row.liability_snapshot,
    retainUntil: row.retain_until,
    deltasPurgedAt: row.deltas_purged_at,
  };
}

/** Create or upgrade the schema in one IMMEDIATE transaction, so two processes opening a new file agree. */
function migrate(db: Database.Database): void {
  const run = db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = db.prepare<[], { version: number }>('SELECT version FROM schema_version').get();
    const current = row?.version ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `audit store: ${db.name} has schema version ${current}; this code knows up to ${SCHEMA_VERSION} (upgrade it)`,
      );
    }
    for (let v = current; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    if (row === undefined) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
    else if (current !== SCHEMA_VERSION) db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
  });
  run.immediate();
}
