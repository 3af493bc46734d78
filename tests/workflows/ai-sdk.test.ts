/**
 * The AI SDK adapter (issue 21, SPEC §13, docs/AGENTS.md) end to end, offline, on real parts: a scripted model
 * (the AI SDK's MockLanguageModelV3) drives `generateText` over tools listed from the real
 * @modelcontextprotocol/server-memory through `@ai-sdk/mcp`, governed by `governTools`: each call is a step of
 * the agent's turn, run by the test worker's MCP executor (its own memory server, spawned over stdio) — never
 * by the agent's process, whose copy of the server only listed the tools. And over an in-process MCP server
 * (Streamable HTTP): a tool's error is the model's answer, and it recovers.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { generateText, stepCountIs, type ToolSet } from 'ai';
import { createMCPClient, type MCPClient } from '@ai-sdk/mcp';
import { Experimental_StdioMCPTransport } from '@ai-sdk/mcp/mcp-stdio';
import { governTools, governedTurn, type SessionHandle, type TurnHandle } from '../../src/client';
import { verifyTrail } from '../../src/core/audit';
import { canonicalJson, sha256Hex } from '../../src/core/hash';
import type { McpServerConfig } from '../../src/core/mcpServers';
import type { RequestOf } from '../../src/contract/messages';
import { testMcpServers } from '../helpers/env';
import { hypervisor, uniqueId } from '../helpers/hv';
import { callMcpTool, memoryServerConfig, pinsOf, startTestMcpServer } from '../helpers/mcpServers';
import { IDEMPOTENCY_META_KEY } from '../../activities/mcpTool';
import { SRE_WITNESSES } from '../helpers/sessions';
import { until, workflowTaskFailures } from '../adversarial/raw';
import { callTools, lastToolAnswers, say, scriptedModel } from '../../examples/agent/scriptedModel';

const alpha = 'did:mesh:alpha'; // σ 0.85: ring 2
const omega = 'did:mesh:omega'; // σ 0.97: ring 1, its irreversible calls need a quorum
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

const entity = (name: string) => ({ name, entityType: 'test', observations: ['made by the agent'] });
/** What the model read of a memory tool's answer: the MCP content's text (`@ai-sdk/mcp`'s toModelOutput), JSON. */
const seen = (answer: { output: unknown } | undefined) => JSON.parse((answer!.output as { text: string }[])[0]!.text);
const names = (graph: unknown) => (graph as { entities: { name: string }[] }).entities.map((e) => e.name).sort();

describe('the AI SDK adapter: a scripted agent over MCP tools, governed (issue 21)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  let server: string;
  let memory: { config: McpServerConfig & { command: string; args: string[] }; file: string };
  let agentSide: { client: MCPClient; file: string };
  let actions: RequestOf<'join'>['actions'];

  before(async () => {
    memory = memoryServerConfig() as typeof memory;
    server = uniqueId('memory').replace(/[^A-Za-z0-9_-]/g, '-');
    testMcpServers.set(server, memory.config);
    const pins = await pinsOf(memory.config);
    const mcp = (tool: string) => `mcp:${server}/${tool}#${pins.get(tool)}`;
    // As `hv tools import` proposes them (docs/MCP.md), under the tools' own names: the adapter's default mapping.
    actions = [
      { actionId: 'read_graph', readOnly: true, executeApi: mcp('read_graph') },
      {
        actionId: 'create_entities',
        reversibility: 'PARTIAL',
        executeApi: mcp('create_entities'),
        undoApi: `mcp:${server}/delete_entities?entityNames=input.entities[*].name#${pins.get('delete_entities')}`,
      },
      { actionId: 'delete_entities', reversibility: 'NONE', executeApi: mcp('delete_entities') },
    ];
    // The agent's own view of the server: another memory server, on a file of its own, that only lists tools.
    const file = path.join(path.dirname(memory.file), 'agent-side.jsonl');
    const client = await createMCPClient({
      transport: new Experimental_StdioMCPTransport({
        command: memory.config.command,
        args: memory.config.args,
        env: { MEMORY_FILE_PATH: file },
        stderr: 'ignore',
      }),
    });
    agentSide = { client, file };
  });
  after(async () => {
    await agentSide?.client.close();
    testMcpServers.delete(server);
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  async function session(agents: Record<string, number>, declared = actions): Promise<SessionHandle> {
    const hv = await hypervisor();
    const s = await hv.createSession({
      sessionId: uniqueId('ai-sdk'),
      creatorDid: 'did:mesh:admin',
      config: { sreWitnesses: SRE_WITNESSES },
    });
    for (const [agentDid, sigmaRaw] of Object.entries(agents)) await s.join({ agentDid, sigmaRaw, actions: declared });
    await s.activate();
    touched.push(s.handle.workflowId);
    return s;
  }

  /** The chain verifies, and each step of the turn is recorded as its agent's call of its action. */
  async function expectCallsInTrail(s: SessionHandle, turn: TurnHandle, calls: [string, string][]): Promise<void> {
    const { trail, verification } = await s.verifyAudit();
    assert.equal(verification.ok, true, JSON.stringify(verification));
    assert.equal(verifyTrail(JSON.parse(JSON.stringify(trail))).ok, true, 'the trail verifies offline');
    const snap = await turn.saga.state();
    for (const [stepId, actionId] of calls) {
      const change = trail.deltas
        .filter((d) => d.agentDid === turn.agentDid)
        .flatMap((d) => d.changes)
        .find((c) => c.path === `/sagas/${turn.sagaId}/steps/${stepId}` && c.operation === 'add');
      assert.ok(change, `the call ${stepId} is recorded`);
      const named = { actionId, agentDid: turn.agentDid, digest: snap.digests[stepId] };
      assert.equal(change.contentHash, sha256Hex(canonicalJson(named)), `${stepId} is recorded as ${actionId}`);
    }
  }

  it('a ring-2 agent reads (ring 3) and creates; its destructive call is denied and the model sees why; the aborted turn deletes what it made, in reverse, once each', async () => {
    await callMcpTool(memory.config, 'create_entities', { entities: [entity('hv-keep')] });
    const s = await session({ [alpha]: 0.85 });
    const tools = governTools(await agentSide.client.tools(), { session: s, agent: alpha });
    const model = scriptedModel((n, call) => {
      const answers = lastToolAnswers(call);
      if (answers.some((a) => a.error)) return say(`I give up: ${answers.find((a) => a.error)!.error}`);
      const script = [
        callTools(['read_graph', {}]),
        callTools(['create_entities', { entities: [entity('hv-a')] }]),
        callTools(['create_entities', { entities: [entity('hv-b')] }]),
        callTools(['delete_entities', { entityNames: ['hv-keep'] }]),
      ];
      return script[n] ?? say('done');
    });
    const result = await generateText({ model, tools, prompt: 'tidy the graph', stopWhen: stepCountIs(10) });
    const turn = (await governedTurn(tools))!;
    touched.push(turn.workflowId);

    // The read ran at ring 3 and answered the graph; each create answered its entity.
    const [, afterRead, afterA, afterB] = model.doGenerateCalls.map(lastToolAnswers);
    assert.equal(afterRead![0]!.error, null);
    assert.deepEqual(names(seen(afterRead![0])), ['hv-keep']);
    for (const [answers, made] of [
      [afterA, 'hv-a'],
      [afterB, 'hv-b'],
    ] as const)
      assert.deepEqual(names({ entities: seen(answers![0]) }), [made]);
    // The denial is a tool error in the next prompt, naming the rule: the loop went on, and the model stopped.
    const denied = lastToolAnswers(model.doGenerateCalls[4]!)[0]!;
    assert.equal(denied.toolName, 'delete_entities');
    assert.match(String(denied.error), /refused by the hypervisor \(STEP_DENIED, rule [a-z_]+\).*ring 1/);
    assert.equal(result.steps.length, 5);
    assert.match(result.text, /^I give up: /);
    assert.deepEqual(names(await callMcpTool(memory.config, 'read_graph')), ['hv-a', 'hv-b', 'hv-keep']);

    await turn.abort('the model gave up');
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'compensated', String(snap.error));
    assert.deepEqual(
      snap.saga.steps.map((st) => [st.stepId, st.actionId]),
      [
        ['step-1', 'read_graph'],
        ['step-2', 'create_entities'],
        ['step-3', 'create_entities'],
      ],
      'the denied call recorded no step',
    );
    assert.deepEqual(snap.compensationOrder, ['step-3', 'step-2'], 'undone in reverse, once each');
    assert.deepEqual(
      snap.saga.steps.slice(1).map((st) => st.state),
      ['compensated', 'compensated'],
    );
    assert.deepEqual(names(await callMcpTool(memory.config, 'read_graph')), ['hv-keep'], 'the entities are gone');
    assert.equal(fs.existsSync(agentSide.file), false, "the agent's process ran no tool");
    await expectCallsInTrail(s, turn, [
      ['step-1', 'read_graph'],
      ['step-2', 'create_entities'],
      ['step-3', 'create_entities'],
    ]);
  });

  it("a ring-1 agent's destructive call waits for a quorum of other agents, then runs", async () => {
    await callMcpTool(memory.config, 'create_entities', { entities: [entity('hv-old')] });
    const s = await session({ [omega]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const turn = await s.openTurn({ agentDid: omega, description: 'clean up' });
    touched.push(turn.workflowId);
    const tools: ToolSet = governTools(await agentSide.client.tools(), { session: s, agent: omega, turn });
    const model = scriptedModel((n, call) =>
      n === 0
        ? callTools(['delete_entities', { entityNames: ['hv-old'] }])
        : say(`deleted: ${JSON.stringify(lastToolAnswers(call)[0]?.output)}`),
    );
    const running = generateText({ model, tools, prompt: 'delete hv-old', stopWhen: stepCountIs(5) });
    await until(
      () => turn.saga.state(),
      (st) => st.waiting?.stepId === 'step-1',
      'the call to wait for approvals',
    );
    assert.ok(names(await callMcpTool(memory.config, 'read_graph')).includes('hv-old'), 'nothing ran yet');
    for (const approverDid of [beta, gamma]) await s.approve({ sagaId: turn.sagaId, stepId: 'step-1', approverDid });
    const result = await running;
    assert.equal(lastToolAnswers(model.doGenerateCalls[1]!)[0]!.error, null, 'the approved call answered');
    assert.match(result.text, /^deleted: /);
    assert.ok(!names(await callMcpTool(memory.config, 'read_graph')).includes('hv-old'), 'it ran');
    await turn.end();
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'completed', String(snap.error));
    await expectCallsInTrail(s, turn, [['step-1', 'delete_entities']]);
  });

  it("over an in-process MCP server: a tool's error is the model's to read, it recovers, and nothing is compensated", async () => {
    const inProcess = await startTestMcpServer();
    const name = uniqueId('tools').replace(/[^A-Za-z0-9_-]/g, '-');
    testMcpServers.set(name, inProcess.config());
    const agentTools = await createMCPClient({ transport: { type: 'http', url: inProcess.url } });
    try {
      const pins = await pinsOf(inProcess.config());
      const s = await session({ [alpha]: 0.85 }, [
        { actionId: 't.echo', readOnly: true, executeApi: `mcp:${name}/echo#${pins.get('echo')}` },
        { actionId: 't.fail', reversibility: 'PARTIAL', executeApi: `mcp:${name}/fail#${pins.get('fail')}` },
      ]);
      const tools = governTools(await agentTools.tools(), { session: s, agent: alpha, actions: (t) => `t.${t}` });
      const model = scriptedModel((n, call) => {
        if (n === 2) assert.ok(lastToolAnswers(call)[0]!.error, 'the model reads the failure');
        return (
          [callTools(['echo', { text: 'hello' }]), callTools(['fail', {}]), callTools(['echo', { text: 'recovered' }])][
            n
          ] ?? say('done')
        );
      });
      const result = await generateText({ model, tools, prompt: 'go', stopWhen: stepCountIs(10) });
      assert.equal(result.text, 'done');
      const failure = lastToolAnswers(model.doGenerateCalls[2]!)[0]!;
      assert.equal(failure.toolName, 'fail');
      assert.match(String(failure.error), /^fail \(step-2\) failed: .*the quota is exhausted/);
      const turn = (await governedTurn(tools))!;
      touched.push(turn.workflowId);
      await turn.end();
      const snap = await turn.result();
      assert.equal(snap.saga.state, 'completed', String(snap.error));
      assert.deepEqual(
        snap.saga.steps.map((st) => [st.actionId, st.state]),
        [
          ['t.echo', 'committed'],
          ['t.fail', 'failed'],
          ['t.echo', 'committed'],
        ],
      );
      assert.deepEqual(snap.compensationOrder, [], 'a tool error compensates nothing by itself');
      assert.deepEqual(
        inProcess.calls.map((c) => [c.tool, c.args.text, c.meta?.[IDEMPOTENCY_META_KEY]]),
        [
          ['echo', 'hello', `${turn.workflowId}/step-1/execute`],
          ['fail', undefined, `${turn.workflowId}/step-2/execute`],
          ['echo', 'recovered', `${turn.workflowId}/step-3/execute`],
        ],
        'the server saw each call once, from the worker',
      );
      await expectCallsInTrail(s, turn, [
        ['step-1', 't.echo'],
        ['step-2', 't.fail'],
        ['step-3', 't.echo'],
      ]);
    } finally {
      await agentTools.close();
      testMcpServers.delete(name);
      await inProcess.close();
    }
  });
});
