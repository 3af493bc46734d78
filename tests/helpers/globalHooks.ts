/** Mocha root hooks: the shared Temporal environment is stopped once, after every test. */
import { installQuietRuntime, stopTestEnv } from './env';

installQuietRuntime();

export const mochaHooks = {
  async afterAll(this: Mocha.Context) {
    this.timeout(60_000);
    await stopTestEnv();
  },
};
