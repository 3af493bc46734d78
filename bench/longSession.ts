/**
 * The long-lived session (issue 20): N sagas (10,000 by default) at concurrency 8 through one session with the
 * default config, which continues as new on its own (every `maxUpdatesPerRun` = 1,000 accepted updates, or when
 * Temporal suggests it) while sagas are in flight. Governed only: the session is compared with itself.
 *
 * - beside them, one slow saga with every 50th (see SLOW_EVERY), so that sagas are in flight at continue-as-new;
 * - latency per saga (client start request → result), in start order: p50 and p95 of the first and the last
 *   1,000 (a tenth of N below 10,000), their ratio against 1.1×, and p50 per tenth of the run with the load;
 * - sagas lost: a failed start, a saga with an error or no result in time, or one the session still holds
 *   running once it is quiet (its outcome never settled) — must be 0;
 * - the session's run chain, from its histories: per run, the updates it accepted, its history length and
 *   bytes, and the state it carried to the next (the size of the next run's WorkflowExecutionStarted input,
 *   its largest parts, and the sagas it carried running); "flat" = the last carried input ≤ 1.1× the first;
 * - sagas in flight at each continue-as-new, from the sagas' own histories (started before the session's
 *   WorkflowExecutionContinuedAsNew, closed after it);
 * - events, bytes and workflow tasks per saga over the whole run (the saga's and the session's share).
 */
import * as os from 'node:os';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import type { SessionHandle } from '../src/client';
import type { SessionWorkflowState } from '../src/contract/sessionTypes';
import {
  Cost,
  eventMs,
  eventName,
  percentile,
  pool,
  quietSession,
  round,
  type HistoryEvent,
  type Outcome,
  type SessionMark,
} from './histories';
import { SLOW_STEP_MS } from './workers';

export interface LongSessionOptions {
  client: Client;
  target: 'dev' | 'cluster';
  sagas: number;
  concurrency: number;
  json: boolean;
  /** Worker processes per side: with more than this one, this process's CPU is not the whole worker CPU. */
  workers: number;
  log(line: string): void;
  /** A fresh session with the default config, agents joined, active. */
  newSession(): Promise<SessionHandle>;
  /** Runs saga `i` through `session`: its outcome, latency included. */
  one(session: SessionHandle): (i: number) => Promise<Outcome>;
  /** Runs a slow saga (one step waits SLOW_STEP_MS) through `session`. */
  slow(session: SessionHandle): (i: number) => Promise<Outcome>;
}

/**
 * Beside the N sagas, one slow saga (a step that waits 20 s) starts with every SLOW_EVERY-th, outside the 8: the
 * session hands over only once the audit store holds every delta, and each saga that ends during a batch adds
 * one, so sagas of a few hundred ms end before the hand-over does; a slow one is still running then, and the next
 * run must read its outcome by id. Their latency is not in the windows (they are not the same work).
 */
const SLOW_EVERY = 50;

/** One run of the session, as its history shows it. */
interface SessionRun {
  runId: string;
  events: number;
  bytes: number;
  updates: number;
  /** The size of the run's WorkflowExecutionStarted input (its first payload's data). */
  inputBytes: number;
  /** What the run was started with: the carried state, if it was continued from another. */
  carried?: SessionWorkflowState;
  /** When the run continued as new (server clock, ms), if it did. */
  continuedAt?: number;
  /**
   * Its hand-over, if it continued as new: from its last accepted update (starts are refused SESSION_CONTINUING
   * from about then) to its continue-as-new — how long, and the saga completions and audit batches in it.
   */
  handover?: { ms: number; completions: number; batches: number };
  /** Its workflow tasks that failed (by cause) or timed out: each is a task done again. */
  taskFailures: string;
}

const FAILED_CAUSES = temporal.api.enums.v1.WorkflowTaskFailedCause as unknown as Record<number, string>;

/** "UnhandledCommand ×2, timed out ×1", or "" for none. */
function taskFailuresOf(events: HistoryEvent[]): string {
  const counts = new Map<string, number>();
  for (const e of events) {
    const name = eventName(e.eventType);
    const cause = e.workflowTaskFailedEventAttributes?.cause;
    const what =
      name === 'WorkflowTaskTimedOut'
        ? 'timed out'
        : name === 'WorkflowTaskFailed'
          ? eventName(FAILED_CAUSES[Number(cause)]?.replace(/^WORKFLOW_TASK_FAILED_CAUSE_/, '') ?? String(cause))
          : undefined;
    if (what) counts.set(what, (counts.get(what) ?? 0) + 1);
  }
  return [...counts].map(([k, n]) => `${k} ×${n}`).join(', ');
}

const LATENCY_TARGET = 1.1;
const FLAT_TARGET = 1.1;

/** The session's runs from `from.runId` to `to.runId`; `cost` gets the events after `from` up to `to`. */
async function runChain(
  client: Client,
  workflowId: string,
  from: SessionMark,
  to: SessionMark,
  cost: Cost,
): Promise<SessionRun[]> {
  const runs: SessionRun[] = [];
  let runId = from.runId;
  for (;;) {
    const events = (await client.workflow.getHandle(workflowId, runId).fetchHistory()).events ?? [];
    const first = runs.length === 0;
    const upTo = runId === to.runId ? to.length : Infinity;
    cost.add(events.filter((e) => (!first || Number(e.eventId) > from.length) && Number(e.eventId) <= upTo));
    const whole = new Cost();
    whole.add(events);
    const payload = events[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    const input = payload ? defaultPayloadConverter.fromPayload<{ carried?: SessionWorkflowState }>(payload) : {};
    const last = events.at(-1);
    const next = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    let lastAccepted = events.length - 1;
    while (lastAccepted >= 0 && eventName(events[lastAccepted]!.eventType) !== 'WorkflowExecutionUpdateAccepted')
      lastAccepted--;
    const tail = lastAccepted >= 0 ? events.slice(lastAccepted) : [];
    const count = (name: string) => tail.filter((e) => eventName(e.eventType) === name).length;
    runs.push({
      runId,
      events: events.length,
      bytes: whole.bytes,
      updates: events.filter((e) => eventName(e.eventType) === 'WorkflowExecutionUpdateAccepted').length,
      inputBytes: payload?.data?.length ?? 0,
      carried: input?.carried,
      continuedAt: next ? eventMs(last) : undefined,
      handover:
        next && lastAccepted >= 0
          ? {
              ms: eventMs(last) - eventMs(events[lastAccepted]),
              completions: count('ChildWorkflowExecutionCompleted') + count('ChildWorkflowExecutionFailed'),
              batches: count('ActivityTaskScheduled'),
            }
          : undefined,
      taskFailures: taskFailuresOf(events),
    });
    if (runId === to.runId) return runs;
    if (!next) throw new Error(`session ${workflowId} run ${runId} neither continued as new nor is the current run`);
    runId = next;
  }
}

/** The carried state's largest top-level parts, by the bytes of their JSON. */
function largestParts(carried: SessionWorkflowState, n = 4): string {
  return Object.entries(carried)
    .map(([k, v]) => [k, Buffer.byteLength(JSON.stringify(v ?? null))] as const)
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, b]) => `${k} ${b}`)
    .join(', ');
}

const runningIn = (carried: SessionWorkflowState | undefined) =>
  carried?.sagas.filter((s) => s.state === 'running').length ?? 0;

/** The session quiet, or — if it never goes quiet — where it stands and the sagas it still holds running. */
async function settle(session: SessionHandle, log: (line: string) => void): Promise<SessionMark> {
  try {
    return await quietSession(session);
  } catch (err) {
    log(`  long: ${(err as Error).message}; counting the sagas it still holds running as lost`);
    const d = await session.handle.describe();
    return { runId: d.runId, length: d.historyLength };
  }
}

export async function runLongSession(o: LongSessionOptions): Promise<void> {
  const { client, log } = o;
  const window = o.sagas >= 10_000 ? 1000 : Math.max(1, Math.floor(o.sagas / 10));
  log(`${o.target} · long: ${o.sagas} sagas at concurrency ${o.concurrency} through one session, default config …`);
  const session = await o.newSession();
  const workflowId = session.handle.workflowId;
  const before = await quietSession(session);
  const deltasBefore = (await session.summary()).deltaCount;

  // Progress, and the load beside it: every tenth of the run (the machine is shared).
  const tenth = Math.max(1, Math.floor(o.sagas / 10));
  const loads: number[] = [];
  let done = 0;
  const t0 = performance.now();
  const cpu = process.cpuUsage();
  const run = o.one(session);
  const runSlow = o.slow(session);
  const slowRuns: Promise<Outcome>[] = [];
  const outcomes = await pool(
    Array.from({ length: o.sagas }, (_, i) => i),
    o.concurrency,
    async (i) => {
      if (i % SLOW_EVERY === SLOW_EVERY / 2) slowRuns.push(runSlow(i));
      const out = await run(i);
      if (++done % tenth === 0 || done === o.sagas) {
        loads.push(os.loadavg()[0]!);
        log(
          `  long: ${done}/${o.sagas} in ${round((performance.now() - t0) / 1000)} s, load ${os.loadavg()[0]!.toFixed(2)}`,
        );
      }
      return out;
    },
  );
  const wallMs = performance.now() - t0;
  const slow = await Promise.all(slowRuns);
  const after = await settle(session, log);
  const cpuUsed = process.cpuUsage(cpu);
  const tailMs = performance.now() - t0 - wallMs;
  const summary = await session.summary();
  const unsettled = (await session.sagas()).filter((s) => s.state === 'running');

  // The session's runs, and the share of its events that came during the run.
  const sessionCost = new Cost();
  const runs = await runChain(client, workflowId, before, after, sessionCost);

  // Each saga's history: its cost, and when it ran (server clock) for the sagas in flight at each continue-as-new.
  const sagaCost = new Cost();
  const ids = [...outcomes, ...slow].flatMap((x) => (x.workflowId ? [x.workflowId] : []));
  const spans = await pool(ids, 16, async (id) => {
    const events: HistoryEvent[] = (await client.workflow.getHandle(id).fetchHistory()).events ?? [];
    sagaCost.add(events);
    return [eventMs(events[0]), eventMs(events.at(-1))] as const;
  });
  const cans = runs.filter((r) => r.continuedAt !== undefined);
  const inFlight = cans.map((r) => spans.filter(([s, e]) => s < r.continuedAt! && e > r.continuedAt!).length);

  // Latency, in start order.
  const lat = (xs: Outcome[]) =>
    xs.flatMap((x) => (x.latencyMs === undefined ? [] : [x.latencyMs])).sort((a, b) => a - b);
  const firstW = lat(outcomes.slice(0, window));
  const lastW = lat(outcomes.slice(-window));
  const tenths = Array.from({ length: Math.min(10, o.sagas) }, (_, k) =>
    round(percentile(lat(outcomes.slice(k * tenth, k === 9 ? o.sagas : (k + 1) * tenth)), 50)),
  );
  const failedStarts = [...outcomes, ...slow].filter((x) => x.startFailed);
  const errors = [...outcomes, ...slow].filter((x) => x.error);
  const lost = failedStarts.length + errors.length + unsettled.length;
  const carried = runs.slice(1).map((r) => r.inputBytes);
  const started = ids.length;
  const saga = sagaCost.perSaga(started);
  const share = sessionCost.perSaga(started);
  const completed = outcomes.filter((x) => x.latencyMs !== undefined).length;

  const p50First = percentile(firstW, 50);
  const p50Last = percentile(lastW, 50);
  const carriedFirst = carried[0];
  const carriedLast = carried.at(-1);
  const targets = [
    {
      target: `p50 last ${window} ≤ ${LATENCY_TARGET}× first ${window}`,
      value: round(p50Last / p50First, 2),
      pass: p50Last <= LATENCY_TARGET * p50First,
    },
    { target: 'no saga lost', value: lost, pass: lost === 0 },
    {
      target: `carried state flat (last ≤ ${FLAT_TARGET}× first)`,
      value: carriedFirst && carriedLast ? round(carriedLast / carriedFirst, 2) : NaN,
      pass: carriedFirst !== undefined && carriedLast !== undefined && carriedLast <= FLAT_TARGET * carriedFirst,
    },
    {
      target: 'continue-as-new with sagas in flight',
      value: inFlight.filter((n) => n > 0).length,
      pass: inFlight.some((n) => n > 0),
    },
  ];
  const figures = {
    target: o.target,
    scenario: 'long',
    sagas: o.sagas,
    concurrency: o.concurrency,
    window,
    completed,
    slow_sagas: slow.length,
    slow_completed: slow.filter((x) => x.latencyMs !== undefined).length,
    slow_p50_ms: round(percentile(lat(slow), 50)),
    failed_starts: failedStarts.length,
    errors: errors.length,
    unsettled_in_session: unsettled.length,
    lost,
    first_lost: failedStarts[0]?.startFailed ?? errors[0]?.error ?? unsettled[0]?.sagaId ?? null,
    p50_first_ms: round(p50First),
    p95_first_ms: round(percentile(firstW, 95)),
    p50_last_ms: round(p50Last),
    p95_last_ms: round(percentile(lastW, 95)),
    p50_by_tenth_ms: tenths,
    load_by_tenth: loads.map((l) => round(l, 2)),
    throughput_per_s: round(completed / (wallMs / 1000), 2),
    wall_s: round(wallMs / 1000),
    tail_s: round(tailMs / 1000),
    continued_as_new: cans.length,
    session_runs: summary.runs,
    carried_bytes: carried,
    carried_first_bytes: carriedFirst ?? null,
    carried_last_bytes: carriedLast ?? null,
    carried_max_bytes: carried.length ? Math.max(...carried) : null,
    runs: runs.map((r, k) => ({
      run: k + 1,
      updates: r.updates,
      events: r.events,
      history_bytes: r.bytes,
      input_bytes: r.inputBytes,
      carried_running: k === 0 ? null : runningIn(r.carried),
      carried_sagas: r.carried?.sagas.length ?? null,
      carried_largest: r.carried ? largestParts(r.carried) : null,
      in_flight_at_continue_as_new: r.continuedAt === undefined ? null : inFlight[cans.indexOf(r)],
      handover: r.handover ?? null,
      workflow_task_failures: r.taskFailures || null,
    })),
    events_per_saga: round(saga.events + share.events, 2),
    saga_events_per_saga: round(saga.events, 2),
    session_events_per_saga: round(share.events, 2),
    history_bytes_per_saga: Math.round(saga.bytes + share.bytes),
    saga_bytes_per_saga: Math.round(saga.bytes),
    session_bytes_per_saga: Math.round(share.bytes),
    tasks_per_saga: round(saga.tasks + share.tasks, 2),
    deltas_per_saga: round((summary.deltaCount - deltasBefore) / Math.max(1, started), 2),
    ...(o.workers === 1
      ? { cpu_ms_per_saga: round((cpuUsed.user + cpuUsed.system) / 1000 / Math.max(1, started), 2) }
      : {}),
    session_events_by_type: share.byType,
    targets,
  };
  if (o.json) {
    console.log(JSON.stringify(figures));
    return;
  }
  const f = figures;
  const where = o.target === 'cluster' ? 'cluster (Temporal server on PostgreSQL)' : 'dev server';
  const lines = [
    '',
    `── ${where} · long: one long-lived session, default config — ${o.sagas} sagas at concurrency ${o.concurrency} ──`,
    `  completed ${f.completed} in ${f.wall_s} s (${f.throughput_per_s} sagas/s), the session quiet ${f.tail_s} s later; beside them ${f.slow_sagas} slow sagas (a step waits ${SLOW_STEP_MS / 1000} s), ${f.slow_completed} completed, p50 ${f.slow_p50_ms} ms`,
    `  first ${window}: p50 ${f.p50_first_ms} ms, p95 ${f.p95_first_ms} ms · last ${window}: p50 ${f.p50_last_ms} ms, p95 ${f.p95_last_ms} ms`,
    `  p50 by tenth of the run (ms): ${tenths.join(', ')}`,
    `  load average (1 min) at each tenth: ${f.load_by_tenth.join(', ')}`,
    `  lost: ${lost} (failed starts ${f.failed_starts}, errors or no result ${f.errors}, unsettled in the session ${f.unsettled_in_session})${f.first_lost ? ` — first: ${f.first_lost}` : ''}`,
    `  continue-as-new: ${f.continued_as_new} (the session's runs: ${f.session_runs}); carried input bytes first ${f.carried_first_bytes ?? '—'}, last ${f.carried_last_bytes ?? '—'}, max ${f.carried_max_bytes ?? '—'}`,
    `  ${'run'.padStart(5)}${'updates'.padStart(9)}${'events'.padStart(8)}${'bytes'.padStart(10)}${'input'.padStart(8)}${'carried running'.padStart(17)}${'in flight at CAN'.padStart(18)}${'hand-over ms / sagas ended / batches'.padStart(38)}  largest carried parts (JSON bytes)`,
    ...f.runs.map(
      (r) =>
        `  ${String(r.run).padStart(5)}${String(r.updates).padStart(9)}${String(r.events).padStart(8)}${String(r.history_bytes).padStart(10)}${String(r.input_bytes).padStart(8)}${String(r.carried_running ?? '—').padStart(17)}${String(r.in_flight_at_continue_as_new ?? '—').padStart(18)}${(r.handover ? `${r.handover.ms} / ${r.handover.completions} / ${r.handover.batches}` : '—').padStart(38)}  ${r.carried_largest ?? '—'}${r.workflow_task_failures ? ` · workflow tasks failed: ${r.workflow_task_failures}` : ''}`,
    ),
    `  per saga (all ${started} started): events ${f.events_per_saga} (saga ${f.saga_events_per_saga}, session ${f.session_events_per_saga}), bytes ${f.history_bytes_per_saga} (saga ${f.saga_bytes_per_saga}, session ${f.session_bytes_per_saga}), workflow tasks ${f.tasks_per_saga}, audit deltas ${f.deltas_per_saga}${'cpu_ms_per_saga' in f ? `, worker CPU ${f.cpu_ms_per_saga} ms` : ''}`,
    `  session share/saga by type: ${Object.entries(f.session_events_by_type)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `  targets (issue 20, long-lived session)`,
    ...targets.map((t) => `  ${t.target.padEnd(44)}${t.pass ? 'PASS' : 'MISS'} ${t.value}`),
  ];
  console.log(lines.join('\n'));
}
