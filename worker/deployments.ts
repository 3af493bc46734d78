/**
 * Worker Deployment Versioning from the operator's side (docs/UPGRADES.md): making a build the deployment's
 * current version, which routes new sagas and every session's next task to it.
 */
import type { ConnectionLike } from '@temporalio/client';
import type { DeploymentVersion } from './config';

/** gRPC status codes the server answers while no worker of the version has polled yet. */
const NOT_YET: ReadonlySet<number> = new Set([
  5 /* NOT_FOUND */, 9 /* FAILED_PRECONDITION: no deployment, no pollers */,
]);

/**
 * Makes `version` its deployment's current version. The server knows a version only once one of its workers
 * has polled: until then it answers NOT_FOUND or FAILED_PRECONDITION ("does your Worker Deployment have
 * pollers?"), which is waited out (at most `timeoutMs`); any other refusal is thrown at once.
 */
export async function setCurrentVersion(
  connection: ConnectionLike,
  namespace: string,
  version: DeploymentVersion,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await connection.workflowService.setWorkerDeploymentCurrentVersion({
        namespace,
        deploymentName: version.deploymentName,
        buildId: version.buildId,
        identity: 'agent-hypervisor',
      });
      return;
    } catch (err) {
      const notYet = NOT_YET.has((err as { code?: number }).code ?? -1);
      if (!notYet || Date.now() > deadline)
        throw new Error(
          `could not make ${version.deploymentName}:${version.buildId} the current version: ${(err as Error).message}${notYet ? ' (no worker of it has polled yet)' : ''}`,
        );
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
