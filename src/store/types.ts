/**
 * The audit store (SPEC §7 [resolved]): where a session's trail lives for its
 * retention period, outside the workflow engine. One interface, two adapters —
 * SQLite (embedded default) and PostgreSQL (HV_AUDIT_DATABASE_URL) — held to
 * one contract suite (tests/store/).
 *
 * Deltas are stored as the exact JSON text the session produced, next to the
 * columns the store needs (session, turn, hash): verification re-parses and
 * re-hashes that text, so an edit to a stored row is found and named by turn.
 */
import type { Commitment, JsonValue } from '../core/commitment';
import type { Delta } from '../core/audit';
import type { MerkleAccumulator } from '../core/merkle';
import type { SignedTreeHead } from './treeHeads';

/** One stored delta as it sits in the store: its turn, its hash column and its JSON text. */
export interface StoredDeltaRow {
  turn: number;
  hash: string;
  json: string;
}

/** What termination stores: the commitment, the liability snapshot, and until when the deltas are kept. */
export interface SessionRecord {
  sessionId: string;
  commitment: Commitment;
  liabilitySnapshot: JsonValue;
  /** Epoch ms; deltas are dropped at or after it. Roots and commitments are kept forever. */
  retainUntil: number;
  /** Epoch ms when the deltas were dropped by expiry, else null. */
  deltasPurgedAt: number | null;
}

export interface AppendResult {
  /** Deltas newly written by this call (0 when the whole batch was already stored). */
  appended: number;
  /** The session's last stored turn after the call. */
  lastTurn: number;
}

/** Where a trail stands: its last stored turn and that turn's hash, and who owns it. */
export interface TrailHead {
  turn: number;
  hash: string | null;
  /** The owning session workflow (see append), null for a trail stored before owners were kept. */
  owner: string | null;
}

/** The newest per-turn tree head stored for a session, and the Merkle frontier at its size when kept. */
export interface LastTreeHead {
  signed: SignedTreeHead;
  frontier: MerkleAccumulator | null;
}

export interface ExpiryResult {
  sessions: string[];
  deltasPurged: number;
}

export interface AuditStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Where it is, for people: the SQLite file's path, or the PostgreSQL URL without its password. */
  readonly location: string;
  /**
   * Append consecutive deltas of one session, in one transaction, idempotent
   * by (session, turn): a turn already stored with the same hash is skipped; a
   * stored turn with a different hash is AUDIT_CONFLICT; a batch that would
   * leave a gap (its first new turn > last stored turn + 1) is AUDIT_GAP; a
   * batch that is not consecutive or names another session is INVALID_INPUT.
   * Each delta must be a well-formed Delta whose hash is deltaHash(delta) and
   * whose parent is its predecessor's hash (INVALID_INPUT within the batch;
   * AUDIT_CONFLICT when the first new delta does not name the stored turn
   * before it). A session whose deltas expiry purged takes no more
   * (AUDIT_CONFLICT), nor does one whose record (commitment) is stored.
   * `owner`: the session workflow writing (its workflow id and first run id);
   * the first owner to write a trail keeps it, and any other is AUDIT_CONFLICT.
   * All or nothing.
   */
  append(sessionId: string, deltas: readonly Delta[], owner?: string): Promise<AppendResult>;
  /** The trail's last stored turn, its hash and its owner (turn 0 and nulls when none). */
  trailHead(sessionId: string): Promise<TrailHead>;
  /** The last stored turn of a session, 0 when none. */
  lastTurn(sessionId: string): Promise<number>;
  /** Stored rows with fromTurn ≤ turn, in turn order, at most `limit` (default: all). */
  readRows(sessionId: string, fromTurn?: number, limit?: number): Promise<StoredDeltaRow[]>;
  /**
   * Store what termination leaves. Idempotent; a different record for the same
   * session is AUDIT_CONFLICT. Records compare by canonical JSON of commitment
   * and snapshot plus retainUntil; deltasPurgedAt is the store's own and ignored.
   * `owner`: as for append — only the trail's owner may store its record.
   */
  putSession(record: SessionRecord, owner?: string): Promise<void>;
  getSession(sessionId: string): Promise<SessionRecord | null>;
  /**
   * Keep the hypervisor's signed tree heads (src/store/treeHeads.ts), one per
   * size (and one final head): a head already stored for a size is kept (a
   * retried batch signs again, with another time). `frontier`: the Merkle
   * frontier at the last head's size, so the next batch need not read the trail.
   * The store does not check signatures: a verifier does, with the hypervisor's DID.
   */
  putTreeHeads(sessionId: string, heads: readonly SignedTreeHead[], frontier?: MerkleAccumulator): Promise<void>;
  /** Every stored tree head of a session: per-turn heads by size, then the final one. */
  treeHeads(sessionId: string): Promise<SignedTreeHead[]>;
  /** The per-turn head of the largest size, with its frontier when kept; null when none. */
  lastTreeHead(sessionId: string): Promise<LastTreeHead | null>;
  /** Content-addressed file contents: returns the SHA-256 hex of the UTF-8 text. Idempotent. */
  putFile(sessionId: string, content: string, owner?: string): Promise<string>;
  getFile(sessionId: string, contentHash: string): Promise<string | null>;
  /** Drop the deltas (and their per-turn tree heads) of every session whose retainUntil ≤ now; commitments, roots and final heads stay. */
  expire(now: number): Promise<ExpiryResult>;
  close(): Promise<void>;
}
