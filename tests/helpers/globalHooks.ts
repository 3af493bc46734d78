/**
 * Mocha root hooks for the workflow tests: the shared Temporal environment is
 * set up once before every test — building the Temporal CLI first when this
 * machine has none, which takes minutes once — and stopped after them all.
 */
import { killAllDevServers } from '../../worker/devServer';
import { installQuietRuntime, stopTestEnv, testEnv } from './env';

installQuietRuntime();

// A test run stopped by a signal (Ctrl-C, `timeout`) leaves no dev server behind.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    killAllDevServers();
    process.exit(128 + ({ SIGHUP: 1, SIGINT: 2, SIGTERM: 15 } as const)[signal]);
  });
}

export const mochaHooks = {
  async beforeAll(this: Mocha.Context) {
    this.timeout(30 * 60_000);
    await testEnv();
  },
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopTestEnv();
  },
};
