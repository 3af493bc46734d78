/**
 * SPEC §11.6: ids that are names of Object.prototype members are ordinary ids.
 * They never resolve to inherited members, never write to Object.prototype,
 * and records holding them stay plain JSON (they cross continue-as-new).
 */
import assert from 'node:assert/strict';
import { isHypervisorError } from '../../src/core/errors';
import { ownDelete, ownGet, ownHas, ownSet } from '../../src/core/common';
import {
  createReversibilityRegistry,
  lookup,
  register,
  requiredRingFor,
  riskWeight,
  setUndoApiHealth,
} from '../../src/core/reversibility';
import {
  bondTotalFor,
  bondsFor,
  createLiabilityState,
  liabilityMatrix,
  nextBondExpiry,
  pruneExpired,
  release,
  releaseSession,
  sessionBonds,
  vouch,
} from '../../src/core/liability';
import { beginTerminate, createSessionState, sigmaEffWith } from '../../src/core/session';
import { gateView } from '../../src/core/sessionRings';
import { slashInSession, vouchInSession } from '../../src/core/sessionLiability';
import { join } from '../../src/core/join';
import { classify, clearOverrides, createClassifierState, setOverride } from '../../src/core/rings';
import { createHistoryCache, assessHistory } from '../../src/core/history';
import {
  createVfsState,
  deleteFile,
  deleteSnapshot,
  listFiles,
  readFile,
  restoreSnapshot,
  setPermissions,
  takeSnapshot,
  writeFile,
} from '../../src/core/vfs';
import { registerStepHandler, stepHandler, stepHandlerNames } from '../../activities/handlers';

const NAMES = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'] as const;
const A = 'did:mesh:a';
const B = 'did:mesh:b';
const PROTO_KEYS = Object.getOwnPropertyNames(Object.prototype).sort();

function assertPrototypeUntouched(): void {
  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), PROTO_KEYS);
  const probe = {} as Record<string, unknown>;
  for (const k of ['state', 'entries', 'content', 'ring', 'level', 'riskWeight', 'amount', 'execute', 'bondId']) {
    assert.equal(probe[k], undefined, `Object.prototype gained ${k}`);
  }
  assert.equal(Object.getPrototypeOf(probe), Object.prototype);
}

/** Every plain object in `x` still has Object.prototype as its prototype, and `x` survives JSON. */
function assertPlainJson(x: unknown): void {
  const walk = (v: unknown) => {
    if (v === null || typeof v !== 'object') return;
    if (!Array.isArray(v)) assert.equal(Object.getPrototypeOf(v), Object.prototype, 'a record lost its prototype');
    for (const k of Object.keys(v)) walk((v as Record<string, unknown>)[k]);
  };
  walk(x);
  assert.deepEqual(JSON.parse(JSON.stringify(x)), x);
}

function throwsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => isHypervisorError(e) && e.code === code);
}

describe('prototype safety (SPEC §11.6)', () => {
  afterEach(assertPrototypeUntouched);

  it('own-key helpers: get, has, set, delete never touch inherited members', () => {
    const rec: Record<string, number> = {};
    for (const k of NAMES) {
      assert.equal(ownGet(rec, k), undefined);
      assert.equal(ownHas(rec, k), false);
      assert.equal(ownDelete(rec, k), false);
    }
    NAMES.forEach((k, i) => ownSet(rec, k, i));
    NAMES.forEach((k, i) => assert.equal(ownGet(rec, k), i));
    assert.deepEqual(Object.keys(rec).sort(), [...NAMES].sort());
    assert.equal(Object.getPrototypeOf(rec), Object.prototype);
    const copy = JSON.parse(JSON.stringify(rec)) as Record<string, number>;
    NAMES.forEach((k, i) => assert.equal(ownGet(copy, k), i, `${k} survives JSON`));
    for (const k of NAMES) assert.equal(ownDelete(rec, k), true);
    assert.deepEqual(Object.keys(rec), []);
    assert.equal(typeof rec.toString, 'function', 'the inherited member is back');
  });

  it('reversibility registry: undeclared ids are unknown (ring 1, ω 0.95), declared ones are exact', () => {
    const r = createReversibilityRegistry();
    for (const id of NAMES) {
      assert.equal(lookup(r, id), null);
      assert.equal(requiredRingFor(r, id), 1, `undeclared ${id} requires ring 1`);
      assert.equal(riskWeight(r, id), 0.95);
      assert.equal(setUndoApiHealth(r, id, false), false);
    }
    register(r, { actionId: 'toString', readOnly: true });
    register(r, { actionId: '__proto__', reversibility: 'FULL' });
    register(r, { actionId: 'constructor', reversibility: 'PARTIAL', riskWeight: 0.6 });
    register(r, { actionId: 'valueOf', admin: true, reversibility: 'FULL' });
    assert.equal(requiredRingFor(r, 'toString'), 3, 'read-only toString requires ring 3');
    assert.equal(requiredRingFor(r, '__proto__'), 2);
    assert.equal(requiredRingFor(r, 'constructor'), 2);
    assert.equal(requiredRingFor(r, 'valueOf'), 0);
    assert.equal(requiredRingFor(r, 'hasOwnProperty'), 1);
    assert.equal(riskWeight(r, 'constructor'), 0.6);
    assert.equal(riskWeight(r, '__proto__'), 0.2);
    assert.equal(lookup(r, '__proto__')?.actionId, '__proto__');
    assert.equal(setUndoApiHealth(r, '__proto__', false), true);
    assert.equal(r.nonReversibleCount, 0);
    assertPlainJson(r);
    const copy = JSON.parse(JSON.stringify(r));
    assert.equal(lookup(copy, '__proto__')?.undoApiHealthy, false);
    assert.equal(requiredRingFor(copy, 'toString'), 3);
  });

  it('sessions: ids and declared actions named like prototype members; σ_eff stays a finite number', () => {
    for (const sessionId of NAMES) {
      const s = createSessionState({ sessionId }, 0);
      const l = createLiabilityState();
      join(
        s,
        l,
        {
          agentDid: A,
          sigmaRaw: 0.9,
          actions: NAMES.map((actionId) => ({ actionId, reversibility: 'FULL' as const })),
        },
        0,
      );
      // SPEC §11.8: a later join may repeat a declaration (by any name), never change it.
      throwsCode(
        () => join(s, l, { agentDid: B, sigmaRaw: 0.5, actions: [{ actionId: 'toString', readOnly: true }] }, 0),
        'INVALID_INPUT',
      );
      join(
        s,
        l,
        { agentDid: B, sigmaRaw: 0.5, actions: [{ actionId: 'toString', reversibility: 'FULL' as const }] },
        0,
      );
      for (const id of NAMES) assert.equal(requiredRingFor(s.registry, id), 2);
      vouchInSession(s, l, { voucher: A, vouchee: B, expiresAt: 100 }, 0, sessionId);
      const view = gateView(s, l, B, 0);
      assert.ok(view);
      for (const id of NAMES) {
        const sigma = sigmaEffWith(view, riskWeight(s.registry, id));
        assert.ok(Number.isFinite(sigma) && sigma > 0.5 && sigma <= 1, `σ_eff for ${id}: ${sigma}`);
      }
      assert.ok(Number.isFinite(s.participants[A]!.sigmaEff));
      assert.equal(nextBondExpiry(l, sessionId, 0), 100);
      assert.ok(bondTotalFor(l, sessionId, B, 0) > 0);
      assert.equal(sessionBonds(l, sessionId, 0).length, 1);
      slashInSession(s, l, { slashId: sessionId, vouchee: B, reason: 'x', omega: 0.5 }, 1);
      assert.equal(s.participants[B]?.slashed, true);
      assert.deepEqual(beginTerminate(s, l, 2), []);
      assertPlainJson(s);
      assertPlainJson(l);
    }
  });

  it('liability: bond ids and session ids named like prototype members', () => {
    const l = createLiabilityState();
    for (const id of NAMES) {
      throwsCode(() => release(l, id, 0, 'r'), 'BOND_NOT_FOUND');
      assert.deepEqual(releaseSession(l, id, 0), []);
      assert.deepEqual(pruneExpired(l, id, 0), []);
      assert.equal(nextBondExpiry(l, id, 0), null);
      assert.deepEqual(sessionBonds(l, id, 0), []);
      assert.deepEqual(bondsFor(l, id, A, 0), []);
      assert.equal(liabilityMatrix(l, id, 0).bonds.length, 0);
    }
    for (const id of NAMES) vouch(l, { sessionId: id, voucher: A, vouchee: B, voucherSigma: 0.9, bondPct: 0.1 }, 0, id);
    for (const id of NAMES)
      throwsCode(() => vouch(l, { sessionId: id, voucher: A, vouchee: B, voucherSigma: 0.9 }, 0, id), 'DUPLICATE_BOND');
    for (const id of NAMES) {
      assert.equal(bondsFor(l, id, B, 0)[0]?.bondId, id);
      assert.deepEqual(liabilityMatrix(l, id, 0).vouchesFor, { [A]: [B] });
    }
    assertPlainJson(l);
    const copy = JSON.parse(JSON.stringify(l));
    for (const id of NAMES) assert.equal(release(copy, id, 5, 'done').releasedAt, 5);
    for (const id of NAMES) assert.deepEqual(releaseSession(l, id, 5), [id]);
    for (const id of NAMES) assert.equal(bondTotalFor(l, id, B, 5), 0);
    assertPlainJson(l);
  });

  it('classifier: cache and overrides keyed by such ids', () => {
    const c = createClassifierState();
    for (const id of NAMES) {
      assert.equal(classify(c, { actionId: id }, id).ring, 1, `undeclared-reversibility write ${id} is ring 1`);
      assert.equal(classify(c, { actionId: id }, id).overridden, false);
    }
    setOverride(c, { sessionId: '__proto__', actionId: 'constructor', ring: 3 });
    assert.equal(classify(c, { actionId: 'constructor' }, '__proto__').ring, 3);
    assert.equal(classify(c, { actionId: 'constructor' }, 'toString').overridden, false);
    clearOverrides(c, '__proto__');
    clearOverrides(c, 'valueOf');
    assert.equal(classify(c, { actionId: 'constructor' }, '__proto__').overridden, false);
    assertPlainJson(c);
  });

  it('history: summary hashes named like prototype members are not duplicates', () => {
    const records = NAMES.map((summaryHash, i) => ({ sessionId: `s${i}`, summaryHash, timestamp: i }));
    const { reasons } = assessHistory(records);
    assert.ok(!reasons.some((r) => r.includes('duplicate')), reasons.join('; '));
    assertPlainJson(createHistoryCache());
  });

  it('VFS: paths and snapshot ids named like prototype members', () => {
    const v = createVfsState('s1');
    for (const name of NAMES) {
      throwsCode(() => readFile(v, { path: name, agentDid: A }), 'FILE_NOT_FOUND');
      throwsCode(() => deleteFile(v, { path: name, agentDid: A, at: 0 }), 'FILE_NOT_FOUND');
      throwsCode(() => deleteSnapshot(v, name), 'SNAPSHOT_NOT_FOUND');
    }
    for (const name of NAMES) writeFile(v, { path: name, content: `c-${name}`, agentDid: A, at: 1 });
    for (const name of NAMES) assert.equal(readFile(v, { path: name, agentDid: A }), `c-${name}`);
    setPermissions(v, { path: '__proto__', allowedDids: [B], agentDid: A, at: 2 });
    throwsCode(() => readFile(v, { path: '__proto__', agentDid: A }), 'PERMISSION_DENIED');
    for (const name of NAMES) takeSnapshot(v, { snapshotId: name, agentDid: A, at: 3 });
    for (const name of NAMES) if (name !== '__proto__') deleteFile(v, { path: name, agentDid: A, at: 4 });
    setPermissions(v, { path: '__proto__', allowedDids: null, agentDid: B, at: 5 });
    assert.deepEqual(listFiles(v), ['/sessions/s1/__proto__']);
    restoreSnapshot(v, { snapshotId: 'constructor', agentDid: B, at: 6 });
    assert.equal(listFiles(v).length, NAMES.length);
    assert.equal(readFile(v, { path: 'valueOf', agentDid: A }), 'c-valueOf');
    for (const name of NAMES) deleteSnapshot(v, name);
    assertPlainJson(v);
  });

  it('step handlers: names like prototype members find nothing but registered handlers', () => {
    for (const name of NAMES) assert.equal(stepHandler(name), undefined);
    const h = {
      async execute() {
        return 'ok';
      },
    };
    registerStepHandler('__proto__', h);
    registerStepHandler('constructor', h);
    assert.equal(stepHandler('__proto__'), h);
    assert.equal(stepHandler('constructor'), h);
    assert.equal(stepHandler('toString'), undefined);
    assert.ok(stepHandlerNames().includes('__proto__'));
  });
});
