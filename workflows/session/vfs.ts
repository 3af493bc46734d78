/**
 * The session VFS as updates and queries of the session workflow. Only active
 * participants touch files; every edit becomes a delta in the audit chain.
 *
 * - File contents go to the audit store (content-addressed) before the edit is
 *   recorded; the workflow keeps each file's hash and size (SPEC §7 [resolved]).
 * - Each validator runs the operation itself on a copy of the VFS, so every
 *   refusal (a missing file or snapshot, a permission, a bound) is made before
 *   the request enters history (SPEC §11.6).
 */
import * as wf from '@temporalio/workflow';
import { HypervisorError } from '../../src/core/errors';
import type { DeltaSignature } from '../../src/core/identity';
import {
  deleteFile,
  listFiles,
  listSnapshots,
  restoreSnapshot,
  setPermissions,
  statFile,
  takeSnapshot,
  utf8Length,
  writeFile,
  type VfsChange,
  type VfsState,
} from '../../src/core/vfs';
import { MESSAGES } from '../../src/contract/messages';
import { vfsFileQuery, vfsListQuery } from '../definitions';
import { queryAnswer } from '../failures';
import {
  auditStore,
  record,
  requireActiveParticipant,
  requireOpen,
  requireUnrestricted,
  type SessionContext,
} from './context';
import type { Handlers } from './door';
import { refreshSearchAttributes } from './views';
import { uuid4 } from '../ownRun';

/** What the VFS may hold: it crosses continue-as-new in the session's state (contents are in the store). */
export const VFS_LIMITS = {
  /** UTF-8 bytes of one file. */
  fileBytes: 256 * 1024,
  files: 256,
  snapshots: 16,
  /** Files plus the entries of every snapshot. */
  entries: 1024,
  /** The newest edits kept in state; every edit is also a delta in the trail. */
  editsKept: 1000,
} as const;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

type VfsRequest = {
  agentDid: string;
  auth?: unknown;
  path?: string;
  content?: string;
  snapshotId?: string;
  label?: string;
  allowedDids?: string[] | null;
};

/**
 * The session is open and the agent an active participant that is neither killed nor quarantined (SPEC §12:
 * a quarantined agent may only read, a killed one nothing): what every VFS change needs first (issue 24 N12).
 */
const vfsAgent = (ctx: SessionContext, what: string, agentDid: string) => {
  requireOpen(ctx, what);
  requireActiveParticipant(ctx, agentDid);
  requireUnrestricted(ctx, agentDid, 'agent');
};
/** The validator's rules: an active agent, then the operation itself on a copy. */
const checked =
  (op: (v: VfsState, req: VfsRequest, at: number) => unknown) => (ctx: SessionContext, r: object, what: string) => {
    vfsAgent(ctx, what, (r as VfsRequest).agentDid);
    dryRun(what, op)(ctx, r as VfsRequest);
  };

const entries = (v: VfsState) =>
  Object.keys(v.files).length + v.snapshots.reduce((n, s) => n + Object.keys(s.files).length, 0);

/** The bounds, checked on the VFS as the operation would leave it. */
function withinLimits(after: VfsState, what: string): void {
  const sessionId = after.sessionId;
  if (Object.keys(after.files).length > VFS_LIMITS.files) {
    throw new HypervisorError(
      'PAYLOAD_TOO_LARGE',
      `cannot ${what}: session ${sessionId} may hold at most ${VFS_LIMITS.files} files`,
      { max: VFS_LIMITS.files },
    );
  }
  if (after.snapshots.length > VFS_LIMITS.snapshots) {
    throw new HypervisorError(
      'PAYLOAD_TOO_LARGE',
      `cannot ${what}: session ${sessionId} may hold at most ${VFS_LIMITS.snapshots} snapshots`,
      { max: VFS_LIMITS.snapshots },
    );
  }
  if (entries(after) > VFS_LIMITS.entries) {
    throw new HypervisorError(
      'PAYLOAD_TOO_LARGE',
      `cannot ${what}: session ${sessionId}'s files and snapshot entries would exceed ${VFS_LIMITS.entries}`,
      { max: VFS_LIMITS.entries },
    );
  }
}

/** Run `op` on a copy: its refusal, or the bounds it would break, refuse the request before it enters history. */
function dryRun<T>(what: string, op: (v: VfsState, req: T, at: number) => unknown) {
  return (ctx: SessionContext, req: T) => {
    const copy = JSON.parse(JSON.stringify(ctx.st.vfs)) as VfsState;
    op(copy, req, Date.now());
    withinLimits(copy, what);
  };
}

const write = (v: VfsState, r: VfsRequest, at: number) => {
  const bytes = utf8Length(r.content ?? '');
  if (bytes > VFS_LIMITS.fileBytes) {
    throw new HypervisorError(
      'PAYLOAD_TOO_LARGE',
      `cannot vfsWrite: ${r.path} would be ${bytes} bytes; a file is at most ${VFS_LIMITS.fileBytes} bytes (UTF-8)`,
      { size: bytes, max: VFS_LIMITS.fileBytes },
    );
  }
  if (LONE_SURROGATE.test(r.content ?? '')) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `invalid vfsWrite: content of ${r.path} holds an unpaired surrogate, which UTF-8 (and so the audit store) cannot keep`,
    );
  }
  return writeFile(v, { path: r.path, content: r.content, agentDid: r.agentDid, at });
};
const del = (v: VfsState, r: VfsRequest, at: number) => deleteFile(v, { path: r.path, agentDid: r.agentDid, at });
const perms = (v: VfsState, r: VfsRequest, at: number) =>
  setPermissions(v, { path: r.path, allowedDids: r.allowedDids, agentDid: r.agentDid, at });
const snap = (v: VfsState, r: VfsRequest, at: number) =>
  takeSnapshot(v, { snapshotId: r.snapshotId ?? 'dry-run', agentDid: r.agentDid, label: r.label, at });
const restore = (v: VfsState, r: VfsRequest, at: number) =>
  restoreSnapshot(v, { snapshotId: r.snapshotId, agentDid: r.agentDid, at });

const done = <C extends VfsChange | VfsChange[]>(
  ctx: SessionContext,
  did: string,
  change: C,
  signatures: DeltaSignature[],
): C => {
  record(ctx, did, Array.isArray(change) ? change : [change], undefined, signatures);
  const edits = ctx.st.vfs.edits;
  if (edits.length > VFS_LIMITS.editsKept) edits.splice(0, edits.length - VFS_LIMITS.editsKept);
  refreshSearchAttributes(ctx);
  return change;
};

/** The VFS's requests (SPEC §3), in the order the session sets their handlers: every change is a delta. */
export const vfsHandlers = {
  vfsWrite: {
    check: checked(write),
    async run(ctx, req, a) {
      const r = req as VfsRequest;
      // The contents reach the store before the edit is recorded: a trail never names a hash the store lacks.
      await auditStore.storeFile({ sessionId: ctx.sessionId, chain: ctx.chain, content: r.content ?? '' });
      // The session may have moved while the contents were stored: the rules again.
      vfsAgent(ctx, a.name, r.agentDid);
      dryRun(a.name, write)(ctx, r);
      const signatures = a.accept();
      return done(ctx, r.agentDid, write(ctx.st.vfs, r, Date.now()), signatures);
    },
  },
  vfsDelete: {
    check: checked(del),
    run(ctx, req, a) {
      vfsAgent(ctx, a.name, req.agentDid);
      const signatures = a.accept();
      return done(ctx, req.agentDid, del(ctx.st.vfs, req, Date.now()), signatures);
    },
  },
  vfsSetPermissions: {
    check: checked(perms),
    run(ctx, req, a) {
      vfsAgent(ctx, a.name, req.agentDid);
      const signatures = a.accept();
      return done(ctx, req.agentDid, perms(ctx.st.vfs, req, Date.now()), signatures);
    },
  },
  vfsSnapshot: {
    check: checked(snap),
    run(ctx, req, a) {
      vfsAgent(ctx, a.name, req.agentDid);
      a.accept();
      const summary = snap(ctx.st.vfs, { ...req, snapshotId: req.snapshotId ?? uuid4() }, Date.now());
      refreshSearchAttributes(ctx);
      return summary;
    },
  },
  vfsRestore: {
    check: checked(restore),
    run(ctx, req, a) {
      vfsAgent(ctx, a.name, req.agentDid);
      const signatures = a.accept();
      return done(ctx, req.agentDid, restore(ctx.st.vfs, req, Date.now()), signatures);
    },
  },
  /** N13: a read as the signing agent — its permission is checked for the DID that signed, and nothing is recorded. */
  vfsRead: {
    check: (ctx, r) => {
      requireActiveParticipant(ctx, r.agentDid);
      statFile(ctx.st.vfs, { path: r.path, agentDid: r.agentDid });
    },
    run(ctx, req, a) {
      requireActiveParticipant(ctx, req.agentDid);
      a.accept();
      return statFile(ctx.st.vfs, { path: req.path, agentDid: req.agentDid });
    },
  },
} satisfies Handlers;

export function registerVfsQueries(ctx: SessionContext): void {
  wf.setHandler(vfsListQuery, () => ({ files: listFiles(ctx.st.vfs), snapshots: listSnapshots(ctx.st.vfs) }), {
    description: MESSAGES.vfsList.description,
  });
  wf.setHandler(
    vfsFileQuery,
    queryAnswer((path: string, agentDid: string) => {
      // N13: a query says nothing of who asks; where requests are signed, a read is too (vfsRead).
      if (ctx.identity === 'did:key')
        throw new HypervisorError(
          'SIGNATURE_REQUIRED',
          `session ${ctx.sessionId} signs its requests: read ${path} with the signed vfsRead update`,
        );
      return statFile(ctx.st.vfs, { path, agentDid });
    }),
    { description: MESSAGES.vfsFile.description },
  );
}
