/** Shortcuts for workflow tests: a HypervisorClient on the test run's server and task queue, and unique ids. */
import { HypervisorClient } from '../../src/client';
import { testEnv } from './env';

let counter = 0;

/** A session or saga id unique to this test run. */
export function uniqueId(prefix: string): string {
  counter++;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}

export async function hypervisor(): Promise<HypervisorClient> {
  const env = await testEnv();
  return new HypervisorClient(env.client, env.taskQueue, env.store);
}

/** Polls until the condition holds (for state reached through signals between workflows). */
export async function eventually<T>(
  probe: () => Promise<T>,
  ok: (value: T) => boolean,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
