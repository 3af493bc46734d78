/**
 * N18 (issue 24): a session recorded before controls (SPEC §12) shipped no
 * longer replayed — today's breach breaker tripped on its over-ring
 * checkActions and today's default rate limits refused its saga starts, so the
 * replay produced a timer and a refusal the history does not have. Both act
 * behind patches asked only where they would act: the recorded session
 * (tests/fixtures/histories/session-before-controls.json, recorded on the
 * commit before controls) replays as it ran, and a session started today is
 * governed as before — its first trip and its first default-rate refusal
 * each leave their patch's marker.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../worker/worker';
import { EventType, history, openSession, rawClient, workflowTaskFailures, type RawSession } from './raw';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const FIXTURE = path.resolve(__dirname, '..', 'fixtures', 'histories', 'session-before-controls.json');
const ring3 = 'did:mesh:sandboxed';
const reads = (n: number, agentDid: string) => Array.from({ length: n }, () => ({ actionId: 'read-report', agentDid }));

/** The patches a history's markers name, in order. */
const patchesIn = (events: HistoryEvent[]): string[] =>
  events
    .filter((e) => e.eventType === EventType.EVENT_TYPE_MARKER_RECORDED)
    .map((e) => e.markerRecordedEventAttributes!)
    .filter((m) => m.markerName === 'core_patch')
    .map((m) => JSON.parse(Buffer.from(m.details!['patch-data']!.payloads![0]!.data!).toString('utf8')).id as string);

const updatesNamed = (events: HistoryEvent[], name: string) =>
  events.filter(
    (e) =>
      e.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED &&
      e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.name === name,
  );

/** The N18 patches among a session's markers (its claims and request ids ask patches of their own). */
async function n18Patches(session: RawSession): Promise<string[]> {
  const { client } = await rawClient();
  return patchesIn(await history(client, session.workflowId)).filter((p) => N18_PATCHES.includes(p));
}
const N18_PATCHES = ['breaker-trips', 'default-rate-limits'];

/** Which of a saga's steps its start leased, as the session gave them to it (the saga's input). */
async function leasedAtStart(workflowId: string): Promise<boolean[]> {
  const { client } = await rawClient();
  const started = (await history(client, workflowId))[0]!.workflowExecutionStartedEventAttributes!;
  const input = JSON.parse(Buffer.from(started.input!.payloads![0]!.data!).toString('utf8'));
  // Absent: leased (format 2 says only `leased: false`; a history from before controls says nothing).
  return (input.steps as { leased?: boolean }[]).map((s) => s.leased !== false);
}

describe('N18 — a session recorded before controls replays as it ran', function () {
  this.timeout(180_000);

  it('N18: the recorded session (8 over-ring checks, 36 step starts at once by a ring-3 agent) replays', async () => {
    const recorded = historyFromJSON(JSON.parse(fs.readFileSync(FIXTURE, 'utf8')));
    const events = recorded.events ?? [];
    // What today's controls would have answered otherwise: more over-ring checks than the breaker takes, and
    // three twelve-step sagas started within one burst of ring 3 (10).
    assert.equal(updatesNamed(events, 'checkAction').length, 9);
    assert.equal(updatesNamed(events, 'startSaga').length, 3);
    assert.equal(
      events.filter((e) => e.eventType === EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED).length,
      3,
      'every saga started',
    );
    assert.deepEqual(patchesIn(events), [], 'recorded before any of these patches');
    await Worker.runReplayHistory(
      { workflowBundle: await workflowBundle(), replayName: 'session-before-controls' },
      recorded,
      'session-before-controls',
    );
  });

  it("N18: a session started today: the breaker trips at the 5th over-ring check, and the patch's marker is in its history", async () => {
    const session = await openSession({ [ring3]: 0.5 });
    for (let i = 0; i < 4; i++) {
      const d = await session.update('checkAction', { agentDid: ring3, actionId: 'draft' });
      assert.equal(d.allowed, false, 'draft is above ring 3');
    }
    assert.deepEqual((await session.summary()).controls.restricted, [], 'four requests are under minRequests');
    assert.deepEqual(await n18Patches(session), [], 'no patch asked while the breaker would not trip');
    await session.update('checkAction', { agentDid: ring3, actionId: 'draft' });
    const restricted = (await session.summary()).controls.restricted;
    assert.deepEqual(
      restricted.map((r: { did: string; kind: string }) => [r.did, r.kind]),
      [[ring3, 'breaker']],
    );
    assert.deepEqual(await n18Patches(session), ['breaker-trips']);
    assert.deepEqual(await workflowTaskFailures([session.workflowId]), []);
  });

  it("N18: a session started today: ring 3's default burst leases 10 of 12 step starts, behind the patch; a configured rate asks no patch", async () => {
    const byDefault = await openSession({ [ring3]: 0.5 });
    const { sagaId, workflowId } = await byDefault.startSaga({ steps: reads(12, ring3) });
    assert.deepEqual(
      await leasedAtStart(workflowId),
      [...Array<boolean>(10).fill(true), false, false],
      'the burst of 10; the last two claim their start',
    );
    assert.deepEqual(await n18Patches(byDefault), ['default-rate-limits']);
    assert.equal((await byDefault.sagaResult(sagaId)).saga.state, 'completed', 'the last two claimed their start');

    const configured = await openSession(
      { [ring3]: 0.5 },
      { controls: { rateLimits: { ring3: { perSecond: 1000, burst: 10 } } } },
    );
    const second = await configured.startSaga({ steps: reads(12, ring3) });
    assert.deepEqual(await leasedAtStart(second.workflowId), [...Array<boolean>(10).fill(true), false, false]);
    assert.equal((await configured.sagaResult(second.sagaId)).saga.state, 'completed');
    assert.deepEqual(await n18Patches(configured), [], 'a rate the config names was always there');
    assert.deepEqual(await workflowTaskFailures([byDefault.workflowId, configured.workflowId]), []);
  });
});
