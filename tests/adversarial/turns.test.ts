/**
 * Attacks on open sagas, an agent's turn (SPEC §13, §11): every request of a turn is the agent's own,
 * signed by it in a did:key session and decided on the session's state. Another agent cannot append to,
 * end or abort my turn; an unsigned append leaves no history; a closed turn takes no step; a step over
 * the agent's ring is denied at the door and the agent is told why; a runaway loop of appends is stopped
 * by the budget with exactly the budget's calls executed; a forged push or an outsider's claim changes
 * nothing the session did not decide.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { HypervisorClient, type SessionHandle, type TurnHandle } from '../../src/client';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';
import { KeyRing, writeNewKeyFile } from '../../src/client/keys';
import { testEnv } from '../helpers/env';
import { activeSession } from '../helpers/sessions';
import {
  ACTIONS,
  eventName,
  expectNoTrace,
  expectSoundAudit,
  handlerCalls,
  history,
  mark,
  RawSession,
  rawClient,
  sessionWorkflowId,
  uid,
  until,
  workflowTaskFailures,
} from './raw';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-turns-'));
const NAMES = ['creator', 'sre', 'alpha', 'beta'] as const;
type Name = (typeof NAMES)[number];
const did = {} as Record<Name, string>;
const file = (name: Name) => path.join(dir, `${name}.key`);

/** The session as a client holding the key files of `names` sees it. */
async function as(sessionId: string, ...names: Name[]): Promise<SessionHandle> {
  const env = await testEnv();
  return new HypervisorClient(env.client, env.taskQueue, env.store, KeyRing.fromFiles(names.map(file))).session(
    sessionId,
  );
}

const refusedAs = async (p: Promise<unknown>, code: ErrorCode, names?: RegExp) => {
  const err = await p.then(
    () => assert.fail(`accepted; expected ${code}`),
    (e: unknown) => e,
  );
  assert.ok(isHypervisorError(err, code), `expected ${code}, got ${String(err)}`);
  if (names) assert.match(err.message, names);
  return err;
};

describe('attacks on turns, open sagas (SPEC §13, §11)', function () {
  this.timeout(180_000);
  const touched: string[] = [];
  let id: string;
  let raw: RawSession;

  before(async () => {
    for (const name of NAMES) did[name] = writeNewKeyFile(file(name)).did;
    const env = await testEnv();
    id = uid('adv-turns');
    const creator = new HypervisorClient(env.client, env.taskQueue, env.store, KeyRing.fromFiles([file('creator')]));
    await creator.createSession({
      sessionId: id,
      creatorDid: did.creator,
      config: { identity: 'did:key', sreWitnesses: [did.sre] },
    });
    for (const [name, sigmaRaw] of [
      ['alpha', 0.85],
      ['beta', 0.8],
    ] as const)
      await (await as(id, name)).join({ agentDid: did[name], sigmaRaw, actions: ACTIONS as never });
    await (await as(id, 'creator')).activate();
    const { client } = await rawClient();
    raw = new RawSession(id, client.workflow.getHandle(sessionWorkflowId(id)), client);
    touched.push(raw.workflowId);
  });

  after(async () => {
    assert.deepEqual(await workflowTaskFailures(touched, { unhandledCommand: 'tally' }), [], 'no workflow task failed');
    await expectSoundAudit(raw, []);
  });

  /** alpha's new turn, once its saga waits for a step (a durable timer, its deadline): so a mark sees it still. */
  async function openAlphaTurn(): Promise<TurnHandle> {
    const turn = await (await as(id, 'alpha')).openTurn({ agentDid: did.alpha });
    touched.push(turn.workflowId);
    await idle(turn);
    return turn;
  }
  async function idle(turn: TurnHandle): Promise<void> {
    const { client } = await rawClient();
    await until(
      () => history(client, turn.workflowId),
      (events) => eventName(events.at(-1)!) === 'EVENT_TYPE_TIMER_STARTED',
      `turn ${turn.sagaId} to wait for its next step`,
    );
  }

  it('another agent cannot append to, end or abort my turn, and its attempts leave no trace; nor can it sign as me', async () => {
    const turn = await openAlphaTurn();
    const m = await mark(raw, [turn.workflowId]);
    const beta = await as(id, 'beta');
    const mine = { sagaId: turn.sagaId };
    await refusedAs(
      beta.appendStep({ ...mine, agentDid: did.beta, actionId: 'draft' }),
      'NOT_TURN_AGENT',
      /alpha|is did:key/,
    );
    await refusedAs(beta.endTurn({ ...mine, agentDid: did.beta }), 'NOT_TURN_AGENT');
    await refusedAs(beta.abortTurn({ ...mine, agentDid: did.beta }), 'NOT_TURN_AGENT');
    // Naming alpha, signed by beta only (beta holds no key of alpha): the signature alpha's DID needs is missing.
    await assert.rejects(
      beta.appendStep({ ...mine, agentDid: did.alpha, actionId: 'draft' }),
      (e) => isHypervisorError(e) && ['SIGNATURE_REQUIRED', 'WRONG_SIGNER'].includes(e.code),
    );
    await expectNoTrace(m, {}, []);
    assert.deepEqual(handlerCalls(turn.workflowId), [], 'nothing ran');
    // The turn is still alpha's, whole.
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true);
    await turn.end();
    assert.equal((await turn.result()).saga.state, 'completed');
  });

  it('an unsigned append in a did:key session is refused and leaves no history', async () => {
    const turn = await openAlphaTurn();
    const m = await mark(raw, [turn.workflowId]);
    const failure = await raw
      .update('appendStep', { sagaId: turn.sagaId, agentDid: did.alpha, actionId: 'draft' })
      .then(
        () => assert.fail('an unsigned append was accepted'),
        (e: { cause?: { type?: string } }) => e.cause,
      );
    assert.equal(failure?.type, 'SIGNATURE_REQUIRED');
    await expectNoTrace(m, {}, []);
    assert.deepEqual(handlerCalls(turn.workflowId), []);
    await turn.abort();
  });

  it('a turn ended or aborted takes no more steps, ends no more, and the refusals leave no trace', async () => {
    const ended = await openAlphaTurn();
    assert.equal((await ended.append({ actionId: 'draft' })).ok, true);
    await ended.end();
    const aborted = await openAlphaTurn();
    await aborted.abort('gave up');
    await Promise.all([ended.result(), aborted.result()]);
    await until(
      () => raw.sagaRecords(),
      (sagas) => [ended.sagaId, aborted.sagaId].every((s) => sagas.find((g) => g.sagaId === s)?.state !== 'running'),
      'both turns to end',
    );
    const m = await mark(raw, [ended.workflowId, aborted.workflowId]);
    for (const turn of [ended, aborted]) {
      await refusedAs(turn.append({ actionId: 'publish' }), 'TURN_NOT_OPEN', /not open/);
      await refusedAs(turn.end(), 'TURN_NOT_OPEN');
      await refusedAs(turn.abort(), 'TURN_NOT_OPEN');
    }
    await expectNoTrace(m, {}, []);
    assert.deepEqual(handlerCalls(ended.workflowId), ['step-1']);
    assert.deepEqual(handlerCalls(aborted.workflowId), []);
  });

  it('an oversized step, a declared saga and an unknown saga are refused by name, leaving no trace', async () => {
    const turn = await openAlphaTurn();
    const alpha = await as(id, 'alpha');
    const declared = await alpha.startSaga({ steps: [{ actionId: 'draft', agentDid: did.alpha }] });
    touched.push(declared.handle.workflowId);
    await declared.result();
    await until(
      () => raw.sagaRecords(),
      (sagas) => sagas.find((g) => g.sagaId === declared.sagaId)?.state === 'completed',
      'the session to learn the declared saga ended',
    );
    const m = await mark(raw, [turn.workflowId]);
    await refusedAs(turn.append({ actionId: 'draft', input: { blob: 'x'.repeat(20_000) } }), 'INVALID_INPUT', /input/);
    await refusedAs(
      alpha.appendStep({ sagaId: declared.sagaId, agentDid: did.alpha, actionId: 'draft' }),
      'NOT_A_TURN',
    );
    await refusedAs(alpha.endTurn({ sagaId: 'no-such-saga', agentDid: did.alpha }), 'SAGA_NOT_FOUND');
    await expectNoTrace(m, {}, []);
    await turn.abort();
  });

  it("a step over the agent's ring is denied, and the agent is told which rule: nothing runs and no step is recorded", async () => {
    const turn = await (await as(id, 'beta')).openTurn({ agentDid: did.beta });
    touched.push(turn.workflowId);
    await idle(turn);
    const m = await mark(raw, [turn.workflowId]);
    // wire-money is irreversible (ring 1: σ_eff > 0.95 and consensus); reconfigure is admin (ring 0).
    await refusedAs(turn.append({ actionId: 'wire-money' }), 'STEP_DENIED', /ring 1/);
    await refusedAs(turn.append({ actionId: 'reconfigure' }), 'STEP_DENIED', /ring 0|SRE witness/);
    await refusedAs(turn.append({ actionId: 'launch-missiles' }), 'STEP_DENIED', /launch-missiles/);
    // The breach detector counted them (SPEC §12), so they passed the door; nothing else moved.
    const { client } = await rawClient();
    assert.equal(
      (await history(client, turn.workflowId)).length,
      m.events.get(turn.workflowId),
      'the saga was not woken',
    );
    const { trail } = await raw.audit();
    assert.equal(trail.deltaCount, m.deltaCount, 'no delta: no step was recorded');
    assert.deepEqual(handlerCalls(turn.workflowId), []);
    assert.deepEqual((await raw.sagaRecords()).find((g) => g.sagaId === turn.sagaId).steps, []);
    // The turn goes on: the model may recover.
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true);
    await turn.end();
    assert.equal((await turn.result()).saga.state, 'completed');
  });

  it('a runaway of appends aimed above its ring trips the breaker: the agent is quarantined (SPEC §12)', async () => {
    const session = await activeSession({ 'did:mesh:alpha': 0.85 });
    const turn = await session.openTurn({ agentDid: 'did:mesh:alpha' });
    touched.push(session.handle.workflowId, turn.workflowId);
    const rules: string[] = [];
    for (let i = 0; i < 8; i++)
      rules.push(
        await turn.append({ actionId: 'wire-money' }).then(
          () => 'ran',
          (e: unknown) => (isHypervisorError(e) ? `${e.code}:${String(e.details.rule)}` : String(e)),
        ),
      );
    assert.ok(!rules.includes('ran'), 'no over-ring step ran');
    assert.ok(
      rules.includes('STEP_DENIED:agent_quarantined'),
      `the breaker quarantined the agent: ${rules.join(', ')}`,
    );
    const summary = await session.summary();
    assert.deepEqual(
      summary.controls.restricted.filter((r) => r.did === 'did:mesh:alpha').map((r) => r.kind),
      ['breaker'],
    );
    // Quarantined: read-only actions only.
    await refusedAs(turn.append({ actionId: 'draft' }), 'STEP_DENIED', /quarantine/);
    assert.deepEqual(handlerCalls(turn.workflowId), []);
    await turn.abort();
  });

  it("a forged kill pushed to the turn's saga and an outsider's claim of its step change nothing the session did not decide", async () => {
    const turn = await openAlphaTurn();
    const { client } = await rawClient();
    const saga = client.workflow.getHandle(turn.workflowId);
    const alphaView = { did: did.alpha, sigmaRaw: 0, bondSum: 0, ringCap: 3, active: false, restriction: 2 };
    await saga.signal('restrict', { agents: [alphaView] });
    // The saga asks its session, which killed nobody: the turn goes on.
    assert.equal((await turn.append({ actionId: 'draft' })).ok, true);
    // An outsider claims the next step the moment it is appended: the saga still runs it, once.
    const appended = await raw
      .update('appendStep', {
        sagaId: turn.sagaId,
        agentDid: did.alpha,
        actionId: 'publish',
      })
      .catch((e: { cause?: { type?: string } }) => e.cause?.type);
    assert.equal(appended, 'SIGNATURE_REQUIRED', 'the outsider cannot append');
    const next = (await as(id, 'alpha')).send('appendStep', {
      sagaId: turn.sagaId,
      agentDid: did.alpha,
      actionId: 'publish',
    });
    const appendedStep = await next;
    const { stepId, digest } = appendedStep;
    await raw.update('claimStep', { sagaId: turn.sagaId, stepId, digest }).catch(() => undefined);
    // A direct step (docs/TURNS.md): its agent brings it to the saga — here twice.
    for (let i = 0; i < 2; i++)
      assert.equal(
        (await saga.executeUpdate('takeStep', { args: [appendedStep.direct] })) ? true : false,
        true,
        'the step is answered',
      );
    await until(
      async () => handlerCalls(turn.workflowId),
      (c) => c.includes(stepId),
      'the step to run',
    );
    await turn.end();
    const snap = await turn.result();
    assert.equal(snap.saga.state, 'completed', String(snap.error));
    assert.deepEqual(handlerCalls(turn.workflowId), ['step-1', 'step-2'], 'each step ran once');
  });

  it('a runaway of openTurn is refused past config.turns.maxOpenPerAgent, leaving no trace', async () => {
    const session = await activeSession({ 'did:mesh:alpha': 0.85 }, { turns: { maxOpenPerAgent: 2 } });
    const rawSession = new RawSession(session.sessionId, session.handle, (await rawClient()).client);
    touched.push(session.handle.workflowId);
    const turns: TurnHandle[] = [];
    for (let i = 0; i < 2; i++) turns.push(await session.openTurn({ agentDid: 'did:mesh:alpha' }));
    touched.push(...turns.map((t) => t.workflowId));
    const m = await mark(rawSession);
    for (let i = 0; i < 20; i++)
      await refusedAs(session.openTurn({ agentDid: 'did:mesh:alpha' }), 'TOO_MANY_TURNS', /maxOpenPerAgent/);
    await expectNoTrace(m, {}, []);
    await turns[0]!.end();
    await turns[0]!.result();
    await until(
      () => session.sagas(),
      (sagas) => sagas.find((g) => g.sagaId === turns[0]!.sagaId)?.state === 'completed',
      'the session to learn the end',
    );
    const another = await session.openTurn({ agentDid: 'did:mesh:alpha' });
    for (const t of [turns[1]!, another]) await t.abort();
  });

  it('a runaway loop of appends is stopped by the budget: executed calls equal the budget', async () => {
    const budget = 5;
    const session = await activeSession(
      { 'did:mesh:alpha': 0.85 },
      { controls: { budgets: { agentCalls: budget }, rateLimits: { ring2: { perSecond: 1000, burst: 1000 } } } },
    );
    const turn = await session.openTurn({ agentDid: 'did:mesh:alpha' });
    touched.push(session.handle.workflowId, turn.workflowId);
    const refusals: string[] = [];
    let answered = 0;
    // The model ignores every error and calls again, 300 times.
    for (let i = 0; i < 300; i++) {
      try {
        await turn.append({ actionId: 'draft', stepId: `call-${i}` });
        answered++;
      } catch (err) {
        refusals.push(isHypervisorError(err) ? err.code : String(err));
      }
    }
    assert.equal(answered, budget);
    assert.equal(handlerCalls(turn.workflowId).length, budget, 'executed calls equal the budget');
    assert.deepEqual([...new Set(refusals)], ['BUDGET_EXHAUSTED']);
    assert.equal(refusals.length, 300 - budget);
    await turn.end();
    assert.equal((await turn.result()).saga.state, 'completed');
  });
});
