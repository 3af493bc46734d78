import assert from 'node:assert/strict';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { createHistoryCache, invalidateHistory, verifyHistory, type TransactionRecord } from '../../src/core/history';

function throwsCode(fn: () => unknown, code: ErrorCode, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isHypervisorError(e, code), `expected ${code}, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

const DID = 'did:mesh:agent';
const hash = (i: number) => `${'ab'.repeat(8)}${i.toString(16).padStart(4, '0')}`;
function records(n: number): TransactionRecord[] {
  return Array.from({ length: n }, (_, i) => ({ sessionId: `s${i}`, summaryHash: hash(i), timestamp: 1_000 + i * 10 }));
}

describe('history verification', () => {
  it('no history → PROBATIONARY, trustworthy', () => {
    const c = createHistoryCache();
    const r = verifyHistory(c, DID, null, 5);
    assert.equal(r.status, 'PROBATIONARY');
    assert.equal(r.trustworthy, true);
    assert.equal(r.recordCount, 0);
    assert.equal(r.verifiedAt, 5);
    assert.equal(verifyHistory(createHistoryCache(), DID, [], 5).status, 'PROBATIONARY');
  });

  it('4 records → PROBATIONARY even when inconsistent; 5 → checked', () => {
    const bad = records(4).map((r) => ({ ...r, summaryHash: 'short' }));
    assert.equal(verifyHistory(createHistoryCache(), DID, bad, 0).status, 'PROBATIONARY');
    const five = records(5);
    const r = verifyHistory(createHistoryCache(), DID, five, 0);
    assert.equal(r.status, 'VERIFIED');
    assert.equal(r.trustworthy, true);
    assert.deepEqual(r.reasons, []);
  });

  it('a duplicate summary hash → SUSPICIOUS', () => {
    const h = records(5);
    h[3] = { ...h[3]!, summaryHash: h[1]!.summaryHash };
    const r = verifyHistory(createHistoryCache(), DID, h, 0);
    assert.equal(r.status, 'SUSPICIOUS');
    assert.equal(r.trustworthy, false);
    assert.deepEqual(r.reasons, ['duplicate summary hash in sessions s1 and s3']);
  });

  it('a timestamp going back → SUSPICIOUS; equal timestamps are fine', () => {
    const back = records(5);
    back[2] = { ...back[2]!, timestamp: 1_005 };
    const r = verifyHistory(createHistoryCache(), DID, back, 0);
    assert.equal(r.status, 'SUSPICIOUS');
    assert.match(r.reasons.join(), /non-monotonic timestamps: session s2 predates session s1/);
    const equal = records(5).map((x) => ({ ...x, timestamp: 7 }));
    assert.equal(verifyHistory(createHistoryCache(), DID, equal, 0).status, 'VERIFIED');
  });

  it('a hash shorter than 16 characters → SUSPICIOUS; exactly 16 is fine', () => {
    const short = records(5);
    short[4] = { ...short[4]!, summaryHash: 'a'.repeat(15) };
    const r = verifyHistory(createHistoryCache(), DID, short, 0);
    assert.equal(r.status, 'SUSPICIOUS');
    assert.match(r.reasons.join(), /shorter than 16 characters in session s4/);
    const exact = records(5);
    exact[4] = { ...exact[4]!, summaryHash: 'a'.repeat(16) };
    assert.equal(verifyHistory(createHistoryCache(), DID, exact, 0).status, 'VERIFIED');
  });

  it('reports every problem found', () => {
    const h = records(6);
    h[1] = { ...h[1]!, summaryHash: 'x' };
    h[2] = { ...h[2]!, summaryHash: 'x' };
    h[5] = { ...h[5]!, timestamp: 0 };
    assert.equal(verifyHistory(createHistoryCache(), DID, h, 0).reasons.length, 4);
  });

  it('caches per DID until invalidated', () => {
    const c = createHistoryCache();
    const bad = records(5).map((r) => ({ ...r, summaryHash: 'x' }));
    assert.equal(verifyHistory(c, DID, bad, 1).status, 'SUSPICIOUS');
    // A later, clean declaration does not override the cached verdict.
    const again = verifyHistory(c, DID, records(5), 2);
    assert.equal(again.status, 'SUSPICIOUS');
    assert.equal(again.verifiedAt, 1);
    assert.equal(verifyHistory(c, 'did:mesh:other', records(5), 2).status, 'VERIFIED');
    invalidateHistory(c, DID);
    assert.equal(verifyHistory(c, DID, records(5), 3).status, 'VERIFIED');
    invalidateHistory(c);
    assert.deepEqual(c.byDid, {});
  });

  it('validates the DID and the records', () => {
    const c = createHistoryCache();
    throwsCode(() => verifyHistory(c, 'nope', null, 0), 'INVALID_INPUT', /DID/);
    throwsCode(
      () => verifyHistory(c, DID, [{ sessionId: 's', summaryHash: 'h', timestamp: -1 }], 0),
      'INVALID_INPUT',
      /0\.timestamp/,
    );
    assert.deepEqual(c.byDid, {});
  });

  it('cache state is plain JSON', () => {
    const c = createHistoryCache();
    verifyHistory(c, DID, records(5), 1);
    assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
  });
});
