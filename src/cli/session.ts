/** `hv session …`: create, join, activate, vouch, show, terminate. */
import { randomBytes } from 'node:crypto';
import { JoinRequestSchema, SessionIdSchema, SessionInputSchema, type JoinRequest } from '../contract';
import { commandHelpHint, didFlag, jsonOrFile, numberFlag, optionalString, validate, type Command } from './command';
import { UsageError } from './errors';
import { fields, ring, section, sigma, table, time, type Cell } from './format';
import type { SessionSummary, TerminateResult } from '../contract/sessionTypes';
import type { LiabilityMatrix } from '../core/liability';
import type { Commitment } from '../core/commitment';
import { HypervisorError } from '../core/errors';
import { isKill } from '../core/controls';
import { toHypervisorError, type SessionHandle } from '../client';

export function sessionIdArg(cmd: Command, value: string | undefined): string {
  if (value === undefined)
    throw new UsageError(`hv ${cmd.name} needs a SESSION id`, `usage: hv ${cmd.name} ${cmd.usage}`);
  const r = SessionIdSchema.safeParse(value);
  if (!r.success)
    throw new UsageError(
      `"${value}" is not a session id: ${r.error.issues[0]?.message}`,
      `usage: hv ${cmd.name} ${cmd.usage}`,
    );
  return value;
}

function newSessionId(): string {
  return `s-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

function commitmentPairs(c: Commitment): [string, Cell][] {
  return [
    ['Merkle root', c.merkleRoot ?? '(no deltas)'],
    ['deltas', c.deltaCount],
    ['participants', c.participantDids.join(', ')],
    ['committed at', time(c.committedAt)],
    ['anchor', c.anchorTarget],
    ['anchor tx', c.anchorTxId],
  ];
}

/** Wait until the session's first turn is in the audit store, or throw the error the session failed with. */
async function trailStarted(session: SessionHandle, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status } = await session.handle.describe();
    if (status.name !== 'RUNNING') {
      await session.handle.result().catch((err: unknown) => {
        throw toHypervisorError(err, session.sessionId);
      });
      throw new HypervisorError(
        'INVALID_TRANSITION',
        `session ${session.sessionId} ended at its start (${status.name})`,
      );
    }
    const head = await session.auditHead().catch(() => undefined);
    // Stored (or nothing to store: a session without an audit trail records no turn).
    if (head && (head.stored >= 1 || head.deltaCount === 0)) return;
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const create: Command = {
  name: 'session create',
  summary: 'create a session (it starts in handshaking)',
  args: [],
  usage:
    '[--id ID] --creator DID [--config FILE|JSON] [--max-participants N] [--min-sigma X] [--max-duration SECONDS] [--identity did:key|none] [--sre-witness DID …]',
  options: {
    id: { type: 'string' },
    creator: { type: 'string' },
    config: { type: 'string' },
    'max-participants': { type: 'string' },
    'min-sigma': { type: 'string' },
    'max-duration': { type: 'string' },
    identity: { type: 'string' },
    'sre-witness': { type: 'string', multiple: true },
  },
  help: [
    ['--id ID', 'the session id (letters, digits, . _ : -); default: a fresh one'],
    ['--creator DID', 'the DID of whoever creates the session (required)'],
    [
      '--config FILE|JSON',
      "the session config, every setting of contract/sessionWorkflow.schema.json's config (JSON or YAML file, or inline JSON); the flags below override it",
    ],
    ['--max-participants N', 'at most N active participants (default 10)'],
    ['--min-sigma X', 'σ_eff below X is refused unless the agent lands in ring 3 (default 0.60)'],
    [
      '--max-duration SECONDS',
      'the session ends itself (terminates, committing its Merkle root) this long after its creation (default 3600)',
    ],
    [
      '--identity did:key|none',
      'did:key (the default): every request must be signed by the DID it speaks for (`hv --key`), so the creator is a did:key; none: only SRE requests and drift reports are signed',
    ],
    [
      '--sre-witness DID',
      'an SRE witness of the session (repeat for more): a did:key, as an SRE signs its requests in every identity mode',
    ],
  ],
  examples: [
    'hv --key admin.key session create --id s1 --creator "$(hv keys show admin.key)" --sre-witness "$(hv keys show sre.key)"',
    'hv session create --id s2 --creator did:mesh:admin --identity none --max-participants 3',
    'hv session create --id s3 --creator did:mesh:admin --identity none --config session.yaml',
  ],
  async run(ctx, values) {
    const id = optionalString(values, 'id') ?? newSessionId();
    sessionIdArg(this, id);
    const creatorDid = didFlag(this, values, 'creator');
    const maxParticipants = numberFlag(this, values, 'max-participants', { min: 1, max: 10_000, integer: true });
    const minSigmaEff = numberFlag(this, values, 'min-sigma', { min: 0, max: 1 });
    const fromFile = optionalString(values, 'config');
    const given = fromFile === undefined ? {} : jsonOrFile(fromFile, '--config');
    if (given === null || typeof given !== 'object' || Array.isArray(given))
      throw new UsageError('--config must hold an object of session settings', commandHelpHint(this));
    const config: Record<string, unknown> = { ...(given as Record<string, unknown>) };
    const maxDurationSeconds = numberFlag(this, values, 'max-duration', { min: 1, max: 315_360_000, integer: true });
    if (maxDurationSeconds !== undefined) config.maxDurationSeconds = maxDurationSeconds;
    if (maxParticipants !== undefined) config.maxParticipants = maxParticipants;
    if (minSigmaEff !== undefined) config.minSigmaEff = minSigmaEff;
    // did:key unless asked otherwise (issue 24): an identity-"none" session trusts whoever names an agent.
    const identity = optionalString(values, 'identity') ?? (config.identity as string | undefined) ?? 'did:key';
    if (identity !== 'did:key' && identity !== 'none')
      throw new UsageError(`--identity must be did:key or none, got "${identity}"`, commandHelpHint(this));
    config.identity = identity;
    const witnesses = (values['sre-witness'] as unknown as string[] | undefined) ?? [];
    if (witnesses.length) config.sreWitnesses = witnesses;
    validate(
      SessionInputSchema,
      { sessionId: id, creatorDid, config },
      'session',
      identity === 'did:key' && values.identity === undefined && config.identity === undefined
        ? 'a session is did:key unless --identity none: its creator and SRE witnesses are did:keys (`hv keys new FILE`, `hv keys show FILE`)'
        : 'fix the flags or --config settings named in the message',
    );
    const hv = await ctx.client();
    const session = await ctx.call(() => hv.createSession({ sessionId: id, creatorDid, config }));
    // A session settles its first turn with the audit store before it grants anything; an id whose
    // trail the store already holds fails it there. Report that, not "Created".
    await ctx.call(() => trailStarted(session));
    const summary = await ctx.call(() => session.summary());
    ctx.print(
      { sessionId: id, workflowId: session.handle.workflowId, state: summary.state, config: summary.config },
      () =>
        [
          `Created session ${id} (${summary.state})`,
          fields(
            [
              ['workflow', session.handle.workflowId],
              ['max participants', summary.config.maxParticipants],
              ['min σ_eff', sigma(summary.config.minSigmaEff)],
              ['ends itself after', `${summary.config.maxDurationSeconds} s`],
            ],
            '  ',
          ),
          '',
          `Next: hv session join ${id} --agent DID --sigma 0.8`,
        ].join('\n'),
    );
  },
};

const join: Command = {
  name: 'session join',
  summary: 'join an agent to a session (the handshake)',
  args: ['SESSION'],
  usage: 'SESSION --agent DID [--sigma X] [--actions FILE|JSON] [--manifest FILE] [--delegated-by DID]',
  options: {
    agent: { type: 'string' },
    sigma: { type: 'string' },
    actions: { type: 'string' },
    manifest: { type: 'string' },
    'delegated-by': { type: 'string' },
  },
  help: [
    ['--agent DID', 'the joining agent (required)'],
    [
      '--sigma X',
      "σ_raw in [0, 1]; a configured trust scorer's σ wins when lower; with neither, the manifest's hint or 0.50",
    ],
    [
      '--actions FILE|JSON',
      'the actions it declares: inline JSON or a JSON/YAML file, e.g. [{"actionId":"draft","reversibility":"FULL"}]',
    ],
    [
      '--manifest FILE',
      'an IATP capability manifest (JSON/YAML): {agent_id, trust_level, trust_score, actions, scopes}',
    ],
    [
      '--delegated-by DID',
      "its parent (SPEC §12): the child is capped at the parent's ring + 1; both sign it (--key for each)",
    ],
  ],
  examples: [
    'hv session join s1 --agent did:mesh:alpha --sigma 0.85 --actions \'[{"actionId":"draft","reversibility":"FULL"}]\'',
    'hv session join s1 --agent did:mesh:beta --manifest beta-manifest.yaml',
  ],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const req: Record<string, unknown> = { agentDid: didFlag(this, values, 'agent') };
    const sigmaRaw = numberFlag(this, values, 'sigma', { min: 0, max: 1 });
    if (sigmaRaw !== undefined) req.sigmaRaw = sigmaRaw;
    const actions = optionalString(values, 'actions');
    if (actions !== undefined) req.actions = jsonOrFile(actions, '--actions');
    const manifest = optionalString(values, 'manifest');
    if (manifest !== undefined) req.manifest = jsonOrFile(manifest, '--manifest');
    if (values['delegated-by'] !== undefined) req.delegatedBy = didFlag(this, values, 'delegated-by');
    validate(
      JoinRequestSchema,
      req,
      'join request',
      'fix --actions / --manifest (see docs/CONTRACT.md, contract/join.schema.json)',
    );
    const hv = await ctx.client();
    const result = await ctx.call(() => hv.session(sessionId).join(req as JoinRequest));
    ctx.print(result, () =>
      [
        `${result.did} joined ${sessionId}`,
        fields(
          [
            ['ring', ring(result.ring)],
            ['σ_raw', sigma(result.sigmaRaw)],
            ['σ_eff', sigma(result.sigmaEff)],
            ['history', result.historyStatus],
            [
              'consistency',
              result.consistency + (result.consistencyChanged ? ' (forced by a non-reversible action)' : ''),
            ],
          ],
          '  ',
        ),
      ].join('\n'),
    );
  },
};

const activate: Command = {
  name: 'session activate',
  summary: 'activate a session (needs at least one participant)',
  args: ['SESSION'],
  usage: 'SESSION',
  options: {},
  help: [],
  async run(ctx, _values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const hv = await ctx.client();
    const summary = await ctx.call(() => hv.session(sessionId).activate());
    ctx.print(
      summary,
      () =>
        `Session ${sessionId} is ${summary.state} with ${summary.participants.filter((p) => p.active).length} participant(s)`,
    );
  },
};

const vouch: Command = {
  name: 'session vouch',
  summary: 'a voucher bonds part of its σ for a vouchee',
  args: ['SESSION'],
  usage: 'SESSION --voucher DID --vouchee DID [--bond-pct X]',
  options: { voucher: { type: 'string' }, vouchee: { type: 'string' }, 'bond-pct': { type: 'string' } },
  help: [
    ['--voucher DID', 'the agent that vouches (σ ≥ 0.50)'],
    ['--vouchee DID', 'the agent vouched for'],
    ['--bond-pct X', "the fraction of the voucher's σ bonded, in [0, 1] (default 0.20)"],
  ],
  examples: ['hv session vouch s1 --voucher did:mesh:beta --vouchee did:mesh:alpha --bond-pct 0.3'],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const voucher = didFlag(this, values, 'voucher');
    const vouchee = didFlag(this, values, 'vouchee');
    const bondPct = numberFlag(this, values, 'bond-pct', { min: 0, max: 1 });
    const hv = await ctx.client();
    const bond = await ctx.call(() =>
      hv.session(sessionId).vouch({ voucher, vouchee, ...(bondPct !== undefined ? { bondPct } : {}) }),
    );
    const vouchedFor = await ctx.call(() => hv.session(sessionId).participant(vouchee));
    ctx.print({ bond, vouchee: vouchedFor }, () =>
      [
        `${voucher} vouches for ${vouchee} (bond ${bond.bondId})`,
        fields(
          [
            ['amount', `${sigma(bond.amount)} (${sigma(bond.voucherSigma)} × ${bond.bondPct})`],
            ['vouchee σ_eff', vouchedFor ? `${sigma(vouchedFor.sigmaEff)}, ring ${ring(vouchedFor.ring)}` : '—'],
          ],
          '  ',
        ),
      ].join('\n'),
    );
  },
};

/**
 * An agent's effective state in a session, controls included (SPEC §12): what
 * an operator needs at a glance — killed, quarantined or tripped until when,
 * elevated until when, slashed, left.
 */
export function agentState(s: SessionSummary, did: string): string {
  const p = s.participants.find((x) => x.did === did);
  if (!p) return 'not a participant';
  const parts: string[] = [];
  const r = s.controls.restricted.find((x) => x.did === did);
  if (r)
    parts.push(
      isKill(r) ? 'killed' : `${r.kind === 'breaker' ? 'tripped (breaker)' : 'quarantined'} until ${time(r.until)}`,
    );
  if (!p.active) parts.push('left');
  if (p.slashed) parts.push('slashed');
  const e = s.controls.elevations.find((x) => x.agentDid === did);
  if (e)
    parts.push(
      e.state === 'active'
        ? `elevated to ring ${e.ring} until ${time(e.until)}`
        : `elevation to ring ${e.ring} requested`,
    );
  const parent = s.controls.delegations.find((d) => d.child === did);
  if (parent) parts.push(`delegated by ${parent.parent}`);
  return parts.length ? parts.join(', ') : 'active';
}

export function renderSummary(s: SessionSummary, liability: LiabilityMatrix): string {
  const out = [
    `Session ${s.sessionId} — ${s.state}`,
    fields(
      [
        ['consistency', s.consistency],
        ['max participants', s.config.maxParticipants],
        ['min σ_eff', sigma(s.config.minSigmaEff)],
        ['deltas', s.deltaCount],
        ['Merkle root', s.merkleRoot ?? '(no deltas)'],
        ['files', s.files],
      ],
      '  ',
    ),
    section(
      'Participants',
      table(
        ['agent', 'ring', 'σ_raw', 'σ_eff', 'state', 'history'],
        s.participants.map((p) => [
          p.did,
          ring(p.ring),
          sigma(p.sigmaRaw),
          sigma(p.sigmaEff),
          agentState(s, p.did),
          p.historyStatus,
        ]),
      ),
    ),
    section(
      'Bonds',
      table(
        ['bond', 'voucher', 'vouchee', 'amount', 'expires'],
        liability.bonds.map((b) => [
          b.bondId,
          b.voucher,
          b.vouchee,
          sigma(b.amount),
          b.expiresAt === null ? 'never' : time(b.expiresAt),
        ]),
      ),
    ),
    section(
      'Sagas',
      table(
        ['saga', 'state', 'started', 'description'],
        s.sagas.map((g) => [g.sagaId, g.state, time(g.startedAt), g.description]),
      ),
    ),
  ];
  if (s.commitment) out.push(section('Commitment', fields(commitmentPairs(s.commitment), '  ')));
  return out.join('\n');
}

const show: Command = {
  name: 'session show',
  summary: 'participants (ring, σ_raw, σ_eff, active), bonds, sagas, deltas and Merkle root',
  args: ['SESSION'],
  usage: 'SESSION',
  options: {},
  help: [],
  async run(ctx, _values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const hv = await ctx.client();
    const session = hv.session(sessionId);
    const summary = await ctx.call(() => session.summary());
    const liability = await ctx.call(() => session.liability());
    ctx.print({ ...summary, bonds: liability.bonds, liability }, () => renderSummary(summary, liability));
  },
};

const terminate: Command = {
  name: 'session terminate',
  summary: 'terminate a session: releases bonds, purges files, commits the Merkle root',
  args: ['SESSION'],
  usage: 'SESSION',
  options: {},
  help: [],
  async run(ctx, _values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const hv = await ctx.client();
    const result: TerminateResult = await ctx.call(() => hv.session(sessionId).terminate());
    ctx.print(result, () =>
      [
        `Session ${sessionId} terminated; its commitment:`,
        fields(
          [
            ...commitmentPairs(result.commitment),
            ['released bonds', result.releasedBonds],
            ['purged files', result.purgedFiles],
            ['deltas kept until', time(result.retainUntil)],
          ],
          '  ',
        ),
        '',
        `Verify it: hv audit verify ${sessionId}`,
      ].join('\n'),
    );
  },
};

export const sessionCommands: Command[] = [create, join, activate, vouch, show, terminate];
