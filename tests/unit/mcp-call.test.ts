/**
 * One MCP tool call without Temporal (issue 21, activities/mcpTool.ts): the
 * refusals that need no saga (a retry of a tool not annotated idempotent, an
 * undo argument that is missing), an unreachable server, and the client pool
 * reconnecting after its stdio server died. Real servers: the in-process
 * McpServer and the memory server over stdio.
 */
import assert from 'node:assert/strict';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import type { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { McpClients } from '../../activities/mcpClients';
import { callMcpTool, type McpCall } from '../../activities/mcpTool';
import { DEFAULT_MAX_RESPONSE_BYTES, type ToolPolicy } from '../../activities/toolPolicy';
import type { StepContext } from '../../activities/handlers';
import { memoryServerConfig, pinsOf, startTestMcpServer, type TestMcpServer } from '../helpers/mcpServers';

const policy: ToolPolicy = {
  origins: new Set(),
  allowPrivateAddresses: true,
  maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
};

/** What a step activity hands a tool call: the parts callMcpTool reads. */
function stepContext(attempt: number, signal = new AbortController().signal): StepContext {
  return {
    idempotencyKey: `wf/step-1/execute`,
    workflowId: 'wf',
    sessionId: 's',
    sagaId: 'g',
    stepId: 'step-1',
    actionId: 'a',
    agentDid: 'did:mesh:alpha',
    attempt,
    activity: { cancellationSignal: signal, info: { startToCloseTimeoutMs: 30_000 }, heartbeat() {} },
  } as unknown as StepContext;
}

async function failure(call: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof ApplicationFailure, `an ApplicationFailure, got ${String(err)}`);
  return err;
}

describe('MCP tool calls (activities/mcpTool.ts, real servers, no Temporal)', function () {
  this.timeout(60_000);
  let server: TestMcpServer;
  let clients: McpClients;
  let pins: Map<string, string>;
  const call = (tool: string, extra: Partial<McpCall> = {}): McpCall => ({
    api: `mcp:t/${tool}#${pins.get(tool)}`,
    phase: 'execute',
    stepId: 'step-1',
    actionId: 'a',
    readOnly: false,
    reversibility: 'PARTIAL',
    ...extra,
  });

  before(async () => {
    server = await startTestMcpServer();
    clients = new McpClients(new Map([['t', server.config()]]), policy);
    pins = await pinsOf(server.config());
  });
  after(async () => {
    await clients.close();
    await server.close();
  });

  it('passes the idempotency key in _meta and returns {content}', async () => {
    const out = await callMcpTool(
      call('echo', { readOnly: true, reversibility: 'FULL', input: { text: 'hi' } }),
      stepContext(1),
      clients,
      policy,
    );
    assert.deepEqual(out, { content: [{ type: 'text', text: 'hi' }] });
    assert.equal(server.calls.at(-1)!.meta?.['dev.agent-hypervisor/idempotency-key'], 'wf/step-1/execute');
  });

  it('a second attempt of a tool not annotated idempotent is refused without a call; an idempotent one runs', async () => {
    const before = server.calls.length;
    const f = await failure(callMcpTool(call('mutable', { input: { note: 'x' } }), stepContext(2), clients, policy));
    assert.equal(f.type, 'McpToolNotIdempotent');
    assert.equal(f.nonRetryable, true);
    assert.equal(server.calls.length, before, 'nothing was called');
    await callMcpTool(
      call('echo', { readOnly: true, reversibility: 'FULL', input: { text: 'again' } }),
      stepContext(2),
      clients,
      policy,
    );
    assert.equal(server.calls.length, before + 1, 'a read-only tool is idempotent: its retry runs');
  });

  it('an undo whose mapped argument is missing is refused without a call; an input that is not an object too', async () => {
    const before = server.calls.length;
    const undo = await failure(
      callMcpTool(
        call('mutable', {
          phase: 'undo',
          api: `mcp:t/mutable?note=result.structuredContent.id#${pins.get('mutable')}`,
          input: {},
          result: { content: [] },
        }),
        stepContext(1),
        clients,
        policy,
      ),
    );
    assert.equal(undo.type, 'McpUndoArgumentMissing');
    assert.match(undo.message, /result\.structuredContent\.id: nothing at structuredContent/);
    const notObject = await failure(callMcpTool(call('mutable', { input: [1, 2] }), stepContext(1), clients, policy));
    assert.equal(notObject.type, 'InvalidStep');
    assert.equal(server.calls.length, before);
  });

  it('a server that does not answer: McpServerUnavailable, retryable, nothing called', async () => {
    const gone = await startTestMcpServer();
    const goneClients = new McpClients(new Map([['t', gone.config()]]), policy);
    await gone.close();
    try {
      const f = await failure(callMcpTool(call('echo', { readOnly: true }), stepContext(1), goneClients, policy));
      assert.equal(f.type, 'McpServerUnavailable');
      assert.equal(f.nonRetryable, false);
    } finally {
      await goneClients.close();
    }
  });

  it('a Streamable HTTP server answering 3xx: not followed, McpServerRedirect, its target never asked', async () => {
    const target = await startTestMcpServer();
    const redirector = http.createServer((req, res) => {
      req.resume();
      res.writeHead(307, { location: target.url }).end();
    });
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(redirector.address() as AddressInfo).port}/mcp`;
    const pool = new McpClients(new Map([['r', { url }]]), policy);
    try {
      const f = await failure(pool.listTools('r'));
      assert.equal(f.type, 'McpServerRedirect');
      assert.match(f.message, /answered 307 \(Location http:\/\/127\.0\.0\.1:\d+\/mcp\); redirects are not followed/);
      assert.equal(target.requests, 0, 'the redirect target was never asked');
    } finally {
      await pool.close();
      redirector.closeAllConnections();
      await new Promise<void>((r) => redirector.close(() => r()));
      await target.close();
    }
  });

  it('the pool connects again after its stdio server died', async () => {
    const { config } = memoryServerConfig();
    const pool = new McpClients(new Map([['m', config]]), policy);
    try {
      const first = await pool.client('m');
      const pid = (first.transport as StdioClientTransport).pid!;
      assert.ok(pid > 0);
      process.kill(pid, 'SIGKILL');
      // The closed connection is dropped; the next use starts the server again.
      let tools: unknown[] = [];
      for (let i = 0; i < 100 && tools.length === 0; i++) {
        tools = await pool.listTools('m').catch(() => []);
        if (tools.length === 0) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(tools.length > 0, 'the tools are listed again');
      const second = await pool.client('m');
      assert.notEqual(second, first);
      assert.notEqual((second.transport as StdioClientTransport).pid, pid);
    } finally {
      await pool.close();
    }
  });
});
