import assert from 'node:assert/strict';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { createLiabilityState, release, vouch } from '../../src/core/liability';
import {
  activate,
  archive,
  beginTerminate,
  createSessionState,
  isOverDuration,
  leave,
  type SessionConfigInput,
} from '../../src/core/session';
import { refreshRings } from '../../src/core/sessionRings';
import { slashInSession, vouchInSession } from '../../src/core/sessionLiability';
import { join } from '../../src/core/join';

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
function records(n: number, hash = (i: number) => `${'f'.repeat(16)}${i}`) {
  return Array.from({ length: n }, (_, i) => ({ sessionId: `old${i}`, summaryHash: hash(i), timestamp: i }));
}

describe('session: creation and config', () => {
  it('moves straight to handshaking with the SPEC defaults', () => {
    const { s } = setup();
    assert.equal(s.state, 'handshaking');
    assert.equal(s.createdAt, T0);
    assert.deepEqual(s.config, {
      consistency: 'EVENTUAL',
      maxParticipants: 10,
      maxDurationSeconds: 3600,
      minSigmaEff: 0.6,
      auditEnabled: true,
      externalCommitment: false,
      consensusQuorum: 2,
      sreWitnesses: [],
      allowedToolOrigins: [],
      retentionDays: 90,
    });
  });

  it('rejects bad config naming the field', () => {
    throwsCode(
      () => createSessionState({ sessionId: 's1', config: { maxParticipants: 0 } }, T0),
      'INVALID_INPUT',
      /config\.maxParticipants/,
    );
    throwsCode(
      () => createSessionState({ sessionId: 's1', config: { consistency: 'SOMETIMES' as never } }, T0),
      'INVALID_INPUT',
      /config\.consistency/,
    );
    throwsCode(() => createSessionState({ sessionId: '' }, T0), 'INVALID_INPUT', /sessionId/);
  });

  it('knows when it has run its maximum duration', () => {
    const { s } = setup({ maxDurationSeconds: 10 });
    assert.equal(isOverDuration(s, T0 + 9_999), false);
    assert.equal(isOverDuration(s, T0 + 10_000), true);
  });
});

describe('session: lifecycle', () => {
  it('handshaking → active → terminating → archived', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    activate(s, 2_000);
    assert.equal(s.state, 'active');
    assert.equal(s.activatedAt, 2_000);
    beginTerminate(s, l, 3_000);
    assert.equal(s.state, 'terminating');
    archive(s, 4_000);
    assert.equal(s.state, 'archived');
    assert.equal(s.archivedAt, 4_000);
  });

  it('activate needs at least one participant', () => {
    const { s } = setup();
    throwsCode(() => activate(s, T0), 'INVALID_TRANSITION', /session s1: it has no participants/);
    assert.equal(s.state, 'handshaking');
  });

  it('terminate is allowed from handshaking', () => {
    const { s, l } = setup();
    beginTerminate(s, l, T0);
    assert.equal(s.state, 'terminating');
  });

  it('every other transition names the state and the allowed ones', () => {
    const { s, l } = setup();
    throwsCode(
      () => archive(s, T0),
      'INVALID_TRANSITION',
      /in state handshaking .*allowed from handshaking: active, terminating/,
    );
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    activate(s, T0);
    throwsCode(() => activate(s, T0), 'INVALID_TRANSITION', /in state active .*allowed from active: terminating/);
    throwsCode(() => archive(s, T0), 'INVALID_TRANSITION', /state active/);
    beginTerminate(s, l, T0);
    throwsCode(
      () => beginTerminate(s, l, T0),
      'INVALID_TRANSITION',
      /state terminating .*allowed from terminating: archived/,
    );
    throwsCode(() => activate(s, T0), 'INVALID_TRANSITION', /state terminating/);
    archive(s, T0);
    throwsCode(() => archive(s, T0), 'INVALID_TRANSITION', /state archived .*allowed from archived: none/);
    throwsCode(() => beginTerminate(s, l, T0), 'INVALID_TRANSITION', /state archived/);
  });

  it('join is allowed in handshaking and active only', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    activate(s, T0);
    assert.equal(join(s, l, { agentDid: B, sigmaRaw: 0.8 }, T0).ring, 2);
    beginTerminate(s, l, T0);
    throwsCode(
      () => join(s, l, { agentDid: C, sigmaRaw: 0.8 }, T0),
      'INVALID_TRANSITION',
      /cannot join session s1 in state terminating; join is allowed in handshaking, active/,
    );
  });

  it('terminating releases all the session bonds', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.5 }, T0);
    vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'b1');
    vouch(l, { sessionId: 'other', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b2');
    assert.deepEqual(beginTerminate(s, l, 5_000), ['b1']);
    assert.equal(l.bonds['b1']?.releasedAt, 5_000);
    assert.equal(l.bonds['b2']?.releasedAt, null);
  });
});

describe('session: join handshake', () => {
  it('assigns the ring from σ_eff and returns the handshake result', () => {
    const { s, l } = setup();
    assert.deepEqual(join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0), {
      did: A,
      ring: 2,
      sigmaRaw: 0.8,
      sigmaEff: 0.8,
      historyStatus: 'PROBATIONARY',
      consistency: 'EVENTUAL',
      consistencyChanged: false,
    });
    const p = s.participants[A]!;
    assert.equal(p.active, true);
    assert.equal(p.joinedAt, T0);
    assert.equal(p.leftAt, null);
  });

  it('never assigns ring 1 at join (no consensus)', () => {
    const { s, l } = setup();
    assert.equal(join(s, l, { agentDid: A, sigmaRaw: 1 }, T0).ring, 2);
  });

  it('σ_eff exactly 0.60 lands in ring 3 and is admitted (sandbox)', () => {
    const { s, l } = setup();
    assert.equal(join(s, l, { agentDid: A, sigmaRaw: 0.6 }, T0).ring, 3);
    assert.equal(join(s, l, { agentDid: B, sigmaRaw: 0.1 }, T0).ring, 3);
  });

  it('rejects σ_eff < minSigmaEff when the agent would not land in ring 3', () => {
    const { s, l } = setup({ minSigmaEff: 0.8 });
    throwsCode(
      () => join(s, l, { agentDid: A, sigmaRaw: 0.7 }, T0),
      'SIGMA_TOO_LOW',
      /did:mesh:a has σ_eff 0\.7, below session s1's minimum 0\.8 for ring 2/,
    );
    assert.deepEqual(s.participants, {});
    assert.equal(join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0).ring, 2, 'exactly the minimum is admitted');
    assert.equal(join(s, l, { agentDid: B, sigmaRaw: 0.5 }, T0).ring, 3, 'sandbox admission');
  });

  it('resolves σ: explicit; scored; the lower of both; manifest hint; fallback 0.50', () => {
    const { s, l } = setup();
    assert.equal(join(s, l, { agentDid: 'did:x:1', sigmaRaw: 0.7 }, T0).sigmaRaw, 0.7);
    assert.equal(join(s, l, { agentDid: 'did:x:2', scoredSigma: 0.82 }, T0).sigmaRaw, 0.82);
    assert.equal(join(s, l, { agentDid: 'did:x:3', sigmaRaw: 0.9, scoredSigma: 0.65 }, T0).sigmaRaw, 0.65);
    assert.equal(join(s, l, { agentDid: 'did:x:4', sigmaRaw: 0.62, scoredSigma: 0.9 }, T0).sigmaRaw, 0.62);
    const manifest = { agent_id: 'did:x:5', trust_level: 'trusted', trust_score: 7, actions: [], scopes: [] };
    assert.equal(join(s, l, { agentDid: 'did:x:5', manifest }, T0).sigmaRaw, 0.7);
    const m6 = { ...manifest, agent_id: 'did:x:6' };
    assert.equal(join(s, l, { agentDid: 'did:x:6', manifest: m6, scoredSigma: 0.4 }, T0).sigmaRaw, 0.4);
    assert.equal(
      join(s, l, { agentDid: 'did:x:7', manifest: { ...manifest, agent_id: 'did:x:7' }, sigmaRaw: 0.9 }, T0).sigmaRaw,
      0.9,
    );
    assert.equal(join(s, l, { agentDid: 'did:x:8' }, T0).sigmaRaw, 0.5);
  });

  it('σ_eff includes existing bonds for the agent', () => {
    const { s, l } = setup();
    vouch(l, { sessionId: 's1', voucher: A, vouchee: B, voucherSigma: 0.9 }, T0, 'b1');
    const r = join(s, l, { agentDid: B, sigmaRaw: 0.5 }, T0);
    // No declared actions: ω of NONE (0.95).
    assert.ok(Math.abs(r.sigmaEff - (0.5 + 0.95 * 0.18)) < 1e-12);
    assert.equal(r.ring, 2);
  });

  it('registers declared actions; a non-reversible one forces STRONG', () => {
    const { s, l } = setup();
    const r1 = join(s, l, { agentDid: A, sigmaRaw: 0.8, actions: [{ actionId: 'edit', reversibility: 'FULL' }] }, T0);
    assert.equal(r1.consistencyChanged, false);
    assert.equal(s.registry.entries['edit']?.level, 'FULL');
    assert.deepEqual(s.participants[A]?.actions, ['edit']);
    assert.equal(s.participants[A]?.riskWeight, 0.2);
    const r2 = join(s, l, { agentDid: B, sigmaRaw: 0.8, actions: [{ actionId: 'deploy', reversibility: 'NONE' }] }, T0);
    assert.equal(r2.consistency, 'STRONG');
    assert.equal(r2.consistencyChanged, true);
    assert.equal(s.config.consistency, 'STRONG');
    const r3 = join(s, l, { agentDid: C, sigmaRaw: 0.8 }, T0);
    assert.equal(r3.consistencyChanged, false);
  });

  it("uses the manifest's actions when none are passed, and passed actions otherwise", () => {
    const { s, l } = setup();
    const manifest = { agent_id: A, trust_level: 'trusted', trust_score: 8, actions: ['wire-money'], scopes: [] };
    const r = join(s, l, { agentDid: A, manifest }, T0);
    assert.equal(s.registry.entries['wire-money']?.level, 'NONE');
    assert.equal(r.consistency, 'STRONG');
    const m2 = { ...manifest, agent_id: B, actions: ['other'] };
    join(s, l, { agentDid: B, manifest: m2, actions: [{ actionId: 'mine', reversibility: 'PARTIAL' }] }, T0);
    assert.equal(s.registry.entries['other'], undefined);
    assert.equal(s.registry.entries['mine']?.level, 'PARTIAL');
  });

  it('rejects a manifest for another agent', () => {
    const { s, l } = setup();
    const manifest = { agent_id: B, trust_level: 'trusted', trust_score: 8, actions: [], scopes: [] };
    throwsCode(
      () => join(s, l, { agentDid: A, manifest }, T0),
      'INVALID_INPUT',
      /manifest\.agent_id did:mesh:b is not did:mesh:a/,
    );
  });

  it('a suspicious history forces ring 3 even with a high σ', () => {
    const { s, l } = setup();
    const r = join(s, l, { agentDid: A, sigmaRaw: 0.9, history: records(5, () => 'dup-hash-0123456789') }, T0);
    assert.equal(r.historyStatus, 'SUSPICIOUS');
    assert.equal(r.ring, 3);
    const ok = join(s, l, { agentDid: B, sigmaRaw: 0.9, history: records(5) }, T0);
    assert.equal(ok.historyStatus, 'VERIFIED');
    assert.equal(ok.ring, 2);
  });

  it('rejects an agent already in the session, and one who left', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    throwsCode(
      () => join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0),
      'DUPLICATE_AGENT',
      /agent did:mesh:a is already in session s1/,
    );
    leave(s, A, 2_000);
    throwsCode(() => join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0), 'DUPLICATE_AGENT', /left; it may not rejoin/);
  });

  it('rejects a join to a full session; leaving frees a seat', () => {
    const { s, l } = setup({ maxParticipants: 2 });
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.8 }, T0);
    throwsCode(() => join(s, l, { agentDid: C, sigmaRaw: 0.8 }, T0), 'SESSION_FULL', /session s1 is full \(2 of 2/);
    leave(s, A, T0);
    assert.equal(join(s, l, { agentDid: C, sigmaRaw: 0.8 }, T0).ring, 2);
  });

  it('a rejected join leaves the session unchanged', () => {
    const { s, l } = setup({ minSigmaEff: 0.9 });
    const before = JSON.stringify({ ...s, historyCache: null });
    throwsCode(
      () => join(s, l, { agentDid: A, sigmaRaw: 0.7, actions: [{ actionId: 'deploy', reversibility: 'NONE' }] }, T0),
      'SIGMA_TOO_LOW',
    );
    assert.equal(JSON.stringify({ ...s, historyCache: null }), before);
    assert.equal(s.config.consistency, 'EVENTUAL');
  });

  it('validates join input naming the field', () => {
    const { s, l } = setup();
    throwsCode(() => join(s, l, { agentDid: 'agent-1' }, T0), 'INVALID_INPUT', /agentDid/);
    throwsCode(() => join(s, l, { agentDid: A, sigmaRaw: 2 }, T0), 'INVALID_INPUT', /sigmaRaw/);
    throwsCode(
      () => join(s, l, { agentDid: A, actions: [{ actionId: 'x', reversibility: 'FULL', riskWeight: 0.5 }] }, T0),
      'INVALID_INPUT',
      /actions\.0\.riskWeight/,
    );
  });
});

describe('session: leave', () => {
  it('marks the participant inactive and keeps it in the record', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    const p = leave(s, A, 2_000);
    assert.equal(p.active, false);
    assert.equal(p.leftAt, 2_000);
    assert.ok(s.participants[A]);
    assert.equal(s.activeCount, 0);
  });

  it('rejects an unknown or already departed agent', () => {
    const { s, l } = setup();
    throwsCode(() => leave(s, A, T0), 'AGENT_NOT_FOUND', /did:mesh:a is not an active participant of session s1/);
    join(s, l, { agentDid: A, sigmaRaw: 0.8 }, T0);
    leave(s, A, T0);
    throwsCode(() => leave(s, A, T0), 'AGENT_NOT_FOUND');
  });
});

describe('session: ring re-evaluation', () => {
  it('promotes a vouched-for agent (never into ring 1) and demotes when the bond goes', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.5 }, T0);
    assert.equal(s.participants[B]?.ring, 3);
    const { ringChanges } = vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'b1');
    assert.deepEqual(
      ringChanges.map((c) => [c.did, c.from, c.to, c.kind]),
      [[B, 3, 2, 'promotion']],
    );
    release(l, 'b1', 2_000, 'done');
    const changes = refreshRings(s, l, 2_000);
    assert.deepEqual(
      changes.map((c) => [c.did, c.from, c.to, c.kind]),
      [[B, 2, 3, 'demotion']],
    );
    assert.equal(s.participants[B]?.sigmaEff, 0.5);
  });

  it('σ_eff above 0.95 without consensus stays ring 2', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 1 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.94 }, T0);
    vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'b1');
    assert.ok((s.participants[B]?.sigmaEff as number) > 0.95);
    assert.equal(s.participants[B]?.ring, 2);
  });

  it('an agent held in ring 1 is demoted at once when σ_eff falls', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.99 }, T0);
    s.participants[A]!.ring = 1; // granted by consensus elsewhere
    assert.deepEqual(refreshRings(s, l, T0), []);
    s.participants[A]!.sigmaRaw = 0.9;
    assert.deepEqual(
      refreshRings(s, l, T0).map((c) => [c.from, c.to]),
      [[1, 2]],
    );
  });

  it('an untrustworthy history keeps the agent in ring 3', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.9, history: records(5, () => 'same-hash-0123456789') }, T0);
    vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'b1');
    assert.equal(s.participants[B]?.ring, 3);
  });

  it('vouching needs active participants', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    throwsCode(() => vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'b1'), 'AGENT_NOT_FOUND', /did:mesh:b/);
  });

  it('a slash writes scores back and demotes everyone it touched', () => {
    const { s, l } = setup();
    join(s, l, { agentDid: A, sigmaRaw: 0.9 }, T0);
    join(s, l, { agentDid: B, sigmaRaw: 0.7 }, T0);
    join(s, l, { agentDid: C, sigmaRaw: 0.9 }, T0);
    vouchInSession(s, l, { voucher: A, vouchee: B }, T0, 'b1');
    const { outcome, ringChanges } = slashInSession(
      s,
      l,
      { slashId: 'sl', vouchee: B, reason: 'drift', omega: 0.95 },
      2_000,
    );
    assert.equal(s.participants[B]?.sigmaRaw, 0);
    assert.ok((s.participants[A]?.sigmaRaw as number) < 0.06);
    assert.equal(s.participants[C]?.sigmaRaw, 0.9);
    assert.deepEqual(outcome.touched, [B, A]);
    assert.deepEqual(
      ringChanges.map((c) => [c.did, c.to]),
      [
        [B, 3],
        [A, 3],
      ],
    );
  });

  it('session state survives a JSON round trip', () => {
    const { s, l } = setup();
    join(
      s,
      l,
      { agentDid: A, sigmaRaw: 0.9, actions: [{ actionId: 'deploy', reversibility: 'NONE' }], history: records(5) },
      T0,
    );
    const copy = JSON.parse(JSON.stringify(s));
    assert.deepEqual(copy, s);
    throwsCode(() => join(copy, l, { agentDid: A, sigmaRaw: 0.9 }, T0), 'DUPLICATE_AGENT');
  });
});
