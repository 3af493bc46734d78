/**
 * `hv audit …`: a session's trail, read from the audit store and verified
 * OFFLINE — every stored turn re-parsed and re-hashed, the chain linked, the
 * Merkle root recomputed here, never trusting a server's verdict — and
 * compared with the commitment termination stored. A terminated session needs
 * only the store (it works after Temporal's data is gone); an open one also
 * asks its workflow for the deltas not yet stored.
 */
import { isDidKeyTrail, signatureCount, verifyTrail, type AuditTrail, type Delta } from '../core/audit';
import { isHypervisorError } from '../core/errors';
import type { Commitment } from '../core/commitment';
import {
  proveTurn,
  readTrail,
  toAuditTrail,
  verifyInclusionProof,
  verifyStoredTrail,
  type InclusionProof,
  type StoredTrail,
} from '../store/trail';
import { verifyTreeHeads } from '../store/treeHeads';
import { isDidKey } from '../core/identity';
import type { CliContext } from './context';
import { readFileText, type Command } from './command';
import { CliError, EXIT, UsageError } from './errors';
import { storeName } from '../store';
import type { AuditStore } from '../store/types';
import { fields } from './format';
import { sessionIdArg } from './session';

export interface AuditReport {
  ok: boolean;
  sessionId: string;
  source: 'store' | 'file';
  file: string | null;
  /** The audit store read (kind and location), when one was. */
  store: string | null;
  deltaCount: number | null;
  merkleRoot: string | null;
  /** The first broken turn (1-based; null when the fault is not one delta's), its delta id when known, and why. */
  turn: number | null;
  deltaId: string | null;
  reason: string | null;
  /** Signatures checked offline (each delta's, over its payload hash), and whether the trail is a did:key session's. */
  signatures: { checked: number; didKeySession: boolean };
  commitment: {
    checked: boolean;
    matches: boolean | null;
    merkleRoot: string | null;
    deltaCount: number | null;
    committedAt: number | null;
    note: string;
  };
  /** With --hypervisor: the worker's signed tree heads checked (issue 24, N14). */
  hypervisor: { did: string; checked: number; final: boolean } | null;
}

type Verdict = Pick<AuditReport, 'ok' | 'deltaCount' | 'merkleRoot' | 'turn' | 'deltaId' | 'reason'>;

/** verifyTrail on an exported file, with a malformed trail reported as a failure at the turn it names rather than thrown. */
function verifyFile(trail: unknown): Verdict {
  const deltas = (trail as { deltas?: unknown })?.deltas;
  const count = Array.isArray(deltas) ? deltas.length : null;
  try {
    const v = verifyTrail(trail);
    if (v.ok)
      return { ok: true, deltaCount: v.count, merkleRoot: v.merkleRoot, turn: null, deltaId: null, reason: null };
    return {
      ok: false,
      deltaCount: count,
      merkleRoot: null,
      turn: v.brokenAt === null ? null : v.brokenAt + 1,
      deltaId: v.deltaId,
      reason: v.reason,
    };
  } catch (err) {
    if (!isHypervisorError(err, 'INVALID_INPUT')) throw err;
    const issues = (err.details.issues as string[] | undefined) ?? [];
    const at = issues.map((i) => /^deltas\.(\d+)/.exec(i)).find((m) => m !== null);
    const index = at ? Number(at[1]) : null;
    const delta =
      index !== null && Array.isArray(deltas) ? (deltas[index] as { deltaId?: unknown } | undefined) : undefined;
    return {
      ok: false,
      deltaCount: count,
      merkleRoot: null,
      turn: index === null ? null : index + 1,
      deltaId: typeof delta?.deltaId === 'string' ? delta.deltaId : null,
      reason: `malformed trail: ${err.message}`,
    };
  }
}

function verifyStored(trail: StoredTrail): Verdict {
  const v = verifyStoredTrail(trail);
  if (v.ok) return { ok: true, deltaCount: v.count, merkleRoot: v.merkleRoot, turn: null, deltaId: null, reason: null };
  return {
    ok: false,
    deltaCount: trail.deltaCount,
    merkleRoot: null,
    turn: v.turn,
    deltaId: v.deltaId,
    reason: v.reason,
  };
}

function render(r: AuditReport): string {
  const what = `audit trail of session ${r.sessionId}${r.file ? ` (file ${r.file})` : ' (audit store)'}`;
  if (!r.ok) {
    const where =
      r.turn !== null ? `turn ${r.turn}${r.deltaId ? ` (delta ${r.deltaId})` : ''}` : 'the trail as a whole';
    return [
      `FAILED  ${what}`,
      fields(
        [
          ...(r.store ? [['store', r.store] as [string, string]] : []),
          ['first broken turn', where],
          ['reason', r.reason],
        ],
        '  ',
      ),
    ].join('\n');
  }
  return [
    `OK  ${what}`,
    fields(
      [
        ...(r.store ? [['store', r.store] as [string, string]] : []),
        ['deltas', r.deltaCount],
        ['Merkle root', r.merkleRoot ?? '(no deltas)'],
        ['chain', `${r.deltaCount} deltas, every hash recomputed and linked`],
        [
          'signatures',
          `${r.signatures.checked} checked${r.signatures.didKeySession ? " (a did:key session: every agent's delta is signed by it)" : ''}`,
        ],
        ['commitment', r.commitment.note],
        ...(r.hypervisor
          ? [
              [
                'tree heads',
                `${r.hypervisor.checked} signed by ${r.hypervisor.did}${r.hypervisor.final ? ', the final one over the commitment' : ''}, each root and chain hash recomputed`,
              ] as [string, string],
            ]
          : []),
      ],
      '  ',
    ),
  ].join('\n');
}

/** What a verified trail's signatures were: counted only where the verification passed (else it stopped at the fault). */
function signaturesOf(deltas: unknown): AuditReport['signatures'] {
  const list = Array.isArray(deltas) ? (deltas as Delta[]) : [];
  return { checked: signatureCount(list), didKeySession: list[0] !== undefined && isDidKeyTrail(list[0]) };
}

function safeDeltas(trail: StoredTrail): Delta[] {
  try {
    return toAuditTrail(trail).deltas;
  } catch {
    return [];
  }
}

/**
 * The stored trail; an open session (no record in the store) is asked for the
 * deltas it still holds. A store that holds nothing of the session — no
 * commitment, and none of the turns the session says it stored — is the wrong
 * store, or an empty one: said so with its own exit code, never as a verdict
 * on the trail (issue 23).
 */
async function storedTrail(ctx: CliContext, sessionId: string): Promise<StoredTrail> {
  const store = await ctx.store();
  let trail: StoredTrail;
  try {
    trail = await readTrail(store, sessionId, async () => {
      const hv = await ctx.client();
      return ctx.call(() => hv.session(sessionId).auditHead());
    });
  } catch (err) {
    if (isHypervisorError(err, 'SESSION_NOT_FOUND'))
      throw noTrail(store, sessionId, 'and Temporal has no open session of that id');
    throw err;
  }
  if (trail.record === null && trail.rows.length === 0 && trail.deltaCount > trail.pending.length) {
    throw noTrail(
      store,
      sessionId,
      `though the session says it stored ${trail.deltaCount - trail.pending.length} deltas`,
    );
  }
  return trail;
}

function noTrail(store: AuditStore, sessionId: string, why: string): CliError {
  return new CliError(
    EXIT.NO_TRAIL,
    'NO_TRAIL',
    `no trail for session ${sessionId} in the audit store ${storeName(store)}, ${why}`,
    'hv reads HV_AUDIT_DATABASE_URL, else <HV_DATA_DIR>/audit.sqlite: set them as the worker has them',
    { store: storeName(store) },
  );
}

function commitmentReport(c: Commitment, matches: boolean): AuditReport['commitment'] {
  return {
    checked: true,
    matches,
    merkleRoot: c.merkleRoot,
    deltaCount: c.deltaCount,
    committedAt: c.committedAt,
    note: matches
      ? `matches (committed ${new Date(c.committedAt).toISOString()}, anchor ${c.anchorTarget})`
      : 'DIFFERS',
  };
}

function compare(report: AuditReport, c: Commitment): void {
  const matches = c.merkleRoot === report.merkleRoot && c.deltaCount === report.deltaCount;
  report.commitment = commitmentReport(c, matches);
  if (!matches) {
    Object.assign(report, {
      ok: false,
      turn: null,
      deltaId: null,
      reason: `the trail's Merkle root ${String(report.merkleRoot)} over ${report.deltaCount} deltas differs from the commitment: ${String(c.merkleRoot)} over ${c.deltaCount} deltas`,
    });
  }
}

const verify: Command = {
  name: 'audit verify',
  summary: "verify a session's trail offline, turn by turn, and against its commitment",
  args: ['SESSION'],
  usage: 'SESSION [--hypervisor DID] [--file trail.json] [--offline]',
  options: { file: { type: 'string' }, offline: { type: 'boolean' }, hypervisor: { type: 'string' } },
  help: [
    [
      '--hypervisor DID',
      'also hold the trail to the tree heads the worker signed with this did:key (every turn, and the final head over the commitment): a store rewritten whole fails, naming the turn',
    ],
    ['--file FILE', "verify an exported trail (`hv audit export`) instead of the audit store's"],
    ['--offline', 'with --file: read nothing else (skips the comparison with the stored commitment)'],
  ],
  examples: [
    'hv audit verify s1',
    'hv audit verify s1 --hypervisor did:key:z6Mk…',
    'hv audit export s1 > trail.json && hv audit verify s1 --file trail.json --offline',
  ],
  async run(ctx, values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const file = typeof values.file === 'string' ? values.file : null;
    if (values.offline && !file)
      throw new UsageError(
        '--offline needs --file (without a file the trail comes from the audit store)',
        `run \`hv ${this.name} --help\``,
      );
    const hypervisor = typeof values.hypervisor === 'string' ? values.hypervisor : null;
    if (hypervisor !== null && !isDidKey(hypervisor))
      throw new UsageError(
        `--hypervisor must be the worker's did:key, got "${hypervisor}"`,
        'the worker prints it at start ("signs tree heads as …")',
      );
    if (hypervisor !== null && file)
      throw new UsageError(
        '--hypervisor checks the tree heads in the audit store: use it without --file',
        `run \`hv ${this.name} --help\``,
      );
    const blank = {
      checked: false,
      matches: null,
      merkleRoot: null,
      deltaCount: null,
      committedAt: null,
      note: 'not checked',
    };
    let report: AuditReport;
    if (file) {
      const text = readFileText(file, 'trail file');
      let trail: unknown;
      try {
        trail = JSON.parse(text);
      } catch (err) {
        throw new UsageError(
          `trail file ${file} is not JSON: ${(err as Error).message}`,
          `export one with \`hv audit export ${sessionId} > ${file}\``,
        );
      }
      report = {
        sessionId,
        source: 'file',
        file,
        store: null,
        ...verifyFile(trail),
        signatures: signaturesOf((trail as Partial<AuditTrail> | null)?.deltas),
        commitment: { ...blank },
        hypervisor: null,
      };
      const trailSession = (trail as Partial<AuditTrail> | null)?.sessionId;
      if (report.ok && trailSession !== sessionId) {
        Object.assign(report, {
          ok: false,
          turn: null,
          deltaId: null,
          reason: `the trail is of session ${String(trailSession)}, not ${sessionId}`,
        });
      }
      if (values.offline) {
        report.commitment.note = 'not checked (--offline)';
      } else if (report.ok) {
        const record = await (await ctx.store()).getSession(sessionId);
        if (record) compare(report, record.commitment);
        else report.commitment.note = 'none in the audit store (the session has not terminated)';
      }
    } else {
      const trail = await storedTrail(ctx, sessionId);
      const deltas = safeDeltas(trail);
      report = {
        sessionId,
        source: 'store',
        file: null,
        store: storeName(await ctx.store()),
        ...verifyStored(trail),
        signatures: signaturesOf(deltas),
        commitment: { ...blank },
        hypervisor: null,
      };
      if (trail.record) {
        // verifyStoredTrail held the trail to the committed root and count: a pass is a match.
        report.commitment = commitmentReport(trail.record.commitment, report.ok);
      } else {
        report.commitment.note = 'none yet (the session is open; terminating it commits the root)';
      }
      if (hypervisor !== null && report.ok) {
        // The chain verified: now whether it is the chain the hypervisor signed (N14).
        const heads = await (await ctx.store()).treeHeads(sessionId);
        const v = verifyTreeHeads({
          sessionId,
          did: hypervisor,
          deltas,
          heads,
          signedThrough: trail.rows.length,
          commitment: trail.record?.commitment ?? null,
        });
        if (v.ok) report.hypervisor = { did: hypervisor, checked: v.checked, final: v.final };
        else
          Object.assign(report, {
            ok: false,
            turn: v.turn,
            deltaId: v.turn !== null ? (deltas[v.turn - 1]?.deltaId ?? null) : null,
            reason: v.reason,
          });
      }
    }
    ctx.print(report, () => render(report));
    return report.ok ? EXIT.OK : EXIT.AUDIT_FAILED;
  },
};

const exportCmd: Command = {
  name: 'audit export',
  summary: "print the session's audit trail as JSON (for `hv audit verify --file`)",
  args: ['SESSION'],
  usage: 'SESSION > trail.json',
  options: {},
  help: [],
  examples: ['hv audit export s1 > trail.json'],
  async run(ctx, _values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    ctx.stdout.write(JSON.stringify(toAuditTrail(await storedTrail(ctx, sessionId)), null, 2) + '\n');
  },
};

function renderProof(p: InclusionProof, check: { ok: boolean; reason: string }): string {
  return [
    `${check.ok ? 'PROVED' : 'FAILED'}  turn ${p.turn} of session ${p.sessionId}`,
    fields(
      [
        ['delta', `${p.delta.deltaId} (hash ${p.delta.hash})`],
        ['path', `${p.proof.path.length} sibling hashes, leaf ${p.proof.index + 1} of ${p.proof.count}`],
        ['committed root', p.merkleRoot],
        ['check', check.reason],
      ],
      '  ',
    ),
    '',
    '(`--json` prints the proof itself; `hv audit check-proof FILE` checks it anywhere)',
  ].join('\n');
}

const prove: Command = {
  name: 'audit prove',
  summary: "print a Merkle inclusion proof that one turn is under the session's committed root",
  args: ['SESSION', 'TURN'],
  usage: 'SESSION TURN',
  options: {},
  help: [],
  examples: ['hv audit prove s1 3', 'hv --json audit prove s1 3 > proof.json && hv audit check-proof proof.json'],
  async run(ctx, _values, args) {
    const sessionId = sessionIdArg(this, args[0]);
    const turn = Number(args[1]);
    if (args[1] === undefined || !Number.isSafeInteger(turn) || turn < 1) {
      throw new UsageError(
        `TURN must be a whole number ≥ 1, got "${String(args[1] ?? '')}"`,
        `run \`hv ${this.name} --help\``,
      );
    }
    const proof = proveTurn(await storedTrail(ctx, sessionId), turn);
    const check = verifyInclusionProof(proof);
    ctx.print(proof, () => renderProof(proof, check));
    return check.ok ? EXIT.OK : EXIT.AUDIT_FAILED;
  },
};

const checkProof: Command = {
  name: 'audit check-proof',
  summary: "check an inclusion proof file offline: the delta's hash, the path, the committed root",
  args: ['FILE'],
  usage: 'FILE',
  options: {},
  help: [],
  examples: ['hv audit check-proof proof.json'],
  async run(ctx, _values, args) {
    const file = args[0];
    if (!file) throw new UsageError('hv audit check-proof needs FILE', `run \`hv ${this.name} --help\``);
    let proof: InclusionProof;
    try {
      proof = JSON.parse(readFileText(file, 'proof file')) as InclusionProof;
    } catch (err) {
      throw new UsageError(
        `proof file ${file} is not JSON: ${(err as Error).message}`,
        'make one with `hv --json audit prove SESSION TURN > proof.json`',
      );
    }
    let check: { ok: boolean; reason: string };
    try {
      check = verifyInclusionProof(proof);
    } catch (err) {
      check = { ok: false, reason: `malformed proof: ${(err as Error).message}` };
    }
    ctx.print({ ok: check.ok, reason: check.reason }, () => `${check.ok ? 'OK' : 'FAILED'}  ${check.reason}`);
    return check.ok ? EXIT.OK : EXIT.AUDIT_FAILED;
  },
};

export const auditCommands: Command[] = [verify, exportCmd, prove, checkProof];
