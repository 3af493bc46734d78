/**
 * SPEC §8 — transaction-history verification. Checks the integrity of the
 * history an agent declares at the handshake (it cannot prove the history is
 * real: a fabricated but self-consistent history passes).
 */
import { z } from 'zod';
import { TimestampSchema, ownDelete, ownGet, ownSet, parse, parseDid, type Did } from './common';

export const REQUIRED_HISTORY_DEPTH = 5;
export const MIN_HASH_LENGTH = 16;

export const HistoryStatusSchema = z.enum(['PROBATIONARY', 'VERIFIED', 'SUSPICIOUS']);
export type HistoryStatus = z.infer<typeof HistoryStatusSchema>;

/** SPEC §11.6 bounds: at most 200 records, each string at most 200 characters. */
export const HISTORY_MAX_RECORDS = 200;
export const HISTORY_TEXT_MAX = 200;

export const TransactionRecordSchema = z.object({
  sessionId: z.string().min(1).max(HISTORY_TEXT_MAX, `sessionId must be at most ${HISTORY_TEXT_MAX} characters`),
  /** Hex summary hash of that session; fewer than 16 characters is suspicious, not invalid input. */
  summaryHash: z.string().max(HISTORY_TEXT_MAX, `summaryHash must be at most ${HISTORY_TEXT_MAX} characters`),
  timestamp: TimestampSchema,
  participantCount: z.number().int().nonnegative().optional(),
});
export type TransactionRecord = z.infer<typeof TransactionRecordSchema>;

export const TransactionHistorySchema = z
  .array(TransactionRecordSchema)
  .max(HISTORY_MAX_RECORDS, `history must hold at most ${HISTORY_MAX_RECORDS} records`);

export interface HistoryVerification {
  did: Did;
  status: HistoryStatus;
  /** PROBATIONARY and VERIFIED are trustworthy; SUSPICIOUS is not. */
  trustworthy: boolean;
  recordCount: number;
  /** Why the status is not VERIFIED (empty when it is). */
  reasons: string[];
  verifiedAt: number;
}

/** Per-DID cache of verifications (plain JSON). */
export interface HistoryCache {
  byDid: Record<Did, HistoryVerification>;
}

export function createHistoryCache(): HistoryCache {
  return { byDid: {} };
}

export function isTrustworthy(status: HistoryStatus): boolean {
  return status !== 'SUSPICIOUS';
}

/** The pure check, without the cache. Records are assumed valid. */
export function assessHistory(records: readonly TransactionRecord[]): { status: HistoryStatus; reasons: string[] } {
  if (records.length === 0) return { status: 'PROBATIONARY', reasons: ['no transaction history'] };
  if (records.length < REQUIRED_HISTORY_DEPTH) {
    return {
      status: 'PROBATIONARY',
      reasons: [`only ${records.length} transactions (need ${REQUIRED_HISTORY_DEPTH})`],
    };
  }
  const reasons: string[] = [];
  const seen = new Map<string, string>();
  for (const r of records) {
    const earlier = seen.get(r.summaryHash);
    if (earlier !== undefined) reasons.push(`duplicate summary hash in sessions ${earlier} and ${r.sessionId}`);
    else seen.set(r.summaryHash, r.sessionId);
  }
  // Equal timestamps are monotonic (non-decreasing); only going back in time is suspicious.
  for (let i = 1; i < records.length; i++) {
    const prev = records[i - 1] as TransactionRecord;
    const cur = records[i] as TransactionRecord;
    if (cur.timestamp < prev.timestamp) {
      reasons.push(`non-monotonic timestamps: session ${cur.sessionId} predates session ${prev.sessionId}`);
    }
  }
  for (const r of records) {
    if (r.summaryHash.length < MIN_HASH_LENGTH) {
      reasons.push(`hash shorter than ${MIN_HASH_LENGTH} characters in session ${r.sessionId}`);
    }
  }
  return { status: reasons.length > 0 ? 'SUSPICIOUS' : 'VERIFIED', reasons };
}

/**
 * Verify a DID's declared history. The first verification of a DID is cached
 * and returned for later calls (the cached result wins over a new declaration
 * until invalidateHistory) — an agent cannot retry with a cleaned-up history.
 */
export function verifyHistory(cache: HistoryCache, did: Did, records: unknown, now: number): HistoryVerification {
  const d = parseDid(did, 'agent DID');
  const cached = ownGet(cache.byDid, d);
  if (cached) return cached;
  const list = records == null ? [] : parse(TransactionHistorySchema, records, 'transaction history');
  const { status, reasons } = assessHistory(list);
  const result: HistoryVerification = {
    did: d,
    status,
    trustworthy: isTrustworthy(status),
    recordCount: list.length,
    reasons,
    verifiedAt: now,
  };
  ownSet(cache.byDid, d, result);
  return result;
}

export function invalidateHistory(cache: HistoryCache, did?: Did): void {
  if (did === undefined) cache.byDid = {};
  else ownDelete(cache.byDid, did);
}
