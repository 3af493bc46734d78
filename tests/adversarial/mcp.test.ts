/**
 * Attacks on MCP tools (issue 21, SPEC §11). What a session declares is
 * unsigned config any client of the namespace can write; the worker decides
 * what it calls:
 *
 * - a session naming an MCP server the worker does not configure is refused,
 *   nothing sent anywhere;
 * - a Streamable HTTP server at a private address is refused unless the
 *   worker allows private addresses — before a byte is sent;
 * - a declaration looser than the tool's annotations (read-only for a tool
 *   that writes, reversible for a destructive one) is refused, the tool never
 *   called; so is a pin that does not match;
 * - malformed references are refused at join, naming the field.
 */
import assert from 'node:assert/strict';
import { testMcpServers } from '../helpers/env';
import { pinsOf, startTestMcpServer, type TestMcpServer } from '../helpers/mcpServers';
import { McpClients } from '../../activities/mcpClients';
import { DEFAULT_MAX_RESPONSE_BYTES } from '../../activities/toolPolicy';
import {
  ACTIONS,
  ATTACKER,
  expectSoundAudit,
  openSession,
  refused,
  sagaOutcome,
  uid,
  workflowTaskFailures,
} from './raw';

const alpha = 'did:mesh:alpha';
const sandboxed = 'did:mesh:sandboxed';

describe('adversarial: MCP tools (issue 21)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  let tools: TestMcpServer;
  let name: string;
  let pins: Map<string, string>;

  before(async () => {
    tools = await startTestMcpServer();
    name = uid('atk').replace(/[^A-Za-z0-9_-]/g, '-');
    testMcpServers.set(name, tools.config());
    pins = await pinsOf(tools.config());
  });
  after(async () => {
    testMcpServers.delete(name);
    await tools.close();
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  const ref = (tool: string, pin = pins.get(tool)) => `mcp:${name}/${tool}#${pin}`;
  const callsOf = (tool: string) => tools.calls.filter((c) => c.tool === tool).length;

  async function stepOutcome(agents: Record<string, { sigma: number; actions: unknown[] }>, step: unknown) {
    const session = await openSession(agents);
    touched.push(session.workflowId);
    const { sagaId, workflowId } = await session.startSaga({ steps: [step] });
    touched.push(workflowId);
    const snap = await sagaOutcome(session.saga(sagaId));
    return { session, snap, step: snap.saga.steps[0] };
  }

  it('a session naming a server the worker does not configure: refused, nothing sent', async () => {
    const requests = tools.requests;
    const { session, snap, step } = await stepOutcome(
      {
        [alpha]: {
          sigma: 0.85,
          actions: [
            ...ACTIONS,
            { actionId: 'ghost', reversibility: 'PARTIAL', executeApi: `mcp:ghost-server/echo#${'a'.repeat(64)}` },
          ],
        },
      },
      { actionId: 'ghost', agentDid: alpha, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 } },
    );
    assert.notEqual(snap.saga.state, 'completed');
    assert.match(String(step.error), /server "ghost-server" is not one this worker configures \(HV_MCP_SERVERS\)/);
    assert.ok(!step.outcomeUnknown, 'nothing was sent: nothing to compensate');
    assert.equal(tools.requests, requests, 'no MCP server was asked anything');
    await expectSoundAudit(session);
  });

  it('a Streamable HTTP server at a private address: refused before any request unless the worker allows private addresses', async () => {
    const policy = { origins: new Set<string>(), maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES };
    const strict = new McpClients(new Map([['s', tools.config()]]), { ...policy, allowPrivateAddresses: false });
    const requests = tools.requests;
    try {
      await refused(strict.listTools('s'), 'ToolAddressNotAllowed', /127\.0\.0\.1, which is loopback/);
      assert.equal(tools.requests, requests, 'the server received no request');
    } finally {
      await strict.close();
    }
    // The control: the same server, a worker that allows private addresses.
    const allowing = new McpClients(new Map([['s', tools.config()]]), { ...policy, allowPrivateAddresses: true });
    try {
      assert.ok((await allowing.listTools('s')).some((t) => t.name === 'echo'));
    } finally {
      await allowing.close();
    }
  });

  it('a declaration looser than the annotations: a destructive tool declared reversible is refused, never called', async () => {
    const { snap, step } = await stepOutcome(
      {
        [alpha]: {
          sigma: 0.85,
          actions: [...ACTIONS, { actionId: 'wipe', reversibility: 'FULL', executeApi: ref('wipe') }],
        },
      },
      { actionId: 'wipe', agentDid: alpha },
    );
    assert.notEqual(snap.saga.state, 'completed');
    assert.match(String(step.error), /looser than the tool's annotations: declared FULL, but the tool is destructive/);
    assert.ok(!step.outcomeUnknown);
    assert.equal(callsOf('wipe'), 0, 'the destructive tool was never called');
  });

  it('a declaration looser than the annotations: a writing tool declared read-only, run by a ring-3 agent, is refused', async () => {
    const { step } = await stepOutcome(
      {
        [sandboxed]: {
          sigma: 0.3,
          actions: [...ACTIONS, { actionId: 'sneaky-read', readOnly: true, executeApi: ref('mutable') }],
        },
      },
      { actionId: 'sneaky-read', agentDid: sandboxed },
    );
    assert.match(String(step.error), /declared readOnly, but the tool is not annotated readOnlyHint: true/);
    assert.equal(callsOf('mutable'), 0, 'the writing tool was never called');
  });

  it('a pin that is not the definition: refused as a changed definition, never called', async () => {
    const forged = 'b'.repeat(64);
    const { step } = await stepOutcome(
      {
        [alpha]: {
          sigma: 0.85,
          actions: [...ACTIONS, { actionId: 'forged', reversibility: 'PARTIAL', executeApi: ref('mutable', forged) }],
        },
      },
      { actionId: 'forged', agentDid: alpha, input: { note: 'x' } },
    );
    assert.ok(String(step.error).includes(`pinned ${forged}, now ${pins.get('mutable')}`), String(step.error));
    assert.equal(callsOf('mutable'), 0);
  });

  it('a later join cannot re-pin a declared MCP action (SPEC §11.8: one declaration path)', async () => {
    const session = await openSession(
      {
        [alpha]: {
          sigma: 0.85,
          actions: [...ACTIONS, { actionId: 'note', reversibility: 'PARTIAL', executeApi: ref('mutable') }],
        },
      },
      {},
      { activate: false },
    );
    touched.push(session.workflowId);
    const repinned = { actionId: 'note', reversibility: 'PARTIAL', executeApi: ref('mutable', 'c'.repeat(64)) };
    await refused(
      session.update('join', { agentDid: ATTACKER, sigmaRaw: 0.8, actions: [repinned] }),
      'INVALID_INPUT',
      /action note is already declared .* a later join cannot rebind it/,
    );
  });

  it('malformed MCP references are refused at join, naming the field', async () => {
    const session = await openSession({ [alpha]: 0.85 }, {}, { activate: false });
    touched.push(session.workflowId);
    const cases: [unknown, RegExp][] = [
      [{ actionId: 'a', executeApi: `mcp:${name}/echo` }, /executeApi: an MCP tool reference must end with #<sha256/],
      [{ actionId: 'a', executeApi: `mcp:${name}/echo#XYZ` }, /64 lowercase hex digits/],
      [{ actionId: 'a', executeApi: `mcp:bad server/echo#${'a'.repeat(64)}` }, /server name/],
      [
        { actionId: 'a', executeApi: `mcp:${name}/echo?text=input.text#${'a'.repeat(64)}` },
        /only an undoApi maps arguments/,
      ],
      [
        { actionId: 'a', executeApi: ref('echo'), undoApi: `mcp:${name}/echo?text=env.HOME#${'a'.repeat(64)}` },
        /must be input or result/,
      ],
    ];
    for (const [declaration, names] of cases) {
      await refused(
        session.update('join', { agentDid: 'did:mesh:late', sigmaRaw: 0.8, actions: [declaration] }),
        'INVALID_INPUT',
        names,
      );
    }
  });
});
