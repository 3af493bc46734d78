/**
 * N4 and N5 (issue 24):
 * - N4: a slashed agent kept its elevation and ran ring-1 actions at σ 0 until
 *   the TTL. A slash, a kill, a quarantine or a demotion ends it (a delta).
 * - N5: killing a kill's substitute never reached the saga — the substitute
 *   was not among the saga's agents, so its kill was neither pushed nor
 *   awaited. A substitute joins the saga it takes over.
 */
import assert from 'node:assert/strict';
import { SRE, expectSoundAudit, openSession, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';
const sub = 'did:mesh:substitute';

describe("N4, N5 — elevations end with the agent's standing; a substitute is one of the saga's agents", function () {
  this.timeout(180_000);
  const touched: string[] = [];
  after(async () => assert.deepEqual(await workflowTaskFailures(touched), [], 'no workflow task failed'));

  for (const [how, act] of [
    ['slash', (s: any) => s.asSre('slash', { agentDid: alpha, reason: 'lied', witnessDid: SRE })],
    ['quarantine', (s: any) => s.asSre('quarantine', { agentDid: alpha, sreDid: SRE, reason: 'odd', ttlSeconds: 600 })],
    ['kill', (s: any) => s.asSre('kill', { agentDid: alpha, sreDid: SRE, reason: 'compromised' })],
  ] as const) {
    it(`N4: a ${how} ends the agent's active elevation, recorded in the trail`, async () => {
      const session = await openSession({ [alpha]: 0.85, [beta]: 0.8, [gamma]: 0.8 });
      touched.push(session.workflowId);
      const e = await session.update('requestElevation', {
        agentDid: alpha,
        ring: 1,
        ttlSeconds: 600,
        justification: 'incident',
      });
      for (const approverDid of [beta, gamma])
        await session.update('approveElevation', {
          agentDid: alpha,
          elevationId: e.elevationId,
          digest: e.digest,
          approverDid,
        });
      assert.equal((await session.summary()).controls.elevations[0]?.state, 'active');
      await act(session);
      assert.deepEqual((await session.summary()).controls.elevations, [], `the ${how} ended the elevation`);
      const { trail } = await session.audit();
      assert.ok(
        trail.deltas.some((d) =>
          d.changes.some((c) => c.path === `/elevations/${e.elevationId}` && c.operation === 'delete'),
        ),
        'its end is a delta',
      );
      await expectSoundAudit(session, []);
    });
  }

  it("N5: a substitute that took over a step is one of the saga's agents: its own kill reaches the saga and is awaited", async () => {
    const session = await openSession(
      { [alpha]: 0.97, [beta]: 0.8, [gamma]: 0.8, [sub]: 0.97 },
      { consensusQuorum: 1 },
    );
    const { sagaId, workflowId } = await session.startSaga({
      steps: [{ actionId: 'wire-money', agentDid: alpha, approvalDeadlineSeconds: 120 }],
    });
    touched.push(session.workflowId, workflowId);
    await until(
      () => session.sagaState(sagaId),
      (s) => s.waiting !== null,
      'the step to wait for approval',
    );
    await session.asSre('kill', { agentDid: alpha, sreDid: SRE, reason: 'compromised', substituteDid: sub });
    const record = (await session.sagaRecords()).find((g) => g.sagaId === sagaId);
    assert.ok(
      record.agentDids.includes(sub),
      `the saga's agents include the substitute: ${record.agentDids.join(', ')}`,
    );
    const second = await session.asSre('kill', { agentDid: sub, sreDid: SRE, reason: 'also compromised' });
    assert.deepEqual(second.sagasHolding, [sagaId], "the substitute's kill reached the saga and was awaited");
    const held = await session.saga(sagaId).query<{ restriction: number }, [string]>('heldAgent', sub);
    assert.equal(held.restriction, 2, 'the saga holds the substitute killed');
  });
});
