/**
 * The session VFS (SPEC §3): a file store namespaced under /sessions/<id>/,
 * with an edit log, path-level permissions and snapshots. Every mutation
 * returns the change(s) the caller records in the audit delta.
 */
import { z } from 'zod';
import { DidSchema, TimestampSchema, ownDelete, ownGet, ownSet, parse } from './common';
import { HypervisorError } from './errors';
import { canonicalJson, sha256Hex } from './hash';
import type { ChangeOperation } from './audit';

export type EditOperation = 'create' | 'update' | 'delete' | 'permission' | 'restore';

/**
 * A file. Entries are replaced, never mutated, so snapshots can share them.
 * `content` is absent when the contents live in the audit store (a session
 * workflow's VFS: SPEC §7 [resolved]), which keeps them by `contentHash`.
 */
export interface VfsFile {
  content?: string;
  contentHash: string;
  /** UTF-8 bytes. */
  size: number;
  createdBy: string;
  createdAt: number;
  updatedBy: string;
  updatedAt: number;
}

export interface VfsEdit {
  path: string;
  operation: EditOperation;
  agentDid: string;
  at: number;
  contentHash: string | null;
  previousHash: string | null;
}

/** The audit change a mutation produced (the shape of an audit delta change). */
export interface VfsChange {
  path: string;
  operation: ChangeOperation;
  contentHash?: string;
  previousHash?: string;
  agentDid: string;
}

export interface VfsSnapshot {
  snapshotId: string;
  agentDid: string;
  at: number;
  label: string | null;
  files: Record<string, VfsFile>;
  permissions: Record<string, string[]>;
}

export interface SnapshotSummary {
  snapshotId: string;
  agentDid: string;
  at: number;
  label: string | null;
  fileCount: number;
}

/**
 * VFS state, plain JSON. `files` and `permissions` are keyed by absolute path
 * (always starting with "/sessions/"; read and written through the own-key
 * helpers of common.ts all the same); a
 * permission entry is a sorted list of allowed DIDs, and no entry means open.
 */
export interface VfsState {
  sessionId: string;
  root: string;
  /** The contents are kept elsewhere (the audit store), by hash; files here hold only hash and size. */
  contentsInStore?: boolean;
  files: Record<string, VfsFile>;
  permissions: Record<string, string[]>;
  edits: VfsEdit[];
  snapshots: VfsSnapshot[];
}

// A session id becomes a path segment: no slashes, no dot segments.
const NamespaceIdSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,255}$/,
    'must be 1–256 characters of letters, digits, . _ : - (not starting with .)',
  );
const PathSchema = z.string().min(1, 'must not be empty').max(4096, 'must be at most 4096 characters');
const SnapshotIdSchema = z.string().min(1, 'must not be empty').max(256, 'must be at most 256 characters');

export const VfsWriteSchema = z.strictObject({
  path: PathSchema,
  content: z.string(),
  agentDid: DidSchema,
  at: TimestampSchema,
});
export const VfsReadSchema = z.strictObject({ path: PathSchema, agentDid: DidSchema });
export const VfsDeleteSchema = z.strictObject({ path: PathSchema, agentDid: DidSchema, at: TimestampSchema });
export const VfsPermissionSchema = z.strictObject({
  path: PathSchema,
  /** The DIDs allowed on the path, or null to remove the entry (open the path). */
  allowedDids: z.array(DidSchema).min(1, 'must list at least one DID (use null to open the path)').nullable(),
  agentDid: DidSchema,
  at: TimestampSchema,
});
export const VfsSnapshotSchema = z.strictObject({
  snapshotId: SnapshotIdSchema,
  agentDid: DidSchema,
  at: TimestampSchema,
  label: z.string().max(1024).optional(),
});
export const VfsRestoreSchema = z.strictObject({
  snapshotId: SnapshotIdSchema,
  agentDid: DidSchema,
  at: TimestampSchema,
});
export type VfsWriteInput = z.infer<typeof VfsWriteSchema>;
export type VfsReadInput = z.infer<typeof VfsReadSchema>;
export type VfsDeleteInput = z.infer<typeof VfsDeleteSchema>;
export type VfsPermissionInput = z.infer<typeof VfsPermissionSchema>;
export type VfsSnapshotInput = z.infer<typeof VfsSnapshotSchema>;
export type VfsRestoreInput = z.infer<typeof VfsRestoreSchema>;

export function createVfsState(sessionId: string, options: { contentsInStore?: boolean } = {}): VfsState {
  const id = parse(NamespaceIdSchema, sessionId, 'VFS sessionId');
  const state: VfsState = {
    sessionId: id,
    root: `/sessions/${id}/`,
    files: {},
    permissions: {},
    edits: [],
    snapshots: [],
  };
  if (options.contentsInStore) state.contentsInStore = true;
  return state;
}

/** Bytes of a string as UTF-8 (a lone surrogate counts as the 3 bytes of U+FFFD, as encoders write it). */
export function utf8Length(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * The absolute path for `path`: a relative path is taken inside the
 * namespace. Rejects `.`/`..`/empty segments and backslashes (INVALID_INPUT),
 * and any path outside /sessions/<id>/ (PERMISSION_DENIED: session isolation).
 */
export function resolvePath(state: VfsState, path: string): string {
  const absolute = path.startsWith('/') ? path : state.root + path;
  const segments = absolute.split('/');
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment === '..' || segment === '.')
      throw new HypervisorError('INVALID_INPUT', `invalid path "${path}": "${segment}" segments are not allowed`, {
        path,
      });
    if (segment === '')
      throw new HypervisorError('INVALID_INPUT', `invalid path "${path}": empty segment (a "//" or a trailing "/")`, {
        path,
      });
  }
  if (absolute.includes('\\') || absolute.includes('\0')) {
    throw new HypervisorError('INVALID_INPUT', `invalid path "${path}": backslashes and NUL are not allowed`, { path });
  }
  if (!absolute.startsWith(state.root) || absolute.length === state.root.length) {
    throw new HypervisorError(
      'PERMISSION_DENIED',
      `path "${path}" is outside the namespace ${state.root} of session ${state.sessionId}`,
      { path },
    );
  }
  return absolute;
}

/** May this agent touch this path? (no permission entry = open) */
export function canAccess(state: VfsState, path: string, agentDid: string): boolean {
  const allowed = ownGet(state.permissions, path);
  return allowed === undefined || allowed.includes(agentDid);
}

function assertAccess(state: VfsState, path: string, agentDid: string, action: string): void {
  if (!canAccess(state, path, agentDid)) {
    throw new HypervisorError('PERMISSION_DENIED', `agent ${agentDid} may not ${action} ${path}`, { agentDid, path });
  }
}

function change(
  path: string,
  operation: ChangeOperation,
  agentDid: string,
  contentHash: string | null,
  previousHash: string | null,
): VfsChange {
  const c: VfsChange = { path, operation, agentDid };
  if (contentHash !== null) c.contentHash = contentHash;
  if (previousHash !== null) c.previousHash = previousHash;
  return c;
}

/** Create or overwrite a file. */
export function writeFile(state: VfsState, input: unknown): VfsChange {
  const { path: raw, content, agentDid, at } = parse(VfsWriteSchema, input, 'VFS write');
  const path = resolvePath(state, raw);
  assertAccess(state, path, agentDid, 'write');
  const previous = ownGet(state.files, path);
  const contentHash = sha256Hex(content);
  ownSet(state.files, path, {
    ...(state.contentsInStore ? {} : { content }),
    contentHash,
    size: utf8Length(content),
    createdBy: previous ? previous.createdBy : agentDid,
    createdAt: previous ? previous.createdAt : at,
    updatedBy: agentDid,
    updatedAt: at,
  });
  const previousHash = previous ? previous.contentHash : null;
  state.edits.push({ path, operation: previous ? 'update' : 'create', agentDid, at, contentHash, previousHash });
  return change(path, previous ? 'modify' : 'add', agentDid, contentHash, previousHash);
}

/** What an agent may know of a file without its contents: where it is, their hash and size. */
export interface FileRef {
  path: string;
  contentHash: string;
  size: number;
}

export function statFile(state: VfsState, input: unknown): FileRef {
  const { path: raw, agentDid } = parse(VfsReadSchema, input, 'VFS read');
  const path = resolvePath(state, raw);
  assertAccess(state, path, agentDid, 'read');
  const file = ownGet(state.files, path);
  if (!file) throw new HypervisorError('FILE_NOT_FOUND', `no file at ${path} in session ${state.sessionId}`, { path });
  return { path, contentHash: file.contentHash, size: file.size };
}

/** A file's contents, when this VFS holds them (the in-memory core); a session workflow's are in the audit store. */
export function readFile(state: VfsState, input: unknown): string {
  const ref = statFile(state, input);
  const content = ownGet(state.files, ref.path)?.content;
  if (content === undefined)
    throw new HypervisorError(
      'INVALID_TRANSITION',
      `the contents of ${ref.path} are in the audit store (hash ${ref.contentHash}); read them there`,
      { contentHash: ref.contentHash },
    );
  return content;
}

export function deleteFile(state: VfsState, input: unknown): VfsChange {
  const { path: raw, agentDid, at } = parse(VfsDeleteSchema, input, 'VFS delete');
  const path = resolvePath(state, raw);
  assertAccess(state, path, agentDid, 'delete');
  const file = ownGet(state.files, path);
  if (!file) throw new HypervisorError('FILE_NOT_FOUND', `no file at ${path} in session ${state.sessionId}`, { path });
  ownDelete(state.files, path);
  state.edits.push({ path, operation: 'delete', agentDid, at, contentHash: null, previousHash: file.contentHash });
  return change(path, 'delete', agentDid, null, file.contentHash);
}

/** Hash of a permission entry, so the audit records what the permissions became. */
function permissionHash(allowed: readonly string[] | undefined): string | null {
  return allowed === undefined ? null : sha256Hex(canonicalJson(allowed));
}

/**
 * Set (or with null, remove) the allowed DIDs of a path. When the path is
 * already restricted only an allowed agent may change it; an open path may be
 * restricted by anyone in the session.
 */
export function setPermissions(state: VfsState, input: unknown): VfsChange {
  const { path: raw, allowedDids, agentDid, at } = parse(VfsPermissionSchema, input, 'VFS permissions');
  const path = resolvePath(state, raw);
  assertAccess(state, path, agentDid, 'change permissions of');
  const previousHash = permissionHash(ownGet(state.permissions, path));
  let contentHash: string | null = null;
  if (allowedDids === null) {
    ownDelete(state.permissions, path);
  } else {
    const sorted = [...new Set(allowedDids)].sort();
    ownSet(state.permissions, path, sorted);
    contentHash = permissionHash(sorted);
  }
  state.edits.push({ path, operation: 'permission', agentDid, at, contentHash, previousHash });
  return change(path, 'permission', agentDid, contentHash, previousHash);
}

/** Absolute paths of all files, sorted. */
export function listFiles(state: VfsState): string[] {
  return Object.keys(state.files).sort();
}

export function editsByAgent(state: VfsState, agentDid: string): VfsEdit[] {
  return state.edits.filter((e) => e.agentDid === agentDid);
}

function findSnapshot(state: VfsState, snapshotId: string): number {
  const index = state.snapshots.findIndex((s) => s.snapshotId === snapshotId);
  if (index < 0)
    throw new HypervisorError('SNAPSHOT_NOT_FOUND', `no snapshot ${snapshotId} in session ${state.sessionId}`, {
      snapshotId,
    });
  return index;
}

function summary(s: VfsSnapshot): SnapshotSummary {
  return {
    snapshotId: s.snapshotId,
    agentDid: s.agentDid,
    at: s.at,
    label: s.label,
    fileCount: Object.keys(s.files).length,
  };
}

/** Snapshot all files and permissions (file entries are shared: they are never mutated). */
export function takeSnapshot(state: VfsState, input: unknown): SnapshotSummary {
  const { snapshotId, agentDid, at, label } = parse(VfsSnapshotSchema, input, 'VFS snapshot');
  if (state.snapshots.some((s) => s.snapshotId === snapshotId)) {
    throw new HypervisorError(
      'INVALID_INPUT',
      `invalid VFS snapshot: snapshotId ${snapshotId} already exists in session ${state.sessionId}`,
    );
  }
  const snapshot: VfsSnapshot = {
    snapshotId,
    agentDid,
    at,
    label: label ?? null,
    files: { ...state.files },
    permissions: { ...state.permissions },
  };
  state.snapshots.push(snapshot);
  return summary(snapshot);
}

/**
 * Bring files and permissions back to a snapshot. Every path whose content
 * or permissions differ is logged as a `restore` edit and returned as an
 * audit change (add/modify/delete for content, permission for permissions).
 * The agent needs access, under the current permissions, to every path it
 * changes; nothing changes if it lacks any.
 */
export function restoreSnapshot(state: VfsState, input: unknown): VfsChange[] {
  const { snapshotId, agentDid, at } = parse(VfsRestoreSchema, input, 'VFS restore');
  const snapshot = state.snapshots[findSnapshot(state, snapshotId)] as VfsSnapshot;
  const paths = [
    ...new Set([
      ...Object.keys(state.files),
      ...Object.keys(snapshot.files),
      ...Object.keys(state.permissions),
      ...Object.keys(snapshot.permissions),
    ]),
  ].sort();
  const plan: {
    path: string;
    from: VfsFile | undefined;
    to: VfsFile | undefined;
    permsFrom: string | null;
    permsTo: string | null;
  }[] = [];
  for (const path of paths) {
    const from = ownGet(state.files, path);
    const to = ownGet(snapshot.files, path);
    const permsFrom = permissionHash(ownGet(state.permissions, path));
    const permsTo = permissionHash(ownGet(snapshot.permissions, path));
    if (from?.contentHash !== to?.contentHash || permsFrom !== permsTo)
      plan.push({ path, from, to, permsFrom, permsTo });
  }
  for (const p of plan) assertAccess(state, p.path, agentDid, 'restore');

  const changes: VfsChange[] = [];
  for (const { path, from, to, permsFrom, permsTo } of plan) {
    const fromHash = from ? from.contentHash : null;
    const toHash = to ? to.contentHash : null;
    if (fromHash !== toHash) {
      if (to) ownSet(state.files, path, { ...to, updatedBy: agentDid, updatedAt: at });
      else ownDelete(state.files, path);
      state.edits.push({ path, operation: 'restore', agentDid, at, contentHash: toHash, previousHash: fromHash });
      changes.push(change(path, !from ? 'add' : !to ? 'delete' : 'modify', agentDid, toHash, fromHash));
    }
    if (permsFrom !== permsTo) {
      const allowed = ownGet(snapshot.permissions, path);
      if (allowed) ownSet(state.permissions, path, allowed);
      else ownDelete(state.permissions, path);
      state.edits.push({ path, operation: 'restore', agentDid, at, contentHash: permsTo, previousHash: permsFrom });
      changes.push(change(path, 'permission', agentDid, permsTo, permsFrom));
    }
  }
  return changes;
}

export function listSnapshots(state: VfsState): SnapshotSummary[] {
  return state.snapshots.map(summary);
}

export function deleteSnapshot(state: VfsState, snapshotId: string): void {
  state.snapshots.splice(findSnapshot(state, snapshotId), 1);
}

/** Garbage collection: drop files, permissions, snapshots and the edit log. Returns the number of files purged. */
export function purgeVfs(state: VfsState): number {
  const purged = Object.keys(state.files).length;
  state.files = {};
  state.permissions = {};
  state.snapshots = [];
  state.edits = [];
  return purged;
}
