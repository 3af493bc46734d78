/**
 * The Temporal Web UI (2.42, served by the dev server of the Temporal CLI) in a
 * real browser, on what `npm run demo` leaves: a session with two agents, a
 * saga that completes and one whose third step fails and whose first two are
 * compensated. The demo itself runs (scripts/demo.ts, as a child process)
 * against a server and worker of this test's own. The UI must find the sagas
 * by the project's search attributes, list the compensated saga as Failed
 * (it ends as a failed workflow) and the completed one as Completed, and show
 * the compensation — the activity summaries, the current-details card the
 * saga writes, and its query. Screenshots go to .artifacts/screenshots/webui-*.png.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { registerDemoHandlers } from '../../activities/demoHandlers';
import { PROJECT_ROOT } from '../../worker/config';
import type { DevServer } from '../../worker/devServer';
import { installQuietRuntime } from '../helpers/env';
import { startOwnHypervisor } from '../helpers/ownHypervisor';
import { uniqueId } from '../helpers/hv';
import { launchChromium, screenshot, SCREENSHOT_DIR, seen } from './helpers/browser';
import { runOk, stopProcesses } from './helpers/processes';
import { MESSAGES } from '../../src/contract/messages';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

describe("e2e: the Temporal Web UI shows the demo's sagas, the compensated one as Failed", function () {
  this.timeout(180_000);

  const cleanups: (() => Promise<unknown>)[] = [];
  let server: DevServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ui: string;
  let demo: string;
  let sessionId: string;
  let sessionWid: string;
  let sagaWid: string;
  let completedWid: string;
  const otherSessionId = uniqueId('ui-other');
  const otherWid = `hv-session-${otherSessionId}`;
  const sagaId = 'send-report-outage';
  const completedSagaId = 'send-report';

  before(async function () {
    this.timeout(10 * 60_000);
    installQuietRuntime();
    // The demo's agents declared these handlers at join; the worker of this process runs them.
    registerDemoHandlers();
    // A server of this test's own with the Web UI on (the shared test server is headless).
    const taskQueue = `hv-e2e-webui-${process.pid}`;
    const own = await startOwnHypervisor({ taskQueue, withUi: true });
    cleanups.push(() => own.stop());
    server = own.server;
    ui = server.uiUrl;
    const { hv } = own;
    // Another session on the same server, which the filters must leave out.
    await hv.createSession({ sessionId: otherSessionId, creatorDid: 'did:mesh:admin' });

    // `npm run demo`, pointed at this server, its task queue and its Web UI.
    demo = await runOk(
      path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'),
      [path.join(PROJECT_ROOT, 'scripts', 'demo.ts')],
      {
        cwd: PROJECT_ROOT,
        env: {
          ...process.env,
          TEMPORAL_ADDRESS: server.address,
          TEMPORAL_NAMESPACE: 'default',
          HV_TASK_QUEUE: taskQueue,
          TEMPORAL_UI_PORT: new URL(ui).port,
          HV_DATA_DIR: own.dataDir,
          HV_AUDIT_DATABASE_URL: '',
        },
        timeoutMs: 120_000,
      },
    );
    sessionId = /^Session (\S+) created$/m.exec(demo)?.[1] ?? assert.fail(`the demo named no session:\n${demo}`);
    sessionWid = `hv-session-${sessionId}`;
    // The sagas' workflow ids as the session recorded them (N16: `hv-saga-<sessionId>/<sagaId>`).
    const records = await hv.session(sessionId).sagas();
    const recorded = (id: string) =>
      records.find((g) => g.sagaId === id)?.workflowId ?? assert.fail(`the session has no saga ${id}`);
    sagaWid = recorded(sagaId);
    completedWid = recorded(completedSagaId);

    for (const stale of fs.existsSync(SCREENSHOT_DIR) ? fs.readdirSync(SCREENSHOT_DIR) : []) {
      if (stale.startsWith('webui-failed-')) fs.rmSync(path.join(SCREENSHOT_DIR, stale), { force: true });
    }
    browser = await launchChromium();
    cleanups.push(() => browser.close());
    context = await browser.newContext({ viewport: { width: 1600, height: 1000 } });
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed' && page) {
      const name = `webui-failed-${this.currentTest.title.replace(/\W+/g, '-').slice(0, 60)}`;
      await screenshot(page, name).catch(() => undefined);
    }
  });

  after(async function () {
    this.timeout(60_000);
    stopProcesses();
    // Everything started above is stopped, in reverse order, even if a step failed.
    for (const cleanup of cleanups.reverse())
      await cleanup().catch((err) => console.error(`cleanup: ${(err as Error).message}`));
  });

  const workflowLink = (workflowId: string) => page.getByRole('link', { name: workflowId, exact: true });
  /** The workflow list's row of a workflow (the table row holding its link). */
  const listRow = (workflowId: string) => page.getByRole('row').filter({ has: workflowLink(workflowId) });
  const steps = [
    ['step-1', 'draft-email', alpha],
    ['step-2', 'reserve-budget', beta],
    ['step-3', 'send-email', alpha],
  ] as const;

  it("the demo printed each outcome, the compensated saga's from its snapshot, with its Web UI link", () => {
    const link = (workflowId: string) => `${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`;
    const lines = demo.split('\n');
    const after = (prefix: string) => lines.slice(lines.findIndex((l) => l.startsWith(prefix)));
    const completed = after(`Saga ${completedSagaId} running`);
    assert.match(completed[0]!, / completed \(workflow Completed\)$/, demo);
    for (const [i, [stepId, actionId, agentDid]] of steps.entries())
      assert.match(completed[1 + i]!, new RegExp(`^\\s+${stepId} ${actionId}\\s+${agentDid}\\s+committed$`), demo);
    assert.ok(completed.includes(`  ${link(completedWid)}`), `the link to ${completedWid}:\n${demo}`);

    const compensated = after(`Saga ${sagaId} running`);
    assert.match(compensated[0]!, / compensated \(workflow Failed: SagaCompensated\)$/, demo);
    assert.match(compensated[1]!, /^\s+failed at step-3: mail gateway unavailable \(attempt 3\)$/, demo);
    assert.match(compensated[2]!, new RegExp(`^\\s+step-1 draft-email\\s+${alpha}\\s+compensated$`), demo);
    assert.match(compensated[3]!, new RegExp(`^\\s+step-2 reserve-budget\\s+${beta}\\s+compensated$`), demo);
    // Retried, so it may have acted on an earlier attempt: undone first (SPEC §6).
    assert.match(
      compensated[4]!,
      new RegExp(`^\\s+step-3 send-email\\s+${alpha}\\s+compensated after 3 attempts$`),
      demo,
    );
    assert.match(compensated[5]!, /^\s+compensated in order: step-3 → step-2 → step-1$/, demo);
    assert.match(compensated[6]!, /^\s+the session recorded it as compensated$/, demo);
    assert.equal(compensated[7], `  ${link(sagaWid)}`, demo);
    assert.match(demo, /audit chain verified offline: OK/);
  });

  it("lists only the session's workflows when filtered by HvSessionId in the URL: the compensated saga Failed, the completed one Completed", async () => {
    await page.goto(`${ui}/namespaces/default/workflows`);
    await seen(workflowLink(otherWid), `${otherWid} in the unfiltered list`);

    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`HvSessionId="${sessionId}"`)}`);
    await seen(workflowLink(sessionWid), `the session ${sessionWid} in the filtered list`);
    await seen(workflowLink(sagaWid), `the saga ${sagaWid} in the filtered list`);
    await seen(workflowLink(completedWid), `the saga ${completedWid} in the filtered list`);
    await seen(page.getByText(`"${sessionId}"`), 'the HvSessionId filter chip');
    await seen(page.getByText(/^\s*3 Workflows\s*$/), 'the count "3 Workflows"');
    assert.equal(await workflowLink(otherWid).count(), 0, 'the other session is filtered out');

    // A saga that compensated ended as a failed workflow: the list says so, and only for it.
    await seen(listRow(sagaWid).getByText('Failed', { exact: true }), `${sagaWid} as Failed`);
    assert.equal(
      await listRow(sagaWid).getByText('Completed', { exact: true }).count(),
      0,
      `${sagaWid} is not shown as Completed`,
    );
    await seen(listRow(completedWid).getByText('Completed', { exact: true }), `${completedWid} as Completed`);
    assert.equal(
      await listRow(completedWid).getByText('Failed', { exact: true }).count(),
      0,
      `${completedWid} is not shown as Failed`,
    );
    await seen(
      listRow(sessionWid).getByText('Completed', { exact: true }),
      `the terminated session ${sessionWid} as Completed`,
    );
    await screenshot(page, 'webui-01-workflows-by-session');
  });

  it('narrows the list to the compensated saga with a query typed into the query box', async () => {
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`HvSessionId="${sessionId}"`)}`);
    await seen(workflowLink(sessionWid), 'the session in the list');
    await page.getByTestId('toggle-manual-query').click();
    const query = `HvSessionId="${sessionId}" AND HvSagaState="compensated" AND HvAgentDids="${beta}" AND ExecutionStatus="Failed"`;
    await page.getByTestId('manual-search-input').fill(query);
    await page.getByTestId('manual-search-button').click();
    await workflowLink(sessionWid).waitFor({ state: 'detached' });
    await seen(workflowLink(sagaWid), 'the compensated saga');
    await seen(page.getByText(/^\s*1 Workflow\s*$/), 'the count "1 Workflow"');
    assert.equal(await workflowLink(completedWid).count(), 0, 'the completed saga is filtered out');
    assert.match(decodeURIComponent(page.url()), /HvSagaState="compensated"/);
    await screenshot(page, 'webui-02-query-compensated-sagas');
  });

  it('shows the saga as Failed, with the compensation activities and their step summaries in its history', async () => {
    await page.goto(
      `${ui}/namespaces/default/workflows?query=${encodeURIComponent(`HvSagaState="compensated" AND HvSessionId="${sessionId}"`)}`,
    );
    await workflowLink(sagaWid).click();
    await seen(page.getByRole('heading', { name: sagaWid }), "the saga's page");
    await seen(page.getByText('Failed', { exact: true }).first(), 'the status Failed');
    await seen(page.getByText('SagaCompensated').first(), 'the failure type SagaCompensated');
    const summaries = [
      ...steps.map(([, actionId, agentDid]) => `${actionId} by ${agentDid}`),
      `undo send-email by ${alpha}`,
      `undo reserve-budget by ${beta}`,
      `undo draft-email by ${alpha}`,
    ];
    for (const summary of summaries) await seen(page.getByText(summary), `the activity summary "${summary}"`);
    await seen(
      page.getByText(`compensateStep • undo reserve-budget by ${beta}`),
      'the compensation of step 2 in the timeline',
    );
    await seen(
      page.getByText(`compensateStep • undo draft-email by ${alpha}`),
      'the compensation of step 1 in the timeline',
    );
    // Tall enough for the whole timeline: three steps, the retried failure, two compensations.
    await page.setViewportSize({ width: 1600, height: 2000 });
    await screenshot(page, 'webui-03-saga-history');
    await page.setViewportSize({ width: 1600, height: 1000 });
  });

  it('shows the summary, each activity by its summary and the current-details card', async () => {
    await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(sagaWid)}`);
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await seen(page.getByRole('heading', { name: 'Events with Metadata' }), 'the events with metadata');

    const summaryFrame = page.locator('xpath=//h3[normalize-space()="Summary"]/following::iframe[1]').contentFrame();
    await seen(
      summaryFrame.getByText(`Saga ${sagaId} of session ${sessionId}: mail gateway down at step 3`),
      "the saga's static summary",
    );

    // The list below the "Events with Metadata" heading: one row per activity, by its summary, with its status.
    const events = page.locator('xpath=//h3[normalize-space()="Events with Metadata"]/../following-sibling::*[1]');
    const rows = [
      [`draft-email by ${alpha}`, 'Completed'],
      [`reserve-budget by ${beta}`, 'Completed'],
      [`send-email by ${alpha}`, 'Failed'],
      [`undo send-email by ${alpha}`, 'Completed'],
      [`undo reserve-budget by ${beta}`, 'Completed'],
      [`undo draft-email by ${alpha}`, 'Completed'],
    ] as const;
    for (const [summary, status] of rows) {
      const row = events
        .locator('div')
        .filter({ has: page.getByText(summary, { exact: true }) })
        .filter({ hasText: status })
        .last();
      await seen(row, `the activity "${summary}" as ${status}`);
    }
    const listed = (await events.locator('span').allInnerTexts())
      .map((t) => t.trim())
      .filter((t) => t.includes(' by '));
    assert.deepEqual(
      listed,
      rows.map(([summary]) => summary),
      'the activities in order: three steps, then the compensations in reverse',
    );

    const details = page.locator('xpath=//h3[normalize-space()="Current Details"]/following::iframe[1]').contentFrame();
    await seen(
      details.getByRole('heading', { level: 2, name: `Saga ${sagaId} — compensated` }),
      'the current-details heading',
    );
    await seen(
      details.getByRole('row', { name: `step-1 draft-email ${alpha} compensated 1` }),
      'step 1 compensated in the details table',
    );
    await seen(
      details.getByRole('row', { name: `step-2 reserve-budget ${beta} compensated 1` }),
      'step 2 compensated in the details table',
    );
    await seen(
      details.getByRole('row', { name: `step-3 send-email ${alpha} compensated 3` }),
      'step 3, failed after 3 attempts, compensated in the details table',
    );
    await seen(details.getByText('Compensated in order: step-3 → step-2 → step-1'), 'the compensation order');
    await screenshot(page, 'webui-04-saga-user-metadata');
  });

  it('runs the sagaState query from the Queries tab, which shows its description', async () => {
    await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(sagaWid)}`);
    await page.getByRole('tab', { name: 'Queries' }).click();
    await page.getByTestId('query-select-button').click();
    const option = page.getByRole('option').filter({ hasText: 'sagaState' });
    await seen(option.getByText(MESSAGES.sagaState.description), "the query's description (the registry's)");
    await screenshot(page, 'webui-05-saga-queries-menu');
    await option.click();
    await page.getByRole('button', { name: 'Run Query' }).click();
    for (const text of ['"state": "compensated"', `"sessionId": "${sessionId}"`, `"sagaId": "${sagaId}"`]) {
      await seen(page.getByText(text).first(), `${text} in the query result`);
    }
    await screenshot(page, 'webui-06-saga-query-result');
    // Unformatted, the result is one line that the editor renders whole: read it and check the snapshot.
    await page.getByText('JSON Formatting').click();
    const line = page.locator('.cm-line', { hasText: '"compensationOrder"' });
    await seen(line, 'the unformatted query result');
    const snapshot = JSON.parse(await line.innerText());
    assert.equal(snapshot.saga.state, 'compensated');
    assert.equal(snapshot.failedStepId, 'step-3');
    assert.deepEqual(snapshot.compensationOrder, ['step-3', 'step-2', 'step-1']);
    assert.deepEqual(
      snapshot.saga.steps.map((st: { state: string }) => st.state),
      ['compensated', 'compensated', 'compensated'],
    );
    assert.deepEqual(Object.keys(snapshot.digests), ['step-1', 'step-2', 'step-3']);
  });
});
