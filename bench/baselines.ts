/**
 * Same-run baselines: each of the core's designs against the plain way of
 * doing the same work, measured here, in this process, and reported as a
 * ratio — so the figures hold whatever the machine's speed or load.
 *
 *   npm run bench:baselines
 */
import { createHash } from 'node:crypto';
import { collectGarbage, measure, type Workload } from './harness';
import { nobleSha256, sha256Hex } from '../src/core/hash';
import { useNodeCrypto } from '../src/node/hashNode';
import { createLiabilityState, isActive, sigmaEffUnchecked, vouch, type LiabilityState } from '../src/core/liability';
import { createMerkleAccumulator, merkleAppend, merkleRoot, merkleRootFromScratch } from '../src/core/merkle';

useNodeCrypto();

// A delta-sized input: the canonical JSON of a one-change delta is ~390 bytes.
const DELTA_TEXT = JSON.stringify({
  agentDid: 'did:example:agent-1',
  at: 1_700_000_000_000,
  changes: [
    {
      agentDid: 'did:example:agent-1',
      contentHash: 'a'.repeat(64),
      operation: 'add',
      path: '/sessions/s-1/file-1.txt',
    },
  ],
  deltaId: 's-1-d1',
  parentHash: 'b'.repeat(64),
  sessionId: 's-1',
  turn: 2,
});

// A long-lived engine: 10,000 sessions' bonds, then σ_eff of one vouchee.
let engine: LiabilityState;
function buildEngine(): void {
  engine = createLiabilityState();
  for (let i = 0; i < 10_000; i++) {
    vouch(
      engine,
      {
        sessionId: `s-${i}`,
        voucher: 'did:example:voucher',
        vouchee: 'did:example:vouchee',
        voucherSigma: 0.9,
        bondPct: 0.2,
      },
      1_000 + i,
      `bond-${i}`,
    );
  }
}
/** σ_eff the plain way: scan every bond the engine holds. */
function sigmaEffByScan(
  state: LiabilityState,
  sessionId: string,
  vouchee: string,
  sigma: number,
  omega: number,
  now: number,
): number {
  let bonded = 0;
  for (const b of Object.values(state.bonds))
    if (b.sessionId === sessionId && b.vouchee === vouchee && isActive(b, now)) bonded += b.amount;
  return Math.min(1, sigma + omega * bonded);
}

const leaves = Array.from({ length: 1_000 }, (_, i) => sha256Hex(`leaf-${i}`));
const acc = createMerkleAccumulator();
for (const leaf of leaves) merkleAppend(acc, leaf);

let sink: unknown;
const pairs: { what: string; ours: Workload; baseline: Workload }[] = [
  {
    what: "SHA-256 of a delta (~390 B) in Node: node:crypto's one-shot hash() vs createHash().update().digest()",
    ours: {
      name: 'sha256Hex',
      iterations: 20_000,
      originalMeanUs: 0,
      run: () => {
        sink = sha256Hex(DELTA_TEXT);
      },
    },
    baseline: {
      name: 'createHash',
      iterations: 20_000,
      originalMeanUs: 0,
      run: () => {
        sink = createHash('sha256').update(DELTA_TEXT).digest('hex');
      },
    },
  },
  {
    what: 'SHA-256 of a delta (~390 B): node:crypto (plain Node) vs @noble/hashes (what workflows use)',
    ours: {
      name: 'node:crypto',
      iterations: 20_000,
      originalMeanUs: 0,
      run: () => {
        sink = sha256Hex(DELTA_TEXT);
      },
    },
    baseline: {
      name: 'noble',
      iterations: 20_000,
      originalMeanUs: 0,
      run: () => {
        sink = nobleSha256.hex(DELTA_TEXT);
      },
    },
  },
  {
    what: "σ_eff among 10,000 sessions' bonds: per-vouchee index vs a scan of every bond",
    ours: {
      name: 'indexed',
      iterations: 5_000,
      originalMeanUs: 0,
      setup: buildEngine,
      run: () => {
        sink = sigmaEffUnchecked(engine, 's-5000', 'did:example:vouchee', 0.4, 0.5, 50_000);
      },
    },
    baseline: {
      name: 'scan',
      iterations: 500,
      originalMeanUs: 0,
      run: () => {
        sink = sigmaEffByScan(engine, 's-5000', 'did:example:vouchee', 0.4, 0.5, 50_000);
      },
    },
  },
  {
    what: 'Merkle root of 1,000 deltas: from the incremental accumulator (O(log n)) vs from scratch (O(n))',
    ours: {
      name: 'accumulator',
      iterations: 2_000,
      originalMeanUs: 0,
      run: () => {
        sink = merkleRoot(acc);
      },
    },
    baseline: {
      name: 'from scratch',
      iterations: 200,
      originalMeanUs: 0,
      run: () => {
        sink = merkleRootFromScratch(leaves);
      },
    },
  },
];

for (const { what, ours, baseline } of pairs) {
  const a = measure(ours);
  const b = measure(baseline);
  console.log(
    `${what}\n  ours ${a.mean_us.toFixed(2)} µs · baseline ${b.mean_us.toFixed(2)} µs · ${(b.mean_us / a.mean_us).toFixed(1)}× faster`,
  );
}

// Memory: what the bond indexes cost on top of the bonds themselves, for the
// same 10,000 bonds (heap after a full collection, in this process).
function heapOf(build: () => unknown): number {
  collectGarbage();
  const before = process.memoryUsage().heapUsed;
  const kept = build();
  collectGarbage();
  const after = process.memoryUsage().heapUsed;
  sink = kept;
  return after - before;
}
// Fresh copies (as after a continue-as-new), so neither side shares objects with the other.
const withIndexes = heapOf(() => JSON.parse(JSON.stringify(engine)));
const bondsOnly = heapOf(() => JSON.parse(JSON.stringify(engine.bonds)));
console.log(
  `Memory of 10,000 bonds: with the per-session and per-agent indexes vs the bond records alone\n  ours ${(withIndexes / 1024).toFixed(0)} KiB · baseline ${(bondsOnly / 1024).toFixed(0)} KiB · ${(withIndexes / bondsOnly).toFixed(2)}× the memory`,
);
void sink;
