/** The docs test's reading of Markdown and of documented outputs (tests/docs/markdown.ts): no server needed. */
import assert from 'node:assert/strict';
import { fencedBlocks, outputMismatch, runnable } from './markdown';

describe('docs: fenced blocks and documented outputs', () => {
  it('reads each block with its language, its marks and its line', () => {
    const md = [
      'Text',
      '```sh exit=4 cwd=clone',
      'hv audit verify s1',
      '```',
      '',
      '```text output',
      'FAILED …',
      '```',
      '```yaml file=saga.yaml',
      'sagaId: launch',
      '```',
      '```sh no-run',
      'npm start',
      '```',
    ].join('\n');
    const blocks = fencedBlocks(md);
    assert.deepEqual(
      blocks.map((b) => [b.line, b.lang, b.attrs, b.body]),
      [
        [2, 'sh', { exit: '4', cwd: 'clone' }, 'hv audit verify s1\n'],
        [6, 'text', { output: true }, 'FAILED …\n'],
        [9, 'yaml', { file: 'saga.yaml' }, 'sagaId: launch\n'],
        [12, 'sh', { 'no-run': true }, 'npm start\n'],
      ],
    );
    assert.deepEqual(
      blocks.map((b) => runnable(b)),
      [true, false, false, false],
    );
  });

  it('a block that never closes is an error, not a silently shorter document', () => {
    assert.throws(() => fencedBlocks('```sh\nhv session list\n'), /line 1: a fenced block that never closes/);
  });

  it('matches an output with … for any text in a line and a … line for any lines', () => {
    const expected = ['Session s1 — active', '  deltas:      …', '…', 'Sagas', '  (none)'].join('\n');
    const actual = [
      'Session s1 — active',
      '  deltas:           6',
      'Participants',
      '  a  b',
      'Sagas',
      '  (none)',
      '',
    ].join('\n');
    assert.equal(outputMismatch(expected, actual), undefined);
    assert.equal(outputMismatch('a\n…\nb', 'a\nb'), undefined, 'a … line may stand for no line');
  });

  it('does not compare padding or the length of a table rule', () => {
    assert.equal(outputMismatch('  s1  active\n  ──  ──────', '  s1         active\n  ─────────  ──────'), undefined);
  });

  it('fails on a changed word, a missing line or an extra line, naming it', () => {
    assert.match(outputMismatch('deltas: 6', 'deltas: 7')!, /expected line 1 "deltas: 6", got "deltas: 7"/);
    assert.match(outputMismatch('a\nb', 'a')!, /expected line 2 "b", but the output ended/);
    assert.match(outputMismatch('a', 'a\nb')!, /more lines than the docs show \(from "b"\)/);
    assert.ok(outputMismatch('OK …', 'FAILED audit trail'));
  });
});
