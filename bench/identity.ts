/**
 * What signed requests cost (issue 12): the p50 of a signed join in a did:key
 * session against an unsigned join in an identity "none" session, interleaved
 * one by one on one dev server this benchmark starts itself (target: signed ≤
 * 1.2× unsigned), and, in process, the cost per request of what the session
 * adds: the validator's check (canonical JSON, SHA-256, Ed25519 verify — with
 * @noble, as workflow code runs it), the handler's (nonce window only), and
 * the client's signing.
 *
 *   npm run bench:identity                 60 joins per variant
 *   npm run bench:identity -- --joins 200 --json
 */
import { DefaultLogger, Runtime, makeTelemetryFilterString } from '@temporalio/worker';
import { killAllDevServers } from '../worker/devServer';
import { HypervisorClient, type SessionHandle } from '../src/client';
import {
  acceptNonces,
  checkAuth,
  generateDidKey,
  verifySignature,
  type DidKey,
  type NonceWindows,
} from '../src/core/identity';
import { KeyRing, signRequest } from '../src/client/keys';
import { withDevHypervisor } from './devHypervisor';

const args = process.argv.slice(2);
const arg = (name: string, fallback: number): number => {
  const i = args.indexOf(`--${name}`);
  const n = i >= 0 ? Number(args[i + 1]) : fallback;
  if (!Number.isInteger(n) || n <= 0)
    throw new Error(`--${name} must be a positive integer, got ${String(args[i + 1])}`);
  return n;
};
const CONFIG = { joins: arg('joins', 60), json: args.includes('--json') };
/** Joins per session before a fresh one (maxParticipants is at most 100). */
const PER_SESSION = 90;
const ACTIONS = [
  {
    actionId: 'draft',
    reversibility: 'FULL' as const,
    executeApi: 'handler:demo.draft-email',
    undoApi: 'handler:demo.draft-email',
  },
];

const log = (line: string) => {
  if (!CONFIG.json) console.log(line);
};
const pct = (xs: number[], p: number) => {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};
const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

/** µs per call of `fn`, p50 over `n` calls after a warm-up. */
function micro(n: number, fn: (i: number) => void): { p50: number; mean: number } {
  for (let i = 0; i < Math.min(100, n / 10); i++) fn(-1 - i);
  const samples: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    fn(i);
    samples.push((performance.now() - t) * 1000);
  }
  return { p50: round(pct(samples, 50)), mean: round(samples.reduce((a, b) => a + b, 0) / n) };
}

/** The in-process costs of one signed join. */
function perRequestCosts() {
  const sessionId = 'bench-identity';
  const keys = Array.from({ length: 50 }, () => generateDidKey());
  const ring = new KeyRing(keys);
  const requests = keys.map((k) =>
    signRequest(ring, 'join', sessionId, { agentDid: k.did, sigmaRaw: 0.8, actions: ACTIONS }),
  );
  const now = Date.now();
  const validator = micro(500, (i) => {
    const r = requests[Math.abs(i) % requests.length]!;
    checkAuth({ identity: 'did:key', sessionId, windows: new Map(), now }, 'join', r, { all: [r.agentDid as string] });
  });
  const windows: NonceWindows = new Map();
  const handler = micro(500, (i) => {
    const r = requests[Math.abs(i) % requests.length]!;
    const w = new Map(windows);
    checkAuth({ identity: 'did:key', sessionId, windows: w, now: undefined }, 'join', r, {
      all: [r.agentDid as string],
    });
    acceptNonces(w, 'join', r);
  });
  const auth = (requests[0]!.auth as { signature: string }[])[0]!;
  const hash = checkAuth({ identity: 'did:key', sessionId, windows: new Map(), now }, 'join', requests[0], {
    all: [keys[0]!.did],
  })[0]!.payloadHash;
  const verify = micro(500, () => {
    verifySignature(keys[0]!.did, hash, auth.signature);
  });
  const sign = micro(500, (i) => {
    signRequest(ring, 'join', sessionId, {
      agentDid: keys[Math.abs(i) % keys.length]!.did,
      sigmaRaw: 0.8,
      actions: ACTIONS,
    });
  });
  return { validatorUs: validator, handlerUs: handler, ed25519VerifyUs: verify, clientSignUs: sign };
}

async function main(): Promise<void> {
  Runtime.install({
    logger: new DefaultLogger('ERROR'),
    telemetryOptions: { logging: { filter: makeTelemetryFilterString({ core: 'ERROR' }) } },
    shutdownSignals: [],
  });
  const costs = perRequestCosts();
  log('per request, in process (@noble, as in the workflow sandbox):');
  log(
    `  validator (canonical JSON, SHA-256, Ed25519 verify, window): p50 ${costs.validatorUs.p50} µs (mean ${costs.validatorUs.mean})`,
  );
  log(`  of which Ed25519 verify:                                     p50 ${costs.ed25519VerifyUs.p50} µs`);
  log(`  handler (payload hash, nonce window):                        p50 ${costs.handlerUs.p50} µs`);
  log(`  client signing (node:crypto SHA-256, @noble Ed25519):        p50 ${costs.clientSignUs.p50} µs`);

  await withDevHypervisor('identity', async ({ client, store, taskQueue }) => {
    const creator = generateDidKey();
    const ring = new KeyRing([creator]);
    const signedHv = new HypervisorClient(client, taskQueue, store, ring);
    const plainHv = new HypervisorClient(client, taskQueue, store);

    let sessions = 0;
    const fresh = async (signed: boolean): Promise<SessionHandle> => {
      const sessionId = `bench-identity-${Date.now().toString(36)}-${++sessions}`;
      const config = { maxParticipants: 100, ...(signed ? { identity: 'did:key' as const } : {}) };
      return (signed ? signedHv : plainHv).createSession({
        sessionId,
        creatorDid: signed ? creator.did : 'did:mesh:admin',
        config,
      });
    };
    const keys: DidKey[] = Array.from({ length: CONFIG.joins + 10 }, () => generateDidKey());
    for (const k of keys) ring.add(k);
    const lat = { signed: [] as number[], unsigned: [] as number[] };
    let signedSession = await fresh(true);
    let plainSession = await fresh(false);
    // Warm-up: 5 of each, not counted (the bundle, the first activities).
    for (let i = -5; i < CONFIG.joins; i++) {
      if (i > 0 && i % PER_SESSION === 0) [signedSession, plainSession] = [await fresh(true), await fresh(false)];
      const k = keys[i + 5]!;
      // Alternate which goes first, so neither always meets the other's leftovers.
      const order = i % 2 === 0 ? (['signed', 'unsigned'] as const) : (['unsigned', 'signed'] as const);
      for (const variant of order) {
        const t = performance.now();
        if (variant === 'signed') await signedSession.join({ agentDid: k.did, sigmaRaw: 0.8, actions: ACTIONS });
        else await plainSession.join({ agentDid: `did:mesh:bench-${i + 5}`, sigmaRaw: 0.8, actions: ACTIONS });
        if (i >= 0) lat[variant].push(performance.now() - t);
      }
    }
    const signedP50 = pct(lat.signed, 50);
    const unsignedP50 = pct(lat.unsigned, 50);
    const result = {
      joins: CONFIG.joins,
      p50Ms: { signed: round(signedP50, 2), unsigned: round(unsignedP50, 2), ratio: round(signedP50 / unsignedP50, 3) },
      p95Ms: { signed: round(pct(lat.signed, 95), 2), unsigned: round(pct(lat.unsigned, 95), 2) },
      perRequest: costs,
    };
    if (CONFIG.json) {
      console.log(JSON.stringify(result));
    } else {
      log('');
      log(`joins on one dev server, interleaved (${CONFIG.joins} of each, concurrency 1):`);
      log(
        `  p50: signed ${result.p50Ms.signed} ms, unsigned ${result.p50Ms.unsigned} ms → ${result.p50Ms.ratio}× (target ≤ 1.2×)`,
      );
      log(`  p95: signed ${result.p95Ms.signed} ms, unsigned ${result.p95Ms.unsigned} ms`);
    }
  });
}

main().catch((err) => {
  console.error(err);
  killAllDevServers();
  process.exitCode = 1;
});
