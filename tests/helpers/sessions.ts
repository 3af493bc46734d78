/** A ready, active session whose agents declared reversible (ring 2) test actions. */
import { HypervisorClient, type SessionHandle } from '../../src/client';
import { testEnv } from './env';
import { hypervisor, uniqueId } from './hv';
import { SRE_SIGNER, SRE_WITNESSES } from './sre';

export { SRE, SRE_ON_CALL, SRE_WITNESSES } from './sre';

/** What runs is what the action declares (SPEC §11.4): the test handlers, by name. */
const TEST_STEP = { executeApi: 'handler:test.step', undoApi: 'handler:test.step' };

export const ACTIONS = [
  { actionId: 'draft', reversibility: 'FULL' as const, ...TEST_STEP },
  { actionId: 'draft-no-undo', reversibility: 'FULL' as const, executeApi: 'handler:test.no-undo' },
  { actionId: 'reserve', reversibility: 'PARTIAL' as const, ...TEST_STEP },
  { actionId: 'publish', reversibility: 'FULL' as const, ...TEST_STEP },
  { actionId: 'notify', reversibility: 'FULL' as const, ...TEST_STEP },
  { actionId: 'wire-money', reversibility: 'NONE' as const, ...TEST_STEP },
  { actionId: 'read-report', readOnly: true, executeApi: 'handler:test.read' },
  { actionId: 'reconfigure', admin: true, reversibility: 'FULL' as const, ...TEST_STEP },
];

/** The session as its SRE witnesses reach it: each SRE request signed by the SRE it names (SPEC §11.9). */
export async function asSre(session: SessionHandle): Promise<SessionHandle> {
  const env = await testEnv();
  return new HypervisorClient(env.client, env.taskQueue, env.store, SRE_SIGNER).session(session.sessionId);
}

export async function activeSession(
  agents: Record<string, number> = { 'did:mesh:alpha': 0.85, 'did:mesh:beta': 0.8 },
  config: Record<string, unknown> = {},
): Promise<SessionHandle> {
  const hv = await hypervisor();
  const session = await hv.createSession({
    sessionId: uniqueId('s'),
    creatorDid: 'did:mesh:admin',
    config: { sreWitnesses: SRE_WITNESSES, ...config },
  });
  for (const [agentDid, sigmaRaw] of Object.entries(agents))
    await session.join({ agentDid, sigmaRaw, actions: ACTIONS });
  await session.activate();
  return session;
}
