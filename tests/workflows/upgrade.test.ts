/** Upgrades with work in flight on the dev server, with in-process workers (tests/helpers/upgradeScenario.ts). */
import type { Worker } from '@temporalio/worker';
import { createHypervisorWorker } from '../../worker/worker';
import { ownWorkerOptions, testEnv } from '../helpers/env';
import { uniqueId } from '../helpers/hv';
import { runUpgrade, upgradeBundles } from '../helpers/upgradeScenario';

describe('upgrades: Worker Deployment Versioning (dev server)', function () {
  this.timeout(300_000);

  it('a saga in flight finishes on version 1, a new saga runs on version 2, the session moves to version 2; no workflow task fails; each history replays on its code', async () => {
    const env = await testEnv();
    const taskQueue = uniqueId('hv-upgrade');
    const workers: { worker: Worker; run: Promise<void> }[] = [];
    try {
      await runUpgrade(
        {
          client: env.client,
          store: env.store,
          taskQueue,
          async startWorker(deployment, bundle) {
            const worker = await createHypervisorWorker({
              ...ownWorkerOptions(env, taskQueue),
              identity: `upgrade-${deployment.buildId}`,
              deployment,
              workflowBundle: bundle,
            });
            workers.push({ worker, run: worker.run() });
          },
        },
        await upgradeBundles(),
      );
    } finally {
      for (const w of workers) w.worker.shutdown();
      await Promise.all(workers.map((w) => w.run));
    }
  });
});
