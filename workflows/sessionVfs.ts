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
import { parse } from '../src/common';
import { HypervisorError } from '../src/errors';
import type { ChangeInput } from '../src/audit';
import type { DeltaSignature } from '../src/identity';
import {
  VfsPathRequestSchema, VfsPermissionsRequestSchema, VfsRestoreRequestSchema, VfsSnapshotRequestSchema, VfsWriteRequestSchema,
} from '../src/contract';
import {
  deleteFile, listFiles, listSnapshots, restoreSnapshot, setPermissions, statFile, takeSnapshot, utf8Length, writeFile,
  type FileRef, type SnapshotSummary, type VfsChange, type VfsState,
} from '../src/vfs';
import type { SessionWorkflowState } from './sessionTypes';
import { queryAnswer } from './failures';
import { MESSAGES } from '../src/contract/messages';
import {
  vfsDeleteUpdate, vfsFileQuery, vfsListQuery, vfsRestoreUpdate, vfsSetPermissionsUpdate, vfsSnapshotUpdate, vfsWriteUpdate,
} from './definitions';

export { vfsDeleteUpdate, vfsFileQuery, vfsListQuery, vfsRestoreUpdate, vfsSetPermissionsUpdate, vfsSnapshotUpdate, vfsWriteUpdate } from './definitions';

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

interface SessionHooks {
  record(agentDid: string, changes: ChangeInput[], signatures?: DeltaSignature[]): void;
  /** The handler's part of the request's signatures (nonces remembered); the signatures its delta keeps. */
  accept(what: string, raw: unknown, agentDid: string): DeltaSignature[];
  handle<A extends unknown[], R>(fn: (...args: A) => Promise<R> | R): (...args: A) => Promise<R>;
  /** The session's validator: schema, open session, active participant, then `rules`. */
  validate<T>(schema: Parameters<typeof parse>[0], what: string, rules: (req: T) => void): (arg: unknown) => void;
  /** The session is open and the agent an active participant (what the validator checked first). */
  requireAgent(what: string, agentDid: string): void;
  /** Store a file's contents in the audit store; resolves to their hash. */
  storeFile(content: string): Promise<string>;
  refresh(): void;
}

type Request = { agentDid: string; auth?: unknown; path?: string; content?: string; snapshotId?: string; label?: string; allowedDids?: string[] | null };

export function registerVfsHandlers(st: SessionWorkflowState, hooks: SessionHooks): void {
  const { record, handle } = hooks;
  const vfs = (): VfsState => st.vfs;
  const entries = (v: VfsState) => Object.keys(v.files).length + v.snapshots.reduce((n, s) => n + Object.keys(s.files).length, 0);

  /** The bounds, checked on the VFS as the operation would leave it. */
  function withinLimits(after: VfsState, what: string): void {
    const sessionId = after.sessionId;
    if (Object.keys(after.files).length > VFS_LIMITS.files) {
      throw new HypervisorError('PAYLOAD_TOO_LARGE', `cannot ${what}: session ${sessionId} may hold at most ${VFS_LIMITS.files} files`, { max: VFS_LIMITS.files });
    }
    if (after.snapshots.length > VFS_LIMITS.snapshots) {
      throw new HypervisorError('PAYLOAD_TOO_LARGE', `cannot ${what}: session ${sessionId} may hold at most ${VFS_LIMITS.snapshots} snapshots`, { max: VFS_LIMITS.snapshots });
    }
    if (entries(after) > VFS_LIMITS.entries) {
      throw new HypervisorError('PAYLOAD_TOO_LARGE', `cannot ${what}: session ${sessionId}'s files and snapshot entries would exceed ${VFS_LIMITS.entries}`, { max: VFS_LIMITS.entries });
    }
  }

  /** Run `op` on a copy: its refusal, or the bounds it would break, refuse the request before it enters history. */
  function dryRun<T>(what: string, op: (v: VfsState, req: T, at: number) => unknown) {
    return (req: T) => {
      const copy = JSON.parse(JSON.stringify(vfs())) as VfsState;
      op(copy, req, Date.now());
      withinLimits(copy, what);
    };
  }

  const write = (v: VfsState, r: Request, at: number) => {
    const bytes = utf8Length(r.content ?? '');
    if (bytes > VFS_LIMITS.fileBytes) {
      throw new HypervisorError('PAYLOAD_TOO_LARGE', `cannot vfsWrite: ${r.path} would be ${bytes} bytes; a file is at most ${VFS_LIMITS.fileBytes} bytes (UTF-8)`, { size: bytes, max: VFS_LIMITS.fileBytes });
    }
    if (LONE_SURROGATE.test(r.content ?? '')) {
      throw new HypervisorError('INVALID_INPUT', `invalid vfsWrite: content of ${r.path} holds an unpaired surrogate, which UTF-8 (and so the audit store) cannot keep`);
    }
    return writeFile(v, { path: r.path, content: r.content, agentDid: r.agentDid, at });
  };
  const del = (v: VfsState, r: Request, at: number) => deleteFile(v, { path: r.path, agentDid: r.agentDid, at });
  const perms = (v: VfsState, r: Request, at: number) => setPermissions(v, { path: r.path, allowedDids: r.allowedDids, agentDid: r.agentDid, at });
  const snap = (v: VfsState, r: Request, at: number) => takeSnapshot(v, { snapshotId: r.snapshotId ?? 'dry-run', agentDid: r.agentDid, label: r.label, at });
  const restore = (v: VfsState, r: Request, at: number) => restoreSnapshot(v, { snapshotId: r.snapshotId, agentDid: r.agentDid, at });

  const done = <C extends VfsChange | VfsChange[]>(did: string, change: C, signatures: DeltaSignature[]): C => {
    record(did, Array.isArray(change) ? change : [change], signatures);
    const edits = st.vfs.edits;
    if (edits.length > VFS_LIMITS.editsKept) edits.splice(0, edits.length - VFS_LIMITS.editsKept);
    hooks.refresh();
    return change;
  };

  wf.setHandler(vfsWriteUpdate, handle(async (raw) => {
    const r = parse(VfsWriteRequestSchema, raw, 'vfsWrite') as Request;
    // The contents reach the store before the edit is recorded: a trail never names a hash the store lacks.
    await hooks.storeFile(r.content ?? '');
    // The session may have moved while the contents were stored: the rules again.
    hooks.requireAgent('vfsWrite', r.agentDid);
    dryRun('vfsWrite', write)(r);
    const signatures = hooks.accept('vfsWrite', raw, r.agentDid);
    return done(r.agentDid, write(st.vfs, r, Date.now()), signatures);
  }), { validator: hooks.validate(VfsWriteRequestSchema, 'vfsWrite', dryRun('vfsWrite', write)), description: MESSAGES.vfsWrite.description });

  wf.setHandler(vfsDeleteUpdate, handle((raw) => {
    const r = parse(VfsPathRequestSchema, raw, 'vfsDelete') as Request;
    const signatures = hooks.accept('vfsDelete', raw, r.agentDid);
    return done(r.agentDid, del(st.vfs, r, Date.now()), signatures);
  }), { validator: hooks.validate(VfsPathRequestSchema, 'vfsDelete', dryRun('vfsDelete', del)), description: MESSAGES.vfsDelete.description });

  wf.setHandler(vfsSetPermissionsUpdate, handle((raw) => {
    const r = parse(VfsPermissionsRequestSchema, raw, 'vfsSetPermissions') as Request;
    const signatures = hooks.accept('vfsSetPermissions', raw, r.agentDid);
    return done(r.agentDid, perms(st.vfs, r, Date.now()), signatures);
  }), { validator: hooks.validate(VfsPermissionsRequestSchema, 'vfsSetPermissions', dryRun('vfsSetPermissions', perms)), description: MESSAGES.vfsSetPermissions.description });

  wf.setHandler(vfsSnapshotUpdate, handle((raw) => {
    const r = parse(VfsSnapshotRequestSchema, raw, 'vfsSnapshot') as Request;
    hooks.accept('vfsSnapshot', raw, r.agentDid);
    const summary = snap(st.vfs, { ...r, snapshotId: r.snapshotId ?? wf.uuid4() }, Date.now());
    hooks.refresh();
    return summary;
  }), { validator: hooks.validate(VfsSnapshotRequestSchema, 'vfsSnapshot', dryRun('vfsSnapshot', snap)), description: MESSAGES.vfsSnapshot.description });

  wf.setHandler(vfsRestoreUpdate, handle((raw) => {
    const r = parse(VfsRestoreRequestSchema, raw, 'vfsRestore') as Request;
    const signatures = hooks.accept('vfsRestore', raw, r.agentDid);
    return done(r.agentDid, restore(st.vfs, r, Date.now()), signatures);
  }), { validator: hooks.validate(VfsRestoreRequestSchema, 'vfsRestore', dryRun('vfsRestore', restore)), description: MESSAGES.vfsRestore.description });

  wf.setHandler(vfsListQuery, () => ({ files: listFiles(st.vfs), snapshots: listSnapshots(st.vfs) }), { description: MESSAGES.vfsList.description });
  wf.setHandler(vfsFileQuery, queryAnswer((path: string, agentDid: string) => statFile(st.vfs, { path, agentDid })), {
    description: MESSAGES.vfsFile.description,
  });
}
