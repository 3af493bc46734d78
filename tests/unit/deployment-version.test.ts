import assert from 'node:assert/strict';
import { deploymentFromEnv } from '../../worker/config';

describe('worker deployment version (HV_DEPLOYMENT_NAME, HV_BUILD_ID)', () => {
  it('is unset when neither is given, and both when both are', () => {
    assert.equal(deploymentFromEnv({}), undefined);
    assert.equal(deploymentFromEnv({ HV_DEPLOYMENT_NAME: ' ', HV_BUILD_ID: '' }), undefined);
    assert.deepEqual(deploymentFromEnv({ HV_DEPLOYMENT_NAME: 'hypervisor', HV_BUILD_ID: '2026.12.06-a1b2c3' }), {
      deploymentName: 'hypervisor',
      buildId: '2026.12.06-a1b2c3',
    });
  });

  it('refuses one without the other, naming the missing variable', () => {
    assert.throws(() => deploymentFromEnv({ HV_BUILD_ID: 'v2' }), /set together.*got only HV_BUILD_ID/);
    assert.throws(() => deploymentFromEnv({ HV_DEPLOYMENT_NAME: 'hv' }), /set together.*got only HV_DEPLOYMENT_NAME/);
  });

  it('refuses a name or build id the server would not take, naming it', () => {
    assert.throws(
      () => deploymentFromEnv({ HV_DEPLOYMENT_NAME: 'hv:prod', HV_BUILD_ID: 'v2' }),
      /HV_DEPLOYMENT_NAME.*"hv:prod"/,
    );
    assert.throws(
      () => deploymentFromEnv({ HV_DEPLOYMENT_NAME: 'hv', HV_BUILD_ID: 'x'.repeat(201) }),
      /HV_BUILD_ID must be/,
    );
  });
});
