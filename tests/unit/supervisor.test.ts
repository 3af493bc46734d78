/**
 * Issue 24: `npm run cluster` never restarted a worker that exited (compose
 * does). worker/supervisor.ts keeps each worker running; here with real child
 * processes (tiny node scripts), no mocks: a child that exits is started again
 * with a growing backoff and each restart is logged; a run that lasted resets
 * the backoff; a signal death is restarted too; stop() ends the child and
 * starts nothing more, even from a pending restart.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Supervisor, type SupervisorOptions } from '../../worker/supervisor';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

describe('worker/supervisor: restarts a worker process that exits', function () {
  this.timeout(30_000);
  let dir: string;
  const supervisors: Supervisor[] = [];
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-supervisor-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  afterEach(async () => {
    await Promise.all(supervisors.splice(0).map((s) => s.stop(2_000)));
  });

  /** A child that records "<pid> <time>" in `starts`, then runs `body` (JS). */
  function child(name: string, body: string, options: Partial<SupervisorOptions> = {}) {
    const starts = path.join(dir, `${name}.starts`);
    const lines: string[] = [];
    const script = `require('fs').appendFileSync(${JSON.stringify(starts)}, process.pid + ' ' + Date.now() + '\\n'); ${body}`;
    const s = new Supervisor({
      name,
      file: process.execPath,
      args: ['-e', script],
      log: (l) => lines.push(l),
      ...options,
    });
    supervisors.push(s);
    const started = () =>
      fs.existsSync(starts)
        ? fs
            .readFileSync(starts, 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.split(' ').map(Number) as [number, number])
        : [];
    return { s, lines, started };
  }

  it('starts a worker that exits again, with a doubling backoff up to the maximum, logging each restart', async () => {
    const { s, lines, started } = child('crashy', 'setTimeout(() => process.exit(3), 20);', {
      initialBackoffMs: 100,
      maxBackoffMs: 400,
      stableAfterMs: 60_000,
    });
    s.start();
    await until('5 starts', () => started().length >= 5);
    const times = started().map(([, t]) => t);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // Each gap is the child's ~20 ms run plus the delay: 100, 200, 400, 400 ms.
    for (const [i, min] of [100, 200, 400, 400].entries())
      assert.ok(gaps[i]! >= min, `gap ${i + 1} was ${gaps[i]} ms, expected ≥ ${min}`);
    assert.ok(gaps[3]! < 400 + 1_000, `the backoff is capped: gap 4 was ${gaps[3]} ms`);
    assert.match(lines[0]!, /^crashy \(pid \d+\) exited \(code 3\) after \d+ ms; restart 1 in 100 ms$/);
    assert.match(
      lines.find((l) => /restart 3 in/.test(l))!,
      /restart 3 in 400 ms/,
    );
    assert.ok(lines.some((l) => /^crashy restarted \(pid \d+\)$/.test(l)));
    assert.ok(s.restarts >= 4);
    assert.deepEqual(
      s.exits.slice(0, 3).map((e) => e.code),
      [3, 3, 3],
    );
  });

  it('restarts a worker killed by a signal, and resets the backoff after a run that lasted', async () => {
    const { s, lines, started } = child('steady', 'setInterval(() => {}, 1000);', {
      initialBackoffMs: 150,
      maxBackoffMs: 5_000,
      stableAfterMs: 300,
    });
    s.start();
    await until('the first start', () => started().length === 1 && s.pid !== undefined);
    // Short runs: the delay grows (150, 300).
    for (let n = 1; n <= 2; n++) {
      const pid = s.pid!;
      process.kill(pid, 'SIGKILL');
      await until(`start ${n + 1}`, () => started().length === n + 1 && s.pid !== undefined && s.pid !== pid);
      assert.equal(alive(pid), false);
    }
    assert.match(lines.join('\n'), /exited \(SIGKILL\) after \d+ ms; restart 1 in 150 ms/);
    assert.match(lines.join('\n'), /restart 2 in 300 ms/);
    // A run longer than stableAfterMs: back to the initial delay.
    await sleep(400);
    process.kill(s.pid!, 'SIGTERM');
    await until('start 4', () => started().length === 4);
    assert.match(
      lines.filter((l) => l.includes('exited')).pop()!,
      /exited \(SIGTERM\) after \d+(\.\d)? m?s; restart 3 in 150 ms/,
    );
  });

  it('stop() ends the running worker and starts nothing more', async () => {
    const { s, started } = child('stopped', 'setInterval(() => {}, 1000);', { initialBackoffMs: 50 });
    s.start();
    await until('the first start', () => started().length === 1 && s.pid !== undefined);
    const pid = s.pid!;
    await s.stop(2_000);
    assert.equal(alive(pid), false);
    assert.equal(s.pid, undefined);
    await sleep(300);
    assert.equal(started().length, 1, 'not restarted after stop');
    assert.equal(s.exits.length, 1);
    assert.throws(() => s.start(), /stopped/);
  });

  it('stop() during a pending restart cancels it', async () => {
    const { s, lines, started } = child('pending', 'process.exit(1);', { initialBackoffMs: 500 });
    s.start();
    await until('the first exit', () => s.exits.length === 1);
    assert.match(lines[0]!, /restart 1 in 500 ms/);
    await s.stop();
    await sleep(800);
    assert.equal(started().length, 1, 'the pending restart was cancelled');
  });

  it('stop() kills a worker that ignores SIGTERM after the grace period', async () => {
    const ignoring = path.join(dir, 'stubborn.ignoring');
    const { s, started } = child(
      'stubborn',
      `process.on('SIGTERM', () => {}); require('fs').writeFileSync(${JSON.stringify(ignoring)}, ''); setInterval(() => {}, 1000);`,
    );
    s.start();
    await until('the first start', () => started().length === 1 && s.pid !== undefined);
    // It says so once its SIGTERM handler is installed.
    await until('the worker to ignore SIGTERM', () => fs.existsSync(ignoring));
    const pid = s.pid!;
    const t = Date.now();
    await s.stop(300);
    assert.ok(Date.now() - t >= 300);
    assert.equal(alive(pid), false);
    assert.equal(s.exits[0]!.signal, 'SIGKILL');
  });
});
