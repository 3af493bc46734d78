/**
 * A rolling upgrade on the cluster (issue 22): worker processes of version 1, then of version 2 with a changed
 * saga body, on the Temporal server with PostgreSQL (tests/helpers/upgradeScenario.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Lab, toolActions } from '../durability/harness';
import { runUpgrade, upgradeBundles } from '../helpers/upgradeScenario';
import { installQuietRuntime } from '../helpers/env';

describe('cluster: a rolling upgrade with work in flight (Worker Deployment Versioning)', function () {
  this.timeout(600_000);
  const lab = Lab.forSuite('cluster', 0);

  it('a saga in flight finishes on version 1, a new saga runs on version 2, the session moves to version 2; no workflow task fails; each history replays on its code', async () => {
    installQuietRuntime(); // the replays run in this process: only errors in the report
    const bundles = await upgradeBundles();
    await runUpgrade(
      {
        client: lab.client,
        store: lab.store!,
        taskQueue: lab.taskQueue,
        // The worker processes run the lab's HTTP tool; wire-money is its ring 1 action (irreversible).
        actions: [
          ...toolActions(lab.tool),
          { actionId: 'wire-money', reversibility: 'NONE', executeApi: lab.tool.endpoint('execute') },
        ],
        config: { allowedToolOrigins: [lab.tool.base] },
        async startWorker(deployment, bundle) {
          const bundlePath = path.join(lab.dir, `workflow-bundle-${deployment.buildId}.js`);
          fs.writeFileSync(bundlePath, bundle.code);
          await lab.startWorker({
            HV_BUNDLE_PATH: bundlePath,
            HV_DEPLOYMENT_NAME: deployment.deploymentName,
            HV_BUILD_ID: deployment.buildId,
          });
        },
      },
      bundles,
    );
  });
});
