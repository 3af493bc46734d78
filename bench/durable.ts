/**
 * The governed saga against a plain Temporal saga, in the same run,
 * interleaved batch by batch — on a dev server this benchmark starts itself,
 * then on a real cluster it starts itself (worker/cluster.ts: the Temporal
 * server on PostgreSQL, 4 history shards), each compared on its own.
 *
 * - plain: bench/plain/workflows.ts (samples-typescript's saga shape: 3 steps,
 *   each an activity with the governed step's activity options, compensations
 *   undone in reverse in a non-cancellable scope), its own task queue and
 *   Worker in this process.
 * - governed: src/client/index.ts: create a session, join agents, activate, then
 *   `session.startSaga(req)` and `await saga.outcome()` (the workflow's result); the hypervisor's worker
 *   in this process on another task queue, same NativeConnection.
 *
 * - governed, twice — controls off and controls on (SPEC §12; session config
 *   `controls`), each through sessions of its own, interleaved with plain:
 *   off: `{ rateLimits: false, breaker: false }`, no budgets: no token bucket,
 *        no reservation, no breach detector.
 *   on:  every ring's rate limit 10,000 step starts/s, burst 20,000; budgets
 *        of 1e9 calls and cost units per agent and per session; the breaker
 *        with its defaults (60 s window, 5 requests, 30 s cooldown); each
 *        action declares `costUnits: 1`. The machinery runs — every saga
 *        leases its steps' tokens and reserves their budget at its start, its
 *        outcome settles them (a `/budgets/<did>` change in its delta), every
 *        step is a request the breach detector notes — but never refuses
 *        the bench's load, so no step claims later (claimStep).
 *   Targets (issue 9) are checked for each against plain; each variant's line
 *   "budgets spent" is what its sessions settled (a query after the batches).
 *
 * Latency: client start request → result. Throughput: completed sagas / batch
 * wall time. Cost, exact, from fetched histories: events and workflow tasks
 * (WorkflowTaskCompleted events) of every saga; for governed sagas plus their
 * session's share: the session's events that arrived during the batch (from
 * the run and history length before the batch, after the session went quiet,
 * following continue-as-new runs to the one after), divided by the sagas the
 * batch started.
 *
 *   npm run bench:durable                  default counts, dev server then cluster (~12–15 min, and the
 *                                          long-lived session's 10,000 sagas on each: 11–17 min more per target)
 *   npm run bench:durable -- --targets dev only the dev server (~7–8 min + the long-lived session; or: cluster)
 *   npm run bench:durable -- --long 0      without the long-lived session
 *   npm run bench:durable -- --controls off only one governed variant (default, off or on; default: all three)
 *   npm run bench:durable -- --quick       smaller counts
 *   npm run bench:durable -- --shape group the three steps as one parallel group of ALL (issue 22, SPEC §14)
 *                                          against the plain saga's Promise.all of the same three activities
 *   npm run bench:durable -- --json        one JSON object per scenario line
 *   npm run bench:durable -- --only long   only the long-lived session (bench/longSession.ts): --long N sagas
 *                                          (10,000; --quick 1,000; 0 leaves it out) at concurrency 8 through
 *                                          one session with the default config, continuing as new as it runs
 *   flags / env: --warmup N, --c1 N, --c8 N, --c32 N, --c32x8 N (sagas per
 *   variant), --rounds N (batches per variant; each round runs the variants
 *   in turn, in reverse order every other round), --only c1,c8,c32,c32x8,long, --long N,
 *   --saga-timeout S (a saga with no result by then is terminated and
 *   counted as an error), --agents N (agents per session, 10; a saga is one pair's), --workers N (worker processes for each side: this
 *   one and N−1 children, bench/workers.ts); BENCH_WORKERS, BENCH_WARMUP, BENCH_C1, BENCH_C8, BENCH_C32,
 *   BENCH_C32X8, BENCH_LONG, BENCH_AGENTS, BENCH_ROUNDS, BENCH_ONLY, BENCH_SAGA_TIMEOUT, BENCH_CONTROLS, BENCH_SHAPE.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection, type TLSConfig, type WorkflowHandle } from '@temporalio/client';
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { killAllDevServers, startDevServer } from '../worker/devServer';
import { CLUSTER_HISTORY_SHARDS, startCluster } from '../worker/cluster';
import { freePort } from '../worker/ports';
import { HypervisorClient, type SessionHandle } from '../src/client';
import type { JoinRequest, SagaStepInput, StartSagaRequest } from '../src/contract';
import type { ControlsConfigInput } from '../src/core/controlsConfig';
import {
  NOOP_HANDLER,
  SLOW_HANDLER,
  registerNoopHandler,
  runWorkerPair,
  spawnWorkerProcesses,
  specTls,
  type WorkerSpec,
} from './workers';
import type { PlainSagaInput, PlainSagaResult, plainSaga } from './plain/workflows';
import {
  Cost,
  eventMs,
  eventName,
  percentile,
  pool,
  quietSession,
  round,
  sessionEvents,
  type HistoryEvent,
  type Outcome,
} from './histories';
import { runLongSession } from './longSession';

// ── The requests (the contract is changing: edit only these) ────────────────

const ACTIONS = ['bench.draft', 'bench.reserve', 'bench.publish'];
const AGENT_NAMES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'];
/** Declared only in the long-lived session: its slow sagas' second step (bench/longSession.ts). */
const SLOW_ACTION = 'bench.wait';

/**
 * An agent declaring the three reversible (ring 2) actions, run by the no-op handler, each declaring one cost
 * unit per call (what a budget reserves and, since the handler reports none, settles; with budgets off, unused).
 */
function joinRequest(agentDid: string, slow = false): JoinRequest {
  return {
    agentDid,
    sigmaRaw: 0.85,
    actions: [...ACTIONS, ...(slow ? [SLOW_ACTION] : [])].map((actionId) => ({
      actionId,
      reversibility: 'FULL' as const,
      executeApi: `handler:${actionId === SLOW_ACTION ? SLOW_HANDLER : NOOP_HANDLER}`,
      undoApi: `handler:${NOOP_HANDLER}`,
      costUnits: 1,
    })),
  };
}

/** The long-lived session's slow saga: the three steps, the second replaced by one that waits (SLOW_STEP_MS). */
function slowSagaRequest(sagaId: string): StartSagaRequest {
  const steps = sagaRequest(sagaId).steps as SagaStepInput[];
  return { sagaId, steps: steps.map((s, i) => (i === 1 ? { ...s, actionId: SLOW_ACTION } : s)) };
}

/** The governed saga's variants: its sessions' `controls` (SPEC §12) — the defaults (the headline), off, on. */
type ControlsMode = 'default' | 'off' | 'on';
const UNTHROTTLED = { perSecond: 10_000, burst: 20_000 };
const CONTROLS: Record<ControlsMode, ControlsConfigInput> = {
  // What a session gets when its config says nothing: ring 2's 20 step starts/s (burst 40), the breaker, no budgets.
  default: {},
  off: { rateLimits: false, breaker: false },
  // Breaker left out: on, with SPEC §12's defaults.
  on: {
    rateLimits: { ring0: UNTHROTTLED, ring1: UNTHROTTLED, ring2: UNTHROTTLED, ring3: UNTHROTTLED },
    budgets: { agentCalls: 1e9, agentCost: 1e9, sessionCalls: 1e9, sessionCost: 1e9 },
  },
};
const CONTROLS_LEGEND = [
  'Governed saga, up to three variants (session config `controls`, SPEC §12), each against the same plain baseline:',
  '  controls default: {} — what a session gets when its config says nothing (rate limits per ring, the breaker, no',
  '                budgets); a refused start (RATE_LIMITED) is waited out by the typed client, as for any user.',
  '  controls off: { rateLimits: false, breaker: false }, no budgets — no token bucket, reservation or breach detector.',
  '  controls on:  rate limits 10,000 step starts/s burst 20,000 for every ring; budgets 1e9 calls and 1e9 cost units',
  '                per agent and per session (actions declare costUnits: 1); breaker on with its defaults. Every saga',
  "                leases its steps' tokens and budget at its start and its outcome settles them (/budgets/<did>);",
  '                nothing is refused at this load, so no step claims later.',
].join('\n');

/**
 * Three steps, alternating agents: only actionId, agentDid, input; the executor is the action's, declared at join.
 * `--shape group` (issue 22): the same three as the branches of one parallel group of ALL (SPEC §14), against the
 * plain saga running the same three activities with Promise.all.
 */
function sagaRequest(sagaId: string): StartSagaRequest {
  const pair = pairOf(sagaId);
  const steps = ACTIONS.map((actionId, i): SagaStepInput => ({
    actionId,
    agentDid: pair[i % 2]!,
    input: { n: i },
  }));
  return { sagaId, steps: SHAPE === 'group' ? [{ parallel: steps, policy: 'ALL' }] : steps };
}

function plainRequest(sagaId: string): PlainSagaInput {
  const pair = pairOf(sagaId);
  return {
    sagaId,
    steps: ACTIONS.map((actionId, i) => ({
      stepId: SHAPE === 'group' ? `g1.b${i + 1}` : `step-${i + 1}`,
      actionId,
      agentDid: pair[i % 2]!,
      input: { n: i },
    })),
    ...(SHAPE === 'group' ? { parallel: true } : {}),
  };
}

/**
 * Where the governed saga's extra cost is, and why it stays (printed after the
 * figures; the per-type breakdowns above show it exactly).
 */
const REMAINING_COST = [
  'Where the remaining cost is (per governed saga, against plain):',
  '  saga: no event more than plain when it completes (format 3 on: its status says completed; a saga that ends',
  '    compensated/escalated/failed upserts HvSagaState, as the workflow status alone says only Failed). No',
  '    signals, no extra workflow task: the gate runs on the view the saga was started with.',
  '  session: 5 events that authority needs — the startSaga update (accepted, completed), the child start',
  "    (initiated, started) and the child's completion, the only authentic way the session learns the outcome",
  '    (SPEC §11.2) — plus the workflow tasks that process them, shared by concurrent sagas (≈2.3 per saga at',
  '    concurrency 1, ≈1 at 8, less at 32).',
  '  audit store: the session sends its deltas (2 per saga) in batches — an activity (3 events) and, when no',
  '    batch fills first, its 5 s timer (2) — well under one event per saga (see TimerStarted/ActivityTask*).',
  '  latency (see "request → started" and "by phase" above): a governed saga starts one session workflow',
  '    task later than a plain one — the client asks the session (startSaga) and the session starts the child,',
  '    since only the session may start a saga (SPEC §11.2). As a child, its first workflow task is scheduled',
  '    only after the parent recorded the start (WorkflowExecutionStarted → WorkflowTaskScheduled). In its own',
  '    run, its workflow tasks take longer to process (WorkflowTaskStarted → WorkflowTaskCompleted): each run',
  '    evaluates its modules afresh in the reusable V8 context — for a saga, the zod schemas of its input',
  "    (src/core/sagaContract.ts) and the gate — and its first task contends with the session's on the worker.",
  '    Its steps heartbeat only past their first second.',
  '  On one dev server (one history shard, one SQLite connection) throughput follows events written: at',
  '  ≈1.4–1.6× the events, ≈0.65–0.75× the throughput is the floor of this design on this server.',
  'Controls on against off: no event of their own. The lease (rate tokens, budget reservation) is taken in the',
  "  startSaga update and settled where the session handles the saga's outcome; the /budgets/<did> change is one",
  "  more change in the outcome delta the session records anyway (the audit store's batches carry it). No step",
  '  claims later (an activity in the saga, readStepGrant, and the claimStep update in the session, each with its',
  '  workflow task) unless its lease was refused at start, which this load never makes happen. What "on − off',
  '  by type" shows is the session\'s workflow tasks (how many updates and child completions one task takes in)',
  '  and the audit batches (a timer, or a batch filled first) — timing, either sign from scenario to scenario —',
  "  and any saga that compensated (a step's heartbeat timed out under load).",
].join('\n');

// ── Configuration ───────────────────────────────────────────────────────────

const argv = process.argv.slice(2);
const has = (flag: string) => argv.includes(flag);
function setting(name: string, env: string, quick: number, full: number): number {
  const i = argv.indexOf(`--${name}`);
  const raw = i >= 0 ? argv[i + 1] : process.env[env];
  if (raw === undefined || raw === '') return has('--quick') ? quick : full;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} / ${env} must be a whole number, not ${raw}`);
  return n;
}
const JSON_OUT = has('--json');
const CONFIG = {
  warmup: setting('warmup', 'BENCH_WARMUP', 2, 5),
  rounds: Math.max(1, setting('rounds', 'BENCH_ROUNDS', 2, 2)),
  c1: setting('c1', 'BENCH_C1', 8, 30),
  c8: setting('c8', 'BENCH_C8', 16, 64),
  c32: setting('c32', 'BENCH_C32', 64, 64),
  c32x8: setting('c32x8', 'BENCH_C32X8', 64, 64),
  /** A saga with no result after this many seconds is terminated and counted as an error (a lost task waits 300 s). */
  sagaTimeout: setting('saga-timeout', 'BENCH_SAGA_TIMEOUT', 60, 120),
  /** Worker processes polling each side's queue (this one and N−1 children): CAPACITY.md's second point. */
  workers: Math.max(1, setting('workers', 'BENCH_WORKERS', 1, 1)),
  /** The long-lived session's sagas (bench/longSession.ts): one session, default config, concurrency 8. */
  long: setting('long', 'BENCH_LONG', 1000, 10_000),
  /** Agents per session: 10 by default, a default config's maxParticipants (SPEC §3); 2 .. 10, even. */
  agents: setting('agents', 'BENCH_AGENTS', 10, 10),
};
if (CONFIG.agents < 2 || CONFIG.agents > AGENT_NAMES.length || CONFIG.agents % 2 !== 0)
  throw new Error(`--agents / BENCH_AGENTS must be 2, 4, 6, 8 or 10, not ${CONFIG.agents}`);
/**
 * Each session's agents. A saga is the work of one pair, in turn (its steps alternate between the two), as
 * in a team where several pairs work at once: SPEC §12's rate limit is per agent (ring 2: 20 step starts/s,
 * burst 40), so with one pair a session's default config carries ~10 sagas/s, whatever the protocol costs
 * (`--agents 2` runs that workload: the limit is then what the default variant's throughput measures).
 */
const AGENTS = AGENT_NAMES.slice(0, CONFIG.agents).map((name) => `did:mesh:bench-${name}`);
/** Saga n's pair (the serial in its id; plain and governed sagas alike). */
function pairOf(sagaId: string): [string, string] {
  const k = (Number(/\d+$/.exec(sagaId)?.[0] ?? 0) % (AGENTS.length / 2)) * 2;
  return [AGENTS[k]!, AGENTS[k + 1]!];
}
const targetsRaw =
  (() => {
    const i = argv.indexOf('--targets');
    return i >= 0 ? argv[i + 1] : process.env.BENCH_TARGETS;
  })() || 'dev,cluster';
/** Where to run: the dev server, the real cluster (worker/cluster.ts), or both, in this order. */
const TARGETS = targetsRaw
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean)
  .map((t) => {
    if (t !== 'dev' && t !== 'cluster') throw new Error(`--targets / BENCH_TARGETS: "${t}" is neither dev nor cluster`);
    return t as 'dev' | 'cluster';
  });
const controlsRaw =
  (() => {
    const i = argv.indexOf('--controls');
    return i >= 0 ? argv[i + 1] : process.env.BENCH_CONTROLS;
  })() || 'default,off,on';
/** The governed variants to run, always printed in this order: default, off, on. */
const MODES: ControlsMode[] = (() => {
  const given = controlsRaw
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  for (const t of given)
    if (t !== 'default' && t !== 'on' && t !== 'off')
      throw new Error(`--controls / BENCH_CONTROLS: "${t}" is none of default, off, on`);
  return (['default', 'off', 'on'] as const).filter((m) => given.includes(m));
})();
if (MODES.length === 0) throw new Error('--controls / BENCH_CONTROLS names no variant (default, off, on, or a list)');
const onlyRaw = (() => {
  const i = argv.indexOf('--only');
  return i >= 0 ? argv[i + 1] : process.env.BENCH_ONLY;
})();
const ONLY = onlyRaw ? new Set(onlyRaw.split(',').map((s) => s.trim())) : null;
const shapeRaw =
  (() => {
    const i = argv.indexOf('--shape');
    return i >= 0 ? argv[i + 1] : process.env.BENCH_SHAPE;
  })() || 'sequence';
if (shapeRaw !== 'sequence' && shapeRaw !== 'group')
  throw new Error(`--shape / BENCH_SHAPE: "${shapeRaw}" is neither sequence nor group`);
/** The saga's shape: three steps in sequence, or one parallel group of ALL over the same three (issue 22). */
const SHAPE: 'sequence' | 'group' = shapeRaw;

interface Scenario {
  key: string;
  title: string;
  concurrency: number;
  sessions: number;
  sagas: number;
}
const SCENARIOS: Scenario[] = [
  { key: 'c1', title: 'concurrency 1 (sequential)', concurrency: 1, sessions: 1, sagas: CONFIG.c1 },
  { key: 'c8', title: 'concurrency 8, one session', concurrency: 8, sessions: 1, sagas: CONFIG.c8 },
  { key: 'c32', title: 'concurrency 32, one session', concurrency: 32, sessions: 1, sagas: CONFIG.c32 },
  { key: 'c32x8', title: 'concurrency 32, 8 sessions', concurrency: 32, sessions: 8, sagas: CONFIG.c32x8 },
].filter((s) => s.sagas > 0 && (!ONLY || ONLY.has(s.key)));

const log = (line: string) => process.stderr.write(`${line}\n`);
const RUN = Date.now().toString(36);

// ── Batches ─────────────────────────────────────────────────────────────────

interface VariantTotals {
  outcomes: Outcome[];
  wallMs: number;
  sagaCost: Cost;
  sessionCost: Cost;
  continuedAsNew: number;
  /** This process's CPU time (its workers and the bench's client) over the variant's batches, the session's tail included (ms). */
  cpuMs: number;
  /** Per saga, from its history: request → WorkflowExecutionStarted, and started → closed (ms). */
  startDelays: number[];
  runTimes: number[];
  /** Run time split by the pair of events each gap lies between (ms summed over sagas), so the split adds up. */
  phases: Map<string, number>;
}
const emptyTotals = (): VariantTotals => ({
  outcomes: [],
  wallMs: 0,
  sagaCost: new Cost(),
  sessionCost: new Cost(),
  continuedAsNew: 0,
  cpuMs: 0,
  startDelays: [],
  runTimes: [],
  phases: new Map(),
});

/** Adds each gap between consecutive events of one history to its phase ("A → B"). */
function addPhases(into: Map<string, number>, events: HistoryEvent[]): void {
  for (let k = 1; k < events.length; k++) {
    const phase = `${eventName(events[k - 1]!.eventType)} → ${eventName(events[k]!.eventType)}`;
    into.set(phase, (into.get(phase) ?? 0) + eventMs(events[k]) - eventMs(events[k - 1]));
  }
}

/**
 * The saga's result, or a "no result" error after CONFIG.sagaTimeout, when
 * the saga is terminated so it cannot spill into the next batch (its history,
 * complete then, still counts).
 */
async function resultInTime<T>(handle: WorkflowHandle, result: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no result after ${CONFIG.sagaTimeout} s`)), CONFIG.sagaTimeout * 1000);
  });
  try {
    return await Promise.race([result(), late]);
  } catch (err) {
    if (/^no result after/.test((err as Error).message))
      await handle.terminate('bench: no result in time').catch(() => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** The error and its causes, one line. */
function message(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e !== undefined && parts.length < 4; e = e instanceof Error ? e.cause : undefined) {
    parts.push(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
  }
  return parts.join(' ← ').slice(0, 400);
}

async function runBatch(
  n: number,
  concurrency: number,
  one: (i: number) => Promise<Outcome>,
): Promise<{ outcomes: Outcome[]; wallMs: number }> {
  const t0 = performance.now();
  const outcomes = await pool(
    Array.from({ length: n }, (_, i) => i),
    concurrency,
    (i) => one(i),
  );
  return { outcomes, wallMs: performance.now() - t0 };
}

type Backend = 'dev' | 'cluster';
interface Env {
  client: Client;
  hv: HypervisorClient;
  plainQueue: string;
  target: Backend;
}

let serial = 0;

function plainOne(env: Env) {
  return async (): Promise<Outcome> => {
    const sagaId = `p${++serial}`;
    const workflowId = `bench-plain-${RUN}-${sagaId}`;
    const t0 = performance.now();
    const requestedAt = Date.now();
    let handle: WorkflowHandle<typeof plainSaga>;
    try {
      handle = await env.client.workflow.start<typeof plainSaga>('plainSaga', {
        taskQueue: env.plainQueue,
        workflowId,
        args: [plainRequest(sagaId)],
      });
    } catch (err) {
      return { startFailed: message(err) };
    }
    try {
      const result: PlainSagaResult = await resultInTime(handle, () => handle.result());
      const latencyMs = performance.now() - t0;
      return result.state === 'completed'
        ? { workflowId, latencyMs, requestedAt }
        : { workflowId, error: `saga ${result.state}: ${result.error}` };
    } catch (err) {
      return { workflowId, error: message(err) };
    }
  };
}

function governedOne(sessions: SessionHandle[], request = sagaRequest) {
  return async (i: number): Promise<Outcome> => {
    const session = sessions[i % sessions.length]!;
    const sagaId = `g${++serial}`;
    const t0 = performance.now();
    const requestedAt = Date.now();
    let saga;
    try {
      saga = await session.startSaga(request(sagaId));
    } catch (err) {
      return { startFailed: message(err) };
    }
    const workflowId = saga.handle.workflowId;
    try {
      // Timed to the saga workflow's result, as plain's: its compact outcome (the snapshot would be a query more).
      const outcome = await resultInTime(saga.handle, () => saga.outcome());
      const latencyMs = performance.now() - t0;
      const state = 'format' in outcome ? outcome.state : outcome.saga.state;
      return state === 'completed'
        ? { workflowId, latencyMs, requestedAt }
        : { workflowId, error: `saga ${state}: ${outcome.error}` };
    } catch (err) {
      return { workflowId, error: message(err) };
    }
  };
}

async function newSession(
  hv: HypervisorClient,
  name: string,
  mode: ControlsMode,
  slow = false,
): Promise<SessionHandle> {
  const session = await hv.createSession({
    sessionId: `bench-${RUN}-${name}-${mode}`,
    creatorDid: 'did:mesh:bench-admin',
    config: { controls: CONTROLS[mode] },
  });
  for (const agentDid of AGENTS) await session.join(joinRequest(agentDid, slow));
  await session.activate();
  return session;
}

// ── Report ──────────────────────────────────────────────────────────────────

function summarize(t: VariantTotals) {
  const latencies = t.outcomes.flatMap((o) => (o.latencyMs === undefined ? [] : [o.latencyMs])).sort((a, b) => a - b);
  const started = t.outcomes.filter((o) => o.workflowId).length;
  const failedStarts = t.outcomes.filter((o) => o.startFailed);
  const errors = t.outcomes.filter((o) => o.error);
  const saga = t.sagaCost.perSaga(started);
  const session = t.sessionCost.perSaga(started);
  return {
    sagas: t.outcomes.length,
    completed: latencies.length,
    failed_starts: failedStarts.length,
    first_failed_start: failedStarts[0]?.startFailed ?? null,
    errors: errors.length,
    first_error: errors[0]?.error ?? null,
    p50_ms: round(percentile(latencies, 50)),
    p50_start_delay_ms: round(
      percentile(
        t.startDelays.slice().sort((a, b) => a - b),
        50,
      ),
    ),
    p50_run_ms: round(
      percentile(
        t.runTimes.slice().sort((a, b) => a - b),
        50,
      ),
    ),
    p95_ms: round(percentile(latencies, 95)),
    throughput_per_s: round(latencies.length / (t.wallMs / 1000), 2),
    events_per_saga: round(saga.events + session.events, 2),
    tasks_per_saga: round(saga.tasks + session.tasks, 2),
    history_bytes_per_saga: Math.round(saga.bytes + session.bytes),
    saga_bytes_per_saga: Math.round(saga.bytes),
    session_bytes_per_saga: Math.round(session.bytes),
    saga_events_per_saga: round(saga.events, 2),
    saga_tasks_per_saga: round(saga.tasks, 2),
    session_events_per_saga: round(session.events, 2),
    session_tasks_per_saga: round(session.tasks, 2),
    session_continued_as_new: t.continuedAsNew,
    cpu_ms_per_saga: round(t.cpuMs / Math.max(1, started), 2),
    saga_events_by_type: saga.byType,
    session_events_by_type: session.byType,
    saga_bytes_by_type: saga.bytesByType,
    session_bytes_by_type: session.bytesByType,
    run_ms_by_phase: Object.fromEntries([...t.phases].map(([k, v]) => [k, round(v / Math.max(1, started), 1)])),
  };
}

type Summary = ReturnType<typeof summarize>;
/** A governed variant's summary. */
interface GovSummary {
  mode: ControlsMode;
  summary: Summary & { budget_spent: { calls: number; cost: number } };
}
const modeLabel = (m: ControlsMode) => `controls ${m}`;
/** Issue 22: a parallel group of ALL against Promise.all, 1.6×; the sequence (issue 20), 1.5×. */
const EVENTS_TARGET = SHAPE === 'group' ? 1.6 : 1.5;

/** Issue 20's targets (issue 22's for the group shape), per backend: the cluster's time targets are looser. */
function targets(
  s: Scenario,
  plain: Summary,
  gov: Summary,
  backend: Backend,
): Array<{ target: string; value: number; pass: boolean }> {
  const ratio = (g: number, p: number) => round(g / p, 2);
  const dev = backend === 'dev';
  const atMost = (target: string, g: number, p: number, k: number) => ({
    target,
    value: ratio(g, p),
    pass: g <= k * p,
  });
  const atLeast = (target: string, g: number, p: number, k: number) => ({
    target,
    value: ratio(g, p),
    pass: g >= k * p,
  });
  const out = [
    atMost(`events/saga ≤ ${EVENTS_TARGET}× plain`, gov.events_per_saga, plain.events_per_saga, EVENTS_TARGET),
    atMost('bytes/saga ≤ 2.0× plain', gov.history_bytes_per_saga, plain.history_bytes_per_saga, 2),
    {
      target: 'no failed start or saga',
      value: gov.failed_starts + gov.errors,
      pass: gov.failed_starts + gov.errors === 0,
    },
  ];
  const p50 = SHAPE === 'group' ? 1.3 : dev ? 1.2 : 1.3;
  if (s.key === 'c1') out.push(atMost(`p50 ≤ ${p50}× plain`, gov.p50_ms, plain.p50_ms, p50));
  const c8 = dev ? 0.85 : 0.8;
  if (s.key === 'c8' && SHAPE === 'sequence')
    out.push(atLeast(`throughput ≥ ${c8}× plain`, gov.throughput_per_s, plain.throughput_per_s, c8));
  const c32 = dev ? 0.8 : 0.75;
  if (s.key === 'c32' && SHAPE === 'sequence')
    out.push(atLeast(`throughput ≥ ${c32}× plain`, gov.throughput_per_s, plain.throughput_per_s, c32));
  if (s.key === 'c32x8' && dev && SHAPE === 'sequence')
    out.push(atMost('p50 ≤ 1.4× plain', gov.p50_ms, plain.p50_ms, 1.4));
  return out;
}

const pad = (x: unknown, w: number) => String(x).padStart(w);

/**
 * Where "started → closed" goes: mean ms per saga between each pair of
 * consecutive event types, plain and each governed variant and their
 * differences from plain, largest difference first (phases under 1 ms in
 * every variant are left out).
 */
function phaseLines(plain: Summary, govs: GovSummary[]): string[] {
  const names = new Set([
    ...Object.keys(plain.run_ms_by_phase),
    ...govs.flatMap((g) => Object.keys(g.summary.run_ms_by_phase)),
  ]);
  const rows = [...names]
    .map((name) => ({
      name,
      p: plain.run_ms_by_phase[name] ?? 0,
      g: govs.map((x) => x.summary.run_ms_by_phase[name] ?? 0),
    }))
    .filter((r) => r.p >= 1 || r.g.some((g) => g >= 1))
    .sort((a, b) => Math.max(...b.g.map((g) => Math.abs(g - b.p))) - Math.max(...a.g.map((g) => Math.abs(g - a.p))));
  return [
    `  started → closed by phase (mean ms per saga, between consecutive events): plain, ${govs.map((g) => modeLabel(g.mode)).join(', ')}, ${govs.map((g) => `${g.mode} − plain`).join(', ')}`,
    ...rows.map(
      (r) =>
        `    ${r.name.padEnd(62)}${pad(r.p, 8)}${r.g.map((g) => pad(g, 8)).join('')}${r.g.map((g) => pad(round(g - r.p, 1), 8)).join('')}`,
    ),
  ];
}

/** Per saga by event type, saga and session share together: what controls on adds to controls off (non-zero only). */
function onMinusOff(off: Summary, on: Summary): string {
  const sum = (s: Summary) => {
    const m = new Map<string, number>();
    for (const src of [s.saga_events_by_type, s.session_events_by_type])
      for (const [k, v] of Object.entries(src)) m.set(k, (m.get(k) ?? 0) + v);
    return m;
  };
  const a = sum(off);
  const b = sum(on);
  const diffs = [...new Set([...a.keys(), ...b.keys()])]
    .map((k) => [k, round((b.get(k) ?? 0) - (a.get(k) ?? 0), 2)] as const)
    .filter(([, d]) => d !== 0)
    .sort((x, y) => Math.abs(y[1]) - Math.abs(x[1]));
  return diffs.map(([k, d]) => `${k} ${d > 0 ? '+' : ''}${d}`).join(', ') || 'none';
}

function printTable(backend: Backend, s: Scenario, plain: Summary, govs: GovSummary[]): void {
  const target = backend === 'cluster' ? 'cluster (Temporal server on PostgreSQL)' : 'dev server';
  const rows: Array<[string, (x: Summary) => number]> = [
    ['p50 latency (ms)', (x) => x.p50_ms],
    ['  p50 request → started', (x) => x.p50_start_delay_ms],
    ['  p50 started → closed', (x) => x.p50_run_ms],
    ['p95 latency (ms)', (x) => x.p95_ms],
    ['throughput (sagas/s)', (x) => x.throughput_per_s],
    ['events / saga', (x) => x.events_per_saga],
    ['  of which saga', (x) => x.saga_events_per_saga],
    ['  of which session', (x) => x.session_events_per_saga],
    ['history bytes / saga', (x) => x.history_bytes_per_saga],
    ['  of which saga', (x) => x.saga_bytes_per_saga],
    ['  of which session', (x) => x.session_bytes_per_saga],
    ['workflow tasks / saga', (x) => x.tasks_per_saga],
    ['  of which saga', (x) => x.saga_tasks_per_saga],
    ['  of which session', (x) => x.session_tasks_per_saga],
    // With more worker processes, the others' CPU is not this process's: the row would undercount.
    ...(CONFIG.workers === 1
      ? ([['worker CPU / saga (ms)', (x: Summary) => x.cpu_ms_per_saga]] as Array<[string, (x: Summary) => number]>)
      : []),
  ];
  const W = 14;
  const lines = [
    '',
    `── ${target} · ${s.key}: ${s.title}${SHAPE === 'group' ? ' · one parallel group of ALL, 3 branches, against Promise.all' : ''} — ${plain.sagas} sagas per variant, ${CONFIG.rounds} interleaved batches${CONFIG.workers > 1 ? `, ${CONFIG.workers} worker processes` : ''} ──`,
    `${'metric'.padEnd(26)}${pad('plain', 10)}${govs.map((g) => pad(modeLabel(g.mode), W)).join('')}${govs.map((g) => pad(`${g.mode}/plain`, 11)).join('')}`,
    ...rows.map(([name, f]) => {
      const p = f(plain);
      const isSession = name === '  of which session';
      return `${name.padEnd(26)}${pad(isSession ? '—' : p, 10)}${govs.map((g) => pad(f(g.summary), W)).join('')}${isSession ? '' : govs.map((g) => pad(round(f(g.summary) / p, 2), 11)).join('')}`;
    }),
    `${'session continue-as-new'.padEnd(26)}${pad('—', 10)}${govs.map((g) => pad(g.summary.session_continued_as_new, W)).join('')}`,
    `${'budgets spent (calls/cost)'.padEnd(26)}${pad('—', 10)}${govs.map((g) => pad(`${g.summary.budget_spent.calls} / ${g.summary.budget_spent.cost}`, W)).join('')}`,
    `${'failed starts / errors'.padEnd(26)}${pad(`${plain.failed_starts} / ${plain.errors}`, 10)}${govs.map((g) => pad(`${g.summary.failed_starts} / ${g.summary.errors}`, W)).join('')}`,
  ];
  for (const [who, v] of [['plain', plain] as const, ...govs.map((g) => [modeLabel(g.mode), g.summary] as const)]) {
    if (v.first_failed_start) lines.push(`  first failed start (${who}): ${v.first_failed_start}`);
    if (v.first_error) lines.push(`  first error (${who}): ${v.first_error}`);
  }
  const checks = govs.map((g) => targets(s, plain, g.summary, backend));
  lines.push(`  ${'targets (issue 9)'.padEnd(30)}${govs.map((g) => modeLabel(g.mode).padEnd(W)).join('')}`);
  checks[0]!.forEach((t, k) => {
    lines.push(
      `  ${t.target.padEnd(30)}${checks.map((c) => `${c[k]!.pass ? 'PASS' : 'MISS'} ${c[k]!.value}`.padEnd(W)).join('')}`,
    );
  });
  const byType = (m: Record<string, number>) =>
    Object.entries(m)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '—';
  lines.push(`  plain saga events/saga by type: ${byType(plain.saga_events_by_type)}`);
  lines.push(`  plain saga bytes/saga by type: ${byType(plain.saga_bytes_by_type)}`);
  for (const g of govs) {
    const m = modeLabel(g.mode);
    lines.push(`  governed saga events/saga by type (${m}): ${byType(g.summary.saga_events_by_type)}`);
    lines.push(`  governed saga bytes/saga by type (${m}): ${byType(g.summary.saga_bytes_by_type)}`);
    lines.push(`  session share/saga by type (${m}): ${byType(g.summary.session_events_by_type)}`);
    lines.push(`  session share bytes/saga by type (${m}): ${byType(g.summary.session_bytes_by_type)}`);
  }
  const off = govs.find((g) => g.mode === 'off');
  const on = govs.find((g) => g.mode === 'on');
  if (off && on)
    lines.push(`  controls on − off, events/saga by type (saga and session): ${onMinusOff(off.summary, on.summary)}`);
  lines.push(...phaseLines(plain, govs));
  console.log(lines.join('\n'));
}

// ── Main ────────────────────────────────────────────────────────────────────

async function runScenario(s: Scenario, env: Env): Promise<void> {
  log(
    `${env.target} · ${s.key}: ${s.title}, ${s.sagas} sagas per variant (plain, ${MODES.map(modeLabel).join(', ')}) …`,
  );
  const plain = emptyTotals();
  const govs = await Promise.all(
    MODES.map(async (mode) => ({
      mode,
      sessions: await Promise.all(
        Array.from({ length: s.sessions }, (_, k) => newSession(env.hv, `${s.key}-${k}`, mode)),
      ),
      totals: emptyTotals(),
    })),
  );
  const cpuSince = (from: NodeJS.CpuUsage) => {
    const d = process.cpuUsage(from);
    return (d.user + d.system) / 1000;
  };
  const runPlain = async (n: number) => {
    const cpu = process.cpuUsage();
    const batch = await runBatch(n, s.concurrency, plainOne(env));
    plain.cpuMs += cpuSince(cpu);
    log(`  plain        batch: ${n} sagas in ${round(batch.wallMs / 1000)} s`);
    plain.outcomes.push(...batch.outcomes);
    plain.wallMs += batch.wallMs;
  };
  const runGoverned = (gov: (typeof govs)[number]) => async (n: number) => {
    const { sessions, totals } = gov;
    const before = await Promise.all(sessions.map((x) => quietSession(x)));
    const cpu = process.cpuUsage();
    const batch = await runBatch(n, s.concurrency, governedOne(sessions));
    log(`  ${modeLabel(gov.mode).padEnd(12)} batch: ${n} sagas in ${round(batch.wallMs / 1000)} s`);
    totals.outcomes.push(...batch.outcomes);
    totals.wallMs += batch.wallMs;
    const after = await Promise.all(sessions.map((x) => quietSession(x)));
    totals.cpuMs += cpuSince(cpu);
    for (let k = 0; k < sessions.length; k++) {
      const { events, runs } = await sessionEvents(env.client, sessions[k]!.handle.workflowId, before[k]!, after[k]!);
      totals.sessionCost.add(events);
      totals.continuedAsNew += runs;
    }
  };
  // Each round runs every variant once, in reverse order every other round, so each stands on average in the middle.
  const order = [runPlain, ...govs.map(runGoverned)];
  for (let r = 0; r < CONFIG.rounds; r++) {
    const n = Math.floor(s.sagas / CONFIG.rounds) + (r < s.sagas % CONFIG.rounds ? 1 : 0);
    if (n === 0) continue;
    for (const run of r % 2 === 0 ? order : [...order].reverse()) await run(n);
  }
  for (const totals of [plain, ...govs.map((g) => g.totals)]) {
    const ids = totals.outcomes.flatMap((o) => (o.workflowId ? [o.workflowId] : []));
    const histories = await pool(ids, 16, (id) => env.client.workflow.getHandle(id).fetchHistory());
    for (const h of histories) totals.sagaCost.add(h.events ?? []);
    const requested = new Map(totals.outcomes.map((o) => [o.workflowId, o.requestedAt]));
    histories.forEach((h, k) => {
      const events = h.events ?? [];
      const asked = requested.get(ids[k]);
      if (asked !== undefined) totals.startDelays.push(eventMs(events[0]) - asked);
      totals.runTimes.push(eventMs(events.at(-1)) - eventMs(events[0]));
      addPhases(totals.phases, events);
    });
  }
  // What the sessions' budgets settled (a query, no event): with controls on, one call and one cost unit per step that acted.
  const spent = await Promise.all(
    govs.map(async (g) => {
      const sums = await Promise.all(g.sessions.map((x) => x.summary()));
      return sums.reduce(
        (a, x) => ({ calls: a.calls + x.controls.spent.session.calls, cost: a.cost + x.controls.spent.session.cost }),
        { calls: 0, cost: 0 },
      );
    }),
  );
  const p = summarize(plain);
  const gs: GovSummary[] = govs.map((g, k) => ({
    mode: g.mode,
    summary: { ...summarize(g.totals), budget_spent: spent[k]! },
  }));
  if (JSON_OUT) {
    const ratio = (a: number, b: number) => round(a / b, 3);
    const byMode = <T>(f: (g: Summary) => T) => Object.fromEntries(gs.map((g) => [g.mode, f(g.summary)]));
    console.log(
      JSON.stringify({
        target: env.target,
        shape: SHAPE,
        scenario: s.key,
        title: s.title,
        concurrency: s.concurrency,
        sessions: s.sessions,
        sagas: s.sagas,
        rounds: CONFIG.rounds,
        worker_processes: CONFIG.workers,
        controls: Object.fromEntries(gs.map((g) => [g.mode, CONTROLS[g.mode]])),
        plain: p,
        governed: byMode((g) => g),
        ratio: byMode((g) => ({
          p50: ratio(g.p50_ms, p.p50_ms),
          p95: ratio(g.p95_ms, p.p95_ms),
          throughput: ratio(g.throughput_per_s, p.throughput_per_s),
          events_per_saga: ratio(g.events_per_saga, p.events_per_saga),
          tasks_per_saga: ratio(g.tasks_per_saga, p.tasks_per_saga),
          history_bytes_per_saga: ratio(g.history_bytes_per_saga, p.history_bytes_per_saga),
          ...(CONFIG.workers === 1 ? { cpu_ms_per_saga: ratio(g.cpu_ms_per_saga, p.cpu_ms_per_saga) } : {}),
        })),
        targets: byMode((g) => targets(s, p, g, env.target)),
      }),
    );
  } else {
    printTable(env.target, s, p, gs);
  }
}

/** A Temporal to run the scenarios on: its address, and how to stop it and what it holds. */
interface Target {
  name: Backend;
  address: string;
  auditUrl?: string;
  tls?: TLSConfig;
  stop(): Promise<void>;
}

async function startTarget(name: Backend, dataDir: string): Promise<Target> {
  if (name === 'cluster') {
    const root = path.join(dataDir, 'cluster');
    fs.mkdirSync(root, { mode: 0o711 });
    const cluster = await startCluster({ root, log });
    log(`cluster at ${cluster.address} (Temporal server on PostgreSQL, ${CLUSTER_HISTORY_SHARDS} history shards)`);
    // The cluster's frontend speaks mutual TLS: the bench connects as the worker.
    return {
      name,
      address: cluster.address,
      auditUrl: cluster.auditUrl,
      tls: cluster.workerTls,
      stop: () => cluster.stop(),
    };
  }
  const server = await startDevServer(
    {
      port: await freePort(),
      uiPort: await freePort(),
      dbFile: path.join(dataDir, 'temporal.db'),
      logFile: path.join(dataDir, 'server.log'),
      headless: true,
    },
    log,
  );
  log(`dev server at ${server.address}`);
  return { name, address: server.address, stop: () => server.stop() };
}

/**
 * Every scenario, plain and governed, on one target: both workers in this process, and with `--workers N` the same
 * pair in N−1 more processes on the same queues (both sides get the same worker capacity).
 */
async function benchTarget(target: Target, dataDir: string): Promise<void> {
  let connection: Connection | undefined;
  let pair: Awaited<ReturnType<typeof runWorkerPair>> | undefined;
  let more: Awaited<ReturnType<typeof spawnWorkerProcesses>> | undefined;
  try {
    const namespace = 'default';
    connection = await Connection.connect({ address: target.address, tls: target.tls });
    const client = new Client({ connection, namespace });
    const hvQueue = `hv-bench-${RUN}`;
    const plainQueue = `plain-bench-${RUN}`;
    const spec: WorkerSpec = {
      address: target.address,
      namespace,
      hvQueue,
      plainQueue,
      tls: specTls(target.tls),
      store: target.auditUrl ? { url: target.auditUrl } : { dataDir },
    };
    pair = await runWorkerPair(spec);
    if (CONFIG.workers > 1) more = await spawnWorkerProcesses(spec, CONFIG.workers - 1, log);
    const store = pair.store;
    const env: Env = { client, hv: new HypervisorClient(client, hvQueue, store), plainQueue, target: target.name };

    if (CONFIG.warmup > 0) {
      log(`${target.name}: warm-up, ${CONFIG.warmup} sagas per variant …`);
      const warm = await Promise.all(MODES.map((mode) => newSession(env.hv, `${target.name}-warmup`, mode)));
      for (let i = 0; i < CONFIG.warmup; i++) {
        const o = [await plainOne(env)()];
        for (const session of warm) o.push(await governedOne([session])(i));
        const bad = o.find((x) => x.startFailed || x.error);
        if (bad) throw new Error(`warm-up saga failed: ${bad.startFailed ?? bad.error}`);
      }
    }
    const t0 = Date.now();
    for (const s of SCENARIOS) await runScenario(s, env);
    if (CONFIG.long > 0 && (!ONLY || ONLY.has('long')))
      await runLongSession({
        client,
        target: target.name,
        sagas: CONFIG.long,
        concurrency: 8,
        json: JSON_OUT,
        workers: CONFIG.workers,
        log,
        newSession: () => newSession(env.hv, 'long', 'default', true),
        one: (session) => governedOne([session]),
        slow: (session) => governedOne([session], slowSagaRequest),
      });
    log(`${target.name}: done in ${round((Date.now() - t0) / 1000)} s (after warm-up)`);
  } finally {
    await more?.stop();
    await pair?.stop();
    await connection?.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
    shutdownSignals: [],
  });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-bench-'));
  fs.chmodSync(dataDir, 0o711); // the cluster's PostgreSQL runs as the postgres user when we are root
  const cleanupDir = () => fs.rmSync(dataDir, { recursive: true, force: true });
  let target: Target | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping the server`);
      killAllDevServers();
      void (target?.stop() ?? Promise.resolve()).finally(() => {
        cleanupDir();
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    });
  }
  registerNoopHandler();
  if (!JSON_OUT) console.log(CONTROLS_LEGEND);
  try {
    for (const name of TARGETS) {
      target = await startTarget(name, dataDir);
      try {
        await benchTarget(target, dataDir);
      } finally {
        await target.stop();
        target = undefined;
      }
    }
    log(REMAINING_COST);
  } finally {
    cleanupDir();
  }
}

main().catch((err) => {
  console.error(err);
  killAllDevServers();
  process.exitCode = 1;
});
