import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import {
  checkAction,
  checkRing,
  classify,
  clearClassifierCache,
  clearOverrides,
  computeRing,
  createClassifierState,
  demotion,
  requiredRing,
  ringFromSigma,
  setOverride,
  shouldDemote,
} from '../../src/core/rings';

function throwsCode(fn: () => unknown, code: ErrorCode, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isHypervisorError(e, code), `expected ${code}, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

const write = { actionId: 'w', reversibility: 'FULL' as const };
const irreversible = { actionId: 'deploy', reversibility: 'NONE' as const };
const read = { actionId: 'r', readOnly: true };
const admin = { actionId: 'cfg', admin: true };

describe('rings: ring from σ_eff', () => {
  it('assigns ring 1 only above 0.95 and with consensus', () => {
    assert.equal(ringFromSigma(0.96, true), 1);
    assert.equal(ringFromSigma(1, true), 1);
    assert.equal(ringFromSigma(0.96, false), 2);
  });

  it('σ_eff exactly 0.95 is not enough for ring 1 (strict)', () => {
    assert.equal(ringFromSigma(0.95, true), 2);
  });

  it('σ_eff exactly 0.60 is sandbox (strict); just above is standard', () => {
    assert.equal(ringFromSigma(0.6, false), 3);
    assert.equal(ringFromSigma(0.6000001, false), 2);
    assert.equal(ringFromSigma(0, false), 3);
  });

  it('never assigns ring 0 from a score', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 1, noNaN: true }), fc.boolean(), (s, c) => ringFromSigma(s, c) !== 0),
    );
  });

  it('is monotone: a higher σ never gives a larger ring number', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.boolean(),
        (a, b, c) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          return ringFromSigma(hi, c) <= ringFromSigma(lo, c);
        },
      ),
    );
  });

  it('computeRing validates its input', () => {
    assert.equal(computeRing(0.85), 2);
    throwsCode(() => computeRing(1.5), 'INVALID_INPUT', /sigmaEff/);
    throwsCode(() => computeRing('0.9'), 'INVALID_INPUT', /sigmaEff/);
  });
});

describe('rings: required ring of an action', () => {
  it('admin → 0, irreversible write → 1, read-only → 3, reversible write → 2', () => {
    assert.equal(requiredRing({ admin: true, readOnly: false, reversibility: 'FULL' }), 0);
    assert.equal(requiredRing({ admin: false, readOnly: false, reversibility: 'NONE' }), 1);
    assert.equal(requiredRing({ admin: false, readOnly: true, reversibility: 'NONE' }), 3);
    assert.equal(requiredRing({ admin: false, readOnly: true, reversibility: 'FULL' }), 3);
    assert.equal(requiredRing({ admin: false, readOnly: false, reversibility: 'FULL' }), 2);
    assert.equal(requiredRing({ admin: false, readOnly: false, reversibility: 'PARTIAL' }), 2);
  });

  it('admin wins over read-only', () => {
    assert.equal(requiredRing({ admin: true, readOnly: true, reversibility: 'FULL' }), 0);
  });
});

describe('rings: action check', () => {
  it('returns exactly the documented fields', () => {
    const r = checkAction({ action: write, agentRing: 2, sigmaEff: 0.8 });
    assert.deepEqual(Object.keys(r).sort(), [
      'agentRing',
      'allowed',
      'reason',
      'requiredRing',
      'requiresConsensus',
      'requiresSreWitness',
      'sigmaEff',
    ]);
    assert.equal(r.allowed, true);
    assert.equal(r.requiredRing, 2);
    assert.equal(r.agentRing, 2);
    assert.equal(r.sigmaEff, 0.8);
    assert.equal(r.requiresConsensus, false);
    assert.equal(r.requiresSreWitness, false);
  });

  it('ring 0 needs an SRE witness first', () => {
    const r = checkAction({ action: admin, agentRing: 0, sigmaEff: 1, hasConsensus: true });
    assert.equal(r.allowed, false);
    assert.equal(r.requiresSreWitness, true);
    assert.match(r.reason, /SRE witness/);
  });

  it('ring 0 with a witness still needs a ring-0 agent', () => {
    const denied = checkAction({ action: admin, agentRing: 1, sigmaEff: 1, hasSreWitness: true });
    assert.equal(denied.allowed, false);
    assert.match(denied.reason, /ring 1 may not run a ring 0 action/);
    const ok = checkAction({ action: admin, agentRing: 0, sigmaEff: 1, hasSreWitness: true });
    assert.equal(ok.allowed, true);
  });

  it('ring 1 needs σ_eff > 0.95 (checked before consensus); exactly 0.95 is denied', () => {
    const r = checkAction({ action: irreversible, agentRing: 1, sigmaEff: 0.95, hasConsensus: false });
    assert.equal(r.allowed, false);
    assert.match(r.reason, /σ_eff > 0\.95/);
    assert.equal(r.requiresConsensus, true);
  });

  it('ring 1 then needs consensus', () => {
    const r = checkAction({ action: irreversible, agentRing: 1, sigmaEff: 0.96 });
    assert.equal(r.allowed, false);
    assert.match(r.reason, /consensus/);
    assert.equal(checkAction({ action: irreversible, agentRing: 1, sigmaEff: 0.96, hasConsensus: true }).allowed, true);
  });

  it('ring 1 with σ and consensus still fails the ring comparison for a ring-2 agent', () => {
    const r = checkAction({ action: irreversible, agentRing: 2, sigmaEff: 0.99, hasConsensus: true });
    assert.equal(r.allowed, false);
    assert.match(r.reason, /ring 2 may not run a ring 1 action/);
  });

  it('ring 2 needs σ_eff > 0.60; exactly 0.60 is denied', () => {
    const at = checkAction({ action: write, agentRing: 2, sigmaEff: 0.6 });
    assert.equal(at.allowed, false);
    assert.match(at.reason, /σ_eff > 0\.6/);
    assert.equal(checkAction({ action: write, agentRing: 2, sigmaEff: 0.61 }).allowed, true);
  });

  it('finally compares ring numbers: a sandbox agent with a high σ may not write', () => {
    const r = checkAction({ action: write, agentRing: 3, sigmaEff: 0.9 });
    assert.equal(r.allowed, false);
    assert.match(r.reason, /ring 3 may not run a ring 2 action/);
  });

  it('read-only actions are open to every ring', () => {
    for (const ring of [0, 1, 2, 3] as const) {
      assert.equal(checkAction({ action: read, agentRing: ring, sigmaEff: 0 }).allowed, true);
    }
  });

  it('a higher ring may run a lower-privilege action', () => {
    assert.equal(checkAction({ action: write, agentRing: 1, sigmaEff: 0.97 }).allowed, true);
  });

  it('validates its input at the door', () => {
    throwsCode(
      () => checkAction({ action: write, agentRing: 4 as never, sigmaEff: 0.8 }),
      'INVALID_INPUT',
      /agentRing/,
    );
    throwsCode(
      () => checkAction({ action: { actionId: '' }, agentRing: 2, sigmaEff: 0.8 }),
      'INVALID_INPUT',
      /actionId/,
    );
    throwsCode(() => checkAction({ action: write, agentRing: 2, sigmaEff: -0.1 }), 'INVALID_INPUT', /sigmaEff/);
  });

  it('checkRing (fast path) agrees with checkAction', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(write, irreversible, read, admin),
        fc.constantFrom(0 as const, 1 as const, 2 as const, 3 as const),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.boolean(),
        fc.boolean(),
        (action, agentRing, sigmaEff, hasConsensus, hasSreWitness) => {
          const a = checkAction({ action, agentRing, sigmaEff, hasConsensus, hasSreWitness });
          const req = a.requiredRing;
          assert.deepEqual(checkRing(req, agentRing, sigmaEff, hasConsensus, hasSreWitness), a);
          // An allowed action never breaks the ring order.
          if (a.allowed) assert.ok(agentRing <= req);
        },
      ),
    );
  });
});

describe('rings: demotion', () => {
  it('demotes when the score ring is a larger number', () => {
    assert.equal(shouldDemote(2, 0.6, false), true);
    assert.equal(demotion(2, 0.6, false), 3);
    assert.equal(shouldDemote(1, 0.95, true), true);
    assert.equal(demotion(1, 0.95, true), 2);
  });

  it('does not demote when the score still supports the ring, nor promote', () => {
    assert.equal(shouldDemote(2, 0.61, false), false);
    assert.equal(demotion(2, 0.61, false), null);
    assert.equal(shouldDemote(3, 0.99, true), false);
    assert.equal(demotion(3, 0.99, true), null);
  });
});

describe('rings: classifier', () => {
  it('classifies from the descriptor with confidence 1.0 and caches per action id', () => {
    const c = createClassifierState();
    const r = classify(c, irreversible);
    assert.deepEqual(r, {
      actionId: 'deploy',
      ring: 1,
      riskWeight: 0.95,
      reversibility: 'NONE',
      confidence: 1,
      overridden: false,
    });
    assert.ok(c.cache['deploy']);
    // Cached by id: a later, different descriptor with the same id gets the cached answer.
    assert.equal(classify(c, { actionId: 'deploy', reversibility: 'FULL' }).ring, 1);
    clearClassifierCache(c);
    assert.equal(classify(c, { actionId: 'deploy', reversibility: 'FULL' }).ring, 2);
  });

  it('session overrides of ring and risk weight take precedence with confidence 0.9', () => {
    const c = createClassifierState();
    setOverride(c, { sessionId: 's1', actionId: 'w', ring: 1 });
    const o = classify(c, write, 's1');
    assert.equal(o.ring, 1);
    assert.equal(o.riskWeight, 0.2);
    assert.equal(o.confidence, 0.9);
    assert.equal(o.overridden, true);
    setOverride(c, { sessionId: 's1', actionId: 'w', riskWeight: 0.5 });
    const o2 = classify(c, write, 's1');
    assert.equal(o2.ring, 2);
    assert.equal(o2.riskWeight, 0.5);
  });

  it('overrides are per session', () => {
    const c = createClassifierState();
    setOverride(c, { sessionId: 's1', actionId: 'w', ring: 3 });
    assert.equal(classify(c, write, 's2').ring, 2);
    assert.equal(classify(c, write, 's2').confidence, 1);
    assert.equal(classify(c, write).ring, 2);
    clearOverrides(c, 's1');
    assert.equal(classify(c, write, 's1').overridden, false);
  });

  it('overrides do not corrupt the cache', () => {
    const c = createClassifierState();
    setOverride(c, { sessionId: 's1', actionId: 'w', ring: 0 });
    classify(c, write, 's1');
    assert.equal(c.cache['w']?.ring, 2);
  });

  it('rejects an empty override and an invalid ring', () => {
    const c = createClassifierState();
    throwsCode(() => setOverride(c, { sessionId: 's1', actionId: 'w' }), 'INVALID_INPUT', /ring or a riskWeight/);
    throwsCode(() => setOverride(c, { sessionId: 's1', actionId: 'w', ring: 7 as never }), 'INVALID_INPUT', /ring/);
  });

  it('classifier state is plain JSON', () => {
    const c = createClassifierState();
    setOverride(c, { sessionId: 's1', actionId: 'w', ring: 3 });
    classify(c, write, 's1');
    const copy = JSON.parse(JSON.stringify(c));
    assert.deepEqual(copy, c);
    assert.deepEqual(classify(copy, write, 's1'), classify(c, write, 's1'));
  });
});
