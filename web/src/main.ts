// MESS web UI: browse tracks, play one with its waveform, select a 5-s passage (drag, or click a moment)
// to find similar passages, or ask for similar recordings; aspect sliders re-rank live.
import WaveSurfer from 'wavesurfer.js';
import RegionsPlugin, { type Region } from 'wavesurfer.js/dist/plugins/regions.esm.js';
import { api, type Aspect, type Hit, type SearchAnswer, type Track } from './api';

const PASSAGE_SEC = 5;
const PAGE = 50;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const state = {
  offset: 0,
  current: null as Track | null,
  ws: null as WaveSurfer | null,
  regions: null as ReturnType<typeof RegionsPlugin.create> | null,
  query: null as null | { kind: 'tracks' } | { kind: 'passages'; start: number },
  aspects: [] as Aspect[],
  weights: new Map<string, number>(),
  requestSeq: 0,
};

function clock(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function titleOf(t: { track_id: string; metadata: Record<string, string> }): string {
  return t.metadata.title ? `${t.metadata.title}` : t.track_id;
}

function describe(t: { track_id: string; metadata: Record<string, string> }): string {
  const m = t.metadata;
  return [m.composer, m.variant && m.variant !== 'original' ? m.variant : '', t.track_id].filter(Boolean).join(' · ');
}

function showError(message: string | null): void {
  const banner = $('banner');
  banner.hidden = !message;
  banner.textContent = message ?? '';
}

function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): (...args: A) => void {
  let timer: number | undefined;
  return (...args: A) => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => fn(...args), ms);
  };
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
      li.innerHTML = `<div class="name"></div><div class="sub"></div>`;
      li.querySelector('.name')!.textContent = titleOf(t);
      li.querySelector('.sub')!.textContent = `${describe(t)} · ${clock(t.duration_sec)}`;
      li.addEventListener('click', () => void selectTrack(t.track_id, 0, false));
      list.append(li);
    }
    state.offset = page.next_offset ?? page.total;
    $('more').hidden = page.next_offset == null;
    $('track-count').textContent = page.total === 0 ? 'No track matches.' : `${page.total} tracks`;
    showError(null);
  } catch (e) {
    showError(`Could not list tracks: ${(e as Error).message}`);
  }
}

// ---- player -------------------------------------------------------------------------------------

async function selectTrack(id: string, startAt: number, autoplay: boolean): Promise<void> {
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
    const ws = WaveSurfer.create({
      container: '#waveform',
      height: 110,
      waveColor: '#4a6572',
      progressColor: '#00c8f0',
      cursorColor: '#ffffff',
      media,
      url: `/api/tracks/${encodeURIComponent(id)}/audio`,
      peaks: [wave.peaks],
      duration: wave.duration_sec,
      plugins: [regions],
    });
    state.ws = ws;
    state.regions = regions;
    regions.enableDragSelection({ color: 'rgba(0, 200, 240, 0.25)' });
    regions.on('region-created', (r: Region) => choosePassage(r.start, r));
    regions.on('region-updated', (r: Region) => choosePassage(r.start, r));
    ws.on('interaction', (t: number) => choosePassage(t, null));
    ws.on('timeupdate', (t: number) => ($('time').textContent = `${clock(t)} / ${clock(wave.duration_sec)}`));
    ws.on('play', () => ($('play').textContent = '❚❚ Pause'));
    ws.on('pause', () => ($('play').textContent = '▶ Play'));
    ws.once('ready', () => {
      if (startAt > 0) {
        ws.setTime(startAt);
        markPassage(startAt);
      }
      if (autoplay) void ws.play().catch(() => undefined);
    });
    $('time').textContent = `0:00 / ${clock(wave.duration_sec)}`;
    // Opened from a passage result: passages like that moment; otherwise similar recordings.
    state.query = startAt > 0 ? { kind: 'passages', start: startAt } : { kind: 'tracks' };
    runQuery();
    showError(null);
  } catch (e) {
    showError(`Could not open ${id}: ${(e as Error).message}`);
  }
}

// One 5-s region at `start` (clamped into the track); a drawn region is trimmed to 5 s.
function markPassage(start: number, drawn: Region | null = null): number {
  const duration = state.current?.duration_sec ?? 0;
  const s = Math.max(0, Math.min(start, Math.max(0, duration - PASSAGE_SEC)));
  for (const r of state.regions?.getRegions() ?? []) if (r !== drawn) r.remove();
  if (drawn) drawn.setOptions({ start: s, end: s + PASSAGE_SEC });
  else state.regions?.addRegion({ start: s, end: s + PASSAGE_SEC, color: 'rgba(0, 200, 240, 0.25)', drag: true, resize: false });
  return s;
}

const choosePassage = debounce((start: number, drawn: Region | null) => {
  const s = markPassage(start, drawn);
  state.query = { kind: 'passages', start: s };
  runQuery();
}, 120);

// ---- queries ------------------------------------------------------------------------------------

function aspectParam(): string {
  return [...state.weights].filter(([, w]) => w > 0).map(([name, w]) => `${name}=${w.toFixed(2)}`).join(',');
}

async function runQuery(): Promise<void> {
  const track = state.current;
  const query = state.query;
  if (!track || !query) return;
  const seq = ++state.requestSeq;
  const params = new URLSearchParams({ k: '10' });
  const aspects = aspectParam();
  if (aspects) params.set('aspects', aspects);
  const status = $('results-status');
  status.textContent = 'searching…';
  document.body.dataset.busy = 'true';
  let answer: SearchAnswer;
  try {
    if (query.kind === 'passages') {
      params.set('start', query.start.toFixed(2));
      params.set('exclude_same', 'track');
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
  status.textContent = aspects ? `weighted by ${aspects.replaceAll(',', ', ')}` : 'overall';
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
    const when = h.start_sec !== undefined ? ` at ${clock(h.start_sec)}` : '';
    li.innerHTML = `<span class="score"></span><span class="title"></span> <span class="muted sub"></span><button>▶ Play</button>`;
    li.querySelector('.score')!.textContent = `${(h.score * 100).toFixed(1)} %`;
    li.querySelector('.title')!.textContent = titleOf(h) + when;
    li.querySelector('.sub')!.textContent = describe(h);
    li.querySelector('button')!.addEventListener('click', () => void selectTrack(h.track_id, h.start_sec ?? 0, true));
    list.append(li);
  }
  document.body.dataset.results = String(hits.length);
}

// ---- aspects ------------------------------------------------------------------------------------

function renderAspects(): void {
  const box = $('aspects');
  box.replaceChildren();
  $('aspects-panel').hidden = state.aspects.length === 0;
  const rerank = debounce(() => void runQuery(), 200);
  for (const a of state.aspects) {
    const label = document.createElement('label');
    label.title = a.description;
    label.innerHTML = `<span class="name"></span> <span class="conf"></span><input type="range" min="0" max="1" step="0.05" value="0">`;
    label.querySelector('.name')!.textContent = a.aspect.replaceAll('_', ' ');
    const conf = label.querySelector('.conf')!;
    conf.textContent = `R² ${a.r2_score.toFixed(2)} · ${a.confidence}`;
    conf.className = `conf conf-${a.confidence}`;
    const input = label.querySelector('input')!;
    input.dataset.aspect = a.aspect;
    input.setAttribute('aria-label', `${a.aspect} weight`);
    input.addEventListener('input', () => {
      state.weights.set(a.aspect, Number(input.value));
      rerank();
    });
    box.append(label);
  }
}

// ---- start --------------------------------------------------------------------------------------

async function start(): Promise<void> {
  $('search').addEventListener('input', debounce(() => void loadTracks(true), 250));
  $('composer').addEventListener('change', () => void loadTracks(true));
  $('dataset').addEventListener('change', () => void loadTracks(true));
  $('more').addEventListener('click', () => void loadTracks(false));
  $('play').addEventListener('click', () => void state.ws?.playPause());
  $('similar-tracks').addEventListener('click', () => {
    state.regions?.clearRegions();
    state.query = { kind: 'tracks' };
    void runQuery();
  });
  try {
    const [datasets, composers, aspects] = await Promise.all([api.datasets(), api.composers(), api.aspects()]);
    for (const d of datasets.datasets) $('dataset').append(new Option(`${d.dataset_id} (${d.tracks})`, d.dataset_id));
    for (const c of composers.composers) $('composer').append(new Option(`${c.composer} (${c.track_count})`, c.composer));
    state.aspects = aspects.aspects;
    renderAspects();
  } catch (e) {
    showError(`The service is not ready: ${(e as Error).message}`);
  }
  await loadTracks(true);
  document.body.dataset.ready = 'true';
}

void start();
