/**
 * `hv audit …`: export a session's trail, and verify a trail OFFLINE — the
 * hash chain and the Merkle root recomputed here with src/audit.ts, never
 * trusting the server's own verdict — then compare with the session's
 * commitment once it has terminated.
 */
import { verifyTrail, type AuditTrail } from '../audit';
import { isHypervisorError } from '../errors';
import type { Commitment } from '../commitment';
import type { CliContext } from './context';
import { readFileText, type Command } from './command';
import { EXIT, UsageError } from './errors';
import { fields } from './format';
import { sessionIdArg } from './session';

export interface AuditReport {
  ok: boolean;
  sessionId: string;
  source: 'server' | 'file';
  file: string | null;
  deltaCount: number | null;
  merkleRoot: string | null;
  /** The first broken link: delta index and id (null when the fault is not one delta's) and why. */
  brokenAt: number | null;
  deltaId: string | null;
  reason: string | null;
  commitment: { checked: boolean; matches: boolean | null; merkleRoot: string | null; deltaCount: number | null; committedAt: number | null; note: string };
}

/** verifyTrail, with a malformed trail reported as a failure at the delta it names rather than thrown. */
function verifyOffline(trail: unknown): Pick<AuditReport, 'ok' | 'deltaCount' | 'merkleRoot' | 'brokenAt' | 'deltaId' | 'reason'> {
  const deltas = (trail as { deltas?: unknown })?.deltas;
  try {
    const v = verifyTrail(trail);
    if (v.ok) return { ok: true, deltaCount: v.count, merkleRoot: v.merkleRoot, brokenAt: null, deltaId: null, reason: null };
    return { ok: false, deltaCount: Array.isArray(deltas) ? deltas.length : null, merkleRoot: null, brokenAt: v.brokenAt, deltaId: v.deltaId, reason: v.reason };
  } catch (err) {
    if (!isHypervisorError(err, 'INVALID_INPUT')) throw err;
    const issues = (err.details.issues as string[] | undefined) ?? [];
    const at = issues.map((i) => /^deltas\.(\d+)/.exec(i)).find((m) => m !== null);
    const index = at ? Number(at[1]) : null;
    const delta = index !== null && Array.isArray(deltas) ? (deltas[index] as { deltaId?: unknown } | undefined) : undefined;
    return {
      ok: false,
      deltaCount: Array.isArray(deltas) ? deltas.length : null,
      merkleRoot: null,
      brokenAt: index,
      deltaId: typeof delta?.deltaId === 'string' ? delta.deltaId : null,
      reason: `malformed trail: ${err.message}`,
    };
  }
}

function render(r: AuditReport): string {
  const what = `audit trail of session ${r.sessionId}${r.file ? ` (file ${r.file})` : ''}`;
  if (!r.ok) {
    const where = r.brokenAt !== null ? `delta ${r.brokenAt}${r.deltaId ? ` (id ${r.deltaId})` : ''}` : 'the trail as a whole';
    return [`FAILED  ${what}`, fields([['first broken link', where], ['reason', r.reason]], '  ')].join('\n');
  }
  return [
    `OK  ${what}`,
    fields([
      ['deltas', r.deltaCount],
      ['Merkle root', r.merkleRoot ?? '(no deltas)'],
      ['chain', `${r.deltaCount} deltas, every hash recomputed and linked`],
      ['commitment', r.commitment.note],
    ], '  '),
  ].join('\n');
}

const verify: Command = {
  name: 'audit verify',
  summary: 'verify a session\'s hash chain and Merkle root offline, and against its commitment',
  args: ['SESSION'],
  usage: 'SESSION [--file trail.json] [--offline]',
  options: { file: { type: 'string' }, offline: { type: 'boolean' } },
  help: [
    ['--file FILE', 'verify an exported trail (`hv audit export`) instead of fetching the session\'s'],
    ['--offline', 'with --file: do not contact Temporal (skips the comparison with the commitment)'],
  ],
  examples: ['hv audit verify s1', 'hv audit export s1 > trail.json && hv audit verify s1 --file trail.json --offline'],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const file = typeof values.file === 'string' ? values.file : null;
    if (values.offline && !file) throw new UsageError('--offline needs --file (without a file the trail comes from the server)', `run \`hv ${this.name} --help\``);
    let trail: unknown;
    if (file) {
      const text = readFileText(file, 'trail file');
      try {
        trail = JSON.parse(text);
      } catch (err) {
        throw new UsageError(`trail file ${file} is not JSON: ${(err as Error).message}`, `export one with \`hv audit export ${sessionId} > ${file}\``);
      }
    } else {
      const hv = await ctx.client();
      trail = (await ctx.call(() => hv.session(sessionId).audit())).trail;
    }
    const report: AuditReport = {
      sessionId, source: file ? 'file' : 'server', file,
      ...verifyOffline(trail),
      commitment: { checked: false, matches: null, merkleRoot: null, deltaCount: null, committedAt: null, note: 'not checked' },
    };
    const trailSession = (trail as Partial<AuditTrail> | null)?.sessionId;
    if (report.ok && trailSession !== sessionId) {
      Object.assign(report, { ok: false, brokenAt: null, deltaId: null, reason: `the trail is of session ${String(trailSession)}, not ${sessionId}` });
    }
    if (report.ok && !values.offline) {
      const hv = await ctx.client();
      const summary = await ctx.call(() => hv.session(sessionId).summary());
      const c: Commitment | null = summary.commitment;
      if (!c) {
        report.commitment.note = `none yet (session is ${summary.state}; terminating it commits the root)`;
      } else {
        const matches = c.merkleRoot === report.merkleRoot && c.deltaCount === report.deltaCount;
        report.commitment = {
          checked: true, matches, merkleRoot: c.merkleRoot, deltaCount: c.deltaCount, committedAt: c.committedAt,
          note: matches ? `matches (committed ${new Date(c.committedAt).toISOString()}, anchor ${c.anchorTarget})` : 'DIFFERS',
        };
        if (!matches) {
          Object.assign(report, {
            ok: false, brokenAt: null, deltaId: null,
            reason: `the trail's Merkle root ${String(report.merkleRoot)} over ${report.deltaCount} deltas differs from the commitment: ${String(c.merkleRoot)} over ${c.deltaCount} deltas`,
          });
        }
      }
    } else if (values.offline) {
      report.commitment.note = 'not checked (--offline)';
    }
    ctx.print(report, () => render(report));
    return report.ok ? EXIT.OK : EXIT.AUDIT_FAILED;
  },
};

const exportCmd: Command = {
  name: 'audit export',
  summary: 'print the session\'s audit trail as JSON (for `hv audit verify --file`)',
  args: ['SESSION'],
  usage: 'SESSION > trail.json',
  options: {},
  help: [],
  examples: ['hv audit export s1 > trail.json'],
  async run(ctx, _values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const hv = await ctx.client();
    const { trail } = await ctx.call(() => hv.session(sessionId).audit());
    ctx.stdout.write(JSON.stringify(trail, null, 2) + '\n');
  },
};

export const auditCommands: Command[] = [verify, exportCmd];
