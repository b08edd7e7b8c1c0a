// End-to-end test of the web UI in Debian's headless Chromium (playwright-core drives it):
// load (with its favicon), the whole search placeholder, play, the waveform normalised to the track's
// loudest bucket, select a region on the waveform, passage results one per recording (and every passage
// when grouping is off), move an aspect slider, the state in the URL (Back/Forward, a reload and a fresh
// page restore it), play a result from its moment; then, in a second page, the comparison view: opened from
// the player (that track the reference) and from the header, choose a work, its curves drawn with axes, a click in one waveform moves the other player to the aligned moment,
// a passage dragged on the curves ranks who takes longest, the URL restores it (screenshot of its own), and
// a comparison the server refuses says why; and the open track's structure drawn on its waveform (sections,
// climax, cadences, key strip, at the times /api/tracks/{id}/structure gives) with "find similar climaxes"
// answering only climaxes (screenshot SCREENSHOT with -structure before .png).
// Usage: node tests/e2e.mjs BASE_URL SCREENSHOT.png [COMPARE_SCREENSHOT.png]   (exit 0 when every step passed;
// the comparison's screenshot defaults to SCREENSHOT with -compare before .png)
// The last line of output is `e2e-result: {"ok", "steps", "facts", "screenshot"}` (one line of JSON):
// facts are the measurements the steps checked, for the C++ test to assert on as well.
import { launchChromium, stepper } from './harness.mjs';

const [base, screenshot, compareArg] = process.argv.slice(2);
const compareShot = compareArg ?? screenshot?.replace(/(\.png)?$/, '-compare.png');
const structureShot = screenshot?.replace(/(\.png)?$/, '-structure.png');
if (!base || !screenshot) {
  console.error('usage: node tests/e2e.mjs BASE_URL SCREENSHOT.png');
  process.exit(1);
}
const browser = await launchChromium();
const steps = [];
const step = stepper(steps);
let failed = false;
const facts = {};
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const consoleErrors = [];
page.on('pageerror', (e) => consoleErrors.push(String(e)));
const favicons = [];
page.on('response', (r) => {
  if (new URL(r.url()).pathname.startsWith('/favicon')) favicons.push({ url: r.url(), status: r.status(), type: r.headers()['content-type'] ?? '' });
});

const params = () => new URL(page.url()).searchParams;
const waitForParams = (want, timeout = 5000) => page.waitForFunction((w) => {
  const p = new URLSearchParams(location.search);
  return Object.entries(w).every(([k, v]) => (v === null ? !p.has(k) : p.get(k) === v));
}, want, { timeout });
const resultList = () => page.$$eval('#results li', (lis) => lis.map((li) => `${li.dataset.track}@${li.dataset.start ?? ''}`));
const settled = () => page.waitForSelector('body[data-busy="false"]', { timeout: 10000 });
const distinctTracks = (list) => new Set(list.map((x) => x.split('@')[0])).size === list.length;

// ---- structure: markers on the waveform, a role search -------------------------------------------

async function structureSteps() {
  await step('structure markers on the waveform', async () => {
    await page.waitForSelector('body[data-structure="shown"]', { timeout: 10000 });
    const track = params().get('track');
    const s = await page.evaluate(async (t) => (await fetch(`/api/tracks/${encodeURIComponent(t)}/structure`)).json(), track);
    const drawn = await page.evaluate(() => {
      const overlay = document.querySelector('#structure-overlay').getBoundingClientRect();
      const at = (m) => (m.getBoundingClientRect().left - overlay.left) / overlay.width;
      return {
        sections: [...document.querySelectorAll('#structure-overlay .section')].map((e) => e.textContent),
        climax: [...document.querySelectorAll('#structure-overlay .marker.climax')].map((m) => ({ time: Number(m.dataset.time), x: at(m) })),
        cadences: document.querySelectorAll('#structure-overlay .marker.cadence').length,
        keys: [...document.querySelectorAll('#key-strip .key-span')].map((e) => e.textContent),
        width: overlay.width,
      };
    });
    facts.structure = { track, sections: drawn.sections, keys: drawn.keys, cadences: drawn.cadences, climax: drawn.climax[0] ?? null, duration: s.duration_sec };
    if (JSON.stringify(drawn.sections) !== JSON.stringify(s.sections.map((x) => x.label))) throw new Error(`sections ${drawn.sections} for ${JSON.stringify(s.sections)}`);
    if (JSON.stringify(drawn.keys) !== JSON.stringify(s.keys.map((k) => k.key))) throw new Error(`key strip ${drawn.keys} for ${JSON.stringify(s.keys)}`);
    if (drawn.cadences !== s.cadences.length) throw new Error(`${drawn.cadences} cadence markers for ${s.cadences.length} cadences`);
    if (!s.climax || drawn.climax.length !== 1) throw new Error(`one climax marker expected: ${JSON.stringify(drawn.climax)}`);
    const want = s.climax.time / s.duration_sec;
    if (Math.abs(drawn.climax[0].x - want) * drawn.width > 3) throw new Error(`climax marker at ${drawn.climax[0].x} of the width, expected ${want}`);
  });
  await step('find similar climaxes', async () => {
    await page.click('#role-climax');
    await page.waitForFunction(() => document.body.dataset.busy === 'false' && document.querySelector('#results-title')?.textContent?.startsWith('Similar climaxes'),
      null, { timeout: 10000 });
    const roles = await page.$$eval('#results li', (lis) => lis.map((li) => li.dataset.role ?? ''));
    facts.climax_results = roles.length;
    if (roles.length === 0 || roles.some((r) => r !== 'climax')) throw new Error(`every result should hold a climax: ${roles}`);
    await page.screenshot({ path: structureShot, fullPage: true });
  });
}

// ---- the comparison view (a page of its own, so that the search page's screenshot shows the search) ----

// The other column of a path [[a, b], ...] at t of column `from` (as the page maps times).
function mapTime(path, from, t) {
  const to = 1 - from;
  if (t <= path[0][from]) return path[0][to];
  for (let k = 1; k < path.length; ++k)
    if (path[k][from] >= t) {
      const a = path[k - 1], b = path[k], span = b[from] - a[from];
      return span > 0 ? a[to] + ((b[to] - a[to]) * (t - a[from])) / span : b[to];
    }
  return path[path.length - 1][to];
}

async function compareSteps() {
  const cmp = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  cmp.on('pageerror', (e) => consoleErrors.push(String(e)));
  const ready = () => cmp.waitForFunction(() => document.body.dataset.compare === 'ready', null, { timeout: 20000 });
  const work = '01-arpeggio';  // played at 120, then at 80 BPM: B's seconds are 1.5 × A's over its first bars
  let answer = null, shot = false;
  try {
    const rowTracks = () => cmp.$$eval('#performances .take', (els) => els.map((e) => e.dataset.track));
    await step('the player offers to compare the performances of its work', async () => {
      await cmp.goto(`${base}?track=${work}__v01`, { waitUntil: 'domcontentloaded' });
      await cmp.waitForSelector('#compare-work:not([hidden])', { timeout: 15000 });
      await cmp.click('#compare-work');
      await cmp.waitForSelector('#compare-view:not([hidden])');
      await ready();
      if (!(await cmp.isHidden('#search-view')) || !(await cmp.isHidden('header .filters'))) throw new Error('the search view and its filters should be hidden');
      const rows = await rowTracks();
      const takes = new URLSearchParams(new URL(cmp.url()).search).get('takes');
      if (rows[0] !== `${work}__v01` || takes !== `${work}__v01,${work}__v00`) throw new Error(`the open track should be the reference: rows ${rows}, takes ${takes}`);
    });
    await step('open the comparison view and choose a work', async () => {
      await cmp.click('#show-search');
      await cmp.waitForSelector('#search-view:not([hidden])');
      await cmp.click('#show-compare');  // the work shown last
      await cmp.waitForSelector('#compare-view:not([hidden])');
      await cmp.waitForFunction((w) => new URLSearchParams(location.search).get('compare') === w, work, { timeout: 5000 });
      await cmp.selectOption('#work', '03-march');
      await cmp.waitForFunction(() => document.querySelector('.take')?.dataset.track === '03-march__v00', null, { timeout: 20000 });
      await ready();
      const full = cmp.waitForResponse((r) => r.url().includes(`/api/works/${work}/compare?`) && !new URL(r.url()).searchParams.has('start'), { timeout: 20000 });
      await cmp.selectOption('#work', work);
      answer = await (await full).json();
      await ready();
      await cmp.waitForFunction((w) => new URLSearchParams(location.search).get('compare') === w, work, { timeout: 5000 });
      const rows = await rowTracks();
      if (JSON.stringify(rows) !== JSON.stringify(answer.performances.map((p) => p.track_id))) throw new Error(`rows ${rows} for ${answer.performances.map((p) => p.track_id)}`);
      await cmp.waitForFunction(() => [...document.querySelectorAll('#performances .take-wave > div')].every((h) => h.shadowRoot?.querySelector('canvas')), null, { timeout: 10000 });
    });
    await step('the tempo and loudness curves are drawn with their axes', async () => {
      const c = await cmp.evaluate(() => {
        const svg = document.querySelector('#curves svg');
        const curves = [...svg.querySelectorAll('path.curve')].map((p) => {
          const box = p.getBBox();
          return { kind: p.dataset.kind, track: p.dataset.track, points: (p.getAttribute('d').match(/[ML]/g) ?? []).length, height: box.height, width: box.width };
        });
        return { curves, titles: [...svg.querySelectorAll('.axis-title')].map((t) => t.textContent), ticks: svg.querySelectorAll('.tick').length, width: svg.clientWidth };
      });
      facts.compare_curves = { paths: c.curves.length, points: Math.min(...c.curves.map((x) => x.points)), titles: c.titles, ticks: c.ticks, times: answer.times.length };
      if (c.curves.length !== 2 * answer.performances.length) throw new Error(`expected a tempo and a loudness curve per performance: ${JSON.stringify(c.curves)}`);
      if (c.curves.some((x) => x.points !== answer.times.length || x.width < c.width * 0.8)) throw new Error(`curves should span the chart, one point per time: ${JSON.stringify(c)}`);
      const slow = c.curves.find((x) => x.kind === 'tempo' && x.track === answer.performances[1].track_id);
      if (!(slow.height > 10)) throw new Error(`the slower take's tempo curve should vary: ${JSON.stringify(slow)}`);
      for (const t of ['Tempo', 'Loudness', 'time in the reference'])
        if (!c.titles.some((x) => x.includes(t))) throw new Error(`no axis title '${t}': ${c.titles}`);
      if (c.ticks < 8) throw new Error(`too few tick labels: ${c.ticks}`);
    });
    await step('a click in one waveform moves the other player to the aligned moment', async () => {
      const other = answer.performances[1].track_id, ref = answer.performances[0].track_id;
      const box = await cmp.locator(`.take[data-track="${other}"] .take-wave`).boundingBox();
      await cmp.mouse.click(box.x + box.width * 0.5, box.y + box.height / 2);
      await cmp.waitForFunction((t) => Number(document.querySelector(`.take[data-track="${t}"]`).dataset.time) > 0, other, { timeout: 5000 });
      const clicked = Number(await cmp.getAttribute(`.take[data-track="${other}"]`, 'data-time'));
      const expected = mapTime(answer.performances[1].path, 1, clicked);
      await cmp.waitForFunction(([t, want]) => Math.abs(Number(document.querySelector(`.take[data-track="${t}"]`).dataset.time) - want) < 0.06, [ref, expected], { timeout: 5000 });
      const moved = Number(await cmp.getAttribute(`.take[data-track="${ref}"]`, 'data-time'));
      const cursor = Number(await cmp.getAttribute('#curves svg', 'data-cursor'));
      facts.compare_click = { clicked_track: other, clicked_sec: clicked, moved_track: ref, moved_sec: moved, expected_sec: expected, chart_cursor_sec: cursor };
      if (Math.abs(expected - clicked) < 0.5) throw new Error(`the takes should differ in tempo here: ${JSON.stringify(facts.compare_click)}`);
      if (Math.abs(cursor - expected) > 0.06) throw new Error(`the chart's cursor should be at the reference's moment: ${JSON.stringify(facts.compare_click)}`);
    });
    await step('drag a passage on the curves: who takes longest', async () => {
      const box = await cmp.locator('#curves svg .plot').first().boundingBox();
      const y = box.y + box.height / 2;
      const timed = cmp.waitForResponse((r) => r.url().includes(`/api/works/${work}/compare?`) && new URL(r.url()).searchParams.has('start') && r.status() === 200, { timeout: 20000 });
      await cmp.mouse.move(box.x + box.width * 0.05, y);
      await cmp.mouse.down();
      await cmp.mouse.move(box.x + box.width * 0.35, y, { steps: 6 });
      await cmp.mouse.up();
      const part = await (await timed).json();
      await ready();
      await cmp.waitForFunction((s) => document.querySelector('#ranking')?.dataset.start === String(s), part.start_sec, { timeout: 5000 });
      const ranking = await cmp.$$eval('#ranking li', (lis) => lis.map((li) => ({ track: li.dataset.track, duration: Number(li.dataset.duration) })));
      const p = new URL(cmp.url()).searchParams;
      facts.compare_ranking = { start: part.start_sec, end: part.end_sec, ranking, url: cmp.url() };
      if (ranking.length !== answer.performances.length || ranking[0].duration < ranking[1].duration) throw new Error(`ranking ${JSON.stringify(ranking)}`);
      if (ranking[0].track !== answer.performances[1].track_id) throw new Error(`the slower take should take longest: ${JSON.stringify(ranking)}`);
      if (Number(p.get('from')) !== part.start_sec || Number(p.get('to')) !== part.end_sec) throw new Error(`the URL should hold the passage: ${cmp.url()}`);
      if (!(await cmp.textContent('#ranking-title')).includes('of the reference')) throw new Error('the ranking should name its passage');
    });
    await step('the URL restores the comparison', async () => {
      const url = cmp.url();
      await cmp.reload({ waitUntil: 'domcontentloaded' });
      await ready();
      await cmp.waitForFunction(() => document.querySelectorAll('#ranking li').length > 1 && document.querySelectorAll('#curves path.curve').length > 0, null, { timeout: 10000 });
      const got = await cmp.evaluate(() => ({
        url: location.href,
        work: document.querySelector('#work').value,
        rows: document.querySelectorAll('#performances .take').length,
        start: document.querySelector('#ranking').dataset.start,
        shaded: document.querySelector('#curves .passage')?.getAttribute('visibility'),
        search: document.querySelector('#search-view').hidden,
      }));
      if (got.url !== url || got.work !== work || got.rows !== 2 || got.start !== new URL(url).searchParams.get('from') || got.shaded !== 'visible' || !got.search)
        throw new Error(`after a reload: ${JSON.stringify(got)} (URL ${url})`);
    });
    await cmp.screenshot({ path: compareShot, fullPage: true });
    shot = true;
    await step('Search goes back to the search view', async () => {
      await cmp.click('#show-search');
      await cmp.waitForSelector('#search-view:not([hidden])');
      await cmp.waitForFunction(() => !new URLSearchParams(location.search).has('compare'), null, { timeout: 5000 });
      if (!(await cmp.isHidden('#compare-view'))) throw new Error('the comparison view should be hidden');
    });
    await step('a comparison that cannot be made says why', async () => {
      await cmp.goto(`${base}?compare=${work}&takes=${work}__v00,no-such-track`, { waitUntil: 'domcontentloaded' });
      await cmp.waitForFunction(() => document.body.dataset.compare === 'error', null, { timeout: 15000 });
      const text = await cmp.textContent('#compare-empty');
      facts.compare_error = text;
      if (!(await cmp.isVisible('#compare-empty')) || !text.includes('cannot be compared') || !text.includes('no-such-track'))
        throw new Error(`the reason should be shown: '${text}'`);
    });
  } finally {
    if (!shot) await cmp.screenshot({ path: compareShot, fullPage: true }).catch(() => undefined);
    await cmp.close();
  }
}

try {
  await step('load', async () => {
    await page.goto(base, { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
    const n = await page.locator('#track-list li').count();
    if (n < 2) throw new Error(`expected tracks in the browser, got ${n}`);
    if (page.url() !== base) throw new Error(`a fresh page should keep a bare URL, got ${page.url()}`);
  });
  await step('favicon', async () => {
    const href = await page.getAttribute('link[rel="icon"]', 'href');
    if (href !== '/favicon.svg') throw new Error(`index.html should link /favicon.svg, links ${href}`);
    for (let i = 0; i < 50 && !favicons.some((f) => f.url.endsWith(href)); ++i) await page.waitForTimeout(100);
    const got = favicons.find((f) => f.url.endsWith(href));
    facts.favicon = got ?? { requested: false };
    if (!got) throw new Error(`the browser never requested ${href} (requests: ${JSON.stringify(favicons)})`);
    if (got.status !== 200 || !got.type.startsWith('image/svg+xml')) throw new Error(`${href}: ${got.status} ${got.type}`);
    const size = await page.evaluate(async (u) => {
      const img = new Image();
      img.src = u;
      await img.decode();
      return img.naturalWidth;
    }, href);
    if (!(size > 0)) throw new Error(`${href} does not decode as an image`);
  });
  await step('the search placeholder is fully visible', async () => {
    // An input's scrollWidth ignores its placeholder: measure the placeholder as the value (same font),
    // and measure its text against the content box.
    const m = await page.evaluate(() => {
      const input = document.querySelector('#search');
      const cs = getComputedStyle(input);
      const ctx = document.createElement('canvas').getContext('2d');
      ctx.font = cs.font;
      const old = input.value;
      input.value = input.placeholder;
      const r = {
        placeholder: input.placeholder,
        scrollWidth: input.scrollWidth,
        clientWidth: input.clientWidth,
        textWidth: Math.ceil(ctx.measureText(input.placeholder).width),
        contentWidth: input.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight),
      };
      input.value = old;
      return r;
    });
    facts.placeholder = m;
    if (m.scrollWidth > m.clientWidth || m.textWidth > m.contentWidth)
      throw new Error(`the placeholder '${m.placeholder}' is cut off: ${JSON.stringify(m)}`);
  });
  await step('search narrows the list, in the URL', async () => {
    const before = await page.locator('#track-list li').count();
    const first = (await page.locator('#track-list li').first().getAttribute('data-track')) ?? '';
    await page.fill('#search', first);
    await page.waitForFunction((b) => document.querySelectorAll('#track-list li').length < b, before, { timeout: 5000 });
    await waitForParams({ q: first });
    await page.fill('#search', '');
    await page.waitForFunction((b) => document.querySelectorAll('#track-list li').length === b, before, { timeout: 5000 });
    await waitForParams({ q: null });
  });
  await step('open a track: waveform and similar recordings', async () => {
    const track = await page.locator('#track-list li').nth(1).getAttribute('data-track');
    await page.locator('#track-list li').nth(1).click();
    await page.waitForSelector('#player:not([hidden])');
    await page.waitForFunction(() => Number(document.body.dataset.results ?? 0) > 0, null, { timeout: 10000 });
    await page.waitForFunction(() => {
      const host = document.querySelector('#waveform > div');
      return !!host?.shadowRoot?.querySelector('canvas');
    }, null, { timeout: 10000 });
    await waitForParams({ track, t: null });
    if ((await page.textContent('#results-title')) !== 'Similar recordings') throw new Error('expected similar recordings');
    if (!(await page.isHidden('#group-label'))) throw new Error('the grouping toggle is for passages only');
  });
  await step('the waveform is normalised to its loudest bucket', async () => {
    const w = await page.evaluate(() => {
      const wave = document.querySelector('#waveform');
      const canvases = [...wave.querySelector('div').shadowRoot.querySelectorAll('.canvases canvas')];
      let tallest = 0;
      for (const c of canvases) {  // the tallest drawn column, in canvas pixels
        const { data } = c.getContext('2d').getImageData(0, 0, c.width, c.height);
        for (let x = 0; x < c.width; ++x) {
          let top = -1, bottom = -1;
          for (let y = 0; y < c.height; ++y)
            if (data[(y * c.width + x) * 4 + 3] > 0) {
              if (top < 0) top = y;
              bottom = y;
            }
          if (top >= 0) tallest = Math.max(tallest, bottom - top + 1);
        }
      }
      return {
        canvases: canvases.length,
        canvasHeight: canvases[0]?.height ?? 0,
        tallestBar: tallest,
        peakMax: Number(wave.dataset.peakMax),
        gain: Number(wave.dataset.gain),
        legend: document.querySelector('#wave-scale').textContent,
        tooltip: document.querySelector('#wave-scale').title,
      };
    });
    facts.waveform = w;
    if (!(w.peakMax > 0 && w.peakMax <= 1)) throw new Error(`peak max ${w.peakMax} is not in (0, 1]`);
    if (Math.abs(w.gain * w.peakMax - 1) > 1e-6) throw new Error(`gain ${w.gain} does not bring ${w.peakMax} to full height`);
    if (w.canvases === 0 || w.tallestBar !== w.canvasHeight)
      throw new Error(`the loudest bucket should fill the canvas: ${JSON.stringify(w)}`);
    if (!/normalised/i.test(w.legend) || !/loudest/i.test(w.tooltip)) throw new Error(`the legend should say how it is scaled: ${w.legend}`);
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
  const passageAnswer = (grouped) => page.waitForResponse((r) => r.url().includes('/passages?') &&
    new URL(r.url()).searchParams.get('group_by_track') === String(grouped) && r.status() === 200, { timeout: 10000 });
  await step('drag a region: passage results, one per recording', async () => {
    const box = await page.locator('#waveform').boundingBox();
    const y = box.y + box.height / 2;
    const passages = passageAnswer(true);
    await page.mouse.move(box.x + box.width * 0.3, y);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.4, y, { steps: 8 });
    await page.mouse.up();
    const answer = await (await passages).json();
    await page.waitForFunction(() => document.querySelector('#results-title')?.textContent?.startsWith('Passages like'), null, { timeout: 5000 });
    await page.waitForFunction(() => document.querySelectorAll('#results li[data-start]').length > 0, null, { timeout: 10000 });
    await settled();
    if (!(await page.isChecked('#group')) || (await page.isHidden('#group-label'))) throw new Error('grouping should be shown, and on by default');
    const shown = await resultList();
    facts.grouped = { results: shown.length, distinct_tracks: distinctTracks(shown), api_results: answer.results.length };
    if (!distinctTracks(shown)) throw new Error(`two passages of one recording with grouping on: ${shown}`);
    const p = params();
    if (!p.get('track') || !p.has('t') || p.has('group')) throw new Error(`the URL should hold the track and passage: ${page.url()}`);
  });
  await step('grouping off: every passage', async () => {
    const grouped = await resultList();
    const every = passageAnswer(false);
    await page.click('#group');
    const answer = await (await every).json();
    await settled();
    await waitForParams({ group: '0' });
    await page.waitForFunction(() => document.querySelector('#results-status')?.textContent?.includes('every passage'), null, { timeout: 5000 });
    const shown = await resultList();
    const perTrack = {};
    for (const x of shown) perTrack[x.split('@')[0]] = (perTrack[x.split('@')[0]] ?? 0) + 1;
    facts.ungrouped = { results: shown.length, api_results: answer.results.length, most_from_one_track: Math.max(...Object.values(perTrack)) };
    if (shown.length < grouped.length) throw new Error(`every passage (${shown.length}) should not be fewer than one per recording (${grouped.length})`);
  });
  let aspect = '';
  await step('move an aspect slider: results re-rank, weights in the URL', async () => {
    const slider = page.locator('#aspects input[type=range]').first();
    if ((await slider.count()) === 0) throw new Error('no aspect sliders (the index has no validated aspects)');
    aspect = await slider.getAttribute('data-aspect');
    const reranked = page.waitForResponse((r) => r.url().includes('aspects=') && r.url().includes(aspect) && r.status() === 200, { timeout: 10000 });
    await slider.fill('0.8');
    await reranked;
    await page.waitForFunction((a) => document.querySelector('#results-status')?.textContent?.includes(a), aspect, { timeout: 5000 });
    if ((await page.locator('#results li').count()) === 0) throw new Error('no results after re-ranking');
    await waitForParams({ aspects: `${aspect}:0.80` });
  });
  await step('Back and Forward restore the view', async () => {
    await settled();
    const here = page.url();
    await page.goBack();  // the track as opened: similar recordings
    await waitForParams({ t: null });
    await page.waitForFunction(() => document.querySelector('#results-title')?.textContent === 'Similar recordings', null, { timeout: 5000 });
    await settled();
    await page.goForward();
    await page.waitForFunction((u) => location.href === u, here, { timeout: 5000 });
    await page.waitForFunction(() => document.querySelector('#results-title')?.textContent?.startsWith('Passages like'), null, { timeout: 5000 });
    await settled();
  });
  await step('the URL restores the view after a reload and in a new page', async () => {
    const track = params().get('track');
    await page.fill('#search', track);
    await waitForParams({ q: track });
    await settled();
    const url = page.url();
    const before = { title: await page.textContent('#results-title'), results: await resultList() };
    const snapshot = async (p) => {
      await p.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
      await p.waitForFunction(() => Number(document.body.dataset.results ?? 0) > 0 && document.body.dataset.busy === 'false', null, { timeout: 10000 });
      return p.evaluate((a) => ({
        url: location.href,
        title: document.querySelector('#results-title').textContent,
        results: [...document.querySelectorAll('#results li')].map((li) => `${li.dataset.track}@${li.dataset.start ?? ''}`),
        search: document.querySelector('#search').value,
        listed: document.querySelectorAll('#track-list li').length,
        active: document.querySelector('#track-list li.active')?.dataset.track ?? null,
        grouped: document.querySelector('#group').checked,
        weight: document.querySelector(`#aspects input[data-aspect="${a}"]`)?.value,
        region: !!document.querySelector('#waveform > div')?.shadowRoot?.querySelector('[part~="region"]'),
      }), aspect);
    };
    const check = (what, got) => {
      const want = { url, title: before.title, results: before.results, search: track, listed: 1, active: track, grouped: false, weight: '0.8', region: true };
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new Error(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    };
    const request = page.waitForRequest((r) => r.url().includes('/passages?'), { timeout: 15000 });
    await page.reload({ waitUntil: 'domcontentloaded' });
    const q = new URL((await request).url()).searchParams;
    if (q.get('group_by_track') !== 'false' || !q.get('aspects')?.startsWith(`${aspect}=0.80`) || q.get('start') !== Number(params().get('t')).toFixed(2))
      throw new Error(`after the reload the passage query is ${q}`);
    await page.waitForFunction(() => !!document.querySelector('#waveform > div')?.shadowRoot?.querySelector('[part~="region"]'), null, { timeout: 10000 });
    const reloaded = await snapshot(page);
    check('after a reload', reloaded);
    const fresh = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await fresh.goto(url, { waitUntil: 'domcontentloaded' });
      await fresh.waitForFunction(() => !!document.querySelector('#waveform > div')?.shadowRoot?.querySelector('[part~="region"]'), null, { timeout: 10000 });
      check('in a new page', await snapshot(fresh));
    } finally {
      await fresh.close();
    }
    facts.url = { shared: url, restored: true };
    await page.fill('#search', '');
    await waitForParams({ q: null });
  });
  await step('grouping back on', async () => {
    const grouped = passageAnswer(true);
    await page.click('#group');
    await grouped;
    await settled();
    await waitForParams({ group: null });
    const shown = await resultList();
    if (!distinctTracks(shown)) throw new Error(`two passages of one recording with grouping on: ${shown}`);
  });
  await step('play a result from its moment', async () => {
    const hit = page.locator('#results li[data-start]').first();
    const track = await hit.getAttribute('data-track');
    const start = Number(await hit.getAttribute('data-start'));
    await hit.locator('button').click();
    await page.waitForFunction((t) => document.querySelector('#track-list li.active')?.getAttribute('data-track') === t ||
      document.querySelector('#now-meta')?.textContent?.includes(t), track, { timeout: 10000 });
    await page.waitForFunction(([t, s]) => {
      const p = new URLSearchParams(location.search);
      return p.get('track') === t && Math.abs(Number(p.get('t')) - s) < 0.01;
    }, [track, start], { timeout: 5000 });
  });
  await settled();
  await structureSteps();
  await compareSteps();
  if (consoleErrors.length) throw new Error(`page errors: ${consoleErrors.join('; ')}`);
} catch (e) {
  failed = true;
  console.error(`e2e failed: ${e?.message ?? e}`);
} finally {
  await page.screenshot({ path: screenshot, fullPage: true }).catch(() => undefined);
  await browser.close();
}
console.log(`e2e-result: ${JSON.stringify({ ok: !failed, steps, facts, screenshot, compare_screenshot: compareShot, structure_screenshot: structureShot })}`);
process.exit(failed ? 1 : 0);
