/**
 * Debian's Chromium driven by playwright-core (no browser is downloaded), and
 * the screenshots folder the e2e tests write to (ignored by git).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { PROJECT_ROOT } from '../../../worker/config';
import { CHROMIUM_ARGS, requireChromium } from '../../../scripts/e2eTools';

export const SCREENSHOT_DIR = path.join(PROJECT_ROOT, '.artifacts', 'screenshots');

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: requireChromium(), args: CHROMIUM_ARGS, headless: true, timeout: 60_000 });
}

/** Saves a full-page screenshot as .artifacts/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** Waits (Playwright's auto-wait) until the locator is visible; fails naming what was expected. */
export async function seen(locator: Locator, what: string, timeout = 30_000): Promise<Locator> {
  try {
    await locator.first().waitFor({ state: 'visible', timeout });
  } catch (err) {
    throw new Error(
      `the page did not show ${what} within ${timeout / 1000} s (${(err as Error).message.split('\n')[0]})`,
    );
  }
  return locator;
}
