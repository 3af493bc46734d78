/**
 * The audit store's contract (src/store/types.ts), one suite run against both
 * adapters on the real engines: SQLite files, and a throwaway PostgreSQL
 * server started once for this file (tests/helpers/postgres.ts). Every test
 * gets a fresh store (a new file, or a new database).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { deltaHash, type Delta } from '../../src/core/audit';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { openAuditStore } from '../../src/store';
import { PostgresAuditStore } from '../../src/store/postgres';
import { SqliteAuditStore } from '../../src/store/sqlite';
import type { AuditStore, SessionRecord } from '../../src/store/types';
import { freePort } from '../../worker/ports';
import { startPostgres, type TestPostgres } from '../../worker/postgres';
import { appendInBatches, chain, commitment } from './deltas';
import { generateDidKey } from '../../src/core/identity';
import { createMerkleAccumulator } from '../../src/core/merkle';
import { hypervisorKeyOf, signBatchHeads, verifyTreeHeads } from '../../src/store/treeHeads';

/** One fresh, empty store location, and how to open (more) stores on it. */
interface Target {
  kind: 'sqlite' | 'postgres';
  /** The SQLite file or the PostgreSQL URL. */
  location: string;
  open(): Promise<AuditStore>;
}

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');

let pg: TestPostgres | undefined;
let tmpDir: string;
let databases = 0;

const rejectsWith = (p: Promise<unknown>, code: ErrorCode, pattern?: RegExp) =>
  assert.rejects(p, (e: unknown) => {
    assert.ok(
      isHypervisorError(e, code),
      `expected ${code}, got ${e instanceof Error ? `${(e as { code?: string }).code ?? e.name}: ${e.message}` : String(e)}`,
    );
    if (pattern) assert.match(e.message, pattern);
    return true;
  });

/** What the store holds for a session, as parsed deltas; asserts the rows are turns 1..n each once. */
async function assertHolds(store: AuditStore, expected: readonly Delta[]): Promise<void> {
  const sessionId = expected[0]!.sessionId;
  const rows = await store.readRows(sessionId);
  assert.deepEqual(
    rows.map((r) => r.turn),
    expected.map((d) => d.turn),
    `turns of ${sessionId}`,
  );
  for (let i = 0; i < expected.length; i++) {
    const row = rows[i]!;
    const delta = expected[i]!;
    assert.equal(row.json, JSON.stringify(delta), `json of turn ${delta.turn}`);
    assert.equal(row.hash, delta.hash, `hash of turn ${delta.turn}`);
  }
  assert.equal(await store.lastTurn(sessionId), expected.length);
}

function sessionRecord(sessionId: string, retainUntil: number, extra: Partial<SessionRecord> = {}): SessionRecord {
  return {
    sessionId,
    commitment: commitment(sessionId, 3),
    liabilitySnapshot: {
      bonds: [{ voucher: 'did:mesh:alice', vouchee: 'did:mesh:bob', amount: 0.25 }],
      note: 'prêt — 保証',
    },
    retainUntil,
    deltasPurgedAt: null,
    ...extra,
  };
}

/** Run a second process appending to the store; resolves with what it appended per session once it has finished. */
function startChild(
  target: Target,
  sessions: string[],
  turns: number,
  batch: number,
): { ready: Promise<void>; go(): void; done: Promise<Record<string, number>> } {
  const job = { kind: target.kind, location: target.location, sessions, turns, batch };
  const child = spawn(
    process.execPath,
    ['--require', 'tsx/cjs', path.join(__dirname, 'appender.ts'), JSON.stringify(job)],
    {
      cwd: PROJECT_ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => {
    onReady = resolve;
  });
  child.stdout.on('data', (chunk) => {
    out += String(chunk);
    if (out.startsWith('ready\n')) onReady();
  });
  child.stderr.on('data', (chunk) => {
    err += String(chunk);
  });
  const done = new Promise<Record<string, number>>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`appender exited ${code}: ${err}`));
      const last = out.trim().split('\n').pop()!;
      resolve(JSON.parse(last) as Record<string, number>);
    });
  });
  // A child that dies before it is ready fails the test instead of hanging it.
  const readyOrDead = Promise.race([
    ready,
    done.then(() => {
      throw new Error('appender exited before it was ready');
    }),
  ]);
  return { ready: readyOrDead, go: () => child.stdin.write('go\n'), done };
}

function contract(name: string, fresh: () => Promise<Target>): void {
  describe(`audit store contract: ${name}`, function () {
    this.timeout(60_000);
    let target: Target;
    let store: AuditStore;
    const others: AuditStore[] = [];
    const another = async () => {
      const s = await target.open();
      others.push(s);
      return s;
    };

    beforeEach(async () => {
      target = await fresh();
      store = await target.open();
    });
    afterEach(async () => {
      await store.close();
      await Promise.all(others.splice(0).map((s) => s.close()));
    });

    it('has the kind it was opened as, and an empty session has turn 0 and no rows', async () => {
      assert.equal(store.kind, target.kind);
      assert.equal(await store.lastTurn('nobody'), 0);
      assert.deepEqual(await store.readRows('nobody'), []);
      assert.deepEqual(await store.append('nobody', []), { appended: 0, lastTurn: 0 });
    });

    it('appends and reads back each delta byte-exact (JSON text, hash, turn)', async () => {
      const deltas = chain('s1', 7);
      assert.deepEqual(await store.append('s1', deltas.slice(0, 4)), { appended: 4, lastTurn: 4 });
      assert.deepEqual(await store.append('s1', deltas.slice(4)), { appended: 3, lastTurn: 7 });
      await assertHolds(store, deltas);
      const rows = await store.readRows('s1');
      assert.deepEqual(
        rows.map((r) => JSON.parse(r.json) as Delta),
        deltas,
      );
      assert.ok(
        rows.some((r) => r.json.includes('日本')),
        'non-ASCII content is stored as text',
      );
      // Another connection sees the same bytes.
      await assertHolds(await another(), deltas);
    });

    it('a retried batch writes nothing and reports appended 0 (no duplicates, no gaps)', async () => {
      const deltas = chain('s1', 10);
      await store.append('s1', deltas.slice(0, 5));
      assert.deepEqual(await store.append('s1', deltas.slice(0, 5)), { appended: 0, lastTurn: 5 });
      await store.append('s1', deltas.slice(5));
      assert.deepEqual(await store.append('s1', deltas.slice(0, 5)), { appended: 0, lastTurn: 10 });
      assert.deepEqual(await store.append('s1', deltas.slice(3, 7)), { appended: 0, lastTurn: 10 });
      await assertHolds(store, deltas);
    });

    it('an overlapping batch (half stored) appends only its new part', async () => {
      const deltas = chain('s1', 8);
      await store.append('s1', deltas.slice(0, 5));
      assert.deepEqual(await store.append('s1', deltas.slice(2, 8)), { appended: 3, lastTurn: 8 });
      await assertHolds(store, deltas);
    });

    it('a stored turn with a different hash is AUDIT_CONFLICT, and nothing of the batch is written', async () => {
      const a = chain('s1', 6);
      const b = chain('s1', 6, 'b');
      await store.append('s1', a.slice(0, 3));
      await rejectsWith(store.append('s1', b.slice(0, 5)), 'AUDIT_CONFLICT', /turn 1\b/);
      await rejectsWith(store.append('s1', [a[0]!, a[1]!, b[2]!]), 'INVALID_INPUT', /chain/);
      await assertHolds(store, a.slice(0, 3));
    });

    it('a batch whose first stored turns match but a later stored one differs is AUDIT_CONFLICT naming that turn', async () => {
      const a = chain('s1', 4);
      await store.append('s1', a);
      const forged = { ...a[2]!, at: a[2]!.at + 1 };
      forged.hash = deltaHash(forged);
      await rejectsWith(store.append('s1', [a[0]!, a[1]!, forged]), 'AUDIT_CONFLICT', /turn 3\b/);
      await rejectsWith(store.append('s1', [forged]), 'AUDIT_CONFLICT', /turn 3\b/);
      await assertHolds(store, a);
    });

    it('a batch that would leave a gap is AUDIT_GAP', async () => {
      const deltas = chain('s1', 6);
      await store.append('s1', deltas.slice(0, 2));
      await rejectsWith(store.append('s1', deltas.slice(3, 6)), 'AUDIT_GAP', /up to 2\b.*turn 4\b/);
      await rejectsWith(store.append('s2', chain('s2', 3).slice(1)), 'AUDIT_GAP');
      assert.equal(await store.lastTurn('s1'), 2);
      assert.equal(await store.lastTurn('s2'), 0);
    });

    it('a batch that is not consecutive is INVALID_INPUT', async () => {
      const d = chain('s1', 4);
      await rejectsWith(store.append('s1', [d[0]!, d[2]!]), 'INVALID_INPUT', /consecutive/);
      await rejectsWith(store.append('s1', [d[1]!, d[0]!]), 'INVALID_INPUT', /consecutive/);
      await rejectsWith(store.append('s1', [d[0]!, d[0]!]), 'INVALID_INPUT', /consecutive/);
      assert.equal(await store.lastTurn('s1'), 0);
    });

    it('a delta of another session is INVALID_INPUT', async () => {
      await rejectsWith(store.append('s1', chain('s2', 2)), 'INVALID_INPUT', /session/);
      const mixed = [...chain('s1', 1), ...chain('s2', 2).slice(1)];
      await rejectsWith(store.append('s1', mixed), 'INVALID_INPUT', /session/);
      assert.equal(await store.lastTurn('s1'), 0);
      assert.equal(await store.lastTurn('s2'), 0);
    });

    it('a delta whose hash does not match its content is INVALID_INPUT, and the batch is all or nothing', async () => {
      const d = chain('s1', 5);
      const tampered = d.map((x) => ({ ...x }));
      tampered[4]!.agentDid = 'did:mesh:mallory';
      await rejectsWith(store.append('s1', tampered), 'INVALID_INPUT', /hash of turn 5/);
      const extraField = { ...d[0]!, smuggled: 'not covered by the hash' } as unknown as Delta;
      await rejectsWith(store.append('s1', [extraField]), 'INVALID_INPUT');
      await rejectsWith(store.append('s1', [{ ...d[0]!, hash: 'nothex' }]), 'INVALID_INPUT');
      assert.equal(await store.lastTurn('s1'), 0);
      assert.deepEqual(await store.readRows('s1'), []);
    });

    it("a first new delta whose parent is not the stored turn's hash is AUDIT_CONFLICT", async () => {
      const a = chain('s1', 5);
      const b = chain('s1', 5, 'b');
      await store.append('s1', a.slice(0, 3));
      // b's turns 4–5 are a valid chain of their own, but turn 4 names b's turn 3, not the stored a's.
      await rejectsWith(store.append('s1', b.slice(3)), 'AUDIT_CONFLICT', /turn 4\b.*parent/);
      // Turn 1 has no parent.
      const orphan = { ...chain('s2', 1)[0]!, parentHash: a[1]!.hash };
      orphan.hash = deltaHash(orphan);
      await rejectsWith(store.append('s2', [orphan]), 'INVALID_INPUT', /turn 1/);
      await assertHolds(store, a.slice(0, 3));
    });

    it('readRows pages by fromTurn and limit, in turn order', async () => {
      const deltas = chain('s1', 25);
      await appendInBatches(store, deltas, 7);
      const page = async (from: number, limit?: number) => (await store.readRows('s1', from, limit)).map((r) => r.turn);
      const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
      assert.deepEqual(await page(1, 10), range(1, 10));
      assert.deepEqual(await page(11, 10), range(11, 20));
      assert.deepEqual(await page(21, 10), range(21, 25));
      assert.deepEqual(await page(26, 10), []);
      assert.deepEqual(await page(9), range(9, 25));
      assert.deepEqual(await page(1, 0), []);
      assert.deepEqual(
        (await store.readRows('s1')).map((r) => r.turn),
        range(1, 25),
      );
      const rows = await store.readRows('s1', 12, 2);
      assert.deepEqual(
        rows.map((r) => r.json),
        [JSON.stringify(deltas[11]), JSON.stringify(deltas[12])],
      );
    });

    it('putSession stores the record; the same record again is fine, a different one is AUDIT_CONFLICT', async () => {
      const record = sessionRecord('s1', 5_000);
      await store.putSession(record);
      assert.deepEqual(await store.getSession('s1'), record);
      // The same record with its keys in another order is the same record.
      const reordered: SessionRecord = {
        deltasPurgedAt: null,
        retainUntil: 5_000,
        liabilitySnapshot: {
          note: 'prêt — 保証',
          bonds: [{ amount: 0.25, vouchee: 'did:mesh:bob', voucher: 'did:mesh:alice' }],
        },
        commitment: { ...record.commitment },
        sessionId: 's1',
      };
      await store.putSession(reordered);
      await (await another()).putSession(record);
      await rejectsWith(store.putSession({ ...record, retainUntil: 5_001 }), 'AUDIT_CONFLICT', /s1/);
      await rejectsWith(store.putSession({ ...record, liabilitySnapshot: { bonds: [] } }), 'AUDIT_CONFLICT');
      await rejectsWith(
        store.putSession({ ...record, commitment: { ...record.commitment, deltaCount: 4 } }),
        'AUDIT_CONFLICT',
      );
      await rejectsWith(store.putSession({ ...record, commitment: commitment('s2', 3) }), 'INVALID_INPUT');
      assert.deepEqual(await store.getSession('s1'), record);
    });

    it("N1: a trail is written only by its owner: another owner's append, record or claim is AUDIT_CONFLICT and writes nothing", async () => {
      const owner = JSON.stringify(['hv-session-s1', 'run-1']);
      const forger = JSON.stringify(['hv-session-forged', 'run-9']);
      const deltas = chain('s1', 6);
      await store.append('s1', deltas.slice(0, 3), owner);
      assert.deepEqual(await store.trailHead('s1'), { turn: 3, hash: deltas[2]!.hash, owner });
      // The forger holds the true next deltas (it copied them) and still may not add them.
      await rejectsWith(
        store.append('s1', deltas.slice(3), forger),
        'AUDIT_CONFLICT',
        /belongs to another session workflow/,
      );
      await rejectsWith((await another()).append('s1', deltas.slice(3), forger), 'AUDIT_CONFLICT');
      await rejectsWith(
        store.putSession(sessionRecord('s1', 0), forger),
        'AUDIT_CONFLICT',
        /belongs to another session workflow/,
      );
      assert.equal(await store.getSession('s1'), null, 'no commitment, no retention change');
      await assertHolds(store, deltas.slice(0, 3));
      // The owner goes on, and closes its trail.
      await store.append('s1', deltas.slice(3), owner);
      await store.putSession(sessionRecord('s1', 5_000), owner);
      assert.equal((await store.getSession('s1'))?.retainUntil, 5_000);
      assert.deepEqual(await store.trailHead('nobody'), { turn: 0, hash: null, owner: null });
    });

    it('N1: a trail whose commitment is stored takes no more deltas (a retried batch already stored is still fine)', async () => {
      const deltas = chain('s1', 5);
      await store.append('s1', deltas.slice(0, 4));
      await store.putSession(sessionRecord('s1', 5_000));
      assert.deepEqual(await store.append('s1', deltas.slice(2, 4)), { appended: 0, lastTurn: 4 });
      await rejectsWith(store.append('s1', deltas.slice(4)), 'AUDIT_CONFLICT', /terminated/);
      await assertHolds(store, deltas.slice(0, 4));
    });

    it('getSession is null for an unknown session', async () => {
      assert.equal(await store.getSession('unknown'), null);
      await store.putSession(sessionRecord('known', 1));
      assert.equal(await store.getSession('unknown'), null);
      assert.notEqual(await store.getSession('known'), null);
    });

    it('files are content-addressed by the SHA-256 of their UTF-8 text, non-ASCII and empty included', async () => {
      const contents = ['héllo, 世界 🎉\nline two\r\n', '', 'plain ascii', 'nul \u0000 inside'];
      for (const content of contents) {
        const hash = await store.putFile('s1', content);
        assert.equal(hash, createHash('sha256').update(Buffer.from(content, 'utf8')).digest('hex'));
        assert.equal(await store.putFile('s1', content), hash, 'idempotent');
        assert.equal(await store.getFile('s1', hash), content);
        assert.equal(await (await another()).getFile('s1', hash), content);
      }
      assert.equal(await store.getFile('s1', createHash('sha256').update('absent').digest('hex')), null);
      assert.equal(await store.getFile('s1', 'not a hash'), null);
      await rejectsWith(store.putFile('s1', 'lone \ud800 surrogate'), 'INVALID_INPUT', /surrogate/);
    });

    it('N13: a file belongs to its session — another cannot read it by hash — and goes with its VFS at termination and expiry', async () => {
      const owner = JSON.stringify(['hv-session-s1', 'run-1']);
      const hash = await store.putFile('s1', 'secret plan', owner);
      await store.putFile('s2', 'other', JSON.stringify(['hv-session-s2', 'run-1']));
      assert.equal(await store.getFile('s2', hash), null, 'another session cannot read it by its hash');
      await rejectsWith(
        store.putFile('s1', 'forged', JSON.stringify(['hv-session-forged', 'run-9'])),
        'AUDIT_CONFLICT',
        /belongs to another session workflow/,
      );
      await store.putSession(sessionRecord('s1', 5_000), owner);
      assert.equal(await store.getFile('s1', hash), null, "purged with the session's VFS at termination");
      await rejectsWith(store.putFile('s1', 'late', owner), 'AUDIT_CONFLICT', /terminated/);
      // Without an owner (a store used directly) the record purges them all the same.
      const kept = await store.putFile('s3', 'kept until the record');
      await store.putSession(sessionRecord('s3', 10_000));
      assert.equal(await store.getFile('s3', kept), null);
      assert.notEqual(
        await store.getFile('s2', await store.putFile('s2', 'other')),
        null,
        'an open session keeps its files',
      );
    });

    it('expire drops the deltas of sessions whose retainUntil ≤ now, keeps their records, and never touches sessions without one', async () => {
      const old = chain('old', 3);
      const edge = chain('edge', 2);
      const young = chain('young', 2);
      const orphan = chain('no-record', 4);
      for (const c of [old, edge, young, orphan]) await store.append(c[0]!.sessionId, c);
      await store.putSession(sessionRecord('old', 1_000));
      await store.putSession(sessionRecord('edge', 2_000));
      await store.putSession(sessionRecord('young', 5_000));
      await store.putSession(sessionRecord('empty', 500));

      assert.deepEqual(await store.expire(999), { sessions: ['empty'], deltasPurged: 0 });
      assert.deepEqual(await store.expire(2_000), { sessions: ['edge', 'old'], deltasPurged: 5 });
      assert.deepEqual(await store.readRows('old'), []);
      assert.deepEqual(await store.readRows('edge'), []);
      assert.equal(await store.lastTurn('old'), 0);
      const kept = await store.getSession('old');
      assert.deepEqual(kept, { ...sessionRecord('old', 1_000), deltasPurgedAt: 2_000 });
      assert.equal((await store.getSession('empty'))?.deltasPurgedAt, 999);
      assert.equal((await store.getSession('young'))?.deltasPurgedAt, null);
      await assertHolds(store, young);
      await assertHolds(store, orphan);

      // Expired once is expired: a second run finds nothing, and no delta comes back.
      assert.deepEqual(await store.expire(3_000), { sessions: [], deltasPurged: 0 });
      await rejectsWith(store.append('old', old), 'AUDIT_CONFLICT', /purged/);
      // The record of an expired session is still the same record.
      await store.putSession(sessionRecord('old', 1_000));

      assert.deepEqual(await store.expire(Number.MAX_SAFE_INTEGER), { sessions: ['young'], deltasPurged: 2 });
      await assertHolds(store, orphan);
    });

    it("N14: keeps the hypervisor's tree heads by size (the first one signed for a size stays), the frontier with the last, and expiry keeps only the final head", async () => {
      const key = hypervisorKeyOf(generateDidKey());
      const deltas = chain('s1', 5);
      await store.append('s1', deltas);
      assert.deepEqual(await store.treeHeads('s1'), []);
      assert.equal(await store.lastTreeHead('s1'), null);
      const first = signBatchHeads(key, 's1', createMerkleAccumulator(), deltas.slice(0, 3), 'none', 1);
      await store.putTreeHeads('s1', first.heads, first.frontier);
      const again = signBatchHeads(key, 's1', createMerkleAccumulator(), deltas.slice(0, 3), 'none', 2);
      await store.putTreeHeads('s1', again.heads, again.frontier);
      const last = await store.lastTreeHead('s1');
      assert.deepEqual(last, { signed: first.heads[2], frontier: first.frontier });
      const rest = signBatchHeads(key, 's1', last!.frontier!, deltas.slice(3), 'none', 3);
      await store.putTreeHeads('s1', rest.heads, rest.frontier);
      const final = key.signTreeHead({ ...rest.heads[1]!.treeHead, at: 4, final: true });
      await store.putTreeHeads('s1', [final]);
      const heads = await store.treeHeads('s1');
      assert.deepEqual(heads, [...first.heads, ...rest.heads, final]);
      assert.equal((await another()).kind, store.kind);
      assert.deepEqual(
        verifyTreeHeads({ sessionId: 's1', did: key.did, deltas, heads, signedThrough: 5, commitment: null }).ok,
        false,
        'a final head without a commitment',
      );
      await rejectsWith(
        store.putTreeHeads('s1', [{ ...final, treeHead: { ...final.treeHead, sessionId: 's2' } }]),
        'INVALID_INPUT',
        /not a signed head of session/,
      );
      await store.putSession(sessionRecord('s1', 10));
      await store.expire(10);
      assert.deepEqual(await store.treeHeads('s1'), [final]);
      assert.equal(await store.lastTreeHead('s1'), null);
    });

    it('session ids like __proto__, constructor, non-ASCII and 256 characters work and stay apart', async () => {
      const ids = [
        '__proto__',
        'constructor',
        'toString',
        'hasOwnProperty',
        'séance-会話-🎉',
        'x'.repeat(256),
        `it's "quoted"; DROP TABLE audit_deltas;--`,
        ' padded ',
      ];
      for (const [i, id] of ids.entries()) {
        const deltas = chain(id, i + 1);
        assert.deepEqual(await store.append(id, deltas), { appended: i + 1, lastTurn: i + 1 });
        await store.putSession(sessionRecord(id, 10_000));
      }
      for (const [i, id] of ids.entries()) {
        await assertHolds(store, chain(id, i + 1));
        assert.deepEqual(await store.getSession(id), sessionRecord(id, 10_000));
      }
      assert.equal(await store.lastTurn('x'.repeat(255)), 0);
      assert.equal(await store.lastTurn('padded'), 0);
      await rejectsWith(store.append('', []), 'INVALID_INPUT');
      await rejectsWith(store.lastTurn('x'.repeat(257)), 'INVALID_INPUT');
      await rejectsWith(store.lastTurn('nul\u0000id'), 'INVALID_INPUT');
    });

    it('concurrent appends from two store instances: every session ends with turns 1..n exactly once', async () => {
      const a = await another();
      const b = await another();
      const turns = 60;
      const own = (s: AuditStore, ids: string[]) =>
        Promise.all(ids.map((id) => appendInBatches(s, chain(id, turns), 6)));
      const shared = chain('shared', turns);
      const [, , byA, byB] = await Promise.all([
        own(a, ['a1', 'a2']),
        own(b, ['b1', 'b2']),
        appendInBatches(a, shared, 6),
        appendInBatches(b, shared, 6),
      ]);
      assert.equal(byA + byB, turns, 'the shared batches were written once between them');
      for (const id of ['a1', 'a2', 'b1', 'b2']) await assertHolds(store, chain(id, turns));
      await assertHolds(store, shared);
    });

    it('concurrent appends from another process: every session ends with turns 1..n exactly once', async function () {
      this.timeout(120_000);
      const turns = 80;
      const batch = 8;
      const child = startChild(target, ['c1', 'c2', 'shared'], turns, batch);
      await child.ready;
      child.go();
      const mine = await Promise.all(
        ['p1', 'p2', 'shared'].map((id) => appendInBatches(store, chain(id, turns), batch)),
      );
      const theirs = await child.done;
      assert.equal(mine[2]! + theirs.shared!, turns, 'the shared batches were written once between the processes');
      assert.equal(theirs.c1, turns);
      assert.equal(mine[0], turns);
      for (const id of ['c1', 'c2', 'p1', 'p2', 'shared']) await assertHolds(store, chain(id, turns));
    });

    it('the store opens again over existing data, and stores opened at once on an empty location agree on one schema', async () => {
      const empty = await fresh();
      const opened = await Promise.all([empty.open(), empty.open(), empty.open()]);
      others.push(...opened);
      await opened[0]!.append('e', chain('e', 2));
      await assertHolds(opened[2]!, chain('e', 2));

      await store.append('s1', chain('s1', 3));
      await store.close();
      store = await target.open();
      const [x, y] = await Promise.all([target.open(), target.open()]);
      others.push(x, y);
      await assertHolds(store, chain('s1', 3));
      await assertHolds(x, chain('s1', 3));
    });
  });
}

// One PostgreSQL server for the whole suite, started and stopped around it (not around the rest of `npm test`).
describe('audit store', function () {
  before(async function () {
    this.timeout(180_000);
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-store-'));
    pg = await startPostgres();
  });

  after(async function () {
    this.timeout(60_000);
    await pg?.stop();
    fs.rmSync(tmpDir, { recursive: true, force: true });
  });

  contract('SQLite', async () => {
    const file = path.join(tmpDir, `audit-${++databases}.sqlite`);
    return { kind: 'sqlite', location: file, open: async () => new SqliteAuditStore(file) };
  });

  contract('PostgreSQL', async () => {
    const url = await pg!.createDatabase(`audit_${++databases}`);
    return { kind: 'postgres', location: url, open: () => PostgresAuditStore.open(url) };
  });

  describe('openAuditStore', function () {
    this.timeout(60_000);
    const saved = { url: process.env.HV_AUDIT_DATABASE_URL, dataDir: process.env.HV_DATA_DIR };
    afterEach(() => {
      for (const [key, value] of [
        ['HV_AUDIT_DATABASE_URL', saved.url],
        ['HV_DATA_DIR', saved.dataDir],
      ] as const) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    });

    it('opens SQLite at <HV_DATA_DIR>/audit.sqlite when no URL is set, creating the directory', async () => {
      delete process.env.HV_AUDIT_DATABASE_URL;
      const dir = path.join(tmpDir, 'data', 'nested');
      process.env.HV_DATA_DIR = dir;
      const store = await openAuditStore();
      try {
        assert.equal(store.kind, 'sqlite');
        await store.append('s', chain('s', 2));
        assert.ok(fs.existsSync(path.join(dir, 'audit.sqlite')));
      } finally {
        await store.close();
      }
      const other = await openAuditStore({ dataDir: path.join(tmpDir, 'option-dir') });
      await other.close();
      assert.ok(fs.existsSync(path.join(tmpDir, 'option-dir', 'audit.sqlite')));
    });

    it('opens PostgreSQL when HV_AUDIT_DATABASE_URL is set', async () => {
      process.env.HV_AUDIT_DATABASE_URL = await pg!.createDatabase('env_url');
      const store = await openAuditStore({ dataDir: path.join(tmpDir, 'unused') });
      try {
        assert.equal(store.kind, 'postgres');
        assert.equal(await store.lastTurn('s'), 0);
      } finally {
        await store.close();
      }
      assert.ok(!fs.existsSync(path.join(tmpDir, 'unused')));
    });

    it('names the variable when the URL is malformed, of another kind, or unreachable (without the password)', async () => {
      process.env.HV_AUDIT_DATABASE_URL = 'postgres://user:pw@[not a host';
      await assert.rejects(openAuditStore(), /HV_AUDIT_DATABASE_URL is not a URL/);
      process.env.HV_AUDIT_DATABASE_URL = 'mysql://localhost/db';
      await assert.rejects(openAuditStore(), /HV_AUDIT_DATABASE_URL must be a postgres:\/\//);
      process.env.HV_AUDIT_DATABASE_URL = `postgresql://user:s3cret@127.0.0.1:${await freePort()}/db`;
      await assert.rejects(openAuditStore(), (e: Error) => {
        assert.match(
          e.message,
          /^HV_AUDIT_DATABASE_URL: cannot open the audit store at postgresql:\/\/user:\*\*\*@127\.0\.0\.1:\d+\/db: .*ECONNREFUSED/,
        );
        assert.doesNotMatch(e.message, /s3cret/);
        return true;
      });
    });
  });
});
