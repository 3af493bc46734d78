/**
 * Metrics (README: Metrics and traces): the worker of `npm run worker`, run as
 * a process of its own with HV_METRICS_ADDRESS, serves the hypervisor's
 * counters with the SDK's. After the demo and a scenario with a denied gate,
 * an escalation that slashes and a saga that waits for an approval across a
 * restart of the worker, the counters of both worker processes add up to what
 * the audit trails record — and the second process, which replays what the
 * first one did, counts none of it again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEMO_ACTIONS } from '../../activities/demoHandlers';
import type { AuditTrail } from '../../src/core/audit';
import { HypervisorClient, type SessionHandle } from '../../src/client';
import type { CheckActionRequest } from '../../src/contract';
import type { GateDecision } from '../../src/core/gate';
import { canonicalJson, sha256Hex } from '../../src/core/hash';
import { openAuditStore, type AuditStore } from '../../src/store';
import type { SagaSnapshot } from '../../src/contract/sagaTypes';
import { testEnv } from '../helpers/env';
import { eventually, uniqueId } from '../helpers/hv';
import { SRE } from '../helpers/sre';
import { freePort } from '../../worker/ports';

const ROOT = path.resolve(__dirname, '..', '..');
const ALPHA = 'did:mesh:alpha';
const BETA = 'did:mesh:beta';
const HIGH = 'did:mesh:high';

/** The demo's actions, one that cannot be undone (its compensation fails) and one that needs ring 1. */
const ACTIONS = [
  ...DEMO_ACTIONS,
  { actionId: 'post-notice', reversibility: 'FULL' as const, executeApi: 'handler:demo.draft-email' },
  {
    actionId: 'wire-funds',
    reversibility: 'NONE' as const,
    executeApi: 'handler:demo.reserve-budget',
    undoApi: 'handler:demo.reserve-budget',
  },
];

type Series = { name: string; labels: Record<string, string>; value: number };

/** The Prometheus text format, as far as counters and histograms need. */
function parseMetrics(text: string): Series[] {
  const out: Series[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function total(series: Series[], name: string, labels: Record<string, string> = {}): number {
  return series
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** `npm run worker` as a child process: its env names the test's server, task queue, data folder and metrics address. */
class WorkerProcess {
  private output = '';
  private readonly exited: Promise<number | null>;
  private constructor(
    private readonly child: ChildProcess,
    readonly metricsAddress: string,
  ) {
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    this.exited = new Promise((resolve) => child.once('exit', resolve));
  }

  static async start(env: Record<string, string>): Promise<WorkerProcess> {
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    const child = spawn(
      process.execPath,
      ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'worker', 'main.ts')],
      {
        env: { ...process.env, ...env, HV_METRICS_ADDRESS: metricsAddress },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const worker = new WorkerProcess(child, metricsAddress);
    let gone = false;
    void worker.exited.then(() => (gone = true));
    await eventually(async () => gone || /Worker polling/.test(worker.output), Boolean, 'the worker to poll', 120_000);
    assert.equal(gone, false, `the worker exited:\n${worker.output}`);
    return worker;
  }

  async scrape(): Promise<Series[]> {
    const response = await fetch(`http://${this.metricsAddress}/metrics`);
    assert.equal(response.status, 200);
    return parseMetrics(await response.text());
  }

  /** SIGTERM: the SDK's runtime shuts the worker down gracefully. */
  async stop(): Promise<void> {
    this.child.kill('SIGTERM');
    const code = await this.exited;
    assert.equal(code, 0, `the worker exited with ${code}:\n${this.output}`);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

/** `npm run demo` against the worker; returns its session's id. */
async function runDemo(env: Record<string, string>): Promise<string> {
  const child = spawn(
    process.execPath,
    ['--require', require.resolve('tsx/cjs'), path.join(ROOT, 'scripts', 'demo.ts')],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const code = await new Promise((resolve) => child.once('exit', resolve));
  assert.equal(code, 0, output);
  return /Session (\S+) created/.exec(output)![1]!;
}

const contentHash = (value: unknown) => sha256Hex(canonicalJson(value));

/**
 * What the trails record, counted as the metrics count it. The trail holds
 * content hashes: each entry is read by finding the saga step, saga outcome or
 * decision whose hash it is, so every count comes from a trail entry.
 */
function fromTrails(
  trails: AuditTrail[],
  snapshots: Map<string, SagaSnapshot>,
  checks: { req: CheckActionRequest; decision: GateDecision }[],
) {
  const counts = new Map<string, number>();
  const add = (key: string, n = 1) => counts.set(key, (counts.get(key) ?? 0) + n);
  for (const trail of trails) {
    for (const change of trail.deltas.flatMap((d) => d.changes)) {
      const at = change.path.split('/');
      if (at[1] === 'decisions') {
        const check = checks.find(({ req, decision }) => {
          const { rule: _rule, ...recorded } = decision;
          return contentHash({ ...req, ...recorded }) === change.contentHash;
        });
        assert.ok(check, `decision ${change.path} of ${trail.sessionId} is one the test asked for`);
        add(`gate/check_action/${check.decision.allowed ? 'allowed' : 'denied'}`);
      } else if (at[1] === 'sagas' && at[3] === 'steps' && at.length === 5 && change.operation === 'modify') {
        const snap = snapshots.get(`${trail.sessionId}/${at[2]}`)!;
        const s = snap.saga.steps.find((x) => x.stepId === at[4])!;
        assert.equal(
          contentHash({
            state: s.state,
            agentDid: s.agentDid,
            actionId: s.actionId,
            attempts: s.attempts,
            error: s.error,
          }),
          change.contentHash,
          change.path,
        );
        if (s.state === 'pending') continue;
        const deniedFirst = /^RING_VIOLATION: (?!attempt \d+ denied)/.test(s.error ?? '');
        add(`gate/step/${deniedFirst ? 'denied' : 'allowed'}`);
        if (!deniedFirst) add('gate/retry/allowed', s.attempts - 1);
        if (s.state === 'compensated') add('compensation/ok');
        if (s.state === 'compensation_failed') add('compensation/failed');
      } else if (at[1] === 'sagas' && at[3] === 'state') {
        const snap = snapshots.get(`${trail.sessionId}/${at[2]}`)!;
        assert.equal(contentHash({ state: snap.saga.state, error: snap.error }), change.contentHash, change.path);
        add(`saga/${snap.saga.state}`);
      } else if (at[1] === 'slashes') {
        add('slash');
      } else if (at[1] === 'participants' && at.length === 3 && change.operation === 'add') {
        add('ring/join');
      } else if (at[1] === 'participants' && at[3] === 'ring') {
        add('ring/change');
      } else if (at[1] === 'sagas' && at[5] === 'approvals') {
        add('approval');
      }
    }
    add('deltas', trail.deltas.length);
  }
  return (key: string) => counts.get(key) ?? 0;
}

/** The same counts, from the scraped metrics of both worker processes. */
function fromMetrics(series: Series[]) {
  return (key: string): number => {
    const [kind, a, b] = key.split('/');
    switch (kind) {
      case 'gate':
        return total(series, 'hv_gate_decisions_total', { gate: a!, result: b! });
      case 'compensation':
        return total(series, 'hv_compensations_total', { result: a! });
      case 'saga':
        return total(series, 'hv_sagas_total', { state: a! });
      case 'slash':
        return total(series, 'hv_slashes_total');
      case 'ring':
        return a === 'join'
          ? total(series, 'hv_ring_assignments_total', { cause: 'join' })
          : total(series, 'hv_ring_assignments_total', { cause: 'demotion' }) +
              total(series, 'hv_ring_assignments_total', { cause: 'promotion' });
      case 'approval':
        return total(series, 'hv_approval_wait_seconds_count');
      case 'deltas':
        return total(series, 'hv_audit_appended_deltas_total');
      default:
        throw new Error(key);
    }
  };
}

describe("metrics: the worker's Prometheus endpoint against the audit trail", function () {
  this.timeout(600_000);
  let dataDir: string;
  let store: AuditStore | undefined;
  const workers: WorkerProcess[] = [];

  before(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-metrics-'));
  });
  after(async () => {
    for (const w of workers) w.kill();
    await store?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('counts gate decisions, compensations and slashes as the trail records them, once across a worker restart', async () => {
    const env = await testEnv();
    const taskQueue = `${env.taskQueue}-metrics`;
    const childEnv = {
      TEMPORAL_ADDRESS: env.address,
      TEMPORAL_NAMESPACE: env.namespace,
      HV_TASK_QUEUE: taskQueue,
      HV_DATA_DIR: dataDir,
    };
    store = await openAuditStore({ dataDir });
    const hv = new HypervisorClient(env.client, taskQueue, store);
    const checks: { req: CheckActionRequest; decision: GateDecision }[] = [];
    const check = async (s: SessionHandle, req: CheckActionRequest) => {
      const decision = await s.checkAction(req);
      checks.push({ req, decision });
      return decision;
    };

    const first = await WorkerProcess.start(childEnv);
    workers.push(first);
    const demoSession = await runDemo(childEnv);

    // A denied gate, a compensation that fails (and slashes), and a saga that waits for an approval.
    const s = await hv.createSession({
      sessionId: uniqueId('metrics'),
      creatorDid: 'did:mesh:admin',
      config: { sreWitnesses: [SRE], consensusQuorum: 1 },
    });
    for (const [agentDid, sigmaRaw] of [
      [ALPHA, 0.85],
      [BETA, 0.72],
      [HIGH, 0.97],
    ] as const)
      await s.join({ agentDid, sigmaRaw, actions: ACTIONS });
    await s.activate();
    const denied = await s.startSaga({ sagaId: 'denied', steps: [{ actionId: 'wire-funds', agentDid: ALPHA }] });
    assert.equal((await denied.result()).saga.state, 'failed');
    const escalates = await s.startSaga({
      sagaId: 'escalates',
      steps: [
        { actionId: 'post-notice', agentDid: BETA },
        { actionId: 'send-email', agentDid: ALPHA, input: { simulateOutage: true } },
      ],
    });
    assert.equal((await escalates.result()).saga.state, 'escalated');
    await eventually(
      () => s.participant(BETA),
      (p) => p!.sigmaRaw === 0,
      'the session to slash beta',
    );
    assert.equal((await check(s, { agentDid: ALPHA, actionId: 'send-email' })).allowed, true);
    assert.equal((await check(s, { agentDid: BETA, actionId: 'send-email' })).rule, 'sigma_too_low');
    assert.equal((await check(s, { agentDid: HIGH, actionId: 'wire-funds' })).rule, 'consensus_missing');
    const waits = await s.startSaga({
      sagaId: 'waits',
      steps: [
        { actionId: 'draft-email', agentDid: ALPHA },
        { actionId: 'wire-funds', agentDid: HIGH },
      ],
    });
    await eventually(
      () => waits.state(),
      (snap) => snap.waiting?.stepId === 'step-2',
      'the wire to wait for an approval',
    );
    await eventually(
      () => s.sagas(),
      (all) => all.filter((g) => g.state === 'running').length === 1,
      'the session to record the ended sagas',
    );
    // Every delta so far is stored: the first worker has nothing left to count.
    await eventually(
      () => s.auditHead(),
      (h) => h.stored === h.deltaCount,
      'the audit store to have every delta',
    );
    const before = await first.scrape();
    assert.ok(
      before.some((x) => x.name.startsWith('temporal_')),
      "the SDK's own metrics are on the same endpoint",
    );
    await first.stop();

    // The second worker replays the session and the waiting saga: it must count only what happens from now on.
    const second = await WorkerProcess.start(childEnv);
    workers.push(second);
    await s.approve({ sagaId: 'waits', stepId: 'step-2', approverDid: ALPHA });
    assert.equal((await waits.result()).saga.state, 'completed');
    assert.equal((await check(s, { agentDid: ALPHA, actionId: 'draft-email' })).allowed, true);
    assert.equal((await check(s, { agentDid: ALPHA, actionId: 'wire-funds' })).rule, 'sigma_too_low');
    await eventually(
      () => s.sagas(),
      (all) => all.every((g) => g.state !== 'running'),
      'the session to record the waiting saga',
    );
    await s.terminate();
    // A saga's snapshot is its query (its result is the compact outcome): read while a worker runs — and the
    // replays that answer them must count nothing again.
    const snapshots = new Map<string, SagaSnapshot>();
    for (const [sessionId, sagaId] of [
      [demoSession, 'send-report'],
      [demoSession, 'send-report-outage'],
      [s.sessionId, 'denied'],
      [s.sessionId, 'escalates'],
      [s.sessionId, 'waits'],
    ]) {
      snapshots.set(`${sessionId}/${sagaId}`, await (await hv.session(sessionId!).saga(sagaId!)).result());
    }
    const after = await second.scrape();
    await second.stop();

    const trails = [];
    for (const id of [demoSession, s.sessionId]) {
      const { trail, verification } = await hv.session(id).audit();
      assert.equal(verification.ok, true);
      trails.push(trail);
    }
    const trail = fromTrails(trails, snapshots, checks);
    const metrics = fromMetrics([...before, ...after]);
    const keys = [
      'gate/check_action/allowed',
      'gate/check_action/denied',
      'gate/step/allowed',
      'gate/step/denied',
      'gate/retry/allowed',
      'gate/retry/denied',
      'compensation/ok',
      'compensation/failed',
      'saga/completed',
      'saga/compensated',
      'saga/escalated',
      'saga/failed',
      'slash',
      'ring/join',
      'ring/change',
      'approval',
      'deltas',
    ];
    assert.deepEqual(
      Object.fromEntries(keys.map((k) => [k, metrics(k)])),
      Object.fromEntries(keys.map((k) => [k, trail(k)])),
    );
    // The scenario reached every kind it set out to (the comparison above is not of zeros).
    for (const k of [
      'gate/check_action/denied',
      'gate/step/denied',
      'gate/retry/allowed',
      'compensation/ok',
      'compensation/failed',
      'slash',
      'approval',
    ]) {
      assert.ok(trail(k) > 0, `the trail records some ${k}`);
    }

    // The second worker counted only its own: two checks, one step gate, the wait; nothing it replayed.
    const secondOnly = fromMetrics(after);
    assert.deepEqual(
      [
        'gate/check_action/allowed',
        'gate/check_action/denied',
        'gate/step/allowed',
        'compensation/ok',
        'slash',
        'ring/join',
        'approval',
      ].map((k) => [k, secondOnly(k)]),
      [
        ['gate/check_action/allowed', 1],
        ['gate/check_action/denied', 1],
        ['gate/step/allowed', 1],
        ['compensation/ok', 0],
        ['slash', 0],
        ['ring/join', 0],
        ['approval', 1],
      ],
    );
    assert.equal(
      total(after, 'hv_gate_decisions_total', { gate: 'step', result: 'denied', reason: 'sigma_too_low' }),
      0,
    );
    assert.equal(
      total(before, 'hv_gate_decisions_total', { gate: 'step', result: 'denied', reason: 'sigma_too_low' }),
      1,
      'the denied saga, by its rule',
    );
    assert.equal(total(before, 'hv_slashes_total', { cause: 'compensation_failed' }), 1);
  });
});
