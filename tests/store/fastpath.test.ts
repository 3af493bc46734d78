/**
 * The audit store's fast accept path for a delta (isPlainDelta) against
 * DeltaSchema: whenever it says "valid", zod accepts the same input; and the
 * deltas sessions produce take the fast path.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DeltaSchema } from '../../src/audit';
import { isPlainDelta } from '../../src/store/common';
import { chain } from './deltas';

const HEX = 'a'.repeat(64);
const value = fc.oneof(
  fc.constantFrom<unknown>(undefined, null, '', 'x', 'did:mesh:bob', 'did:Bad', HEX, HEX.toUpperCase(), 'x'.repeat(257), 0, -1, 1, 1.5, Number.MAX_SAFE_INTEGER + 1, NaN, [], {}, ['x'], true),
  fc.string({ maxLength: 10 }),
  fc.integer(),
);
const changeKey = fc.constantFrom('path', 'operation', 'contentHash', 'previousHash', 'agentDid', 'extra');
const deltaKey = fc.constantFrom('deltaId', 'turn', 'sessionId', 'agentDid', 'at', 'changes', 'parentHash', 'hash', 'extra');

describe('audit store fast path: isPlainDelta', () => {
  it('accepts the deltas of a session', () => {
    for (const d of chain('s', 12)) assert.ok(isPlainDelta(d), `turn ${d.turn}`);
  });

  it('never says valid when DeltaSchema refuses (random edits of a valid delta)', () => {
    const base = chain('s', 3)[2]!;
    fc.assert(fc.property(
      fc.array(fc.tuple(deltaKey, value, fc.boolean()), { maxLength: 4 }),
      fc.array(fc.tuple(changeKey, value, fc.boolean()), { maxLength: 4 }),
      (deltaEdits, changeEdits) => {
        const change: Record<string, unknown> = { ...base.changes[0]! };
        for (const [k, v, del] of changeEdits) if (del) delete change[k]; else change[k] = v;
        const delta: Record<string, unknown> = { ...base, changes: [change] };
        for (const [k, v, del] of deltaEdits) if (del) delete delta[k]; else delta[k] = v;
        if (isPlainDelta(delta)) assert.ok(DeltaSchema.safeParse(delta).success, JSON.stringify(delta));
      },
    ), { numRuns: 3000 });
  });
});
