/**
 * `npm run bench:tools` (issue 21): a governed tool call — one step appended to an agent's open turn (SPEC §13:
 * through the session's door, gated, run by the turn's saga as an activity, recorded) — against the same tool
 * called directly through an activity by a plain workflow (bench/plain/workflows.ts `plainTurn`: one update per
 * call, the governed step's activity options). One dev server and both workers in this process; calls
 * interleaved, plain then governed, one at a time. Reports latency per call (p50, p95) and history events and
 * bytes per call (the session's share included), as ratios to plain.
 *
 *   npm run bench:tools [-- --calls N]      (default 100, at most one turn's 500 steps; BENCH_TOOL_CALLS)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { HypervisorClient } from '../src/client';
import { TURN_MAX_STEPS_LIMIT as MAX_TURN_STEPS } from '../src/core/session';
import { openAuditStore } from '../src/store';
import { registerStepHandler } from '../activities/handlers';
import { startDevServer } from '../worker/devServer';
import { freePort } from '../worker/ports';
import { createHypervisorWorker } from '../worker/worker';
import * as plainActivities from './plain/activities';
import { callToolUpdate, endTurnUpdate } from './plain/workflows';

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const CALLS = Number(flag('calls') ?? process.env.BENCH_TOOL_CALLS ?? 100);
if (!Number.isInteger(CALLS) || CALLS < 1 || CALLS > MAX_TURN_STEPS)
  throw new Error(
    `--calls must be a whole number from 1 to ${MAX_TURN_STEPS} (one turn's steps), got ${flag('calls')}`,
  );
const TOOL = 'bench.tool';
const AGENT = 'did:mesh:bench-agent';
const log = (line: string) => console.error(line);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))]!;

async function historyCost(handles: WorkflowHandle[]): Promise<{ events: number; bytes: number }> {
  let events = 0;
  let bytes = 0;
  for (const h of handles) {
    for (const e of (await h.fetchHistory()).events ?? []) {
      events++;
      bytes += temporal.api.history.v1.HistoryEvent.encode(e).finish().length;
    }
  }
  return { events, bytes };
}

async function main(): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
  });
  registerStepHandler(TOOL, {
    async execute(input) {
      return { echoed: input ?? null };
    },
    async undo() {
      return { undone: true };
    },
  });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hv-bench-tools-'));
  const server = await startDevServer(
    {
      port: await freePort(),
      uiPort: await freePort(),
      dbFile: path.join(dir, 'temporal.db'),
      headless: true,
      logFile: path.join(dir, 'server.log'),
    },
    () => undefined,
  );
  const connection = await Connection.connect({ address: server.address });
  const nativeConnection = await NativeConnection.connect({ address: server.address });
  const client = new Client({ connection });
  const store = await openAuditStore({ dataDir: dir });
  const run = Date.now().toString(36);
  const hvQueue = `hv-tools-${run}`;
  const plainQueue = `plain-tools-${run}`;
  const workers = [
    await createHypervisorWorker({ connection: nativeConnection, namespace: 'default', taskQueue: hvQueue, store }),
    await Worker.create({
      connection: nativeConnection,
      taskQueue: plainQueue,
      workflowsPath: require.resolve('./plain/workflows'),
      activities: plainActivities,
    }),
  ];
  const runs = workers.map((w) => w.run());
  try {
    const hv = new HypervisorClient(client, hvQueue, store);
    const session = await hv.createSession({
      sessionId: `bench-tools-${run}`,
      creatorDid: 'did:mesh:bench-admin',
      config: { turns: { maxSteps: CALLS } },
    });
    await session.join({
      agentDid: AGENT,
      sigmaRaw: 0.85,
      actions: [{ actionId: 'tool', reversibility: 'FULL', executeApi: `handler:${TOOL}`, undoApi: `handler:${TOOL}` }],
    });
    await session.activate();
    const turn = await session.openTurn({ agentDid: AGENT, deadlineSeconds: 3600 });
    const plain = await client.workflow.start('plainTurn', { taskQueue: plainQueue, workflowId: `plain-turn-${run}` });

    const plainMs: number[] = [];
    const governedMs: number[] = [];
    log(`${CALLS} calls each, interleaved (plain, governed) …`);
    for (let i = 0; i < CALLS; i++) {
      const step = { stepId: `call-${i}`, actionId: 'tool', agentDid: AGENT, input: { i } };
      let t0 = performance.now();
      await plain.executeUpdate(callToolUpdate, { args: [step] });
      plainMs.push(performance.now() - t0);
      t0 = performance.now();
      const answer = await turn.append({ actionId: 'tool', agentDid: AGENT, input: { i } } as never);
      governedMs.push(performance.now() - t0);
      if (!answer.ok) throw new Error(`governed call ${i} failed: ${answer.error}`);
    }
    await plain.executeUpdate(endTurnUpdate);
    await plain.result();
    await turn.end();
    await turn.result();

    const p = plainMs.sort((a, b) => a - b);
    const g = governedMs.sort((a, b) => a - b);
    const plainCost = await historyCost([plain]);
    // The session's share: its whole history here holds one turn (and the session's own start and joins).
    const governedCost = await historyCost([turn.saga.handle, session.handle]);
    const rows: [string, number, number][] = [
      ['p50 ms / call', percentile(p, 50), percentile(g, 50)],
      ['p95 ms / call', percentile(p, 95), percentile(g, 95)],
      ['history events / call', plainCost.events / CALLS, governedCost.events / CALLS],
      ['history bytes / call', plainCost.bytes / CALLS, governedCost.bytes / CALLS],
    ];
    const r = (x: number) => Math.round(x * 10) / 10;
    console.log(`bench:tools — ${CALLS} calls, dev server (${server.address}), one worker process`);
    console.log(`  ${'measure'.padEnd(24)}${'plain'.padStart(10)}${'governed'.padStart(10)}${'ratio'.padStart(8)}`);
    for (const [name, a, b] of rows)
      console.log(
        `  ${name.padEnd(24)}${String(r(a)).padStart(10)}${String(r(b)).padStart(10)}${(r(b / a) + '×').padStart(8)}`,
      );
    const ratio = (k: number) => rows[k]![2] / rows[k]![1];
    console.log(
      `  targets (issue 21): p50 ≤ 1.3× ${ratio(0) <= 1.3 ? 'PASS' : 'MISS'} ${r(ratio(0))}×; events ≤ 1.5× ${ratio(2) <= 1.5 ? 'PASS' : 'MISS'} ${r(ratio(2))}×`,
    );
  } finally {
    for (const w of workers) w.shutdown();
    await Promise.allSettled(runs);
    await store.close();
    await nativeConnection.close();
    await connection.close();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  },
);
