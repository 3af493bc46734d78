/**
 * One session's workflow tasks under load: what a task takes from started to completed on the server's
 * clock, against what the session's own code costs (its history replayed, CPU time). Issue 20: where
 * concurrent sagas queue (CAPACITY.md).
 *
 *   npx tsx bench/sessionTasks.ts [concurrency 8] [sagas 64]
 *
 * A dev server and a hypervisor worker of its own (bench/devHypervisor.ts); one session with the default
 * config and 10 agents, its sagas the bench's three no-op steps by one pair of agents in turn
 * (bench/durable.ts's workload).
 */
import { Worker } from '@temporalio/worker';
import type { temporal } from '@temporalio/proto';
import { withDevHypervisor } from './devHypervisor';
import { registerNoopHandler, NOOP_HANDLER } from './workers';
import { HypervisorClient } from '../src/client';
import { workflowBundle } from '../worker/worker';

const CONCURRENCY = Number(process.argv[2] ?? 8);
const SAGAS = Number(process.argv[3] ?? 64);
const REPLAYS = 10;
const AGENTS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta', 'iota', 'kappa'].map(
  (name) => `did:mesh:bench-${name}`,
);
const ACTIONS = ['bench.draft', 'bench.reserve', 'bench.publish'];

type Event = temporal.api.history.v1.IHistoryEvent;
const ms = (e: Event) => Number(e.eventTime!.seconds) * 1000 + (e.eventTime!.nanos ?? 0) / 1e6;
function quantiles(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(s.length * q))]!.toFixed(1);
  return `p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1)} ms`;
}

void withDevHypervisor('session-tasks', async ({ client, store, taskQueue }) => {
  registerNoopHandler();
  const hv = new HypervisorClient(client, taskQueue, store);
  const session = await hv.createSession({
    sessionId: `session-tasks-${Date.now().toString(36)}`,
    creatorDid: 'did:mesh:bench-admin',
    config: {},
  });
  for (const agentDid of AGENTS)
    await session.join({
      agentDid,
      sigmaRaw: 0.85,
      actions: ACTIONS.map((actionId) => ({
        actionId,
        reversibility: 'FULL' as const,
        executeApi: `handler:${NOOP_HANDLER}`,
        undoApi: `handler:${NOOP_HANDLER}`,
      })),
    });
  await session.activate();
  let next = 0;
  const lane = async () => {
    for (let k = next++; k < SAGAS; k = next++) {
      const pair = [AGENTS[(k % 5) * 2]!, AGENTS[(k % 5) * 2 + 1]!];
      const steps = ACTIONS.map((actionId, i) => ({ actionId, agentDid: pair[i % 2]!, input: { n: i } }));
      await (await session.startSaga({ sagaId: `g${k}`, steps })).outcome();
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const wallMs = performance.now() - t0;
  const history = await session.handle.fetchHistory();
  const events = history.events ?? [];
  const ran: number[] = [];
  const waited: number[] = [];
  let scheduled: number | undefined;
  let started: number | undefined;
  for (const e of events) {
    if (e.workflowTaskScheduledEventAttributes) scheduled = ms(e);
    if (e.workflowTaskStartedEventAttributes) {
      started = ms(e);
      if (scheduled !== undefined) waited.push(started - scheduled);
    }
    if (e.workflowTaskCompletedEventAttributes && started !== undefined) ran.push(ms(e) - started);
  }
  console.log(`${SAGAS} sagas at ${CONCURRENCY} at once: ${(SAGAS / (wallMs / 1000)).toFixed(1)} sagas/s`);
  console.log(`session: ${events.length} events, ${ran.length} workflow tasks`);
  console.log(`  scheduled → started: ${quantiles(waited)}`);
  console.log(`  started → completed: ${quantiles(ran)}`);
  // The session's own code: its whole history replayed (a fresh run each time), CPU time per task.
  const bundle = await workflowBundle();
  async function* copies(n: number) {
    for (let i = 0; i < n; i++) yield { workflowId: `${session.handle.workflowId}-${i}`, history };
  }
  for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'warm' }, copies(2)))
    if (r.error) throw r.error;
  const cpu = process.cpuUsage();
  for await (const r of Worker.runReplayHistories({ workflowBundle: bundle, replayName: 'measure' }, copies(REPLAYS)))
    if (r.error) throw r.error;
  const d = process.cpuUsage(cpu);
  const perRun = (d.user + d.system) / 1000 / REPLAYS;
  console.log(
    `  its code, replayed: ${perRun.toFixed(0)} ms CPU per run, ${(perRun / ran.length).toFixed(1)} ms per task`,
  );
});
