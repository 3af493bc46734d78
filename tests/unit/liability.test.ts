import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import {
  type Bond,
  bondsBy,
  bondsFor,
  createLiabilityState,
  exposureOf,
  hasCycle,
  liabilityMatrix,
  pruneExpired,
  release,
  releaseSession,
  sigmaEff,
  vouch,
} from '../../src/core/liability';

function throwsCode(fn: () => unknown, code: ErrorCode, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isHypervisorError(e, code), `expected ${code}, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

const A = 'did:mesh:a';
const B = 'did:mesh:b';
const C = 'did:mesh:c';
const D = 'did:mesh:d';
const T0 = 1_000;

describe('liability: vouch', () => {
  it('creates a bond of voucher σ × 0.20 by default', () => {
    const s = createLiabilityState();
    const b = vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    assert.equal(b.amount, 0.9 * 0.2);
    assert.equal(b.bondPct, 0.2);
    assert.equal(b.createdAt, T0);
    assert.equal(b.expiresAt, null);
    assert.equal(b.releasedAt, null);
    assert.deepEqual(s.bonds['b1'], b);
  });

  it('clamps bondPct to [0, 1]', () => {
    const s = createLiabilityState({ maxExposureRatio: 1 });
    assert.equal(
      vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.8, bondPct: 1.7 }, T0, 'b1').amount,
      0.8,
    );
    assert.equal(
      vouch(s, { sessionId: 's2', voucher: A, vouchee: B, voucherSigma: 0.8, bondPct: -3 }, T0, 'b2').amount,
      0,
    );
  });

  it('rejects a self-vouch', () => {
    const s = createLiabilityState();
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: A, vouchee: A, voucherSigma: 0.9 }, T0, 'b1'),
      'SELF_VOUCH',
      /did:mesh:a cannot vouch for itself/,
    );
  });

  it('rejects a voucher σ below 0.50; exactly 0.50 is allowed', () => {
    const s = createLiabilityState();
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.4999 }, T0, 'b1'),
      'VOUCHER_SIGMA_TOO_LOW',
      /σ 0\.4999/,
    );
    assert.ok(vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.5 }, T0, 'b1'));
  });

  it('rejects a direct cycle', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: B, vouchee: A, voucherSigma: 0.9 }, T0, 'b2'),
      'VOUCH_CYCLE',
      /would close a vouching cycle in session s1/,
    );
  });

  it('rejects an indirect cycle', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    vouch(s, { sessionId: 's1', voucher: B, vouchee: C, voucherSigma: 0.9 }, T0, 'b2');
    vouch(s, { sessionId: 's1', voucher: C, vouchee: D, voucherSigma: 0.9 }, T0, 'b3');
    throwsCode(() => vouch(s, { sessionId: 's1', voucher: D, vouchee: A, voucherSigma: 0.9 }, T0, 'b4'), 'VOUCH_CYCLE');
    // A diamond is not a cycle.
    assert.ok(vouch(s, { sessionId: 's1', voucher: A, vouchee: D, voucherSigma: 0.9 }, T0, 'b5'));
  });

  it('checks cycles per session', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    assert.ok(vouch(s, { sessionId: 's2', voucher: B, vouchee: A, voucherSigma: 0.9 }, T0, 'b2'));
  });

  it('ignores released and expired bonds in the cycle check', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9, expiresAt: 2_000 }, T0, 'b1');
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: B, vouchee: A, voucherSigma: 0.9 }, 1_999, 'b2'),
      'VOUCH_CYCLE',
    );
    assert.ok(vouch(s, { sessionId: 's1', voucher: B, vouchee: A, voucherSigma: 0.9 }, 2_000, 'b2'));
    vouch(s, { sessionId: 's1', voucher: C, vouchee: D, voucherSigma: 0.9 }, T0, 'b3');
    release(s, 'b3', T0 + 1, 'done');
    assert.ok(vouch(s, { sessionId: 's1', voucher: D, vouchee: C, voucherSigma: 0.9 }, T0 + 2, 'b4'));
  });

  it('allows exposure exactly at voucher σ × 0.80 and rejects just above', () => {
    const s = createLiabilityState();
    // 4 × (0.9 × 0.2) = 0.72 = 0.9 × 0.8 — exactly the limit, despite float error.
    for (const [i, to] of [B, C, D, 'did:mesh:e'].entries()) {
      vouch(s, { sessionId: 's1', voucher: A, vouchee: to, voucherSigma: 0.9 }, T0, `b${i}`);
    }
    assert.ok(Math.abs(exposureOf(s, 's1', A, T0) - 0.72) < 1e-12);
    throwsCode(
      () =>
        vouch(s, { sessionId: 's1', voucher: A, vouchee: 'did:mesh:f', voucherSigma: 0.9, bondPct: 0.0001 }, T0, 'b9'),
      'EXPOSURE_LIMIT',
      /voucher did:mesh:a would have exposure .* over its limit/,
    );
  });

  it('float error in the running sum does not reject a vouch landing exactly on the limit', () => {
    const s = createLiabilityState();
    // 16 × (0.5 × 0.05) sums to 0.4000000000000001 in floats, over 0.5 × 0.8 = 0.4.
    for (let i = 0; i < 16; i++) {
      vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.5, bondPct: 0.05 }, T0, `b${i}`);
    }
    assert.ok(exposureOf(s, 's1', A, T0) > 0.4, 'the float sum really overshoots');
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.5, bondPct: 0.05 }, T0, 'b16'),
      'EXPOSURE_LIMIT',
    );
  });

  it('a single bond at exactly the limit is allowed; a hair over is not', () => {
    const s = createLiabilityState();
    assert.ok(vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.7, bondPct: 0.8 }, T0, 'b1'));
    throwsCode(
      () => vouch(s, { sessionId: 's2', voucher: A, vouchee: B, voucherSigma: 0.7, bondPct: 0.80001 }, T0, 'b2'),
      'EXPOSURE_LIMIT',
    );
  });

  it('exposure is per session, and expired or released bonds free it', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 1, bondPct: 0.8, expiresAt: 5_000 }, T0, 'b1');
    assert.ok(vouch(s, { sessionId: 's2', voucher: A, vouchee: B, voucherSigma: 1, bondPct: 0.8 }, T0, 'b2'));
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 1, bondPct: 0.1 }, 4_999, 'b3'),
      'EXPOSURE_LIMIT',
    );
    assert.ok(vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 1, bondPct: 0.8 }, 5_000, 'b3'));
    release(s, 'b2', 6_000, 'test');
    assert.ok(vouch(s, { sessionId: 's2', voucher: A, vouchee: C, voucherSigma: 1, bondPct: 0.8 }, 6_000, 'b4'));
  });

  it('checks in order: self-vouch before σ before cycle before exposure', () => {
    const s = createLiabilityState();
    throwsCode(() => vouch(s, { sessionId: 's1', voucher: A, vouchee: A, voucherSigma: 0.1 }, T0, 'x'), 'SELF_VOUCH');
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: B, vouchee: A, voucherSigma: 0.1 }, T0, 'x'),
      'VOUCHER_SIGMA_TOO_LOW',
    );
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: B, vouchee: A, voucherSigma: 0.9, bondPct: 1 }, T0, 'x'),
      'VOUCH_CYCLE',
    );
  });

  it('a rejected vouch changes nothing', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    const before = JSON.stringify(s);
    throwsCode(() => vouch(s, { sessionId: 's1', voucher: B, vouchee: A, voucherSigma: 0.9 }, T0, 'b2'), 'VOUCH_CYCLE');
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 0.9, bondPct: 0.9 }, T0, 'b3'),
      'EXPOSURE_LIMIT',
    );
    assert.equal(JSON.stringify(s), before);
  });

  it('rejects duplicate bond ids, bad DIDs and a bond already expired', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 0.9 }, T0, 'b1'),
      'DUPLICATE_BOND',
      /bond b1/,
    );
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: 'alice', vouchee: C, voucherSigma: 0.9 }, T0, 'b2'),
      'INVALID_INPUT',
      /voucher/,
    );
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 1.2 }, T0, 'b2'),
      'INVALID_INPUT',
      /voucherSigma/,
    );
    throwsCode(
      () => vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 0.9, expiresAt: T0 }, T0, 'b2'),
      'INVALID_INPUT',
      /expiresAt/,
    );
  });
});

describe('liability: σ_eff', () => {
  it('is σ + ω × Σ active bonds', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 0.9 }, T0, 'b1');
    vouch(s, { sessionId: 's1', voucher: B, vouchee: C, voucherSigma: 0.5 }, T0, 'b2');
    assert.ok(Math.abs(sigmaEff(s, 's1', C, 0.4, 0.5, T0) - (0.4 + 0.5 * (0.18 + 0.1))) < 1e-12);
    assert.equal(sigmaEff(s, 's1', A, 0.4, 0.5, T0), 0.4);
    assert.equal(sigmaEff(s, 's2', C, 0.4, 0.5, T0), 0.4);
  });

  it('is capped at 1', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 1, bondPct: 0.8 }, T0, 'b1');
    assert.equal(sigmaEff(s, 's1', C, 0.9, 1, T0), 1);
  });

  it('a bond stops counting at exactly expiresAt', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 1, expiresAt: 2_000 }, T0, 'b1');
    assert.ok(sigmaEff(s, 's1', C, 0.4, 1, 1_999) > 0.4);
    assert.equal(sigmaEff(s, 's1', C, 0.4, 1, 2_000), 0.4);
    assert.deepEqual(bondsFor(s, 's1', C, 2_000), []);
  });

  it('validates its input', () => {
    const s = createLiabilityState();
    throwsCode(() => sigmaEff(s, 's1', C, 1.4, 0.5, T0), 'INVALID_INPUT', /sigmaRaw/);
    throwsCode(() => sigmaEff(s, 's1', C, 0.4, 2, T0), 'INVALID_INPUT', /omega/);
    throwsCode(() => sigmaEff(s, 's1', 'c', 0.4, 0.5, T0), 'INVALID_INPUT', /vouchee/);
  });

  it("reads only that vouchee's bonds, even in an engine with thousands of sessions", () => {
    const s = createLiabilityState();
    for (let i = 0; i < 3_000; i++) {
      vouch(s, { sessionId: `s${i}`, voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, `b${i}`);
    }
    let reads = 0;
    s.bonds = new Proxy(s.bonds, {
      get(target, key, recv) {
        reads++;
        return Reflect.get(target, key, recv);
      },
    });
    assert.ok(sigmaEff(s, 's1234', B, 0.4, 0.5, T0) > 0.4);
    assert.ok(reads <= 2, `σ_eff read ${reads} bonds`);
    reads = 0;
    vouch(s, { sessionId: 's1234', voucher: C, vouchee: D, voucherSigma: 0.9 }, T0, 'new');
    assert.ok(reads <= 4, `vouch read ${reads} bonds`);
  });

  it('σ_eff stays in [0, 1] and never decreases when a bond is added', () => {
    const agents = [A, B, C, D];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            voucher: fc.constantFrom(...agents),
            vouchee: fc.constantFrom(...agents),
            voucherSigma: fc.double({ min: 0, max: 1, noNaN: true }),
            bondPct: fc.double({ min: -0.5, max: 1.5, noNaN: true }),
          }),
          { maxLength: 25 },
        ),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (vouches, sigmaRaw, omega) => {
          const s = createLiabilityState();
          vouches.forEach((v, i) => {
            const before = agents.map((d) => sigmaEff(s, 's1', d, sigmaRaw, omega, T0));
            try {
              vouch(s, { sessionId: 's1', ...v }, T0, `b${i}`);
            } catch (e) {
              if (!isHypervisorError(e)) throw e;
            }
            agents.forEach((d, j) => {
              const after = sigmaEff(s, 's1', d, sigmaRaw, omega, T0);
              assert.ok(after >= 0 && after <= 1, `σ_eff ${after} out of range`);
              assert.ok(after >= (before[j] as number), 'σ_eff decreased after a vouch');
            });
          });
        },
      ),
    );
  });
});

describe('liability: release', () => {
  it('releases one bond, recording when and why, and drops it from the indexes', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    const b = release(s, 'b1', 1_500, 'task done');
    assert.equal(b.releasedAt, 1_500);
    assert.equal(b.releaseReason, 'task done');
    assert.equal(sigmaEff(s, 's1', B, 0.4, 1, 1_500), 0.4);
    assert.deepEqual(s.byVouchee, {});
    assert.deepEqual(s.byVoucher, {});
    assert.deepEqual(s.bySession, {});
    assert.ok(s.bonds['b1'], 'the bond record is kept');
  });

  it('is idempotent and rejects unknown bonds', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    release(s, 'b1', 1_500, 'first');
    assert.equal(release(s, 'b1', 1_600, 'second').releaseReason, 'first');
    throwsCode(() => release(s, 'nope', 1_600, 'x'), 'BOND_NOT_FOUND', /bond nope/);
  });

  it('releasing a session releases all its bonds and only those', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    vouch(s, { sessionId: 's1', voucher: B, vouchee: C, voucherSigma: 0.9 }, T0, 'b2');
    vouch(s, { sessionId: 's2', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b3');
    assert.deepEqual(releaseSession(s, 's1', 3_000).sort(), ['b1', 'b2']);
    assert.equal(s.bonds['b1']?.releasedAt, 3_000);
    assert.equal(s.bonds['b2']?.releaseReason, 'session terminated');
    assert.equal(s.bonds['b3']?.releasedAt, null);
    assert.equal(bondsBy(s, 's1', A, 3_000).length, 0);
    assert.equal(bondsBy(s, 's2', A, 3_000).length, 1);
    assert.deepEqual(Object.keys(s.bySession), ['s2']);
  });

  it('pruneExpired releases expired bonds at their expiry time', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9, expiresAt: 2_000 }, T0, 'b1');
    vouch(s, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 0.9 }, T0, 'b2');
    assert.deepEqual(pruneExpired(s, 's1', 1_999), []);
    assert.deepEqual(pruneExpired(s, 's1', 2_000), ['b1']);
    assert.equal(s.bonds['b1']?.releasedAt, 2_000);
    assert.equal(s.bonds['b1']?.releaseReason, 'expired');
    assert.deepEqual(s.bySession['s1'], ['b2']);
  });
});

describe('liability: matrix', () => {
  it('shows who vouches for whom, exposure, cascade paths (≤ 2 edges) and no cycle', () => {
    const s = createLiabilityState();
    // D vouches for C, C for B, B for A; plus D for B.
    vouch(s, { sessionId: 's1', voucher: B, vouchee: A, voucherSigma: 0.9 }, T0, 'b1');
    vouch(s, { sessionId: 's1', voucher: C, vouchee: B, voucherSigma: 0.8 }, T0, 'b2');
    vouch(s, { sessionId: 's1', voucher: D, vouchee: C, voucherSigma: 0.7 }, T0, 'b3');
    vouch(s, { sessionId: 's1', voucher: D, vouchee: B, voucherSigma: 0.7 }, T0, 'b4');
    vouch(s, { sessionId: 's2', voucher: A, vouchee: D, voucherSigma: 0.7 }, T0, 'other');
    const m = liabilityMatrix(s, 's1', T0);
    assert.deepEqual(m.vouchesFor, { [B]: [A], [C]: [B], [D]: [C, B] });
    assert.ok(Math.abs((m.exposure[D] as number) - 0.28) < 1e-12);
    assert.equal(m.bonds.length, 4);
    const paths = m.cascadePaths.map((p) => p.join('>')).sort();
    assert.deepEqual(
      paths,
      [
        [A, B, C],
        [A, B, D],
        [B, C, D],
        [B, D],
        [C, D],
      ]
        .map((p) => p.join('>'))
        .sort(),
    );
    assert.ok(m.cascadePaths.every((p) => p.length <= 3));
    assert.equal(m.hasCycle, false);
  });

  it('the cycle check detects a cycle', () => {
    assert.equal(hasCycle({ a: ['b'], b: ['c'], c: ['a'] }), true);
    assert.equal(hasCycle({ a: ['a'] }), true);
    assert.equal(hasCycle({ a: ['b', 'c'], b: ['c'], c: [] }), false);
  });

  it('the vouch graph stays acyclic after any sequence of accepted vouches', () => {
    const agents = ['did:x:0', 'did:x:1', 'did:x:2', 'did:x:3', 'did:x:4', 'did:x:5'];
    const op = fc.oneof(
      fc.record({
        kind: fc.constant('vouch' as const),
        voucher: fc.constantFrom(...agents),
        vouchee: fc.constantFrom(...agents),
        voucherSigma: fc.double({ min: 0.3, max: 1, noNaN: true }),
        bondPct: fc.double({ min: 0, max: 0.3, noNaN: true }),
        ttl: fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }),
      }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('tick' as const), by: fc.integer({ min: 1, max: 20 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
        const s = createLiabilityState();
        let now = T0;
        let n = 0;
        for (const o of ops) {
          if (o.kind === 'tick') now += o.by;
          else if (o.kind === 'release') {
            const ids = Object.keys(s.bonds);
            if (ids.length) release(s, ids[o.pick % ids.length] as string, now, 'test');
          } else {
            const input = {
              sessionId: 's1',
              voucher: o.voucher,
              vouchee: o.vouchee,
              voucherSigma: o.voucherSigma,
              bondPct: o.bondPct,
              expiresAt: o.ttl === undefined ? null : now + o.ttl,
            };
            try {
              vouch(s, input, now, `b${n++}`);
            } catch (e) {
              if (!isHypervisorError(e)) throw e;
              if (e.code === 'VOUCH_CYCLE') {
                // A rejected cycle really had a path vouchee → … → voucher.
                assert.ok(reachable(Object.values(s.bonds), o.vouchee, o.voucher, now));
              }
            }
          }
          assert.equal(liabilityMatrix(s, 's1', now).hasCycle, false);
        }
      }),
    );
  });

  it('liability state survives a JSON round trip', () => {
    const s = createLiabilityState();
    vouch(s, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9, expiresAt: 9_000 }, T0, 'b1');
    const copy = JSON.parse(JSON.stringify(s));
    assert.deepEqual(copy, s);
    assert.equal(sigmaEff(copy, 's1', B, 0.4, 0.5, T0), sigmaEff(s, 's1', B, 0.4, 0.5, T0));
  });
});

function reachable(bonds: Bond[], from: string, to: string, now: number): boolean {
  const live = bonds.filter((b) => b.releasedAt === null && (b.expiresAt === null || b.expiresAt > now));
  const seen = new Set([from]);
  const queue = [from];
  while (queue.length) {
    const at = queue.shift() as string;
    for (const b of live) {
      if (b.voucher !== at) continue;
      if (b.vouchee === to) return true;
      if (!seen.has(b.vouchee)) {
        seen.add(b.vouchee);
        queue.push(b.vouchee);
      }
    }
  }
  return false;
}
