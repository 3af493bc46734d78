/** A ready, active session whose agents declared reversible (ring 2) test actions. */
import type { SessionHandle } from '../../src/client';
import { hypervisor, uniqueId } from './hv';

export const ACTIONS = [
  { actionId: 'draft', reversibility: 'FULL' as const },
  { actionId: 'reserve', reversibility: 'PARTIAL' as const },
  { actionId: 'publish', reversibility: 'FULL' as const },
  { actionId: 'notify', reversibility: 'FULL' as const },
  { actionId: 'wire-money', reversibility: 'NONE' as const },
  { actionId: 'read-report', readOnly: true },
];

export async function activeSession(agents: Record<string, number> = { 'did:mesh:alpha': 0.85, 'did:mesh:beta': 0.8 }, config = {}): Promise<SessionHandle> {
  const hv = await hypervisor();
  const session = await hv.createSession({ sessionId: uniqueId('s'), creatorDid: 'did:mesh:admin', config });
  for (const [agentDid, sigmaRaw] of Object.entries(agents)) await session.join({ agentDid, sigmaRaw, actions: ACTIONS });
  await session.activate();
  return session;
}
