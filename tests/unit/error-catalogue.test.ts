/** One error catalogue (issue 23): every code says what it means and what to do, and hv's hint is that text. */
import assert from 'node:assert/strict';
import { ERROR_CODES, ERRORS, HypervisorError } from '../../src/core/errors';
import { classify, EXIT } from '../../src/cli/errors';

const conn = { address: '127.0.0.1:7233', namespace: 'default', taskQueue: 'agent-hypervisor', timeoutSeconds: 20 };

describe('the error catalogue', () => {
  it('gives every code a meaning and something to do', () => {
    for (const code of ERROR_CODES) {
      assert.ok(ERRORS[code].means.length > 10, `${code}: what it means`);
      assert.ok(ERRORS[code].hint.length > 10, `${code}: what to do`);
    }
  });

  it("is where hv's hint for every rejection comes from", () => {
    for (const code of ERROR_CODES) {
      const err = classify(new HypervisorError(code, `refused: ${code}`), conn);
      assert.equal(err.exitCode, code === 'AUDIT_CHAIN_BROKEN' ? EXIT.AUDIT_FAILED : EXIT.REJECTED, code);
      assert.equal(err.code, code);
      assert.equal(err.hint, ERRORS[code].hint, `${code}: hv's hint is the catalogue's`);
    }
  });
});
