import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HypervisorClient } from '../../src/client';
import { freePort } from '../../worker/ports';
import { startOwnHypervisor } from '../helpers/ownHypervisor';

/** A dev server of this test's own, so that stopping it disturbs no other test. */
async function withServerAndWorker<T>(
  dbFile: string,
  port: number,
  taskQueue: string,
  body: (hv: HypervisorClient) => Promise<T>,
): Promise<T> {
  const own = await startOwnHypervisor({ dbFile, port, taskQueue });
  try {
    return await body(own.hv);
  } finally {
    await own.stop();
  }
}

describe('durability: the dev server stopped and started again on the same database file', function () {
  this.timeout(180_000);

  it("keeps a session's state unchanged", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-restart-'));
    const dbFile = path.join(dir, 'temporal.db');
    const port = await freePort();
    const taskQueue = `hv-restart-${process.pid}`;
    try {
      const before = await withServerAndWorker(dbFile, port, taskQueue, async (hv) => {
        const session = await hv.createSession({ sessionId: 'restart-1', creatorDid: 'did:mesh:admin' });
        await session.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.9 });
        await session.join({ agentDid: 'did:mesh:beta', sigmaRaw: 0.55 });
        await session.vouch({ voucher: 'did:mesh:alpha', vouchee: 'did:mesh:beta' });
        await session.activate();
        return { summary: await session.summary(), audit: await session.audit() };
      });
      assert.equal(before.summary.state, 'active');
      const after = await withServerAndWorker(dbFile, port, taskQueue, async (hv) => {
        const session = hv.session('restart-1');
        return { summary: await session.summary(), audit: await session.audit() };
      });
      assert.deepEqual(after.summary, before.summary);
      assert.deepEqual(after.audit, before.audit);
      assert.equal(after.audit.verification.ok, true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
