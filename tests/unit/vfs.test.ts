import assert from 'node:assert/strict';
import {
  canAccess,
  createVfsState,
  deleteFile,
  deleteSnapshot,
  editsByAgent,
  listFiles,
  listSnapshots,
  purgeVfs,
  readFile,
  resolvePath,
  restoreSnapshot,
  setPermissions,
  takeSnapshot,
  writeFile,
  type VfsState,
} from '../../src/core/vfs';
import { canonicalJson, sha256Hex } from '../../src/core/hash';
import { isHypervisorError, type ErrorCode } from '../../src/core/errors';

const ALICE = 'did:mesh:alice';
const BOB = 'did:mesh:bob';
const CAROL = 'did:mesh:carol';

const rejects = (fn: () => unknown, code: ErrorCode, pattern: RegExp) =>
  assert.throws(fn, (e) => isHypervisorError(e, code) && pattern.test(e.message), `${code} ${pattern}`);

describe('vfs: namespace', () => {
  let vfs: VfsState;
  beforeEach(() => {
    vfs = createVfsState('s1');
  });

  it('lives under /sessions/<id>/ and takes relative paths inside it', () => {
    assert.equal(vfs.root, '/sessions/s1/');
    assert.equal(resolvePath(vfs, 'notes/a.txt'), '/sessions/s1/notes/a.txt');
    assert.equal(resolvePath(vfs, '/sessions/s1/notes/a.txt'), '/sessions/s1/notes/a.txt');
  });

  it('rejects paths outside the namespace as PERMISSION_DENIED', () => {
    for (const p of ['/sessions/s2/a.txt', '/etc/passwd', '/sessions/s1', '/sessions/s10/a', '/sessions/s1x/a']) {
      rejects(
        () => writeFile(vfs, { path: p, content: 'x', agentDid: ALICE, at: 1 }),
        'PERMISSION_DENIED',
        /outside the namespace/,
      );
    }
  });

  it('rejects .., ., empty segments and backslashes as INVALID_INPUT', () => {
    for (const p of ['/sessions/s1/../s2/a', 'a/../../b', './a', '/sessions/s1/a//b', '/sessions/s1/a/', 'a\\b']) {
      rejects(() => writeFile(vfs, { path: p, content: 'x', agentDid: ALICE, at: 1 }), 'INVALID_INPUT', /invalid path/);
    }
  });

  it('rejects a session id that cannot be a path segment', () => {
    for (const id of ['', 'a/b', '..', '.hidden']) rejects(() => createVfsState(id), 'INVALID_INPUT', /sessionId/);
  });
});

describe('vfs: files and the edit log', () => {
  let vfs: VfsState;
  beforeEach(() => {
    vfs = createVfsState('s1');
  });

  it('write creates then updates, returning the audit change and logging the edit', () => {
    const c1 = writeFile(vfs, { path: 'a.txt', content: 'one', agentDid: ALICE, at: 10 });
    assert.deepEqual(c1, {
      path: '/sessions/s1/a.txt',
      operation: 'add',
      contentHash: sha256Hex('one'),
      agentDid: ALICE,
    });
    const c2 = writeFile(vfs, { path: 'a.txt', content: 'two', agentDid: BOB, at: 20 });
    assert.deepEqual(c2, {
      path: '/sessions/s1/a.txt',
      operation: 'modify',
      contentHash: sha256Hex('two'),
      previousHash: sha256Hex('one'),
      agentDid: BOB,
    });
    assert.equal(readFile(vfs, { path: 'a.txt', agentDid: CAROL }), 'two');
    assert.deepEqual(vfs.edits, [
      {
        path: '/sessions/s1/a.txt',
        operation: 'create',
        agentDid: ALICE,
        at: 10,
        contentHash: sha256Hex('one'),
        previousHash: null,
      },
      {
        path: '/sessions/s1/a.txt',
        operation: 'update',
        agentDid: BOB,
        at: 20,
        contentHash: sha256Hex('two'),
        previousHash: sha256Hex('one'),
      },
    ]);
    const file = vfs.files['/sessions/s1/a.txt']!;
    assert.deepEqual([file.createdBy, file.createdAt, file.updatedBy, file.updatedAt], [ALICE, 10, BOB, 20]);
  });

  it('delete removes the file and logs it; missing files are FILE_NOT_FOUND', () => {
    writeFile(vfs, { path: 'a.txt', content: 'one', agentDid: ALICE, at: 1 });
    const c = deleteFile(vfs, { path: 'a.txt', agentDid: BOB, at: 2 });
    assert.deepEqual(c, {
      path: '/sessions/s1/a.txt',
      operation: 'delete',
      previousHash: sha256Hex('one'),
      agentDid: BOB,
    });
    assert.deepEqual(vfs.edits.at(-1), {
      path: '/sessions/s1/a.txt',
      operation: 'delete',
      agentDid: BOB,
      at: 2,
      contentHash: null,
      previousHash: sha256Hex('one'),
    });
    rejects(() => readFile(vfs, { path: 'a.txt', agentDid: ALICE }), 'FILE_NOT_FOUND', /\/sessions\/s1\/a\.txt/);
    rejects(() => deleteFile(vfs, { path: 'a.txt', agentDid: ALICE, at: 3 }), 'FILE_NOT_FOUND', /a\.txt/);
  });

  it('lists files sorted and edits by agent', () => {
    writeFile(vfs, { path: 'b', content: '1', agentDid: ALICE, at: 1 });
    writeFile(vfs, { path: 'a', content: '2', agentDid: BOB, at: 2 });
    writeFile(vfs, { path: 'b', content: '3', agentDid: ALICE, at: 3 });
    assert.deepEqual(listFiles(vfs), ['/sessions/s1/a', '/sessions/s1/b']);
    assert.deepEqual(
      editsByAgent(vfs, ALICE).map((e) => e.at),
      [1, 3],
    );
    assert.deepEqual(editsByAgent(vfs, CAROL), []);
  });

  it('validates input naming the field', () => {
    rejects(() => writeFile(vfs, { path: 'a', content: 1, agentDid: ALICE, at: 1 }), 'INVALID_INPUT', /content/);
    rejects(() => writeFile(vfs, { path: 'a', content: 'x', agentDid: 'alice', at: 1 }), 'INVALID_INPUT', /agentDid/);
    rejects(() => deleteFile(vfs, { path: 'a', agentDid: ALICE, at: 1.5 }), 'INVALID_INPUT', /at/);
  });
});

describe('vfs: path permissions', () => {
  let vfs: VfsState;
  beforeEach(() => {
    vfs = createVfsState('s1');
    writeFile(vfs, { path: 'secret', content: 'x', agentDid: ALICE, at: 1 });
  });

  it('no entry means open to every agent', () => {
    assert.equal(canAccess(vfs, '/sessions/s1/secret', CAROL), true);
  });

  it('an entry restricts read, write and delete to its DIDs, stored sorted and de-duplicated', () => {
    const c = setPermissions(vfs, { path: 'secret', allowedDids: [BOB, ALICE, BOB], agentDid: ALICE, at: 2 });
    assert.deepEqual(vfs.permissions['/sessions/s1/secret'], [ALICE, BOB]);
    assert.deepEqual(c, {
      path: '/sessions/s1/secret',
      operation: 'permission',
      contentHash: sha256Hex(canonicalJson([ALICE, BOB])),
      agentDid: ALICE,
    });
    assert.equal(readFile(vfs, { path: 'secret', agentDid: BOB }), 'x');
    rejects(
      () => readFile(vfs, { path: 'secret', agentDid: CAROL }),
      'PERMISSION_DENIED',
      /did:mesh:carol may not read \/sessions\/s1\/secret/,
    );
    rejects(
      () => writeFile(vfs, { path: 'secret', content: 'y', agentDid: CAROL, at: 3 }),
      'PERMISSION_DENIED',
      /carol may not write/,
    );
    rejects(
      () => deleteFile(vfs, { path: 'secret', agentDid: CAROL, at: 3 }),
      'PERMISSION_DENIED',
      /carol may not delete/,
    );
    assert.equal(vfs.files['/sessions/s1/secret']!.content, 'x');
  });

  it("only an allowed agent may change a restricted path's permissions; null reopens it", () => {
    setPermissions(vfs, { path: 'secret', allowedDids: [ALICE], agentDid: BOB, at: 2 });
    rejects(
      () => setPermissions(vfs, { path: 'secret', allowedDids: [CAROL], agentDid: CAROL, at: 3 }),
      'PERMISSION_DENIED',
      /change permissions/,
    );
    const c = setPermissions(vfs, { path: 'secret', allowedDids: null, agentDid: ALICE, at: 4 });
    assert.deepEqual(c, {
      path: '/sessions/s1/secret',
      operation: 'permission',
      previousHash: sha256Hex(canonicalJson([ALICE])),
      agentDid: ALICE,
    });
    assert.equal(canAccess(vfs, '/sessions/s1/secret', CAROL), true);
    assert.deepEqual(vfs.edits.filter((e) => e.operation === 'permission').length, 2);
  });

  it('rejects an empty allowed list (use null to open)', () => {
    rejects(
      () => setPermissions(vfs, { path: 'secret', allowedDids: [], agentDid: ALICE, at: 2 }),
      'INVALID_INPUT',
      /allowedDids/,
    );
  });

  it('applies to a path before its file exists', () => {
    setPermissions(vfs, { path: 'later', allowedDids: [ALICE], agentDid: ALICE, at: 2 });
    rejects(
      () => writeFile(vfs, { path: 'later', content: 'x', agentDid: BOB, at: 3 }),
      'PERMISSION_DENIED',
      /bob may not write/,
    );
  });
});

describe('vfs: snapshots', () => {
  let vfs: VfsState;
  beforeEach(() => {
    vfs = createVfsState('s1');
    writeFile(vfs, { path: 'a', content: 'a1', agentDid: ALICE, at: 1 });
    writeFile(vfs, { path: 'b', content: 'b1', agentDid: ALICE, at: 1 });
    setPermissions(vfs, { path: 'a', allowedDids: [ALICE, BOB], agentDid: ALICE, at: 1 });
  });

  it('snapshot, change, restore: files and permissions come back, each change logged and returned', () => {
    assert.deepEqual(takeSnapshot(vfs, { snapshotId: 'snap1', agentDid: ALICE, at: 2, label: 'before' }), {
      snapshotId: 'snap1',
      agentDid: ALICE,
      at: 2,
      label: 'before',
      fileCount: 2,
    });
    writeFile(vfs, { path: 'a', content: 'a2', agentDid: BOB, at: 3 });
    deleteFile(vfs, { path: 'b', agentDid: BOB, at: 3 });
    writeFile(vfs, { path: 'c', content: 'c1', agentDid: BOB, at: 3 });
    setPermissions(vfs, { path: 'a', allowedDids: [BOB], agentDid: BOB, at: 3 });

    const changes = restoreSnapshot(vfs, { snapshotId: 'snap1', agentDid: BOB, at: 4 });
    assert.deepEqual(changes, [
      {
        path: '/sessions/s1/a',
        operation: 'modify',
        contentHash: sha256Hex('a1'),
        previousHash: sha256Hex('a2'),
        agentDid: BOB,
      },
      {
        path: '/sessions/s1/a',
        operation: 'permission',
        contentHash: sha256Hex(canonicalJson([ALICE, BOB])),
        previousHash: sha256Hex(canonicalJson([BOB])),
        agentDid: BOB,
      },
      { path: '/sessions/s1/b', operation: 'add', contentHash: sha256Hex('b1'), agentDid: BOB },
      { path: '/sessions/s1/c', operation: 'delete', previousHash: sha256Hex('c1'), agentDid: BOB },
    ]);
    assert.deepEqual(listFiles(vfs), ['/sessions/s1/a', '/sessions/s1/b']);
    assert.equal(readFile(vfs, { path: 'a', agentDid: ALICE }), 'a1');
    assert.deepEqual(vfs.permissions['/sessions/s1/a'], [ALICE, BOB]);
    assert.equal(vfs.edits.filter((e) => e.operation === 'restore').length, 4);
  });

  it('a restore needs access to every path it changes, and changes nothing otherwise', () => {
    takeSnapshot(vfs, { snapshotId: 'snap1', agentDid: ALICE, at: 2 });
    writeFile(vfs, { path: 'a', content: 'a2', agentDid: ALICE, at: 3 });
    writeFile(vfs, { path: 'b', content: 'b2', agentDid: CAROL, at: 3 });
    const before = JSON.stringify(vfs);
    rejects(
      () => restoreSnapshot(vfs, { snapshotId: 'snap1', agentDid: CAROL, at: 4 }),
      'PERMISSION_DENIED',
      /carol may not restore \/sessions\/s1\/a/,
    );
    assert.equal(JSON.stringify(vfs), before);
  });

  it('snapshots are unaffected by later writes, survive JSON, list and delete', () => {
    takeSnapshot(vfs, { snapshotId: 'snap1', agentDid: ALICE, at: 2 });
    writeFile(vfs, { path: 'a', content: 'a2', agentDid: ALICE, at: 3 });
    const copy = JSON.parse(JSON.stringify(vfs)) as VfsState;
    restoreSnapshot(copy, { snapshotId: 'snap1', agentDid: ALICE, at: 4 });
    assert.equal(readFile(copy, { path: 'a', agentDid: ALICE }), 'a1');
    takeSnapshot(vfs, { snapshotId: 'snap2', agentDid: BOB, at: 5 });
    assert.deepEqual(
      listSnapshots(vfs).map((s) => [s.snapshotId, s.agentDid, s.label]),
      [
        ['snap1', ALICE, null],
        ['snap2', BOB, null],
      ],
    );
    deleteSnapshot(vfs, 'snap1');
    assert.deepEqual(
      listSnapshots(vfs).map((s) => s.snapshotId),
      ['snap2'],
    );
  });

  it('rejects unknown and duplicate snapshot ids', () => {
    rejects(() => restoreSnapshot(vfs, { snapshotId: 'nope', agentDid: ALICE, at: 2 }), 'SNAPSHOT_NOT_FOUND', /nope/);
    rejects(() => deleteSnapshot(vfs, 'nope'), 'SNAPSHOT_NOT_FOUND', /nope/);
    takeSnapshot(vfs, { snapshotId: '__proto__', agentDid: ALICE, at: 2 });
    rejects(
      () => takeSnapshot(vfs, { snapshotId: '__proto__', agentDid: ALICE, at: 2 }),
      'INVALID_INPUT',
      /already exists/,
    );
  });
});

describe('vfs: purge', () => {
  it('drops files, permissions, snapshots and the edit log, returning the files purged', () => {
    const vfs = createVfsState('s1');
    writeFile(vfs, { path: 'a', content: '1', agentDid: ALICE, at: 1 });
    writeFile(vfs, { path: 'b', content: '2', agentDid: ALICE, at: 1 });
    setPermissions(vfs, { path: 'a', allowedDids: [ALICE], agentDid: ALICE, at: 1 });
    takeSnapshot(vfs, { snapshotId: 's', agentDid: ALICE, at: 1 });
    assert.equal(purgeVfs(vfs), 2);
    assert.deepEqual([vfs.files, vfs.permissions, vfs.snapshots, vfs.edits], [{}, {}, [], []]);
    assert.equal(purgeVfs(vfs), 0);
  });
});
