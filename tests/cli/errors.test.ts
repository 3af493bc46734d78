import assert from 'node:assert/strict';
import { freePort } from '../../worker/ports';
import { uniqueId } from '../helpers/hv';
import { hv, json, show } from './runHv';

describe('hv: help, usage errors and exit codes', function () {
  this.timeout(120_000);

  it('documents every command and the exit codes in --help', async () => {
    const run = await hv(['--help']);
    assert.equal(run.code, 0, show(run));
    for (const cmd of [
      'session create',
      'session join',
      'session activate',
      'session vouch',
      'session show',
      'session terminate',
      'saga start',
      'saga show',
      'saga approve',
      'saga witness',
      'audit verify',
      'audit export',
    ]) {
      assert.ok(run.stdout.includes(`hv ${cmd} `), `--help lists hv ${cmd}`);
    }
    for (const code of [0, 1, 2, 3, 4, 5]) assert.match(run.stdout, new RegExp(`^  ${code}  \\S`, 'm'));
    const one = await hv(['saga', 'start', '--help']);
    assert.equal(one.code, 0, show(one));
    assert.match(one.stdout, /^Usage: hv saga start SESSION FILE \[--id SAGA\] \[--request-id ID\] \[--wait\]/);
    assert.match(one.stdout, /--wait\s+wait for the outcome/);
  });

  it('exits 2 with what to do on a usage error', async () => {
    const noCmd = await hv([]);
    assert.equal(noCmd.code, 2, show(noCmd));
    assert.match(noCmd.stderr, /usage error: a command is needed\n.*hv --help/);

    const unknown = await hv(['session', 'destroy', 'x']);
    assert.equal(unknown.code, 2, show(unknown));
    assert.match(
      unknown.stderr,
      /unknown command "hv session destroy"\n\s+what to do: the commands are create, join, activate, vouch, show, terminate/,
    );

    const missing = await hv(['session', 'create', '--max-participants', 'many']);
    assert.equal(missing.code, 2, show(missing));
    assert.match(missing.stderr, /hv session create needs --creator/);

    const badNumber = await hv(['session', 'create', '--creator', 'did:mesh:admin', '--max-participants', 'many']);
    assert.equal(badNumber.code, 2, show(badNumber));
    assert.match(badNumber.stderr, /--max-participants must be an integer from 1 to 10000, got "many"/);

    const unknownFlag = await hv(['session', 'show', 'x', '--colour'], {});
    assert.equal(unknownFlag.code, 2, show(unknownFlag));
    assert.match(unknownFlag.stderr, /Unknown option '--colour'\n\s+what to do: run `hv session show --help`/);

    const extra = await hv(['session', 'show', 'x', 'y', '--json']);
    assert.equal(extra.code, 2, show(extra));
    assert.deepEqual(json(extra).error.code, 'USAGE');
  });

  it('exits 1 with SESSION_NOT_FOUND for an unknown session', async () => {
    const id = uniqueId('missing');
    const run = await hv(['session', 'show', id]);
    assert.equal(run.code, 1, show(run));
    assert.match(run.stderr, new RegExp(`error SESSION_NOT_FOUND: session ${id} does not exist`));
    assert.match(run.stderr, /what to do: check the session id/);
    const asJson = await hv(['session', 'join', id, '--agent', 'did:mesh:alpha', '--sigma', '0.8', '--json']);
    assert.equal(asJson.code, 1, show(asJson));
    assert.equal(json(asJson).error.code, 'SESSION_NOT_FOUND');
  });

  it('exits 3 and says to run `npm start` when Temporal cannot be reached', async () => {
    const port = await freePort(); // nothing listens there
    const run = await hv(['session', 'show', 'x', '--timeout', '2'], { TEMPORAL_ADDRESS: `127.0.0.1:${port}` });
    assert.equal(run.code, 3, show(run));
    assert.match(run.stderr, new RegExp(`cannot reach Temporal at 127\\.0\\.0\\.1:${port}`));
    assert.match(run.stderr, /npm start.*TEMPORAL_ADDRESS/);
    // The flag overrides the environment.
    const flag = await hv(['audit', 'export', 'x', '--timeout', '2', '--address', `127.0.0.1:${port}`, '--json']);
    assert.equal(flag.code, 3, show(flag));
    assert.equal(json(flag).error.code, 'UNREACHABLE');
  });

  it('exits 3 and points at the worker when nothing serves the task queue in time', async () => {
    const queue = uniqueId('nobody-polls');
    const run = await hv([
      'session',
      'create',
      '--creator',
      'did:mesh:admin',
      '--identity',
      'none',
      '--task-queue',
      queue,
      '--timeout',
      '3',
    ]);
    assert.equal(run.code, 3, show(run));
    assert.match(run.stderr, /error TIMEOUT: no answer within 3 s/);
    assert.match(run.stderr, new RegExp(`no hypervisor worker answered on task queue "${queue}".*npm run worker`));
  });
});
