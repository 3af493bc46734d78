/**
 * `npm run bench:tools` (issue 21): a governed tool call — one step appended to an agent's open turn (SPEC §13:
 * through the session's door, gated, run by the turn's saga as an activity, recorded) — against the same tool
 * called directly through an activity by a plain workflow (bench/plain/workflows.ts `plainTurn`: one update per
 * call). Fair by construction: the plain activity runs the same registered handler with the governed step's own
 * activity options (its timing read back from the turn's first step, through workflows/stepOptions.ts); every
 * measured call starts with both sides quiet (no workflow task or activity pending on the plain workflow, the
 * session or the turn's saga); calls are interleaved in small batches, the side that goes first alternating.
 * One dev server and both workers in this process. Reports latency (p50, p95) and, over the measured calls only,
 * history events, bytes and workflow tasks per call (the session's share included), as ratios to plain.
 *
 *   npm run bench:tools [-- --calls N] [-- --batch B]   (default 100 calls, batches of 5; BENCH_TOOL_CALLS)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, NativeConnection, Runtime, Worker, makeTelemetryFilterString } from '@temporalio/worker';
import { HypervisorClient } from '../src/client';
import { stepAnswer } from '../src/client/turns';
import { TURN_MAX_STEPS_LIMIT as MAX_TURN_STEPS } from '../src/core/session';
import { openAuditStore } from '../src/store';
import { registerStepHandler } from '../activities/handlers';
import { startDevServer } from '../worker/devServer';
import { freePort } from '../worker/ports';
import { createHypervisorWorker } from '../worker/worker';
import * as plainActivities from './plain/activities';
import { callToolUpdate, endTurnUpdate } from './plain/workflows';
import { plainBundlerOptions } from './workers';

const argv = process.argv.slice(2);
const flag = (name: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const CALLS = Number(flag('calls') ?? process.env.BENCH_TOOL_CALLS ?? 100);
const BATCH = Number(flag('batch') ?? 5);
if (!Number.isInteger(CALLS) || CALLS < 1 || CALLS >= MAX_TURN_STEPS)
  throw new Error(
    `--calls must be a whole number from 1 to ${MAX_TURN_STEPS - 1} (one turn's steps, less the first), got ${flag('calls')}`,
  );
if (!Number.isInteger(BATCH) || BATCH < 1) throw new Error(`--batch must be a whole number ≥ 1, got ${flag('batch')}`);
const TOOL = 'bench.tool';
const AGENT = 'did:mesh:bench-agent';
const log = (line: string) => console.error(line);

const percentile = (sorted: number[], p: number) =>
  sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))]!;

interface Cost {
  events: number;
  bytes: number;
  workflowTasks: number;
  /** Events by type (`--events` prints them per call). */
  types: Map<string, number>;
}
const EVENT = temporal.api.enums.v1.EventType;

async function historyCost(handles: WorkflowHandle[]): Promise<Cost> {
  const cost: Cost = { events: 0, bytes: 0, workflowTasks: 0, types: new Map() };
  for (const h of handles) {
    for (const e of (await h.fetchHistory()).events ?? []) {
      cost.events++;
      cost.bytes += temporal.api.history.v1.HistoryEvent.encode(e).finish().length;
      if (e.eventType === EVENT.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) cost.workflowTasks++;
      const type = `${h.workflowId.startsWith('plain') ? '' : h.workflowId.startsWith('hv-saga-') ? 'saga ' : 'session '}${EVENT[e.eventType ?? 0]?.replace('EVENT_TYPE_', '')}`;
      cost.types.set(type, (cost.types.get(type) ?? 0) + 1);
    }
  }
  return cost;
}
const minus = (a: Cost, b: Cost): Cost => ({
  events: a.events - b.events,
  bytes: a.bytes - b.bytes,
  workflowTasks: a.workflowTasks - b.workflowTasks,
  types: new Map([...a.types].map(([t, n]) => [t, n - (b.types.get(t) ?? 0)] as const).filter(([, n]) => n !== 0)),
});

/** Until none of the workflows has a workflow task or an activity pending: a call measured from here waits on nothing else. */
async function quiet(handles: WorkflowHandle[]): Promise<void> {
  for (let tries = 0; ; tries++) {
    const busy = await Promise.all(
      handles.map(async (h) => {
        const { raw } = await h.describe();
        return (raw.pendingActivities?.length ?? 0) > 0 || raw.pendingWorkflowTask != null;
      }),
    );
    if (!busy.some(Boolean)) return;
    if (tries > 500) throw new Error('the workflows did not go quiet within 10 s');
    await new Promise((r) => setTimeout(r, 20));
  }
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
      bundlerOptions: plainBundlerOptions,
      activities: plainActivities,
    }),
  ];
  const runs = workers.map((w) => w.run());
  try {
    const hv = new HypervisorClient(client, hvQueue, store);
    const session = await hv.createSession({
      sessionId: `bench-tools-${run}`,
      creatorDid: 'did:mesh:bench-admin',
      config: { turns: { maxSteps: CALLS + 1 } },
    });
    await session.join({
      agentDid: AGENT,
      sigmaRaw: 0.85,
      actions: [{ actionId: 'tool', reversibility: 'FULL', executeApi: `handler:${TOOL}`, undoApi: `handler:${TOOL}` }],
    });
    await session.activate();
    const turn = await session.openTurn({ agentDid: AGENT, deadlineSeconds: 3600 });
    const plain = await client.workflow.start('plainTurn', { taskQueue: plainQueue, workflowId: `plain-turn-${run}` });

    // A first call each, not measured: it warms both sides and gives the governed step's own timing to plain.
    const first = await turn.append({ actionId: 'tool', input: { i: -1 } });
    if (!first.ok) throw new Error(`the first governed call failed: ${first.error}`);
    const timing = (await turn.saga.state()).saga.steps[0]!;
    const callPlain = (i: number) =>
      plain.executeUpdate(callToolUpdate, {
        args: [{ stepId: `call-${i}`, actionId: 'tool', agentDid: AGENT, input: { i }, handler: TOOL }, timing],
      });
    await callPlain(-1);
    const all = [plain, turn.saga.handle, session.handle];
    await quiet(all);
    const plainBefore = await historyCost([plain]);
    const governedBefore = await historyCost([turn.saga.handle, session.handle]);

    const plainMs: number[] = [];
    const governedMs: number[] = [];
    const appendMs: number[] = [];
    log(`${CALLS} calls each, interleaved in batches of ${BATCH} (the side that goes first alternating) …`);
    const timed = async (ms: number[], call: () => Promise<unknown>) => {
      await quiet(all);
      const t0 = performance.now();
      await call();
      ms.push(performance.now() - t0);
    };
    for (let done = 0, batch = 0; done < CALLS; batch++) {
      const n = Math.min(BATCH, CALLS - done);
      const sides = [
        async () => {
          for (let k = 0; k < n; k++) await timed(plainMs, () => callPlain(done + k));
        },
        async () => {
          for (let k = 0; k < n; k++)
            await timed(governedMs, async () => {
              // What turn.append does, in its two parts: the session's append, then the step's answer from its saga.
              const t0 = performance.now();
              const appended = await session.send('appendStep', {
                sagaId: turn.sagaId,
                agentDid: AGENT,
                actionId: 'tool',
                input: { i: done + k },
              });
              appendMs.push(performance.now() - t0);
              const answer = await stepAnswer(turn.saga, appended);
              if (!answer.ok) throw new Error(`governed call ${done + k} failed: ${answer.error}`);
            });
        },
      ];
      if (batch % 2) sides.reverse();
      for (const side of sides) await side();
      done += n;
    }
    await quiet(all);
    const plainCost = minus(await historyCost([plain]), plainBefore);
    // The session's share: what the measured calls added to its history.
    const governedCost = minus(await historyCost([turn.saga.handle, session.handle]), governedBefore);
    await plain.executeUpdate(endTurnUpdate);
    await plain.result();
    await turn.end();
    await turn.result();

    const p = plainMs.sort((a, b) => a - b);
    const g = governedMs.sort((a, b) => a - b);
    const rows: [string, number, number][] = [
      ['p50 ms / call', percentile(p, 50), percentile(g, 50)],
      ['p95 ms / call', percentile(p, 95), percentile(g, 95)],
      [
        '  of which the append p50',
        0,
        percentile(
          appendMs.sort((a, b) => a - b),
          50,
        ),
      ],
      ['history events / call', plainCost.events / CALLS, governedCost.events / CALLS],
      ['history bytes / call', plainCost.bytes / CALLS, governedCost.bytes / CALLS],
      ['workflow tasks / call', plainCost.workflowTasks / CALLS, governedCost.workflowTasks / CALLS],
    ];
    const r = (x: number) => Math.round(x * 10) / 10;
    console.log(`$ npm run bench:tools -- --calls ${CALLS} --batch ${BATCH}`);
    console.log(
      `bench:tools — ${CALLS} calls each, batches of ${BATCH}, dev server (${server.address}), one worker process; load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
    console.log(`  ${'measure'.padEnd(26)}${'plain'.padStart(10)}${'governed'.padStart(10)}${'ratio'.padStart(8)}`);
    for (const [name, a, b] of rows)
      console.log(
        `  ${name.padEnd(26)}${(a ? String(r(a)) : '').padStart(10)}${String(r(b)).padStart(10)}${(a ? r(b / a) + '×' : '').padStart(8)}`,
      );
    if (argv.includes('--events'))
      for (const [side, cost] of [
        ['plain', plainCost],
        ['governed', governedCost],
      ] as const) {
        console.log(`  ${side} events / call:`);
        for (const [t, n] of [...cost.types].sort()) console.log(`    ${t.padEnd(50)}${r(n / CALLS)}`);
      }
    const ratio = (name: string) => {
      const row = rows.find(([n]) => n === name)!;
      return row[2] / row[1];
    };
    const p50 = ratio('p50 ms / call');
    const events = ratio('history events / call');
    console.log(
      `  targets (issue 21): p50 ≤ 1.3× ${p50 <= 1.3 ? 'PASS' : 'MISS'} ${Math.round(p50 * 100) / 100}×; events ≤ 1.5× ${events <= 1.5 ? 'PASS' : 'MISS'} ${Math.round(events * 100) / 100}×`,
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
