/**
 * The dev server and the cluster refuse the same oversized updates (issue 24): the cluster's dynamic
 * config holds the dev server's history.maxInFlightUpdatePayloads, below the 2 MiB blob size limit.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEV_SERVER_DYNAMIC_CONFIG, MAX_UPDATE_PAYLOAD_BYTES } from '../../worker/devServer';
import { MAX_REQUEST_BYTES } from '../../src/client';

describe('dynamic config: oversized updates', () => {
  it("the cluster and the dev server admit updates up to the same size, under the blob limit and over the typed client's", () => {
    const yaml = fs.readFileSync(
      path.join(__dirname, '..', '..', 'deploy', 'temporal', 'dynamicconfig', 'cluster.yaml'),
      'utf8',
    );
    const m = /^history\.maxInFlightUpdatePayloads:\s*\n\s*-\s*value:\s*(\d+)/m.exec(yaml);
    assert.ok(m, 'the cluster sets history.maxInFlightUpdatePayloads');
    assert.equal(Number(m[1]), MAX_UPDATE_PAYLOAD_BYTES);
    assert.equal(DEV_SERVER_DYNAMIC_CONFIG['history.maxInFlightUpdatePayloads'], MAX_UPDATE_PAYLOAD_BYTES);
    assert.ok(MAX_UPDATE_PAYLOAD_BYTES < 2 * 1024 * 1024, 'below limit.blobSize.error');
    assert.ok(MAX_UPDATE_PAYLOAD_BYTES > MAX_REQUEST_BYTES, 'above what the typed client sends');
  });
});
