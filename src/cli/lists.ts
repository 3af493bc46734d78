/** `hv session list`, `hv saga list`, `hv approvals list`: finding things from Temporal's visibility store. */
import { isHypervisorError } from '../core/errors';
import type { EvidenceWait } from '../core/gate';
import {
  MAX_LIST_LIMIT,
  queryLiteral,
  SAGA_STATES,
  SESSION_STATES,
  stateLiteral,
  type ApprovalRow,
  type SagaRow,
  type SessionRow,
} from '../client/lists';
import { commandHelpHint, numberFlag, optionalString, type Command, type Values } from './command';
import { UsageError } from './errors';
import { table, time } from './format';

/** A filter flag checked as the query will quote it: a usage error names the flag. */
function filterFlag(
  cmd: Command,
  values: Values,
  flag: string,
  states?: { of: string; states: readonly string[] },
): string | undefined {
  const v = optionalString(values, flag);
  if (v === undefined) return undefined;
  try {
    if (states) stateLiteral(v, `--${flag}`, states.states, states.of);
    else queryLiteral(v, `--${flag}`);
  } catch (err) {
    if (isHypervisorError(err, 'INVALID_INPUT')) throw new UsageError(err.message, commandHelpHint(cmd));
    throw err;
  }
  return v;
}

function limitFlag(cmd: Command, values: Values): number | undefined {
  return numberFlag(cmd, values, 'limit', { min: 1, max: MAX_LIST_LIMIT, integer: true });
}

/** "3m 12s": how long ago (negative: from now), for people. */
export function span(ms: number): string {
  const s = Math.round(Math.abs(ms) / 1000);
  const parts =
    s >= 86_400
      ? [
          [Math.floor(s / 86_400), 'd'],
          [Math.floor((s % 86_400) / 3600), 'h'],
        ]
      : s >= 3600
        ? [
            [Math.floor(s / 3600), 'h'],
            [Math.floor((s % 3600) / 60), 'm'],
          ]
        : s >= 60
          ? [
              [Math.floor(s / 60), 'm'],
              [s % 60, 's'],
            ]
          : [[s, 's']];
  return parts
    .filter(([n], i) => i === 0 || n !== 0)
    .map(([n, u]) => `${n}${u}`)
    .join(' ');
}

/** A footer when the list may have been cut at the limit. */
function more(count: number, limit: number | undefined, what: string): string {
  const max = limit ?? 50;
  return count >= max ? `\n  (the first ${max} ${what}; --limit N for more, up to ${MAX_LIST_LIMIT})` : '';
}

const LIST_HELP: [string, string][] = [['--limit N', `at most N rows (1–${MAX_LIST_LIMIT}; default 50)`]];

export const sessionList: Command = {
  name: 'session list',
  summary: 'sessions, newest first (open ones first), filtered by state or agent',
  args: [],
  usage: '[--state STATE] [--agent DID] [--limit N]',
  options: { state: { type: 'string' }, agent: { type: 'string' }, limit: { type: 'string' } },
  help: [
    ['--state STATE', `only sessions in this state: ${SESSION_STATES.join(', ')}`],
    ['--agent DID', 'only sessions this DID joined'],
    ...LIST_HELP,
  ],
  examples: ['hv session list --state active', 'hv session list --agent did:mesh:alpha --json'],
  async run(ctx, values) {
    const state = filterFlag(this, values, 'state', { of: 'session', states: SESSION_STATES });
    const agentDid = filterFlag(this, values, 'agent');
    const limit = limitFlag(this, values);
    const hv = await ctx.client();
    const rows: SessionRow[] = await ctx.call(() => hv.listSessions({ state, agentDid, limit }));
    ctx.print(
      { sessions: rows },
      () =>
        [
          `Sessions (${rows.length}, newest first)`,
          table(
            ['session', 'state', 'agents', 'started', 'closed'],
            rows.map((r) => [r.sessionId, r.state, r.agentDids.join(', '), time(r.startedAt), time(r.closedAt)]),
          ),
        ].join('\n') + more(rows.length, limit, 'sessions'),
    );
  },
};

export const sagaList: Command = {
  name: 'saga list',
  summary: 'sagas, newest first (open ones first), filtered by state, agent or session',
  args: [],
  usage: '[--state STATE] [--agent DID] [--session ID] [--limit N]',
  options: {
    state: { type: 'string' },
    agent: { type: 'string' },
    session: { type: 'string' },
    limit: { type: 'string' },
  },
  help: [
    ['--state STATE', `only sagas in this state: ${SAGA_STATES.join(', ')} (a saga is indexed running until it ends)`],
    ['--agent DID', 'only sagas with a step by this DID'],
    ['--session ID', 'only the sagas of this session'],
    ...LIST_HELP,
  ],
  examples: ['hv saga list --state compensated', 'hv saga list --session s1 --agent did:mesh:alpha'],
  async run(ctx, values) {
    const state = filterFlag(this, values, 'state', { of: 'saga', states: SAGA_STATES });
    const agentDid = filterFlag(this, values, 'agent');
    const sessionId = filterFlag(this, values, 'session');
    const limit = limitFlag(this, values);
    const hv = await ctx.client();
    const rows: SagaRow[] = await ctx.call(() => hv.listSagas({ state, agentDid, sessionId, limit }));
    ctx.print(
      { sagas: rows },
      () =>
        [
          `Sagas (${rows.length}, newest first)`,
          table(
            ['session', 'saga', 'state', 'agents', 'started', 'closed'],
            rows.map((r) => [
              r.sessionId,
              r.sagaId,
              r.state,
              r.agentDids.join(', '),
              time(r.startedAt),
              time(r.closedAt),
            ]),
          ),
        ].join('\n') + more(rows.length, limit, 'sagas'),
    );
  },
};

const WAITS_FOR: Record<EvidenceWait, (r: ApprovalRow) => string> = {
  consensus: (r) => `${r.quorum} approvals`,
  witness: () => 'an SRE witness',
};
const waitsFor = (r: ApprovalRow): string =>
  Object.hasOwn(WAITS_FOR, r.waitFor) ? WAITS_FOR[r.waitFor as EvidenceWait](r) : r.waitFor;

export const approvalsList: Command = {
  name: 'approvals list',
  summary: 'every saga step waiting for approvals or an SRE witness, oldest first',
  args: [],
  usage: '[--session ID] [--limit N]',
  options: { session: { type: 'string' }, limit: { type: 'string' } },
  help: [['--session ID', 'only the steps of this session'], ...LIST_HELP],
  examples: [
    'hv approvals list',
    'hv approvals list --session s1 --json',
    'hv saga approve s1 wire step-1 --as did:mesh:beta   # then approve one',
  ],
  async run(ctx, values) {
    const sessionId = filterFlag(this, values, 'session');
    const limit = limitFlag(this, values);
    const hv = await ctx.client();
    const rows: ApprovalRow[] = await ctx.call(() => hv.listApprovals({ sessionId, limit }));
    const now = Date.now();
    ctx.print(
      { approvals: rows },
      () =>
        [
          `Steps waiting for approvals or a witness (${rows.length}, oldest first)`,
          table(
            ['session', 'saga', 'step', 'waits for', 'waiting', 'since', 'deadline', 'digest'],
            rows.map((r) => [
              r.sessionId,
              r.sagaId,
              r.stepId,
              waitsFor(r),
              span(now - r.since),
              time(r.since),
              `${time(r.deadline)} (${r.deadline > now ? `in ${span(r.deadline - now)}` : 'passed'})`,
              `${r.digest.slice(0, 12)}…`,
            ]),
          ),
        ].join('\n') + more(rows.length, limit, 'steps'),
    );
  },
};
