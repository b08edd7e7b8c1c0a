// MESS web UI: browse tracks, play one with its waveform, select a 5-s passage (drag, or click a moment)
// to find similar passages (the best one per recording, or every one), or ask for similar recordings;
// aspect sliders re-rank live; or compare the performances of one work (compare.ts). What is shown lives in
// the URL (view.ts): a reload or a shared link restores it.
import WaveSurfer from 'wavesurfer.js';
import RegionsPlugin, { type Region } from 'wavesurfer.js/dist/plugins/regions.esm.js';
import { api, type Aspect, type Hit, type Role, type SearchAnswer, type Track, type TrackPage } from './api';
import { formatView, parseView, round2, type View } from './view';
import { $, clock, debounce, describe, normalisePeaks, showError, titleOf } from './ui';
import { closeCompare, comparable, compareView, initCompare, openCompare, showCompare } from './compare';
import { aspectBadges, learnedActive, learnedParams, renderLearned } from './learned';
import { clearStructure, initRoleButtons, showStructure } from './structure';

const PASSAGE_SEC = 5;
const PAGE = 50;
const REGION_ID = 'passage';  // the region the page places itself (a drawn one gets a random id)
const REGION_COLOR = 'rgba(0, 200, 240, 0.25)';

const state = {
  offset: 0,
  current: null as Track | null,
  ws: null as WaveSurfer | null,
  regions: null as ReturnType<typeof RegionsPlugin.create> | null,
  query: null as null | { kind: 'tracks' } | { kind: 'passages'; start: number } | { kind: 'role'; role: Role },
  aspects: [] as Aspect[],
  weights: new Map<string, number>(),
  grouped: true,  // passages: the best one per recording (group_by_track), or every passage
  requestSeq: 0,
};

// ---- the URL ----------------------------------------------------------------------------------------

function currentView(): View {
  const query = state.query;
  return {
    q: $<HTMLInputElement>('search').value.trim(),
    composer: $<HTMLSelectElement>('composer').value,
    dataset: $<HTMLSelectElement>('dataset').value,
    track: state.current?.track_id ?? null,
    start: state.current && query?.kind === 'passages' ? query.start : null,
    weights: new Map(state.weights),
    grouped: state.grouped,
    ...compareView(),
  };
}

// Writes what is shown into the address bar: 'push' for a new place (a track, a passage), 'replace' for
// a refinement of the same place (search text, weights, grouping), so Back goes where one expects.
function saveView(mode: 'push' | 'replace'): void {
  const search = formatView(currentView());
  if (search === location.search) return;
  const url = `${location.pathname}${search}${location.hash}`;
  if (mode === 'push') history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

// Shows the view a URL describes (at start, and on Back/Forward).
async function applyView(v: View): Promise<void> {
  const search = $<HTMLInputElement>('search'), composer = $<HTMLSelectElement>('composer'), dataset = $<HTMLSelectElement>('dataset');
  const filtersChanged = search.value.trim() !== v.q || composer.value !== v.composer || dataset.value !== v.dataset;
  search.value = v.q;
  composer.value = v.composer;
  dataset.value = v.dataset;
  const known = new Set(state.aspects.map((a) => a.aspect));
  state.weights = new Map([...v.weights].filter(([name]) => known.has(name)));
  document.querySelectorAll<HTMLInputElement>('#aspects input[type=range]').forEach((input) => {
    input.value = String(state.weights.get(input.dataset.aspect ?? '') ?? 0);
    showWeight(input);
  });
  state.grouped = v.grouped;
  $<HTMLInputElement>('group').checked = v.grouped;
  const tracks = filtersChanged || $('track-list').childElementCount === 0 ? loadTracks(true) : Promise.resolve();
  if (!v.track) closeTrack();
  else if (v.track !== state.current?.track_id) await selectTrack(v.track, v.start, false, 'none');
  else {
    if (v.start === null) state.regions?.clearRegions();
    else markPassage(v.start);
    state.query = v.start === null ? { kind: 'tracks' } : { kind: 'passages', start: v.start };
    void runQuery();
  }
  if (v.compare) state.ws?.pause();
  await Promise.all([tracks, showCompare(v)]);
}

// ---- track browser ------------------------------------------------------------------------------

async function loadTracks(reset: boolean): Promise<void> {
  if (reset) state.offset = 0;
  const params = new URLSearchParams({ offset: String(state.offset), limit: String(PAGE) });
  const q = $<HTMLInputElement>('search').value.trim();
  const composer = $<HTMLSelectElement>('composer').value;
  const dataset = $<HTMLSelectElement>('dataset').value;
  if (q) params.set('q', q);
  if (composer) params.set('composer', composer);
  if (dataset) params.set('dataset', dataset);
  try {
    const page = await api.tracks(params);
    const list = $('track-list');
    if (reset) list.replaceChildren();
    for (const t of page.tracks) {
      const li = document.createElement('li');
      li.dataset.track = t.track_id;
      li.classList.toggle('active', t.track_id === state.current?.track_id);
      li.innerHTML = `<div class="name"></div><div class="sub"></div>`;
      li.querySelector('.name')!.textContent = titleOf(t);
      li.querySelector('.sub')!.textContent = `${describe(t)} · ${clock(t.duration_sec)}`;
      li.addEventListener('click', () => void selectTrack(t.track_id, null, false, 'push'));
      list.append(li);
    }
    state.offset = page.next_offset ?? page.total;
    $('more').hidden = page.next_offset == null;
    $('track-count').textContent = trackCount(page);
    showError(null);
  } catch (e) {
    showError(`Could not list tracks: ${(e as Error).message}`);
  }
}

// "12 tracks", or "more than 1000 tracks" when the server stopped counting (total_exact false).
function trackCount(page: TrackPage): string {
  if (page.total === 0) return 'No track matches.';
  return page.total_exact === false ? `more than ${page.total} tracks` : `${page.total} tracks`;
}

// ---- player -------------------------------------------------------------------------------------

// The waveform is drawn relative to the track's loudest bucket (normalisePeaks); the legend says so and
// gives the level.
function showScale(max: number, gain: number): void {
  const wave = $('waveform');
  wave.dataset.peakMax = String(max);
  wave.dataset.gain = String(gain);
  const legend = $('wave-scale');
  const db = 20 * Math.log10(max);  // dBFS; used only when max > 0
  legend.textContent = max > 0
    ? `Height normalised to this track's loudest moment (peak ${db.toFixed(1).replace('-', '−')} dBFS, ×${gain.toFixed(gain < 10 ? 2 : 1)})`
    : 'Silent recording';
  legend.title = 'The waveform is scaled so that the loudest part of this recording reaches the full height: quiet ' +
    'recordings stay readable. Heights are therefore relative to this track, not comparable between tracks; ' +
    'the peak level is in dB relative to digital full scale.';
}

function closeTrack(): void {
  state.ws?.destroy();
  state.ws = null;
  state.regions = null;
  state.current = null;
  state.query = null;
  clearStructure();
  ++state.requestSeq;
  document.getElementById('audio')?.remove();
  $('player').hidden = true;
  $('empty-player').hidden = false;
  document.querySelectorAll('#track-list li.active').forEach((li) => li.classList.remove('active'));
  $('results-title').textContent = 'Results';
  $('results-status').textContent = '';
  $('group-label').hidden = true;
  $('results').replaceChildren();
  $('results-empty').hidden = true;
  document.body.dataset.results = '0';
  document.body.dataset.busy = 'false';
}

// Opens a recording. passage: the start (s) of a 5-s passage to search from; null: similar recordings.
async function selectTrack(id: string, passage: number | null, autoplay: boolean, mode: 'push' | 'none'): Promise<void> {
  try {
    const [track, wave] = await Promise.all([api.track(id), api.waveform(id)]);
    state.current = track;
    document.querySelectorAll('#track-list li').forEach((li) => li.classList.toggle('active', (li as HTMLElement).dataset.track === id));
    $('empty-player').hidden = true;
    $('player').hidden = false;
    $('now-title').textContent = titleOf(track);
    $('now-meta').textContent = `${describe(track)} · ${clock(track.duration_sec)}`;
    state.ws?.destroy();
    const regions = RegionsPlugin.create();
    const media = document.createElement('audio');
    media.preload = 'auto';
    media.id = 'audio';
    document.getElementById('audio')?.remove();
    document.body.append(media);
    const scaled = normalisePeaks(wave.peaks);
    showScale(scaled.max, scaled.gain);
    const ws = WaveSurfer.create({
      container: '#waveform',
      height: 110,
      waveColor: '#4a6572',
      progressColor: '#00c8f0',
      cursorColor: '#ffffff',
      barWidth: 2,
      barGap: 1,
      media,
      url: `/api/tracks/${encodeURIComponent(id)}/audio`,
      peaks: [scaled.peaks],
      duration: wave.duration_sec,
      plugins: [regions],
    });
    state.ws = ws;
    state.regions = regions;
    void showStructure(id);
    regions.enableDragSelection({ color: REGION_COLOR });
    regions.on('region-created', (r: Region) => {
      if (r.id !== REGION_ID) choosePassage(r.start, r);  // drawn by the listener; not the page's own
    });
    regions.on('region-updated', (r: Region) => choosePassage(r.start, r));
    ws.on('interaction', (t: number) => choosePassage(t, null));
    ws.on('timeupdate', (t: number) => ($('time').textContent = `${clock(t)} / ${clock(wave.duration_sec)}`));
    ws.on('play', () => ($('play').textContent = '❚❚ Pause'));
    ws.on('pause', () => ($('play').textContent = '▶ Play'));
    ws.once('ready', () => {
      if (passage !== null) {
        ws.setTime(passage);
        markPassage(passage);
      }
      if (autoplay) void ws.play().catch(() => undefined);
    });
    $('time').textContent = `0:00 / ${clock(wave.duration_sec)}`;
    $('compare-work').hidden = true;
    void comparable(track.work_id).then((yes) => ($('compare-work').hidden = !yes || state.current?.track_id !== id));
    state.query = passage !== null ? { kind: 'passages', start: clampStart(passage) } : { kind: 'tracks' };
    if (mode === 'push') saveView('push');
    void runQuery();
    showError(null);
  } catch (e) {
    showError(`Could not open ${id}: ${(e as Error).message}`);
  }
}

function clampStart(start: number): number {
  const duration = state.current?.duration_sec ?? 0;
  return round2(Math.max(0, Math.min(start, Math.max(0, duration - PASSAGE_SEC))));
}

// One 5-s region at `start` (clamped into the track); a drawn region is trimmed to 5 s.
function markPassage(start: number, drawn: Region | null = null): number {
  const s = clampStart(start);
  for (const r of state.regions?.getRegions() ?? []) if (r !== drawn) r.remove();
  if (drawn) drawn.setOptions({ start: s, end: s + PASSAGE_SEC });
  else state.regions?.addRegion({ id: REGION_ID, start: s, end: s + PASSAGE_SEC, color: REGION_COLOR, drag: true, resize: false });
  return s;
}

const choosePassage = debounce((start: number, drawn: Region | null) => {
  const s = markPassage(start, drawn);
  state.query = { kind: 'passages', start: s };
  saveView('push');
  void runQuery();
}, 120);

// ---- queries ------------------------------------------------------------------------------------

function aspectParam(): string {
  return [...state.weights].filter(([, w]) => w > 0).map(([name, w]) => `${name}=${w.toFixed(2)}`).join(',');
}

// Passages holding a structural role like the open track's (its climax, strongest cadence, first modulation).
async function roleQuery(track: Track, role: Role, params: URLSearchParams): Promise<SearchAnswer> {
  params.set('role', role);
  params.set('exclude_same', 'track');
  params.set('group_by_track', 'true');
  $('results-title').textContent = `Similar ${role === 'climax' ? 'climaxes' : `${role}s`}`;
  const answer = await api.passages(track.track_id, params);
  const m = answer.query?.moment;
  if (m) {
    $('results-title').textContent += ` to the ${role} at ${clock(m.time)}`;
    state.ws?.setTime(m.time);
  }
  return answer;
}

async function runQuery(): Promise<void> {
  const track = state.current;
  const query = state.query;
  if (!track || !query) return;
  const seq = ++state.requestSeq;
  const params = new URLSearchParams({ k: '10' });
  const learnedHow = learnedActive() ? learnedParams(params) : '';
  const aspects = learnedHow || aspectParam();
  if (aspects && !learnedHow) params.set('aspects', aspects);
  const status = $('results-status');
  status.textContent = 'searching…';
  document.body.dataset.busy = 'true';
  document.body.dataset.query = query.kind;
  $('group-label').hidden = query.kind !== 'passages';
  let answer: SearchAnswer;
  try {
    if (query.kind === 'role') {
      answer = await roleQuery(track, query.role, params);
    } else if (query.kind === 'passages') {
      params.set('start', query.start.toFixed(2));
      params.set('exclude_same', 'track');
      params.set('group_by_track', String(state.grouped));
      $('results-title').textContent = `Passages like ${clock(query.start)}–${clock(query.start + PASSAGE_SEC)}`;
      answer = await api.passages(track.track_id, params);
    } else {
      $('results-title').textContent = 'Similar recordings';
      answer = await api.similar(track.track_id, params);
    }
  } catch (e) {
    if (seq === state.requestSeq) {
      status.textContent = '';
      showResults([], (e as Error).message);
      document.body.dataset.busy = 'false';
    }
    return;
  }
  if (seq !== state.requestSeq) return;  // a newer query superseded this one
  const how = aspects ? `weighted by ${aspects.replaceAll(',', ', ')}` : 'overall';
  status.textContent = query.kind === 'passages' ? `${how} · ${state.grouped ? 'best passage per recording' : 'every passage'}` : how;
  if (query.kind === 'role') status.textContent = `${how} · passages holding a ${query.role}`;
  showResults(answer.results, null);
  document.body.dataset.busy = 'false';
}

function showResults(hits: Hit[], error: string | null): void {
  const list = $('results');
  list.replaceChildren();
  const empty = $('results-empty');
  empty.hidden = hits.length > 0 && !error;
  empty.textContent = error ? `The search failed: ${error}` : 'Nothing similar found (the index may hold only this track).';
  for (const h of hits) {
    const li = document.createElement('li');
    li.dataset.track = h.track_id;
    if (h.start_sec !== undefined) li.dataset.start = String(h.start_sec);
    let when = h.start_sec !== undefined ? ` at ${clock(h.start_sec)}` : '';
    if (h.role) {
      li.dataset.role = h.role.name;
      when = ` — ${h.role.name} at ${clock(h.role.time)}${h.role.interval !== undefined ? ` (${h.role.interval > 0 ? '+' : ''}${h.role.interval})` : ''}`;
    }
    li.innerHTML = `<span class="score"></span><span class="title"></span> <span class="muted sub"></span><button>▶ Play</button>`;
    li.querySelector('.score')!.textContent = `${(h.score * 100).toFixed(1)} %`;
    li.querySelector('.title')!.textContent = titleOf(h) + when;
    li.querySelector('.sub')!.textContent = describe(h);
    li.querySelector('.sub')!.append(aspectBadges(h));
    li.querySelector('button')!.addEventListener('click', () => void selectTrack(h.track_id, h.start_sec ?? null, true, 'push'));
    list.append(li);
  }
  document.body.dataset.results = String(hits.length);
}

// ---- aspects ------------------------------------------------------------------------------------

// "R² 0.99 [0.95–1.00] · low (8 tracks)": the band and the number of tracks say why a label is low.
function confidenceText(a: Aspect): string {
  const band = a.r2_band ? ` [${a.r2_band[0].toFixed(2)}–${a.r2_band[1].toFixed(2)}]` : '';
  const tracks = a.n_tracks ? ` (${a.n_tracks} tracks)` : '';
  return `R² ${a.r2_score.toFixed(2)}${band} · ${a.confidence}${tracks}`;
}

function showWeight(input: HTMLInputElement): void {
  const out = input.closest('label')?.querySelector('.weight');
  if (out) out.textContent = Number(input.value) > 0 ? `× ${Number(input.value).toFixed(2)}` : '';
}

function renderAspects(): void {
  const box = $('aspects');
  box.replaceChildren();
  $('aspects-panel').hidden = state.aspects.length === 0;
  const rerank = debounce(() => {
    saveView('replace');
    void runQuery();
  }, 200);
  for (const a of state.aspects) {
    const label = document.createElement('label');
    label.title = a.description;
    label.innerHTML = `<span class="name"></span> <span class="conf"></span> <span class="weight"></span><input type="range" min="0" max="1" step="0.05" value="0">`;
    label.querySelector('.name')!.textContent = a.aspect.replaceAll('_', ' ');
    const conf = label.querySelector('.conf')!;
    conf.textContent = confidenceText(a);
    conf.className = `conf conf-${a.confidence}`;
    const input = label.querySelector('input')!;
    input.dataset.aspect = a.aspect;
    input.setAttribute('aria-label', `${a.aspect} weight`);
    input.addEventListener('input', () => {
      const w = round2(Number(input.value));
      if (w > 0) state.weights.set(a.aspect, w);
      else state.weights.delete(a.aspect);
      showWeight(input);
      rerank();
    });
    box.append(label);
  }
}

// ---- start --------------------------------------------------------------------------------------

async function start(): Promise<void> {
  const filtersChanged = () => {
    saveView('replace');
    void loadTracks(true);
  };
  $('search').addEventListener('input', debounce(filtersChanged, 250));
  $('composer').addEventListener('change', filtersChanged);
  $('dataset').addEventListener('change', filtersChanged);
  $('more').addEventListener('click', () => void loadTracks(false));
  $('play').addEventListener('click', () => void state.ws?.playPause());
  $('similar-tracks').addEventListener('click', () => {
    state.regions?.clearRegions();
    state.query = { kind: 'tracks' };
    saveView('push');
    void runQuery();
  });
  initCompare({ save: saveView });
  initRoleButtons((role) => {
    state.regions?.clearRegions();
    state.query = { kind: 'role', role };
    void runQuery();
  });
  $('show-compare').addEventListener('click', () => {
    state.ws?.pause();
    void openCompare();
  });
  $('compare-work').addEventListener('click', () => {
    state.ws?.pause();
    if (state.current) void openCompare(state.current.work_id, state.current.track_id);
  });
  $('show-search').addEventListener('click', () => {
    closeCompare();
    saveView('push');
  });
  $('group').addEventListener('change', () => {
    state.grouped = $<HTMLInputElement>('group').checked;
    saveView('replace');
    void runQuery();
  });
  try {
    const [datasets, composers, aspects] = await Promise.all([api.datasets(), api.composers(), api.aspects()]);
    for (const d of datasets.datasets) $('dataset').append(new Option(`${d.dataset_id} (${d.tracks})`, d.dataset_id));
    for (const c of composers.composers) $('composer').append(new Option(`${c.composer} (${c.track_count})`, c.composer));
    state.aspects = aspects.aspects;
    renderAspects();
    renderLearned($('learned-aspects'), aspects.learned ?? [], debounce(() => void runQuery(), 200));
    if (aspects.learned?.length) $('aspects-panel').hidden = false;
  } catch (e) {
    showError(`The service is not ready: ${(e as Error).message}`);
  }
  window.addEventListener('popstate', () => void applyView(parseView(location.search)));
  await applyView(parseView(location.search));
  document.body.dataset.ready = 'true';
}

void start();
