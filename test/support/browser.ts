/**
 * Debian's Chromium driven by playwright-core (no browser download), headless, against the service
 * started in-process. Screenshots go to test-results/ (gitignored) so a person can look at each screen.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, Browser, Page } from 'playwright-core';

const root = join(__dirname, '..', '..');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const shots = join(root, 'test-results');

/**
 * Builds the pages when web/ changed since the last build (the same check `npm start` makes). Two
 * suites in parallel workers must not both build (Vite empties dist/web first): the first takes a
 * lock directory, the other waits for it to go.
 */
export async function buildPages(): Promise<void> {
  const lock = join(root, 'dist', '.web-build.lock');
  mkdirSync(join(root, 'dist'), { recursive: true });
  for (let waited = 0; ; waited += 200) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      /* another worker is building */
    }
    if (waited > 120_000) throw new Error(`stale lock ${lock}: remove it`);
    await new Promise((r) => setTimeout(r, 200));
  }
  try {
    const r = spawnSync(process.execPath, [join(root, 'scripts', 'ensure.js'), '--web'], {
      cwd: root,
      stdio: 'inherit',
    });
    if (r.status !== 0) throw new Error('building the pages failed');
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (.ci/run does)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

export async function newPage(browser: Browser, size = { width: 1024, height: 768 }): Promise<Page> {
  const ctx = await browser.newContext({ viewport: size, locale: 'zh-CN' });
  const page = await ctx.newPage();
  page.setDefaultTimeout(15_000);
  return page;
}

export async function shot(page: Page, name: string): Promise<void> {
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

export async function signIn(page: Page, url: string, key: string): Promise<void> {
  await page.goto(url);
  await page.getByTestId('login-key').fill(key);
  await page.getByTestId('login-submit').click();
}
