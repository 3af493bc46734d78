/**
 * Finding N3 of issue 24: SSRF through redirects (SPEC §11.4).
 *
 * HTTP tools followed redirects (fetch's default): an allowed origin answered
 * 302 to an internal host, the worker went there, and the internal body came
 * back as the step's result. And what the worker called was decided only by
 * the session's config, which any client of the namespace writes.
 *
 * Now: no redirect is followed; the worker calls only origins its operator
 * lists (HV_TOOL_ORIGINS); a host resolving to a private, loopback, … address
 * is refused unless the worker allows them (HV_TOOL_ALLOW_PRIVATE); and an
 * answer past the worker's size limit fails the step.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Worker } from '@temporalio/worker';
import { createHypervisorWorker } from '../../worker/worker';
import { allowTestToolOrigin, testEnv } from '../helpers/env';
import { DEFAULT_MAX_RESPONSE_BYTES } from '../../activities/toolPolicy';
import {
  ACTIONS,
  RawSession,
  SRE_WITNESSES,
  expectSoundAudit,
  httpTool,
  openSession,
  sagaOutcome,
  sessionWorkflowId,
  uid,
  workflowTaskFailures,
  type HttpTool,
} from './raw';

const alpha = 'did:mesh:alpha';
const SECRET = 'INTERNAL-ONLY-metadata-token-7f3a';

/** A loopback server answering with `answer`; it records each request. */
async function server(answer: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const requests: { method: string; path: string }[] = [];
  const closed: number[] = [];
  const srv = http.createServer((req, res) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '' });
    res.once('close', () => closed.push(Date.now()));
    req.resume();
    req.on('end', () => answer(req, res));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  return {
    base: `http://127.0.0.1:${port}`,
    port,
    requests,
    closed,
    posts: (path: string) => requests.filter((r) => r.method === 'POST' && r.path === path).length,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

/** An action whose execute and undo are HTTP endpoints under `base`. */
const httpAction = (actionId: string, base: string) => ({
  actionId,
  reversibility: 'FULL',
  executeApi: `${base}/execute`,
  undoApi: `${base}/undo`,
});

describe('N3 — SSRF through redirects', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  let internal: HttpTool;

  before(async () => {
    // The "internal" host: nobody lists it — not the worker, not a session.
    internal = await httpTool({ workerAllows: false, body: () => ({ secret: SECRET }) });
  });
  after(async () => {
    await internal.close();
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  it('(a) an allowed origin that redirects to an internal host: the step fails naming the Location, the internal host gets no request, its body is nowhere', async () => {
    const redirector = await server((req, res) => {
      if (req.url === '/undo')
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"undone":true}');
      res
        .writeHead(302, { location: `${internal.base}/latest/meta-data?${SECRET}`, 'content-type': 'text/plain' })
        .end(`REDIRECT-BODY ${SECRET}`);
    });
    allowTestToolOrigin(redirector.base);
    try {
      const session = await openSession(
        { [alpha]: { sigma: 0.85, actions: [...ACTIONS, httpAction('fetch-report', redirector.base)] } },
        { allowedToolOrigins: [redirector.base] },
      );
      touched.push(session.workflowId);
      const { sagaId, workflowId } = await session.startSaga({
        steps: [
          { actionId: 'fetch-report', agentDid: alpha, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 } },
        ],
      });
      touched.push(workflowId);
      const snap = await sagaOutcome(session.saga(sagaId));
      const step = snap.saga.steps[0];
      assert.notEqual(snap.saga.state, 'completed', 'the redirected step did not commit');
      assert.match(
        String(step.error),
        /answered 302 \(Location http:\/\/127\.0\.0\.1:\d+\/latest\/meta-data.*does not follow redirects/,
        String(step.error),
      );
      assert.equal(redirector.posts('/execute'), 1, 'a redirect is not retried');
      assert.deepEqual(internal.requests, [], 'the internal host received no request');
      const everything = JSON.stringify([snap, await session.summary(), (await session.audit()).trail]);
      assert.ok(
        !everything.includes('"secret"') && !everything.includes('REDIRECT-BODY'),
        'no body of the redirect or of its target is in the saga, the session or the trail',
      );
      // A POST answered with a redirect may have acted: it is compensated, at the declared undo.
      assert.equal(step.outcomeUnknown, true);
      assert.equal(redirector.posts('/undo'), 1);
      await expectSoundAudit(session);
    } finally {
      await redirector.close();
    }
  });

  it('(b) a session config allowing an origin the worker does not list: refused before any request, not retried', async () => {
    const unlisted = await httpTool({ workerAllows: false });
    try {
      const session = await openSession(
        { [alpha]: { sigma: 0.85, actions: [...ACTIONS, httpAction('post-anywhere', unlisted.base)] } },
        { allowedToolOrigins: [unlisted.base] },
      );
      touched.push(session.workflowId);
      const { sagaId, workflowId } = await session.startSaga({
        steps: [
          { actionId: 'post-anywhere', agentDid: alpha, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 } },
        ],
      });
      touched.push(workflowId);
      const snap = await sagaOutcome(session.saga(sagaId));
      const step = snap.saga.steps[0];
      assert.equal(step.state, 'failed');
      assert.match(
        String(step.error),
        new RegExp(`origin ${unlisted.base.replace(/[.:/]/g, '\\$&')} is not one this worker runs tools at`),
        String(step.error),
      );
      assert.equal(step.attempts, 1, 'refused once, not retried');
      assert.ok(!step.outcomeUnknown, 'nothing was sent: the step did not act, nothing to compensate');
      assert.deepEqual(unlisted.requests, [], 'the worker made no request to the unlisted origin');
    } finally {
      await unlisted.close();
    }
  });

  it('(c) a tool whose host resolves to a loopback address, on a worker that does not allow private addresses: refused, the tool gets no request', async () => {
    const env = await testEnv();
    const tool = await httpTool({ workerAllows: false });
    // Listed by the worker and the session by name: only the address it resolves to is wrong.
    const origin = `http://localhost:${new URL(tool.base).port}`;
    const taskQueue = `${env.taskQueue}-strict-tools`;
    let worker: Worker | undefined;
    let running: Promise<void> | undefined;
    try {
      worker = await createHypervisorWorker({
        connection: env.nativeConnection,
        namespace: env.namespace,
        taskQueue,
        store: env.store,
        retentionSchedule: false,
        toolPolicy: {
          origins: new Set([origin]),
          allowPrivateAddresses: false,
          maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
        },
      });
      running = worker.run();
      const id = uid('n3');
      const handle = await env.client.workflow.start('sessionWorkflow', {
        taskQueue,
        workflowId: sessionWorkflowId(id),
        args: [
          {
            sessionId: id,
            creatorDid: 'did:mesh:admin',
            config: { sreWitnesses: SRE_WITNESSES, allowedToolOrigins: [origin] },
          },
        ],
      });
      const session = new RawSession(id, handle, env.client);
      touched.push(session.workflowId);
      await session.update('join', {
        agentDid: alpha,
        sigmaRaw: 0.85,
        actions: [...ACTIONS, httpAction('call-local', origin)],
      });
      await session.update('activate');
      const { sagaId, workflowId } = await session.startSaga({
        steps: [
          { actionId: 'call-local', agentDid: alpha, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 } },
        ],
      });
      touched.push(workflowId);
      const snap = await sagaOutcome(session.saga(sagaId));
      const step = snap.saga.steps[0];
      assert.equal(step.state, 'failed');
      assert.match(
        String(step.error),
        /localhost resolves to (127\.0\.0\.1|::1), which is (IPv4-mapped )?loopback .* does not call tools at private addresses/,
        String(step.error),
      );
      assert.equal(step.attempts, 1);
      assert.deepEqual(tool.requests, [], 'the tool at the loopback address received no request');
    } finally {
      worker?.shutdown();
      await running;
      await tool.close();
    }
  });

  it("(d) an answer larger than the worker's limit fails the step: the worker stops reading and drops the connection", async () => {
    let written = 0;
    const big = await server((req, res) => {
      if (req.url === '/undo')
        return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"undone":true}');
      // An endless answer (capped at 32 MiB so an old worker ends too), no Content-Length.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"padding":"');
      const chunk = 'x'.repeat(64 * 1024);
      const pump = () => {
        while (!res.destroyed && written < 32 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        if (!res.destroyed) res.end('"}');
      };
      pump();
    });
    allowTestToolOrigin(big.base);
    try {
      const session = await openSession(
        { [alpha]: { sigma: 0.85, actions: [...ACTIONS, httpAction('fetch-big', big.base)] } },
        { allowedToolOrigins: [big.base] },
      );
      touched.push(session.workflowId);
      const { sagaId, workflowId } = await session.startSaga({
        steps: [{ actionId: 'fetch-big', agentDid: alpha, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 } }],
      });
      touched.push(workflowId);
      const snap = await sagaOutcome(session.saga(sagaId));
      const step = snap.saga.steps[0];
      assert.notEqual(snap.saga.state, 'completed');
      assert.match(
        String(step.error),
        new RegExp(`answered more than ${DEFAULT_MAX_RESPONSE_BYTES} bytes`),
        String(step.error),
      );
      assert.equal(big.posts('/execute'), 1, 'a too large answer is not retried');
      assert.ok(
        written < 32 * 1024 * 1024,
        `the worker dropped the connection before the tool had written it all (${written} bytes written)`,
      );
      assert.ok(!JSON.stringify(snap).includes('xxxxxxxx'), 'no part of the answer is in the saga');
      assert.equal(step.outcomeUnknown, true, 'the tool answered 200: it acted, and is compensated');
    } finally {
      await big.close();
    }
  });
});
