/**
 * A worker's audit appends, in a process of its own, for tests/adversarial/n26-store-timeouts.test.ts (N26):
 * argv[2] is JSON { url, sessionId, turns, options }. It opens the PostgreSQL store with
 * `options`, prints "ready", and appends its session's chain one delta at a time, from
 * the stored last turn on, until "stop" arrives on stdin; then it prints one JSON line
 * { appended, errors } (errors: each failed append's error name and message) and exits 0.
 * The test freezes it (SIGSTOP) inside an append, and resumes it.
 */
import { PostgresAuditStore, type PostgresAuditStoreOptions } from '../../src/store/postgres';
import { chain } from './deltas';

interface Job {
  url: string;
  sessionId: string;
  turns: number;
  options: PostgresAuditStoreOptions;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as Job;
  const store = await PostgresAuditStore.open(job.url, job.options);
  const deltas = chain(job.sessionId, job.turns);
  let stop = false;
  process.stdin.on('data', (chunk) => {
    if (String(chunk).includes('stop')) stop = true;
  });
  process.stdout.write('ready\n');
  let appended = 0;
  const errors: string[] = [];
  while (!stop) {
    try {
      const last = await store.lastTurn(job.sessionId);
      if (last >= deltas.length) break;
      appended += (await store.append(job.sessionId, [deltas[last]!])).appended;
    } catch (err) {
      errors.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await store.close();
  process.stdout.write(`${JSON.stringify({ appended, errors })}\n`);
  process.stdin.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
