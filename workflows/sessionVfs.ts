/**
 * The session VFS as updates and queries of the session workflow. Only active
 * participants touch files; every edit becomes a delta in the audit chain.
 */
import * as wf from '@temporalio/workflow';
import { parse } from '../src/common';
import { HypervisorError } from '../src/errors';
import type { ChangeInput } from '../src/audit';
import {
  VfsPathRequestSchema, VfsPermissionsRequestSchema, VfsRestoreRequestSchema, VfsSnapshotRequestSchema, VfsWriteRequestSchema,
} from '../src/contract';
import {
  deleteFile, listFiles, listSnapshots, readFile, restoreSnapshot, setPermissions, takeSnapshot, writeFile,
  type SnapshotSummary, type VfsChange,
} from '../src/vfs';
import type { SessionWorkflowState } from './sessionTypes';

export const vfsWriteUpdate = wf.defineUpdate<VfsChange, [unknown]>('vfsWrite');
export const vfsDeleteUpdate = wf.defineUpdate<VfsChange, [unknown]>('vfsDelete');
export const vfsSetPermissionsUpdate = wf.defineUpdate<VfsChange, [unknown]>('vfsSetPermissions');
export const vfsSnapshotUpdate = wf.defineUpdate<SnapshotSummary, [unknown]>('vfsSnapshot');
export const vfsRestoreUpdate = wf.defineUpdate<VfsChange[], [unknown]>('vfsRestore');
export const vfsListQuery = wf.defineQuery<{ files: string[]; snapshots: SnapshotSummary[] }>('vfsList');
export const vfsFileQuery = wf.defineQuery<string, [string, string]>('vfsFile');

interface SessionHooks {
  record(agentDid: string, changes: ChangeInput[]): void;
  handle<A extends unknown[], R>(fn: (...args: A) => Promise<R> | R): (...args: A) => Promise<R>;
  validate(schema: Parameters<typeof parse>[0], what: string): (arg: unknown) => void;
  refresh(): void;
}

export function registerVfsHandlers(st: SessionWorkflowState, hooks: SessionHooks): void {
  const { record, handle, validate } = hooks;
  const requireActive = (did: string) => {
    if (!st.session.participants[did]?.active) {
      throw new HypervisorError('AGENT_NOT_FOUND', `agent ${did} is not an active participant of session ${st.session.sessionId}`, { did });
    }
    if (st.session.state === 'archived' || st.session.state === 'terminating') {
      throw new HypervisorError('INVALID_TRANSITION', `session ${st.session.sessionId} is ${st.session.state}: its VFS is closed`);
    }
  };
  const done = <C extends VfsChange | VfsChange[]>(did: string, change: C): C => {
    record(did, Array.isArray(change) ? change : [change]);
    hooks.refresh();
    return change;
  };

  wf.setHandler(vfsWriteUpdate, handle((raw) => {
    const r = parse(VfsWriteRequestSchema, raw, 'vfsWrite');
    requireActive(r.agentDid);
    return done(r.agentDid, writeFile(st.vfs, { ...r, at: Date.now() }));
  }), { validator: validate(VfsWriteRequestSchema, 'vfsWrite'), description: 'Write a file in the session VFS.' });

  wf.setHandler(vfsDeleteUpdate, handle((raw) => {
    const r = parse(VfsPathRequestSchema, raw, 'vfsDelete');
    requireActive(r.agentDid);
    return done(r.agentDid, deleteFile(st.vfs, { ...r, at: Date.now() }));
  }), { validator: validate(VfsPathRequestSchema, 'vfsDelete'), description: 'Delete a file from the session VFS.' });

  wf.setHandler(vfsSetPermissionsUpdate, handle((raw) => {
    const r = parse(VfsPermissionsRequestSchema, raw, 'vfsSetPermissions');
    requireActive(r.agentDid);
    return done(r.agentDid, setPermissions(st.vfs, { ...r, at: Date.now() }));
  }), { validator: validate(VfsPermissionsRequestSchema, 'vfsSetPermissions'), description: 'Restrict a path to some DIDs (null opens it).' });

  wf.setHandler(vfsSnapshotUpdate, handle((raw) => {
    const r = parse(VfsSnapshotRequestSchema, raw, 'vfsSnapshot');
    requireActive(r.agentDid);
    const summary = takeSnapshot(st.vfs, { snapshotId: r.snapshotId ?? wf.uuid4(), agentDid: r.agentDid, label: r.label, at: Date.now() });
    hooks.refresh();
    return summary;
  }), { validator: validate(VfsSnapshotRequestSchema, 'vfsSnapshot'), description: 'Snapshot the files and permissions.' });

  wf.setHandler(vfsRestoreUpdate, handle((raw) => {
    const r = parse(VfsRestoreRequestSchema, raw, 'vfsRestore');
    requireActive(r.agentDid);
    return done(r.agentDid, restoreSnapshot(st.vfs, { ...r, at: Date.now() }));
  }), { validator: validate(VfsRestoreRequestSchema, 'vfsRestore'), description: 'Restore a snapshot.' });

  wf.setHandler(vfsListQuery, () => ({ files: listFiles(st.vfs), snapshots: listSnapshots(st.vfs) }), { description: 'The files and snapshots in the session VFS.' });
  wf.setHandler(vfsFileQuery, (path, agentDid) => readFile(st.vfs, { path, agentDid }), { description: 'Read a file as an agent (args: path, agentDid).' });
}
