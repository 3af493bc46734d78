import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  appendDelta,
  assertChain,
  auditMerkleRoot,
  captureDelta,
  createAuditState,
  deltaHash,
  exportTrail,
  verifyChain,
  verifyTrail,
  type Delta,
  type DeltaInput,
} from '../../src/core/audit';
import { markStored, type StoredHashes } from '../../src/core/auditStored';
import { checkBatch, newRows } from '../../src/store/common';
import { canonicalJson, sha256Hex } from '../../src/core/hash';
import { merkleRootFromScratch } from '../../src/core/merkle';
import { isHypervisorError } from '../../src/core/errors';

const ALICE = 'did:mesh:alice';
const BOB = 'did:mesh:bob';

function input(i: number, extra: Partial<DeltaInput> = {}): DeltaInput {
  return {
    deltaId: `delta-${i}`,
    sessionId: 's1',
    agentDid: i % 2 ? BOB : ALICE,
    at: 1_700_000_000_000 + i,
    changes: [{ path: `/sessions/s1/f${i}.txt`, operation: 'add', contentHash: sha256Hex(`content ${i}`) }],
    ...extra,
  };
}

function trail(n: number) {
  const state = createAuditState('s1');
  for (let i = 0; i < n; i++) captureDelta(state, input(i));
  return state;
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

describe('audit: capturing deltas', () => {
  it('numbers turns from 1 per session and links each delta to its parent', () => {
    const state = trail(3);
    const [d1, d2, d3] = state.deltas as [Delta, Delta, Delta];
    assert.deepEqual([d1.turn, d2.turn, d3.turn], [1, 2, 3]);
    assert.equal(d1.parentHash, null);
    assert.equal(d2.parentHash, d1.hash);
    assert.equal(d3.parentHash, d2.hash);
    assert.equal(state.turn, 3);
    assert.equal(createAuditState('s2').turn, 0);
  });

  it('records every field of SPEC §7, with the change agent defaulting to the delta agent', () => {
    const state = createAuditState('s1');
    const d = captureDelta(state, {
      deltaId: 'x',
      sessionId: 's1',
      agentDid: ALICE,
      at: 5,
      changes: [
        { path: '/sessions/s1/a', operation: 'modify', contentHash: 'h2', previousHash: 'h1' },
        { path: '/sessions/s1/b', operation: 'delete', previousHash: 'h3', agentDid: BOB },
      ],
    });
    assert.deepEqual(d, {
      deltaId: 'x',
      turn: 1,
      sessionId: 's1',
      agentDid: ALICE,
      at: 5,
      changes: [
        { path: '/sessions/s1/a', operation: 'modify', contentHash: 'h2', previousHash: 'h1', agentDid: ALICE },
        { path: '/sessions/s1/b', operation: 'delete', previousHash: 'h3', agentDid: BOB },
      ],
      parentHash: null,
      hash: d.hash,
    });
  });

  it('hashes the canonical JSON (sorted keys) of every field but the hash', () => {
    const state = trail(4);
    for (const d of state.deltas) {
      const { hash, ...fields } = d;
      assert.equal(hash, sha256Hex(canonicalJson(fields)));
      assert.equal(deltaHash(d), hash);
    }
  });

  it('the hand-written delta serialisation equals canonicalJson on arbitrary deltas', () => {
    const text = fc.string({ unit: 'binary', minLength: 1, maxLength: 20 });
    const change = fc.record(
      {
        path: text,
        operation: fc.constantFrom('add', 'modify', 'delete', 'permission'),
        contentHash: text,
        previousHash: text,
        agentDid: fc.constant(BOB),
      },
      { requiredKeys: ['path', 'operation', 'agentDid'] },
    );
    fc.assert(
      fc.property(
        text,
        fc.nat(),
        fc.array(change, { maxLength: 4 }),
        fc.option(text, { nil: null }),
        (id, at, changes, parentHash) => {
          const d = {
            deltaId: id,
            turn: 1,
            sessionId: id,
            agentDid: ALICE,
            at,
            changes,
            parentHash,
            hash: '',
          } as Delta;
          const { hash: _hash, ...fields } = d;
          return deltaHash(d) === sha256Hex(canonicalJson(fields));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('does not let the caller alter a recorded change afterwards', () => {
    const state = createAuditState('s1');
    const i = input(0);
    appendDelta(state, i);
    (i.changes[0] as { path: string }).path = '/sessions/s1/other';
    assert.equal(verifyChain(state.deltas).ok, true);
  });

  it('keeps the Merkle root of the delta hashes incrementally', () => {
    const state = createAuditState('s1');
    assert.equal(auditMerkleRoot(state), null);
    for (let i = 0; i < 20; i++) {
      captureDelta(state, input(i));
      assert.equal(auditMerkleRoot(state), merkleRootFromScratch(state.deltas.map((d) => d.hash)));
    }
  });

  it('gives the same hashes and root for the same deltas (deterministic)', () => {
    const a = trail(7);
    const b = trail(7);
    assert.deepEqual(a, b);
    assert.equal(auditMerkleRoot(a), auditMerkleRoot(b));
  });

  it('state survives a JSON round-trip and capture continues identically', () => {
    const a = trail(9);
    const b = clone(a);
    captureDelta(a, input(9));
    captureDelta(b, input(9));
    assert.deepEqual(b, a);
    assert.equal(auditMerkleRoot(b), auditMerkleRoot(a));
  });

  it('rejects invalid input naming the field', () => {
    const state = createAuditState('s1');
    const bad: [unknown, RegExp][] = [
      [{ ...input(0), agentDid: 'alice' }, /agentDid/],
      [{ ...input(0), at: -1 }, /at/],
      [{ ...input(0), deltaId: '' }, /deltaId/],
      [{ ...input(0), changes: [{ path: '/x', operation: 'rename' }] }, /changes\.0\.operation/],
      [{ ...input(0), changes: [{ path: '', operation: 'add' }] }, /changes\.0\.path/],
      [{ ...input(0), extra: 1 }, /extra/],
    ];
    for (const [value, field] of bad) {
      assert.throws(
        () => captureDelta(state, value),
        (e) => isHypervisorError(e, 'INVALID_INPUT') && field.test(e.message),
        String(field),
      );
    }
    assert.equal(state.deltas.length, 0);
  });

  it('rejects a delta of another session', () => {
    const state = createAuditState('s1');
    assert.throws(
      () => captureDelta(state, input(0, { sessionId: 's2' })),
      (e) => isHypervisorError(e, 'INVALID_INPUT') && /s2/.test(e.message),
    );
  });
});

describe('audit: chain verification', () => {
  it('accepts an intact chain, and an empty one', () => {
    assert.deepEqual(verifyChain(trail(50).deltas), { ok: true, count: 50 });
    assert.deepEqual(verifyChain([]), { ok: true, count: 0 });
    assert.doesNotThrow(() => assertChain(trail(3).deltas));
  });

  it('requires the first delta to have no parent', () => {
    const deltas = trail(3).deltas.slice(1); // its first now has a parent
    const r = verifyChain(deltas);
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.brokenAt === 0 && /no parent/.test(r.reason));
  });

  it('detects a removed, reordered or foreign delta', () => {
    const deltas = trail(5).deltas;
    const removed = verifyChain([...deltas.slice(0, 2), ...deltas.slice(3)]);
    assert.ok(!removed.ok && removed.brokenAt === 2 && /parent/.test(removed.reason));
    const swapped = verifyChain([deltas[0]!, deltas[2]!, deltas[1]!, deltas[3]!]);
    assert.ok(!swapped.ok && swapped.brokenAt === 1);
    const other = createAuditState('s2');
    captureDelta(other, input(0, { sessionId: 's2' }));
    const mixed = verifyChain([deltas[0]!, { ...other.deltas[0]!, parentHash: deltas[0]!.hash, turn: 2 }]);
    assert.ok(!mixed.ok && mixed.brokenAt === 1);
  });

  it('assertChain throws AUDIT_CHAIN_BROKEN naming the turn', () => {
    const deltas = clone(trail(4).deltas);
    deltas[2]!.at += 1;
    assert.throws(
      () => assertChain(deltas),
      (e) => isHypervisorError(e, 'AUDIT_CHAIN_BROKEN') && /turn 3 \(delta-2\)/.test(e.message),
    );
  });

  // Every field a delta holds, and a way to change it to a different value (including a different type).
  const TAMPERS: Record<string, (d: Delta, v: number) => void> = {
    deltaId: (d, v) => {
      d.deltaId += `x${v}`;
    },
    turn: (d, v) => {
      d.turn = v % 2 ? d.turn + 1 + v : (String(d.turn) as unknown as number);
    },
    sessionId: (d, v) => {
      d.sessionId = `s${v + 2}`;
    },
    agentDid: (d, v) => {
      d.agentDid = `did:mesh:mallory${v}`;
    },
    at: (d, v) => {
      d.at = v % 2 ? d.at + 1 + v : (String(d.at) as unknown as number);
    },
    parentHash: (d, v) => {
      d.parentHash = d.parentHash === null ? sha256Hex(String(v)) : v % 2 ? null : sha256Hex(d.parentHash);
    },
    hash: (d, v) => {
      d.hash = sha256Hex(d.hash + v);
    },
    changes: (d, v) => {
      if (v % 2) d.changes.push({ path: '/sessions/s1/new', operation: 'add', agentDid: ALICE });
      else d.changes.pop();
    },
    'change.path': (d, v) => {
      d.changes[0]!.path += `/${v}`;
    },
    'change.operation': (d) => {
      d.changes[0]!.operation = d.changes[0]!.operation === 'add' ? 'modify' : 'add';
    },
    'change.contentHash': (d, v) => {
      if (v % 2) delete d.changes[0]!.contentHash;
      else d.changes[0]!.contentHash = sha256Hex(`evil ${v}`);
    },
    'change.previousHash': (d, v) => {
      d.changes[0]!.previousHash = sha256Hex(`prev ${v}`);
    },
    'change.agentDid': (d) => {
      d.changes[0]!.agentDid = 'did:mesh:mallory';
    },
  };

  it('detects any single-field tamper of any delta (property)', () => {
    const base = trail(12);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 11 }),
        fc.constantFrom(...Object.keys(TAMPERS)),
        fc.nat(1000),
        (index, field, v) => {
          const deltas = clone(base.deltas);
          (TAMPERS[field] as (d: Delta, v: number) => void)(deltas[index]!, v);
          const r = verifyChain(deltas);
          // The recomputed hash of the tampered delta no longer matches: it breaks right there.
          return !r.ok && r.brokenAt === index;
        },
      ),
      { numRuns: 400 },
    );
  });

  it("detects a tamper of any field even when the tamperer recomputes that delta's hash (the next link breaks)", () => {
    const base = trail(6);
    for (let index = 0; index < 5; index++) {
      const deltas = clone(base.deltas);
      deltas[index]!.agentDid = 'did:mesh:mallory';
      deltas[index]!.hash = deltaHash(deltas[index]!);
      const r = verifyChain(deltas);
      assert.ok(!r.ok && r.brokenAt === index + 1 && /parent/.test(r.reason), `index ${index}`);
    }
  });
});

describe('audit: exported trail, verified offline', () => {
  it('exports session, count, root and deltas, and verifies as plain JSON', () => {
    const state = trail(10);
    const exported = JSON.parse(JSON.stringify(exportTrail(state))) as unknown;
    const r = verifyTrail(exported);
    assert.deepEqual(r, { ok: true, count: 10, merkleRoot: auditMerkleRoot(state) });
    assert.deepEqual(verifyTrail(clone(exportTrail(createAuditState('s9')))), { ok: true, count: 0, merkleRoot: null });
  });

  it('rejects a trail whose root, count or a delta was changed', () => {
    const good = clone(exportTrail(trail(5)));
    const wrongRoot = { ...good, merkleRoot: sha256Hex('x') };
    assert.ok(!verifyTrail(wrongRoot).ok && /Merkle root/.test((verifyTrail(wrongRoot) as { reason: string }).reason));
    const truncated = { ...good, deltas: good.deltas.slice(0, 4) };
    assert.ok(!verifyTrail(truncated).ok);
    const edited = clone(good);
    edited.deltas[3]!.changes[0]!.path = '/sessions/s1/evil';
    const r = verifyTrail(edited);
    assert.ok(!r.ok && r.brokenAt === 3 && r.deltaId === 'delta-3');
  });

  it('rejects a malformed trail, or an unhashed extra field, as INVALID_INPUT', () => {
    const good = clone(exportTrail(trail(2)));
    assert.throws(
      () => verifyTrail({ ...good, format: 'other' }),
      (e) => isHypervisorError(e, 'INVALID_INPUT') && /format/.test(e.message),
    );
    const extra = clone(good) as unknown as { deltas: Record<string, unknown>[] };
    extra.deltas[1]!.note = 'not covered by the hash';
    assert.throws(
      () => verifyTrail(extra),
      (e) => isHypervisorError(e, 'INVALID_INPUT') && /deltas\.1/.test(e.message),
    );
    assert.throws(
      () => verifyTrail('nope'),
      (e) => isHypervisorError(e, 'INVALID_INPUT'),
    );
  });

  it("rejects a trail holding another session's deltas", () => {
    const other = createAuditState('s2');
    captureDelta(other, input(0, { sessionId: 's2' }));
    const t = { ...clone(exportTrail(other)), sessionId: 's1' };
    const r = verifyTrail(t);
    assert.ok(!r.ok && /session/.test(r.reason));
  });
});

describe("markStored with the store's hashes (a replay that recomputes stored deltas differently)", () => {
  /** The store's rules for one session (src/store/common.ts), over an in-memory row list. */
  function memoryStore() {
    const rows: Delta[] = [];
    return {
      rows,
      append(batch: Delta[]): StoredHashes {
        const checked = checkBatch('s1', batch)!;
        const fresh = newRows('s1', checked, rows.length, new Map(rows.map((d) => [d.turn, d.hash])));
        for (const r of fresh) rows.push(batch.find((d) => d.turn === r.turn)!);
        return { fromTurn: batch[0]!.turn, hashes: batch.map((d) => d.hash) };
      },
    };
  }
  const skewed = (i: number, skew: number): DeltaInput => ({ ...input(i), at: input(i).at + skew });

  it('links the waiting deltas onto the stored head: the store takes the next batch, the chain and the root verify, and stored turns are unchanged', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 1, max: 9 }),
        (storedLive, inFlightMore, after, batchSize) => {
          const store = memoryStore();
          // The live run: its deltas, stored in batches.
          const live = createAuditState('s1');
          for (let i = 0; i < storedLive; i++) appendDelta(live, skewed(i, 1500));
          const answers: StoredHashes[] = [];
          for (let t = 0; t < live.deltas.length; t += batchSize)
            answers.push(store.append(live.deltas.slice(t, t + batchSize)));
          const storedRows = store.rows.slice();
          // The replay: every delta with the history's clock (another hash), more recorded before the answers arrive.
          const replay = createAuditState('s1');
          for (let i = 0; i < storedLive + inFlightMore; i++) appendDelta(replay, skewed(i, 0));
          // Without the store's hashes, the replay's next batch (or its last stored turn, recomputed) conflicts.
          const next = inFlightMore > 0 ? replay.deltas.slice(storedLive) : replay.deltas.slice(-1);
          assert.throws(
            () => store.append(next),
            (err: unknown) => isHypervisorError(err) && err.code === 'AUDIT_CONFLICT',
          );
          for (const a of answers) markStored(replay, 0, a);
          assert.equal(replay.stored, storedLive);
          for (let i = storedLive + inFlightMore; i < storedLive + inFlightMore + after; i++)
            appendDelta(replay, skewed(i, 0));
          if (replay.deltas.length > 0) markStored(replay, 0, store.append(replay.deltas.slice()));
          assert.deepEqual(store.rows.slice(0, storedLive), storedRows);
          assert.equal(store.rows.length, replay.turn);
          assert.deepEqual(verifyChain(store.rows), { ok: true, count: replay.turn });
          assert.equal(auditMerkleRoot(replay), merkleRootFromScratch(store.rows.map((d) => d.hash)));
          assert.equal(replay.head, store.rows.at(-1)!.hash);
          assert.deepEqual(replay.deltas, []);
          assert.equal(replay.storedMerkle, undefined, 'nothing waiting: the frontier is `merkle`');
        },
      ),
      { numRuns: 200 },
    );
  });

  it("changes nothing when the stored hashes are this state's own", () => {
    const store = memoryStore();
    const state = createAuditState('s1');
    for (let i = 0; i < 7; i++) appendDelta(state, input(i));
    markStored(state, 0, store.append(state.deltas.slice(0, 4)));
    const waiting = JSON.parse(JSON.stringify(state.deltas)) as Delta[];
    const root = auditMerkleRoot(state);
    markStored(state, 0, store.append(state.deltas.slice(0, 1)));
    assert.deepEqual(state.deltas, waiting.slice(1));
    assert.equal(auditMerkleRoot(state), root);
    markStored(state, 0, store.append(state.deltas.slice()));
    assert.equal(auditMerkleRoot(state), merkleRootFromScratch(store.rows.map((d) => d.hash)));
  });

  it('the store still refuses a different delta at a stored turn', () => {
    const store = memoryStore();
    const state = createAuditState('s1');
    for (let i = 0; i < 3; i++) appendDelta(state, input(i));
    store.append(state.deltas.slice());
    const other = createAuditState('s1');
    for (let i = 0; i < 3; i++) appendDelta(other, skewed(i, 1));
    assert.throws(
      () => store.append(other.deltas.slice(1)),
      (err: unknown) => isHypervisorError(err) && err.code === 'AUDIT_CONFLICT',
    );
  });
});
