/**
 * Participants' `slashed` flag and ring cap (SPEC §4, §9 MEDIUM drift), the
 * gate view with per-action ω (SPEC §4 [resolved]), bond expiry timers, and
 * the request bounds of SPEC §11.6 on the join path and the session config.
 */
import assert from 'node:assert/strict';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { bondTotalFor, createLiabilityState, nextBondExpiry, release, vouch } from '../../src/core/liability';
import { createSessionState, leave, sigmaEffWith, type SessionConfigInput } from '../../src/core/session';
import { capRing, gateView, refreshRings } from '../../src/core/sessionRings';
import { slashInSession, vouchInSession } from '../../src/core/sessionLiability';
import { join } from '../../src/core/join';
import { parseAction } from '../../src/core/reversibility';
import { analyzeManifest } from '../../src/core/adapters';
import { createHistoryCache, verifyHistory } from '../../src/core/history';
import { DidSchema, isDid } from '../../src/core/common';

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
const T0 = 1_000;

function setup(config: SessionConfigInput = {}) {
  return { s: createSessionState({ sessionId: 's1', config }, T0), l: createLiabilityState() };
}

describe('session: slashed participants', () => {
  it('a participant starts unslashed with ring cap 0; a slash marks the slashed agent only', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.7 }, T0);
    assert.equal(s.participants[A]?.slashed, false);
    assert.equal(s.participants[A]?.ringCap, 0);
    vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'b1');
    slashInSession(s, l, { slashId: 'sl', vouchee: B, reason: 'drift', omega: 0.5 }, 2_000);
    assert.equal(s.participants[B]?.slashed, true);
    assert.equal(s.participants[A]?.slashed, false, 'a clipped voucher is not itself slashed');
  });

  it('a slashed agent cannot be vouched for again in the session', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.7 }, T0);
    join(s, l, { agentDid: C, sigmaRaw: 0.9 }, T0);
    slashInSession(s, l, { slashId: 'sl', vouchee: B, reason: 'bad', omega: 0.5 }, 2_000);
    throwsCode(
      () => vouchInSession(s, l, { voucher: C, vouchee: B }, 2_000, 'b2'),
      'AGENT_SLASHED',
      /did:mesh:b.*session s1/,
    );
    assert.equal(bondTotalFor(l, 's1', B, 2_000), 0, 'nothing was bonded');
  });

  it('a cascaded slash marks the voucher it slashed', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.6 }, T0);
    join(s, l, { agentDid: C, sigmaRaw: 0.55 }, T0);
    vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'ab');
    vouchInSession(s, l, { voucher: B, vouchee: C }, T0, 'bc');
    // C slashed at ω 0.95 clips B to 0.05 (≤ 0.06) and B, vouched for by A, is slashed in turn.
    const { outcome } = slashInSession(s, l, { slashId: 'sl', vouchee: C, reason: 'bad', omega: 0.95 }, 2_000);
    assert.deepEqual(
      outcome.slashes.map((x) => x.vouchee),
      [C, B],
    );
    assert.equal(s.participants[C]?.slashed, true);
    assert.equal(s.participants[B]?.slashed, true);
    assert.equal(s.participants[A]?.slashed, false);
  });
});

describe('session: ring cap (MEDIUM drift)', () => {
  it('capRing demotes by one ring at once and returns the change', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    assert.equal(s.participants[A]?.ring, 2);
    assert.deepEqual(capRing(s, A), [{ did: A, from: 2, to: 3, kind: 'demotion', sigmaEff: 0.8 }]);
    assert.equal(s.participants[A]?.ring, 3);
    assert.equal(s.participants[A]?.ringCap, 3);
    assert.deepEqual(capRing(s, A), [], 'ring 3 has nowhere lower to go');
    void l;
  });

  it('no later vouch, release or refresh lifts the agent above its cap', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 1 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.99 }, T0);
    s.participants[B]!.ring = 1; // granted by consensus elsewhere
    assert.deepEqual(
      capRing(s, B).map((c) => [c.from, c.to]),
      [[1, 2]],
    );
    assert.deepEqual(refreshRings(s, l, T0), []);
    const { ringChanges } = vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'b1');
    assert.deepEqual(ringChanges, []);
    assert.equal(s.participants[B]?.ring, 2);
    // σ falls: the computed ring (3) is less privileged than the cap, so it wins.
    release(l, 'b1', 2_000, 'done');
    s.participants[B]!.sigmaRaw = 0.5;
    assert.deepEqual(
      refreshRings(s, l, 2_000).map((c) => [c.from, c.to]),
      [[2, 3]],
    );
    // σ recovers: the cap (2) still holds it, never ring 1.
    s.participants[B]!.sigmaRaw = 1;
    assert.deepEqual(
      refreshRings(s, l, 3_000).map((c) => [c.from, c.to]),
      [[3, 2]],
    );
    assert.equal(s.participants[B]?.ring, 2);
  });

  it('a cap never loosens: an explicit lower cap keeps the stricter one', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    capRing(s, A, 3);
    assert.deepEqual(capRing(s, A, 2), []);
    assert.equal(s.participants[A]?.ringCap, 3);
    assert.equal(s.participants[A]?.ring, 3);
    void l;
  });

  it('capRing needs a participant', () => {
    const { s } = setup();
    throwsCode(() => capRing(s, A), 'AGENT_NOT_FOUND', /did:mesh:a/);
    throwsCode(() => capRing(s, 'not-a-did'), 'INVALID_INPUT');
  });
});

describe('session: gate view and per-action ω', () => {
  it('reports σ_raw, the active bond sum, cap and flags; σ_eff follows the action ω', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.5 }, T0);
    vouchInSession(s, l, { voucher: A, vouchee: B, bondPct: 0.2, expiresAt: 5_000 }, T0, 'b1');
    const v = gateView(s, l, B, T0);
    assert.ok(v);
    assert.equal(v.sigmaRaw, 0.5);
    assert.ok(Math.abs(v.bondSum - 0.18) < 1e-12);
    assert.deepEqual(
      { ringCap: v.ringCap, active: v.active, slashed: v.slashed, historyTrustworthy: v.historyTrustworthy },
      {
        ringCap: 0,
        active: true,
        slashed: false,
        historyTrustworthy: true,
      },
    );
    assert.ok(Math.abs(sigmaEffWith(v, 0.2) - 0.536) < 1e-12, 'FULL action: ω 0.2');
    assert.ok(Math.abs(sigmaEffWith(v, 0.95) - 0.671) < 1e-12, 'NONE action: ω 0.95');
    assert.equal(sigmaEffWith({ sigmaRaw: 0.99, bondSum: 0.5 }, 0.95), 1, 'capped at 1');
    // The bond stops counting at its expiry.
    assert.equal(gateView(s, l, B, 5_000)?.bondSum, 0);
  });

  it('undefined for a DID that never joined; inactive after leave', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    assert.equal(gateView(s, l, B, T0), undefined);
    leave(s, A, T0);
    assert.equal(gateView(s, l, A, T0)?.active, false);
  });

  it('flags an untrustworthy history and a slash', () => {
    const { s, l } = setup();
    const bad = Array.from({ length: 5 }, (_, i) => ({
      sessionId: `o${i}`,
      summaryHash: 'same-hash-0123456789',
      timestamp: i,
    }));
    join(s, l, { agentDid: A, sigmaRaw: 0.9, history: bad }, T0);
    assert.equal(gateView(s, l, A, T0)?.historyTrustworthy, false);
    slashInSession(s, l, { slashId: 'x', vouchee: A, reason: 'r', omega: 0.5 }, T0);
    assert.equal(gateView(s, l, A, T0)?.slashed, true);
    assert.equal(gateView(s, l, A, T0)?.sigmaRaw, 0);
  });
});

describe('liability: bond totals and the next expiry', () => {
  it('bondTotalFor sums active, unexpired bonds of the vouchee in the session only', () => {
    const l = createLiabilityState();
    vouch(l, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 0.9, bondPct: 0.1 }, 0, 'x1');
    vouch(l, { sessionId: 's1', voucher: B, vouchee: C, voucherSigma: 0.8, bondPct: 0.25, expiresAt: 100 }, 0, 'x2');
    vouch(l, { sessionId: 's2', voucher: A, vouchee: C, voucherSigma: 0.9, bondPct: 0.5 }, 0, 'x3');
    assert.ok(Math.abs(bondTotalFor(l, 's1', C, 50) - 0.29) < 1e-12);
    assert.ok(Math.abs(bondTotalFor(l, 's1', C, 100) - 0.09) < 1e-12, 'expired at expiresAt');
    release(l, 'x1', 60, 'done');
    assert.equal(bondTotalFor(l, 's1', C, 70), 0.2);
    assert.equal(bondTotalFor(l, 's1', A, 70), 0);
  });

  it('nextBondExpiry is the earliest future expiry among unreleased bonds of the session', () => {
    const l = createLiabilityState();
    assert.equal(nextBondExpiry(l, 's1', 0), null);
    vouch(l, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9, bondPct: 0.1, expiresAt: 300 }, 0, 'e300');
    vouch(l, { sessionId: 's1', voucher: A, vouchee: C, voucherSigma: 0.9, bondPct: 0.1, expiresAt: 100 }, 0, 'e100');
    vouch(l, { sessionId: 's1', voucher: B, vouchee: C, voucherSigma: 0.9, bondPct: 0.1 }, 0, 'forever');
    vouch(l, { sessionId: 's2', voucher: A, vouchee: B, voucherSigma: 0.9, bondPct: 0.1, expiresAt: 50 }, 0, 'other');
    assert.equal(nextBondExpiry(l, 's1', 0), 100);
    assert.equal(nextBondExpiry(l, 's1', 100), 300, 'an expiry at now is past');
    assert.equal(nextBondExpiry(l, 's1', 300), null);
    release(l, 'e100', 10, 'done');
    assert.equal(nextBondExpiry(l, 's1', 0), 300, 'a released bond sets no timer');
    assert.equal(nextBondExpiry(l, 's2', 0), 50);
  });
});

describe('bounds on requests (SPEC §11.6)', () => {
  it('join declares at most 32 actions', () => {
    const { s, l } = setup();
    const actions = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ actionId: `a${i}`, reversibility: 'FULL' as const }));
    join(s, l, { agentDid: A, sigmaRaw: 0.8, actions: actions(32) }, T0);
    throwsCode(
      () => join(s, l, { agentDid: B, sigmaRaw: 0.8, actions: actions(33) }, T0),
      'INVALID_INPUT',
      /actions: .*at most 32/,
    );
  });

  it('action ids: 1–128 of letters, digits and . _ : / -, never "." or ".."', () => {
    for (const ok of ['a', 'deploy/prod', 'ns:act.v2_x-1', 'x'.repeat(128), '...'])
      assert.equal(parseAction({ actionId: ok }).actionId, ok);
    for (const bad of ['', '.', '..', 'x'.repeat(129), 'with space', 'a\u0000b', 'ä']) {
      throwsCode(() => parseAction({ actionId: bad }), 'INVALID_INPUT', /actionId/);
    }
  });

  it('name and compensationMethod at most 200 characters', () => {
    parseAction({ actionId: 'a', name: 'n'.repeat(200), compensationMethod: 'c'.repeat(200) });
    throwsCode(() => parseAction({ actionId: 'a', name: 'n'.repeat(201) }), 'INVALID_INPUT', /name/);
    throwsCode(
      () => parseAction({ actionId: 'a', compensationMethod: 'c'.repeat(201) }),
      'INVALID_INPUT',
      /compensationMethod/,
    );
  });

  it('executeApi/undoApi: handler:<name> or an http(s) URL of at most 2048 characters', () => {
    const ok = [
      'handler:demo.send-email',
      'handler:' + 'h'.repeat(100),
      'http://127.0.0.1:8080/do',
      'https://tools.example/x?y=1',
    ];
    for (const api of ok) assert.equal(parseAction({ actionId: 'a', executeApi: api, undoApi: api }).executeApi, api);
    const bad = [
      '',
      '/do',
      'handler:',
      'handler:' + 'h'.repeat(101),
      'handler:a b',
      'ftp://x/y',
      'javascript:alert(1)',
      'https://x/' + 'p'.repeat(2040),
    ];
    for (const api of bad) {
      throwsCode(
        () => parseAction({ actionId: 'a', executeApi: api }),
        'INVALID_INPUT',
        /executeApi.*handler:<name>.*http\(s\) URL/,
      );
      throwsCode(
        () => parseAction({ actionId: 'a', undoApi: api }),
        'INVALID_INPUT',
        /undoApi.*handler:<name>.*http\(s\) URL/,
      );
    }
  });

  it('manifests: at most 32 actions and scopes, strings at most 200', () => {
    const base = { agent_id: A, trust_level: 'trusted', trust_score: 7 };
    analyzeManifest({
      ...base,
      actions: Array.from({ length: 32 }, (_, i) => `a${i}`),
      scopes: Array.from({ length: 32 }, () => 's'.repeat(200)),
    });
    throwsCode(
      () => analyzeManifest({ ...base, actions: Array.from({ length: 33 }, (_, i) => `a${i}`) }),
      'INVALID_INPUT',
      /actions/,
    );
    throwsCode(
      () => analyzeManifest({ ...base, scopes: Array.from({ length: 33 }, () => 's') }),
      'INVALID_INPUT',
      /scopes/,
    );
    throwsCode(() => analyzeManifest({ ...base, scopes: ['s'.repeat(201)] }), 'INVALID_INPUT', /scopes\.0/);
    throwsCode(() => analyzeManifest({ ...base, trust_level: 't'.repeat(201) }), 'INVALID_INPUT', /trust_level/);
    throwsCode(() => analyzeManifest({ ...base, actions: ['..'] }), 'INVALID_INPUT', /actions/);
  });

  it('history: at most 200 records, strings at most 200', () => {
    const rec = (i: number) => ({ sessionId: `o${i}`, summaryHash: `${'f'.repeat(16)}${i}`, timestamp: i });
    assert.equal(
      verifyHistory(
        createHistoryCache(),
        A,
        Array.from({ length: 200 }, (_, i) => rec(i)),
        0,
      ).recordCount,
      200,
    );
    throwsCode(
      () =>
        verifyHistory(
          createHistoryCache(),
          A,
          Array.from({ length: 201 }, (_, i) => rec(i)),
          0,
        ),
      'INVALID_INPUT',
      /at most 200 records/,
    );
    throwsCode(
      () => verifyHistory(createHistoryCache(), A, [{ ...rec(0), summaryHash: 'h'.repeat(201) }], 0),
      'INVALID_INPUT',
      /0\.summaryHash/,
    );
    throwsCode(
      () => verifyHistory(createHistoryCache(), A, [{ ...rec(0), sessionId: 's'.repeat(201) }], 0),
      'INVALID_INPUT',
      /0\.sessionId/,
    );
  });

  it('DIDs are at most 256 characters', () => {
    const long = 'did:x:' + 'a'.repeat(250);
    assert.equal(long.length, 256);
    assert.ok(isDid(long) && DidSchema.safeParse(long).success);
    assert.ok(!isDid(long + 'a') && !DidSchema.safeParse(long + 'a').success);
  });

  it('session config: quorum, SRE witnesses, tool origins, participant limit', () => {
    const { s } = setup({
      consensusQuorum: 3,
      sreWitnesses: [C],
      allowedToolOrigins: ['http://127.0.0.1:8080', 'https://tools.example'],
    });
    assert.equal(s.config.consensusQuorum, 3);
    assert.deepEqual(s.config.sreWitnesses, [C]);
    assert.deepEqual(s.config.allowedToolOrigins, ['http://127.0.0.1:8080', 'https://tools.example']);
    const bad: [SessionConfigInput, RegExp][] = [
      [{ consensusQuorum: 0 }, /consensusQuorum/],
      [{ consensusQuorum: 11 }, /consensusQuorum/],
      [{ consensusQuorum: 1.5 }, /consensusQuorum/],
      [{ sreWitnesses: ['nope'] }, /sreWitnesses\.0/],
      [{ sreWitnesses: Array.from({ length: 17 }, (_, i) => `did:x:${i}`) }, /sreWitnesses/],
      [{ allowedToolOrigins: ['http://127.0.0.1:8080/'] }, /allowedToolOrigins\.0/],
      [{ allowedToolOrigins: ['http://h/path'] }, /allowedToolOrigins\.0/],
      [{ allowedToolOrigins: ['ftp://h'] }, /allowedToolOrigins\.0/],
      [{ allowedToolOrigins: ['not a url'] }, /allowedToolOrigins\.0/],
      [{ allowedToolOrigins: ['https://' + 'h'.repeat(200)] }, /allowedToolOrigins\.0/],
      [{ allowedToolOrigins: Array.from({ length: 17 }, (_, i) => `http://h${i}`) }, /allowedToolOrigins/],
      [{ maxParticipants: 101 }, /maxParticipants/],
    ];
    for (const [config, pattern] of bad) {
      throwsCode(() => createSessionState({ sessionId: 's1', config }, T0), 'INVALID_INPUT', pattern);
    }
  });

  it('sessions never share config arrays', () => {
    const a = createSessionState({ sessionId: 'a' }, T0);
    const b = createSessionState({ sessionId: 'b', config: {} }, T0);
    const c = createSessionState({ sessionId: 'c', config: { maxParticipants: 3 } }, T0);
    a.config.sreWitnesses.push(C);
    assert.deepEqual(b.config.sreWitnesses, []);
    assert.deepEqual(c.config.sreWitnesses, []);
    assert.deepEqual(createSessionState({ sessionId: 'd' }, T0).config.sreWitnesses, []);
  });
});
