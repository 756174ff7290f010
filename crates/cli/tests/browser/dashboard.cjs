// Drives pgharbor's dashboard in Debian's headless Chromium with playwright-core.
// Protocol with the Rust test (crates/cli/tests/integration/health.rs):
//   prints "UP" once the page shows server "main" as up (screenshots taken),
//   waits for a line on stdin (the test has stopped the server),
//   then waits for the page to refresh itself and show "main" as down,
//   prints "DOWN" and "REDIS UP", takes a screenshot and exits 0.
// Environment: PLAYWRIGHT_CORE (module directory), CHROMIUM, DASHBOARD_URL, ARTIFACTS.
'use strict';
const path = require('path');
const readline = require('readline');
const { chromium } = require(process.env.PLAYWRIGHT_CORE);

const url = process.env.DASHBOARD_URL;
const artifacts = process.env.ARTIFACTS;

function fail(message) {
  console.error(message);
  process.exit(1);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    await page.goto(url);
    const up = page.locator('article[data-server="main"][data-state="up"]');
    await up.waitFor({ timeout: 30000 });
    const badge = (await up.locator('.badge').innerText()).trim();
    if (badge !== 'UP') fail(`badge of main says ${JSON.stringify(badge)}`);
    if (!(await page.title()).startsWith('pgharbor')) fail(`title: ${await page.title()}`);
    if ((await page.locator('script').count()) !== 0) fail('the page has scripts');
    await page.screenshot({ path: path.join(artifacts, 'dashboard-up.png'), fullPage: true });

    // Readable on a phone: nothing wider than the screen.
    const phone = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
    await phone.goto(url);
    await phone.locator('article[data-server="main"]').waitFor({ timeout: 30000 });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) fail(`the page is ${overflow}px wider than a 390px phone screen`);
    await phone.screenshot({ path: path.join(artifacts, 'dashboard-phone.png'), fullPage: true });
    await phone.close();

    console.log('UP');
    const rl = readline.createInterface({ input: process.stdin });
    await new Promise((resolve) => rl.once('line', resolve));
    rl.close();

    // No reload from here: the page's own <meta http-equiv="refresh"> must bring the news.
    const down = page.locator('article[data-server="main"][data-state="down"]');
    await down.waitFor({ timeout: 60000 });
    const downBadge = (await down.locator('.badge').innerText()).trim();
    if (downBadge !== 'DOWN') fail(`badge of main says ${JSON.stringify(downBadge)}`);
    const problem = await page.locator('#problems li.critical[data-server="main"]').innerText();
    if (!problem.includes('down')) fail(`no "down" problem for main: ${problem}`);
    console.log('DOWN');
    if ((await page.locator('article[data-server="cache"][data-state="up"]').count()) === 1) {
      console.log('REDIS UP');
    }
    await page.screenshot({ path: path.join(artifacts, 'dashboard-down.png'), fullPage: true });
  } finally {
    await browser.close();
  }
}

main().catch((e) => fail(e && e.stack ? e.stack : String(e)));
