/**
 * Issue 24: a raw 3 MiB vfsWrite made the worker's rejection echo the request
 * (the update protocol's Rejection carries the rejected request), the server
 * refused that workflow task completion over its blob size limit, logged a
 * captured panic, and the client got FAILED_PRECONDITION "unexpected workflow
 * task failure". The server now refuses such an update at admission, before
 * it reaches the worker: `history.maxInFlightUpdatePayloads` (the dev server's
 * --dynamic-config-value, the cluster's dynamic config) is below the 2 MiB blob
 * limit. And the door's refusals never echo a request: their messages are
 * bounded whatever the input.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { MAX_UPDATE_PAYLOAD_BYTES } from '../../worker/devServer';
import { testEnv } from '../helpers/env';
import { SRE, acceptedUpdateIds, openSession, refused, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';

describe('oversized updates are refused at the frontend, and refusals never echo the request', function () {
  this.timeout(120_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it('a raw 3 MiB vfsWrite is refused with a clear error before it reaches the worker; the session goes on', async () => {
    const session = await openSession({ [alpha]: 0.8 });
    touched.push(session.workflowId);
    const huge = { agentDid: alpha, path: `/sessions/${session.id}/big.txt`, content: 'x'.repeat(3 * 1024 * 1024) };
    const updateId = `big-${randomUUID()}`;
    // A plain connection without the SDK's own retries (it retries RESOURCE_EXHAUSTED for ~40 s): the refusal at once.
    const env = await testEnv();
    const connection = await Connection.connect({ address: env.address, interceptors: [] });
    const handle = new Client({ connection, namespace: env.namespace }).workflow.getHandle(session.workflowId);
    const err = await handle
      .executeUpdate('vfsWrite', { args: [huge], updateId })
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      )
      .finally(() => connection.close());
    assert.ok(err, 'the 3 MiB update was accepted');
    const text = `${err.message} ${String((err as { cause?: unknown }).cause ?? '')}`;
    assert.match(
      text,
      /payload size of in-flight updates|RESOURCE_EXHAUSTED/i,
      `a clear refusal: ${text.slice(0, 300)}`,
    );
    assert.ok(text.length < 4096, 'the refusal does not echo the request');
    assert.doesNotMatch(text, /unexpected workflow task failure/i);
    // It never reached the workflow: not accepted, and (after) no workflow task failed.
    assert.ok(!(await acceptedUpdateIds(session.workflowId)).includes(updateId), 'the refused update left no history');
    console.log(`    refused: ${text.slice(0, 200)}`);
    // The session still takes requests.
    await session.update('vfsWrite', { agentDid: alpha, path: `/sessions/${session.id}/small.txt`, content: 'ok' });
    await until(
      () => session.summary(),
      (s) => s.files === 1,
      'the small write',
    );
  });

  it(`an update just under the server's limit (${MAX_UPDATE_PAYLOAD_BYTES} B) reaches the door, whose refusal is bounded and does not echo the input`, async () => {
    const session = await openSession({ [alpha]: 0.8 });
    touched.push(session.workflowId);
    const big = 'k'.repeat(600 * 1024);
    const file = `/sessions/${session.id}/a.txt`;
    // A key of 600 KiB (a strict schema: unrecognized), a DID of 600 KiB, a path of 600 KiB: each refused, none echoed.
    for (const [name, req] of [
      ['release', { agentDid: alpha, sreDid: SRE, [big]: 1 }],
      ['vfsWrite', { agentDid: `did:mesh:${big}`, path: file, content: 'x' }],
      ['vfsWrite', { agentDid: alpha, path: `${file}/${big}`, content: 'x' }],
    ] as const) {
      const failure = await refused(session.update(name, req), 'INVALID_INPUT');
      assert.ok(
        failure.message.length < 2048,
        `a bounded message (${failure.message.length} chars): ${failure.message.slice(0, 200)}`,
      );
      assert.ok(!failure.message.includes(big.slice(0, 1000)), 'the input is not echoed');
    }
    await session.update('vfsWrite', { agentDid: alpha, path: `/sessions/${session.id}/small.txt`, content: 'ok' });
  });
});
