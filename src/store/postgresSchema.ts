/**
 * The PostgreSQL audit store's schema: its migrations, applied in order under
 * a transaction-scoped advisory lock so that processes opening one database at
 * once agree on one schema.
 */
import type { Pool } from 'pg';
import { SCHEMA_VERSION } from './common';

/** The advisory-lock class of this store (the first key of the two-key form): "hvau". */
export const LOCK_CLASS = 0x68766175;
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
  // 2 → 3: another branch's (VFS files); its statement replaces this one when merged.
  // N13: file contents belong to their session (deleted with its VFS at termination, and at expiry).
  `CREATE TABLE IF NOT EXISTS audit_session_files (
     session_id text NOT NULL,
     hash text NOT NULL,
     content bytea NOT NULL,
     PRIMARY KEY (session_id, hash)
   );`,
  // The hypervisor's signed tree heads (issue 24, N14): one per stored turn and a final one; not the key, which is the worker's.
  `CREATE TABLE IF NOT EXISTS audit_tree_heads (
     session_id text NOT NULL,
     final boolean NOT NULL,
     size bigint NOT NULL,
     json text NOT NULL,
     frontier text,
     PRIMARY KEY (session_id, final, size)
   );`,
];

/** Create or upgrade the schema under an advisory lock, in one transaction: two processes opening at once agree. */
export async function migrate(pool: Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_CLASS, SCHEMA_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS audit_schema_version (version integer NOT NULL)');
    const r = await client.query<{ version: number }>('SELECT version FROM audit_schema_version');
    const current = r.rows[0]?.version ?? 0;
    if (current > SCHEMA_VERSION) {
      throw new Error(
        `audit store: the database has schema version ${current}; this code knows up to ${SCHEMA_VERSION} (upgrade it)`,
      );
    }
    for (let v = current; v < SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v]!);
    if (r.rows.length === 0)
      await client.query('INSERT INTO audit_schema_version (version) VALUES ($1)', [SCHEMA_VERSION]);
    else if (current !== SCHEMA_VERSION)
      await client.query('UPDATE audit_schema_version SET version = $1', [SCHEMA_VERSION]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}
