import assert from 'node:assert/strict';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import {
  FALLBACK_SIGMA,
  analyzeManifest,
  cacheTrustScore,
  cachedTrust,
  createDriftHistoryState,
  createTrustCache,
  decideDrift,
  driftFailureRate,
  driftSeverity,
  invalidateTrust,
  meanDrift,
  recordDriftCheck,
  resolveSigma,
  scoreTier,
  scoreToSigma,
} from '../../src/core/adapters';

function throwsCode(fn: () => unknown, code: ErrorCode, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isHypervisorError(e, code), `expected ${code}, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

const DID = 'did:mesh:agent';

describe('adapters: trust scorer mapping', () => {
  it('σ = score / 1000', () => {
    assert.equal(scoreToSigma(820), 0.82);
    assert.equal(scoreToSigma(0), 0);
    assert.equal(scoreToSigma(1000), 1);
    throwsCode(() => scoreToSigma(1001), 'INVALID_INPUT', /score/);
    throwsCode(() => scoreToSigma(-1), 'INVALID_INPUT', /score/);
  });

  it('tiers at the documented boundaries (≥)', () => {
    assert.equal(scoreTier(1000), 'verified_partner');
    assert.equal(scoreTier(900), 'verified_partner');
    assert.equal(scoreTier(899.9), 'trusted');
    assert.equal(scoreTier(700), 'trusted');
    assert.equal(scoreTier(699), 'standard');
    assert.equal(scoreTier(500), 'standard');
    assert.equal(scoreTier(499), 'probationary');
    assert.equal(scoreTier(300), 'probationary');
    assert.equal(scoreTier(299), 'untrusted');
    assert.equal(scoreTier(0), 'untrusted');
  });

  it('no scorer → σ 0.50', () => {
    assert.equal(FALLBACK_SIGMA, 0.5);
    assert.equal(resolveSigma(createTrustCache(), DID, 0, false), 0.5);
  });

  it('caches for 300 s', () => {
    const c = createTrustCache();
    assert.equal(resolveSigma(c, DID, 0, true), null, 'nothing cached: ask the scorer');
    const e = cacheTrustScore(c, DID, 820, 10_000);
    assert.deepEqual(e, { score: 820, sigma: 0.82, tier: 'trusted', fetchedAt: 10_000 });
    assert.equal(resolveSigma(c, DID, 10_000 + 299_999, true), 0.82);
    assert.equal(cachedTrust(c, DID, 10_000 + 300_000), null);
    assert.equal(resolveSigma(c, DID, 10_000 + 300_000, true), null);
  });

  it('a slash or outcome report invalidates the cached score', () => {
    const c = createTrustCache();
    cacheTrustScore(c, DID, 820, 0);
    invalidateTrust(c, DID);
    assert.equal(cachedTrust(c, DID, 1), null);
  });

  it('cache state is plain JSON', () => {
    const c = createTrustCache();
    cacheTrustScore(c, DID, 820, 0);
    assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
  });
});

describe('adapters: drift verifier mapping', () => {
  it('severity thresholds are inclusive; below 0.15 is none', () => {
    assert.equal(driftSeverity(0), 'none');
    assert.equal(driftSeverity(0.1499), 'none');
    assert.equal(driftSeverity(0.15), 'low');
    assert.equal(driftSeverity(0.2999), 'low');
    assert.equal(driftSeverity(0.3), 'medium');
    assert.equal(driftSeverity(0.4999), 'medium');
    assert.equal(driftSeverity(0.5), 'high');
    assert.equal(driftSeverity(0.7499), 'high');
    assert.equal(driftSeverity(0.75), 'critical');
    assert.equal(driftSeverity(1), 'critical');
  });

  it('HIGH → slash with ω 0.95, reported as high', () => {
    const d = decideDrift(0.5);
    assert.equal(d.action, 'slash');
    assert.equal(d.slashOmega, 0.95);
    assert.equal(d.reportSeverity, 'high');
    assert.equal(d.passed, false);
  });

  it('CRITICAL → slash, reported as critical at ≥ 0.75', () => {
    assert.equal(decideDrift(0.75).reportSeverity, 'critical');
    assert.equal(decideDrift(0.74).reportSeverity, 'high');
    assert.equal(decideDrift(0.9).action, 'slash');
  });

  it('MEDIUM → demote; LOW and none → pass', () => {
    const m = decideDrift(0.3);
    assert.equal(m.action, 'demote');
    assert.equal(m.slashOmega, null);
    assert.equal(m.reportSeverity, null);
    assert.equal(decideDrift(0.15).action, 'pass');
    assert.equal(decideDrift(0).action, 'pass');
    assert.equal(decideDrift(0.2).passed, true);
  });

  it('rejects a drift outside [0, 1]', () => {
    throwsCode(() => decideDrift(1.1), 'INVALID_INPUT', /drift/);
  });

  it('records history, failure rate and mean drift per agent', () => {
    const s = createDriftHistoryState();
    assert.equal(driftFailureRate(s, DID), 0);
    assert.equal(meanDrift(s, DID), 0);
    recordDriftCheck(s, { agentDid: DID, sessionId: 's1', drift: 0.1, now: 1 });
    recordDriftCheck(s, { agentDid: DID, sessionId: 's1', drift: 0.3, now: 2 });
    recordDriftCheck(s, { agentDid: DID, sessionId: 's1', drift: 0.8, now: 3 });
    recordDriftCheck(s, { agentDid: DID, sessionId: 's1', drift: 0.0, now: 4 });
    assert.equal(driftFailureRate(s, DID), 0.5);
    assert.ok(Math.abs(meanDrift(s, DID) - 0.3) < 1e-12);
    assert.deepEqual(
      s.byDid[DID]?.recent.map((r) => r.action),
      ['pass', 'demote', 'slash', 'pass'],
    );
    assert.equal(driftFailureRate(s, 'did:mesh:other'), 0);
    assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
  });

  it('no verifier (drift null) → drift 0, passes', () => {
    const s = createDriftHistoryState();
    const d = recordDriftCheck(s, { agentDid: DID, sessionId: 's1', drift: null, now: 1 });
    assert.equal(d.drift, 0);
    assert.equal(d.severity, 'none');
    assert.equal(d.action, 'pass');
    assert.equal(s.byDid[DID]?.checks, 1);
  });

  it('keeps a bounded recent history', () => {
    const s = createDriftHistoryState();
    for (let i = 0; i < 120; i++) recordDriftCheck(s, { agentDid: DID, sessionId: 's1', drift: 0, now: i });
    assert.equal(s.byDid[DID]?.checks, 120);
    assert.equal(s.byDid[DID]?.recent.length, 50);
    assert.equal(s.byDid[DID]?.recent[0]?.at, 70);
  });
});

describe('adapters: capability manifest', () => {
  const base = { agent_id: DID, trust_level: 'trusted', trust_score: 7.5, actions: [], scopes: ['read:docs'] };

  it('maps σ hint = score / 10 and ring hints by trust level', () => {
    const a = analyzeManifest(base);
    assert.equal(a.agentDid, DID);
    assert.equal(a.sigmaHint, 0.75);
    assert.equal(a.ringHint, 2);
    assert.deepEqual(a.scopes, ['read:docs']);
    assert.equal(analyzeManifest({ ...base, trust_level: 'verified_partner' }).ringHint, 1);
    assert.equal(analyzeManifest({ ...base, trust_level: 'standard' }).ringHint, 2);
    assert.equal(analyzeManifest({ ...base, trust_level: 'untrusted' }).ringHint, 3);
    assert.equal(analyzeManifest({ ...base, trust_level: 'unknown' }).ringHint, 3);
    assert.equal(analyzeManifest({ ...base, trust_score: 10 }).sigmaHint, 1);
    assert.equal(analyzeManifest({ ...base, trust_score: 0 }).sigmaHint, 0);
  });

  it('an unrecognised level is treated as unknown', () => {
    for (const level of ['probationary', 'gold', 'toString', '']) {
      const a = analyzeManifest({ ...base, trust_level: level });
      assert.equal(a.trustLevel, 'unknown');
      assert.equal(a.ringHint, 3);
    }
    assert.equal(analyzeManifest({ ...base, trust_level: 'Verified_Partner' }).ringHint, 1);
  });

  it('actions may be descriptors or bare ids (a bare id is an irreversible write)', () => {
    const a = analyzeManifest({ ...base, actions: ['deploy', { actionId: 'read', readOnly: true }] });
    assert.deepEqual(
      a.actions.map((x) => [x.actionId, x.reversibility, x.readOnly]),
      [
        ['deploy', 'NONE', false],
        ['read', 'FULL', true],
      ],
    );
  });

  it('rejects a malformed manifest naming the field', () => {
    throwsCode(() => analyzeManifest({ ...base, trust_score: 11 }), 'INVALID_INPUT', /trust_score/);
    throwsCode(() => analyzeManifest({ ...base, agent_id: 'x' }), 'INVALID_INPUT', /agent_id/);
    throwsCode(
      () => analyzeManifest({ ...base, actions: [{ actionId: 'a', reversibility: 'FULL', riskWeight: 0.9 }] }),
      'INVALID_INPUT',
      /actions\.0\.riskWeight/,
    );
  });
});
