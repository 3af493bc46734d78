/** `hv session create --config`: every session setting from a file or inline JSON, the flags overriding it (issue 23). */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { uniqueId } from '../helpers/hv';
import { hv, json, show, tempDir } from './runHv';

describe('hv session create --config (child process on a real server)', function () {
  this.timeout(120_000);

  it('takes the settings of a YAML file, the flags over them', async () => {
    const file = path.join(tempDir(), 'session.yaml');
    fs.writeFileSync(
      file,
      'identity: none\nmaxParticipants: 4\nminSigmaEff: 0.7\nconsensusQuorum: 3\nretentionDays: 7\n',
    );
    const id = uniqueId('cfg');
    const run = await hv([
      '--json',
      'session',
      'create',
      '--id',
      id,
      '--creator',
      'did:mesh:admin',
      '--config',
      file,
      '--min-sigma',
      '0.65',
    ]);
    assert.equal(run.code, 0, show(run));
    const { config } = json(run);
    assert.equal(config.maxParticipants, 4);
    assert.equal(config.minSigmaEff, 0.65, 'the flag overrides the file');
    assert.equal(config.consensusQuorum, 3);
    assert.equal(config.retentionDays, 7);
    assert.equal(config.identity, 'none', "the file's identity, not the did:key default");
  });

  it('refuses a setting it does not know, naming it, before anything starts (exit 2)', async () => {
    const id = uniqueId('cfg');
    const run = await hv([
      'session',
      'create',
      '--id',
      id,
      '--creator',
      'did:mesh:admin',
      '--config',
      '{"max_participants": 4}',
    ]);
    assert.equal(run.code, 2, show(run));
    assert.match(run.stderr, /max_participants/);
    const shown = await hv(['session', 'show', id]);
    assert.equal(shown.code, 1, 'no session was started');
    const notObject = await hv(['session', 'create', '--creator', 'did:mesh:admin', '--config', '[1]']);
    assert.equal(notObject.code, 2, show(notObject));
    assert.match(notObject.stderr, /--config must hold an object/);
  });
});
