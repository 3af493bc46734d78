/**
 * N1 — forged carried state (issue 24). An attacker with a plain Temporal
 * client copies a real session's continue-as-new input (its `carried` state,
 * readable in history) and starts `sessionWorkflow` with it under another
 * workflow id on a cron schedule: the first run is refused, the next cron run
 * "continues" from it. It must never add to the victim's trail, store a
 * commitment or change its retention; the victim goes on and terminates as
 * its own. Carried state is proven against the audit store, not trusted.
 */
import assert from 'node:assert/strict';
import { defaultPayloadConverter } from '@temporalio/common';
import { testEnv } from '../helpers/env';
import { EventType, expectSoundAudit, history, openSession, rawClient, uid, until, workflowTaskFailures } from './raw';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';
const gamma = 'did:mesh:gamma';

describe('N1 — forged carried state', function () {
  this.timeout(240_000);

  it("a cron-started session carrying a copy of another session's state is refused; the victim's trail, commitment and retention stay its own", async () => {
    const { client, taskQueue } = await rawClient();
    const { store } = await testEnv();
    // The victim continues as new after a few updates, so its second run's input carries its state.
    const victim = await openSession(
      { [alpha]: 0.9, [beta]: 0.8 },
      { retentionDays: 30, maxParticipants: 50 },
      { maxUpdatesPerRun: 10 },
    );
    const firstRun = (await victim.handle.describe()).runId;
    for (let i = 0; (await victim.handle.describe()).runId === firstRun; i++) {
      assert.ok(i < 20, 'the victim continued as new');
      // The update that ends the run may be aborted by the hand-over; the next goes to the new run.
      await victim
        .update('join', { agentDid: `${gamma}-${i}`, sigmaRaw: 0.8 })
        .catch((e: Error) => assert.match(e.message, /closing workflow/));
    }
    const runs = await until(
      async () => {
        const list: string[] = [];
        for await (const w of client.workflow.list({ query: `WorkflowId = '${victim.workflowId}'` }))
          list.push(w.runId);
        return list;
      },
      (l) => l.length >= 2,
      'the victim to continue as new',
    );
    const latest = (await victim.handle.describe()).runId;
    assert.ok(runs.length >= 2);
    const started = (await client.workflow.getHandle(victim.workflowId, latest).fetchHistory()).events?.[0];
    const payload = started?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    assert.ok(payload, 'the continued run has an input');
    const copied = defaultPayloadConverter.fromPayload<{ carried: any }>(payload);
    assert.ok(copied.carried, 'the continued run carries state');
    // Forge: the attacker makes itself a ring-0 participant of the copy.
    const forged = structuredClone(copied);
    forged.carried.session.participants['did:mesh:mallory'] = {
      ...forged.carried.session.participants[alpha],
      did: 'did:mesh:mallory',
      ring: 0,
      sigmaRaw: 1,
      sigmaEff: 1,
    };

    await until(
      () => victim.query('auditHead'),
      (a: any) => a.stored === a.deltaCount,
      "the victim's trail to be stored",
    );
    const before = await store.readRows(victim.id);
    assert.ok(before.length > 0);

    const forgedId = uid('forged');
    const attack = await client.workflow.start('sessionWorkflow', {
      taskQueue,
      workflowId: forgedId,
      args: [forged],
      cronSchedule: '@every 2s',
    });
    try {
      // Let the cron schedule run several times: the second run is the one that "continues".
      await until(
        async () => {
          let n = 0;
          for await (const w of client.workflow.list({ query: `WorkflowId = '${forgedId}'` }))
            if (w.status.name !== 'RUNNING') n++;
          return n;
        },
        (n) => n >= 3,
        'three cron runs of the forged session to close',
        60_000,
      );
      // Whatever run is current now, its terminate (with a retention of 0 days in the forged config) is refused.
      forged.carried.session.config.retentionDays = 0;
      const terminate = await attack.executeUpdate('terminate').then(
        () => 'accepted',
        (e: Error) => `refused: ${e.message}`,
      );
      assert.match(terminate, /^refused/, "the forged session's terminate is refused");
      // Every run of the forged session failed at its start, naming why.
      const closed: string[] = [];
      for await (const w of client.workflow.list({ query: `WorkflowId = '${forgedId}'` })) {
        if (w.status.name === 'RUNNING') continue;
        const events = await client.workflow
          .getHandle(forgedId, w.runId)
          .fetchHistory()
          .then((h) => h.events ?? []);
        const failed = events.find((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED);
        closed.push(
          failed?.workflowExecutionFailedEventAttributes?.failure?.message ?? `no failure (${w.status.name})`,
        );
        assert.ok(
          !events.some((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
          'a forged run scheduled no activity (no audit append)',
        );
      }
      for (const message of closed) assert.match(message, /cron schedule/, message);
    } finally {
      await attack.terminate('test over').catch(() => undefined);
    }

    // The victim's trail is untouched, and it goes on as its own session.
    assert.deepEqual(
      (await store.readRows(victim.id)).slice(0, before.length),
      before,
      "the stored turns are the victim's",
    );
    assert.equal(await store.getSession(victim.id), null, 'no commitment was stored for the victim by anyone else');
    await victim.update('join', { agentDid: 'did:mesh:delta', sigmaRaw: 0.8 });
    const result: any = await victim.update('terminate');
    const record = await store.getSession(victim.id);
    assert.ok(record, "the victim's own terminate stored its commitment");
    assert.equal(record.commitment.merkleRoot, result.commitment.merkleRoot);
    assert.equal(record.retainUntil, result.retainUntil);
    assert.ok(record.retainUntil > Date.now() + 29 * 86_400_000, 'its retention is its own 30 days');
    await expectSoundAudit(victim, ['did:mesh:mallory']);
    assert.deepEqual(await workflowTaskFailures([victim.workflowId]), []);
    assert.ok((await history(client, victim.workflowId)).length > 0);
  });
});
