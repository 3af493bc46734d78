/**
 * Attacks through the AI SDK adapter (issue 21, SPEC §11, §13): a runaway model is stopped by its budget
 * with exactly the budget's calls executed, counted at the MCP server; a tool that asks its own process for
 * approval gets none there — the session waits for other agents, the agent cannot approve itself, and a
 * rejection is the model's tool error; an agent process that governs tools as an agent whose key it does not
 * hold appends nothing; a kill during a slow MCP call cancels it at the server, the model reads it as a tool
 * error, and nothing of the killed agent runs after.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { generateText, stepCountIs, tool } from 'ai';
import { createMCPClient } from '@ai-sdk/mcp';
import { z } from 'zod';
import { governTools, governedTurn, HypervisorClient } from '../../src/client';
import { KeyRing, writeNewKeyFile } from '../../src/client/keys';
import { isHypervisorError } from '../../src/core/errors';
import { testEnv, testMcpServers } from '../helpers/env';
import { pinsOf, startTestMcpServer, type TestMcpServer } from '../helpers/mcpServers';
import { activeSession, asSre, SRE_WITNESSES } from '../helpers/sessions';
import { hypervisor } from '../helpers/hv';
import { callTools, lastToolAnswers, say, scriptedModel } from '../../examples/agent/scriptedModel';
import {
  ACTIONS,
  expectNoTrace,
  handlerCalls,
  mark,
  eventName,
  history,
  RawSession,
  rawClient,
  sessionWorkflowId,
  uid,
  until,
  workflowTaskFailures,
} from './raw';

const alpha = 'did:mesh:alpha';
const omega = 'did:mesh:omega';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

describe('attacks through the AI SDK adapter (issue 21)', function () {
  this.timeout(600_000);
  const touched: string[] = [];
  let tools: TestMcpServer;
  let server: string;

  before(async () => {
    tools = await startTestMcpServer();
    server = uid('tools').replace(/[^A-Za-z0-9_-]/g, '-');
    testMcpServers.set(server, tools.config());
  });
  after(async () => {
    testMcpServers.delete(server);
    await tools.close();
    assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed');
  });

  it('a runaway model calling a tool 10,000 times is stopped by its budget: the server ran exactly the budget', async () => {
    const budget = 5;
    const pins = await pinsOf(tools.config());
    const hv = await hypervisor();
    const session = await hv.createSession({
      sessionId: uid('ai-sdk-runaway'),
      creatorDid: 'did:mesh:admin',
      config: {
        sreWitnesses: SRE_WITNESSES,
        controls: { budgets: { agentCalls: budget }, rateLimits: { ring2: { perSecond: 1000, burst: 1000 } } },
      },
    });
    touched.push(session.handle.workflowId);
    const mutable = { actionId: 't.mutable', reversibility: 'PARTIAL' as const };
    await session.join({
      agentDid: alpha,
      sigmaRaw: 0.85,
      actions: [{ ...mutable, executeApi: `mcp:${server}/mutable#${pins.get('mutable')}` }],
    });
    await session.activate();
    // The tools as the model's process lists them, through @ai-sdk/mcp; the action of each: `t.<tool>`.
    const agentSide = await createMCPClient({ transport: { type: 'http', url: tools.url } });
    const governed = governTools(await agentSide.tools(), { session, agent: alpha, actions: (name) => `t.${name}` });
    const run = uid('run');
    const perStep = 100;
    // The model ignores every answer and calls again: 100 steps of 100 calls each.
    const model = scriptedModel(() =>
      callTools(
        ...Array.from(
          { length: perStep },
          (_, i) => ['mutable', { note: `${run}-${i}` }] as [string, Record<string, unknown>],
        ),
      ),
    );
    const started = Date.now();
    const result = await generateText({ model, tools: governed, prompt: 'loop', stopWhen: stepCountIs(100) });
    await agentSide.close();
    const turn = (await governedTurn(governed))!;
    touched.push(turn.workflowId);

    const outcomes = result.steps
      .flatMap((st) => st.content)
      .filter((c) => c.type === 'tool-result' || c.type === 'tool-error');
    assert.equal(outcomes.length, 10_000, 'the model called 10,000 times');
    const errors = outcomes.flatMap((c) => (c.type === 'tool-error' ? [String((c.error as Error).message)] : []));
    assert.equal(outcomes.length - errors.length, budget, "the budget's calls answered");
    assert.ok(
      errors.every((e) => /\(BUDGET_EXHAUSTED\)/.test(e)),
      errors.find((e) => !/BUDGET_EXHAUSTED/.test(e)),
    );
    const executed = tools.calls.filter((c) => c.tool === 'mutable' && String(c.args.note).startsWith(run));
    assert.equal(executed.length, budget, 'the MCP server ran exactly the budget');
    await turn.end();
    assert.equal((await turn.result()).saga.state, 'completed');
    console.log(`      (10,000 calls in ${Date.now() - started} ms)`);
  });

  it("a tool that asks its own process for approval gets none there: the session waits for other agents, the agent cannot approve itself, and a rejection is the model's tool error", async () => {
    const session = await activeSession({ [omega]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    touched.push(session.handle.workflowId);
    let ranHere = 0;
    const wire = tool({
      description: 'Wires money.',
      inputSchema: z.object({ amount: z.number() }),
      needsApproval: true, // the AI SDK would ask the agent's own caller: the adapter drops it
      execute: async () => ++ranHere,
    });
    const governed = governTools({ wire }, { session, agent: omega, actions: { wire: 'wire-money' } });
    const model = scriptedModel((n, call) =>
      n === 0 ? callTools(['wire', { amount: 100 }]) : say(`answered: ${lastToolAnswers(call)[0]?.error}`),
    );
    const running = generateText({ model, tools: governed, prompt: 'pay', stopWhen: stepCountIs(5) });
    const turn = await until(
      () => governedTurn(governed),
      (t) => t !== undefined,
      'the first call to open the turn',
    );
    touched.push(turn!.workflowId);
    await until(
      () => turn!.saga.state(),
      (st) => st.waiting?.stepId === 'step-1',
      'the call to wait for approvals',
    );
    const step = { sagaId: turn!.sagaId, stepId: 'step-1' };
    await assert.rejects(session.approve({ ...step, approverDid: omega }), (e) =>
      isHypervisorError(e, 'SELF_APPROVAL'),
    );
    await session.reject({ ...step, approverDid: beta, reason: 'not today' });
    const result = await running;
    assert.equal(ranHere, 0, "the tool's own execute never ran");
    assert.equal(result.steps.length, 2, 'no approval request came back to the caller: the loop went on');
    assert.deepEqual(
      result.steps[0]!.content.map((c) => c.type),
      ['tool-call', 'tool-error'],
    );
    assert.match(result.text, /answered: wire \(step-1\) failed: .*rejected by did:mesh:beta: not today/);
    assert.deepEqual(handlerCalls(turn!.workflowId), [], 'nothing ran on the worker either');
    await turn!.abort();
  });

  it('an agent process governing tools as an agent whose key it does not hold appends nothing (did:key)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-ai-sdk-'));
    const key = (name: string) => path.join(dir, `${name}.key`);
    const did = Object.fromEntries(['creator', 'alpha', 'mallory'].map((n) => [n, writeNewKeyFile(key(n)).did]));
    const env = await testEnv();
    const as = (name: string) =>
      new HypervisorClient(env.client, env.taskQueue, env.store, KeyRing.fromFiles([key(name)])).session(id);
    const id = uid('ai-sdk-didkey');
    await new HypervisorClient(env.client, env.taskQueue, env.store, KeyRing.fromFiles([key('creator')])).createSession(
      {
        sessionId: id,
        creatorDid: did.creator!,
        config: { identity: 'did:key', sreWitnesses: [did.creator!] },
      },
    );
    for (const name of ['alpha', 'mallory'])
      await as(name).join({ agentDid: did[name]!, sigmaRaw: 0.85, actions: ACTIONS as never });
    await as('creator').activate();
    const { client } = await rawClient();
    const raw = new RawSession(id, client.workflow.getHandle(sessionWorkflowId(id)), client);
    touched.push(raw.workflowId);

    // alpha's own turn, opened with its key; mallory's process governs tools as alpha, with mallory's key.
    const turn = await as('alpha').openTurn({ agentDid: did.alpha! });
    touched.push(turn.workflowId);
    const draft = tool({ inputSchema: z.object({}), execute: async () => 'ran in the agent process' });
    await until(
      () => history(client, turn.workflowId),
      (events) => eventName(events.at(-1)!) === 'EVENT_TYPE_TIMER_STARTED',
      'the turn to wait for its first step',
    );
    const m = await mark(raw, [turn.workflowId]);
    const forged = governTools({ draft }, { session: as('mallory'), agent: did.alpha!, turn });
    const model = scriptedModel((n, call) =>
      n === 0 ? callTools(['draft', {}]) : say(String(lastToolAnswers(call)[0]?.error)),
    );
    const result = await generateText({ model, tools: forged, prompt: 'x', stopWhen: stepCountIs(3) });
    assert.match(result.text, /refused by the hypervisor \((SIGNATURE_REQUIRED|WRONG_SIGNER)\)/);
    await expectNoTrace(m, {}, []);
    assert.deepEqual(handlerCalls(turn.workflowId), [], 'nothing ran');
    // With alpha's key (the signer option), the same tools are alpha's calls.
    const own = governTools(
      { draft },
      { session: as('mallory'), agent: did.alpha!, turn, signer: KeyRing.fromFiles([key('alpha')]) },
    );
    const ok = await generateText({
      model: scriptedModel((n) => (n === 0 ? callTools(['draft', {}]) : say('done'))),
      tools: own,
      prompt: 'x',
      stopWhen: stepCountIs(3),
    });
    const answered = ok.steps[0]!.content.find((c) => c.type === 'tool-result');
    assert.deepEqual(answered?.output, { done: 'step-1' }, "the worker's handler answered, not the agent's process");
    assert.deepEqual(handlerCalls(turn.workflowId), ['step-1']);
    await turn.end();
    assert.equal((await turn.result()).saga.state, 'completed');
  });

  it('a kill during a slow MCP call: the server sees the cancellation, the model reads it as a tool error, its next call is refused, and the turn is undone', async () => {
    const pins = await pinsOf(tools.config());
    const hv = await hypervisor();
    const session = await hv.createSession({
      sessionId: uid('ai-sdk-kill'),
      creatorDid: 'did:mesh:admin',
      config: { sreWitnesses: SRE_WITNESSES },
    });
    touched.push(session.handle.workflowId);
    await session.join({
      agentDid: alpha,
      sigmaRaw: 0.85,
      actions: [
        {
          actionId: 't.slow',
          reversibility: 'PARTIAL',
          executeApi: `mcp:${server}/slow#${pins.get('slow')}`,
          undoApi: `mcp:${server}/mutable?note=input.label#${pins.get('mutable')}`,
        },
      ],
    });
    await session.activate();
    const agentSide = await createMCPClient({ transport: { type: 'http', url: tools.url } });
    const governed = governTools(await agentSide.tools(), { session, agent: alpha, actions: (name) => `t.${name}` });
    const label = uid('slow');
    const model = scriptedModel((n, call) => {
      const error = lastToolAnswers(call)[0]?.error;
      if (n === 0) return callTools(['slow', { label }]);
      if (n === 1 && error) return callTools(['slow', { label: `${label}-again` }]);
      return say(String(error));
    });
    const running = generateText({ model, tools: governed, prompt: 'wait', stopWhen: stepCountIs(5) });
    await until(
      async () => tools.calls.filter((c) => c.args.label === label).length,
      (n) => n === 1,
      'the slow tool to be called',
    );
    const turn = (await governedTurn(governed))!;
    touched.push(turn.workflowId);
    await (await asSre(session)).kill({ agentDid: alpha, sreDid: SRE_WITNESSES[0]!, reason: 'runaway tool call' });
    const result = await running;
    await agentSide.close();
    assert.ok(
      tools.cancelled.some((c) => c.args.label === label),
      'the server saw notifications/cancelled',
    );
    assert.match(String(lastToolAnswers(model.doGenerateCalls[1]!)[0]!.error), /^slow \(step-1\) /);
    // Denied (its agent is killed), or not open (the session learned the turn's end first).
    assert.match(result.text, /^slow was refused by the hypervisor \((STEP_DENIED, rule agent_killed|TURN_NOT_OPEN)\)/);
    assert.deepEqual(
      tools.calls.filter((c) => c.args.label === `${label}-again`),
      [],
      'no call of the killed agent after the kill',
    );
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'compensated', String(snap.error));
    assert.deepEqual(snap.compensationOrder, ['step-1'], 'the cancelled call may have acted: undone');
    assert.deepEqual(
      tools.calls.filter((c) => c.tool === 'mutable' && c.args.note === label).length,
      1,
      'its declared undo ran once',
    );
  });
});
