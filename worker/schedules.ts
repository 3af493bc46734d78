/**
 * The Temporal Schedules the hypervisor needs, created by the worker when
 * absent: today the audit store's retention (workflows/retention.ts).
 */
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type Client } from '@temporalio/client';

export const RETENTION_INTERVAL = '1 hour';

/** One schedule per task queue: the workers of that queue share one audit store. */
export function retentionScheduleId(taskQueue: string): string {
  return `hv-audit-retention-${taskQueue}`;
}

/** Create the retention schedule unless it exists (several workers may race: the loser finds it made). */
export async function ensureRetentionSchedule(client: Client, taskQueue: string): Promise<string> {
  const scheduleId = retentionScheduleId(taskQueue);
  try {
    await client.schedule.getHandle(scheduleId).describe();
    return scheduleId;
  } catch (err) {
    if (!(err instanceof ScheduleNotFoundError)) throw err;
  }
  try {
    await client.schedule.create({
      scheduleId,
      spec: { intervals: [{ every: RETENTION_INTERVAL }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'auditRetentionWorkflow',
        taskQueue,
        workflowId: `${scheduleId}-run`,
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: RETENTION_INTERVAL },
      memo: {
        purpose:
          'Drops the deltas of terminated sessions whose retention has passed; roots and commitments stay (SPEC §7).',
      },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
  }
  return scheduleId;
}
