/**
 * Issue 20: the session's audit batches in their wire form (src/contract/auditBatch.ts). The store
 * must receive exactly the deltas it received whole — same records, same text — and a batch whose
 * rebuilt chain is not the session's is refused, never stored.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MockActivityEnvironment } from '@temporalio/testing';
import { appendDelta, auditMerkleRoot, createAuditState, type Delta, type DeltaInput } from '../../src/core/audit';
import { markStored, type StoredFrontier, type StoredHashes } from '../../src/core/auditStored';
import { isHypervisorError } from '../../src/core/errors';
import { sha256Hex } from '../../src/core/hash';
import { generateDidKey, type DeltaSignature } from '../../src/core/identity';
import {
  AUDIT_BATCH_MAX_DELTAS,
  deltasOfAuditBatch,
  refOfAuditBatch,
  storedAnswer,
  toAuditBatch,
  type AuditBatch,
} from '../../src/contract/auditBatch';
import { SqliteAuditStore } from '../../src/store/sqlite';
import { frontierOf, hypervisorKeyOf } from '../../src/store/treeHeads';
import { auditActivities, type PendingBatchReader } from '../../activities/audit';

const SESSION = 's1';
const AGENTS = ['did:mesh:alice', 'did:mesh:bob', 'did:hv:hypervisor'];
const CHAIN = '01a24c8f-6f1b-7bf1-abea-0b052f7252de';

/** As Temporal carries a payload: JSON there and back. */
const wire = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
const signature: fc.Arbitrary<DeltaSignature> = fc.record(
  {
    signer: fc.constantFrom(...AGENTS),
    signature: hex(128),
    payloadHash: hex(64),
    payload: fc.record({
      update: fc.constantFrom('approveStep', 'witnessStep'),
      sessionId: fc.constant(SESSION),
      request: fc.jsonValue({ maxDepth: 2 }),
      nonce: fc.stringMatching(/^[A-Za-z0-9_-]{16,20}$/),
      issuedAt: fc.nat(),
    }),
  },
  { requiredKeys: ['signer', 'signature', 'payloadHash'] },
);
const deltaInput = (i: number): fc.Arbitrary<DeltaInput> =>
  fc
    .record(
      {
        agentDid: fc.constantFrom(...AGENTS),
        at: fc.nat(),
        changes: fc.array(
          fc.record(
            {
              path: fc.string({ minLength: 1, maxLength: 12 }),
              operation: fc.constantFrom('add' as const, 'modify' as const, 'delete' as const, 'permission' as const),
              contentHash: fc.string({ minLength: 1, maxLength: 64 }),
              previousHash: fc.string({ minLength: 1, maxLength: 64 }),
              agentDid: fc.constantFrom(...AGENTS),
            },
            { requiredKeys: ['path', 'operation'] },
          ),
          { maxLength: 4 },
        ),
        signatures: fc.array(signature, { minLength: 1, maxLength: 2 }),
      },
      { requiredKeys: ['agentDid', 'at', 'changes'] },
    )
    .map((r) => ({ deltaId: `delta-${i}-${r.at}`, sessionId: SESSION, ...r }));

/** A session's trail as the session records it (appendDelta), and a batch of it: the deltas waiting after `stored`. */
const trailAndBatch = fc
  .integer({ min: 1, max: 12 })
  .chain((n) =>
    fc.tuple(
      fc.tuple(...Array.from({ length: n }, (_, i) => deltaInput(i))),
      fc.integer({ min: 0, max: n - 1 }),
      fc.integer({ min: 1, max: n }),
    ),
  )
  .map(([inputs, from, size]) => {
    const state = createAuditState(SESSION);
    for (const input of inputs) appendDelta(state, input);
    return wire(state.deltas.slice(from, from + size));
  });

function refusal(pattern: RegExp) {
  return (err: unknown) => isHypervisorError(err) && err.code === 'INVALID_INPUT' && pattern.test(err.message);
}

describe('audit batches on the wire (issue 20)', () => {
  it('rebuild every delta the session recorded, key for key (property)', () => {
    fc.assert(
      fc.property(trailAndBatch, fc.boolean(), (batch, withChain) => {
        const compact = toAuditBatch(SESSION, withChain ? CHAIN : undefined, batch);
        assert.ok(compact, 'a batch of the session is one chain');
        const rebuilt = deltasOfAuditBatch(wire(compact));
        assert.deepEqual(rebuilt, batch);
        // The store keeps each delta's JSON text: it is the text the whole delta had.
        assert.deepEqual(
          rebuilt.map((d) => JSON.stringify(d)),
          batch.map((d) => JSON.stringify(d)),
        );
        const whole = { sessionId: SESSION, deltas: batch, ...(withChain ? { chain: CHAIN } : {}) };
        assert.ok(JSON.stringify(compact).length < JSON.stringify(whole).length);
      }),
      { numRuns: 300 },
    );
  });

  it('rebuild deltas the session relinked onto the stored head (a replay that recomputed them)', () => {
    const state = createAuditState(SESSION);
    for (let i = 0; i < 6; i++)
      appendDelta(state, { deltaId: `d${i}`, sessionId: SESSION, agentDid: AGENTS[0]!, at: i, changes: [] });
    const storedHead = sha256Hex('the store has another turn 3');
    markStored(state, 0, { fromTurn: 1, hashes: [sha256Hex('1'), sha256Hex('2'), storedHead] });
    const batch = wire(state.deltas);
    assert.equal(batch[0]!.parentHash, storedHead);
    assert.deepEqual(deltasOfAuditBatch(wire(toAuditBatch(SESSION, CHAIN, batch))), batch);
  });

  it("leave out each delta's session, turn, parent and hash, its agent when it is the hypervisor, and a change's agent when it is its delta's", () => {
    const state = createAuditState(SESSION);
    appendDelta(state, {
      deltaId: 'd1',
      sessionId: SESSION,
      agentDid: AGENTS[0]!,
      at: 7,
      changes: [
        { path: '/a', operation: 'add', contentHash: 'c1' },
        { path: '/b', operation: 'modify', agentDid: AGENTS[1]!, previousHash: 'p1' },
      ],
    });
    appendDelta(state, { deltaId: 'd2', sessionId: SESSION, agentDid: AGENTS[2]!, at: 8, changes: [] });
    const [d1, d2] = state.deltas as [Delta, Delta];
    assert.deepEqual(toAuditBatch(SESSION, CHAIN, state.deltas), {
      sessionId: SESSION,
      chain: CHAIN,
      fromTurn: 1,
      parentHash: null,
      head: d2.hash,
      deltas: [
        {
          deltaId: 'd1',
          agentDid: AGENTS[0],
          at: 7,
          changes: [
            { path: '/a', operation: 'add', contentHash: 'c1' },
            { path: '/b', operation: 'modify', agentDid: AGENTS[1], previousHash: 'p1' },
          ],
        },
        { deltaId: 'd2', at: 8, changes: [] },
      ],
    });
    assert.notEqual(d1.hash, d2.hash);
  });

  it('send deltas that are not one chain of the session whole (the store judges them)', () => {
    const state = createAuditState(SESSION);
    for (let i = 0; i < 4; i++)
      appendDelta(state, { deltaId: `d${i}`, sessionId: SESSION, agentDid: AGENTS[0]!, at: i, changes: [] });
    const ds = wire(state.deltas);
    assert.equal(toAuditBatch(SESSION, CHAIN, []), undefined);
    assert.equal(toAuditBatch(SESSION, CHAIN, [ds[0]!, ds[2]!]), undefined, 'a gap');
    assert.equal(toAuditBatch('s2', CHAIN, ds), undefined, "another session's");
    const broken = wire(ds);
    broken[2]!.parentHash = sha256Hex('elsewhere');
    assert.equal(toAuditBatch(SESSION, CHAIN, broken), undefined, 'a broken link');
    assert.ok(toAuditBatch(SESSION, CHAIN, ds.slice(1)));
  });

  // Attack first (SPEC §11): a batch that does not rebuild the session's chain is refused, naming why.
  const TAMPERS: Record<string, (b: AuditBatch) => void> = {
    'a delta altered': (b) => {
      b.deltas[b.deltas.length - 1]!.at += 1;
    },
    'a change altered': (b) => {
      b.deltas[0]!.changes.push({ path: '/injected', operation: 'add' });
    },
    'a change given to another agent': (b) => {
      b.deltas[0]!.changes.push({ path: '/x', operation: 'add', agentDid: 'did:mesh:mallory' });
    },
    "a delta's author swapped (an agent's made the hypervisor's, or the hypervisor's an agent's)": (b) => {
      const d = b.deltas[0]!;
      if (d.agentDid === undefined) d.agentDid = 'did:mesh:mallory';
      else delete d.agentDid;
    },
    'another parent': (b) => {
      b.parentHash = sha256Hex('another parent');
    },
    'shifted turns': (b) => {
      b.fromTurn += 1;
    },
    'another session': (b) => {
      b.sessionId = 's2';
    },
    'a delta dropped': (b) => {
      b.deltas.pop();
      b.deltas.push({ deltaId: 'forged', agentDid: AGENTS[0]!, at: 1, changes: [] });
    },
  };
  it("refuse a batch whose rebuilt chain does not end at the session's head (property over tampers)", () => {
    fc.assert(
      fc.property(trailAndBatch, fc.constantFrom(...Object.keys(TAMPERS)), (batch, tamper) => {
        const compact = wire(toAuditBatch(SESSION, CHAIN, batch)!);
        TAMPERS[tamper]!(compact);
        assert.throws(() => deltasOfAuditBatch(compact), refusal(/not to the session's head .*nothing is stored/));
      }),
      { numRuns: 200 },
    );
  });

  it('refuse a malformed batch naming the field', () => {
    const state = createAuditState(SESSION);
    appendDelta(state, { deltaId: 'd1', sessionId: SESSION, agentDid: AGENTS[0]!, at: 1, changes: [] });
    const good = toAuditBatch(SESSION, CHAIN, state.deltas)!;
    const cases: [unknown, RegExp][] = [
      [{ ...good, deltas: [{ ...good.deltas[0], hash: state.deltas[0]!.hash }] }, /deltas\.0/],
      [{ ...good, deltas: [] }, /deltas: must hold a delta/],
      [{ ...good, deltas: Array.from({ length: AUDIT_BATCH_MAX_DELTAS + 1 }, () => good.deltas[0]) }, /deltas/],
      [{ ...good, head: 'short' }, /head/],
      [{ ...good, fromTurn: 0 }, /fromTurn/],
      [{ ...good, extra: 1 }, /(root)|extra/],
      [{ ...good, deltas: [{ ...good.deltas[0], agentDid: 'mallory' }] }, /deltas\.0\.agentDid/],
    ];
    for (const [input, field] of cases) assert.throws(() => deltasOfAuditBatch(input), refusal(field));
  });
});

describe("markStored on the store's shorter answer (issue 20)", () => {
  const delta = (i: number, skew: number): DeltaInput => ({
    deltaId: `d${i}`,
    sessionId: SESSION,
    agentDid: AGENTS[i % 3]!,
    at: 1_700_000_000_000 + i + skew,
    changes: [{ path: `/f${i}`, operation: 'add', contentHash: sha256Hex(`c${i}`) }],
  });
  it('the frontier and head through a batch leave a session as its hashes do, live or on a replay that recomputed every delta (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 1, max: 9 }),
        fc.constantFrom(0, 1500),
        (stored, more, batchSize, skew) => {
          const live = createAuditState(SESSION);
          for (let i = 0; i < stored; i++) appendDelta(live, delta(i, 0));
          const hashes = live.deltas.map((d) => d.hash);
          const byHashes = createAuditState(SESSION);
          const byFrontier = createAuditState(SESSION);
          for (let i = 0; i < stored + more; i++) {
            appendDelta(byHashes, delta(i, skew));
            appendDelta(byFrontier, delta(i, skew));
          }
          for (let t = 0; t < stored; t += batchSize) {
            const batch = hashes.slice(t, t + batchSize);
            markStored(byHashes, 0, { fromTurn: t + 1, hashes: batch });
            const through = t + batch.length;
            const answer = storedAnswer(t + 1, batch, frontierOf(hashes.slice(0, through))).stored;
            assert.equal('frontier' in answer, batch.length > frontierOf(hashes.slice(0, through)).frontier.length + 1);
            markStored(byFrontier, 0, answer);
            assert.deepEqual(byFrontier, byHashes);
          }
          assert.equal(byFrontier.stored, stored);
          if (more > 0) assert.equal(byFrontier.deltas[0]!.parentHash, hashes.at(-1));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a malformed frontier is not chained on', () => {
    const st = createAuditState(SESSION);
    for (let i = 0; i < 4; i++) appendDelta(st, delta(i, 0));
    const own = JSON.parse(JSON.stringify(st)) as typeof st;
    markStored(st, 0, { through: 3, head: sha256Hex('x'), frontier: [sha256Hex('y')] });
    assert.equal(st.stored, 3);
    assert.deepEqual(st.deltas, own.deltas.slice(3), 'not relinked onto a head whose frontier is not one');
  });
});

describe('appendAuditDeltas: the wire form stores what the whole form stored (issue 20)', () => {
  /** A session's trail; `skew` moves every delta's time, as a replay with another clock records it. */
  function session(n: number, skew = 0): Delta[] {
    const state = createAuditState(SESSION);
    for (let i = 0; i < n; i++) appendDelta(state, sessionInput(i, skew));
    return wire(state.deltas);
  }
  const sessionInput = (i: number, skew: number): DeltaInput => ({
    deltaId: `d${i}`,
    sessionId: SESSION,
    agentDid: AGENTS[i % AGENTS.length]!,
    at: 1_800_000_000_000 + i + skew,
    changes: [
      { path: `/sessions/${SESSION}/f${i}`, operation: 'add', contentHash: sha256Hex(`c${i}`) },
      { path: '/budgets/x', operation: 'modify', agentDid: AGENTS[0]! },
    ],
  });
  type Answer = { stored?: StoredHashes | StoredFrontier; treeHead?: unknown };
  const BATCHES = [
    [0, 1],
    [1, 5],
    [5, 6],
    [6, 13],
    [13, 21],
  ] as const;

  for (const signing of [true, false]) {
    it(`the same rows${signing ? ', the same tree heads' : ''}, and an answer the session chains on as on the old one (${signing ? 'a signing worker: the frontier when shorter' : 'no key: the hashes'})`, async () => {
      const key = signing ? hypervisorKeyOf(generateDidKey()) : undefined;
      const whole = new SqliteAuditStore(':memory:');
      const compact = new SqliteAuditStore(':memory:');
      const byRef = new SqliteAuditStore(':memory:');
      try {
        const env = new MockActivityEnvironment({
          workflowExecution: { workflowId: `hv-session-${SESSION}`, runId: CHAIN },
        });
        const run = async (path: ReturnType<typeof auditActivities>, args: unknown): Promise<Answer> =>
          (await env.run(path.appendAuditDeltas, args as never)) as unknown as Answer;
        const oldPath = auditActivities(whole, key);
        const newPath = auditActivities(compact, key);
        const deltas = session(21);
        // The session answering its pendingAuditBatch query (as JSON, as Temporal carries it).
        const reads: string[] = [];
        const refPath = auditActivities(byRef, key, async ({ fromTurn, through }) => {
          reads.push(`${fromTurn}..${through}`);
          return wire(toAuditBatch(SESSION, CHAIN, deltas.slice(fromTurn - 1, through)));
        });
        // The session as it ran live, and as a replay that recomputed every delta with another clock, each fed either answer.
        const states = (skew: number) => {
          const st = createAuditState(SESSION);
          for (let i = 0; i < 23; i++) appendDelta(st, sessionInput(i, skew));
          return st;
        };
        const [liveOld, liveNew, replayOld, replayNew] = [states(0), states(0), states(1500), states(1500)];
        let frontiers = 0;
        for (const [from, to] of BATCHES) {
          const batch = deltas.slice(from, to);
          const before = await run(oldPath, { sessionId: SESSION, deltas: batch, chain: CHAIN });
          const after = await run(newPath, wire(toAuditBatch(SESSION, CHAIN, batch)!));
          const ref = refOfAuditBatch(toAuditBatch(SESSION, CHAIN, batch)!);
          assert.deepEqual(Object.keys(ref).sort(), [
            'chain',
            'fromTurn',
            'head',
            'parentHash',
            'sessionId',
            'through',
          ]);
          assert.deepEqual(await run(refPath, wire(ref)), after, 'by reference, the same answer as inline');
          assert.deepEqual(before.stored, { fromTurn: from + 1, hashes: batch.map((d) => d.hash) });
          assert.equal('treeHead' in before, signing, 'the whole form still answers as it did');
          assert.deepEqual(Object.keys(after), ['stored'], 'only what the session reads');
          assert.ok(after.stored);
          if ('frontier' in after.stored) {
            frontiers++;
            assert.deepEqual(after.stored, {
              through: to,
              head: batch.at(-1)!.hash,
              frontier: frontierOf(deltas.slice(0, to).map((d) => d.hash)).frontier,
            });
            assert.ok(after.stored.frontier.length + 1 < batch.length, 'the shorter form');
          } else {
            assert.deepEqual(after.stored, before.stored);
          }
          markStored(liveOld, 0, before.stored);
          markStored(liveNew, 0, after.stored);
          markStored(replayOld, 0, before.stored);
          markStored(replayNew, 0, after.stored);
          assert.deepEqual(liveNew, liveOld);
          assert.deepEqual(replayNew, replayOld);
        }
        assert.equal(frontiers > 0, signing);
        assert.equal(replayNew.stored, 21);
        // The replay chained its waiting deltas on the stored trail, as the live run did.
        assert.deepEqual(replayNew.storedMerkle, liveNew.storedMerkle);
        assert.deepEqual(replayNew.storedMerkle, frontierOf(deltas.map((d) => d.hash)));
        assert.equal(replayNew.deltas[0]!.parentHash, deltas[20]!.hash);
        assert.notEqual(auditMerkleRoot(replayNew), auditMerkleRoot(states(1500)), 'the replay relinked');
        // A retry of a stored batch is idempotent, as before.
        const retried = (await run(newPath, wire(toAuditBatch(SESSION, CHAIN, deltas.slice(1, 5))!))).stored!;
        assert.equal('hashes' in retried ? retried.fromTurn : retried.through - 3, 2);
        assert.deepEqual(await compact.readRows(SESSION), await whole.readRows(SESSION));
        assert.deepEqual(await byRef.readRows(SESSION), await whole.readRows(SESSION), 'by reference, the same rows');
        assert.deepEqual(
          reads,
          BATCHES.map(([from, to]) => `${from + 1}..${to}`),
        );
        assert.deepEqual(
          (await compact.readRows(SESSION)).map((r) => r.json),
          deltas.map((d) => JSON.stringify(d)),
        );
        const heads = async (s: SqliteAuditStore) =>
          (await s.treeHeads(SESSION)).map(({ treeHead: { at: _at, ...h } }) => h);
        assert.deepEqual(await heads(compact), await heads(whole));
        assert.deepEqual(await heads(byRef), await heads(whole));
        assert.equal((await heads(compact)).length, signing ? 21 : 0, 'one head a turn');
      } finally {
        await whole.close();
        await compact.close();
        await byRef.close();
      }
    });
  }

  it('refuse a tampered batch without retries, storing nothing', async () => {
    const store = new SqliteAuditStore(':memory:');
    try {
      const env = new MockActivityEnvironment({
        workflowExecution: { workflowId: `hv-session-${SESSION}`, runId: CHAIN },
      });
      const { appendAuditDeltas } = auditActivities(store);
      const batch = wire(toAuditBatch(SESSION, CHAIN, session(3))!);
      batch.deltas[1]!.changes[0]!.path = '/sessions/s1/elsewhere';
      await assert.rejects(
        env.run(appendAuditDeltas, batch),
        (err: unknown) =>
          err instanceof Error &&
          (err as { type?: string }).type === 'INVALID_INPUT' &&
          (err as { nonRetryable?: boolean }).nonRetryable === true &&
          /not to the session's head/.test(err.message),
      );
      assert.deepEqual(await store.readRows(SESSION), []);
    } finally {
      await store.close();
    }
  });
  describe('a batch by reference', () => {
    const deltas = session(6);
    const ref = refOfAuditBatch(toAuditBatch(SESSION, CHAIN, deltas.slice(2, 5))!);
    /** The session answers turns from its pending deltas (turns 3 to 6 here), refusing any other range. */
    const honest: PendingBatchReader = async ({ fromTurn, through }) => {
      if (fromTurn < 3 || through > 6) throw new Error('AUDIT_BATCH_UNREAD: not pending');
      return wire(toAuditBatch(SESSION, CHAIN, deltas.slice(fromTurn - 1, through)));
    };
    const refusedUnread = (turns: string) => (err: unknown) =>
      err instanceof Error &&
      (err as { type?: string }).type === 'AUDIT_BATCH_UNREAD' &&
      (err as { nonRetryable?: boolean }).nonRetryable === true &&
      err.message.includes(`turns ${turns}`) &&
      /nothing is stored/.test(err.message);
    const cases: [string, PendingBatchReader, Record<string, unknown>, string][] = [
      ['a head the deltas do not end at', honest, { ...ref, head: 'f'.repeat(64) }, '3 to 5'],
      ['a parent they do not start from', honest, { ...ref, parentHash: deltas[0]!.hash }, '3 to 5'],
      ['fewer deltas than turns named', honest, { ...ref, through: 6 }, '3 to 6'],
      [
        'an answer a replay computed differently',
        async (r) => {
          const batch = (await honest(r)) as AuditBatch;
          batch.deltas[1]!.at += 1500;
          return batch;
        },
        ref,
        '3 to 5',
      ],
      ['an answer that is no batch', async () => null, ref, '3 to 5'],
    ];
    for (const [what, reader, input, turns] of cases) {
      it(`refuses ${what} without retries (AUDIT_BATCH_UNREAD naming the turns), storing nothing`, async () => {
        const store = new SqliteAuditStore(':memory:');
        try {
          await store.append(SESSION, deltas.slice(0, 2), JSON.stringify([`hv-session-${SESSION}`, CHAIN]));
          const env = new MockActivityEnvironment({
            workflowExecution: { workflowId: `hv-session-${SESSION}`, runId: CHAIN },
          });
          const { appendAuditDeltas } = auditActivities(store, undefined, reader);
          await assert.rejects(env.run(appendAuditDeltas, wire(input) as never), refusedUnread(turns));
          assert.equal((await store.readRows(SESSION)).length, 2);
          // The honest reference, for contrast, lands.
          await env.run(auditActivities(store, undefined, honest).appendAuditDeltas, wire(ref));
          assert.deepEqual(
            (await store.readRows(SESSION)).map((r) => r.json),
            deltas.slice(0, 5).map((d) => JSON.stringify(d)),
          );
        } finally {
          await store.close();
        }
      });
    }

    it('retries when the session cannot be asked (the reader fails): the attempt fails retryable', async () => {
      const store = new SqliteAuditStore(':memory:');
      try {
        const env = new MockActivityEnvironment({
          workflowExecution: { workflowId: `hv-session-${SESSION}`, runId: CHAIN },
        });
        const { appendAuditDeltas } = auditActivities(store, undefined, () =>
          Promise.reject(new Error('deadline exceeded')),
        );
        await assert.rejects(
          env.run(appendAuditDeltas, wire(ref)),
          (err: unknown) => err instanceof Error && (err as { nonRetryable?: boolean }).nonRetryable !== true,
        );
        assert.deepEqual(await store.readRows(SESSION), []);
      } finally {
        await store.close();
      }
    });

    it('refuses a malformed reference as INVALID_INPUT, naming the field', async () => {
      const env = new MockActivityEnvironment({
        workflowExecution: { workflowId: `hv-session-${SESSION}`, runId: CHAIN },
      });
      const store = new SqliteAuditStore(':memory:');
      try {
        const { appendAuditDeltas } = auditActivities(store, undefined, honest);
        await assert.rejects(
          env.run(appendAuditDeltas, wire({ ...ref, through: 2 })),
          (err: unknown) =>
            (err as { type?: string }).type === 'INVALID_INPUT' && /through/.test((err as Error).message),
        );
      } finally {
        await store.close();
      }
    });
  });
});
