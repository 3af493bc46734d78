/**
 * The measuring method of SPEC §10: a warm-up of 10 % of the iterations (at
 * most 100), then wall time per iteration; mean, p50, p95, p99 and ops/s.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// A full garbage collection before each workload's timed loop, so that no
// workload pays for the garbage of the one before it (a mark-compact of the
// previous workload's heap costs tens of ms, landing in one unlucky sample).
// `gc` is exposed at run time because `tsx bench/core.ts` passes no node flags.
setFlagsFromString('--expose-gc');
export const collectGarbage = runInNewContext('gc') as () => void;
export interface Workload {
  name: string;
  iterations: number;
  /** The original's mean on this machine kind, in µs (SPEC §10). */
  originalMeanUs: number;
  /** One iteration; `i` lets a workload make fresh ids without a clock or randomness. */
  run(i: number): void;
  setup?(): void;
}

export interface Result {
  name: string;
  iterations: number;
  mean_us: number;
  p50_us: number;
  p95_us: number;
  p99_us: number;
  ops_per_sec: number;
  original_mean_us: number;
  speedup: number;
}

function percentile(sorted: Float64Array, p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)]!;
}

export function measure(workload: Workload): Result {
  workload.setup?.();
  const warmup = Math.min(100, Math.floor(workload.iterations / 10));
  for (let i = 0; i < warmup; i++) workload.run(-1 - i);
  collectGarbage();
  const samples = new Float64Array(workload.iterations);
  // performance.now() (ms, sub-µs precision) costs less per reading than
  // process.hrtime.bigint(), which allocates a BigInt: the timer's own cost is
  // part of every sample, and the whole of a sub-µs one.
  for (let i = 0; i < workload.iterations; i++) {
    const start = performance.now();
    workload.run(i);
    samples[i] = (performance.now() - start) * 1000;
  }
  let total = 0;
  for (const s of samples) total += s;
  const mean = total / samples.length;
  samples.sort();
  return {
    name: workload.name,
    iterations: workload.iterations,
    mean_us: mean,
    p50_us: percentile(samples, 50),
    p95_us: percentile(samples, 95),
    p99_us: percentile(samples, 99),
    ops_per_sec: 1e6 / mean,
    original_mean_us: workload.originalMeanUs,
    speedup: workload.originalMeanUs / mean,
  };
}

export function geometricMean(values: number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}
