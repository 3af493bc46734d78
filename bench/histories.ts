/**
 * What bench/durable.ts and bench/longSession.ts share: exact cost from fetched histories (events, workflow
 * tasks, bytes by type), the session's quiet point and its events across continue-as-new runs, and the
 * figures' arithmetic.
 */
import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { SessionHandle } from '../src/client';

const EVENT_NAMES = temporal.api.enums.v1.EventType as unknown as Record<number, string>;
export function eventName(type: unknown): string {
  const raw = typeof type === 'number' ? (EVENT_NAMES[type] ?? String(type)) : String(type);
  return raw
    .replace(/^EVENT_TYPE_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_m, _u, c: string) => c.toUpperCase());
}
export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

export class Cost {
  events = 0;
  tasks = 0;
  /** History bytes: each event as the server stores it (its protobuf encoding). */
  bytes = 0;
  byType = new Map<string, number>();
  bytesByType = new Map<string, number>();
  add(events: HistoryEvent[]): void {
    for (const e of events) {
      const name = eventName(e.eventType);
      const bytes = temporal.api.history.v1.HistoryEvent.encode(e).finish().length;
      this.events++;
      this.bytes += bytes;
      if (name === 'WorkflowTaskCompleted') this.tasks++;
      this.byType.set(name, (this.byType.get(name) ?? 0) + 1);
      this.bytesByType.set(name, (this.bytesByType.get(name) ?? 0) + bytes);
    }
  }
  perSaga(n: number): {
    events: number;
    tasks: number;
    bytes: number;
    byType: Record<string, number>;
    bytesByType: Record<string, number>;
  } {
    const d = Math.max(1, n);
    const per = (m: Map<string, number>, digits: number) =>
      Object.fromEntries([...m].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, round(v / d, digits)]));
    return {
      events: this.events / d,
      tasks: this.tasks / d,
      bytes: this.bytes / d,
      byType: per(this.byType, 2),
      bytesByType: per(this.bytesByType, 0),
    };
  }
}

/** Runs `fn` over `items`, at most `limit` at a time. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export interface SessionMark {
  runId: string;
  length: number;
}

/**
 * Waits until the session is quiet — no pending workflow task or activity, every delta stored (its last audit
 * batch, which a timer flushes, included), no saga of its running — and its history stopped growing; returns
 * where it stands. So each batch is charged all of its own events, the tail too.
 */
export async function quietSession(session: SessionHandle): Promise<SessionMark> {
  let last: SessionMark | undefined;
  let asked: SessionMark | undefined;
  for (let i = 0; i < 600; i++) {
    const d = await session.handle.describe();
    const mark = { runId: d.runId, length: d.historyLength };
    const same = (a?: SessionMark) => a !== undefined && a.runId === mark.runId && a.length === mark.length;
    // The queries (a workflow task each, on the worker whose CPU the bench counts) only once the history
    // stands still with nothing pending, and once per length: what they answer changes only with an event
    // (the audit batch's activity, a saga's completion). Polling them every 100 ms charged the bench's
    // own waiting to the governed side.
    if (same(last) && !same(asked) && d.raw.pendingWorkflowTask == null && !d.raw.pendingActivities?.length) {
      asked = mark;
      const quiet =
        (await session.auditHead()).pending.length === 0 && !(await session.sagas()).some((x) => x.state === 'running');
      if (quiet) return mark;
    }
    last = mark;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`session ${session.handle.workflowId} did not go quiet`);
}

/** The session's events after `from` up to `to`, following continue-as-new runs. */
export async function sessionEvents(
  client: Client,
  workflowId: string,
  from: SessionMark,
  to: SessionMark,
): Promise<{ events: HistoryEvent[]; runs: number }> {
  const events: HistoryEvent[] = [];
  let runId = from.runId;
  let after = from.length;
  for (let runs = 0; ; runs++) {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const all = history.events ?? [];
    const upTo = runId === to.runId ? to.length : Infinity;
    events.push(...all.filter((e) => Number(e.eventId) > after && Number(e.eventId) <= upTo));
    if (runId === to.runId) return { events, runs };
    const next = all.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
    if (!next) throw new Error(`session ${workflowId} run ${runId} neither continued as new nor is the current run`);
    runId = next;
    after = 0;
  }
}

/** requestedAt: wall-clock ms when the client asked (same clock as the server's event times: one machine). */
export interface Outcome {
  workflowId?: string;
  latencyMs?: number;
  requestedAt?: number;
  startFailed?: string;
  error?: string;
}

/** Milliseconds since the epoch of an event (server clock; one machine, so the client's clock too). */
export function eventMs(e: HistoryEvent | undefined): number {
  return e?.eventTime ? Number(e.eventTime.seconds) * 1000 + Math.floor((e.eventTime.nanos ?? 0) / 1e6) : NaN;
}

export function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.max(0, Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
