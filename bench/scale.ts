/**
 * One session with no ceiling: drives a single session to N deltas (default
 * 100,000) through the typed client, on a dev server this benchmark starts
 * itself, with the trail going to the audit store, and reports
 *
 * - the carried state's size per run (each run's start input, from history);
 * - p50 latency of the first and the last 1,000 updates (target: last ≤ 1.2× first);
 * - the store's append throughput (SQLite, and PostgreSQL when one can be
 *   started here), deltas/s, batches of 256 as the session sends them;
 * - `hv audit verify` throughput (read from the store, every row re-parsed and
 *   re-hashed, chain and Merkle root) in deltas/s, against the original's chain
 *   verification (SPEC §10: 50 deltas in 758 µs, 66,000 deltas/s).
 *
 *   npm run bench:scale                     100,000 deltas, time box 30 min
 *   npm run bench:scale -- --deltas 20000   choose N
 *   flags: --minutes M (time box: it reports how far it got), --per-run R
 *   (continue-as-new every R updates, default 1000), --json.
 */
import * as path from 'node:path';
import type { Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { killAllDevServers } from '../worker/devServer';
import { HypervisorClient } from '../src/client';
import { createAuditState, appendDelta, type Delta } from '../src/core/audit';
import { SqliteAuditStore, PostgresAuditStore, type AuditStore } from '../src/store';
import { readTrail, verifyStoredTrail } from '../src/store/trail';
import { startPostgres } from '../worker/postgres';
import { withDevHypervisor } from './devHypervisor';

const args = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  const n = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${String(args[i + 1])}`);
  return n;
};
const CONFIG = {
  deltas: flag('deltas', 100_000),
  minutes: flag('minutes', 30),
  perRun: flag('per-run', 1000),
  json: args.includes('--json'),
};
const WINDOW = 1_000;
const ORIGINAL_VERIFY_DELTAS_PER_S = 50 / 758e-6;

const log = (line: string) => {
  if (!CONFIG.json) console.log(line);
};
const p50 = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
};
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** Sizes of each run's start input, first run first (walked back from the last run). */
async function carriedSizes(client: Client, workflowId: string): Promise<number[]> {
  const sizes: number[] = [];
  for (let runId: string | undefined = ''; runId !== undefined;) {
    const h: temporal.api.workflowservice.v1.IGetWorkflowExecutionHistoryResponse =
      await client.workflowService.getWorkflowExecutionHistory({
        namespace: 'default',
        execution: { workflowId, runId },
        maximumPageSize: 1,
      });
    const started = h.history?.events?.[0]?.workflowExecutionStartedEventAttributes;
    sizes.unshift(started?.input?.payloads?.[0]?.data?.length ?? -1);
    runId = started?.continuedExecutionRunId || undefined;
  }
  return sizes;
}

/** Appends as the session makes them: batches of 256 consecutive deltas, in order. */
async function appendThroughput(store: AuditStore, n: number): Promise<number> {
  const sessionId = `bench-append-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  const audit = createAuditState(sessionId);
  const deltas: Delta[] = [];
  for (let i = 0; i < n; i++) {
    deltas.push(
      appendDelta(audit, {
        deltaId: `d-${i}`,
        sessionId,
        agentDid: 'did:mesh:bench',
        at: 1_700_000_000_000 + i,
        changes: [{ path: `/decisions/${i}`, operation: 'add', contentHash: 'a'.repeat(64) }],
      }),
    );
  }
  const t0 = performance.now();
  for (let i = 0; i < n; i += 256) await store.append(sessionId, deltas.slice(i, i + 256));
  return n / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
    shutdownSignals: [],
  });
  await withDevHypervisor('scale', async ({ client, store, taskQueue, dir }) => {
    const hv = new HypervisorClient(client, taskQueue, store);

    const sessionId = `scale-${Date.now().toString(36)}`;
    const session = await hv.createSession({
      sessionId,
      creatorDid: 'did:mesh:admin',
      maxUpdatesPerRun: CONFIG.perRun,
    });
    await session.join({ agentDid: 'did:mesh:alpha', sigmaRaw: 0.85 });
    await session.activate();
    const target = CONFIG.deltas - 3; // creation, join and activation are deltas too
    const deadline = Date.now() + CONFIG.minutes * 60_000;
    const latencies: number[] = [];
    const t0 = performance.now();
    let sent = 0;
    let lastReport = Date.now();
    // 8 in flight: the typed client's own per-session limit (UPDATES_IN_FLIGHT_PER_SESSION).
    const lane = async () => {
      while (sent < target && Date.now() < deadline) {
        sent++;
        const s = performance.now();
        await session.checkAction({ agentDid: 'did:mesh:alpha', actionId: 'read-data' });
        latencies.push(performance.now() - s);
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          log(`  … ${latencies.length} updates, ${round(latencies.length / ((performance.now() - t0) / 1000))}/s`);
        }
      }
    };
    await Promise.all(Array.from({ length: 8 }, lane));
    const drivenS = (performance.now() - t0) / 1000;
    const ended = await session.terminate();
    const deltaCount = ended.commitment.deltaCount;
    const reached = deltaCount >= CONFIG.deltas;

    const sizes = await carriedSizes(client, session.handle.workflowId);
    const first = p50(latencies.slice(0, WINDOW));
    const last = p50(latencies.slice(-WINDOW));

    const v0 = performance.now();
    const trail = await readTrail(store, sessionId);
    const verdict = verifyStoredTrail(trail);
    const verifyS = (performance.now() - v0) / 1000;
    if (!verdict.ok) throw new Error(`the stored trail does not verify: ${verdict.reason}`);
    const verifyRate = deltaCount / verifyS;

    const appendN = Math.min(20_000, Math.max(2_560, deltaCount));
    const sqliteRate = await appendThroughput(new SqliteAuditStore(path.join(dir, 'append-bench.sqlite')), appendN);
    let pgRate: number | null = null;
    try {
      const pg = await startPostgres();
      try {
        const pgStore = await PostgresAuditStore.open(pg.url);
        try {
          pgRate = await appendThroughput(pgStore, appendN);
        } finally {
          await pgStore.close();
        }
      } finally {
        await pg.stop();
      }
    } catch (err) {
      log(`  (PostgreSQL append not measured: ${(err as Error).message})`);
    }

    const result = {
      deltas: deltaCount,
      target: CONFIG.deltas,
      reached,
      updates: latencies.length,
      drivenSeconds: round(drivenS),
      updatesPerSecond: round(latencies.length / drivenS),
      runs: sizes.length,
      carriedBytes: { first: sizes[1] ?? null, last: sizes.at(-1) ?? null, max: Math.max(...sizes.slice(1), 0) },
      p50Ms: { first1000: round(first, 2), last1000: round(last, 2), ratio: round(last / first, 2) },
      appendDeltasPerSecond: {
        sqlite: Math.round(sqliteRate),
        postgres: pgRate === null ? null : Math.round(pgRate),
        batch: 256,
        deltas: appendN,
      },
      verify: {
        deltasPerSecond: Math.round(verifyRate),
        seconds: round(verifyS, 2),
        vsOriginal: round(verifyRate / ORIGINAL_VERIFY_DELTAS_PER_S, 2),
      },
    };
    if (CONFIG.json) {
      console.log(JSON.stringify(result));
    } else {
      log('');
      log(
        `one session, ${deltaCount} deltas${reached ? '' : ` (time box of ${CONFIG.minutes} min ended before ${CONFIG.deltas})`} in ${sizes.length} runs (continue-as-new every ${CONFIG.perRun} updates)`,
      );
      log(
        `  updates:              ${latencies.length} in ${round(drivenS)} s, ${result.updatesPerSecond}/s (8 in flight)`,
      );
      log(
        `  carried state:        ${result.carriedBytes.first} B in run 2 … ${result.carriedBytes.last} B in run ${sizes.length} (max ${result.carriedBytes.max} B)`,
      );
      log(
        `  p50 latency:          first ${WINDOW}: ${result.p50Ms.first1000} ms, last ${WINDOW}: ${result.p50Ms.last1000} ms → ${result.p50Ms.ratio}× (target ≤ 1.2×)`,
      );
      log(
        `  store append:         SQLite ${result.appendDeltasPerSecond.sqlite}/s, PostgreSQL ${result.appendDeltasPerSecond.postgres ?? 'n/a'}/s (batches of 256, ${appendN} deltas)`,
      );
      log(
        `  verify from store:    ${result.verify.deltasPerSecond} deltas/s (${deltaCount} in ${result.verify.seconds} s) = ${result.verify.vsOriginal}× the original's chain verification (50 in 758 µs)`,
      );
    }
  });
}

main().catch((err) => {
  console.error(err);
  killAllDevServers();
  process.exitCode = 1;
});
