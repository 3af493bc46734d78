/**
 * Replay: histories recorded from real runs (tests/fixtures/histories/, made by
 * `npm run record:histories`) are replayed against the current workflow code.
 * A change to workflows/ that would break the workflows running in
 * production — a different sequence of commands for the same history —
 * fails here with a DeterminismViolationError. Needs no server.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { temporal } from '@temporalio/proto';
import { Worker, type ReplayResult } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { workflowBundle } from '../../worker/worker';
import { installQuietRuntime } from '../helpers/env';

installQuietRuntime();

const DIR = path.resolve(__dirname, '..', 'fixtures', 'histories');
const EventType = temporal.api.enums.v1.EventType;
const load = (name: string) => historyFromJSON(JSON.parse(fs.readFileSync(path.join(DIR, `${name}.json`), 'utf8')));

/** Every scenario the fixtures must cover; deleting one fails the test. */
const SCENARIOS = [
  'saga-happy',
  'saga-compensated',
  'saga-escalated',
  'saga-approvals',
  // Recorded before a waiting step was indexed (HvPendingApprovals, behind the patch hv-pending-approvals):
  // a saga that was waiting when that shipped must replay as it ran. Kept as it is; record:histories does not write it.
  'saga-approvals-before-index',
  'saga-cancelled',
  'session-sagas-escalation-terminated',
  'session-continued-as-new-run1',
  'session-continued-as-new-run2',
  // Controls (SPEC §12)
  'saga-killed-handed-off',
  'session-kill',
  'saga-elevation-expired',
  'session-elevation',
  'saga-rate-limited',
  'session-rate-limited',
  // N18: recorded on 8ddf870, the commit before controls, by a script of its own (not record:histories): a ring-3
  // agent's 8 over-ring checkActions and 3 twelve-step sagas started at once — today's breaker and default rates
  // act there only behind their patches. Kept as it is.
  'session-before-controls',
  // Turns, open sagas (SPEC §13): one ended after a tool's error, one aborted and compensated, and their session.
  'saga-turn-ended',
  'saga-turn-aborted',
  'session-turns',
  // Operator recovery and fork (SPEC §14): an SRE's retry of a saga awaiting its operator (completed in round 2),
  // a fork from step 3 of a compensated saga, and their session.
  'saga-operator-retried',
  'saga-forked',
  'session-operator',
  // Parallel groups (SPEC §14): an ANY group (a branch failed, a loser cancelled and undone), then an ALL group
  // that fails — the saga walks back through both — and its session.
  'saga-parallel-groups',
  'session-parallel-groups',
  // Issue 20: a saga started in format 2 (steps as requested, digests computed by the saga) through a group whose
  // ring-1 branch waited for approvals bound to those digests, its last step claimed at its time; and its session.
  'saga-format-2',
  'session-format-2',
  // Issue 20, format 3: default step ids and omegas left out of the start input, no HvSagaState while running nor
  // for a completed saga (written for the compensated one), the outcome without agents, actions and nulls; their session.
  'saga-format-3',
  'saga-format-3-compensated',
  'session-format-3',
  // Issue 20, format 4: no session id in the start input, a summary only when it says more than the workflow id, the
  // outcome without the saga's id and the plainly committed steps (a retried step named; a turn names every step).
  'saga-format-4',
  'saga-format-4-compensated',
  'saga-format-4-turn',
  'session-format-4',
  // Issue 20, format 5: no undoApi that is its action's executeApi; the compensated saga's undo runs the one put back.
  'saga-format-5-compensated',
  'session-format-5',
  // Issue 20: audit batches by reference; the first read made not to chain, so that batch failed AUDIT_BATCH_UNREAD
  // and went again inline (behind the audit-batch-inline patch); the later ones by reference.
  'session-audit-batch-ref',
];

describe('replay: recorded histories against the current workflow code', function () {
  this.timeout(120_000);
  // Every scenario through one replay worker (the SDK's batch replay; a worker per history would load the
  // bundle each time), once: each test reads its scenario's outcome.
  let replayed: Promise<Map<string, ReplayResult>> | undefined;
  const replayAll = () =>
    (replayed ??= (async () => {
      const histories = SCENARIOS.map((name) => ({ workflowId: name, history: load(name) }));
      const results = new Map<string, ReplayResult>();
      for await (const r of Worker.runReplayHistories(
        { workflowBundle: await workflowBundle(), replayName: 'fixtures' },
        histories,
      ))
        results.set(r.workflowId, r);
      return results;
    })());

  it('has a fixture for every scenario', () => {
    const present = fs
      .readdirSync(DIR)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.replace(/\.json$/, ''))
      .sort();
    assert.deepEqual(present, [...SCENARIOS].sort());
  });

  for (const name of SCENARIOS) {
    it(`replays ${name} without a determinism violation`, async () => {
      const history = load(name);
      assert.ok((history.events?.length ?? 0) > 5, 'a real history');
      const result = (await replayAll()).get(name);
      assert.ok(result, `${name} was replayed`);
      if (result.error) throw result.error;
    });
  }

  it('fails on a history the code would not produce (the check can fail)', async () => {
    const history = load('saga-compensated');
    // Pretend the first step had scheduled a compensation instead of an execution.
    const scheduled = history.events!.find((e) => e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)!;
    scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'compensateStep';
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: await workflowBundle(), replayName: 'tampered' }, history, 'tampered'),
      (err: unknown) =>
        err instanceof DeterminismViolationError &&
        /compensateStep/.test(String((err as Error).message) + String((err as Error).cause ?? '')),
    );
  });
});
