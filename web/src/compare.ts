// The comparison view: the performances of one work, their waveforms stacked with a shared cursor (a
// click in one moves every player to the aligned moment, and the others follow the one playing), their
// tempo and loudness curves on the reference's time axis, and who takes longest over a chosen passage.
// The work, the performances (reference first) and the passage live in the URL (view.ts).
import WaveSurfer from 'wavesurfer.js';
import { api, type Comparison, type TimePath, type Work } from './api';
import { CurvesChart } from './curves';
import { $, clock, clockTenths, normalisePeaks, showError } from './ui';
import { round2, type View } from './view';

const COLORS = ['#00c8f0', '#f0a020', '#7bd88f', '#ff6b9a', '#b48cff', '#f0e060', '#5ad1c0', '#ff8c5a'];
const FOLLOW_MS = 200;  // how often the paused players follow the one playing
const MAX_TAKES = 8;    // performances one comparison aligns (the server's limit)

type Passage = { start: number; end: number };
type Hooks = { save: (mode: 'push' | 'replace') => void };

interface Row {
  track: string;
  element: HTMLElement;
  ws: WaveSurfer;
  duration: number;
}

const state = {
  hooks: null as Hooks | null,
  works: null as Work[] | null,
  work: null as Work | null,
  takes: [] as string[],  // chosen performances, the reference first
  passage: null as Passage | null,
  answer: null as Comparison | null,  // the whole piece
  shown: '',  // work and takes of the rows on screen
  rows: [] as Row[],
  chart: null as CurvesChart | null,
  seq: 0,
  lastFollow: 0,
};

// The other column of a path at `t` in column `from` (linear between rows, clamped to the path's ends).
export function mapTime(path: TimePath, from: 0 | 1, t: number): number {
  const to = from === 0 ? 1 : 0;
  if (path.length === 0) return t;
  if (t <= path[0][from]) return path[0][to];
  if (t >= path[path.length - 1][from]) return path[path.length - 1][to];
  let lo = 0, hi = path.length - 1;  // path[lo][from] < t <= path[hi][from]
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (path[mid][from] < t) lo = mid;
    else hi = mid;
  }
  const a = path[lo], b = path[hi], span = b[from] - a[from];
  return span > 0 ? a[to] + ((b[to] - a[to]) * (t - a[from])) / span : b[to];
}

// What the view shows, for the URL: takes only when they differ from the default (every one with audio).
export function compareView(): Pick<View, 'compare' | 'takes' | 'passage'> {
  if ($('compare-view').hidden || !state.work) return { compare: null, takes: [], passage: null };
  const takes = state.takes.join(',') === defaultTakes(state.work).join(',') ? [] : [...state.takes];
  return { compare: state.work.work_id, takes, passage: state.passage };
}

function defaultTakes(w: Work): string[] {
  return w.tracks.filter((t) => t.has_audio).map((t) => t.track_id).slice(0, MAX_TAKES);
}

function takeLabel(track: string): string {
  const t = state.work?.tracks.find((x) => x.track_id === track);
  const m = t?.metadata ?? {};
  return [m.performer, m.year, m.variant].filter(Boolean).join(' · ') || track;
}

function setStatus(kind: 'loading' | 'ready' | 'error', text: string): void {
  document.body.dataset.compare = kind;
  $('compare-status').textContent = text;
}

// ---- choosing ---------------------------------------------------------------------------------------

// One request however many callers ask at once: a second answer refilling the list would reset the work
// a concurrent refresh had just selected (seen after a reload of a comparison URL with a track open).
let worksLoading: Promise<Work[]> | null = null;

function loadWorks(): Promise<Work[]> {
  if (state.works) return Promise.resolve(state.works);
  worksLoading ??= fetchWorks().finally(() => { worksLoading = null; });
  return worksLoading;
}

async function fetchWorks(): Promise<Work[]> {
  const answer = await api.works();
  state.works = answer.works;
  const select = $<HTMLSelectElement>('work');
  select.replaceChildren(new Option(answer.count ? 'Choose a work…' : 'No work has two performances here', ''));
  for (const w of answer.works) select.append(new Option(`${w.title || w.work_id} (${w.performances})`, w.work_id));
  return state.works;
}

function renderTakeChoices(): void {
  const box = $('takes');
  box.replaceChildren();
  for (const t of state.work?.tracks ?? []) {
    const label = document.createElement('label');
    label.className = 'take-choice';
    const full = state.takes.length >= MAX_TAKES && !state.takes.includes(t.track_id);
    label.title = !t.has_audio ? `${t.track_id}: no audio on this server` : full ? `${t.track_id} (at most ${MAX_TAKES} at once)` : t.track_id;
    label.innerHTML = '<input type="checkbox"> <span></span>';
    const input = label.querySelector('input')!;
    input.value = t.track_id;
    input.checked = state.takes.includes(t.track_id);
    input.disabled = !t.has_audio || full;
    label.querySelector('span')!.textContent = takeLabel(t.track_id);
    input.addEventListener('change', () => {
      state.takes = input.checked ? [...state.takes, t.track_id] : state.takes.filter((x) => x !== t.track_id);
      state.passage = null;
      state.hooks?.save('push');
      void refresh();
    });
    box.append(label);
  }
}

function chooseWork(id: string): void {
  state.work = state.works?.find((w) => w.work_id === id) ?? null;
  state.takes = state.work ? defaultTakes(state.work) : [];
  state.passage = null;
  state.hooks?.save('push');
  void refresh();
}

function makeReference(track: string): void {
  state.takes = [track, ...state.takes.filter((x) => x !== track)];
  state.passage = null;
  state.hooks?.save('push');
  void refresh();
}

// ---- players with a shared cursor -------------------------------------------------------------------

function refTime(k: number, t: number): number {
  return state.answer ? mapTime(state.answer.performances[k].path, 1, t) : t;
}

function takeTime(k: number, tref: number): number {
  return state.answer ? mapTime(state.answer.performances[k].path, 0, tref) : tref;
}

// Every player (but `except`) to the moment of the reference's second `tref`.
function seekAll(tref: number, except = -1): void {
  state.rows.forEach((r, k) => {
    if (k !== except) r.ws.setTime(Math.min(r.duration, Math.max(0, takeTime(k, tref))));
  });
  state.chart?.setCursor(tref);
}

function showTime(row: Row, t: number): void {
  row.element.dataset.time = t.toFixed(2);
  row.element.querySelector('.time')!.textContent = `${clock(t)} / ${clock(row.duration)}`;
}

function wireRow(row: Row, k: number): void {
  const play = row.element.querySelector<HTMLButtonElement>('.play')!;
  play.addEventListener('click', () => void row.ws.playPause());
  row.ws.on('interaction', (t: number) => seekAll(refTime(k, t), k));
  row.ws.on('timeupdate', (t: number) => {
    showTime(row, t);
    if (!row.ws.isPlaying() || performance.now() - state.lastFollow < FOLLOW_MS) return;
    state.lastFollow = performance.now();
    seekAll(refTime(k, t), k);
  });
  row.ws.on('play', () => {
    play.textContent = '❚❚';
    state.rows.forEach((other, j) => j !== k && other.ws.pause());
  });
  row.ws.on('pause', () => (play.textContent = '▶'));
  row.element.querySelector('.make-ref')?.addEventListener('click', () => makeReference(row.track));
}

function rowElement(c: Comparison, k: number): HTMLElement {
  const p = c.performances[k];
  const el = document.createElement('div');
  el.className = 'take';
  el.dataset.track = p.track_id;
  el.style.setProperty('--take-color', COLORS[k % COLORS.length]);
  el.innerHTML = `<div class="take-head"><button class="play" aria-label="Play">▶</button><span class="swatch"></span>
    <span class="name"></span><span class="muted sub"></span><span class="time muted"></span></div><div class="take-wave"></div>`;
  el.querySelector('.name')!.textContent = takeLabel(p.track_id);
  const summary = k === 0 ? 'reference' : `tempo ×${p.mean_tempo_ratio.toFixed(2)}` +
    (p.transposition ? ` · ${p.transposition > 0 ? '+' : '−'}${Math.abs(p.transposition)} semitones` : '') + ` · confidence ${p.confidence.toFixed(2)}`;
  el.querySelector('.sub')!.textContent = `${p.track_id} · ${summary}`;
  if (k > 0) {
    const button = document.createElement('button');
    button.className = 'make-ref';
    button.textContent = 'Use as reference';
    el.querySelector('.take-head')!.append(button);
  }
  return el;
}

async function buildRows(c: Comparison): Promise<void> {
  for (const r of state.rows) r.ws.destroy();
  state.rows = [];
  const box = $('performances');
  box.replaceChildren();
  const waves = await Promise.all(c.performances.map((p) => api.waveform(p.track_id)));
  c.performances.forEach((p, k) => {
    const element = rowElement(c, k);
    box.append(element);
    const ws = WaveSurfer.create({
      container: element.querySelector<HTMLElement>('.take-wave')!,
      height: 56,
      waveColor: '#4a6572',
      progressColor: COLORS[k % COLORS.length],
      cursorColor: '#ffffff',
      barWidth: 2,
      barGap: 1,
      url: `/api/tracks/${encodeURIComponent(p.track_id)}/audio`,
      peaks: [normalisePeaks(waves[k].peaks).peaks],
      duration: waves[k].duration_sec,
    });
    const row = { track: p.track_id, element, ws, duration: waves[k].duration_sec };
    state.rows.push(row);
    wireRow(row, k);
    showTime(row, 0);
  });
}

// ---- curves and ranking -----------------------------------------------------------------------------

function drawCurves(c: Comparison): void {
  state.chart ??= new CurvesChart($('curves'), {
    seek: (t) => seekAll(t),
    select: (start, end) => choosePassage({ start: round2(start), end: round2(end) }),
  });
  state.chart.draw({
    times: c.times,
    series: c.performances.map((p, k) => ({
      track: p.track_id, label: takeLabel(p.track_id), color: COLORS[k % COLORS.length], tempo: p.tempo_ratio, loudness: p.loudness_db,
    })),
  }, state.passage);
}

function showRanking(c: Comparison): void {
  const passage = state.passage;
  $('ranking-title').textContent = passage
    ? `Who takes longest over ${clockTenths(passage.start)}–${clockTenths(passage.end)} of the reference`
    : 'Who takes longest over the whole piece';
  $('clear-passage').hidden = !passage;
  const list = $('ranking');
  list.replaceChildren();
  list.dataset.start = String(c.start_sec);
  list.dataset.end = String(c.end_sec);
  const reference = c.performances[0].passage.duration;
  for (const r of c.ranking) {
    const k = c.performances.findIndex((p) => p.name === r.name);
    const li = document.createElement('li');
    li.dataset.track = r.name;
    li.dataset.duration = String(r.passage_duration);
    li.style.setProperty('--take-color', COLORS[k % COLORS.length]);
    li.innerHTML = '<span class="swatch"></span><span class="name"></span><span class="seconds"></span><span class="muted rel"></span>';
    li.querySelector('.name')!.textContent = takeLabel(r.name);
    li.querySelector('.seconds')!.textContent = `${r.passage_duration.toFixed(2)} s`;
    const rel = (r.passage_duration / reference - 1) * 100;
    li.querySelector('.rel')!.textContent = k === 0 ? 'reference' : `${rel >= 0 ? '+' : '−'}${Math.abs(rel).toFixed(1)} % against the reference`;
    list.append(li);
  }
}

function choosePassage(p: Passage | null): void {
  state.passage = p;
  state.chart?.setPassage(p);
  state.hooks?.save('push');
  void loadRanking();
}

// ---- loading ----------------------------------------------------------------------------------------

function compareParams(extra: Record<string, string> = {}): URLSearchParams {
  const ref = state.work?.tracks.find((t) => t.track_id === state.takes[0]);
  const duration = ref?.duration_sec ?? 0;
  const step = duration <= 400 ? 0.1 : Math.ceil((duration / 4000) * 50) / 50;  // at most about 4000 points
  return new URLSearchParams({ tracks: state.takes.join(','), step: String(step), ...extra });
}

async function loadRanking(): Promise<void> {
  const seq = ++state.seq, p = state.passage;
  if (!state.work || !state.answer) return;
  if (!p) return showRanking(state.answer);
  setStatus('loading', 'timing the passage…');
  try {
    const c = await api.compare(state.work.work_id, compareParams({ start: String(p.start), end: String(p.end) }));
    if (seq !== state.seq) return;
    showRanking(c);
    setStatus('ready', '');
  } catch (e) {
    if (seq === state.seq) setStatus('error', `The passage could not be timed: ${(e as Error).message}`);
  }
}

function showEmpty(message: string | null): void {
  if (message) setStatus('ready', '');
  $('compare-empty').hidden = !message;
  $('compare-empty').textContent = message ?? '';
  $('compare-body').hidden = !!message;
}

// Loads the comparison the state asks for (rows and curves only when the work or the takes changed).
async function refresh(): Promise<void> {
  renderTakeChoices();
  $<HTMLSelectElement>('work').value = state.work?.work_id ?? '';
  if (!state.work) return showEmpty(state.works?.length ? 'Choose a work to compare its performances.' : 'No work has two performances in this index.');
  if (state.takes.length < 2) return showEmpty('Choose at least two performances.');
  const key = `${state.work.work_id}\u001f${state.takes.join(',')}`;
  if (key === state.shown) return loadRanking();
  const seq = ++state.seq;
  setStatus('loading', `aligning ${state.takes.length} performances…`);
  try {
    const c = await api.compare(state.work.work_id, compareParams());
    if (seq !== state.seq) return;
    state.answer = c;
    showEmpty(null);
    await buildRows(c);
    drawCurves(c);
    state.shown = key;
    setStatus('ready', `${c.performances.length} performances aligned to ${takeLabel(c.reference)}`);
    await loadRanking();
  } catch (e) {
    if (seq !== state.seq) return;
    state.shown = '';
    showEmpty(`These performances cannot be compared: ${(e as Error).message}`);
    setStatus('error', 'not compared');
  }
}

// ---- showing and hiding -----------------------------------------------------------------------------

export function initCompare(hooks: Hooks): void {
  state.hooks = hooks;
  $<HTMLSelectElement>('work').addEventListener('change', (e) => chooseWork((e.target as HTMLSelectElement).value));
  $('clear-passage').addEventListener('click', () => choosePassage(null));
}

function toggleViews(open: boolean): void {
  document.body.dataset.view = open ? 'compare' : 'search';
  $('compare-view').hidden = !open;
  $('search-view').hidden = open;
  $('show-search').setAttribute('aria-pressed', String(!open));
  $('show-compare').setAttribute('aria-pressed', String(open));
  if (!open) for (const r of state.rows) r.ws.pause();
}

// Shows the view for `v` (its work, takes and passage), or hides it (v.compare null) and stops its players.
export async function showCompare(v: View): Promise<void> {
  toggleViews(v.compare !== null);
  if (v.compare === null) return;
  try {
    const works = await loadWorks();
    const work = works.find((w) => w.work_id === v.compare) ?? null;
    if (work !== state.work) state.shown = '';
    state.work = work;
    state.takes = work ? (v.takes.length ? v.takes : defaultTakes(work)) : [];
    state.passage = v.passage;
    state.chart?.setPassage(state.passage);
    showError(null);
    await refresh();
  } catch (e) {
    showError(`Could not list the works: ${(e as Error).message}`);
  }
}

// True when `work` has two performances with audio here (the search view then offers to compare them).
export async function comparable(work: string): Promise<boolean> {
  const works = await loadWorks().catch(() => []);
  return works.some((w) => w.work_id === work && w.with_audio >= 2);
}

// Opens the view on `work` with `reference` first (from the search view's player); without them, on the
// work shown last, else the first one.
export async function openCompare(work?: string, reference?: string): Promise<void> {
  toggleViews(true);
  try {
    const works = await loadWorks();
    const chosen = works.find((w) => w.work_id === work) ?? state.work ?? works[0] ?? null;
    if (chosen && (chosen !== state.work || reference)) {
      state.work = chosen;
      const takes = defaultTakes(chosen);
      state.takes = reference && takes.includes(reference) ? [reference, ...takes.filter((t) => t !== reference)] : takes;
      state.passage = null;
    }
    state.hooks?.save('push');
    showError(null);
    await refresh();
  } catch (e) {
    showError(`Could not list the works: ${(e as Error).message}`);
  }
}

// Back to the search view (its players stopped).
export function closeCompare(): void {
  toggleViews(false);
}
