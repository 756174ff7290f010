// Drives pgharbor's dashboard in Debian's headless Chromium with playwright-core.
// Protocol with the Rust test (crates/cli/tests/integration/health.rs):
//   checks that a browser without credentials gets 401 and no page,
//   logs in (Basic auth with the token as the password, as the browser's login prompt sends it),
//   checks that the page's style applies under its Content-Security-Policy and nothing is blocked,
//   prints "UP" once the page shows server "main" as up (screenshots taken),
//   waits for a line on stdin (the test has stopped the server),
//   then waits for the page to refresh itself and show "main" as down,
//   prints "DOWN" and "REDIS UP", takes a screenshot and exits 0.
// Environment: PLAYWRIGHT_CORE (module directory), CHROMIUM, DASHBOARD_URL, DASHBOARD_TOKEN, ARTIFACTS.
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
    // Without credentials: 401, nothing of the dashboard.
    // Headless Chromium has no login prompt: it ends the navigation with ERR_INVALID_AUTH_CREDENTIALS.
    const anonymous = await browser.newPage();
    const refused = await anonymous.goto(url).catch((e) => e);
    if (refused instanceof Error) {
      if (!refused.message.includes('ERR_INVALID_AUTH_CREDENTIALS')) throw refused;
    } else if (refused.status() !== 401) {
      fail(`without credentials: HTTP ${refused.status()}`);
    }
    if ((await anonymous.locator('article[data-server]').count()) !== 0) fail('the dashboard shows without credentials');
    await anonymous.close();

    const login = { httpCredentials: { username: 'operator', password: process.env.DASHBOARD_TOKEN } };
    const context = await browser.newContext({ ...login, viewport: { width: 1200, height: 900 } });
    const blocked = [];
    const page = await context.newPage();
    page.on('console', (m) => { if (/Content Security Policy|Refused to/i.test(m.text())) blocked.push(m.text()); });
    const answer = await page.goto(url);
    if (answer.status() !== 200) fail(`logged in: HTTP ${answer.status()}`);
    const csp = answer.headers()['content-security-policy'] || '';
    if (!csp.startsWith("default-src 'none'")) fail(`Content-Security-Policy: ${csp}`);
    const up = page.locator('article[data-server="main"][data-state="up"]');
    await up.waitFor({ timeout: 30000 });
    const badge = (await up.locator('.badge').innerText()).trim();
    if (badge !== 'UP') fail(`badge of main says ${JSON.stringify(badge)}`);
    if (!(await page.title()).startsWith('pgharbor')) fail(`title: ${await page.title()}`);
    if ((await page.locator('script').count()) !== 0) fail('the page has scripts');
    // The inline style applies (its hash is in the policy): the body has the page's grey.
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    if (background !== 'rgb(246, 248, 250)') fail(`the style did not apply (body background ${background}); blocked: ${blocked}`);
    if (blocked.length) fail(`the browser blocked: ${blocked.join(' | ')}`);
    await page.screenshot({ path: path.join(artifacts, 'dashboard-up.png'), fullPage: true });

    // Readable on a phone: nothing wider than the screen.
    const phoneContext = await browser.newContext({ ...login, viewport: { width: 390, height: 844 }, isMobile: true, deviceScaleFactor: 2 });
    const phone = await phoneContext.newPage();
    await phone.goto(url);
    await phone.locator('article[data-server="main"]').waitFor({ timeout: 30000 });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 0) fail(`the page is ${overflow}px wider than a 390px phone screen`);
    await phone.screenshot({ path: path.join(artifacts, 'dashboard-phone.png'), fullPage: true });
    await phoneContext.close();

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
