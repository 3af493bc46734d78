/**
 * `npm run record:histories`: runs representative sessions and sagas on a
 * dev server of its own (free ports, temp database) with an in-process
 * worker, and writes their histories as JSON to tests/fixtures/histories/.
 * tests/workflows/replay.test.ts replays every one of them against the
 * current workflow code, so a change that would break running workflows
 * (a non-deterministic change) fails `npm test`.
 *
 * Re-record only on purpose (a deliberate, versioned change of the workflows):
 * the point of the fixtures is that they come from the code that ran before.
 *
 * Scenarios ("core"): a happy saga, a compensated saga, an escalated saga
 * (and the session that slashed for it), a session that continued as new
 * (both runs), a saga that waited for approvals, a saga cancelled mid-step.
 * ("controls", SPEC §12): a kill with a hand-off mid-step, an elevation that
 * expires under a running saga, a saga whose later step is rate-limited —
 * each saga and its session. ("turns", SPEC §13): an agent's turn ended after a tool's error, and one
 * aborted after two steps — each saga and their session. ("operator", SPEC §14): an SRE's retry of a saga
 * awaiting its operator, and a fork from step 3 of a compensated saga — each saga and their session. ("groups",
 * SPEC §14): a saga through an ANY group (a loser cancelled and undone) and an ALL group that fails, and its
 * session. ("start-input", issue 20): a saga started in format 2 — steps as requested, digests computed by
 * the saga — through a group whose ring-1 branch waits for approvals bound to those digests, its last step
 * claimed at its time (not leased at the start), and its session. (saga-approvals-before-index.json is not written
 * here: it is the approvals saga as it ran before waiting steps were indexed,
 * kept so that the patch which indexes them is checked against an old history.
 * Nor is session-before-controls.json: recorded on 8ddf870, the commit before
 * controls, so that the breaker's and default rates' patches are checked (N18).)
 *
 *   npm run record:histories                  every group
 *   npm run record:histories -- --only controls   one group: the others' fixtures stay as recorded
 *   npm run record:histories -- --only turns      the turns' fixtures alone
 *   npm run record:histories -- --only operator   the operator recovery and fork fixtures alone (SPEC §14)
 *   npm run record:histories -- --only groups     the parallel groups' fixtures alone (SPEC §14)
 *   npm run record:histories -- --only start-input   the format-2 start input's fixtures alone (issue 20)
 *   npm run record:histories -- --only format-3      the format-3 start input's fixtures alone (issue 20)
 *   npm run record:histories -- --only format-4      the format-4 start input's fixtures alone (issue 20)
 *   npm run record:histories -- --only format-5      the format-5 start input's fixtures alone (issue 20)
 *   npm run record:histories -- --only audit-batch-ref   a session whose audit batches go by reference, its
 *                                                        first read made not to chain (inline, patched) (issue 20)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { ApplicationFailure } from '@temporalio/activity';
import { registerStepHandler } from '../activities/handlers';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { createActivities } from '../activities';
import { auditActivities, queryOwnSession, type PendingBatchReader } from '../activities/audit';
import type { AuditBatch } from '../src/contract/auditBatch';
import { loadHypervisorKey } from '../src/store/treeHeads';
import { workflowBundle } from '../worker/worker';
import { HypervisorClient, type SessionHandle } from '../src/client';
import { SRE, SRE_SIGNER } from '../tests/helpers/sre';
import { startOwnHypervisor, type OwnHypervisor } from '../tests/helpers/ownHypervisor';

const OUT = path.resolve(__dirname, '..', 'tests', 'fixtures', 'histories');
const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const STEP = { executeApi: 'handler:rec.step', undoApi: 'handler:rec.step' };
const ACTIONS = [
  { actionId: 'draft', reversibility: 'FULL' as const, ...STEP },
  { actionId: 'read', readOnly: true, executeApi: 'handler:rec.read' },
  { actionId: 'draft-no-undo', reversibility: 'FULL' as const, executeApi: 'handler:rec.no-undo' },
  { actionId: 'publish', reversibility: 'FULL' as const, ...STEP },
  { actionId: 'wire-money', reversibility: 'NONE' as const, ...STEP },
];

function registerHandlers(): void {
  registerStepHandler('rec.step', {
    async execute(input, ctx) {
      const opts = (input ?? {}) as {
        fail?: boolean;
        failFirstRound?: boolean;
        failFirstAttempt?: boolean;
        delayMs?: number;
      };
      if (opts.delayMs) {
        for (let waited = 0; waited < opts.delayMs; waited += 100) {
          ctx.activity.heartbeat();
          await ctx.activity.sleep(100);
        }
      }
      if (opts.fail) throw ApplicationFailure.nonRetryable('refused on purpose', 'RecordedFailure');
      if (opts.failFirstAttempt && ctx.attempt === 1) throw ApplicationFailure.retryable('failed once on purpose');
      // SPEC §14: fails until an operator's retry runs it under a new round of its key.
      if (opts.failFirstRound && !ctx.idempotencyKey.endsWith('/2'))
        throw ApplicationFailure.nonRetryable('refused until retried', 'RecordedFailure');
      return { ok: true };
    },
    async undo() {
      return { undone: true };
    },
  });
  registerStepHandler('rec.no-undo', {
    async execute() {
      return { ok: true };
    },
  });
  registerStepHandler('rec.read', {
    readOnly: true,
    async execute() {
      return { read: true };
    },
  });
}

async function main(): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  registerHandlers();
  const own = await startOwnHypervisor({ taskQueue: 'hv-record' });
  const { hv } = own;
  const written: string[] = [];
  const save = async (name: string, workflowId: string, runId?: string) => {
    const history = await hv.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const file = path.join(OUT, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(JSON.parse(historyToJSON(history)), null, 1) + '\n');
    written.push(
      `${path.relative(process.cwd(), file)} (${history.events?.length} events, ${fs.statSync(file).size} bytes)`,
    );
  };
  const only = process.argv.includes('--only')
    ? process.argv[process.argv.indexOf('--only') + 1]!.split(',')
    : [
        'core',
        'controls',
        'turns',
        'operator',
        'groups',
        'start-input',
        'format-3',
        'format-4',
        'format-5',
        'audit-batch-ref',
      ];
  const want = (group: string) => only.includes(group);
  const until = async (what: string, ok: () => Promise<boolean>) => {
    for (const deadline = Date.now() + 30_000; !(await ok()); await new Promise((r) => setTimeout(r, 50))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    }
  };
  const session = async (
    sessionId: string,
    agents: Record<string, number>,
    extra: { maxUpdatesPerRun?: number; config?: Record<string, unknown> } = {},
  ): Promise<SessionHandle> => {
    const s = await hv.createSession({
      sessionId,
      creatorDid: 'did:mesh:admin',
      maxUpdatesPerRun: extra.maxUpdatesPerRun,
      config: { sreWitnesses: [SRE], ...extra.config },
    });
    for (const [agentDid, sigmaRaw] of Object.entries(agents)) await s.join({ agentDid, sigmaRaw, actions: ACTIONS });
    await s.activate();
    return s;
  };
  try {
    fs.mkdirSync(OUT, { recursive: true });
    if (want('core')) await core();
    if (want('controls')) await controls();
    if (want('turns')) await turns();
    if (want('operator')) await operatorScenario((id, agents) => session(id, agents), hv, save, until);
    if (want('groups')) await groups();
    if (want('start-input')) await startInput();
    if (want('format-3')) await format3();
    if (want('format-4')) await format4();
    if (want('format-5')) await format5();
    if (want('audit-batch-ref')) await auditBatchRef(own, save, until);
    for (const line of written) console.log(line);
  } finally {
    await own.stop();
  }

  async function core(): Promise<void> {
    // Happy, compensated and escalated sagas in one session, which is then terminated.
    const s1 = await session('rec-sagas', { [alpha]: 0.85, [beta]: 0.8 });
    const happy = await s1.startSaga({
      sagaId: 'happy',
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: beta },
      ],
    });
    if ((await happy.result()).saga.state !== 'completed') throw new Error('happy saga did not complete');
    const compensated = await s1.startSaga({
      sagaId: 'compensated',
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: beta, input: { fail: true } },
      ],
    });
    if ((await compensated.result()).saga.state !== 'compensated') throw new Error('saga did not compensate');
    const escalated = await s1.startSaga({
      sagaId: 'escalated',
      steps: [
        { actionId: 'draft-no-undo', agentDid: beta },
        { actionId: 'publish', agentDid: alpha, input: { fail: true } },
      ],
    });
    if ((await escalated.result()).saga.state !== 'escalated') throw new Error('saga did not escalate');
    // Wait for the session to have applied the escalation's slash before terminating.
    for (const deadline = Date.now() + 30_000; ;) {
      const p = await s1.participant(beta);
      if (p && p.sigmaRaw === 0) break;
      if (Date.now() > deadline) throw new Error("the session did not slash the escalated step's agent");
      await new Promise((r) => setTimeout(r, 100));
    }
    await s1.terminate();
    await save('saga-happy', happy.handle.workflowId);
    await save('saga-compensated', compensated.handle.workflowId);
    await save('saga-escalated', escalated.handle.workflowId);
    await save('session-sagas-escalation-terminated', s1.handle.workflowId);

    // A saga whose ring 1 step waits for two approvals.
    const s2 = await session('rec-approvals', { [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const approved = await s2.startSaga({
      sagaId: 'approved',
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 600 }],
    });
    for (const deadline = Date.now() + 30_000; ;) {
      if ((await approved.state()).waiting) break;
      if (Date.now() > deadline) throw new Error('the ring 1 step never waited at its gate');
      await new Promise((r) => setTimeout(r, 100));
    }
    await s2.approve({ sagaId: 'approved', stepId: 'step-1', approverDid: beta });
    await s2.approve({ sagaId: 'approved', stepId: 'step-1', approverDid: gamma });
    if ((await approved.result()).saga.state !== 'completed') throw new Error('approved saga did not complete');
    await s2.terminate();
    await save('saga-approvals', approved.handle.workflowId);

    // A session that continues as new after 10 updates, then is terminated in its second run.
    const s3 = await session('rec-continue', { [alpha]: 0.85 }, { maxUpdatesPerRun: 10 });
    const firstRunId = (await s3.handle.describe()).runId;
    for (let i = 0; i < 9; i++) await s3.checkAction({ agentDid: alpha, actionId: 'draft' });
    for (const deadline = Date.now() + 30_000; ;) {
      if ((await s3.summary()).runs >= 2) break;
      if (Date.now() > deadline) throw new Error('the session did not continue as new');
      await new Promise((r) => setTimeout(r, 100));
    }
    await s3.checkAction({ agentDid: alpha, actionId: 'publish' });
    await s3.terminate();
    await save('session-continued-as-new-run1', s3.handle.workflowId, firstRunId);
    await save('session-continued-as-new-run2', s3.handle.workflowId);

    // A saga cancelled mid-step: what may have acted is compensated, the session learns it.
    const s4 = await session('rec-cancel', { [alpha]: 0.85 });
    const cancelled = await s4.startSaga({
      sagaId: 'cancelled',
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: alpha, input: { delayMs: 8000 } },
      ],
    });
    for (const deadline = Date.now() + 30_000; ;) {
      if ((await cancelled.state()).saga.steps[1]!.state === 'executing') break;
      if (Date.now() > deadline) throw new Error('the cancelled saga never reached its second step');
      await new Promise((r) => setTimeout(r, 50));
    }
    await cancelled.handle.cancel();
    const cancelledResult = await cancelled.result();
    if (cancelledResult.saga.state !== 'compensated')
      throw new Error(`the cancelled saga did not compensate: ${JSON.stringify(cancelledResult)}`);
    await save('saga-cancelled', cancelled.handle.workflowId);
  }

  async function groups(): Promise<void> {
    // SPEC §14: a group decided by its first success — a branch failed, a slower one is cancelled through its
    // heartbeats and undone — then a group that cannot meet ALL: the saga walks back through both groups.
    const g = await session('rec-groups', { [alpha]: 0.85, [beta]: 0.8 });
    const grouped = await g.startSaga({
      sagaId: 'grouped',
      steps: [
        { actionId: 'draft', agentDid: alpha },
        {
          parallel: [
            { actionId: 'draft', agentDid: beta, input: { delayMs: 30_000 }, timeoutSeconds: 60 },
            { actionId: 'publish', agentDid: alpha, input: { fail: true } },
            { actionId: 'publish', agentDid: beta, input: { delayMs: 300 } },
          ],
          policy: 'ANY',
        },
        {
          parallel: [
            { actionId: 'draft', agentDid: alpha },
            { actionId: 'publish', agentDid: beta, input: { delayMs: 300, fail: true } },
          ],
          policy: 'ALL',
        },
      ],
    });
    const snap = await grouped.result();
    const order = snap.compensationOrder.join();
    if (snap.saga.state !== 'compensated' || order !== 'g1.b1,g2.b1,g1.b3,step-1')
      throw new Error(`the grouped saga did not compensate through its groups: ${snap.saga.state} ${order}`);
    await until('the session to learn it', async () => (await g.sagas()).every((x) => x.state !== 'running'));
    await g.terminate();
    await save('saga-parallel-groups', grouped.handle.workflowId);
    await save('session-parallel-groups', g.handle.workflowId);
  }

  async function startInput(): Promise<void> {
    // Issue 20: format 2. Ring 2 (beta's) holds one start: `last` is not leased at the start and claims at its time.
    const f = await session(
      'rec-format-2',
      { [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 },
      { config: { controls: { rateLimits: { ring2: { perSecond: 1, burst: 1 } } } } },
    );
    const saga = await f.startSaga({
      sagaId: 'format-2',
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { n: 1 } },
        {
          parallel: [
            { actionId: 'draft', agentDid: beta },
            { actionId: 'wire-money', agentDid: alpha, input: { amount: 5 }, approvalDeadlineSeconds: 600 },
          ],
          policy: 'ALL',
        },
        { stepId: 'last', actionId: 'publish', agentDid: beta, timeoutSeconds: 30, retry: { maximumAttempts: 2 } },
      ],
    });
    await until('the ring-1 branch to wait', async () => (await saga.state()).waiting?.stepId === 'g1.b2');
    for (const approverDid of [beta, gamma])
      await f.approve({ sagaId: 'format-2', stepId: 'g1.b2', digest: saga.digests['g1.b2'], approverDid });
    const snap = await saga.result();
    if (snap.saga.state !== 'completed') throw new Error(`the format-2 saga did not complete: ${snap.error}`);
    await until('the session to learn it', async () => (await f.sagas()).every((x) => x.state !== 'running'));
    await f.terminate();
    await save('saga-format-2', saga.handle.workflowId);
    await save('session-format-2', f.handle.workflowId);
  }

  async function format3(): Promise<void> {
    // Issue 20: format 3 — default step ids and omegas left out, no HvSagaState while running nor for a completed
    // saga, the outcome without agents, actions and nulls: one completes through an approved group branch, one compensates.
    const f = await session('rec-format-3', { [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8 });
    const saga = await f.startSaga({
      sagaId: 'format-3',
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { n: 1 } },
        {
          parallel: [
            { actionId: 'draft', agentDid: beta },
            { actionId: 'wire-money', agentDid: alpha, input: { amount: 5 } },
          ],
          policy: 'ALL',
        },
        { actionId: 'publish', agentDid: beta },
      ],
    });
    await until('the ring-1 branch to wait', async () => (await saga.state()).waiting?.stepId === 'g1.b2');
    for (const approverDid of [beta, gamma])
      await f.approve({ sagaId: 'format-3', stepId: 'g1.b2', digest: saga.digests['g1.b2'], approverDid });
    const snap = await saga.result();
    if (snap.saga.state !== 'completed') throw new Error(`the format-3 saga did not complete: ${snap.error}`);
    const undone = await f.startSaga({
      sagaId: 'format-3-undone',
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: beta, input: { fail: true } },
      ],
    });
    const undoneSnap = await undone.result();
    if (undoneSnap.saga.state !== 'compensated')
      throw new Error(`the format-3 saga did not compensate: ${undoneSnap.saga.state}`);
    await until('the session to learn them', async () => (await f.sagas()).every((x) => x.state !== 'running'));
    await f.terminate();
    await save('saga-format-3', saga.handle.workflowId);
    await save('saga-format-3-compensated', undone.handle.workflowId);
    await save('session-format-3', f.handle.workflowId);
  }

  async function format4(): Promise<void> {
    // Issue 20: format 4 — no session id in the start input (the saga reads its parent's), no summary
    // unless it says more than the workflow id, the outcome without the saga's id and the steps that committed
    // plainly: one completes (its second step on a retry, so named), one compensates, and a turn names every step.
    const f = await session('rec-format-4', { [alpha]: 0.85, [beta]: 0.8 });
    const saga = await f.startSaga({
      sagaId: 'format-4',
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { n: 1 } },
        { actionId: 'publish', agentDid: beta, input: { failFirstAttempt: true }, retry: { maximumAttempts: 2 } },
        { actionId: 'draft', agentDid: alpha },
      ],
    });
    const snap = await saga.result();
    if (snap.saga.state !== 'completed') throw new Error(`the format-4 saga did not complete: ${snap.error}`);
    const undone = await f.startSaga({
      sagaId: 'format-4-undone',
      description: 'recorded',
      steps: [
        { actionId: 'draft', agentDid: alpha },
        { actionId: 'publish', agentDid: beta, input: { fail: true } },
      ],
    });
    const undoneSnap = await undone.result();
    if (undoneSnap.saga.state !== 'compensated')
      throw new Error(`the format-4 saga did not compensate: ${undoneSnap.saga.state}`);
    const turn = await f.openTurn({ agentDid: alpha, sagaId: 'format-4-turn' });
    for (const actionId of ['draft', 'draft'])
      if (!(await turn.append({ actionId })).ok) throw new Error(`the turn's ${actionId} did not commit`);
    await turn.end();
    await turn.result();
    await until('the session to learn them', async () => (await f.sagas()).every((x) => x.state !== 'running'));
    await f.terminate();
    await save('saga-format-4', saga.handle.workflowId);
    await save('saga-format-4-compensated', undone.handle.workflowId);
    await save('saga-format-4-turn', turn.workflowId);
    await save('session-format-4', f.handle.workflowId);
  }

  async function format5(): Promise<void> {
    // Issue 20: format 5 — format 4 without an undoApi that is its action's executeApi (rec.step does and
    // undoes): a saga that compensates undoes its first step through the executeApi the saga put back.
    const f = await session('rec-format-5', { [alpha]: 0.85, [beta]: 0.8 });
    const undone = await f.startSaga({
      sagaId: 'format-5-undone',
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { n: 1 } },
        { actionId: 'publish', agentDid: beta, input: { fail: true } },
      ],
    });
    const undoneSnap = await undone.result();
    if (undoneSnap.saga.state !== 'compensated')
      throw new Error(`the format-5 saga did not compensate: ${undoneSnap.saga.state}`);
    await until('the session to learn it', async () => (await f.sagas()).every((x) => x.state !== 'running'));
    await f.terminate();
    await save('saga-format-5-compensated', undone.handle.workflowId);
    await save('session-format-5', f.handle.workflowId);
  }

  async function turns(): Promise<void> {
    await turnsScenario((id, agents) => session(id, agents), save, until);
  }

  async function controls(): Promise<void> {
    // A kill mid-step, with a substitute that takes over the step and the next.
    const k = await session('rec-kill', { [alpha]: 0.85, [beta]: 0.8 });
    const killed = await k.startSaga({
      sagaId: 'killed',
      steps: [
        { actionId: 'draft', agentDid: alpha, input: { delayMs: 30_000 }, timeoutSeconds: 60 },
        { actionId: 'publish', agentDid: alpha },
      ],
    });
    await until('the step to run', async () => (await killed.state()).saga.steps[0]!.state === 'executing');
    // An SRE signs its kill in every identity mode (SPEC §11.9).
    await new HypervisorClient(hv.client, hv.taskQueue, undefined, SRE_SIGNER)
      .session(k.sessionId)
      .kill({ agentDid: alpha, sreDid: SRE, reason: 'recorded kill', substituteDid: beta });
    const handed = await killed.result();
    if (handed.saga.state !== 'completed' || handed.saga.steps.some((st) => st.agentDid !== beta))
      throw new Error(`the kill did not hand off: ${JSON.stringify(handed.saga.steps)}`);
    await until('the session to learn it', async () => (await k.sagas()).every((g) => g.state !== 'running'));
    await k.terminate();
    await save('saga-killed-handed-off', killed.handle.workflowId);
    await save('session-kill', k.handle.workflowId);

    // An elevation that expires under a running saga: its last step is denied.
    const e = await session('rec-elevation', { [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8 });
    const asked = await e.requestElevation({ agentDid: alpha, ring: 1, ttlSeconds: 3, justification: 'recorded' });
    for (const approverDid of [beta, gamma])
      await e.approveElevation({ agentDid: alpha, elevationId: asked.elevationId, digest: asked.digest, approverDid });
    const expired = await e.startSaga({
      sagaId: 'expired',
      steps: [
        { actionId: 'wire-money', agentDid: alpha },
        { actionId: 'draft', agentDid: beta, input: { delayMs: 4000 } },
        { actionId: 'wire-money', agentDid: alpha, stepId: 'after', approvalDeadlineSeconds: 1 },
      ],
    });
    const outcome = await expired.result();
    if (!/elevation to ring 1 expired/.test(outcome.error ?? ''))
      throw new Error(`the elevation did not expire mid-saga: ${outcome.error}`);
    await until('the session to learn it', async () => (await e.sagas()).every((g) => g.state !== 'running'));
    await e.terminate();
    await save('saga-elevation-expired', expired.handle.workflowId);
    await save('session-elevation', e.handle.workflowId);

    // A saga whose third step finds its agent's bucket empty: leased two, claims the third, denied.
    const r = await session(
      'rec-rate',
      { [alpha]: 0.5 },
      { config: { controls: { rateLimits: { ring3: { perSecond: 0.01, burst: 2 } } } } },
    );
    const limited = await r.startSaga({
      sagaId: 'limited',
      steps: [
        { actionId: 'read', agentDid: alpha },
        { actionId: 'read', agentDid: alpha },
        { actionId: 'read', agentDid: alpha },
      ],
    });
    const denied = await limited.result();
    if (denied.failedStepId !== 'step-3' || !/rate limit/.test(denied.error ?? ''))
      throw new Error(`the third step was not rate-limited: ${denied.error}`);
    await until('the session to learn it', async () => (await r.sagas()).every((g) => g.state !== 'running'));
    await r.terminate();
    await save('saga-rate-limited', limited.handle.workflowId);
    await save('session-rate-limited', r.handle.workflowId);
  }
}

/**
 * SPEC §14: a saga awaiting its operator whose SRE retries the failed step (it completes in round 2), and a
 * fork from step 3 of a compensated saga — each saga and their session.
 */
async function operatorScenario(
  session: (id: string, agents: Record<string, number>) => Promise<SessionHandle>,
  hv: HypervisorClient,
  save: (name: string, workflowId: string) => Promise<void>,
  until: (what: string, ok: () => Promise<boolean>) => Promise<void>,
): Promise<void> {
  const o = await session('rec-operator', { [alpha]: 0.85, [beta]: 0.8 });
  const retried = await o.startSaga({
    sagaId: 'retried',
    onFailure: { 'await-operator': { deadlineSeconds: 600 } },
    steps: [
      { actionId: 'draft', agentDid: alpha },
      { actionId: 'publish', agentDid: alpha, input: { failFirstRound: true } },
    ],
  });
  await until('the session to learn the saga awaits', async () =>
    (await o.sagas()).some((g) => g.sagaId === 'retried' && g.awaiting?.stepId === 'step-2'),
  );
  await new HypervisorClient(hv.client, hv.taskQueue, undefined, SRE_SIGNER)
    .session(o.sessionId)
    .decideSaga({ sagaId: 'retried', stepId: 'step-2', decision: 'retry', sreDid: SRE, reason: 'recorded' });
  const done = await retried.result();
  if (done.saga.state !== 'completed' || done.saga.steps[1]!.round !== 2)
    throw new Error(`the retried saga did not complete in round 2: ${JSON.stringify(done.saga.steps)}`);
  const original = await o.startSaga({
    sagaId: 'to-fork',
    steps: [
      { actionId: 'draft', agentDid: alpha },
      { actionId: 'publish', agentDid: alpha, input: { fail: true } },
      { actionId: 'draft', agentDid: beta, stepId: 'step-3' },
      { actionId: 'publish', agentDid: beta, stepId: 'step-4' },
    ],
  });
  if ((await original.result()).saga.state !== 'compensated') throw new Error('the original did not compensate');
  await until('the session to learn it', async () =>
    (await o.sagas()).some((g) => g.sagaId === 'to-fork' && g.state === 'compensated'),
  );
  const forked = await o.forkSaga({ sagaId: 'to-fork', fromStepId: 'step-3', newSagaId: 'forked' });
  if ((await forked.result()).saga.state !== 'completed') throw new Error('the fork did not complete');
  await until('the session to learn all ends', async () => (await o.sagas()).every((g) => g.state !== 'running'));
  await o.terminate();
  await save('saga-operator-retried', retried.handle.workflowId);
  await save('saga-forked', forked.handle.workflowId);
  await save('session-operator', o.handle.workflowId);
}

/** SPEC §13: two turns of one agent — one ended after a tool's error (completed), one aborted (compensated). */
async function turnsScenario(
  session: (id: string, agents: Record<string, number>) => Promise<SessionHandle>,
  save: (name: string, workflowId: string) => Promise<void>,
  until: (what: string, ok: () => Promise<boolean>) => Promise<void>,
): Promise<void> {
  const t = await session('rec-turns', { [alpha]: 0.85 });
  const ended = await t.openTurn({ agentDid: alpha, sagaId: 'ended', description: 'recorded' });
  if (!(await ended.append({ actionId: 'draft' })).ok) throw new Error('the first step did not commit');
  const failed = await ended.append({ actionId: 'publish', input: { fail: true } });
  if (failed.ok || !/refused on purpose/.test(failed.error ?? ''))
    throw new Error("the tool's error was not the answer");
  await ended.end();
  if ((await ended.result()).saga.state !== 'completed') throw new Error('the ended turn did not complete');
  const aborted = await t.openTurn({ agentDid: alpha, sagaId: 'aborted' });
  for (const actionId of ['draft', 'publish'])
    if (!(await aborted.append({ actionId })).ok) throw new Error(`${actionId} did not commit`);
  await aborted.abort('recorded');
  const snap = await aborted.result();
  if (snap.saga.state !== 'compensated' || snap.compensationOrder.join() !== 'step-2,step-1')
    throw new Error(`the aborted turn did not compensate in reverse: ${JSON.stringify(snap.compensationOrder)}`);
  await until('the session to learn both ends', async () => (await t.sagas()).every((g) => g.state !== 'running'));
  await t.terminate();
  await save('saga-turn-ended', ended.workflowId);
  await save('saga-turn-aborted', aborted.workflowId);
  await save('session-turns', t.handle.workflowId);
}

/**
 * Issue 20: a session whose audit batches go by reference, on a worker of its own whose first read of a batch
 * does not chain (as a worker that recomputed a delta on replay would answer): that batch fails AUDIT_BATCH_UNREAD
 * and goes again inline (the `audit-batch-inline` patch); the later ones go by reference. One saga; terminated.
 */
async function auditBatchRef(
  own: OwnHypervisor,
  save: (name: string, workflowId: string) => Promise<void>,
  until: (what: string, ok: () => Promise<boolean>) => Promise<void>,
): Promise<void> {
  const taskQueue = 'hv-record-audit-ref';
  const native = await NativeConnection.connect({ address: own.server.address });
  const key = loadHypervisorKey({ dataDir: own.dataDir });
  let tampered = 0;
  const replayed: PendingBatchReader = async (ref) => {
    const batch = (await queryOwnSession(ref)) as AuditBatch;
    if (tampered++ === 0) batch.deltas[0]!.at += 1500;
    return batch;
  };
  const worker = await Worker.create({
    connection: native,
    namespace: 'default',
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: {
      ...createActivities(own.hv.client, own.store, undefined, undefined, key),
      ...auditActivities(own.store, key, replayed),
    },
  });
  const running = worker.run();
  try {
    const hv = new HypervisorClient(own.hv.client, taskQueue, own.store);
    const s = await hv.createSession({ sessionId: 'rec-audit-batch-ref', creatorDid: 'did:mesh:admin' });
    const stored = async () => {
      const head = await s.auditHead();
      return head.stored === head.deltaCount;
    };
    await until('the first batch, inline', stored);
    for (const [agentDid, sigmaRaw] of [[alpha, 0.97] as const, [beta, 0.8] as const])
      await s.join({ agentDid, sigmaRaw, actions: ACTIONS });
    await s.activate();
    await until('the joins, by reference', stored);
    const saga = await s.startSaga({ sagaId: 'ref', steps: [{ actionId: 'draft', agentDid: beta }] });
    if ((await saga.result()).saga.state !== 'completed') throw new Error('the saga did not complete');
    await until('the session to learn it', async () => (await s.sagas()).every((x) => x.state !== 'running'));
    await s.terminate();
    if (tampered < 3) throw new Error(`expected three reads at least, saw ${tampered}`);
    await save('session-audit-batch-ref', s.handle.workflowId);
  } finally {
    worker.shutdown();
    await running;
    await native.close();
  }
}
main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
