/**
 * `npm run example:agent` (docs/AGENTS.md): an AI SDK agent governed by the hypervisor, offline. It starts a
 * Temporal dev server and a worker of its own (in a temporary directory), configures the real
 * @modelcontextprotocol/server-memory on the worker, and lets two scripted models (no API key, no network)
 * call the server's tools through `governTools`:
 *
 * - alpha (ring 2) reads the graph, creates two entities, then tries to delete one it did not make: the
 *   session denies it and the model reads why; alpha gives up, the turn aborts, and the entities it made are
 *   deleted by their declared undo, in reverse.
 * - omega (ring 1) deletes an entity: the call waits until two other agents approve it, then runs.
 *
 * Prints each turn's steps and outcome, and verifies the audit chain.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, DefaultLogger, makeTelemetryFilterString } from '@temporalio/worker';
import { generateText, stepCountIs, type StepResult, type ToolSet } from 'ai';
import { createMCPClient } from '@ai-sdk/mcp';
import { Experimental_StdioMCPTransport } from '@ai-sdk/mcp/mcp-stdio';
import { McpClients } from '../../activities/mcpClients';
import { DEFAULT_MAX_RESPONSE_BYTES } from '../../activities/toolPolicy';
import { governTools, governedTurn, HypervisorClient, type SessionHandle } from '../../src/client';
import { proposeAction, type ToolDefinition } from '../../src/core/mcp';
import type { McpServerConfig } from '../../src/core/mcpServers';
import { openAuditStore } from '../../src/store';
import { loadHypervisorKey } from '../../src/store/treeHeads';
import { PROJECT_ROOT } from '../../worker/config';
import { startDevServer } from '../../worker/devServer';
import { freePort } from '../../worker/ports';
import { createHypervisorWorker } from '../../worker/worker';
import { callTools, lastToolAnswers, say, scriptedModel } from './scriptedModel';

const ALPHA = 'did:mesh:alpha'; // σ 0.85: ring 2
const OMEGA = 'did:mesh:omega'; // σ 0.97: ring 1 — its irreversible calls need a quorum of others
const APPROVERS = ['did:mesh:beta', 'did:mesh:gamma'];
const SERVER = 'memory';
const toolPolicy = {
  origins: new Set<string>(),
  allowPrivateAddresses: false,
  maxResponseBytes: DEFAULT_MAX_RESPONSE_BYTES,
};
const entity = (name: string) => ({ name, entityType: 'person', observations: ['met at the example'] });

const log = (line = '') => console.log(line);
const short = (v: unknown, n = 90) => {
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
};

/** What a tool answered, as its text says it (an MCP answer's first text content, compact JSON when it is JSON). */
function answered(output: unknown): string {
  const text = (output as { content?: { text?: unknown }[] } | undefined)?.content?.[0]?.text;
  if (typeof text !== 'string') return short(output);
  try {
    return short(JSON.parse(text));
  } catch {
    return short(text);
  }
}

/** Each model step as it finishes: the calls it made and what each answered. */
function printStep(step: StepResult<ToolSet>): void {
  for (const c of step.content) {
    if (c.type === 'tool-result') log(`  ✓ ${c.toolName} ${short(c.input, 60)} → ${answered(c.output)}`);
    if (c.type === 'tool-error')
      log(`  ✗ ${c.toolName} ${short(c.input, 60)} → ${short((c.error as Error).message, 400)}`);
    if (c.type === 'text') log(`  model: "${c.text}"`);
  }
}

async function main(): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-example-agent-'));
  const memoryScript = path.join(PROJECT_ROOT, 'node_modules/@modelcontextprotocol/server-memory/dist/index.js');
  const memory: McpServerConfig = {
    command: process.execPath,
    args: [memoryScript],
    env: { MEMORY_FILE_PATH: path.join(dir, 'memory.jsonl') },
    stderr: 'ignore',
  };
  log('Starting a Temporal dev server and a worker (memory MCP server on the worker) …');
  const server = await startDevServer(
    { port: await freePort(), uiPort: await freePort(), dbFile: path.join(dir, 'temporal.db'), headless: true },
    console.error, // what fetching the Temporal CLI says, the first time
  );
  const mcp = new McpClients(new Map([[SERVER, memory]]), toolPolicy);
  const store = await openAuditStore({ dataDir: dir });
  const connection = await NativeConnection.connect({ address: server.address });
  const taskQueue = 'hv-example-agent';
  const worker = await createHypervisorWorker({
    connection,
    namespace: 'default',
    taskQueue,
    store,
    mcp,
    toolPolicy,
    retentionSchedule: false,
    hypervisorKey: loadHypervisorKey({ dataDir: dir }),
  });
  // The agent's side: the tools as the model sees them, listed through @ai-sdk/mcp (never run from here).
  const agentSide = await createMCPClient({
    transport: new Experimental_StdioMCPTransport({
      command: process.execPath,
      args: [memoryScript],
      env: { MEMORY_FILE_PATH: path.join(dir, 'agent-side.jsonl') },
      stderr: 'ignore',
    }),
  });
  // The client reads trails from the store the worker writes to.
  const hv = new HypervisorClient(
    new Client({ connection: await Connection.connect({ address: server.address }) }),
    taskQueue,
    store,
  );
  try {
    await worker.runUntil(async () => {
      const session = await governedSession(hv, mcp);
      await mcp
        .client(SERVER)
        .then((c) => c.callTool({ name: 'create_entities', arguments: { entities: [entity('seed')] } }));
      const tools = await agentSide.tools();
      const actions = (tool: string) => `${SERVER}.${tool}`; // the actions `hv tools import` names

      log(`\nalpha (ring 2) tidies the graph:`);
      const alphaTools = governTools(tools, {
        session,
        agent: ALPHA,
        actions,
        openTurn: { description: 'tidy the graph' },
      });
      const alphaModel = scriptedModel((n, call) => {
        const refused = lastToolAnswers(call).find((a) => a.error);
        if (refused) return say('I may not delete what I did not make: I give up.');
        const script = [
          callTools(['read_graph', {}]),
          callTools(['create_entities', { entities: [entity('ada')] }]),
          callTools(['create_entities', { entities: [entity('grace')] }]),
          callTools(['delete_entities', { entityNames: ['seed'] }]),
        ];
        return script[n] ?? say('done');
      });
      await generateText({
        model: alphaModel,
        tools: alphaTools,
        prompt: 'tidy the graph',
        stopWhen: stepCountIs(10),
        onStepFinish: printStep,
      });
      const alphaTurn = (await governedTurn(alphaTools))!;
      await alphaTurn.abort('the model gave up');
      const aborted = await alphaTurn.result();
      log(
        `  turn ${alphaTurn.sagaId} aborted → ${aborted.saga.state}; undone in reverse: ${aborted.compensationOrder.join(', ')}`,
      );
      log(`  the graph now holds: ${(await graph(mcp)).join(', ')}`);

      log(`\nomega (ring 1) deletes "seed": two other agents must approve`);
      const omegaTurn = await session.openTurn({ agentDid: OMEGA, description: 'delete seed' });
      const omegaTools = governTools(tools, { session, agent: OMEGA, actions, turn: omegaTurn });
      const omegaModel = scriptedModel((n) =>
        n === 0 ? callTools(['delete_entities', { entityNames: ['seed'] }]) : say('seed is deleted.'),
      );
      const running = generateText({
        model: omegaModel,
        tools: omegaTools,
        prompt: 'delete seed',
        stopWhen: stepCountIs(5),
        onStepFinish: printStep,
      });
      for (;;) {
        const st = await omegaTurn.saga.state();
        if (st.waiting?.stepId === 'step-1') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      log(`  step-1 waits for approvals; the graph still holds: ${(await graph(mcp)).join(', ')}`);
      for (const approverDid of APPROVERS) {
        await session.approve({ sagaId: omegaTurn.sagaId, stepId: 'step-1', approverDid });
        log(`  ${approverDid} approves step-1 (through the session)`);
      }
      await running;
      await omegaTurn.end();
      log(`  turn ${omegaTurn.sagaId} ended → ${(await omegaTurn.result()).saga.state}`);
      log(`  the graph now holds: ${(await graph(mcp)).join(', ') || 'nothing'}`);

      const { verification, trail } = await session.verifyAudit();
      log(
        `\nAudit: ${trail.deltas.length} deltas, chain ${verification.ok ? 'verifies' : `BROKEN: ${JSON.stringify(verification)}`}`,
      );
    });
  } finally {
    await agentSide.close();
    await hv.close();
    await mcp.close();
    await store.close();
    await connection.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A session whose agents declare the memory server's tools as `hv tools import` proposes them (docs/MCP.md). */
async function governedSession(hv: HypervisorClient, mcp: McpClients): Promise<SessionHandle> {
  const defs = (await mcp.listTools(SERVER)) as ToolDefinition[];
  const def = (name: string) => defs.find((d) => d.name === name)!;
  const deleteRef = proposeAction(SERVER, def('delete_entities')).executeApi;
  const undo = deleteRef.replace('#', '?entityNames=input.entities[*].name#');
  const actions = [
    proposeAction(SERVER, def('read_graph')),
    proposeAction(SERVER, def('create_entities'), undo),
    proposeAction(SERVER, def('delete_entities')),
  ].map(({ ring: _ring, retries: _retries, ...declared }) => declared);
  const session = await hv.createSession({
    sessionId: `agent-${Date.now().toString(36)}`,
    creatorDid: 'did:mesh:admin',
  });
  const agents: [string, number][] = [
    [ALPHA, 0.85],
    [OMEGA, 0.97],
    ...APPROVERS.map((a): [string, number] => [a, 0.8]),
  ];
  for (const [agentDid, sigmaRaw] of agents) await session.join({ agentDid, sigmaRaw, actions });
  await session.activate();
  return session;
}

async function graph(mcp: McpClients): Promise<string[]> {
  const answer = await (await mcp.client(SERVER)).callTool({ name: 'read_graph', arguments: {} });
  return ((answer.structuredContent as { entities: { name: string }[] }).entities ?? []).map((e) => e.name);
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
