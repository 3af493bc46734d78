/**
 * Finding sessions, sagas and waiting steps from Temporal's visibility store
 * (the search attributes of src/contract/searchAttributes.ts): what an operator
 * on call asks first. Each list is one visibility query; nothing is read from
 * the workflows themselves, so a list needs no worker.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { HypervisorError } from '../core/errors';
import { SAGA_STATES } from '../core/saga';
import { SessionLifecycleSchema } from '../core/session';
import { legacySagaWorkflowId, SAGA_WORKFLOW, SESSION_WORKFLOW, sagaWorkflowId } from '../contract/messages';
import {
  HvAgentDids,
  HvPendingApprovals,
  HvSagaState,
  HvSessionId,
  HvSessionState,
  parsePendingApproval,
} from '../contract/searchAttributes';

export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 1000;
/** Waiting steps are sorted oldest first here (SQL visibility has no ORDER BY), so the whole set is read: at most this many sagas. */
export const MAX_APPROVALS_SCANNED = 10_000;
const MAX_FILTER_CHARS = 1024;

export const SESSION_STATES: readonly string[] = SessionLifecycleSchema.options;
export { SAGA_STATES };

export interface SessionListFilter {
  /** A session state: created, handshaking, active, terminating, archived. */
  state?: string;
  /** Sessions this DID joined. */
  agentDid?: string;
  /** At most this many (1–1,000; default 50). */
  limit?: number;
}

export interface SagaListFilter {
  /** running while it runs (compensating too), then completed, failed, compensated or escalated. */
  state?: string;
  /** Sagas with a step by this DID. */
  agentDid?: string;
  sessionId?: string;
  limit?: number;
}

export interface ApprovalListFilter {
  sessionId?: string;
  limit?: number;
}

/** Where a row's workflow is: its run, Temporal's status of it, and when it started and closed (epoch ms). */
export interface ExecutionRow {
  workflowId: string;
  runId: string;
  /** Temporal's execution status: RUNNING, COMPLETED, FAILED, … */
  status: string;
  startedAt: number;
  closedAt: number | null;
}

export interface SessionRow extends ExecutionRow {
  sessionId: string;
  /** The session's state as last indexed; null before its first upsert. */
  state: string | null;
  /** Its participants' DIDs (as many as fit in the index: see indexedAgentDids). */
  agentDids: string[];
}

export interface SagaRow extends ExecutionRow {
  sessionId: string;
  sagaId: string;
  state: string | null;
  /** The DIDs of its steps' agents. */
  agentDids: string[];
}

export interface ApprovalRow {
  sessionId: string;
  sagaId: string;
  stepId: string;
  /** What approvals and witnesses are bound to (SPEC §11.5). */
  digest: string;
  /** consensus (a quorum of approvals) or witness (an SRE witness). */
  waitFor: string;
  /** Approvals the session's consensus needs. */
  quorum: number;
  /** When the step began to wait, and when it is denied without the evidence (epoch ms). */
  since: number;
  deadline: number;
  workflowId: string;
  runId: string;
}

/**
 * A string literal of the visibility query language: quotes and backslashes
 * escaped. Control characters are refused (no id, DID or state holds one),
 * as is an empty or oversized value; `field` names the filter in the error.
 */
export function queryLiteral(value: unknown, field: string): string {
  if (typeof value !== 'string')
    throw new HypervisorError(
      'INVALID_INPUT',
      `${field} must be a string, got ${value === null ? 'null' : typeof value}`,
      { field },
    );
  if (value === '') throw new HypervisorError('INVALID_INPUT', `${field} must not be empty`, { field });
  if (value.length > MAX_FILTER_CHARS)
    throw new HypervisorError('INVALID_INPUT', `${field} is ${value.length} characters; at most ${MAX_FILTER_CHARS}`, {
      field,
    });

  const control = /[\u0000-\u001f\u007f-\u009f]/.exec(value);
  if (control) {
    const code = control[0].charCodeAt(0).toString(16).padStart(4, '0');
    throw new HypervisorError(
      'INVALID_INPUT',
      `${field} holds a control character (U+${code}) at character ${control.index + 1}`,
      { field },
    );
  }
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** A state filter as a literal: one of the states, else INVALID_INPUT listing them. */
export function stateLiteral(value: unknown, field: string, states: readonly string[], of: string): string {
  const literal = queryLiteral(value, field);
  if (!states.includes(value as string)) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `${field} must be a ${of} state (${states.join(', ')}), got "${String(value)}"`,
      { field },
    );
  }
  return literal;
}

export function limitOf(value: unknown, field = 'limit'): number {
  if (value === undefined) return DEFAULT_LIST_LIMIT;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_LIST_LIMIT) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `${field} must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${JSON.stringify(value) ?? String(value)}`,
      { field },
    );
  }
  return value;
}

/** The visibility query for sessions on this task queue: one row per session (its runs continued as new left out). */
export function sessionQuery(taskQueue: string, filter: SessionListFilter = {}): string {
  const clauses = [
    `WorkflowType = '${SESSION_WORKFLOW}'`,
    `TaskQueue = ${queryLiteral(taskQueue, 'taskQueue')}`,
    `ExecutionStatus != 'ContinuedAsNew'`,
  ];
  if (filter.state !== undefined)
    clauses.push(`${HvSessionState.name} = ${stateLiteral(filter.state, 'state', SESSION_STATES, 'session')}`);
  if (filter.agentDid !== undefined) clauses.push(`${HvAgentDids.name} = ${queryLiteral(filter.agentDid, 'agentDid')}`);
  return clauses.join(' AND ');
}

/**
 * A saga's state as listed: its HvSagaState, or — a saga started in format 3 (issue 20) writes it only when
 * its workflow status cannot say it — from its status: completed when it completed, else running (as a
 * saga's HvSagaState stays `running` when it is terminated or times out).
 */
function sagaStateClause(state: string): string {
  const literal = stateLiteral(state, 'state', SAGA_STATES, 'saga');
  const own = `${HvSagaState.name} = ${literal}`;
  if (state !== 'completed' && state !== 'running') return own;
  const status = state === 'completed' ? `ExecutionStatus = 'Completed'` : `ExecutionStatus != 'Completed'`;
  return `(${own} OR (${HvSagaState.name} IS NULL AND ${HvSessionId.name} IS NOT NULL AND ${status}))`;
}

/** A listed saga's state (sagaStateClause): its HvSagaState, else a session's saga's from its status. */
function sagaStateOf(info: WorkflowExecutionInfo): string | null {
  const own = info.typedSearchAttributes.get(HvSagaState);
  if (own !== undefined) return own;
  if (info.typedSearchAttributes.get(HvSessionId) === undefined) return null;
  return info.status.name === 'COMPLETED' ? 'completed' : 'running';
}

export function sagaQuery(taskQueue: string, filter: SagaListFilter = {}): string {
  const clauses = [`WorkflowType = '${SAGA_WORKFLOW}'`, `TaskQueue = ${queryLiteral(taskQueue, 'taskQueue')}`];
  if (filter.state !== undefined) clauses.push(sagaStateClause(filter.state));
  if (filter.agentDid !== undefined) clauses.push(`${HvAgentDids.name} = ${queryLiteral(filter.agentDid, 'agentDid')}`);
  if (filter.sessionId !== undefined)
    clauses.push(`${HvSessionId.name} = ${queryLiteral(filter.sessionId, 'sessionId')}`);
  return clauses.join(' AND ');
}

/** Running sagas with a step waiting at its gate: HvWaitingSince is set only while one waits. */
export function approvalQuery(taskQueue: string, filter: ApprovalListFilter = {}): string {
  const clauses = [
    `WorkflowType = '${SAGA_WORKFLOW}'`,
    `TaskQueue = ${queryLiteral(taskQueue, 'taskQueue')}`,
    `ExecutionStatus = 'Running'`,
    'HvWaitingSince IS NOT NULL',
  ];
  if (filter.sessionId !== undefined)
    clauses.push(`${HvSessionId.name} = ${queryLiteral(filter.sessionId, 'sessionId')}`);
  return clauses.join(' AND ');
}

function execution(info: WorkflowExecutionInfo): ExecutionRow {
  return {
    workflowId: info.workflowId,
    runId: info.runId,
    status: info.status.name,
    startedAt: info.startTime.getTime(),
    closedAt: info.closeTime ? info.closeTime.getTime() : null,
  };
}

/**
 * A saga's id from its workflow id and its session's (HvSessionId): `hv-saga-<sessionId>/<sagaId>`, or before N16
 * `hv-saga-<sessionId>-<sagaId>` (src/contract/messages.ts). Either way the session's id is known, so the rest is
 * the saga's.
 */
export function sagaIdOf(workflowId: string, sessionId: string): string {
  for (const prefix of [sagaWorkflowId(sessionId, ''), legacySagaWorkflowId(sessionId, '')])
    if (workflowId.startsWith(prefix)) return workflowId.slice(prefix.length);
  return workflowId;
}

/** Newest first: open ones by start, then closed ones by when they closed (as the Web UI lists them). */
function newestFirst(a: ExecutionRow, b: ExecutionRow): number {
  if ((a.closedAt === null) !== (b.closedAt === null)) return a.closedAt === null ? -1 : 1;
  return (b.closedAt ?? 0) - (a.closedAt ?? 0) || b.startedAt - a.startedAt || a.workflowId.localeCompare(b.workflowId);
}

async function take(client: Client, query: string, limit: number): Promise<WorkflowExecutionInfo[]> {
  const out: WorkflowExecutionInfo[] = [];
  if (limit <= 0) return out;
  for await (const info of client.workflow.list({ query, pageSize: Math.min(limit, 1000) })) {
    out.push(info);
    if (out.length >= limit) break;
  }
  return out;
}

export async function listSessions(
  client: Client,
  taskQueue: string,
  filter: SessionListFilter = {},
): Promise<SessionRow[]> {
  const query = sessionQuery(taskQueue, filter);
  const infos = await take(client, query, limitOf(filter.limit));
  return infos
    .map((info): SessionRow => {
      const sessionId = info.typedSearchAttributes.get(HvSessionId) ?? info.workflowId.replace(/^hv-session-/, '');
      return {
        sessionId,
        state: info.typedSearchAttributes.get(HvSessionState) ?? null,
        agentDids: info.typedSearchAttributes.get(HvAgentDids) ?? [],
        ...execution(info),
      };
    })
    .sort(newestFirst);
}

export async function listSagas(client: Client, taskQueue: string, filter: SagaListFilter = {}): Promise<SagaRow[]> {
  const query = sagaQuery(taskQueue, filter);
  const infos = await take(client, query, limitOf(filter.limit));
  return infos
    .map((info): SagaRow => {
      const sessionId = info.typedSearchAttributes.get(HvSessionId) ?? '';
      return {
        sessionId,
        sagaId: sagaIdOf(info.workflowId, sessionId),
        state: sagaStateOf(info),
        agentDids: info.typedSearchAttributes.get(HvAgentDids) ?? [],
        ...execution(info),
      };
    })
    .sort(newestFirst);
}

/** Every step waiting for approvals or a witness, oldest first. An entry not of the indexed shape is skipped. */
export async function listApprovals(
  client: Client,
  taskQueue: string,
  filter: ApprovalListFilter = {},
): Promise<ApprovalRow[]> {
  const query = approvalQuery(taskQueue, filter);
  const limit = limitOf(filter.limit);
  const rows: ApprovalRow[] = [];
  for (const info of await take(client, query, MAX_APPROVALS_SCANNED)) {
    const sessionId = info.typedSearchAttributes.get(HvSessionId) ?? '';
    for (const entry of info.typedSearchAttributes.get(HvPendingApprovals) ?? []) {
      const p = parsePendingApproval(entry);
      if (!p) continue;
      rows.push({
        sessionId,
        sagaId: sagaIdOf(info.workflowId, sessionId),
        stepId: p.stepId,
        digest: p.digest,
        waitFor: p.waitFor,
        quorum: p.quorum,
        since: p.sinceMs,
        deadline: p.deadlineMs,
        workflowId: info.workflowId,
        runId: info.runId,
      });
    }
  }
  rows.sort(
    (a, b) =>
      a.since - b.since ||
      a.deadline - b.deadline ||
      a.workflowId.localeCompare(b.workflowId) ||
      a.stepId.localeCompare(b.stepId),
  );
  return rows.slice(0, limit);
}
