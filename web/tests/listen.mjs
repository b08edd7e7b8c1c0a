// End-to-end test of the listening page in Debian's headless Chromium (playwright-core drives it), against a
// running `mess serve`: the main view links to it; a triplet and its question are shown; the answer buttons
// stay disabled until the reference and both candidates were played; the keyboard plays each passage (the
// player stays inside the passage) and answers; a second answer by mouse; the progress count; the export
// holds both answers with the listener id and the time taken; a reload keeps the listener id (localStorage)
// and the count. Saves a screenshot.
// Usage: node tests/listen.mjs BASE_URL SCREENSHOT.png LISTENER_ID   (exit 0 when every step passed)
// The last line of output is `listen-result: {"ok", "steps", "facts", "screenshot"}` (one line of JSON).
import { launchChromium, stepper } from './harness.mjs';

const [base, screenshot, listener] = process.argv.slice(2);
if (!base || !screenshot || !listener) {
  console.error('usage: node tests/listen.mjs BASE_URL SCREENSHOT.png LISTENER_ID');
  process.exit(1);
}
const browser = await launchChromium();
const steps = [];
const facts = {};
const step = stepper(steps);
const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(String(e)));
await page.addInitScript((id) => {
  if (!localStorage.getItem('mess.listener')) localStorage.setItem('mess.listener', id);
}, listener);

const ready = () => page.waitForSelector('body[data-listen="ready"]', { timeout: 15000 });
const triplet = () => page.evaluate(() => ['anchor', 'a', 'b'].map((k) => document.querySelector(`#passage-${k}`).dataset.id));
const disabled = () => page.evaluate(() => ['a', 'b'].map((k) => document.querySelector(`#choose-${k}`).disabled));
const judged = () => page.evaluate(() => Number(document.body.dataset.judged ?? -1));
// Plays one passage with `key` and checks that the player moved inside it.
async function playWith(key, which) {
  await page.keyboard.press(key);
  await page.waitForFunction((w) => document.querySelector(`#play-${w}`).getAttribute('aria-pressed') === 'true', which, { timeout: 10000 });
  const at = await page.waitForFunction(() => {
    const el = document.querySelector('#audio');
    return !el.paused && el.currentTime > 0 ? el.currentTime : null;
  }, null, { timeout: 10000 }).then((h) => h.jsonValue());
  return at;
}
let failed = false;
let first = null;
try {
  await step('the main view links to the listening test', async () => {
    await page.goto(base, { waitUntil: 'domcontentloaded' });
    const href = await page.getAttribute('#show-listen', 'href');
    if (href !== '/listen.html') throw new Error(`Listen link: ${href}`);
    await page.click('#show-listen');
    await page.waitForURL(/\/listen\.html/, { timeout: 10000 });
    await ready();
  });
  await step('a triplet and its question are shown', async () => {
    const question = await page.textContent('#question');
    if (!/closer to the reference/.test(question)) throw new Error(`question: ${question}`);
    first = await triplet();
    if (new Set(first).size !== 3 || first.some((id) => !id)) throw new Error(`triplet ${first}`);
    if ((await page.inputValue('#listener')) !== listener) throw new Error('the listener id from localStorage');
    if ((await judged()) !== 0) throw new Error(`progress ${await judged()}`);
    facts.question = question;
    facts.first = first;
  });
  await step('answers wait until the three passages were played', async () => {
    if (!(await disabled()).every(Boolean)) throw new Error('the answer buttons are enabled before listening');
    await page.keyboard.press('a');  // ignored: nothing played yet
    if ((await judged()) !== 0) throw new Error('an answer was taken before listening');
  });
  await step('the keyboard plays the passages and answers', async () => {
    const spans = await page.evaluate(async () => {
      const p = new URLSearchParams(location.search);
      const res = await fetch(`/api/listen/next?listener=${encodeURIComponent(document.querySelector('#listener').value)}&draw=0${p.has('seed') ? `&seed=${p.get('seed')}` : ''}`);
      const t = await res.json();
      return Object.fromEntries(['anchor', 'a', 'b'].map((k) => [k, [t[k].start_sec, t[k].end_sec]]));
    });
    facts.positions = {};
    for (const [key, which] of [['r', 'anchor'], ['1', 'a'], ['2', 'b']]) {
      const at = await playWith(key, which);
      const [s, e] = spans[which];
      if (at < s - 0.05 || at > e + 0.3) throw new Error(`${which} plays at ${at} s, outside its passage ${s}-${e}`);
      facts.positions[which] = { at, start: s, end: e };
    }
    await page.keyboard.press(' ');  // stop
    if ((await disabled()).some(Boolean)) throw new Error('the answer buttons stay disabled after listening');
    await page.waitForTimeout(50);
    await page.keyboard.press('a');
    await page.waitForFunction(() => document.body.dataset.judged === '1', null, { timeout: 10000 });
    await ready();
    const second = await triplet();
    if (JSON.stringify(second) === JSON.stringify(first)) throw new Error('the same triplet again after an answer');
  });
  await step('a mouse answer', async () => {
    for (const k of ['anchor', 'a', 'b']) {
      await page.click(`#play-${k}`);
      await page.waitForFunction((w) => document.querySelector(`#play-${w}`).getAttribute('aria-pressed') === 'true', k, { timeout: 10000 });
    }
    await page.click('#play-b');  // stop
    await page.click('#choose-b');
    await page.waitForFunction(() => document.body.dataset.judged === '2', null, { timeout: 10000 });
    await ready();
    facts.progress = await page.textContent('#progress');
    if (!/2 judged/.test(facts.progress) || !/2 in this session/.test(facts.progress)) throw new Error(`progress: ${facts.progress}`);
  });
  await step('the export holds both answers', async () => {
    const href = await page.getAttribute('#export', 'href');
    const csv = await page.evaluate(async (h) => (await fetch(h)).text(), href);
    const lines = csv.trim().split('\n');
    if (lines[0] !== 'anchor,a,b,choice,aspect,listener,time_ms,sampler,judged_at') throw new Error(`header ${lines[0]}`);
    const rows = lines.slice(1).map((l) => l.split(','));
    if (rows.length !== 2) throw new Error(`${rows.length} rows: ${csv}`);
    if (rows[0].slice(0, 3).join() !== first.join()) throw new Error(`first row ${rows[0]} is not the first triplet ${first}`);
    if (rows.map((r) => r[3]).join() !== 'a,b' || rows.some((r) => r[5] !== listener || !(Number(r[6]) > 0)))
      throw new Error(`rows ${JSON.stringify(rows)}`);
    facts.export = rows;
  });
  await step('a reload keeps the listener and the count', async () => {
    await page.reload({ waitUntil: 'domcontentloaded' });
    await ready();
    if ((await page.inputValue('#listener')) !== listener || (await judged()) !== 2) throw new Error(`after a reload: ${await page.inputValue('#listener')}, ${await judged()}`);
  });
  if (pageErrors.length) throw new Error(`page errors: ${pageErrors.join('; ')}`);
} catch (e) {
  failed = true;
  console.error(`listen e2e failed: ${e?.message ?? e}`);
} finally {
  await page.screenshot({ path: screenshot, fullPage: true }).catch(() => undefined);
  await browser.close();
}
console.log(`listen-result: ${JSON.stringify({ ok: !failed, steps, facts, screenshot })}`);
process.exit(failed ? 1 : 0);
