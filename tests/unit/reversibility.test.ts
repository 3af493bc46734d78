import assert from 'node:assert/strict';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import {
  OMEGA,
  createReversibilityRegistry,
  hasNonReversibleActions,
  lookup,
  parseAction,
  register,
  riskWeight,
  setUndoApiHealth,
} from '../../src/core/reversibility';

function throwsCode(fn: () => unknown, code: ErrorCode, pattern?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isHypervisorError(e, code), `expected ${code}, got ${String(e)}`);
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

describe('reversibility: levels and ω', () => {
  it('has the SPEC ranges and defaults', () => {
    assert.deepEqual(OMEGA.FULL, { min: 0.1, max: 0.3, default: 0.2 });
    assert.deepEqual(OMEGA.PARTIAL, { min: 0.5, max: 0.8, default: 0.65 });
    assert.deepEqual(OMEGA.NONE, { min: 0.9, max: 1.0, default: 0.95 });
  });

  it('registers with the level default ω', () => {
    const r = createReversibilityRegistry();
    assert.equal(register(r, { actionId: 'a', reversibility: 'FULL' }).riskWeight, 0.2);
    assert.equal(register(r, { actionId: 'b', reversibility: 'PARTIAL' }).riskWeight, 0.65);
    assert.equal(register(r, { actionId: 'c', reversibility: 'NONE' }).riskWeight, 0.95);
  });

  it('accepts ω at both ends of a range and rejects just outside', () => {
    const r = createReversibilityRegistry();
    assert.equal(register(r, { actionId: 'a', reversibility: 'FULL', riskWeight: 0.1 }).riskWeight, 0.1);
    assert.equal(register(r, { actionId: 'b', reversibility: 'FULL', riskWeight: 0.3 }).riskWeight, 0.3);
    assert.equal(register(r, { actionId: 'c', reversibility: 'NONE', riskWeight: 1 }).riskWeight, 1);
    throwsCode(
      () => register(r, { actionId: 'd', reversibility: 'FULL', riskWeight: 0.31 }),
      'INVALID_INPUT',
      /riskWeight.*FULL/,
    );
    throwsCode(
      () => register(r, { actionId: 'e', reversibility: 'PARTIAL', riskWeight: 0.49 }),
      'INVALID_INPUT',
      /riskWeight/,
    );
    throwsCode(
      () => register(r, { actionId: 'f', reversibility: 'NONE', riskWeight: 0.89 }),
      'INVALID_INPUT',
      /riskWeight/,
    );
    assert.equal(lookup(r, 'd'), null);
  });

  it('an action without a declared level: read-only → FULL, write → NONE', () => {
    assert.equal(parseAction({ actionId: 'r', readOnly: true }).reversibility, 'FULL');
    assert.equal(parseAction({ actionId: 'w' }).reversibility, 'NONE');
  });

  it('rejects malformed descriptors naming the field', () => {
    throwsCode(() => parseAction({ actionId: 'x', reversibility: 'SOME' }), 'INVALID_INPUT', /reversibility/);
    throwsCode(() => parseAction({}), 'INVALID_INPUT', /actionId/);
  });
});

describe('reversibility: registry', () => {
  it('stores every field and looks it up', () => {
    const r = createReversibilityRegistry();
    register(r, {
      actionId: 'refund',
      reversibility: 'PARTIAL',
      executeApi: 'handler:pay',
      undoApi: 'https://tools.example/refund',
      undoWindowSeconds: 600,
      compensationMethod: 'credit',
      riskWeight: 0.7,
    });
    assert.deepEqual(lookup(r, 'refund'), {
      actionId: 'refund',
      executeApi: 'handler:pay',
      undoApi: 'https://tools.example/refund',
      level: 'PARTIAL',
      undoWindowSeconds: 600,
      compensationMethod: 'credit',
      riskWeight: 0.7,
      undoApiHealthy: true,
      readOnly: false,
      admin: false,
    });
    assert.equal(lookup(r, 'nope'), null);
  });

  it('unknown action weighs as NONE (0.95)', () => {
    const r = createReversibilityRegistry();
    assert.equal(riskWeight(r, 'unknown'), 0.95);
    register(r, { actionId: 'a', reversibility: 'FULL' });
    assert.equal(riskWeight(r, 'a'), 0.2);
  });

  it('hasNonReversibleActions reflects NONE entries', () => {
    const r = createReversibilityRegistry();
    assert.equal(hasNonReversibleActions(r), false);
    register(r, { actionId: 'a', reversibility: 'PARTIAL' });
    assert.equal(hasNonReversibleActions(r), false);
    register(r, { actionId: 'b', reversibility: 'NONE' });
    assert.equal(hasNonReversibleActions(r), true);
  });

  it('a re-declaration cannot relax an action; a stricter one replaces it', () => {
    const r = createReversibilityRegistry();
    register(r, { actionId: 'a', reversibility: 'NONE' });
    register(r, { actionId: 'a', reversibility: 'FULL' });
    assert.equal(lookup(r, 'a')?.level, 'NONE');
    assert.equal(r.nonReversibleCount, 1);
    register(r, { actionId: 'b', reversibility: 'FULL' });
    register(r, { actionId: 'b', reversibility: 'NONE' });
    assert.equal(lookup(r, 'b')?.level, 'NONE');
    assert.equal(r.nonReversibleCount, 2);
    // Same level: the latest declaration wins, and the count does not double.
    register(r, { actionId: 'b', reversibility: 'NONE', riskWeight: 1 });
    assert.equal(riskWeight(r, 'b'), 1);
    assert.equal(r.nonReversibleCount, 2);
  });

  it('a re-declaration cannot lower the ring an action requires', () => {
    const r = createReversibilityRegistry();
    register(r, { actionId: 'cfg', admin: true, reversibility: 'FULL' });
    register(r, { actionId: 'cfg', reversibility: 'NONE' });
    assert.equal(lookup(r, 'cfg')?.admin, true);
    register(r, { actionId: 'w', reversibility: 'FULL' });
    register(r, { actionId: 'w', readOnly: true, reversibility: 'FULL' });
    assert.equal(lookup(r, 'w')?.readOnly, false);
    register(r, { actionId: 'r', readOnly: true });
    register(r, { actionId: 'r', reversibility: 'PARTIAL' });
    assert.equal(lookup(r, 'r')?.readOnly, false, 'a write declaration tightens a read-only one');
  });

  it('tracks undo-API health', () => {
    const r = createReversibilityRegistry();
    register(r, { actionId: 'a', reversibility: 'FULL', undoApi: 'handler:undo' });
    assert.equal(setUndoApiHealth(r, 'a', false), true);
    assert.equal(lookup(r, 'a')?.undoApiHealthy, false);
    assert.equal(setUndoApiHealth(r, 'zzz', false), false);
  });

  it('registry state survives JSON round trip', () => {
    const r = createReversibilityRegistry();
    register(r, { actionId: 'a', reversibility: 'NONE' });
    const copy = JSON.parse(JSON.stringify(r));
    assert.deepEqual(copy, r);
    assert.equal(hasNonReversibleActions(copy), true);
  });
});
