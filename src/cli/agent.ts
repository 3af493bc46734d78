/**
 * `hv agent …`: the controls of SPEC §12 on one agent of a session —
 * quarantine, release, kill (with a substitute), elevation (request, approve,
 * revoke). Quarantine, release, kill and an SRE's revocation are signed by the
 * SRE (`--sre`, one of the session's config.sreWitnesses); an elevation by the
 * agent, its approval by the approver.
 */
import {
  ElevationApprovalSchema,
  ElevationRequestSchema,
  KillRequestSchema,
  QuarantineRequestSchema,
  ReleaseRequestSchema,
  RevokeElevationRequestSchema,
  SlashRequestSchema,
} from '../contract';
import { commandHelpHint, didFlag, numberFlag, optionalString, required, validate, type Command } from './command';
import { UsageError } from './errors';
import { fields, ring, sigma, time } from './format';
import { agentState, sessionIdArg } from './session';
import { HypervisorError } from '../core/errors';
import { isKill } from '../core/controls';
import type { ControlResult, ElevationView } from '../contract/sessionTypes';

const SESSION_AGENT = ['SESSION'];
const fix = (cmd: Command) => `fix the flags named in the message; ${commandHelpHint(cmd)}`;

function controlLines(verb: string, sessionId: string, r: ControlResult): string {
  return [
    `${r.agentDid} ${verb} in ${sessionId}`,
    fields(
      [
        ['until', r.until === null ? (isKill(r) ? 'never (a kill is final)' : '—') : time(r.until)],
        ['running sagas holding it', r.sagasHolding.length ? r.sagasHolding.join(', ') : 'none'],
        ...(r.handedOff.length
          ? [
              ['handed off', r.handedOff.map((h) => `${h.sagaId}/${h.stepId} → ${h.agentDid}`).join(', ')] as [
                string,
                string,
              ],
            ]
          : []),
      ],
      '  ',
    ),
  ].join('\n');
}

function elevationLines(e: ElevationView): string {
  return [
    `Elevation ${e.elevationId} of ${e.agentDid} to ring ${e.ring}: ${e.state}`,
    fields(
      [
        ['approvals', `${e.approvals} of ${e.quorum}`],
        ['TTL', `${e.ttlSeconds} s`],
        [
          e.state === 'revoked' ? 'revoked; was until' : e.state === 'active' ? 'active until' : 'active',
          e.until === null ? (e.state === 'requested' ? `once ${e.quorum} approve` : '—') : time(e.until),
        ],
        ['digest', e.digest],
        ['justification', e.justification],
      ],
      '  ',
    ),
  ].join('\n');
}

const quarantine: Command = {
  name: 'agent quarantine',
  summary: 'an SRE quarantines an agent for a TTL: read-only actions only',
  args: SESSION_AGENT,
  usage: 'SESSION --agent DID --sre DID --reason TEXT [--ttl SECONDS]',
  options: { agent: { type: 'string' }, sre: { type: 'string' }, reason: { type: 'string' }, ttl: { type: 'string' } },
  help: [
    ['--agent DID', 'the agent to quarantine'],
    ['--sre DID', "one of the session's SRE witnesses (config.sreWitnesses); it signs with --key"],
    ['--reason TEXT', 'why (kept in the audit trail)'],
    ['--ttl SECONDS', "how long (default: the session's controls.quarantineTtlSeconds, 300)"],
  ],
  examples: [
    'hv --key sre.key agent quarantine s1 --agent did:mesh:alpha --sre "$(hv keys show sre.key)" --reason "odd tool calls" --ttl 600',
  ],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const ttlSeconds = numberFlag(this, values, 'ttl', { min: 1, max: 30 * 86_400, integer: true });
    const req = validate(
      QuarantineRequestSchema,
      {
        agentDid: didFlag(this, values, 'agent'),
        sreDid: didFlag(this, values, 'sre'),
        reason: required(this, values, 'reason'),
        ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
      },
      'quarantine',
      fix(this),
    );
    const hv = await ctx.client();
    const result = await ctx.call(() => hv.session(sessionId).quarantine(req));
    ctx.print(result, () => controlLines('is quarantined', sessionId, result));
  },
};

const release: Command = {
  name: 'agent release',
  summary: 'an SRE releases a quarantined agent before its TTL (a kill is final)',
  args: SESSION_AGENT,
  usage: 'SESSION --agent DID --sre DID [--reason TEXT]',
  options: { agent: { type: 'string' }, sre: { type: 'string' }, reason: { type: 'string' } },
  help: [
    ['--agent DID', 'the quarantined agent'],
    ['--sre DID', "one of the session's SRE witnesses"],
    ['--reason TEXT', 'why (optional)'],
  ],
  examples: ['hv --key sre.key agent release s1 --agent did:mesh:alpha --sre "$(hv keys show sre.key)"'],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const reason = optionalString(values, 'reason');
    const req = validate(
      ReleaseRequestSchema,
      { agentDid: didFlag(this, values, 'agent'), sreDid: didFlag(this, values, 'sre'), ...(reason ? { reason } : {}) },
      'release',
      fix(this),
    );
    const hv = await ctx.client();
    const result = await ctx.call(() => hv.session(sessionId).release(req));
    ctx.print(result, () => `${result.agentDid} released in ${sessionId}`);
  },
};

const kill: Command = {
  name: 'agent kill',
  summary:
    'an SRE kills an agent: its step in flight is cancelled, its remaining steps go to --substitute or are compensated',
  args: SESSION_AGENT,
  usage: 'SESSION --agent DID --sre DID --reason TEXT [--substitute DID]',
  options: {
    agent: { type: 'string' },
    sre: { type: 'string' },
    reason: { type: 'string' },
    substitute: { type: 'string' },
  },
  help: [
    ['--agent DID', 'the agent to kill: it runs nothing more in this session'],
    ['--sre DID', "one of the session's SRE witnesses"],
    ['--reason TEXT', 'why (kept in the audit trail)'],
    [
      '--substitute DID',
      'an active participant that takes over the remaining steps, each only if it passes the gate for it',
    ],
  ],
  examples: [
    'hv --key sre.key agent kill s1 --agent did:mesh:alpha --sre "$(hv keys show sre.key)" --reason "leaked key" --substitute did:mesh:beta',
  ],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const substitute = values.substitute === undefined ? undefined : didFlag(this, values, 'substitute');
    const req = validate(
      KillRequestSchema,
      {
        agentDid: didFlag(this, values, 'agent'),
        sreDid: didFlag(this, values, 'sre'),
        reason: required(this, values, 'reason'),
        ...(substitute ? { substituteDid: substitute } : {}),
      },
      'kill',
      fix(this),
    );
    const hv = await ctx.client();
    const result = await ctx.call(() => hv.session(sessionId).kill(req));
    ctx.print(result, () => controlLines('is killed', sessionId, result));
  },
};

const slash: Command = {
  name: 'agent slash',
  summary: "slash an agent at an SRE witness's request: σ → 0, its vouchers clipped (SPEC §5)",
  args: SESSION_AGENT,
  usage: 'SESSION --agent DID --witness DID --reason TEXT [--omega X]',
  options: {
    agent: { type: 'string' },
    witness: { type: 'string' },
    reason: { type: 'string' },
    omega: { type: 'string' },
  },
  help: [
    ['--agent DID', 'the agent to slash'],
    ['--witness DID', "one of the session's SRE witnesses; it signs with --key, in every identity mode"],
    ['--reason TEXT', 'why (kept in the audit trail)'],
    ['--omega X', "the risk weight that clips its vouchers (default 0.95, an irreversible action's)"],
  ],
  examples: [
    'hv --key sre.key agent slash s1 --agent did:mesh:alpha --witness "$(hv keys show sre.key)" --reason "forged a receipt"',
  ],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const omega = numberFlag(this, values, 'omega', { min: 0, max: 1 });
    const req = validate(
      SlashRequestSchema,
      {
        agentDid: didFlag(this, values, 'agent'),
        witnessDid: didFlag(this, values, 'witness'),
        reason: required(this, values, 'reason'),
        ...(omega !== undefined ? { omega } : {}),
      },
      'slash',
      fix(this),
    );
    const hv = await ctx.client();
    const result = await ctx.call(() => hv.session(sessionId).slash(req));
    ctx.print(result, () =>
      [
        `${req.agentDid} is slashed in ${sessionId}`,
        fields(
          result.outcome.slashes.map(
            (s) =>
              [
                s.vouchee,
                `σ ${sigma(s.sigmaBefore)} → 0${s.clips.length ? `; clipped ${s.clips.map((c) => c.voucher).join(', ')}` : ''}`,
              ] as [string, string],
          ),
          '  ',
        ),
      ].join('\n'),
    );
  },
};

const elevate: Command = {
  name: 'agent elevate',
  summary: 'request an elevation to ring 1 or 2 for a TTL; approve one with --approve',
  args: SESSION_AGENT,
  usage:
    'SESSION --agent DID (--ring 1|2 --justification TEXT [--ttl SECONDS] | --approve ELEVATION --digest HEX --approver DID)',
  options: {
    agent: { type: 'string' },
    ring: { type: 'string' },
    justification: { type: 'string' },
    ttl: { type: 'string' },
    approve: { type: 'string' },
    digest: { type: 'string' },
    approver: { type: 'string' },
  },
  help: [
    ['--agent DID', 'the agent asking (it signs the request)'],
    ['--ring 1|2', 'the ring asked for (never 0)'],
    ['--justification TEXT', 'why (kept in the audit trail)'],
    ['--ttl SECONDS', 'how long once approved, at most 3600 (default: controls.elevationTtlSeconds, 300)'],
    ['--approve ELEVATION', 'approve this elevation id instead (with --digest from the request and --approver)'],
    ['--digest HEX', "the elevation's digest: approvals are bound to it"],
    ['--approver DID', "another active participant; the quorum is the session's (config.consensusQuorum)"],
  ],
  examples: [
    'hv agent elevate s1 --agent did:mesh:alpha --ring 1 --ttl 600 --justification "incident 42"',
    'hv agent elevate s1 --agent did:mesh:alpha --approve elevation-1 --digest 3f… --approver did:mesh:beta',
  ],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const agentDid = didFlag(this, values, 'agent');
    const hv = await ctx.client();
    const approve = optionalString(values, 'approve');
    if (approve !== undefined) {
      const req = validate(
        ElevationApprovalSchema,
        {
          agentDid,
          elevationId: approve,
          digest: required(this, values, 'digest'),
          approverDid: didFlag(this, values, 'approver'),
        },
        'elevation approval',
        fix(this),
      );
      const e = await ctx.call(() => hv.session(sessionId).approveElevation(req));
      ctx.print(e, () => elevationLines(e));
      return;
    }
    const ring = numberFlag(this, values, 'ring', { min: 1, max: 2, integer: true });
    if (ring === undefined)
      throw new UsageError('hv agent elevate needs --ring 1|2 (or --approve ELEVATION)', commandHelpHint(this));
    const ttlSeconds = numberFlag(this, values, 'ttl', { min: 1, max: 3600, integer: true });
    const req = validate(
      ElevationRequestSchema,
      {
        agentDid,
        ring,
        justification: required(this, values, 'justification'),
        ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
      },
      'elevation request',
      fix(this),
    );
    const e = await ctx.call(() => hv.session(sessionId).requestElevation(req));
    ctx.print(e, () =>
      [
        elevationLines(e),
        '',
        `Approve: hv agent elevate ${sessionId} --agent ${agentDid} --approve ${e.elevationId} --digest ${e.digest} --approver DID`,
      ].join('\n'),
    );
  },
};

const revoke: Command = {
  name: 'agent revoke',
  summary: "revoke an agent's elevation (an SRE, or the agent itself): it ends at once",
  args: SESSION_AGENT,
  usage: 'SESSION --agent DID --by DID [--reason TEXT]',
  options: { agent: { type: 'string' }, by: { type: 'string' }, reason: { type: 'string' } },
  help: [
    ['--agent DID', 'the elevated agent'],
    ['--by DID', 'an SRE witness of the session (it signs with --key, in every identity mode), or the agent itself'],
    ['--reason TEXT', 'why (optional)'],
  ],
  examples: [
    'hv --key sre.key agent revoke s1 --agent did:mesh:alpha --by "$(hv keys show sre.key)" --reason "incident closed"',
  ],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const reason = optionalString(values, 'reason');
    const req = validate(
      RevokeElevationRequestSchema,
      { agentDid: didFlag(this, values, 'agent'), byDid: didFlag(this, values, 'by'), ...(reason ? { reason } : {}) },
      'revocation',
      fix(this),
    );
    const hv = await ctx.client();
    const e = await ctx.call(() => hv.session(sessionId).revokeElevation(req));
    ctx.print(e, () => elevationLines(e));
  },
};

const show: Command = {
  name: 'agent show',
  summary: 'one agent of a session: ring, σ, its controls (killed, quarantined, elevated), delegation and spend',
  args: SESSION_AGENT,
  usage: 'SESSION --agent DID',
  options: { agent: { type: 'string' } },
  help: [['--agent DID', 'the agent']],
  examples: ['hv agent show s1 --agent did:mesh:alpha'],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const did = didFlag(this, values, 'agent');
    const hv = await ctx.client();
    const s = await ctx.call(() => hv.session(sessionId).summary());
    const p = s.participants.find((x) => x.did === did);
    if (!p)
      throw new HypervisorError('AGENT_NOT_FOUND', `agent ${did} is not a participant of session ${sessionId}`, {
        did,
      });
    const usage = s.controls.spent.agents.find((a) => a.did === did);
    const restriction = s.controls.restricted.find((r) => r.did === did) ?? null;
    const elevation = s.controls.elevations.find((e) => e.agentDid === did) ?? null;
    ctx.print({ participant: p, state: agentState(s, did), restriction, elevation, usage: usage ?? null }, () =>
      [
        `${did} in ${sessionId}: ${agentState(s, did)}`,
        fields(
          [
            ['ring', ring(p.ring)],
            ['σ_raw', sigma(p.sigmaRaw)],
            ['σ_eff', sigma(p.sigmaEff)],
            ['history', p.historyStatus],
            ...(restriction ? [['restricted by', `${restriction.by}: ${restriction.reason}`] as [string, string]] : []),
            ...(usage
              ? [
                  [
                    'spent',
                    `${usage.spent.calls} calls, ${usage.spent.cost} cost units (reserved ${usage.reserved.calls}, ${usage.reserved.cost})`,
                  ] as [string, string],
                ]
              : []),
          ],
          '  ',
        ),
        ...(elevation ? ['', elevationLines(elevation)] : []),
      ].join('\n'),
    );
  },
};

export const agentCommands: Command[] = [show, quarantine, release, kill, slash, elevate, revoke];
