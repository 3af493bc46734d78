/**
 * The Temporal Web UI (2.42, served by the dev server of the Temporal CLI) in a
 * real browser: a session with two agents runs a saga whose third step fails
 * and whose first two are compensated; the UI must find the saga by the
 * project's search attributes and show its compensation — the activity
 * summaries, the current-details card the saga writes, and its query.
 * Screenshots go to .artifacts/screenshots/webui-*.png.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { DevServer } from '../../worker/devServer';
import { installQuietRuntime } from '../helpers/env';
import { startOwnHypervisor } from '../helpers/ownHypervisor';
import { uniqueId } from '../helpers/hv';
import { ACTIONS } from '../helpers/sessions';
import { registerTestHandlers } from '../helpers/testHandlers';
import { launchChromium, screenshot, SCREENSHOT_DIR, seen } from './helpers/browser';

const alpha = 'did:mesh:alpha';
const beta = 'did:mesh:beta';

describe('e2e: the Temporal Web UI shows a compensated saga', function () {
  this.timeout(180_000);

  const cleanups: (() => Promise<unknown>)[] = [];
  let server: DevServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let ui: string;
  const sessionId = uniqueId('ui');
  const otherSessionId = uniqueId('ui-other');
  const sagaId = 'refund';
  const sessionWid = `hv-session-${sessionId}`;
  const otherWid = `hv-session-${otherSessionId}`;
  const sagaWid = `hv-saga-${sessionId}-${sagaId}`;

  before(async function () {
    this.timeout(10 * 60_000);
    installQuietRuntime();
    registerTestHandlers();
    // A server of this test's own with the Web UI on (the shared test server is headless).
    const own = await startOwnHypervisor({ taskQueue: `hv-e2e-webui-${process.pid}`, withUi: true });
    cleanups.push(() => own.stop());
    server = own.server;
    ui = server.uiUrl;
    const { hv } = own;
    const session = await hv.createSession({ sessionId, creatorDid: 'did:mesh:admin' });
    await session.join({ agentDid: alpha, sigmaRaw: 0.85, actions: ACTIONS });
    await session.join({ agentDid: beta, sigmaRaw: 0.8, actions: ACTIONS });
    await session.activate();
    // Another session on the same server, which the filters must leave out.
    await hv.createSession({ sessionId: otherSessionId, creatorDid: 'did:mesh:admin' });

    const saga = await session.startSaga({
      sagaId,
      description: 'refund an order',
      steps: [
        { actionId: 'draft', agentDid: alpha, handler: 'test.step' },
        { actionId: 'publish', agentDid: beta, handler: 'test.step' },
        { actionId: 'notify', agentDid: alpha, handler: 'test.step', input: { failAttempts: -1 }, retry: { maximumAttempts: 2, initialIntervalSeconds: 0.1 } },
      ],
    });
    const result = await saga.result();
    assert.equal(result.saga.state, 'compensated');
    assert.deepEqual(result.compensationOrder, ['step-2', 'step-1']);

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
    // Everything started above is stopped, in reverse order, even if a step failed.
    for (const cleanup of cleanups.reverse()) await cleanup().catch((err) => console.error(`cleanup: ${(err as Error).message}`));
  });

  const workflowLink = (workflowId: string) => page.getByRole('link', { name: workflowId, exact: true });

  it('lists only the session\'s workflows when filtered by HvSessionId in the URL', async () => {
    await page.goto(`${ui}/namespaces/default/workflows`);
    await seen(workflowLink(otherWid), `${otherWid} in the unfiltered list`);

    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`HvSessionId="${sessionId}"`)}`);
    await seen(workflowLink(sessionWid), `the session ${sessionWid} in the filtered list`);
    await seen(workflowLink(sagaWid), `the saga ${sagaWid} in the filtered list`);
    await seen(page.getByText(`"${sessionId}"`), 'the HvSessionId filter chip');
    await seen(page.getByText(/^\s*2 Workflows\s*$/), 'the count "2 Workflows"');
    assert.equal(await workflowLink(otherWid).count(), 0, 'the other session is filtered out');
    await screenshot(page, 'webui-01-workflows-by-session');
  });

  it('narrows the list to the compensated saga with a query typed into the query box', async () => {
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`HvSessionId="${sessionId}"`)}`);
    await seen(workflowLink(sessionWid), 'the session in the list');
    await page.getByTestId('toggle-manual-query').click();
    const query = `HvSessionId="${sessionId}" AND HvSagaState="compensated" AND HvAgentDids="${beta}"`;
    await page.getByTestId('manual-search-input').fill(query);
    await page.getByTestId('manual-search-button').click();
    await workflowLink(sessionWid).waitFor({ state: 'detached' });
    await seen(workflowLink(sagaWid), 'the compensated saga');
    await seen(page.getByText(/^\s*1 Workflow\s*$/), 'the count "1 Workflow"');
    assert.match(decodeURIComponent(page.url()), /HvSagaState="compensated"/);
    await screenshot(page, 'webui-02-query-compensated-sagas');
  });

  it('shows the compensation activities with their step summaries in the saga\'s history', async () => {
    await page.goto(`${ui}/namespaces/default/workflows?query=${encodeURIComponent(`HvSagaState="compensated" AND HvSessionId="${sessionId}"`)}`);
    await workflowLink(sagaWid).click();
    await seen(page.getByRole('heading', { name: sagaWid }), 'the saga\'s page');
    await seen(page.getByText('Completed').first(), 'the status');
    for (const summary of [`draft by ${alpha}`, `publish by ${beta}`, `notify by ${alpha}`, `undo publish by ${beta}`, `undo draft by ${alpha}`]) {
      await seen(page.getByText(summary), `the activity summary "${summary}"`);
    }
    await seen(page.getByText(`compensateStep • undo publish by ${beta}`), 'the compensation of step 2 in the timeline');
    await seen(page.getByText(`compensateStep • undo draft by ${alpha}`), 'the compensation of step 1 in the timeline');
    // Tall enough for the whole timeline: three steps, the retried failure, two compensations.
    await page.setViewportSize({ width: 1600, height: 2000 });
    await screenshot(page, 'webui-03-saga-history');
    await page.setViewportSize({ width: 1600, height: 1000 });
  });

  it('shows the summary, each activity by its summary and the current-details card', async () => {
    await page.goto(`${ui}/namespaces/default/workflows/${sagaWid}`);
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await seen(page.getByRole('heading', { name: 'Events with Metadata' }), 'the events with metadata');

    const summaryFrame = page.locator('xpath=//h3[normalize-space()="Summary"]/following::iframe[1]').contentFrame();
    await seen(summaryFrame.getByText(`Saga ${sagaId} of session ${sessionId}: refund an order`), 'the saga\'s static summary');

    // The list below the "Events with Metadata" heading: one row per activity, by its summary, with its status.
    const events = page.locator('xpath=//h3[normalize-space()="Events with Metadata"]/../following-sibling::*[1]');
    const rows = [
      [`draft by ${alpha}`, 'Completed'], [`publish by ${beta}`, 'Completed'], [`notify by ${alpha}`, 'Failed'],
      [`undo publish by ${beta}`, 'Completed'], [`undo draft by ${alpha}`, 'Completed'],
    ] as const;
    for (const [summary, status] of rows) {
      const row = events.locator('div').filter({ has: page.getByText(summary, { exact: true }) }).filter({ hasText: status }).last();
      await seen(row, `the activity "${summary}" as ${status}`);
    }
    const listed = (await events.locator('span').allInnerTexts()).map((t) => t.trim()).filter((t) => t.includes(' by '));
    assert.deepEqual(listed, rows.map(([summary]) => summary), 'the activities in order: three steps, then the compensations in reverse');

    const details = page.locator('xpath=//h3[normalize-space()="Current Details"]/following::iframe[1]').contentFrame();
    await seen(details.getByRole('heading', { level: 2, name: `Saga ${sagaId} — compensated` }), 'the current-details heading');
    await seen(details.getByRole('row', { name: `step-1 draft ${alpha} compensated 1` }), 'step 1 compensated in the details table');
    await seen(details.getByRole('row', { name: `step-2 publish ${beta} compensated 1` }), 'step 2 compensated in the details table');
    await seen(details.getByRole('row', { name: `step-3 notify ${alpha} failed 2` }), 'step 3 failed after 2 attempts in the details table');
    await seen(details.getByText('Compensated in order: step-2 → step-1'), 'the compensation order');
    await screenshot(page, 'webui-04-saga-user-metadata');
  });

  it('runs the sagaState query from the Queries tab, which shows its description', async () => {
    await page.goto(`${ui}/namespaces/default/workflows/${sagaWid}`);
    await page.getByRole('tab', { name: 'Queries' }).click();
    await page.getByTestId('query-select-button').click();
    const option = page.getByRole('option').filter({ hasText: 'sagaState' });
    await seen(option.getByText('The saga: its state, each step with attempts and errors, approvals and compensation order.'), 'the query\'s description');
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
    assert.deepEqual(snapshot.compensationOrder, ['step-2', 'step-1']);
    assert.deepEqual(snapshot.saga.steps.map((st: { state: string }) => st.state), ['compensated', 'compensated', 'failed']);
  });
});
