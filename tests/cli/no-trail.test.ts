/**
 * `hv audit` names the store it opened, and a store that holds nothing of the
 * session is said to be the wrong (or an empty) store — exit 6, NO_TRAIL —
 * never a tamper verdict (exit 4) (issue 23).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { activeSession } from '../helpers/sessions';
import { testEnv } from '../helpers/env';
import { uniqueId } from '../helpers/hv';
import { hv, json, show, tempDir } from './runHv';

const alpha = 'did:mesh:alpha';

describe('hv audit: the store it opened, and no trail in it (child process on a real server)', function () {
  this.timeout(180_000);

  it("names the worker's store when the trail verifies", async () => {
    const session = await activeSession({ [alpha]: 0.8 });
    const run = await hv(['audit', 'verify', session.sessionId]);
    assert.equal(run.code, 0, show(run));
    const store = path.join((await testEnv()).dataDir, 'audit.sqlite');
    assert.match(run.stdout, new RegExp(`store: +SQLite ${store.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.equal(json(await hv(['--json', 'audit', 'verify', session.sessionId])).store, `SQLite ${store}`);
  });

  it('an open session read from an empty store: NO_TRAIL naming the store, exit 6, not the tamper code', async () => {
    const session = await activeSession({ [alpha]: 0.8 });
    const empty = tempDir();
    for (const args of [
      ['audit', 'verify', session.sessionId],
      ['audit', 'prove', session.sessionId, '1'],
    ]) {
      const run = await hv(args, { HV_DATA_DIR: empty });
      assert.equal(run.code, 6, show(run));
      assert.match(run.stderr, /NO_TRAIL/);
      assert.match(
        run.stderr,
        new RegExp(`no trail for session ${session.sessionId} in the audit store SQLite ${empty}`),
      );
      assert.match(run.stderr, /says it stored \d+ deltas/);
      assert.match(run.stderr, /HV_DATA_DIR/);
      assert.doesNotMatch(run.stdout + run.stderr, /FAILED|tamper/i);
    }
  });

  it('a session neither in the store nor in Temporal: NO_TRAIL, exit 6', async () => {
    const run = await hv(['audit', 'verify', uniqueId('nowhere')], { HV_DATA_DIR: tempDir() });
    assert.equal(run.code, 6, show(run));
    assert.match(run.stderr, /no trail for session .* and Temporal has no open session of that id/);
  });
});
