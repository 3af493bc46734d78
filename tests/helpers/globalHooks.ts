/**
 * Mocha root hooks for the workflow tests: the shared Temporal environment is
 * set up once before every test — building the Temporal CLI first when this
 * machine has none, which takes minutes once — and stopped after them all.
 */
import { installQuietRuntime, stopTestEnv, testEnv } from './env';

installQuietRuntime();

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
