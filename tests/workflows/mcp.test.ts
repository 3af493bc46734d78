/**
 * MCP tools as saga steps (issue 21), on real parts: the test Temporal
 * server and worker, the real @modelcontextprotocol/server-memory spawned over
 * stdio from node_modules, and an in-process McpServer over Streamable HTTP.
 */
import assert from 'node:assert/strict';
import { testMcpServers } from '../helpers/env';
import { memoryServerConfig, pinsOf, startTestMcpServer, type TestMcpServer } from '../helpers/mcpServers';
import { McpClients } from '../../activities/mcpClients';
import { IDEMPOTENCY_META_KEY } from '../../activities/mcpTool';
import { DEFAULT_MAX_RESPONSE_BYTES } from '../../activities/toolPolicy';
import type { McpServerConfig } from '../../src/core/mcpServers';
import { canonicalJson, sha256Hex } from '../../src/core/hash';

const HYPERVISOR_DID = 'did:hv:hypervisor';
import {
  ACTIONS,
  SRE,
  expectSoundAudit,
  openSession,
  sagaOutcome,
  uid,
  until,
  workflowTaskFailures,
} from '../adversarial/raw';

const alpha = 'did:mesh:alpha';
const policy = {
  origins: new Set<string>(),
  allowPrivateAddresses: true,
  maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
};

describe('MCP tools as saga steps (issue 21)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  let tools: TestMcpServer;
  let toolsName: string;
  let pins: Map<string, string>;

  before(async () => {
    tools = await startTestMcpServer();
    toolsName = uid('tools').replace(/[^A-Za-z0-9_-]/g, '-');
    testMcpServers.set(toolsName, tools.config());
    pins = await pinsOf(tools.config());
  });
  after(async () => {
    testMcpServers.delete(toolsName);
    await tools.close();
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  const action = (tool: string, extra: Record<string, unknown> = {}) => ({
    actionId: `t.${tool}`,
    reversibility: 'PARTIAL',
    executeApi: `mcp:${toolsName}/${tool}#${pins.get(tool)}`,
    ...extra,
  });

  async function runSaga(actions: unknown[], steps: unknown[]) {
    const session = await openSession({ [alpha]: { sigma: 0.85, actions: [...ACTIONS, ...actions] } });
    touched.push(session.workflowId);
    const { sagaId, workflowId } = await session.startSaga({ steps });
    touched.push(workflowId);
    return { session, sagaId, workflowId };
  }

  it('a saga with a memory-server step whose declared undo runs on compensation: the entities really are gone', async () => {
    const memory = memoryServerConfig();
    const name = uid('memory').replace(/[^A-Za-z0-9_-]/g, '-');
    testMcpServers.set(name, memory.config);
    try {
      const mp = await pinsOf(memory.config);
      // One entity made outside the saga: the read-back below sees the same graph, and the undo leaves it.
      await memoryCall(memory.config, 'create_entities', {
        entities: [{ name: 'hv-keep', entityType: 'test', observations: [] }],
      });
      const session = await openSession({
        [alpha]: {
          sigma: 0.85,
          actions: [
            ...ACTIONS,
            {
              actionId: 'memory.read_graph',
              readOnly: true,
              executeApi: `mcp:${name}/read_graph#${mp.get('read_graph')}`,
            },
            {
              actionId: 'memory.create_entities',
              reversibility: 'PARTIAL',
              executeApi: `mcp:${name}/create_entities#${mp.get('create_entities')}`,
              undoApi: `mcp:${name}/delete_entities?entityNames=input.entities[*].name#${mp.get('delete_entities')}`,
            },
          ],
        },
      });
      touched.push(session.workflowId);
      const entities = ['hv-alpha', 'hv-beta'].map((n) => ({ name: n, entityType: 'test', observations: ['made'] }));
      const { sagaId, workflowId } = await session.startSaga({
        steps: [
          { actionId: 'memory.read_graph', agentDid: alpha },
          { actionId: 'memory.create_entities', agentDid: alpha, input: { entities } },
          { actionId: 'draft', agentDid: alpha, input: { failAttempts: -1 } },
        ],
      });
      touched.push(workflowId);
      const snap = await sagaOutcome(session.saga(sagaId));
      const [read, create, draft] = snap.saga.steps;
      assert.ok(read.result?.structuredContent?.entities, `the read-only step ran: ${read.error}`);
      assert.equal(draft.state, 'failed');
      assert.deepEqual(
        create.result.structuredContent.entities.map((e: { name: string }) => e.name),
        ['hv-alpha', 'hv-beta'],
        'the entities were created',
      );
      assert.equal(create.state, 'compensated', `the create step was undone: ${create.error}`);
      assert.deepEqual(snap.saga.compensationOrder ?? snap.compensationOrder, ['step-2']);
      // Read back through a client of our own (a fresh process on the same file).
      const graph = (await memoryCall(memory.config, 'read_graph', {})) as { entities: { name: string }[] };
      assert.deepEqual(
        graph.entities.map((e) => e.name),
        ['hv-keep'],
        'delete_entities removed what create_entities made, and only that',
      );
      await expectSoundAudit(session);
    } finally {
      testMcpServers.delete(name);
    }
  });

  it('a tool whose definition changed after import is refused naming both hashes, having called nothing', async () => {
    const before = tools.calls.filter((c) => c.tool === 'mutable').length;
    const first = await runSaga(
      [action('mutable')],
      [{ actionId: 't.mutable', agentDid: alpha, input: { note: 'a' } }],
    );
    const ok = await sagaOutcome(first.session.saga(first.sagaId));
    assert.equal(ok.saga.state, 'completed', JSON.stringify(ok.saga.steps[0].error));
    const seen = tools.calls.filter((c) => c.tool === 'mutable');
    assert.equal(seen.length, before + 1);
    assert.equal(
      seen.at(-1)!.meta?.[IDEMPOTENCY_META_KEY],
      `${first.workflowId}/step-1/execute`,
      'the idempotency key travels',
    );

    tools.changeMutable();
    const pinned = pins.get('mutable')!;
    const now = (await pinsOf(tools.config())).get('mutable')!;
    assert.notEqual(now, pinned);
    const second = await runSaga(
      [action('mutable')],
      [
        {
          actionId: 't.mutable',
          agentDid: alpha,
          input: { note: 'b' },
          retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 },
        },
      ],
    );
    const snap = await sagaOutcome(second.session.saga(second.sagaId));
    const step = snap.saga.steps[0];
    assert.notEqual(snap.saga.state, 'completed');
    assert.ok(String(step.error).includes(`pinned ${pinned}, now ${now}`), String(step.error));
    assert.ok(!step.outcomeUnknown, 'nothing was called: nothing to compensate');
    assert.equal(
      tools.calls.filter((c) => c.tool === 'mutable').length,
      before + 1,
      'the changed tool was never called',
    );
    assert.deepEqual(step.toolDefinitionChanged, { tool: `${toolsName}/mutable`, pinned, current: now });

    // Its agent is quarantined by the session, from the saga's outcome; the quarantine's delta names both hashes.
    const restricted = await until(
      async () => (await second.session.summary()).controls.restricted as any[],
      (r) => r.some((x) => x.did === alpha),
      'the agent to be quarantined',
    );
    const { did: _did, ...quarantine } = restricted.find((x) => x.did === alpha);
    assert.equal(quarantine.kind, 'quarantine');
    assert.equal(quarantine.by, HYPERVISOR_DID);
    assert.ok(quarantine.reason.includes(`pinned ${pinned}, now ${now}`), quarantine.reason);
    const { trail } = await second.session.audit();
    const delta = trail.deltas.find((d) => d.changes.some((c) => c.path === `/controls/${alpha}`));
    assert.ok(delta, 'a delta records the quarantine');
    assert.equal(delta.agentDid, HYPERVISOR_DID);
    assert.equal(
      delta.changes[0]!.contentHash,
      sha256Hex(canonicalJson(quarantine)),
      'its content is the record naming both hashes',
    );
    await expectSoundAudit(second.session);
  });

  it('a slow tool is cancelled when its step is (the agent is killed): the server sees notifications/cancelled', async () => {
    const { session, sagaId } = await runSaga(
      [action('slow')],
      [{ actionId: 't.slow', agentDid: alpha, input: { label: 'long' } }],
    );
    await until(
      async () => tools.calls.filter((c) => c.tool === 'slow').length,
      (n) => n === 1,
      'the slow tool to be called',
    );
    await session.asSre('kill', { agentDid: alpha, sreDid: SRE, reason: 'runaway tool call' });
    await until(
      async () => tools.cancelled.length,
      (n) => n === 1,
      'the server to see the cancellation',
    );
    const snap = await sagaOutcome(session.saga(sagaId));
    const step = snap.saga.steps[0];
    assert.notEqual(step.state, 'committed');
    assert.equal(step.outcomeUnknown, true, 'a cancelled call may have acted');
    assert.equal(tools.cancelled[0]!.args.label, 'long');
  });

  it('a tool answering isError: the step fails once, known not to have acted', async () => {
    const { session, sagaId } = await runSaga(
      [action('fail')],
      [{ actionId: 't.fail', agentDid: alpha, retry: { maximumAttempts: 3, initialIntervalSeconds: 0.1 } }],
    );
    const snap = await sagaOutcome(session.saga(sagaId));
    const step = snap.saga.steps[0];
    assert.equal(step.state, 'failed');
    assert.match(String(step.error), /the quota is exhausted/);
    assert.ok(!step.outcomeUnknown, 'the tool answered: known not to have acted');
    assert.equal(tools.calls.filter((c) => c.tool === 'fail').length, 1, 'an error answer is not retried');
  });

  it("an answer past the worker's size limit fails the step, which may have acted", async () => {
    const { session, sagaId } = await runSaga(
      [action('big')],
      [{ actionId: 't.big', agentDid: alpha, input: { bytes: DEFAULT_MAX_RESPONSE_BYTES + 1024 } }],
    );
    const snap = await sagaOutcome(session.saga(sagaId));
    const step = snap.saga.steps[0];
    assert.notEqual(step.state, 'committed');
    // Its undo (none declared) failed after it: the step's own failure is the saga's.
    assert.match(
      JSON.stringify(snap),
      /answered \d+ bytes; this worker takes at most 262144 \(HV_TOOL_MAX_RESPONSE_BYTES\)/,
    );
    assert.equal(step.outcomeUnknown, true);
  });
});

/** A call of the memory server through a client of our own (a fresh process on the same file): its structured answer. */
async function memoryCall(config: McpServerConfig, tool: string, args: Record<string, unknown>): Promise<unknown> {
  const clients = new McpClients(new Map([['m', config]]), policy);
  try {
    const answer = await (await clients.client('m')).callTool({ name: tool, arguments: args });
    return answer.structuredContent;
  } finally {
    await clients.close();
  }
}
