/**
 * N26 (issue 24): a worker frozen inside an audit append held its session's
 * advisory lock "idle in transaction" for 246 s; the other worker's appends
 * queued behind it until its pool was full, and then every append failed,
 * other sessions' too. Here, on a real PostgreSQL of our own
 * (worker/postgres.ts), a second process appending through the store is
 * SIGSTOPped inside an append (its connection idle in transaction, holding the
 * session's lock), and:
 *
 * - another session's append goes through at once;
 * - the same session's appends fail within lock_timeout with a retryable
 *   AuditStoreTimeout naming the session — more of them than the pool has
 *   connections, and another session still appends meanwhile;
 * - the server ends the frozen process's transaction after its
 *   idle_in_transaction_session_timeout, after which the session appends again,
 *   and the resumed process carries on (its failed append reported, not a crash);
 * - the pool's wait for a connection is bounded by connectionTimeoutMillis;
 * - a row lock (an expiry's FOR UPDATE held by a stalled transaction) is bounded
 *   by lock_timeout as well.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { Client } from 'pg';
import {
  AuditStoreTimeoutError,
  POSTGRES_STORE_DEFAULTS,
  PostgresAuditStore,
  type PostgresAuditStoreOptions,
} from '../../src/store/postgres';
import { startPostgres, type TestPostgres } from '../../worker/postgres';
import { chain, commitment } from '../store/deltas';

const PROJECT_ROOT = path.resolve(__dirname, '..', '..');
/** The store's advisory-lock class (src/store/postgres.ts LOCK_CLASS, "hvau"); a session's lock is (class, hashtext(id)). */
const LOCK_CLASS = 0x68766175;

/** p, or a rejection saying it still waits after ms: an append that hangs fails the test instead of hanging it. */
function within<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** The time a promise takes to settle, and how. */
async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = Date.now();
  try {
    const value = await p;
    return { ms: Date.now() - start, value };
  } catch (error) {
    return { ms: Date.now() - start, error };
  }
}

function assertTimeout(error: unknown, pattern: RegExp): void {
  assert.ok(
    error instanceof AuditStoreTimeoutError,
    `expected AuditStoreTimeout, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`,
  );
  assert.equal(error.name, 'AuditStoreTimeout');
  assert.equal(error.retryable, true);
  assert.match(error.message, pattern);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('audit store on PostgreSQL: nothing waits without a bound (N26)', function () {
  this.timeout(120_000);
  let pg: TestPostgres;
  let admin: Client;
  let databases = 0;
  const closers: Array<() => Promise<unknown>> = [];

  before(async function () {
    this.timeout(180_000);
    pg = await startPostgres();
    admin = new Client({ connectionString: pg.url });
    await admin.connect();
  });
  after(async function () {
    this.timeout(60_000);
    await admin?.end().catch(() => {});
    await pg?.stop();
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close().catch(() => {});
  });

  const freshUrl = () => pg.createDatabase(`timeouts_${++databases}`);
  const open = async (url: string, options: PostgresAuditStoreOptions) => {
    const store = await PostgresAuditStore.open(url, options);
    closers.push(() => store.close());
    return store;
  };
  /** The backends of one application name, their states, and whether each holds a session's advisory lock of the store. */
  const backends = async (db: string, app: string) =>
    (
      await admin.query<{ pid: number; state: string; locked: boolean }>(
        `SELECT a.pid, a.state, EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype = 'advisory' AND l.granted AND l.classid = $3::bigint::oid) AS locked
       FROM pg_stat_activity a WHERE a.datname = $1 AND a.application_name = $2`,
        [db, app, LOCK_CLASS],
      )
    ).rows;

  /** How many backends of a database wait for a session's advisory lock of the store. */
  const lockWaiters = async (db: string) =>
    Number(
      (
        await admin.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
           WHERE d.datname = $1 AND l.locktype = 'advisory' AND NOT l.granted AND l.classid = $2::bigint::oid`,
          [db, LOCK_CLASS],
        )
      ).rows[0]!.n,
    );

  it('has documented defaults that bound every wait inside one 30 s attempt of the audit activity', () => {
    const d = POSTGRES_STORE_DEFAULTS;
    assert.ok(
      d.lockTimeoutMs > 0 &&
        d.statementTimeoutMs > 0 &&
        d.idleInTransactionTimeoutMs > 0 &&
        d.connectionTimeoutMillis > 0,
    );
    assert.ok(d.connectionTimeoutMillis + d.lockTimeoutMs + d.statementTimeoutMs < 30_000);
  });

  it('N26: a process frozen inside an append holds the session lock idle in transaction: other sessions append, the same session fails within lock_timeout, and the server ends the frozen transaction', async function () {
    this.timeout(90_000);
    const url = await freshUrl();
    const db = new URL(url).pathname.slice(1);
    const frozenOptions: PostgresAuditStoreOptions = { idleInTransactionTimeoutMs: 4_000, lockTimeoutMs: 1_000 };
    const job = {
      url: `${url}?application_name=frozen-worker`,
      sessionId: 'victim',
      turns: 100_000,
      options: frozenOptions,
    };
    const child: ChildProcess = spawn(
      process.execPath,
      ['--require', 'tsx/cjs', path.join(__dirname, '..', 'store', 'looper.ts'), JSON.stringify(job)],
      {
        cwd: PROJECT_ROOT,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (c) => {
      out += String(c);
    });
    child.stderr!.on('data', (c) => {
      err += String(c);
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    closers.push(async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
      await exited;
    });
    await within(
      60_000,
      (async () => {
        while (!out.startsWith('ready\n')) {
          if (child.exitCode !== null) throw new Error(`looper exited: ${err}`);
          await sleep(50);
        }
      })(),
      'the looper to open its store',
    );
    // A few appends in: the looper is appending in its loop.
    const store = await open(url, { max: 3, lockTimeoutMs: 500, connectionTimeoutMillis: 2_000 });
    await within(
      30_000,
      (async () => {
        while ((await store.lastTurn('victim')) < 3) {
          if (child.exitCode !== null) throw new Error(`looper exited: ${err}`);
          await sleep(50);
        }
      })(),
      'the looper to append',
    );

    // Freeze it inside an append: stop it, and look whether its backend is idle in transaction (else resume and try again).
    let frozen = false;
    for (let attempt = 0; attempt < 200 && !frozen; attempt++) {
      child.kill('SIGSTOP');
      await sleep(100);
      // Idle in transaction after its lock was taken (right after BEGIN it is idle in transaction too, holding nothing).
      frozen = (await backends(db, 'frozen-worker')).some((b) => b.state === 'idle in transaction' && b.locked);
      if (!frozen) {
        child.kill('SIGCONT');
        await sleep(Math.floor(Math.random() * 15));
      }
    }
    assert.ok(frozen, 'the looper was never caught inside an append');
    const frozenAt = Date.now();

    // Another session is not held up.
    const other = await timed(within(5_000, store.append('other', chain('other', 3)), 'append to another session'));
    assert.equal(other.error, undefined, String(other.error));
    assert.deepEqual(other.value, { appended: 3, lastTurn: 3 });
    assert.ok(other.ms < 1_000, `another session's append took ${other.ms} ms`);

    // The same session: more appends than the pool has connections, each refused within its lock wait
    // (plus, for the later ones, a bounded wait for a connection), while yet another session still appends.
    const stored = await store.lastTurn('victim');
    const next = chain('victim', stored + 1).slice(stored);
    const blocked = Array.from({ length: 6 }, () =>
      timed(within(8_000, store.append('victim', next), 'an append to the locked session')),
    );
    const meanwhile = timed(
      within(
        8_000,
        store.append('other-2', chain('other-2', 2)),
        'an append to another session while the pool is busy',
      ),
    );
    for (const r of await Promise.all(blocked)) {
      assertTimeout(r.error, /append to session "victim" waited longer than lock_timeout \(500 ms\).*retry later/);
      assert.ok(r.ms < 500 * 2 + 2_000, `refused after ${r.ms} ms`);
    }
    const m = await meanwhile;
    assert.equal(m.error, undefined, String(m.error));
    assert.deepEqual(m.value, { appended: 2, lastTurn: 2 });

    // The server ends the frozen transaction after the frozen store's idle_in_transaction_session_timeout; the lock goes with it.
    await within(
      frozenOptions.idleInTransactionTimeoutMs! + 10_000,
      (async () => {
        while ((await backends(db, 'frozen-worker')).some((b) => b.state === 'idle in transaction')) await sleep(100);
      })(),
      'the server to end the idle transaction',
    );
    const freedAfter = Date.now() - frozenAt;
    assert.ok(
      freedAfter >= frozenOptions.idleInTransactionTimeoutMs! - 1_000,
      `freed after ${freedAfter} ms: too early to be the timeout`,
    );
    const resumed = await timed(within(5_000, store.append('victim', next), 'the append once the lock is free'));
    assert.equal(resumed.error, undefined, String(resumed.error));
    assert.equal(resumed.value?.lastTurn, stored + 1);

    // The frozen process, resumed, finds its connection gone: its append fails (reported), and it carries on appending.
    child.kill('SIGCONT');
    const before = await store.lastTurn('victim');
    await within(
      20_000,
      (async () => {
        while ((await store.lastTurn('victim')) < before + 5) {
          if (child.exitCode !== null) throw new Error(`looper died: ${err}`);
          await sleep(100);
        }
      })(),
      'the resumed looper to append again',
    );
    child.stdin!.write('stop\n');
    assert.equal(await within(20_000, exited, 'the looper to stop'), 0, err);
    const report = JSON.parse(out.trim().split('\n').pop()!) as { appended: number; errors: string[] };
    assert.ok(report.appended > 5, JSON.stringify(report));
    assert.ok(report.errors.length >= 1, 'the append the server cut off was reported');
    assert.ok(report.errors.length <= 3, `errors: ${report.errors.join('; ')}`);
    // Nothing out of order: the trail is turns 1..n once each.
    const rows = await store.readRows('victim');
    assert.deepEqual(
      rows.map((r) => r.turn),
      rows.map((_, i) => i + 1),
    );
  });

  it("N26: the pool's wait for a connection is bounded by connectionTimeoutMillis, and a row lock by lock_timeout", async function () {
    this.timeout(60_000);
    const url = await freshUrl();
    const store = await open(url, { max: 1, lockTimeoutMs: 3_000, connectionTimeoutMillis: 300 });
    const holder = new Client({ connectionString: url });
    holder.on('error', () => {});
    await holder.connect();
    closers.push(() => holder.end());
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, 'held']);

    // The only connection waits on the lock; a call for another session waits for the connection — 300 ms, not forever.
    const first = timed(
      within(10_000, store.append('held', chain('held', 1)), 'the append that holds the only connection'),
    );
    // It holds the connection once its backend waits for the session's lock (an ungranted advisory lock of the store).
    await within(
      2_500,
      (async () => {
        while (!(await lockWaiters(new URL(url).pathname.slice(1)))) await sleep(20);
      })(),
      'the first append to wait for the lock',
    );
    const second = await timed(
      within(5_000, store.append('free', chain('free', 1)), 'an append waiting for a connection'),
    );
    assertTimeout(
      second.error,
      /append to session "free" found no free connection within 300 ms \(all 1 of the pool busy/,
    );
    assert.ok(second.ms < 1_500, `refused after ${second.ms} ms`);
    const lookup = await timed(within(5_000, store.lastTurn('free'), 'a read waiting for a connection'));
    assertTimeout(lookup.error, /lastTurn found no free connection within 300 ms/);
    const f = await first;
    assertTimeout(f.error, /append to session "held" waited longer than lock_timeout \(3000 ms\)/);
    assert.ok(f.ms >= 2_500 && f.ms < 6_000, `refused after ${f.ms} ms`);
    await holder.query('ROLLBACK');
    assert.deepEqual(await store.append('free', chain('free', 1)), { appended: 1, lastTurn: 1 });

    // A row lock: a stalled transaction holds the session record FOR UPDATE (as an expiry does); the append's FOR SHARE waits lock_timeout.
    const rows = await open(url, { lockTimeoutMs: 400 });
    await rows.putSession({
      sessionId: 'rowlocked',
      commitment: commitment('rowlocked', 1),
      liabilitySnapshot: {},
      retainUntil: 10_000,
      deltasPurgedAt: null,
    });
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM audit_sessions WHERE session_id = $1 FOR UPDATE', ['rowlocked']);
    const rowWait = await timed(
      within(5_000, rows.append('rowlocked', chain('rowlocked', 1)), 'an append behind a row lock'),
    );
    assertTimeout(rowWait.error, /append to session "rowlocked" waited longer than lock_timeout \(400 ms\)/);
    assert.ok(rowWait.ms < 2_000, `refused after ${rowWait.ms} ms`);
    await holder.query('ROLLBACK');
    // Once the lock is gone the append is decided at once, by the store's rules (a recorded session's trail is closed).
    await assert.rejects(rows.append('rowlocked', chain('rowlocked', 1)), /was terminated and its commitment stored/);
  });

  it('N26: refuses options that are not whole numbers', async () => {
    const url = await freshUrl();
    await assert.rejects(
      PostgresAuditStore.open(url, { lockTimeoutMs: -1 }),
      /lockTimeoutMs must be a whole number of milliseconds/,
    );
    await assert.rejects(PostgresAuditStore.open(url, { max: 0 }), /max must be a whole number of connections/);
  });
});
