/**
 * governTools on its own (src/client/aiSdk.ts, docs/AGENTS.md), against a session stand-in that records the
 * appends: the tool-to-action mapping, the tool's own execute and needsApproval never used, the calls of one
 * model step appended one at a time, a refusal turned into the model's tool error naming code and rule, and
 * the sets it refuses to wrap. End to end on a real server: tests/workflows/ai-sdk.test.ts.
 */
import assert from 'node:assert/strict';
import type { Tool, ToolSet } from 'ai';
import { governTools, governedTurn, GovernedToolError, TurnHandle, type SessionHandle } from '../../src/client';
import { HypervisorError } from '../../src/core/errors';

const alpha = 'did:mesh:alpha';

/** A session that opens one turn and answers each append after `delayMs`, or refuses it as `refuse` says. */
function standIn(refuse?: (actionId: string) => HypervisorError | undefined, delayMs = 5) {
  const appends: { actionId: string; input: unknown; agentDid: string }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let opened = 0;
  const session = {
    signedBy: () => session,
    openTurn: async (req: { agentDid: string }) => {
      opened++;
      return turnOf(req.agentDid);
    },
    appendStep: async (req: { actionId: string; input: unknown; agentDid: string }) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        await new Promise((r) => setTimeout(r, delayMs));
        const refusal = refuse?.(req.actionId);
        if (refusal) throw refusal;
        appends.push(req);
        const stepId = `step-${appends.length}`;
        return {
          sagaId: 'saga-1',
          stepId,
          digest: 'd',
          state: 'committed',
          ok: true,
          result: { ran: req.actionId },
          error: null,
        };
      } finally {
        inFlight--;
      }
    },
  } as unknown as SessionHandle;
  const turnOf = (agentDid: string) =>
    new TurnHandle(session, { sagaId: 'saga-1', workflowId: 'wf', agentDid, deadline: 0 }, {} as never);
  return {
    session,
    appends,
    turnOf,
    get maxInFlight() {
      return maxInFlight;
    },
    get opened() {
      return opened;
    },
  };
}

const ownTool = (ran: string[], name: string): Tool =>
  ({
    description: `the ${name} tool`,
    inputSchema: {} as never,
    needsApproval: true,
    execute: async () => ran.push(name),
  }) as unknown as Tool;

const call = (tools: ToolSet, name: string, input: unknown = {}) =>
  tools[name]!.execute!(input as never, { toolCallId: 'c', messages: [] });

describe('governTools: an AI SDK ToolSet as steps of a turn (docs/AGENTS.md)', () => {
  it("maps each tool to its action — its name, a map's entry, a function's answer — and never uses the tool's own execute or needsApproval", async () => {
    const ran: string[] = [];
    const s = standIn();
    const set = { read: ownTool(ran, 'read'), write: ownTool(ran, 'write') };
    const byName = governTools(set, { session: s.session, agent: alpha });
    const byMap = governTools(set, { session: s.session, agent: alpha, actions: { write: 'crm.write' } });
    const byFn = governTools(set, { session: s.session, agent: alpha, actions: (t) => `mem.${t}` });
    for (const tools of [byName, byMap, byFn]) {
      assert.equal(tools.read!.needsApproval, undefined, "the tool's own approval is dropped");
      assert.equal(tools.read!.description, 'the read tool', 'the rest of the tool is kept');
      for (const t of ['read', 'write']) await call(tools, t, { n: 1 });
    }
    assert.deepEqual(
      s.appends.map((a) => a.actionId),
      ['read', 'write', 'read', 'crm.write', 'mem.read', 'mem.write'],
    );
    assert.deepEqual(s.appends[0]!.input, { n: 1 }, "the step's input is the tool's arguments");
    assert.ok(s.appends.every((a) => a.agentDid === alpha));
    assert.deepEqual(ran, [], "the tool's own execute never ran");
    assert.equal(s.opened, 3, 'each governed set opened one turn, on its first call');
    assert.equal((await governedTurn(byName))?.agentDid, alpha);
    assert.equal(await governedTurn({}), undefined);
  });

  it('appends the calls of one model step one at a time, in the order they were made', async () => {
    const s = standIn(undefined, 20);
    const tools = governTools({ a: ownTool([], 'a') }, { session: s.session, agent: alpha, turn: s.turnOf(alpha) });
    const answers = await Promise.all([1, 2, 3, 4].map((n) => call(tools, 'a', { n })));
    assert.equal(s.maxInFlight, 1, 'never two appends at once (TURN_BUSY)');
    assert.deepEqual(
      s.appends.map((a) => a.input),
      [{ n: 1 }, { n: 2 }, { n: 3 }, { n: 4 }],
    );
    assert.deepEqual(
      answers,
      [1, 2, 3, 4].map(() => ({ ran: 'a' })),
    );
    assert.equal(s.opened, 0, 'the given turn is used');
  });

  it("turns a refusal into the model's tool error naming the code and the rule, and the next call still goes", async () => {
    const s = standIn((actionId) =>
      actionId === 'wipe'
        ? new HypervisorError('STEP_DENIED', 'step step-2 (wipe) denied: ring 1 needs σ_eff > 0.95', {
            rule: 'sigma_too_low',
          })
        : undefined,
    );
    const tools = governTools(
      { wipe: ownTool([], 'wipe'), read: ownTool([], 'read') },
      { session: s.session, agent: alpha },
    );
    const err = await call(tools, 'wipe').then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof GovernedToolError);
    assert.equal(err.code, 'STEP_DENIED');
    assert.equal(err.rule, 'sigma_too_low');
    assert.equal(
      err.message,
      'wipe was refused by the hypervisor (STEP_DENIED, rule sigma_too_low): step step-2 (wipe) denied: ring 1 needs σ_eff > 0.95',
    );
    assert.deepEqual(await call(tools, 'read'), { ran: 'read' }, 'the queue goes on after a refusal');
  });

  it("refuses a provider-executed tool, another agent's turn, and keeps a tool named __proto__ a tool", async () => {
    const s = standIn();
    assert.throws(
      () =>
        governTools(
          { search: { type: 'provider', id: 'x.search', args: {} } as never },
          { session: s.session, agent: alpha },
        ),
      /run by the model's provider/,
    );
    assert.throws(
      () => governTools({}, { session: s.session, agent: alpha, turn: s.turnOf('did:mesh:beta') }),
      /is did:mesh:beta's, not did:mesh:alpha's/,
    );
    const odd = JSON.parse('{"__proto__": {"description": "odd"}}') as ToolSet;
    const tools = governTools(odd, { session: s.session, agent: alpha });
    assert.ok(Object.hasOwn(tools, '__proto__'));
    assert.equal(Object.getPrototypeOf(tools), Object.prototype);
    assert.deepEqual(await call(tools, '__proto__'), { ran: '__proto__' });
  });
});
