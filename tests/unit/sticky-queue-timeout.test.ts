/** HV_STICKY_QUEUE_TIMEOUT_MS (worker/config.ts): the worker's sticky queue schedule-to-start timeout. */
import assert from 'node:assert/strict';
import { stickyQueueTimeoutFromEnv } from '../../worker/config';

describe('HV_STICKY_QUEUE_TIMEOUT_MS', () => {
  it("unset or empty: the SDK's default", () => {
    assert.equal(stickyQueueTimeoutFromEnv({}), undefined);
    assert.equal(stickyQueueTimeoutFromEnv({ HV_STICKY_QUEUE_TIMEOUT_MS: '' }), undefined);
  });

  it('milliseconds', () => {
    assert.equal(stickyQueueTimeoutFromEnv({ HV_STICKY_QUEUE_TIMEOUT_MS: '1000' }), 1000);
  });

  it('refuses anything else, naming the variable', () => {
    for (const raw of ['0', '-5', '1.5', '10s', '3600001'])
      assert.throws(() => stickyQueueTimeoutFromEnv({ HV_STICKY_QUEUE_TIMEOUT_MS: raw }), /HV_STICKY_QUEUE_TIMEOUT_MS/);
  });
});
