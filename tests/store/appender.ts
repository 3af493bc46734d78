/**
 * A second process appending to the audit store, for the contract suite's
 * cross-process test. argv[2] is JSON: { kind, location, sessions, turns, batch }.
 * It opens the store, prints "ready", waits for "go" on stdin, appends each
 * session's chain (the sessions interleaved, batch by batch), and prints the
 * number it appended per session as one JSON line.
 */
import { PostgresAuditStore } from '../../src/store/postgres';
import { SqliteAuditStore } from '../../src/store/sqlite';
import type { AuditStore } from '../../src/store/types';
import { chain } from './deltas';

interface Job {
  kind: 'sqlite' | 'postgres';
  location: string;
  sessions: string[];
  turns: number;
  batch: number;
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2]!) as Job;
  const store: AuditStore =
    job.kind === 'sqlite' ? new SqliteAuditStore(job.location) : await PostgresAuditStore.open(job.location);
  process.stdout.write('ready\n');
  await new Promise<void>((resolve) => {
    let buffered = '';
    process.stdin.on('data', (chunk) => {
      buffered += String(chunk);
      if (buffered.includes('go\n')) resolve();
    });
  });
  const appended: Record<string, number> = Object.fromEntries(job.sessions.map((s) => [s, 0]));
  const chains = job.sessions.map((s) => chain(s, job.turns));
  for (let i = 0; i < job.turns; i += job.batch) {
    await Promise.all(
      chains.map(async (c) => {
        appended[c[0]!.sessionId]! += (await store.append(c[0]!.sessionId, c.slice(i, i + job.batch))).appended;
      }),
    );
  }
  await store.close();
  process.stdout.write(JSON.stringify(appended) + '\n');
  process.stdin.destroy();
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
