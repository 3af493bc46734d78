/**
 * N12 (issue 24): a killed or quarantined agent changed VFS files — wrote,
 * deleted, restored and re-permissioned them — as if nothing had happened.
 * SPEC §12: a quarantined agent may only read; a killed one may do nothing.
 * Every VFS change by either is refused (AGENT_QUARANTINED / AGENT_KILLED),
 * before it enters history; a quarantined agent still reads.
 */
import assert from 'node:assert/strict';
import { SRE, mark, expectNoTrace, openSession, refused, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

describe('N12 — a killed or quarantined agent changes no VFS file', function () {
  this.timeout(120_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  it('N12: quarantined and killed agents are refused every VFS change; the quarantined one still reads', async () => {
    const session = await openSession({ [alpha]: 0.8, [beta]: 0.8, [gamma]: 0.8 });
    touched.push(session.workflowId);
    for (const did of [alpha, beta]) {
      await session.update('vfsWrite', { agentDid: did, path: `${did.slice(9)}.txt`, content: `by ${did}` });
    }
    await session.update('vfsSnapshot', { agentDid: gamma, snapshotId: 'before' });
    await session.asSre('quarantine', { agentDid: alpha, sreDid: SRE, reason: 'suspicious', ttlSeconds: 600 });
    await session.asSre('kill', { agentDid: beta, sreDid: SRE, reason: 'compromised' });
    const m = await mark(session);

    const attempts = (did: string) => ({
      vfsWrite: { agentDid: did, path: 'alpha.txt', content: 'overwritten' },
      vfsDelete: { agentDid: did, path: 'beta.txt' },
      vfsSetPermissions: { agentDid: did, path: 'alpha.txt', allowedDids: [did] },
      vfsRestore: { agentDid: did, snapshotId: 'before' },
      vfsSnapshot: { agentDid: did, snapshotId: `by-${did.slice(9)}` },
    });
    for (const [name, req] of Object.entries(attempts(alpha))) {
      await refused(session.update(name, req), 'AGENT_QUARANTINED', 'quarantined');
    }
    for (const [name, req] of Object.entries(attempts(beta))) {
      await refused(session.update(name, req), 'AGENT_KILLED', 'killed');
    }
    await expectNoTrace(m, {}, []);

    // Reads stay allowed for a quarantined agent; the files are as they were.
    const file = await session.query('vfsFile', 'alpha.txt', alpha);
    assert.equal(file.size, 'by did:mesh:alpha'.length);
    const list = await session.query('vfsList');
    assert.deepEqual([...list.files].sort(), [`/sessions/${session.id}/alpha.txt`, `/sessions/${session.id}/beta.txt`]);
    assert.deepEqual(
      list.snapshots.map((s: { snapshotId: string }) => s.snapshotId),
      ['before'],
    );
    // An unrestricted agent still changes files.
    await session.update('vfsWrite', { agentDid: gamma, path: 'gamma.txt', content: 'fine' });
  });
});
