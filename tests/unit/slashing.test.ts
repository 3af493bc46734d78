import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { bondsBy, bondsFor, createLiabilityState, vouch, type LiabilityState } from '../../src/core/liability';
import { clipSigma, slash } from '../../src/core/slashing';

function throwsCode(fn: () => unknown, code: ErrorCode, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isHypervisorError(e, code), `expected ${code}, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

const X = 'did:mesh:x';
const V1 = 'did:mesh:v1';
const V2 = 'did:mesh:v2';
const V3 = 'did:mesh:v3';
const V4 = 'did:mesh:v4';
const Y = 'did:mesh:y';
const T0 = 1_000;
const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≉ ${b}`);

/** voucher vouches for vouchee in s1 with its current score. */
function bond(
  l: LiabilityState,
  scores: Record<string, number>,
  voucher: string,
  vouchee: string,
  id: string,
  sid = 's1',
) {
  return vouch(l, { sessionId: sid, voucher, vouchee, voucherSigma: scores[voucher] as number }, T0, id);
}

describe('slashing: one level', () => {
  it('blacklists the vouchee, clips each voucher, releases its bond and records the clip', () => {
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.7, [V1]: 0.8, [V2]: 0.9 };
    bond(l, scores, V1, X, 'b1');
    bond(l, scores, V2, X, 'b2');
    const out = slash(
      l,
      scores,
      { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'intent violated', omega: 0.5 },
      2_000,
    );
    assert.equal(scores[X], 0);
    close(scores[V1] as number, 0.4);
    close(scores[V2] as number, 0.45);
    assert.equal(out.slashes.length, 1);
    const rec = out.slashes[0]!;
    assert.equal(rec.slashId, 'sl');
    assert.equal(rec.sessionId, 's1');
    assert.equal(rec.vouchee, X);
    assert.equal(rec.reason, 'intent violated');
    assert.equal(rec.depth, 0);
    assert.equal(rec.at, 2_000);
    assert.equal(rec.sigmaBefore, 0.7);
    assert.equal(rec.sigmaAfter, 0);
    assert.equal(rec.causedBy, null);
    assert.deepEqual(
      rec.clips.map((c) => [c.voucher, c.before, c.omega, c.bondId]),
      [
        [V1, 0.8, 0.5, 'b1'],
        [V2, 0.9, 0.5, 'b2'],
      ],
    );
    close(rec.clips[0]!.after, 0.4);
    assert.equal(l.bonds['b1']?.releasedAt, 2_000);
    assert.match(l.bonds['b1']?.releaseReason ?? '', /slash sl/);
    assert.deepEqual(bondsFor(l, 's1', X, 2_000), []);
    assert.deepEqual(out.touched, [X, V1, V2]);
  });

  it('clips to the 0.05 floor', () => {
    assert.equal(clipSigma(0.5, 1), 0.05);
    assert.equal(clipSigma(0.5, 0.95), 0.05);
    close(clipSigma(0.8, 0.5), 0.4);
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.5 };
    bond(l, scores, V1, X, 'b1');
    slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 1 }, 2_000);
    assert.equal(scores[V1], 0.05);
  });

  it('only touches the slashed session', () => {
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.9 };
    bond(l, scores, V1, X, 'b1', 's1');
    bond(l, scores, V1, X, 'b2', 's2');
    slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.5 }, 2_000);
    assert.equal(l.bonds['b2']?.releasedAt, null);
    assert.equal(bondsFor(l, 's2', X, 2_000).length, 1);
  });

  it('ignores expired bonds', () => {
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.9 };
    vouch(l, { sessionId: 's1', voucher: V1, vouchee: X, voucherSigma: 0.9, expiresAt: 2_000 }, T0, 'b1');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.5 }, 2_000);
    assert.equal(scores[V1], 0.9);
    assert.deepEqual(out.slashes[0]?.clips, []);
  });

  it('a voucher with two bonds for the same vouchee is clipped once, both bonds released', () => {
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.9 };
    bond(l, scores, V1, X, 'b1');
    bond(l, scores, V1, X, 'b2');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.5 }, 2_000);
    close(scores[V1] as number, 0.45);
    assert.deepEqual(out.slashes[0]?.clips[0]?.bondIds, ['b1', 'b2']);
    assert.ok(l.bonds['b2']?.releasedAt !== null);
  });

  it('forfeits the bonds the slashed agent had put up for others', () => {
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.9, [Y]: 0.4 };
    bond(l, scores, X, Y, 'bxy');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.5 }, 2_000);
    assert.deepEqual(out.slashes[0]?.forfeitedBonds, ['bxy']);
    assert.equal(l.bonds['bxy']?.releasedAt, 2_000);
    assert.deepEqual(bondsBy(l, 's1', X, 2_000), []);
    assert.ok(out.touched.includes(Y));
    assert.equal(scores[Y], 0.4, "the vouchee's own σ is not clipped");
  });

  it('a voucher missing from the score table is clipped from the σ it bonded with', () => {
    const l = createLiabilityState();
    vouch(l, { sessionId: 's1', voucher: V1, vouchee: X, voucherSigma: 0.8 }, T0, 'b1');
    const scores: Record<string, number> = { [X]: 0.3 };
    slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.5 }, 2_000);
    close(scores[V1] as number, 0.4);
  });

  it('rejects an unknown vouchee and invalid input', () => {
    const l = createLiabilityState();
    throwsCode(
      () => slash(l, {}, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.5 }, T0),
      'AGENT_NOT_FOUND',
      /did:mesh:x/,
    );
    throwsCode(
      () => slash(l, { [X]: 0.5 }, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 1.5 }, T0),
      'INVALID_INPUT',
      /omega/,
    );
    throwsCode(
      () => slash(l, { [X]: 0.5 }, { slashId: '', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.5 }, T0),
      'INVALID_INPUT',
      /slashId/,
    );
    throwsCode(
      () => slash(l, { [X]: 0.5 }, { slashId: 'a', sessionId: 's1', vouchee: X, reason: '', omega: 0.5 }, T0),
      'INVALID_INPUT',
      /reason/,
    );
  });
});

describe('slashing: cascade', () => {
  it('a voucher clipped to exactly 0.06 that is vouched for is slashed at depth 1', () => {
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.6, [V2]: 0.9 };
    bond(l, scores, V1, X, 'b1');
    bond(l, scores, V2, V1, 'b2');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.9 }, 2_000);
    assert.equal(out.slashes.length, 2);
    const second = out.slashes[1]!;
    assert.equal(second.slashId, 'sl-1');
    assert.equal(second.vouchee, V1);
    assert.equal(second.depth, 1);
    assert.equal(second.causedBy, 'sl');
    close(second.sigmaBefore, 0.06);
    assert.equal(scores[V1], 0);
    close(scores[V2] as number, 0.09);
  });

  it('float error does not lift an exact 0.06 clip over the threshold', () => {
    // 1 × (1 − 0.94) is 0.06000000000000005 in floats.
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 1, [V2]: 0.9 };
    bond(l, scores, V1, X, 'b1');
    bond(l, scores, V2, V1, 'b2');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.94 }, 2_000);
    assert.ok((out.slashes[0]?.clips[0]?.after as number) > 0.06, 'the float clip really overshoots');
    assert.deepEqual(
      out.slashes.map((s) => s.vouchee),
      [X, V1],
    );
  });

  it('a voucher left just above 0.06 is not slashed', () => {
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.61, [V2]: 0.9 };
    bond(l, scores, V1, X, 'b1');
    bond(l, scores, V2, V1, 'b2');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.9 }, 2_000);
    assert.equal(out.slashes.length, 1);
    close(scores[V1] as number, 0.061);
    assert.equal(scores[V2], 0.9);
  });

  it('a voucher at ≤ 0.06 that nobody vouches for is not slashed', () => {
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.6 };
    bond(l, scores, V1, X, 'b1');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.95 }, 2_000);
    assert.equal(out.slashes.length, 1);
    assert.equal(scores[V1], 0.05);
  });

  it('cascades exactly to depth 2 and not beyond', () => {
    // X ← V1 ← V2 ← V3 ← V4 (each vouched for by the next).
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.9, [V2]: 0.9, [V3]: 0.9, [V4]: 0.9 };
    bond(l, scores, V1, X, 'b1');
    bond(l, scores, V2, V1, 'b2');
    bond(l, scores, V3, V2, 'b3');
    bond(l, scores, V4, V3, 'b4');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.95 }, 2_000);
    assert.deepEqual(
      out.slashes.map((s) => [s.slashId, s.vouchee, s.depth, s.causedBy]),
      [
        ['sl', X, 0, null],
        ['sl-1', V1, 1, 'sl'],
        ['sl-2', V2, 2, 'sl-1'],
      ],
    );
    assert.equal(scores[V1], 0);
    assert.equal(scores[V2], 0);
    // V3 is clipped by the depth-2 slash (≤ 0.06 and vouched for) but not slashed.
    assert.equal(scores[V3], 0.05);
    assert.equal(scores[V4], 0.9);
    assert.equal(l.bonds['b4']?.releasedAt, null);
    assert.deepEqual(out.touched, [X, V1, V2, V3]);
  });

  it('a shared voucher of two cascaded agents is clipped by each of their slashes', () => {
    // X ← V1 ← V3 and X ← V2 ← V3.
    const l = createLiabilityState();
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.6, [V2]: 0.6, [V3]: 1 };
    bond(l, scores, V1, X, 'b1');
    bond(l, scores, V2, X, 'b2');
    bond(l, scores, V3, V1, 'b3');
    bond(l, scores, V3, V2, 'b4');
    const out = slash(l, scores, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.5 }, 2_000);
    // 0.6 × 0.5 = 0.3 > 0.06: no cascade, V3 untouched.
    assert.equal(out.slashes.length, 1);
    assert.equal(scores[V3], 1);

    const l2 = createLiabilityState();
    const s2: Record<string, number> = { [X]: 0.3, [V1]: 0.6, [V2]: 0.6, [V3]: 1 };
    bond(l2, s2, V1, X, 'b1');
    bond(l2, s2, V2, X, 'b2');
    bond(l2, s2, V3, V1, 'b3');
    bond(l2, s2, V3, V2, 'b4');
    const out2 = slash(l2, s2, { slashId: 'sl', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.96 }, 2_000);
    assert.deepEqual(
      out2.slashes.map((s) => s.vouchee),
      [X, V1, V2],
    );
    const v3Clips = out2.slashes.flatMap((s) => s.clips.filter((c) => c.voucher === V3));
    assert.deepEqual(
      v3Clips.map((c) => [c.bondId, c.before, c.after]),
      [
        ['b3', 1, 0.05],
        ['b4', 0.05, 0.05],
      ],
    );
  });

  it('cascaded slashes get deterministic ids and never repeat an agent', () => {
    const l = createLiabilityState({ maxExposureRatio: 1 });
    const scores: Record<string, number> = { [X]: 0.3, [V1]: 0.6, [V2]: 0.6, [V3]: 1, [V4]: 1 };
    bond(l, scores, V1, X, 'b1');
    bond(l, scores, V2, X, 'b2');
    bond(l, scores, V3, V1, 'b3');
    bond(l, scores, V4, V2, 'b4');
    const out = slash(l, scores, { slashId: 'k', sessionId: 's1', vouchee: X, reason: 'r', omega: 0.95 }, 2_000);
    assert.deepEqual(
      out.slashes.map((s) => s.slashId),
      ['k', 'k-1', 'k-2'],
    );
    assert.deepEqual(
      out.slashes.map((s) => s.vouchee),
      [X, V1, V2],
    );
    assert.deepEqual(
      out.slashes.map((s) => s.depth),
      [0, 1, 1],
    );
  });

  it('a slash never raises any score, keeps scores in [0, 1] and stops at depth 2', () => {
    const agents = ['did:x:0', 'did:x:1', 'did:x:2', 'did:x:3', 'did:x:4', 'did:x:5', 'did:x:6'];
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: agents.length, maxLength: agents.length }),
        fc.array(fc.tuple(fc.nat(6), fc.nat(6), fc.double({ min: 0, max: 0.5, noNaN: true })), { maxLength: 20 }),
        fc.nat(6),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (sigmas, edges, target, omega) => {
          const l = createLiabilityState();
          const scores: Record<string, number> = {};
          agents.forEach((d, i) => (scores[d] = sigmas[i] as number));
          edges.forEach(([a, b, pct], i) => {
            try {
              vouch(
                l,
                {
                  sessionId: 's1',
                  voucher: agents[a]!,
                  vouchee: agents[b]!,
                  voucherSigma: scores[agents[a]!]!,
                  bondPct: pct,
                },
                T0,
                `b${i}`,
              );
            } catch (e) {
              if (!isHypervisorError(e)) throw e;
            }
          });
          const before = { ...scores };
          const out = slash(
            l,
            scores,
            { slashId: 'p', sessionId: 's1', vouchee: agents[target]!, reason: 'r', omega },
            2_000,
          );
          for (const d of agents) {
            assert.ok((scores[d] as number) <= (before[d] as number), `${d} rose`);
            assert.ok((scores[d] as number) >= 0 && (scores[d] as number) <= 1);
          }
          assert.equal(scores[agents[target]!], 0);
          assert.ok(out.slashes.every((s) => s.depth <= 2));
          // Every agent whose score changed is reported as touched.
          for (const d of agents) if (scores[d] !== before[d]) assert.ok(out.touched.includes(d));
        },
      ),
    );
  });
});
