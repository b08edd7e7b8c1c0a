// End-to-end test of the web UI in Debian's headless Chromium (playwright-core drives it):
// load, play, select a region on the waveform, get passage results, move an aspect slider.
// Usage: node tests/e2e.mjs BASE_URL SCREENSHOT.png   (exit 0 when every step passed)
import { chromium } from 'playwright-core';

const [base, screenshot] = process.argv.slice(2);
if (!base || !screenshot) {
  console.error('usage: node tests/e2e.mjs BASE_URL SCREENSHOT.png');
  process.exit(1);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--autoplay-policy=no-user-gesture-required', '--no-sandbox', '--mute-audio'],
});
const steps = [];
const step = async (name, fn) => {
  const t0 = Date.now();
  try {
    await fn();
    steps.push({ name, ok: true, ms: Date.now() - t0 });
  } catch (e) {
    steps.push({ name, ok: false, error: String(e?.message ?? e) });
    throw e;
  }
};
let failed = false;
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const consoleErrors = [];
page.on('pageerror', (e) => consoleErrors.push(String(e)));
try {
  await step('load', async () => {
    await page.goto(base, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    const n = await page.locator('#track-list li').count();
    if (n < 2) throw new Error(`expected tracks in the browser, got ${n}`);
  });
  await step('search narrows the list', async () => {
    const before = await page.locator('#track-list li').count();
    const first = (await page.locator('#track-list li').first().getAttribute('data-track')) ?? '';
    await page.fill('#search', first);
    await page.waitForFunction((b) => document.querySelectorAll('#track-list li').length < b, before, { timeout: 5000 });
    await page.fill('#search', '');
    await page.waitForFunction((b) => document.querySelectorAll('#track-list li').length === b, before, { timeout: 5000 });
  });
  await step('open a track: waveform and similar recordings', async () => {
    await page.locator('#track-list li').nth(1).click();
    await page.waitForSelector('#player:not([hidden])');
    await page.waitForFunction(() => Number(document.body.dataset.results ?? 0) > 0, null, { timeout: 10000 });
    await page.waitForFunction(() => {
      const host = document.querySelector('#waveform > div');
      return !!host?.shadowRoot?.querySelector('canvas');
    }, null, { timeout: 10000 });
  });
  await step('play', async () => {
    await page.click('#play');
    await page.waitForFunction(() => {
      const a = document.querySelector('audio');
      return !!a && !a.paused && a.currentTime > 0.3;
    }, null, { timeout: 15000 });
    await page.click('#play');
    await page.waitForFunction(() => document.querySelector('audio')?.paused === true, null, { timeout: 5000 });
  });
  await step('drag a region: passage results', async () => {
    const box = await page.locator('#waveform').boundingBox();
    const y = box.y + box.height / 2;
    const passages = page.waitForResponse((r) => r.url().includes('/passages?') && r.status() === 200, { timeout: 10000 });
    await page.mouse.move(box.x + box.width * 0.3, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.4, y, { steps: 8 });
    await page.mouse.up();
    await passages;
    await page.waitForFunction(() => document.querySelector('#results-title')?.textContent?.startsWith('Passages like'), null, { timeout: 5000 });
    await page.waitForFunction(() => document.querySelectorAll('#results li[data-start]').length > 0, null, { timeout: 10000 });
  });
  await step('move an aspect slider: results re-rank', async () => {
    const slider = page.locator('#aspects input[type=range]').first();
    if ((await slider.count()) === 0) throw new Error('no aspect sliders (the index has no validated aspects)');
    const aspect = await slider.getAttribute('data-aspect');
    const reranked = page.waitForResponse((r) => r.url().includes('aspects=') && r.url().includes(aspect) && r.status() === 200, { timeout: 10000 });
    await slider.fill('0.8');
    await reranked;
    await page.waitForFunction((a) => document.querySelector('#results-status')?.textContent?.includes(a), aspect, { timeout: 5000 });
    if ((await page.locator('#results li').count()) === 0) throw new Error('no results after re-ranking');
  });
  await step('play a result from its moment', async () => {
    const hit = page.locator('#results li[data-start]').first();
    const track = await hit.getAttribute('data-track');
    await hit.locator('button').click();
    await page.waitForFunction((t) => document.querySelector('#track-list li.active')?.getAttribute('data-track') === t ||
      document.querySelector('#now-meta')?.textContent?.includes(t), track, { timeout: 10000 });
  });
  await page.waitForSelector('body[data-busy="false"]', { timeout: 10000 });
  if (consoleErrors.length) throw new Error(`page errors: ${consoleErrors.join('; ')}`);
} catch (e) {
  failed = true;
  console.error(`e2e failed: ${e?.message ?? e}`);
} finally {
  await page.screenshot({ path: screenshot, fullPage: true }).catch(() => undefined);
  await browser.close();
}
console.log(JSON.stringify({ ok: !failed, steps, screenshot }, null, 1));
process.exit(failed ? 1 : 0);
