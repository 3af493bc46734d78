/**
 * What both audit-store adapters share: the checks a batch of deltas passes
 * before any store is touched, the rules applied against what is stored, and
 * the text form of a session record. The adapters only read and write rows.
 */
import { createHash } from 'node:crypto';
import { DeltaSchema, deltaHash, type Delta } from '../core/audit';
import { canonicalJson } from '../core/hash';
import { HypervisorError } from '../core/errors';
import type { Commitment, JsonValue } from '../core/commitment';
import type { SessionRecord, StoredDeltaRow } from './types';
import type { MerkleAccumulator } from '../core/merkle';
import type { SignedTreeHead } from './treeHeads';

/**
 * The schema version this code writes; a store opened with a newer one is refused.
 * 3 is another branch's (VFS files); 4 adds the hypervisor's tree heads (issue 24, N14).
 */
export const SCHEMA_VERSION = 4;

// Lone surrogates (not encodable as UTF-8) and NUL (PostgreSQL text cannot hold it).
const BAD_TEXT = /[\u0000]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** A session id as the store keys it: what DeltaSchema accepts, and text every engine stores exactly. */
export function checkSessionId(sessionId: unknown): string {
  if (typeof sessionId !== 'string' || sessionId.length === 0 || sessionId.length > 256) {
    throw new HypervisorError('INVALID_INPUT', 'audit store: a session id must be a string of 1–256 characters');
  }
  if (BAD_TEXT.test(sessionId)) {
    throw new HypervisorError(
      'INVALID_INPUT',
      'audit store: a session id must not contain NUL or an unpaired surrogate',
    );
  }
  return sessionId;
}

/** Text stored as UTF-8 must round-trip: no unpaired surrogates. NUL is allowed (files are stored as bytes). */
export function checkUtf8Text(text: unknown, what: string): string {
  if (typeof text !== 'string') throw new HypervisorError('INVALID_INPUT', `audit store: ${what} must be a string`);
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `audit store: ${what} contains an unpaired surrogate, which UTF-8 cannot hold`,
    );
  }
  return text;
}

export function sha256HexUtf8(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

export function checkContentHash(contentHash: unknown): string | null {
  return typeof contentHash === 'string' && /^[0-9a-f]{64}$/.test(contentHash) ? contentHash : null;
}

/** A batch ready to write: each delta's row, in turn order. */
export interface CheckedBatch {
  rows: StoredDeltaRow[];
  deltas: readonly Delta[];
  firstTurn: number;
  lastTurn: number;
}

/**
 * Everything about a batch that needs no store: every delta is a well-formed
 * Delta (strict, so no field outside the hash can ride along in the stored
 * text) of this session, its hash is right, the turns are consecutive and
 * each delta names its predecessor in the batch as parent.
 */
export function checkBatch(sessionId: string, deltas: readonly Delta[]): CheckedBatch | null {
  if (!Array.isArray(deltas)) throw new HypervisorError('INVALID_INPUT', 'audit store: deltas must be an array');
  if (deltas.length === 0) return null;
  const rows: StoredDeltaRow[] = [];
  for (let i = 0; i < deltas.length; i++) {
    const delta = deltas[i] as Delta;
    const parsed = DeltaSchema.safeParse(delta);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new HypervisorError(
        'INVALID_INPUT',
        `audit store: delta ${i} of the batch is not a delta: ${issue ? `${issue.path.join('.') || '(root)'} ${issue.message}` : 'invalid'}`,
      );
    }
    if (delta.sessionId !== sessionId) {
      throw new HypervisorError(
        'INVALID_INPUT',
        `audit store: delta ${i} of the batch belongs to session ${JSON.stringify(delta.sessionId)}, not ${JSON.stringify(sessionId)}`,
        { turn: delta.turn },
      );
    }
    if (i > 0) {
      const prev = deltas[i - 1] as Delta;
      if (delta.turn !== prev.turn + 1) {
        throw new HypervisorError(
          'INVALID_INPUT',
          `audit store: the batch is not consecutive: turn ${delta.turn} follows turn ${prev.turn}`,
          { turn: delta.turn },
        );
      }
      if (delta.parentHash !== prev.hash) {
        throw new HypervisorError(
          'INVALID_INPUT',
          `audit store: the batch's chain is broken: turn ${delta.turn} does not name turn ${prev.turn}'s hash as its parent`,
          { turn: delta.turn },
        );
      }
    } else if (delta.turn === 1 && delta.parentHash !== null) {
      throw new HypervisorError('INVALID_INPUT', 'audit store: turn 1 must have no parent', { turn: 1 });
    }
    const expected = deltaHash(delta);
    if (delta.hash !== expected) {
      throw new HypervisorError(
        'INVALID_INPUT',
        `audit store: the hash of turn ${delta.turn} does not match its content`,
        { turn: delta.turn },
      );
    }
    rows.push({ turn: delta.turn, hash: delta.hash, json: JSON.stringify(delta) });
  }
  return { rows, deltas, firstTurn: rows[0]!.turn, lastTurn: rows[rows.length - 1]!.turn };
}

/**
 * The rows of a batch still to write, given what the store holds: `stored`
 * maps turn → hash for the stored turns in [firstTurn − 1, lastTurn].
 * Throws AUDIT_CONFLICT or AUDIT_GAP as the interface describes.
 */
export function newRows(
  sessionId: string,
  batch: CheckedBatch,
  storedLast: number,
  stored: ReadonlyMap<number, string>,
): StoredDeltaRow[] {
  const { rows, firstTurn } = batch;
  for (const row of rows) {
    if (row.turn > storedLast) break;
    const have = stored.get(row.turn);
    if (have !== undefined && have !== row.hash) {
      throw new HypervisorError(
        'AUDIT_CONFLICT',
        `audit store: session ${JSON.stringify(sessionId)} already has a different delta at turn ${row.turn}`,
        { sessionId, turn: row.turn },
      );
    }
  }
  if (firstTurn > storedLast + 1) {
    throw new HypervisorError(
      'AUDIT_GAP',
      `audit store: session ${JSON.stringify(sessionId)} has turns up to ${storedLast}; a batch starting at turn ${firstTurn} would leave a gap`,
      { sessionId, lastTurn: storedLast, firstTurn },
    );
  }
  const fresh = rows.filter((r) => r.turn > storedLast);
  const first = fresh[0];
  if (first !== undefined && first.turn === firstTurn && firstTurn > 1) {
    // The batch's own chain links every later delta; only its first one links to the store.
    const parent = stored.get(firstTurn - 1);
    const delta = batch.deltas[0] as Delta;
    if (parent === undefined || delta.parentHash !== parent) {
      throw new HypervisorError(
        'AUDIT_CONFLICT',
        `audit store: turn ${firstTurn} of session ${JSON.stringify(sessionId)} does not name the stored turn ${firstTurn - 1}'s hash as its parent`,
        { sessionId, turn: firstTurn },
      );
    }
  }
  return fresh;
}

/**
 * The session workflow that owns a trail: its workflow id and the first run of
 * its chain (continue-as-new keeps it; a cron run, a retry or another start
 * under the same id does not have the owner's). The worker derives it from the
 * activity's own info, never from the request.
 */
export function checkOwner(owner: unknown): string {
  if (typeof owner !== 'string' || owner.length === 0 || owner.length > 1024 || BAD_TEXT.test(owner)) {
    throw new HypervisorError('INVALID_INPUT', 'audit store: a trail owner must be a string of 1–1024 characters');
  }
  return owner;
}

/** A write to a trail by a workflow other than the one that started it. */
export function ownerConflict(sessionId: string): HypervisorError {
  return new HypervisorError(
    'AUDIT_CONFLICT',
    `audit store: the trail of session ${JSON.stringify(sessionId)} belongs to another session workflow; only the workflow that started it may add to it or close it`,
    { sessionId },
  );
}

/** A delta for a trail whose session already stored its commitment (terminated). */
export function closedTrailError(sessionId: string): HypervisorError {
  return new HypervisorError(
    'AUDIT_CONFLICT',
    `audit store: session ${JSON.stringify(sessionId)} was terminated and its commitment stored; its trail takes no more deltas`,
    { sessionId },
  );
}

export function purgedError(sessionId: string, at: number): HypervisorError {
  return new HypervisorError(
    'AUDIT_CONFLICT',
    `audit store: the deltas of session ${JSON.stringify(sessionId)} were purged at ${new Date(at).toISOString()}; none can be added`,
    { sessionId, deltasPurgedAt: at },
  );
}

/** A session record as stored: canonical JSON text, so equal records are equal text. */
export interface SessionText {
  commitment: string;
  liabilitySnapshot: string;
  retainUntil: number;
  deltasPurgedAt: number | null;
}

export function sessionText(record: SessionRecord): { sessionId: string; text: SessionText } {
  if (typeof record !== 'object' || record === null)
    throw new HypervisorError('INVALID_INPUT', 'audit store: a session record must be an object');
  const sessionId = checkSessionId(record.sessionId);
  if (
    typeof record.commitment !== 'object' ||
    record.commitment === null ||
    record.commitment.sessionId !== sessionId
  ) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `audit store: the commitment must be that of session ${JSON.stringify(sessionId)}`,
    );
  }
  if (!Number.isSafeInteger(record.retainUntil))
    throw new HypervisorError('INVALID_INPUT', 'audit store: retainUntil must be an integer (epoch ms)');
  const purged = record.deltasPurgedAt ?? null;
  if (purged !== null && !Number.isSafeInteger(purged))
    throw new HypervisorError('INVALID_INPUT', 'audit store: deltasPurgedAt must be an integer (epoch ms) or null');
  return {
    sessionId,
    text: {
      commitment: checkUtf8Text(canonicalJson(record.commitment), 'the commitment'),
      liabilitySnapshot: checkUtf8Text(
        canonicalJson(record.liabilitySnapshot === undefined ? null : record.liabilitySnapshot),
        'the liability snapshot',
      ),
      retainUntil: record.retainUntil,
      deltasPurgedAt: purged,
    },
  };
}

/** putSession's rule: the same commitment, snapshot and retention is the same record (deltasPurgedAt is the store's own). */
export function sameSession(a: SessionText, b: SessionText): boolean {
  return (
    a.commitment === b.commitment && a.liabilitySnapshot === b.liabilitySnapshot && a.retainUntil === b.retainUntil
  );
}

export function sessionConflict(sessionId: string): HypervisorError {
  return new HypervisorError(
    'AUDIT_CONFLICT',
    `audit store: session ${JSON.stringify(sessionId)} already has a different record`,
    { sessionId },
  );
}

export function sessionRecord(sessionId: string, text: SessionText): SessionRecord {
  return {
    sessionId,
    commitment: JSON.parse(text.commitment) as Commitment,
    liabilitySnapshot: JSON.parse(text.liabilitySnapshot) as JsonValue,
    retainUntil: text.retainUntil,
    deltasPurgedAt: text.deltasPurgedAt,
  };
}

export function checkReadRange(fromTurn: unknown, limit: unknown): { fromTurn: number; limit: number | null } {
  const from = fromTurn === undefined ? 1 : fromTurn;
  if (typeof from !== 'number' || !Number.isSafeInteger(from))
    throw new HypervisorError('INVALID_INPUT', 'audit store: fromTurn must be an integer');
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0)) {
    throw new HypervisorError('INVALID_INPUT', 'audit store: limit must be a non-negative integer');
  }
  return { fromTurn: from, limit: limit === undefined ? null : limit };
}

export function checkNow(now: unknown): number {
  if (typeof now !== 'number' || !Number.isSafeInteger(now))
    throw new HypervisorError('INVALID_INPUT', 'audit store: now must be an integer (epoch ms)');
  return now;
}

/** A tree head row: the signed head as JSON text, its size, whether it is the final one, and the frontier kept with it. */
export interface TreeHeadRow {
  size: number;
  final: boolean;
  json: string;
  frontier: string | null;
}

/** The rows to write for a batch of heads (the frontier rides on the largest non-final one). */
export function treeHeadRows(
  sessionId: string,
  heads: readonly SignedTreeHead[],
  frontier?: MerkleAccumulator,
): TreeHeadRow[] {
  if (!Array.isArray(heads)) throw new HypervisorError('INVALID_INPUT', 'audit store: tree heads must be an array');
  let last = -1;
  heads.forEach((h, i) => {
    if (
      typeof h !== 'object' ||
      h === null ||
      typeof h.treeHead !== 'object' ||
      h.treeHead === null ||
      h.treeHead.sessionId !== sessionId ||
      !Number.isSafeInteger(h.treeHead.size) ||
      h.treeHead.size < 0
    ) {
      throw new HypervisorError(
        'INVALID_INPUT',
        `audit store: tree head ${i} is not a signed head of session ${JSON.stringify(sessionId)}`,
      );
    }
    if (!h.treeHead.final && (last < 0 || h.treeHead.size > (heads[last] as SignedTreeHead).treeHead.size)) last = i;
  });
  return heads.map((h, i) => ({
    size: h.treeHead.size,
    final: h.treeHead.final === true,
    json: checkUtf8Text(JSON.stringify(h), 'a tree head'),
    frontier: i === last && frontier !== undefined ? JSON.stringify(frontier) : null,
  }));
}

export function parseTreeHead(json: string): SignedTreeHead {
  return JSON.parse(json) as SignedTreeHead;
}
