/**
 * Issue 11: the hypervisor on a real Temporal cluster — the Temporal server
 * (all four services, 4 history shards) on PostgreSQL, built and configured
 * by worker/cluster.ts, with two worker processes and the audit store on the
 * same PostgreSQL. 100 sagas over 10 sessions; one worker is SIGKILLed
 * mid-run (the other takes over its work) and the Temporal server restarts
 * once. Every saga ends as it should, no tool acts twice, every chain
 * verifies (tests/durability/soakScenario.ts); everything is torn down.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { Lab } from '../durability/harness';
import { runSoak } from '../durability/soakScenario';
import { CLUSTER_HISTORY_SHARDS } from '../../worker/cluster';

describe('cluster: 100 sagas over 10 sessions on the Temporal server with PostgreSQL, 2 workers, a worker SIGKILL and a server restart', function () {
  this.timeout(900_000);
  const lab = Lab.forSuite('cluster', 2);

  it('runs on the real server: PostgreSQL persistence and visibility, several history shards', async () => {
    const cluster = lab.cluster!;
    assert.equal(cluster.serverEnv.NUM_HISTORY_SHARDS, String(CLUSTER_HISTORY_SHARDS));
    assert.ok(CLUSTER_HISTORY_SHARDS > 1);
    const info = await lab.client.workflowService.getSystemInfo({});
    assert.match(info.serverVersion ?? '', /^1\.29\./);
    // The dev server reports the CLI's own cluster; this one has its persistence in PostgreSQL.
    const cl = await lab.client.workflowService.getClusterInfo({});
    assert.equal(cl.persistenceStore, 'postgres12');
    assert.equal(cl.visibilityStore, 'postgres12');
    assert.equal(cl.historyShardCount, CLUSTER_HISTORY_SHARDS);
    assert.equal(lab.live().length, 2);
    assert.ok(fs.existsSync(cluster.serverLog));
  });

  it('ends every saga as it should through a worker SIGKILL and a server restart, acts once per key, and every chain verifies', async () => {
    await runSoak(lab, {
      name: 'cluster',
      sagas: 100,
      sessions: 10,
      chaos: [
        { kind: 'kill-one', at: 0.3 },
        { kind: 'restart', at: 0.6 },
      ],
    });
    assert.equal(lab.live().length, 1, 'the surviving worker finished the run alone');
  });
});
