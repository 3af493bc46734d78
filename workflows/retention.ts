/**
 * Retention of the audit store (SPEC §7): a terminated session's deltas are
 * dropped once its retainUntil has passed; roots, commitments and liability
 * snapshots stay forever. Started by a Temporal Schedule the worker creates
 * when absent (worker/schedules.ts), so it is visible, pausable and
 * triggerable from the Web UI and `temporal schedule`.
 */
import * as wf from '@temporalio/workflow';
import type { createActivities } from '../activities';

const { expireAuditTrails } = wf.proxyActivities<ReturnType<typeof createActivities>>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '10 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes', maximumAttempts: 10 },
});

export async function auditRetentionWorkflow(): Promise<{ sessions: number; deltasPurged: number }> {
  return expireAuditTrails({});
}
