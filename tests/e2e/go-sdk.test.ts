/**
 * The Temporal Go SDK as a client of the contract: examples/go, written from
 * docs/CONTRACT.md and contract/*.schema.json alone, is built with `go build`
 * (once per change of its sources, into the per-user cache) and run against
 * the shared test server. Each outcome it prints must be what the docs say:
 * a refused join names its code and details, a saga whose last step fails
 * ends as a failed workflow carrying its compensated snapshot, a refused query
 * leads with its code, and the commitment terminate answers verifies against
 * the audit store. The Go snippets docs/CONTRACT.md shows are the example's
 * own code.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { registerDemoHandlers } from '../../activities/demoHandlers';
import { PROJECT_ROOT } from '../../worker/config';
import { goBuildLocal } from '../../worker/goBuild';
import { testEnv } from '../helpers/env';
import { hypervisor, uniqueId } from '../helpers/hv';
import { runOk, stopProcesses } from './helpers/processes';

const EXAMPLE_DIR = path.join(PROJECT_ROOT, 'examples', 'go');
const ALPHA = 'did:mesh:alpha';
const BETA = 'did:mesh:beta';

/** Each stdout line is `<outcome> <json>`; an outcome printed more than once keeps every value, in order. */
function outcomesOf(stdout: string): Map<string, unknown[]> {
  const outcomes = new Map<string, unknown[]>();
  for (const line of stdout.trim().split('\n')) {
    const space = line.indexOf(' ');
    assert.ok(space > 0, `an outcome line is "<name> <json>": ${line}`);
    const name = line.slice(0, space);
    outcomes.set(name, [...(outcomes.get(name) ?? []), JSON.parse(line.slice(space + 1))]);
  }
  return outcomes;
}

/** The fenced code blocks of a language in one section of a Markdown file (up to the next `## `). */
function sectionBlocks(markdown: string, heading: string, lang: string): string[] {
  const start = markdown.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `the section "${heading}" exists`);
  const end = markdown.indexOf('\n## ', start + 1);
  const section = markdown.slice(start, end < 0 ? undefined : end);
  return [...section.matchAll(new RegExp('```' + lang + '\\n([\\s\\S]*?)```', 'g'))].map((m) => m[1]!);
}

/** Lines without their indentation (the doc indents with spaces, gofmt with tabs) and without blank ones. */
const codeLines = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);

describe('e2e: a session driven from the Temporal Go SDK (examples/go)', function () {
  this.timeout(120_000);
  let binary: string;

  before(async function () {
    // A cold module cache downloads go.temporal.io/sdk and its dependencies through the module proxy once.
    this.timeout(10 * 60_000);
    // The example declares the stock worker's demo handlers; the test worker runs them too.
    registerDemoHandlers();
    binary = await goBuildLocal('hv-go-example', EXAMPLE_DIR, (line) => console.log(`      ${line}`));
  });

  after(() => stopProcesses());

  it('joins, is refused a join, runs a compensated saga, is refused a query and terminates, as the docs say', async () => {
    const env = await testEnv();
    const sessionId = uniqueId('go');
    const stdout = await runOk(binary, ['-session', sessionId], {
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: env.address,
        TEMPORAL_NAMESPACE: env.namespace,
        HV_TASK_QUEUE: env.taskQueue,
      },
      timeoutMs: 90_000,
    });
    const outcomes = outcomesOf(stdout);
    const one = <T>(name: string): T => {
      const values = outcomes.get(name);
      assert.equal(values?.length, 1, `one "${name}" line in:\n${stdout}`);
      return values![0] as T;
    };

    assert.deepEqual(one<{ workflowId: string }>('started').workflowId, `hv-session-${sessionId}`);
    assert.deepEqual(
      (outcomes.get('joined') as { did: string; ring: number }[]).map(({ did, ring }) => [did, ring]),
      [
        [ALPHA, 2],
        [BETA, 2],
      ],
    );

    // A refused update: an ApplicationError whose type is the code, with the code's details.
    const joinRefused = one<{ code: string; message: string; details: unknown }>('join-refused');
    assert.equal(joinRefused.code, 'DUPLICATE_AGENT');
    assert.deepEqual(joinRefused.details, { did: ALPHA });
    assert.match(joinRefused.message, new RegExp(ALPHA));

    assert.deepEqual(one('activated'), { state: 'active' });

    const started = one<{ sagaId: string; workflowId: string; digests: Record<string, string> }>('saga-started');
    assert.equal(
      started.workflowId,
      `hv-saga-${sessionId}/launch`,
      "the saga's workflow id as the session answers it (N16)",
    );
    assert.deepEqual(Object.keys(started.digests).sort(), ['step-1', 'step-2', 'step-3']);

    // A saga that did not complete: a failed workflow, SagaCompensated, its outcome in details[0] (the order: its query).
    const ended = one<Record<string, unknown>>('saga-ended');
    assert.equal(ended.failureType, 'SagaCompensated');
    assert.equal(ended.state, 'compensated');
    assert.equal(ended.failedStepId, 'step-3');
    assert.match(String(ended.error), /mail gateway unavailable/);
    assert.deepEqual(
      ended.compensationOrder,
      ['step-3', 'step-2', 'step-1'],
      'every step that may have acted, the failed one first',
    );
    assert.deepEqual(one('sagas'), [{ sagaId: 'launch', state: 'compensated' }]);

    // A refused query: QueryFailed, its message leading with the code.
    const queryRefused = one<{ code: string; message: string }>('query-refused');
    assert.equal(queryRefused.code, 'PERMISSION_DENIED');
    assert.match(queryRefused.message, new RegExp(`${BETA}.*/notes/plan\\.md`));

    const summary = one<{ state: string; participants: { did: string }[] }>('summary');
    assert.equal(summary.state, 'active');
    assert.deepEqual(summary.participants.map((p) => p.did).sort(), [ALPHA, BETA]);
    const head = one<{ deltaCount: number; merkleRoot: string }>('audit-head');
    assert.ok(head.deltaCount > 0);
    assert.match(head.merkleRoot, /^[0-9a-f]{64}$/);

    // The commitment terminate answered is the one the audit store holds, and the stored deltas give its root.
    const commitment = one<{ sessionId: string; merkleRoot: string; deltaCount: number }>('terminated');
    assert.equal(commitment.sessionId, sessionId);
    assert.ok(commitment.deltaCount >= head.deltaCount);
    const record = await env.store.getSession(sessionId);
    assert.equal(record?.commitment.merkleRoot, commitment.merkleRoot);
    const { verification } = await (await hypervisor()).session(sessionId).verifyAudit();
    assert.deepEqual(verification, { ok: true, count: commitment.deltaCount, merkleRoot: commitment.merkleRoot });

    // An ended session is a closed workflow: Temporal answers NotFound, not the session.
    assert.deepEqual(one('closed'), { grpc: 'NotFound', message: 'workflow execution already completed' });
  });

  it("shows, in docs/CONTRACT.md's Go snippets, the example's own code", () => {
    const doc = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'CONTRACT.md'), 'utf8');
    const lines = (text: string) => `\n${codeLines(text).join('\n')}\n`;
    const example = lines(fs.readFileSync(path.join(EXAMPLE_DIR, 'main.go'), 'utf8'));
    const snippets = sectionBlocks(doc, 'How refusals and failures arrive', 'go');
    assert.ok(snippets.length >= 3, 'a Go snippet for a refused update, a saga failure and a refused query');
    for (const snippet of snippets) {
      assert.ok(
        example.includes(lines(snippet)),
        `examples/go/main.go holds the doc's snippet, line for line:\n${snippet}`,
      );
    }
  });
});
