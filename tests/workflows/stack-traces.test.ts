import assert from 'node:assert/strict';
import { hypervisor, uniqueId } from '../helpers/hv';
import { testEnv } from '../helpers/env';
import { sessionWorkflowId } from '../../src/contract/messageNames';
import { WORKFLOW_STACK_FRAMES } from '../../workflows/stackFrames';

/**
 * The workflow sandbox keeps WORKFLOW_STACK_FRAMES frames per stack (workflows/stackFrames.ts), as the SDK's promise
 * hook source-maps a stack for every promise workflow code creates. The Web UI's Stack Trace tab (the
 * `__stack_trace` query) must still say where a session waits, in the hypervisor's own sources.
 */
describe('stack traces of workflows in the sandbox', function () {
  this.timeout(60_000);

  it('name where a session waits, in its sources, with at most WORKFLOW_STACK_FRAMES frames each', async () => {
    const env = await testEnv();
    const hv = await hypervisor();
    const sessionId = uniqueId('stack');
    const session = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
    await session.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.85 });
    const trace = await env.client.workflow.getHandle(sessionWorkflowId(sessionId)).query<string>('__stack_trace');
    const stacks = trace.split(/\n\n+/).filter((s) => s.trim() !== '');
    assert.ok(stacks.length > 0, 'the session answers a stack trace');
    assert.match(trace, /\(?workflows\/session\/[\w/]+\.ts:\d+:\d+\)?/, 'a frame in the session sources');
    for (const stack of stacks) {
      const frames = stack.split('\n').filter((line) => /^\s*at /.test(line));
      assert.ok(frames.length <= WORKFLOW_STACK_FRAMES, `at most ${WORKFLOW_STACK_FRAMES} frames:\n${stack}`);
    }
  });
});
